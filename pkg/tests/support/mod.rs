//! What the package tests share: where the built packages are, the
//! install plan as (path, mode, link target) rows, and the skip rule
//! (SKIPPED without the package or a tool, FAILS in CI).

#![allow(dead_code)]

/// The product's test helpers (deadlines, the skip rule's wording).
#[path = "../../../tests/common/mod.rs"]
pub mod common;

use mailha::install::{Content, plan};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                mailha_pkg::repo().join(t)
            }
        })
        .unwrap_or_else(|| mailha_pkg::repo().join("target"))
}

pub fn version() -> String {
    mailha_pkg::man::version()
}

pub fn deb_path() -> PathBuf {
    target_dir().join(format!("debian/mailha_{}-1_amd64.deb", version()))
}

pub fn rpm_path() -> PathBuf {
    target_dir().join(format!("rpm/mailha-{}-1.x86_64.rpm", version()))
}

/// Outside CI a missing prerequisite is SKIPPED with the reason; in CI
/// (env `CI`, where scripts/test.sh builds the packages and
/// scripts/install-deps.sh installs the tools) it fails.
pub fn ready(what: &str, files: &[&Path], root: bool) -> bool {
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.exists())
        .map(|f| f.display().to_string())
        .collect();
    let is_root = nix::unistd::geteuid().is_root();
    if missing.is_empty() && (is_root || !root) {
        if let Some(p) = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "deb" || e == "rpm"))
        {
            eprintln!("testing {} (scripts/build-deb.sh rebuilds it)", p.display());
        }
        return true;
    }
    let why = format!(
        "missing {missing:?}{} (scripts/build-deb.sh builds the packages, scripts/install-deps.sh installs the tools)",
        if root && !is_root { ", not root" } else { "" }
    );
    if std::env::var_os("CI").is_some() {
        panic!("CI must run {what}: {why}");
    }
    eprintln!("SKIPPED: {what}: {why}");
    false
}

/// One path of a package or an install: its mode (permission bits) and,
/// for a symlink, its target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub path: String,
    pub mode: u32,
    pub link: Option<String>,
}

/// The files and symlinks of the install plan (its directories are made
/// by the maintainer scripts, not shipped).
pub fn plan_rows() -> Vec<Row> {
    let mut v: Vec<Row> = plan()
        .into_iter()
        .filter_map(|e| match e.content {
            Content::Binary | Content::File(_) => Some(Row {
                path: e.path,
                mode: e.mode,
                link: None,
            }),
            Content::Link(t) => Some(Row {
                path: e.path,
                mode: 0o777,
                link: Some(t),
            }),
            Content::Dir | Content::Spool => None,
        })
        .collect();
    v.sort();
    v
}

/// Debian's own files, in the .deb only: policy wants them, and the rpm
/// carries the same facts in its header.
pub const DEBIAN_ONLY: &[&str] = &[
    "/usr/share/doc/mailha/copyright",
    "/usr/share/doc/mailha/changelog.Debian.gz",
    "/usr/share/lintian/overrides/mailha",
];

/// `rwxr-xr-x` as 0o755.
pub fn mode_of(perms: &str) -> u32 {
    perms
        .chars()
        .skip(1)
        .take(9)
        .fold(0, |m, c| (m << 1) | u32::from(c != '-'))
}

/// Runs `argv` with a deadline (two minutes); fails the test unless it
/// succeeds.
pub fn run(argv: &[&str]) -> std::process::Output {
    let o = common::run_with_deadline(
        std::process::Command::new(argv[0]).args(&argv[1..]),
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "{argv:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Whether a command (a maintainer script's line split in words, or an
/// executed argv) starts, stops, restarts or kills a service: the lease
/// keeper above all. `systemctl daemon-reload` does none of that.
pub fn starts_or_stops(words: &[&str]) -> bool {
    const VERBS: &[&str] = &[
        "start",
        "stop",
        "restart",
        "try-restart",
        "reload",
        "force-reload",
        "kill",
    ];
    // A script quotes words and ends commands with `;`: compare the bare word.
    let words: Vec<&str> = words
        .iter()
        .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | ';' | '(' | ')')))
        .collect();
    if words.first().is_some_and(|w| w.starts_with('#')) {
        return false;
    }
    words.iter().any(|w| {
        let prog = w.rsplit('/').next().unwrap_or("");
        matches!(
            prog,
            "invoke-rc.d"
                | "deb-systemd-invoke"
                | "start-stop-daemon"
                | "service"
                | "kill"
                | "pkill"
                | "killall"
        ) || w.starts_with("/etc/init.d/")
    }) || (words.iter().any(|w| w.ends_with("systemctl"))
        && words.iter().any(|w| VERBS.contains(w)))
        || words.windows(2).any(|w| w == ["lease", "keeper"])
}
