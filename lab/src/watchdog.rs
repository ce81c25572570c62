//! The lab's emulated watchdog: these machines have no watchdog driver,
//! so each node gets a host-side supervisor (`mailha lab watchdog`) that
//! plays the hardware's part. The node's `/dev/lab/watchdog` is a FIFO the
//! supervisor creates in the node's private /dev/lab and reads: every
//! byte but "V" is a pet and arms it, "V" (the kernel's magic close)
//! disarms it. Armed and not petted for the timeout, it resets the node
//! as a hardware reset would: SIGKILL to the node's holder, PID 1 of the
//! node's PID namespace, which makes the kernel kill every process of the
//! node at once (frozen ones too: a fatal signal ends a task frozen by
//! the cgroup v2 freezer). The node's mounts and network namespace go
//! with its last process.
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
//! its watchdog), and ends by itself when the holder is gone (lab down,
//! or after the reset), so the lab's state need not record it.

use super::holder;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The watchdog device path inside a node (lab/postfix.toml's
/// fencing.watchdog).
pub const FIFO: &str = "/dev/lab/watchdog";
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The node went away by other means (lab down, a drill's kill).
    HolderGone,
    /// Armed, not petted for the timeout: the node was reset.
    Reset { silent_for: Duration },
}

/// The FIFO as the host sees it: through the holder's root, in the
/// node's own mount namespace.
pub fn host_path(proc_root: &Path, holder_pid: u32, in_node: &str) -> PathBuf {
    proc_root
        .join(holder_pid.to_string())
        .join("root")
        .join(in_node.trim_start_matches('/'))
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

/// Watches `fifo` for the node whose holder is (`pid`, `start_time`)
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
        if !holder::is_alive(proc_root, pid, start_time) {
            return Outcome::HolderGone;
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

/// Starts the supervisor of one node (`exe lab watchdog ...`), logging
/// to `log`, and waits until its FIFO is there for the keeper to open.
/// Long-lived by design and not waited for: it ends with the node.
pub fn spawn(
    exe: &Path,
    holder: &super::state::HolderRec,
    timeout: Duration,
    disk_mode: &Path,
    log: &Path,
) -> Result<(), super::LabError> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(super::LabError::io(log))?;
    let err = out.try_clone().map_err(super::LabError::io(log))?;
    std::process::Command::new(exe)
        .args(["watchdog", "--holder"])
        .arg(holder.pid.to_string())
        .arg("--start-time")
        .arg(holder.start_time.to_string())
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
    let fifo = host_path(Path::new("/proc"), holder.pid, FIFO);
    let t0 = Instant::now();
    while !fifo.exists() {
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(super::LabError::Cluster(format!(
                "the watchdog of {} did not create {}",
                holder.node,
                fifo.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The shell line that starts the lease keeper inside a node: the init
/// script `mailha install` ships (src/lease/boot.rs), as a machine's boot
/// runs it before corosync. It detaches the keeper (the node's holder
/// reaps it), logs to the node's private /var/log and returns once the
/// keeper answers.
pub const KEEPER_START: &str = "service mailha-lease start";

/// The watchdog timeout the lab emulates for `cfg`: only when it fences
/// by lease with its watchdog at the lab's FIFO.
pub fn timeout_for(cfg: &mailha::config::Config) -> Option<Duration> {
    (cfg.fencing.mode == mailha::config::model::FencingMode::Lease
        && cfg.storage.lease.is_some()
        && cfg.fencing.watchdog == Path::new(FIFO))
    .then_some(cfg.fencing.watchdog_timeout)
}

/// Starts the keeper in each node (holder PIDs) and waits until each
/// answers on its control socket.
pub fn start_keepers(runner: &dyn super::cmd::Runner, pids: &[u32]) -> Result<(), super::LabError> {
    for &pid in pids {
        runner.run_ok(&super::plan::in_node_sh(pid, KEEPER_START))?;
    }
    for &pid in pids {
        let t0 = Instant::now();
        loop {
            let o = runner.run(
                &super::plan::in_node(pid, &["/usr/sbin/mailha", "lease", "status"])
                    .deadline(Duration::from_secs(5)),
            )?;
            if o.success() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(15) {
                return Err(super::LabError::Cluster(format!(
                    "the lease keeper in the node of holder {pid} does not answer: {}",
                    o.stderr.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// `mailha lab watchdog`: the supervisor's process.
pub fn run(
    pid: u32,
    start_time: u64,
    in_node: &str,
    timeout: Duration,
    disk_mode: Option<&Path>,
) -> Result<(), String> {
    let proc_root = Path::new("/proc");
    let path = host_path(proc_root, pid, in_node);
    let fifo = open_fifo(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut log = |m: &str| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        eprintln!("{ms} watchdog[{pid}]: {m}");
    };
    log(&format!(
        "watching {} (timeout {timeout:?})",
        path.display()
    ));
    match supervise(
        proc_root, pid, start_time, fifo, timeout, disk_mode, &mut log,
    ) {
        Outcome::HolderGone => log("the node is gone"),
        Outcome::Reset { .. } => log("reset done"),
    }
    Ok(())
}

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
            let kids = holder::children(Path::new("/proc"), c.id());
            if let Some(&pid) = kids.first()
                && holder::children(Path::new("/proc"), pid).len() == 2
            {
                let (_, start) = holder::identity(Path::new("/proc"), pid).unwrap();
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
        let members = holder::children(Path::new("/proc"), pid);
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
        assert_eq!(out, Outcome::HolderGone);
        assert_eq!(
            std::fs::read_to_string(&mode).unwrap(),
            "ok",
            "no reset, the storage path untouched"
        );
    }
}
