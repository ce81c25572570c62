//! Argv mode of `ocf:mailha:service`: the daemon's own start and stop
//! commands, found through its pid file and /proc (hosts without systemd,
//! eYou's control script).
//!
//! - liveness: pid file -> live process -> identity (exe, or comm for the
//!   eYou suite); without a pid file, a scan of /proc for the binary.
//! - start: the start command (argv), retried (the original tried 5
//!   times) while no process of the daemon is alive, done when the
//!   monitor passes, within the op timeout.
//! - stop: the stop command, then TERM, then KILL of the daemon's
//!   processes found in /proc; success only when they are gone.

use super::{Liveness, Roots, Service, identity_ok, procs};
use crate::ocf::{OcfError, OcfStatus};
use std::path::Path;
use std::time::{Duration, Instant};

/// Finds the daemon: through its pid file when it has one, else by
/// scanning /proc for its binary or name. Reads files only.
pub fn liveness(s: &Service, proc_root: &Path) -> Liveness {
    let pid = s.pid_file.as_deref().map(procs::read_pid_file);
    liveness_from(s, proc_root, pid)
}

/// `liveness` with the pid file already read (`None`: the service has
/// none).
fn liveness_from(
    s: &Service,
    proc_root: &Path,
    pid_file: Option<Result<Option<u32>, String>>,
) -> Liveness {
    if let (Some(pf), Some(read)) = (&s.pid_file, pid_file) {
        let pid = match read {
            Ok(Some(pid)) => pid,
            Ok(None) => return Liveness::NotRunning(format!("no pid in {}", pf.display())),
            Err(e) => return Liveness::NotRunning(e),
        };
        return match procs::read(proc_root, pid) {
            None => Liveness::NotRunning(format!("pid {pid} from {} is gone", pf.display())),
            Some(p) if p.state == 'Z' => Liveness::NotRunning(format!("pid {pid} is a zombie")),
            Some(p) => match identity_ok(s, &p) {
                Ok(()) => Liveness::Running(pid),
                // A recycled pid: the daemon died and another process got
                // its number.
                Err(e) => Liveness::NotRunning(e),
            },
        };
    }
    if s.executable.is_none() && s.process_name.is_none() {
        return Liveness::Unknown;
    }
    for pid in procs::all(proc_root) {
        if let Some(p) = procs::read(proc_root, pid)
            && p.state != 'Z'
            && identity_ok(s, &p).is_ok()
        {
            return Liveness::Running(pid);
        }
    }
    Liveness::NotRunning("no process of the service".into())
}

/// Every process that belongs to the daemon: its main pid and descendants,
/// plus the processes of its binary that a dead master left behind.
fn processes_from(s: &Service, proc_root: &Path, pid_file: PidRead) -> Vec<u32> {
    let all: Vec<procs::ProcInfo> = procs::all(proc_root)
        .into_iter()
        .filter_map(|pid| procs::read(proc_root, pid))
        .filter(|p| p.state != 'Z')
        // Stop signals only our node's processes, never a container's
        // daemon of the same binary. The PID namespace only: a daemon
        // that systemd runs with PrivateTmp has a mount namespace of its
        // own and is still ours.
        .filter(|p| procs::same_namespaces(proc_root, p.pid, &["pid"]))
        .collect();
    let main = match liveness_from(s, proc_root, pid_file.clone()) {
        Liveness::Running(pid) => Some(pid),
        _ => None,
    };
    instance_processes(s, &all, main, &pid_file, std::process::id())
}

