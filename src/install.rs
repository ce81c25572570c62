//! What mailha installs, as one plan (`plan()`), and `mailha install`,
//! which carries it out under a root. The package (`scripts/build-deb.sh`)
//! is made from a `mailha install --root` of the shipped binary, and its
//! postinst creates the same directories through `make_state_dirs`, so
//! both put exactly the same files in place (tested in `pkg/tests/`).
//!
//! The faces come from `faces::FACES`: a new agent is installed, packaged
//! and documented by adding its row there. Idempotent; `root` is a
//! parameter so tests and the package build install into a directory.

use crate::faces::{FACES, link_target};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use crate::faces::BIN_PATH;

/// Which path failed, and how.
pub type InstallError = crate::files::FileError;

use crate::files::io as err;

fn at(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// What is at a path of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The running binary itself.
    Binary,
    /// A symlink with this (relative) target.
    Link(String),
    /// A file with these bytes.
    File(&'static [u8]),
    /// A directory, created when missing (never emptied or re-moded).
    Dir,
    /// The alert spool (`alert::spool`), shared with Pacemaker's user.
    Spool,
}

/// One path of the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub content: Content,
    /// Something a node runs (the binary, its faces, the boot files), as
    /// opposed to documentation and state directories.
    pub runs: bool,
}

/// The config directory: secrets live there (0700).
pub const CONFIG_DIR: &str = "/etc/mailha";

/// Where documentation goes (Debian's and EL's path).
pub const DOC_DIR: &str = "/usr/share/doc/mailha";

/// The files that start the lease keeper at boot, before the cluster
/// stack, and the exporter's unit (path, text, mode); inert until
/// `mailha setup` (the keeper) or the operator (the exporter) enables them.
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
    (crate::exporter::UNIT_PATH, crate::exporter::UNIT, 0o644),
];

mod dist {
    include!(concat!(env!("OUT_DIR"), "/dist.rs"));
}

/// Documentation shipped as is: the pages the unit and the man pages
/// point to, and one example config per profile.
const DOCS: &[(&str, &[u8])] = &[
    ("lease.md", include_bytes!("../docs/lease.md")),
    ("alerts.md", include_bytes!("../docs/alerts.md")),
    ("status.md", include_bytes!("../docs/status.md")),
    ("config.md", include_bytes!("../docs/config.md")),
    ("metrics.md", include_bytes!("../docs/metrics.md")),
    (
        "examples/postfix.toml",
        include_bytes!("../examples/postfix.toml"),
    ),
    (
        "examples/eyou.toml",
        include_bytes!("../examples/eyou.toml"),
    ),
    (
        "examples/gateway.toml",
        include_bytes!("../examples/gateway.toml"),
    ),
    (
        "examples/2in1.toml",
        include_bytes!("../examples/2in1.toml"),
    ),
];

/// Where the monitoring files go: data for Prometheus and Grafana to
/// read, not documentation (Debian may strip /usr/share/doc).
pub const SHARE_DIR: &str = "/usr/share/mailha";

/// The alert rules and the dashboard for the exporter's metrics
/// (docs/metrics.md), by hand in `dist/`, tested by
/// `tests/prometheus_rules.rs`.
const MONITORING: &[(&str, &[u8])] = &[
    (
        "prometheus/mailha-rules.yml",
        include_bytes!("../dist/prometheus/mailha-rules.yml"),
    ),
    (
        "grafana/mailha-dashboard.json",
        include_bytes!("../dist/grafana/mailha-dashboard.json"),
    ),
];

/// Where each shell looks for vendor completions (Debian's paths), by the
/// name of the generated file under `dist/completions/`.
pub const COMPLETIONS: &[(&str, &str)] = &[
    (
        "mailha.bash",
        "/usr/share/bash-completion/completions/mailha",
    ),
    ("_mailha", "/usr/share/zsh/vendor-completions/_mailha"),
    (
        "mailha.fish",
        "/usr/share/fish/vendor_completions.d/mailha.fish",
    ),
];

