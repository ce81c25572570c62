//! The lab's emulated watchdog: these machines have no watchdog driver,
//! so each node gets a host-side supervisor (`mailha-lab watchdog`) that
//! plays the hardware's part. The node's `/dev/lab/watchdog` is a FIFO on
//! the host (`{base}/nodeN/dev/watchdog`, bound into the node at each
//! boot) that the supervisor reads: every byte but "V" is a pet and arms
//! it, "V" (the kernel's magic close) disarms it. Armed and not petted for
//! the timeout, it resets the node as a hardware reset would: SIGKILL to
//! the node's PID 1 (its systemd, PID 1 of the node's PID namespace),
//! which makes the kernel kill every process of the node at once (frozen
//! ones too: a fatal signal ends a task frozen by the cgroup v2 freezer).
//! The node's mounts and network namespace go with its last process.
//!
//! A reset also ends the machine's I/O, and a SIGKILL alone does not: a
//! process waiting in the kernel (D state) on a hung disk path outlives
//! it, and so does the node (its PID 1 waits for it), and a node's last
//! unmount would still write to the shared disk after the "reset". So,
//! given the node's fusedisk mode file (src/lab/fusedisk.rs), the
//! supervisor first fails that node's storage path (`eio`: parked and new
//! requests fail at once), then kills; `lab::restart` gives the path back
//! (`ok`) when the node boots again, once the old mount is gone.
//!
//! The supervisor lives outside the node (a frozen node must not freeze
//! its watchdog). It starts before the node boots (the keeper, started at
//! boot, opens the FIFO at once), waits for the node's PID 1 to appear in
//! the node's cgroup, and ends by itself when that PID 1 is gone (lab
//! down, a drill's power cut, or after the reset), so the lab's state need
//! not record it; a boot that follows gets a supervisor of its own.

