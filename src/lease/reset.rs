//! What makes an acked fence a fence (issue 19, defect 1): Pacemaker and
//! every administrator read "fenced" as "off or reset". A self-fence ends
//! what can write the shared data (`keeper::self_fence`); this module ends
//! the rest: before the ack, the cluster's addresses are taken off this
//! node (so the peer's VIP cannot meet ours on the LAN, whatever the
//! reset's latency); after the ack landed, the node resets
//! (`reboot(2)`, as sbd does; the watchdog when that fails). Where no
//! reset is configured (`--reset none`: keepers tried on a machine that
//! is not theirs), the keeper says so in its log and its status instead
//! of pretending. docs/lease.md: "What acked promises".

use std::net::IpAddr;
use std::time::Duration;

/// How a fenced node resets once its ack is on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResetMode {
    /// reboot(2) at once after the ack (RB_AUTOBOOT, no sync: the shared
    /// data is already released); the watchdog if the call fails.
    #[default]
    Reboot,
    /// Stop petting the watchdog after the ack: reset within its timeout.
    Watchdog,
    /// No reset: the node stays up, fenced, holding nothing until someone
    /// restarts it. Only for keepers tried where the machine is not the
    /// keeper's to reset (the tests on a host).
    None,
}

impl std::fmt::Display for ResetMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResetMode::Reboot => "reboot",
            ResetMode::Watchdog => "watchdog",
            ResetMode::None => "none",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("ip: {0}")]
    Exec(#[from] crate::exec::ExecError),
    #[error("{argv}: {why}")]
    Ip { argv: String, why: String },
    #[error("{address} is still configured on {devs:?} after it was deleted")]
    StillThere { address: IpAddr, devs: Vec<String> },
    #[error("reboot(2): {0}")]
    Reboot(std::io::Error),
}

/// A deadline for each `ip` call: it talks to the kernel only.
const IP_DEADLINE: Duration = Duration::from_secs(5);

/// The interfaces and `addr/prefix` forms that `ip -o addr show` lists,
/// one per line: `2: eth0    inet 198.51.100.100/24 brd ... eth0:vip\ ...`.
/// A veth shows as `eth0@if12`: the device is the part before `@`.
pub fn parse_ip_o(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dev = f.get(1)?.split('@').next()?.trim_end_matches(':');
            let family = *f.get(2)?;
            let cidr = *f.get(3)?;
            (matches!(family, "inet" | "inet6") && !dev.is_empty())
                .then(|| (dev.to_string(), cidr.to_string()))
        })
        .collect()
}

fn ip(args: &[String]) -> Result<String, ResetError> {
    let mut argv = vec!["ip".to_string()];
    argv.extend_from_slice(args);
    let o = crate::exec::run(&argv, &[], None, IP_DEADLINE)?;
    if o.success() {
        Ok(o.stdout)
    } else {
        Err(ResetError::Ip {
            argv: argv.join(" "),
            why: o.stderr.trim().to_string(),
        })
    }
}

/// Where `address` is configured in this network namespace.
fn holders(address: IpAddr) -> Result<Vec<(String, String)>, ResetError> {
    let out = ip(&[
        "-o".into(),
        "addr".into(),
        "show".into(),
        "to".into(),
        address.to_string(),
    ])?;
    Ok(parse_ip_o(&out))
}

/// Takes every address in `addresses` off every interface of this
/// network namespace and proves it gone (listed again: nothing left).
/// Returns what it removed, one `addr dev` per entry. Run after the
/// cluster stack was killed, so no agent puts an address back.
pub fn drop_addresses(addresses: &[IpAddr]) -> Result<Vec<String>, ResetError> {
    let mut removed = Vec::new();
    for &a in addresses {
        for (dev, cidr) in holders(a)? {
            // Another holder of the same address may have gone meanwhile:
            // the listing below is the proof, not this call's result.
            let _ = ip(&[
                "addr".into(),
                "del".into(),
                cidr.clone(),
                "dev".into(),
                dev.clone(),
            ]);
            removed.push(format!("{cidr} {dev}"));
        }
        let left = holders(a)?;
        if !left.is_empty() {
            return Err(ResetError::StillThere {
                address: a,
                devs: left.into_iter().map(|(d, _)| d).collect(),
            });
        }
    }
    Ok(removed)
}

/// Resets this machine at once: reboot(2) with RB_AUTOBOOT, as sbd does
/// on a poison pill. No sync: the shared data is released and proven so;
/// what the local disk loses is what a watchdog reset would lose too.
/// Returns only when the kernel refused (no CAP_SYS_BOOT, a seccomp
/// filter): the caller falls back to the watchdog. In a PID namespace
/// other than the first (a lab node: systemd-nspawn), the kernel kills
/// the namespace instead, and nspawn reports a reboot (exit status 133).
pub fn reboot_now() -> ResetError {
    // SAFETY: a plain system call with a constant argument.
    let r = unsafe { nix::libc::reboot(nix::libc::LINUX_REBOOT_CMD_RESTART) };
    debug_assert!(r != 0, "reboot(2) returned success");
    ResetError::Reboot(std::io::Error::last_os_error())
}

