//! Processes using a filesystem, found through /proc without touching it:
//! readlink of /proc/PID/{cwd,root,exe,fd/*} and /proc/PID/maps are
//! answered by the kernel from its own structures, so they work on a dead
//! NFS server or a hung disk (unlike fuser/lsof's stat() of the mount).
//!
//! A filesystem is known by the device number all of its mounts show
//! (`st_dev`, mountinfo's major:minor), in every mount namespace: a daemon
//! that systemd runs with `PrivateTmp=` or `ProtectSystem=` (MariaDB,
//! Dovecot) has a mount namespace of its own, and its copy of the data
//! mount keeps the filesystem alive after ours is gone. Only the PID
//! namespace bounds the search: on a host running lab nodes or
//! containers, each with a PID namespace of its own, /proc shows their
//! processes too, and they are not ours to judge (the service agent's
//! rule).

use super::mountinfo;
use std::collections::BTreeMap;
use std::path::Path;

/// A filesystem, by the device number every mount of it shows.
pub type Fs = (u32, u32);

fn under(p: &str, dir: &str) -> bool {
    let p = p.strip_suffix(" (deleted)").unwrap_or(p);
    dir == "/" || p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// One mount namespace that has the filesystem mounted: a process in it
/// (to read its /proc files, or to enter it) and the mount points there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The namespace, as /proc/PID/ns/mnt names it.
    pub ns: String,
    pub pid: u32,
    pub points: Vec<String>,
    /// It is the caller's own mount namespace.
    pub ours: bool,
}

/// The processes of our PID namespace, grouped by mount namespace: each
/// namespace once (with its first process), and where it has `fs`.
struct Scan {
    /// pid -> its mount namespace.
    of: BTreeMap<u32, String>,
    namespaces: BTreeMap<String, Namespace>,
}

fn scan(proc_root: &Path, fs: Fs, me: u32) -> Scan {
    let ours = std::fs::read_link(proc_root.join("self/ns/mnt"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = Scan {
        of: BTreeMap::new(),
        namespaces: BTreeMap::new(),
    };
    for pid in crate::procs::all(proc_root) {
        if pid == me || !crate::procs::same_namespaces(proc_root, pid, &["pid"]) {
            continue;
        }
        let Ok(ns) = std::fs::read_link(proc_root.join(pid.to_string()).join("ns/mnt")) else {
            continue;
        };
        let ns = ns.to_string_lossy().into_owned();
        if !s.namespaces.contains_key(&ns) {
            let points = mountinfo::read_of(proc_root, pid)
                .map(|e| {
                    e.into_iter()
                        .filter(|m| m.major_minor == fs)
                        .map(|m| m.mount_point)
                        .collect()
                })
                .unwrap_or_default();
            s.namespaces.insert(
                ns.clone(),
                Namespace {
                    ns: ns.clone(),
                    pid,
                    points,
                    ours: ns == ours,
                },
            );
        }
        s.of.insert(pid, ns);
    }
    s
}

/// Every mount namespace of our PID namespace where `fs` is mounted.
pub fn namespaces(proc_root: &Path, fs: Fs, me: u32) -> Vec<Namespace> {
    scan(proc_root, fs, me)
        .namespaces
        .into_values()
        .filter(|n| !n.points.is_empty())
        .collect()
}

/// Pids (other than `me`, in our PID namespace) using `fs`: their working
/// directory, root, executable or an open file under one of its mount
/// points as their own mount namespace has them, or a mapping of one of
/// its files.
pub fn users(proc_root: &Path, fs: Fs, me: u32) -> Vec<u32> {
    let s = scan(proc_root, fs, me);
    let dev = format!("{:02x}:{:02x}", fs.0, fs.1);
    let mut out = Vec::new();
    for (pid, ns) in &s.of {
        let points = &s.namespaces[ns].points;
        let base = proc_root.join(pid.to_string());
        let link_under = |p: &Path| {
            std::fs::read_link(p).is_ok_and(|t| {
                let t = t.to_string_lossy();
                points.iter().any(|d| under(&t, d))
            })
        };
        let mut hit = !points.is_empty()
            && (["cwd", "root", "exe"]
                .iter()
                .any(|n| link_under(&base.join(n)))
                || std::fs::read_dir(base.join("fd"))
                    .is_ok_and(|fds| fds.filter_map(|e| e.ok()).any(|e| link_under(&e.path()))));
        // A mapping names its device, so even one outliving its mount is
        // found (maps: "address perms offset dev inode path").
        if !hit && let Ok(maps) = std::fs::read_to_string(base.join("maps")) {
            hit = maps
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3))
                .any(|d| d == dev);
        }
        if hit {
            out.push(*pid);
        }
    }
    out
}

/// Whether `pid` still exists and is not a zombie (a zombie holds no
/// files: it is only waiting for its parent).
pub fn alive(proc_root: &Path, pid: u32) -> bool {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))
        .ok()
        .and_then(|st| {
            st.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s != "Z"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_directory_and_not_beside_it() {
        assert!(under("/srv/mail", "/srv/mail"));
        assert!(under("/srv/mail/queue/x", "/srv/mail"));
        assert!(under("/srv/mail/x (deleted)", "/srv/mail"));
        assert!(!under("/srv/mailbox", "/srv/mail"));
    }

    #[test]
    fn a_process_with_its_cwd_on_a_filesystem_is_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .current_dir(&d)
            .spawn()
            .unwrap();
        let fs = {
            use std::os::unix::fs::MetadataExt;
            let dev = std::fs::metadata(&d).unwrap().dev();
            (
                nix::sys::stat::major(dev) as u32,
                nix::sys::stat::minor(dev) as u32,
            )
        };
        let found = users(Path::new("/proc"), fs, std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
    }

    #[test]
    fn a_zombie_or_a_missing_pid_holds_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("7")).unwrap();
        std::fs::write(d.path().join("7/stat"), "7 (a (b) c) Z 1 7").unwrap();
        std::fs::create_dir_all(d.path().join("8")).unwrap();
        std::fs::write(d.path().join("8/stat"), "8 (sync) D 1 8").unwrap();
        assert!(!alive(d.path(), 7));
        assert!(alive(d.path(), 8));
        assert!(!alive(d.path(), 9));
    }
}