/// Where a generated file of `dist/` is installed: `man/NAME.S.gz` in
/// section S's directory, a completion where its shell looks.
pub fn dist_dest(rel: &str) -> Option<String> {
    if let Some(page) = rel.strip_prefix("man/") {
        let section = page.strip_suffix(".gz")?.rsplit_once('.')?.1;
        return Some(format!("/usr/share/man/man{section}/{page}"));
    }
    let name = rel.strip_prefix("completions/")?;
    COMPLETIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| d.to_string())
}

/// Everything `mailha install` (and so the package) puts in place, in
/// install order: the binary before the links to it.
pub fn plan() -> Vec<Entry> {
    let mut v = vec![Entry {
        path: BIN_PATH.into(),
        mode: 0o755,
        content: Content::Binary,
        runs: true,
    }];
    v.extend(FACES.iter().filter_map(|f| f.link).map(|l| Entry {
        path: l.into(),
        mode: 0o777,
        content: Content::Link(link_target(l)),
        runs: true,
    }));
    v.extend(BOOT_FILES.iter().map(|(p, text, mode)| Entry {
        path: (*p).into(),
        mode: *mode,
        content: Content::File(text.as_bytes()),
        runs: true,
    }));
    v.extend(dist::DIST.iter().filter_map(|(rel, bytes)| {
        Some(Entry {
            path: dist_dest(rel)?,
            mode: 0o644,
            content: Content::File(bytes),
            runs: false,
        })
    }));
    v.extend(DOCS.iter().map(|(name, bytes)| Entry {
        path: format!("{DOC_DIR}/{name}"),
        mode: 0o644,
        content: Content::File(bytes),
        runs: false,
    }));
    v.extend(MONITORING.iter().map(|(name, bytes)| Entry {
        path: format!("{SHARE_DIR}/{name}"),
        mode: 0o644,
        content: Content::File(bytes),
        runs: false,
    }));
    v.push(Entry {
        path: CONFIG_DIR.into(),
        mode: 0o700,
        content: Content::Dir,
        runs: false,
    });
    v.push(Entry {
        path: crate::alert::spool::DEFAULT_DIR.into(),
        mode: 0o700,
        content: Content::Spool,
        runs: false,
    });
    v
}