/// Which processes are this instance's. A host may run several instances
/// of one binary (eYou runs three memcached), so a process of the binary
/// is swept only when it can be told to be ours:
/// - the service has no pid file: its binary (or name) is what it is;
/// - the pid file could not be read (a hung shared disk): nothing tells
///   instances apart, and every instance on that disk is going anyway;
/// - the pid file names a pid, alive or dead: the processes in that pid's
///   session (a daemon calls setsid; its orphaned workers keep the id);
/// - the pid file is empty or gone: only orphans, processes whose session
///   leader is not a live process of the binary (another daemonized
///   instance leads its own session and is left alone).
fn instance_processes(
    s: &Service,
    all: &[procs::ProcInfo],
    main: Option<u32>,
    pid_file: &PidRead,
    me: u32,
) -> Vec<u32> {
    let of_binary = |p: &procs::ProcInfo| match (&s.executable, &s.process_name) {
        (Some(exe), _) => p.exe.as_deref().is_some_and(|e| procs::exe_matches(e, exe)),
        (None, Some(n)) => p.comm.contains(n.as_str()),
        _ => false,
    };
    let leads_an_instance = |sid: u32| all.iter().any(|q| q.pid == sid && of_binary(q));
    let ours = |p: &procs::ProcInfo| match pid_file {
        None | Some(Err(_)) => true,
        Some(Ok(Some(pid))) => p.session == *pid,
        Some(Ok(None)) => !leads_an_instance(p.session),
    };
    let mut out = main.map(|m| procs::descendants(all, m)).unwrap_or_default();
    for p in all {
        if of_binary(p) && ours(p) && !out.contains(&p.pid) {
            out.push(p.pid);
        }
    }
    out.retain(|p| *p != me && *p != 1);
    out
}

/// Starts the daemon (not running yet) and waits until its monitor
/// passes, until `deadline`. The start command is run again (up to `start_tries` times, as
/// the original did) only while no process of the daemon is alive: a
/// daemon that is up but still warming up (MariaDB recovering InnoDB) is
/// never killed and restarted, and given the whole timeout while it makes
/// progress; one that is up, fails its probe and makes none for
/// `start_stall` is given up (`super::stall`).
pub fn start(
    s: &Service,
    argv: &[String],
    roots: &Roots,
    deadline: Instant,
) -> Result<OcfStatus, OcfError> {
    let mut last = String::from("not attempted");
    let mut attempts = 0;
    let mut child: Option<std::process::Child> = None;
    // When the start command last ended well: a daemon it launched in the
    // background may take a moment to write its pid file.
    let mut ended_ok: Option<Instant> = None;
    let mut watch = super::StartWatch::new(s);
    while Instant::now() < deadline {
        let (live, verdict) = super::observe(s, roots)?;
        match verdict {
            Ok(_) => {
                eprintln!("{}: started (attempt {attempts})", s.name);
                return Ok(OcfStatus::Success);
            }
            Err(e) => last = e.reason,
        }
        // Up, its probe failing: given up when it makes no progress.
        if let Some(e) = watch.look(s, &live, &last, &roots.proc, |pid| {
            daemon_processes(&roots.proc, pid)
        }) {
            return Err(e);
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            child = None;
            if st.success() {
                ended_ok = Some(Instant::now());
            } else {
                last = format!("{} exited with {st}", argv[0]);
                eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
            }
        }
        // "Alive" is this daemon (its pid file, or its start command still
        // running), not any process of the same binary: a host may run
        // other instances.
        let alive = child.is_some() || matches!(liveness(s, &roots.proc), Liveness::Running(_));
        let settling = ended_ok.is_some_and(|t| t.elapsed() < START_SETTLE);
        if !alive && !settling {
            if attempts >= s.start_tries {
                break;
            }
            attempts += 1;
            ended_ok = None;
            match crate::exec::spawn_detached(argv) {
                Ok(c) => child = Some(c),
                Err(e) => {
                    last = e;
                    eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
                }
            }
        }
        std::thread::sleep(super::START_POLL);
    }
    Err(OcfError::generic(format!(
        "{}: not started ({attempts} attempts): {last}",
        s.name
    )))
}

/// The daemon's main process `pid` and every process descended from it.
fn daemon_processes(proc_root: &Path, pid: u32) -> Vec<u32> {
    let all: Vec<procs::ProcInfo> = procs::all(proc_root)
        .into_iter()
        .filter_map(|p| procs::read(proc_root, p))
        .collect();
    procs::descendants(&all, pid)
}

