//! Processes using a mount, found through /proc without touching the
//! mount: readlink of /proc/PID/{cwd,root,exe,fd/*} and the paths in
//! /proc/PID/maps are answered by the kernel from its own structures, so
//! they work on a dead NFS server or a hung disk (unlike fuser/lsof's
//! stat() of the mount).

use std::path::Path;

fn under(p: &str, dir: &str) -> bool {
    let p = p.strip_suffix(" (deleted)").unwrap_or(p);
    p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Pids (other than `me`) with a file, directory or mapping under `dir`.
pub fn users(proc_root: &Path, dir: &str, me: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for pid in crate::procs::all(proc_root) {
        if pid == me {
            continue;
        }
        let base = proc_root.join(pid.to_string());
        let link_under = |name: &str| {
            std::fs::read_link(base.join(name))
                .map(|t| under(&t.to_string_lossy(), dir))
                .unwrap_or(false)
        };
        let mut hit = link_under("cwd") || link_under("root") || link_under("exe");
        if !hit && let Ok(fds) = std::fs::read_dir(base.join("fd")) {
            hit = fds.filter_map(|e| e.ok()).any(|e| {
                std::fs::read_link(e.path())
                    .map(|t| under(&t.to_string_lossy(), dir))
                    .unwrap_or(false)
            });
        }
        if !hit && let Ok(maps) = std::fs::read_to_string(base.join("maps")) {
            hit = maps
                .lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .any(|p| under(p, dir));
        }
        if hit {
            out.push(pid);
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
    fn a_process_with_its_cwd_in_a_directory_is_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .current_dir(&d)
            .spawn()
            .unwrap();
        let found = users(Path::new("/proc"), &d.to_string_lossy(), std::process::id());
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
