//! `mailha install`: put this binary at /usr/sbin/mailha and a symlink for
//! every face (agents, alert agent) where Pacemaker looks for it. Driven
//! by `cli::FACES`, so a new agent is installed by adding its row there.
//! Idempotent; `root` is a parameter so tests install into a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const BIN_PATH: &str = "/usr/sbin/mailha";

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct InstallError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn at(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError {
        path: path.to_path_buf(),
        source,
    }
}

/// The directories `install` writes into (the binary's and every face's),
/// absolute, sorted, without duplicates: what the lab pins per node.
pub fn dirs() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = std::iter::once(BIN_PATH)
        .chain(crate::cli::FACES.iter().filter_map(|(_, _, l)| *l))
        .chain(BOOT_FILES.iter().map(|(p, _, _)| *p))
        .map(|p| p.rsplit_once('/').map(|(d, _)| d).unwrap_or("/"))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The files that start the lease keeper at boot, before the cluster
/// stack (path, text, mode); inert until `mailha setup` uses them.
const BOOT_FILES: &[(&str, &str, u32)] = &[
    (
        crate::lease::boot::INIT_SCRIPT_PATH,
        crate::lease::boot::INIT_SCRIPT,
        0o755,
    ),
    (
        crate::lease::boot::UNIT_PATH,
        crate::lease::boot::UNIT,
        0o644,
    ),
];

/// Installs `exe` under `root`; returns what it changed.
pub fn install(root: &Path, exe: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let mut changed = Vec::new();
    let bin = at(root, BIN_PATH);
    let new = std::fs::read(exe).map_err(err(exe))?;
    if std::fs::read(&bin).ok().as_deref() != Some(&new[..]) {
        let dir = bin.parent().expect("absolute");
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        // Copy then rename: a running agent keeps its old inode, and a
        // half-written binary is never executed.
        // Our own temporary name: two installs at once must not share one.
        let tmp = dir.join(format!(".mailha.install-tmp.{}", std::process::id()));
        std::fs::write(&tmp, &new).map_err(err(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(err(&tmp))?;
        std::fs::rename(&tmp, &bin).map_err(err(&bin))?;
        changed.push(bin.clone());
    }
    for (_, _, link) in crate::cli::FACES {
        let Some(link) = link else { continue };
        let l = at(root, link);
        if std::fs::read_link(&l).ok().as_deref() == Some(Path::new(BIN_PATH)) {
            continue;
        }
        let dir = l.parent().expect("absolute");
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(BIN_PATH, &l).map_err(err(&l))?;
        changed.push(l);
    }
    for (path, text, mode) in BOOT_FILES {
        let p = at(root, path);
        if std::fs::read(&p).ok().as_deref() == Some(text.as_bytes()) {
            continue;
        }
        crate::setup::write_atomic(&p, text.as_bytes(), *mode)
            .map_err(|e| err(&p)(std::io::Error::other(e.to_string())))?;
        changed.push(p);
    }
    // The alert spool, before any alert fires: Pacemaker runs the alert
    // agent as hacluster, which cannot create it under /var/lib/mailha
    // (the sender would, but only once its clone has started, and the
    // cluster's first events come before that).
    let spool = at(root, crate::alert::spool::DEFAULT_DIR);
    if !spool.join("pending").is_dir() {
        let s = crate::alert::spool::Spool::open(&spool)
            .map_err(|e| err(&spool)(std::io::Error::other(e.to_string())))?;
        s.share_with_pacemaker()
            .map_err(|e| err(&spool)(std::io::Error::other(e.to_string())))?;
        changed.push(spool);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_dirs_are_the_binarys_and_each_faces() {
        let d = dirs();
        assert!(d.contains(&"/usr/sbin"), "{d:?}");
        assert!(d.contains(&"/usr/lib/ocf/resource.d/mailha"), "{d:?}");
        assert!(d.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    }

    #[test]
    fn installing_twice_changes_nothing_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("built");
        std::fs::write(&exe, b"\x7fELF fake").unwrap();
        let root = dir.path().join("root");
        let first = install(&root, &exe).unwrap();
        assert!(first.contains(&root.join("usr/sbin/mailha")));
        assert_eq!(
            std::fs::read_link(root.join("usr/lib/mailha/alert_mailha")).unwrap(),
            Path::new("/usr/sbin/mailha")
        );
        let script = root.join("etc/init.d/mailha-lease");
        assert_eq!(
            std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(install(&root, &exe).unwrap().is_empty());
        let mode = std::fs::metadata(root.join("usr/sbin/mailha"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