/// How long a daemon launched by a start command that ended well may take
/// to show up (pid file written) before the command is run again.
const START_SETTLE: Duration = Duration::from_secs(5);

fn wait_gone(s: &Service, proc_root: &Path, pid: &PidRead, until: Instant) -> Vec<u32> {
    loop {
        let left = processes_from(s, proc_root, pid.clone());
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid file as read once for a stop (`None`: the service has none).
type PidRead = Option<Result<Option<u32>, String>>;

/// Reads the pid file where a hung disk cannot hold the stop: in a
/// `mailha io` child with a deadline (the pid file may live on the shared
/// disk whose failure is why we are stopping). A read that does not come
/// back is no pid: the daemon's processes are still found by executable.
fn pid_file_bounded(s: &Service, deadline: Duration) -> (PidRead, bool) {
    let Some(pf) = &s.pid_file else {
        return (None, true);
    };
    let Some(path) = pf.to_str() else {
        return (Some(Err(format!("{}: not UTF-8", pf.display()))), true);
    };
    match crate::exec::io_child(&["pidfile", path], deadline) {
        Ok(out) => (
            Some(Ok(out.trim().parse::<u32>().ok().filter(|p| *p > 0))),
            true,
        ),
        Err(e) => {
            eprintln!(
                "{}: pid file: {e}; finding its processes by executable",
                s.name
            );
            (Some(Err(e)), false)
        }
    }
}

pub fn stop(s: &Service, proc_root: &Path, timeout: Duration) -> Result<OcfStatus, OcfError> {
    use nix::sys::signal::Signal;
    let start = Instant::now();
    let deadline = start + timeout;
    // Keep a margin so the agent itself always answers before Pacemaker's
    // own timeout fires.
    let phase = |share: u32| start + timeout.mul_f64(share as f64 / 10.0);
    let (pid, answered) = pid_file_bounded(s, timeout.mul_f64(0.1).min(Duration::from_secs(5)));
    // A pid file that did not answer is not touched again (removing it
    // would hang the same way).
    let cleanup = |s: &Service| {
        if answered {
            cleanup_pid_file(s, proc_root)
        }
    };
    if processes_from(s, proc_root, pid.clone()).is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    if let Some(argv) = &s.stop {
        let budget = phase(4).saturating_duration_since(Instant::now());
        match crate::exec::run(argv, &[], None, budget) {
            Ok(o) if !o.success() => eprintln!("{}: {} exited {:?}", s.name, argv[0], o.code),
            Err(e) => eprintln!("{}: {e}", s.name),
            Ok(_) => {}
        }
        if wait_gone(s, proc_root, &pid, phase(5)).is_empty() {
            cleanup(s);
            return Ok(OcfStatus::Success);
        }
    }
    let left = processes_from(s, proc_root, pid.clone());
    eprintln!("{}: sending TERM to {left:?}", s.name);
    procs::signal_all(&left, Signal::SIGTERM);
    if wait_gone(s, proc_root, &pid, phase(8)).is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    let left = processes_from(s, proc_root, pid.clone());
    eprintln!("{}: sending KILL to {left:?}", s.name);
    procs::signal_all(&left, Signal::SIGKILL);
    let left = wait_gone(s, proc_root, &pid, phase(9).min(deadline));
    if left.is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    Err(OcfError::generic(format!(
        "{}: processes {left:?} survived KILL (stuck in the kernel?)",
        s.name
    )))
}

/// A pid file naming a dead process is removed: the next start must not
/// mistake a recycled pid for the daemon.
fn cleanup_pid_file(s: &Service, proc_root: &Path) {
    if let Some(pf) = &s.pid_file
        && matches!(liveness(s, proc_root), Liveness::NotRunning(_))
        && pf.exists()
    {
        let _ = std::fs::remove_file(pf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::service::tests::{params, svc};

    /// A fake /proc with one process.
    fn fake_proc(pid: u32, comm: &str, exe: &str, state: char) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(pid.to_string());
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) {state} 1 {pid} {pid} 0"),
        )
        .unwrap();
        std::os::unix::fs::symlink(exe, p.join("exe")).unwrap();
        d
    }

    #[test]
    fn a_recycled_pid_is_caught_by_the_executable() {
        let proc_root = fake_proc(4242, "perl", "/usr/bin/perl", 'S');
        let run = tempfile::tempdir().unwrap();
        let pf = run.path().join("master.pid");
        std::fs::write(&pf, "4242\n").unwrap();
        let mut s = svc();
        s.pid_file = Some(pf.clone());
        s.executable = Some("/usr/lib/postfix/sbin/master".into());
        match liveness(&s, proc_root.path()) {
            Liveness::NotRunning(why) => assert!(why.contains("is /usr/bin/perl"), "{why}"),
            l => panic!("{l:?}"),
        }
        s.executable = Some("/usr/bin/perl".into());
        assert_eq!(liveness(&s, proc_root.path()), Liveness::Running(4242));
    }

    #[test]
    fn a_zombie_or_a_missing_pid_is_not_running() {
        let proc_root = fake_proc(77, "master", "/usr/lib/postfix/sbin/master", 'Z');
        let run = tempfile::tempdir().unwrap();
        let pf = run.path().join("master.pid");
        std::fs::write(&pf, "77\n").unwrap();
        let mut s = svc();
        s.pid_file = Some(pf.clone());
        assert!(
            matches!(liveness(&s, proc_root.path()), Liveness::NotRunning(w) if w.contains("zombie"))
        );
        std::fs::write(&pf, "78\n").unwrap();
        assert!(
            matches!(liveness(&s, proc_root.path()), Liveness::NotRunning(w) if w.contains("gone"))
        );
    }

    #[test]
    fn the_eyou_rule_matches_by_process_name() {
        let proc_root = fake_proc(9, "mproxyd", "/usr/local/eyou/mail/bin/mproxyd", 'S');
        let s = params(&[
            ("name", "mproxy"),
            (
                "start",
                r#"["/usr/local/eyou/mail/opt/bin/eyou_mail","start","mproxy"]"#,
            ),
            ("process_name", "proxy"),
        ])
        .unwrap();
        assert_eq!(liveness(&s, proc_root.path()), Liveness::Running(9));
    }

    /// Two memcached instances, each a daemon leading its own session, and
    /// a worker orphaned by a third instance's master that died.
    fn two_memcached() -> (Service, Vec<procs::ProcInfo>) {
        let mut s = svc();
        s.executable = Some("/usr/bin/memcached".into());
        let p = |pid, session| procs::ProcInfo {
            pid,
            ppid: 1,
            session,
            state: 'S',
            comm: "memcached".into(),
            exe: Some("/usr/bin/memcached".into()),
        };
        (s, vec![p(100, 100), p(200, 200), p(301, 300)])
    }

    #[test]
    fn stopping_one_instance_spares_another_of_the_same_binary() {
        let (s, all) = two_memcached();
        // Ours is 100, alive.
        let mine = instance_processes(&s, &all, Some(100), &Some(Ok(Some(100))), 1);
        assert_eq!(mine, vec![100]);
        // Ours was 300, killed -9: its orphaned worker is ours, 100 and 200
        // are someone else's.
        let mine = instance_processes(&s, &all, None, &Some(Ok(Some(300))), 1);
        assert_eq!(mine, vec![301]);
        // The pid file is gone: only orphans, never a live instance.
        let mine = instance_processes(&s, &all, None, &Some(Ok(None)), 1);
        assert_eq!(mine, vec![301]);
    }

    #[test]
    fn without_a_readable_pid_file_the_binary_is_the_service() {
        let (mut s, all) = two_memcached();
        let hung = Some(Err("timed out".to_string()));
        assert_eq!(
            instance_processes(&s, &all, None, &hung, 1),
            vec![100, 200, 301]
        );
        s.pid_file = None;
        assert_eq!(
            instance_processes(&s, &all, None, &None, 200),
            vec![100, 301],
            "never the agent itself"
        );
    }
}