use super::proc;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The watchdog device path inside a node (lab/postfix.toml's
/// fencing.watchdog).
pub const FIFO: &str = "/dev/lab/watchdog";
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The node went away by other means (lab down, a drill's kill).
    NodeGone,
    /// Armed, not petted for the timeout: the node was reset.
    Reset { silent_for: Duration },
}

/// Creates the FIFO if needed; returns it opened read-write (never sees
/// end-of-file, never blocks the keeper's open).
pub fn open_fifo(path: &Path) -> std::io::Result<std::fs::File> {
    match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Watches `fifo` for the node whose PID 1 is (`pid`, `start_time`)
/// until the node is gone or reset; a reset first switches `disk_mode`
/// (the node's fusedisk mode file), when given, to `eio`. `log` gets one
/// line per state change.
pub fn supervise(
    proc_root: &Path,
    pid: u32,
    start_time: u64,
    mut fifo: std::fs::File,
    timeout: Duration,
    disk_mode: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> Outcome {
    use std::os::fd::AsFd;
    let mut armed_at: Option<Instant> = None;
    let mut buf = [0u8; 256];
    loop {
        let mut fds = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::from(POLL.as_millis() as u16),
        );
        loop {
            match fifo.read(&mut buf) {
                Ok(n) if n > 0 => {
                    for &b in &buf[..n] {
                        if b == b'V' {
                            if armed_at.is_some() {
                                log("disarmed (magic close)");
                            }
                            armed_at = None;
                        } else {
                            if armed_at.is_none() {
                                log("armed");
                            }
                            armed_at = Some(Instant::now());
                        }
                    }
                }
                _ => break,
            }
        }
        if !proc::is_alive(proc_root, pid, start_time) {
            return Outcome::NodeGone;
        }
        if let Some(last) = armed_at
            && last.elapsed() >= timeout
        {
            let silent_for = last.elapsed();
            log(&format!(
                "not petted for {} ms: resetting the node (SIGKILL to its PID 1, {pid})",
                silent_for.as_millis()
            ));
            // The I/O ends first: no write of the dying node (its last
            // unmount included) may land, and no D-state wait may hold
            // the node past the kill.
            if let Some(f) = disk_mode {
                match super::fusedisk::set_mode_file(f, super::fusedisk::Mode::Eio) {
                    Ok(()) => log(&format!("storage path failed (eio via {})", f.display())),
                    Err(e) => log(&format!(
                        "could not fail the storage path ({}): {e}",
                        f.display()
                    )),
                }
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Outcome::Reset { silent_for };
        }
    }
}

/// Starts the supervisor of one node (`exe watchdog ...`) before it
/// boots, logging to `log`, and waits until it reads `fifo`. Long-lived by
/// design and not waited for: it ends with that boot of the node.
pub fn spawn(
    lab: &super::Lab,
    node: &str,
    cgroup: &Path,
    fifo: &Path,
    timeout: Duration,
    disk_mode: &Path,
    log: &Path,
) -> Result<(), super::LabError> {
    let exe = &lab.helper_exe();
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(super::LabError::io(log))?;
    let err = out.try_clone().map_err(super::LabError::io(log))?;
    // The lab's own names, so that the boot after a reset is this lab's.
    let mut child = std::process::Command::new(exe)
        .arg("--prefix")
        .arg(&lab.topo.prefix)
        .arg("--state-dir")
        .arg(&lab.store.dir)
        .arg("--base-dir")
        .arg(&lab.base_dir)
        .args(["watchdog", "--boot", node, "--cgroup"])
        .arg(cgroup)
        .arg("--fifo")
        .arg(fifo)
        .arg("--timeout")
        .arg(format!("{}ms", timeout.as_millis()))
        .arg("--disk-mode-file")
        .arg(disk_mode)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(super::LabError::io(exe))?;
    let pid = child.id();
    // Reaped when it ends (it may outlive this process too: then init).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    // Reading: its FIFO is open for reading in its /proc fds.
    let t0 = Instant::now();
    loop {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == fifo));
        if open {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(super::LabError::Cluster(format!(
                "the watchdog of {node} did not open {}",
                fifo.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The watchdog timeout the lab emulates for `cfg`: only when it fences
/// by lease with its watchdog at the lab's FIFO.
pub fn timeout_for(cfg: &mailha::config::Config) -> Option<Duration> {
    (cfg.fencing.mode == mailha::config::model::FencingMode::Lease
        && cfg.storage.lease.is_some()
        && cfg.fencing.watchdog == Path::new(FIFO))
    .then_some(cfg.fencing.watchdog_timeout)
}

/// `mailha-lab watchdog`: the supervisor's process. It reads `fifo` from
/// the start, waits up to `BOOT_WAIT` for the node's PID 1 in `cgroup`,
/// then supervises that boot; returns how it ended.
pub fn run(
    cgroup: &Path,
    fifo: &Path,
    timeout: Duration,
    disk_mode: Option<&Path>,
) -> Result<Outcome, String> {
    let proc_root = Path::new("/proc");
    let f = open_fifo(fifo).map_err(|e| format!("{}: {e}", fifo.display()))?;
    let mut log = |m: &str| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        eprintln!("{ms} watchdog: {m}");
    };
    let t0 = Instant::now();
    let (pid, start_time) = loop {
        if let Some(pid) = super::node::find_init(proc_root, cgroup)
            && let Some((_, st)) = proc::identity(proc_root, pid)
        {
            break (pid, st);
        }
        if t0.elapsed() > BOOT_WAIT {
            return Err(format!(
                "no node booted in {} within {} s",
                cgroup.display(),
                BOOT_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    log(&format!(
        "watching {} for PID 1 {pid} (timeout {timeout:?})",
        fifo.display()
    ));
    let out = supervise(proc_root, pid, start_time, f, timeout, disk_mode, &mut log);
    match out {
        Outcome::NodeGone => log("the node is gone"),
        Outcome::Reset { .. } => log("reset done"),
    }
    Ok(out)
}

/// Whether the boot of `node` that just ended rebooted itself (reboot(2)
/// in the node: its keeper after acking a fence): nspawn's recorded exit
/// status says so (`node::REBOOTED`). Waits up to `NSPAWN_EXIT` for nspawn,
/// which exits a moment after the node's PID 1; a power cut or `lab down`
/// kills the recording shell with the node, so no status means no reboot.
pub fn rebooted_itself(base: &Path, node: &str) -> bool {
    let d = super::node::NodeDirs::new(base, node);
    let t = Instant::now();
    loop {
        if let Some(code) = super::node::exit_status(&d) {
            return code == super::node::REBOOTED;
        }
        if t.elapsed() > NSPAWN_EXIT {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// How long nspawn may take to exit after its container's PID 1 did.
const NSPAWN_EXIT: Duration = Duration::from_secs(10);

/// What a machine does after its watchdog reset it, or after it rebooted
/// itself: it boots again, by itself. Only the node's supervisor calls it
/// (for both), so a reboot and a watchdog reset never race two boots. The old boot's processes are gone first (the reset killed them;
/// a process in D state may take a moment once its disk path failed).
pub fn boot_after_reset(lab: &super::Lab, node: &str) -> Result<(), super::LabError> {
    // A frozen node's reset kills its processes, but the node's nspawn
    // supervisor, frozen in the same cgroup, would wait there forever: a
    // machine that was reset is not hung any more.
    let _ = lab.freeze(node, false);
    lab.await_no_processes(node, "after its reset")?;
    // A server takes tens of seconds from a reset to its boot (firmware,
    // POST); a container takes none. Without that pause the node's new
    // keeper writes its slot again within host_dead, and the peer cannot
    // tell a reset from a live node (it would wait out ext4's MMP instead
    // of clearing it): the lab keeps the order of events a machine has.
    std::thread::sleep(POST_TIME);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    eprintln!("{ms} watchdog: booting {node} again");
    lab.restart_node(node)?;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    eprintln!("{ms} watchdog: {node} booted again");
    Ok(())
}

/// A reset machine's time before its boot begins (firmware, POST): longer
/// than any lease configuration's host_dead the lab runs (4.5 s).
pub const POST_TIME: Duration = Duration::from_secs(10);

/// How long a supervisor started before a boot waits for the node.
const BOOT_WAIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// A "node": PID 1 of a new PID namespace with two more processes.
    /// The caller waits for the child it gets back.
    #[allow(clippy::zombie_processes)]
    fn node() -> Option<(std::process::Child, u32, u64)> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: the watchdog reset test needs root (a PID namespace)");
            return None;
        }
        let mut c = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--",
                "sh",
                "-c",
                "sleep 600 & sleep 600 & wait",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        loop {
            let kids = proc::children(Path::new("/proc"), c.id());
            if let Some(&pid) = kids.first()
                && proc::children(Path::new("/proc"), pid).len() == 2
            {
                let (_, start) = proc::identity(Path::new("/proc"), pid).unwrap();
                return Some((c, pid, start));
            }
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the node's processes did not appear");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn an_armed_watchdog_not_petted_resets_the_whole_node() {
        let Some((mut unshare, pid, start)) = node() else {
            return;
        };
        let members = proc::children(Path::new("/proc"), pid);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchdog");
        let fifo = open_fifo(&path).unwrap();
        // The keeper's side: pets every 100 ms for a second, then stops.
        let mut keeper = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let petter = std::thread::spawn(move || {
            for _ in 0..10 {
                keeper.write_all(b"k").unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // The node's storage path, as its fusedisk reads it.
        let mode = dir.path().join("node.mode");
        std::fs::write(&mode, "ok").unwrap();
        let t0 = Instant::now();
        let mut lines = Vec::new();
        let out = supervise(
            Path::new("/proc"),
            pid,
            start,
            fifo,
            Duration::from_millis(500),
            Some(&mode),
            &mut |m| lines.push(m.to_string()),
        );
        petter.join().unwrap();
        let Outcome::Reset { silent_for } = out else {
            panic!("{out:?} {lines:?}")
        };
        assert!(silent_for >= Duration::from_millis(500));
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "fired while petted"
        );
        assert_eq!(
            std::fs::read_to_string(&mode).unwrap(),
            "eio",
            "the reset ended the node's I/O: {lines:?}"
        );
        unshare.wait().unwrap();
        for p in std::iter::once(pid).chain(members) {
            assert!(
                !Path::new(&format!("/proc/{p}")).exists(),
                "{p} survived the reset"
            );
        }
    }

    #[test]
    fn a_disarmed_watchdog_leaves_the_node_alone_until_it_is_gone() {
        let Some((mut unshare, pid, start)) = node() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watchdog");
        let fifo = open_fifo(&path).unwrap();
        let mut keeper = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        keeper.write_all(b"kV").unwrap();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        let mode = dir.path().join("node.mode");
        std::fs::write(&mode, "ok").unwrap();
        let out = supervise(
            Path::new("/proc"),
            pid,
            start,
            fifo,
            Duration::from_millis(200),
            Some(&mode),
            &mut |_| {},
        );
        killer.join().unwrap();
        unshare.wait().unwrap();
        assert_eq!(out, Outcome::NodeGone);
        assert_eq!(
            std::fs::read_to_string(&mode).unwrap(),
            "ok",
            "no reset, the storage path untouched"
        );
    }
}
