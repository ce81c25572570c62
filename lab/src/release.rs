//! Which Debian release the lab's nodes run (issue 20): the host's own
//! (its root filesystem is the nodes' lower layer) or another one, whose
//! root tree `debootstrap` makes once into a cache (the lower layer then).
//! The archive comes from the host's apt configuration: the first Debian
//! source the host itself installs from.

use super::cmd::Cmd;
use super::{Lab, LabError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The releases the lab knows how to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    /// Debian 12: Pacemaker 2.1.5, Dovecot 2.3, MariaDB 10.11.
    #[default]
    Bookworm,
    /// Debian 13: Pacemaker 3.0.0, Dovecot 2.4, MariaDB 11.8.
    Trixie,
}

pub const SUPPORTED: &[Release] = &[Release::Bookworm, Release::Trixie];

/// Where release trees are kept between labs (rebuilt only when asked).
pub const CACHE_DIR: &str = "/var/cache/mailha-lab";

/// What a node needs beyond debootstrap's minimal base: systemd to boot,
/// the cluster engine and its stock agents, the mail stack, and the
/// programs the lab and mailha's agents run inside a node.
pub const NODE_PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "dbus",
    "iproute2",
    "nftables",
    "iputils-ping",
    "openssh-server",
    "openssh-client",
    "corosync",
    "pacemaker",
    "pacemaker-cli-utils",
    "resource-agents",
    "postfix",
    "dovecot-imapd",
    "dovecot-pop3d",
    "mariadb-server",
    "memcached",
    "e2fsprogs",
    "procps",
    "psmisc",
    "util-linux",
    "kmod",
    "fuse3",
    // the nfs-hang drill's stand-in for a hung NFS mount
    "bindfs",
    "strace",
    "ca-certificates",
    "man-db",
];

/// In a tree, the package list it was made from (a cached tree made from
/// another list is made anew).
const TREE_STAMP: &str = "etc/mailha-lab-tree";

fn tree_stamp() -> String {
    let mut s = NODE_PACKAGES.join("\n");
    s.push('\n');
    s
}

/// Whether the cached `tree` is whole and made from today's package list.
fn cached_tree_fits(tree: &Path) -> bool {
    tree.join("etc/os-release").exists()
        && std::fs::read_to_string(tree.join(TREE_STAMP)).ok() == Some(tree_stamp())
}

/// debootstrap fetches and unpacks some 150 packages: a few minutes on a
/// good link; the bound is for an archive that stops answering.
const DEBOOTSTRAP_DEADLINE: Duration = Duration::from_secs(1800);

impl Release {
    pub fn parse(name: &str) -> Result<Release, String> {
        SUPPORTED
            .iter()
            .copied()
            .find(|r| r.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown release {name:?}: the lab runs {}",
                    SUPPORTED
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }

    /// Dovecot's configuration language in this release.
    pub fn dovecot_24(self) -> bool {
        self == Release::Trixie
    }

    /// The unit that runs Postfix's master: Debian 12's `postfix.service`
    /// is a oneshot wrapper around `postfix@-.service`; Debian 13's runs
    /// the master itself and conflicts with `postfix@-.service` (whose
    /// assertion then fails).
    pub fn postfix_unit(self) -> &'static str {
        match self {
            Release::Bookworm => "postfix@-.service",
            Release::Trixie => "postfix.service",
        }
    }
}

/// The codename in an os-release file (`VERSION_CODENAME=`).
pub fn codename(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The Debian archive the host installs `codename` from, in its apt
/// sources: deb822 stanzas (`URIs:` with `Suites:` naming the codename) or
/// one-line `deb URI SUITE ...` entries. Security and other suites
/// (`codename-updates`) do not count: the release's main suite does.
pub fn mirror(sources: &str, codename: &str) -> Option<String> {
    for stanza in sources.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
                .map(str::to_string)
        };
        let types = field("Types:").unwrap_or_default();
        let suites = field("Suites:").unwrap_or_default();
        if types.split_whitespace().any(|t| t == "deb")
            && suites.split_whitespace().any(|s| s == codename)
            && let Some(uris) = field("URIs:")
            && let Some(first) = uris.split_whitespace().next()
        {
            return Some(first.to_string());
        }
    }
    sources.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        if w.next()? != "deb" {
            return None;
        }
        let mut uri = w.next()?;
        if uri.starts_with('[') {
            // options: `deb [signed-by=...] URI SUITE`
            uri = w.find(|x| !x.starts_with('[') && !x.ends_with(']'))?;
        }
        (w.next()? == codename).then(|| uri.to_string())
    })
}