/// The directories holding what a node runs (the binary's, every face's,
/// the boot files'), absolute, sorted, without duplicates: what the lab
/// pins per node.
pub fn dirs() -> Vec<String> {
    let mut v: Vec<String> = plan()
        .into_iter()
        .filter(|e| e.runs)
        .map(|e| {
            e.path
                .rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_else(|| "/".into())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Installs `exe` under `root`; returns what it changed.
pub fn install(root: &Path, exe: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let mut changed = Vec::new();
    for e in plan() {
        let p = at(root, &e.path);
        match &e.content {
            Content::Binary => {
                let new = std::fs::read(exe).map_err(err(exe))?;
                if std::fs::read(&p).ok().as_deref() == Some(&new[..]) {
                    continue;
                }
                // A new file renamed over the old one: a running agent or
                // keeper keeps its old inode, and a half-written binary is
                // never executed.
                crate::files::write_atomic(&p, &new, e.mode)?;
            }
            Content::Link(target) => {
                if std::fs::read_link(&p).ok().as_deref() == Some(Path::new(target)) {
                    continue;
                }
                let dir = p.parent().expect("absolute");
                std::fs::create_dir_all(dir).map_err(err(dir))?;
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink(target, &p).map_err(err(&p))?;
            }
            Content::File(bytes) => {
                let same_mode =
                    std::fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o7777 == e.mode);
                if same_mode && std::fs::read(&p).ok().as_deref() == Some(*bytes) {
                    continue;
                }
                crate::files::write_atomic(&p, bytes, e.mode)?;
            }
            Content::Dir | Content::Spool => {
                if !make_state_dir(root, &e)? {
                    continue;
                }
            }
        }
        changed.push(p);
    }
    Ok(changed)
}

/// Creates the plan's directories (the config directory, the alert
/// spool) under `root` where missing: what the package's postinst runs
/// (`mailha package configure`), since a package cannot ship a directory
/// owned by Pacemaker's user. Returns what it created.
pub fn make_state_dirs(root: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let mut made = Vec::new();
    for e in plan() {
        if matches!(e.content, Content::Dir | Content::Spool) && make_state_dir(root, &e)? {
            made.push(at(root, &e.path));
        }
    }
    Ok(made)
}

fn make_state_dir(root: &Path, e: &Entry) -> Result<bool, InstallError> {
    let p = at(root, &e.path);
    match e.content {
        Content::Dir => {
            if p.is_dir() {
                return Ok(false);
            }
            std::fs::create_dir_all(&p).map_err(err(&p))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(e.mode))
                .map_err(err(&p))?;
            Ok(true)
        }
        // The alert spool, before any alert fires: Pacemaker runs the alert
        // agent as hacluster, which cannot create it under /var/lib/mailha
        // (the sender would, but only once its clone has started, and the
        // cluster's first events come before that).
        Content::Spool => {
            if p.join("pending").is_dir() {
                return Ok(false);
            }
            let s = crate::alert::spool::Spool::open(&p)
                .map_err(|x| err(&p)(std::io::Error::other(x.to_string())))?;
            s.share_with_pacemaker()
                .map_err(|x| err(&p)(std::io::Error::other(x.to_string())))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_dirs_are_the_binarys_and_each_faces() {
        let d = dirs();
        assert!(d.contains(&"/usr/sbin".to_string()), "{d:?}");
        assert!(
            d.contains(&"/usr/lib/ocf/resource.d/mailha".to_string()),
            "{d:?}"
        );
        assert!(d.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(
            !d.iter()
                .any(|d| d.starts_with("/usr/share") || d == "/etc/mailha"),
            "documentation and state are not what a node runs: {d:?}"
        );
    }

    #[test]
    fn the_plan_has_every_face_man_pages_completions_and_examples() {
        let p = plan();
        let has = |path: &str| p.iter().any(|e| e.path == path);
        assert!(has("/usr/sbin/fence_mailha"));
        assert!(has("/usr/share/man/man8/mailha.8.gz"));
        assert!(has("/usr/share/man/man7/ocf_mailha_service.7.gz"));
        assert!(has("/usr/share/man/man5/mailha.toml.5.gz"));
        assert!(has("/usr/share/bash-completion/completions/mailha"));
        assert!(has("/usr/share/doc/mailha/examples/postfix.toml"));
        assert!(has("/usr/share/mailha/prometheus/mailha-rules.yml"));
        assert!(has("/usr/share/mailha/grafana/mailha-dashboard.json"));
        let mut paths: Vec<&str> = p.iter().map(|e| e.path.as_str()).collect();
        paths.sort();
        assert!(paths.windows(2).all(|w| w[0] != w[1]), "no path twice");
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
            Path::new("../../sbin/mailha")
        );
        assert_eq!(
            std::fs::read(root.join("usr/lib/mailha/alert_mailha")).unwrap(),
            b"\x7fELF fake",
            "the link resolves inside the root"
        );
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("etc/init.d/mailha-lease"), 0o755);
        assert_eq!(
            mode("usr/lib/systemd/system/mailha-exporter.service"),
            0o644
        );
        assert_eq!(mode("etc/mailha"), 0o700);
        assert_eq!(mode("usr/share/man/man8/mailha.8.gz"), 0o644);
        assert!(install(&root, &exe).unwrap().is_empty());
        assert_eq!(mode("usr/sbin/mailha"), 0o755);
    }

    #[test]
    fn a_man_page_goes_to_its_sections_directory_and_a_completion_where_its_shell_looks() {
        assert_eq!(
            dist_dest("man/mailha.toml.5.gz").as_deref(),
            Some("/usr/share/man/man5/mailha.toml.5.gz")
        );
        assert_eq!(
            dist_dest("completions/_mailha").as_deref(),
            Some("/usr/share/zsh/vendor-completions/_mailha")
        );
        assert_eq!(dist_dest("completions/unknown"), None);
    }
}
