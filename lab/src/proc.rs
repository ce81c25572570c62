//! Processes the lab started on the host (a node's PID 1, the NFS
//! server, fusedisk daemons, watchdogs), recognised by PID *and* start
//! time, so a recycled PID is never taken for ours.

use std::path::{Path, PathBuf};

/// `(exe, start_time)` of a process, from the host's /proc (a parameter so
/// tests use a temp dir). None when it is gone, a zombie included: a
/// daemon the lab spawned and killed in the same run stays a zombie of
/// this process until reaped, and is no less dead.
pub fn identity(proc_root: &Path, pid: u32) -> Option<(PathBuf, u64)> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    if mailha::procs::parse_stat(&stat)?.state == 'Z' {
        return None;
    }
    let start = mailha::procs::start_time_of(&stat)?;
    let exe = std::fs::read_link(dir.join("exe")).unwrap_or_default();
    Some((exe, start))
}

/// The children of `pid`, from /proc/PID/task/*/children (a child belongs
/// to the thread that forked it).
pub fn children(proc_root: &Path, pid: u32) -> Vec<u32> {
    let tasks = proc_root.join(pid.to_string()).join("task");
    let mut v = Vec::new();
    for t in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        v.extend(
            text.split_whitespace()
                .filter_map(|s| s.parse::<u32>().ok()),
        );
    }
    v
}

/// Is `pid` still the process we recorded (same start time)?
pub fn is_alive(proc_root: &Path, pid: u32, start_time: u64) -> bool {
    matches!(identity(proc_root, pid), Some((_, st)) if st == start_time)
}

/// The effective uid, from the `Uid:` line of /proc/self/status.
pub fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_identity_and_parentage_are_readable() {
        let me = std::process::id();
        let (exe, st) = identity(Path::new("/proc"), me).unwrap();
        assert!(exe.is_absolute());
        assert!(is_alive(Path::new("/proc"), me, st));
        assert!(!is_alive(Path::new("/proc"), me, st + 1));
        let mut child = std::process::Command::new("sleep")
            .arg("2")
            .spawn()
            .unwrap();
        assert!(children(Path::new("/proc"), me).contains(&child.id()));
        child.kill().unwrap();
        // Dead but not yet reaped: a zombie is not alive.
        let t = std::time::Instant::now();
        while identity(Path::new("/proc"), child.id()).is_some() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(5),
                "a zombie counts as alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
    }

    #[test]
    fn uid_is_the_second_field_of_the_uid_line() {
        assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }
}