/// The self-fence's last step before its ack may be written: the
/// addresses gone, proven so. False (logged) when not: then there is no
/// ack and the watchdog resets the node (`keeper::self_fence`'s rule).
pub fn drop_before_ack(addresses: &[IpAddr]) -> bool {
    match drop_addresses(addresses) {
        Ok(removed) => {
            if !removed.is_empty() {
                eprintln!("lease-keeper: took the cluster's addresses off this node: {removed:?}");
            }
            true
        }
        Err(e) => {
            eprintln!(
                "lease-keeper: the cluster's addresses could not be taken off this node: {e}"
            );
            false
        }
    }
}

/// The keeper's side of the reset: which write of its slot carries the
/// ack of a fence request, and whether the reset has begun.
#[derive(Debug, Default)]
pub struct AfterAck {
    /// The first write issued with the ack in it, and when.
    write: Option<(u64, std::time::Instant)>,
    started: bool,
    /// The watchdog must not be petted any more (the reset is its).
    pub starve: bool,
}

impl AfterAck {
    /// A write of our slot was issued; `carries_ack`: it says fenced after
    /// a request was served.
    pub fn issued(&mut self, seq: u64, carries_ack: bool) {
        if carries_ack && self.write.is_none() {
            self.write = Some((seq, std::time::Instant::now()));
        }
    }

    /// Time to reset: the ack's write completed (`completed`, whatever
    /// its result: a failed one leaves the peer its fallback, our counter
    /// standing still for host_dead), or it has been out for
    /// `io_timeout` (a hung path must not keep a fenced node up).
    pub fn due(&self, completed: Option<u64>, io_timeout: Duration) -> bool {
        !self.started
            && self
                .write
                .is_some_and(|(s, at)| completed == Some(s) || at.elapsed() >= io_timeout)
    }

    /// Resets as `mode` says; returns only when the node stays up
    /// (`watchdog`: until it fires; `none`; a refused reboot).
    pub fn reset(&mut self, mode: ResetMode) {
        self.started = true;
        match mode {
            ResetMode::Reboot => {
                eprintln!("lease-keeper: the ack is written: rebooting this node now");
                let e = reboot_now();
                eprintln!("lease-keeper: {e}: leaving the reset to the watchdog");
                self.starve = true;
            }
            ResetMode::Watchdog => {
                eprintln!(
                    "lease-keeper: the ack is written: no more pets, the watchdog resets this node"
                );
                self.starve = true;
            }
            ResetMode::None => eprintln!(
                "lease-keeper: the ack is written; reset = none: this node stays up, fenced and holding nothing, until someone restarts it"
            ),
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_o_lines_give_device_and_prefix() {
        let out = "2: eth0@if7    inet 198.51.100.100/24 brd 198.51.100.255 scope global secondary eth0:vip\\       valid_lft forever preferred_lft forever\n\
                   3: lan1    inet6 2001:db8::5/64 scope global \\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_ip_o(out),
            vec![
                ("eth0".to_string(), "198.51.100.100/24".to_string()),
                ("lan1".to_string(), "2001:db8::5/64".to_string()),
            ]
        );
        assert!(parse_ip_o("").is_empty());
        assert!(parse_ip_o("garbage\n").is_empty());
    }

    #[test]
    fn the_reset_waits_for_the_acks_write_then_starts_once() {
        let long = Duration::from_secs(3600);
        let mut a = AfterAck::default();
        a.issued(1, false);
        assert!(!a.due(Some(1), long), "a write without the ack");
        a.issued(2, true);
        a.issued(3, true);
        assert!(!a.due(None, long), "the ack is not out yet");
        assert!(!a.due(Some(3), long), "only the first write with the ack");
        assert!(a.due(Some(2), long));
        a.reset(ResetMode::Watchdog);
        assert!(a.starve && a.started());
        assert!(!a.due(Some(2), long), "once");
        // A write that never completes: due after io_timeout.
        let mut b = AfterAck::default();
        b.issued(7, true);
        assert!(b.due(None, Duration::ZERO));
        b.reset(ResetMode::None);
        assert!(!b.starve, "none keeps petting: the node stays up, said so");
    }

    /// The drop for real, in a network namespace of this test's own (a
    /// thread's: `unshare(CLONE_NEWNET)` moves only the calling thread, and
    /// the `ip` children it starts inherit it; the namespace and its links
    /// go with the thread). Root only.
    #[test]
    fn the_vip_leaves_every_interface_and_the_nodes_own_address_stays() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: a network namespace needs root");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let sh = |args: &[&str]| {
                let a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
                ip(&a).unwrap()
            };
            sh(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
            sh(&["link", "set", "v0", "up"]);
            sh(&["addr", "add", "198.51.100.11/24", "dev", "v0"]);
            sh(&[
                "addr",
                "add",
                "198.51.100.100/24",
                "dev",
                "v0",
                "label",
                "v0:vip",
            ]);
            sh(&["addr", "add", "198.51.100.100/24", "dev", "v1"]);
            let vip: IpAddr = "198.51.100.100".parse().unwrap();
            let mut removed = drop_addresses(&[vip]).unwrap();
            removed.sort();
            assert_eq!(removed, ["198.51.100.100/24 v0", "198.51.100.100/24 v1"]);
            assert!(holders(vip).unwrap().is_empty());
            let left = sh(&["-o", "addr", "show", "dev", "v0"]);
            assert!(left.contains("198.51.100.11/24"), "{left}");
            // Nothing to drop is no error.
            assert!(drop_addresses(&[vip]).unwrap().is_empty());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_packaged_default_resets_by_reboot() {
        assert_eq!(ResetMode::default(), ResetMode::Reboot);
        assert_eq!(ResetMode::default().to_string(), "reboot");
    }
}