/// The host's apt sources, concatenated (one-line and deb822 files).
pub fn host_sources(etc_apt: &Path) -> String {
    let mut text = std::fs::read_to_string(etc_apt.join("sources.list")).unwrap_or_default();
    if let Ok(dir) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut files: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        files.sort();
        for f in files {
            text.push_str("\n\n");
            text.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
        }
    }
    text
}

/// The host's own release.
pub fn host_codename() -> Option<String> {
    codename(&std::fs::read_to_string("/etc/os-release").ok()?)
}

impl Lab<'_> {
    /// The nodes' lower layer for `release`: the host's root when it is
    /// the host's release, else its cached tree, made first when missing
    /// (or when `rebuild`). A failed build leaves nothing behind.
    pub fn release_root(&self, release: Release, rebuild: bool) -> Result<PathBuf, LabError> {
        if host_codename().as_deref() == Some(release.name()) {
            return Ok(PathBuf::from("/"));
        }
        let cache = Path::new(CACHE_DIR);
        let tree = cache.join(release.name());
        let partial = cache.join(format!("{}.partial", release.name()));
        // A tree is what its package list made it: one made from another
        // list (an older lab's) lacks what the lab now runs in its nodes.
        if !rebuild && cached_tree_fits(&tree) {
            return Ok(tree);
        }
        if !Path::new("/usr/sbin/debootstrap").exists() {
            return Err(LabError::Prerequisites(vec![
                "debootstrap (to make the nodes' release tree; scripts/install-deps.sh)".into(),
            ]));
        }
        let host = host_codename().unwrap_or_default();
        let archive = mirror(&host_sources(Path::new("/etc/apt")), &host).ok_or_else(|| {
            LabError::Cluster(format!(
                "making the {} tree: no Debian archive for {host:?} in the host's apt sources (/etc/apt/sources.list*)",
                release.name()
            ))
        })?;
        std::fs::create_dir_all(cache).map_err(LabError::io(cache))?;
        let _ = std::fs::remove_dir_all(&partial);
        let o = self.runner.run(
            &Cmd::new("debootstrap")
                .args(["--variant=minbase", "--include"])
                .arg(NODE_PACKAGES.join(","))
                .arg(release.name())
                .arg(partial.display().to_string())
                .arg(&archive)
                .deadline(DEBOOTSTRAP_DEADLINE),
        );
        let failed = match &o {
            Ok(o) if o.success() => None,
            Ok(o) => Some(format!(
                "{}{}",
                tail_lines(&o.stdout, 5),
                tail_lines(&o.stderr, 5)
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(LabError::Cluster(format!(
                "making the {} tree with debootstrap from {archive}: {why}",
                release.name()
            )));
        }
        let stamp = partial.join(TREE_STAMP);
        std::fs::write(&stamp, tree_stamp()).map_err(LabError::io(&stamp))?;
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::rename(&partial, &tree).map_err(LabError::io(&tree))?;
        Ok(tree)
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_tree_from_another_package_list_is_made_anew() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        assert!(!cached_tree_fits(tree), "no tree yet");
        std::fs::write(tree.join("etc/os-release"), "ID=debian\n").unwrap();
        assert!(!cached_tree_fits(tree), "a tree from before the stamp");
        std::fs::write(tree.join(TREE_STAMP), "systemd\ncorosync\n").unwrap();
        assert!(!cached_tree_fits(tree), "a tree from an older list");
        std::fs::write(tree.join(TREE_STAMP), tree_stamp()).unwrap();
        assert!(cached_tree_fits(tree));
    }

    #[test]
    fn an_unknown_release_is_refused_with_the_supported_ones() {
        assert_eq!(Release::parse("trixie"), Ok(Release::Trixie));
        let e = Release::parse("sid").unwrap_err();
        assert!(e.contains("bookworm, trixie"), "{e}");
    }

    #[test]
    fn the_archive_is_the_hosts_main_suite_in_deb822() {
        let s = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                 Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror(s, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror(s, "trixie"), None);
    }

    #[test]
    fn the_archive_is_found_in_one_line_sources_too() {
        let s = "# comment\ndeb-src http://src.example/debian bookworm main\n\
                 deb [signed-by=/k.gpg] http://one.example/debian bookworm main\n";
        assert_eq!(
            mirror(s, "bookworm").as_deref(),
            Some("http://one.example/debian")
        );
    }

    #[test]
    fn the_codename_comes_from_os_release() {
        assert_eq!(
            codename("NAME=\"Debian\"\nVERSION_CODENAME=trixie\n").as_deref(),
            Some("trixie")
        );
        assert_eq!(codename("NAME=x\n"), None);
    }
}
