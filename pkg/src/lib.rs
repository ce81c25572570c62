//! mailha's packaging, beside the product (which never depends on it):
//! the man pages and shell completions generated from the code into
//! `dist/` (committed, embedded by the product's build.rs for `mailha
//! install`), the check that they and the package's version are in step
//! with the code (run by `scripts/build-deb.sh` before anything is built,
//! and by the tests), and the .rpm.

pub mod man;
pub mod rpm;

use clap::CommandFactory;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace's root (this crate lives in `pkg/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("pkg/ is inside the workspace")
        .to_path_buf()
}

/// The command that rewrites `dist/` from the code.
pub const REGENERATE: &str = "cargo run -p mailha-pkg -- gen";

/// Every generated file, by its path under `dist/`.
pub fn generated() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (name, text) in man::pages() {
        out.insert(format!("man/{name}"), text.into_bytes());
    }
    for (shell, name) in [
        (clap_complete::Shell::Bash, "mailha.bash"),
        (clap_complete::Shell::Zsh, "_mailha"),
        (clap_complete::Shell::Fish, "mailha.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut visible_cli(), "mailha", &mut buf);
        out.insert(format!("completions/{name}"), buf);
    }
    out
}

/// mailha's command tree without what `--help` hides (the verbs and
/// options only mailha itself runs: `io`, `package`, `config
/// receive|send`, `--authkey`): clap_complete completes hidden ones too,
/// and the man pages leave them out.
pub fn visible_cli() -> clap::Command {
    fn visible(cmd: &clap::Command) -> clap::Command {
        // The built command already has its help flag, version flag and
        // help verb as plain arguments and verbs: copied, not made again.
        let mut c = clap::Command::new(cmd.get_name().to_string())
            .disable_help_flag(true)
            .disable_version_flag(true)
            .disable_help_subcommand(true)
            .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
            .subcommands(
                cmd.get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(visible),
            );
        if let Some(a) = cmd.get_about() {
            c = c.about(a.clone());
        }
        if let Some(v) = cmd.get_version() {
            c = c.version(v.to_string());
        }
        c
    }
    let mut cmd = mailha::cli::Cli::command();
    // Global options are copied into every verb first.
    cmd.build();
    visible(&cmd)
}

/// The generated parts of `dist/` (the rest, `dist/debian/`, is written
/// by hand).
const GENERATED_DIRS: &[&str] = &["man", "completions"];

/// What in `dist` is out of step with the code, one line each, naming the
/// file: changed, missing, or no longer generated.
pub fn stale(dist: &Path) -> Vec<String> {
    let want = generated();
    let mut problems = Vec::new();
    for (rel, bytes) in &want {
        match std::fs::read(dist.join(rel)) {
            Ok(have) if have == *bytes => {}
            Ok(_) => problems.push(format!("dist/{rel} is out of date")),
            Err(_) => problems.push(format!("dist/{rel} is missing")),
        }
    }
    for sub in GENERATED_DIRS {
        for e in std::fs::read_dir(dist.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = format!("{sub}/{}", e.file_name().to_string_lossy());
            if !want.contains_key(&rel) {
                problems.push(format!("dist/{rel} is no longer generated"));
            }
        }
    }
    problems
}

/// Rewrites the generated parts of `dist`; returns what changed.
pub fn write(dist: &Path) -> std::io::Result<Vec<String>> {
    let want = generated();
    let mut changed = Vec::new();
    for sub in GENERATED_DIRS {
        std::fs::create_dir_all(dist.join(sub))?;
        for e in std::fs::read_dir(dist.join(sub))?.flatten() {
            let rel = format!("{sub}/{}", e.file_name().to_string_lossy());
            if !want.contains_key(&rel) {
                std::fs::remove_file(e.path())?;
                changed.push(rel);
            }
        }
    }
    for (rel, bytes) in want {
        let p = dist.join(&rel);
        if std::fs::read(&p).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&p, bytes)?;
            changed.push(rel);
        }
    }
    Ok(changed)
}

/// The version at the top of the package's changelog, e.g. `0.1.0-1`.
pub fn changelog_version(changelog: &str) -> Option<&str> {
    let first = changelog.lines().next()?;
    let open = first.find('(')?;
    let close = first[open..].find(')')? + open;
    Some(&first[open + 1..close])
}

/// The package's version problems: the changelog's newest entry must be
/// for the version mailha reports (Cargo.toml's).
pub fn version_problems(changelog: &str) -> Vec<String> {
    let want = man::version();
    match changelog_version(changelog) {
        Some(v) if v.split_once('-').map(|(up, _)| up).unwrap_or(v) == want => Vec::new(),
        Some(v) => vec![format!(
            "dist/debian/changelog: the newest entry is {v}, but mailha is {want}: add an entry for {want}-1 (dch -v {want}-1)"
        )],
        None => vec!["dist/debian/changelog: no version in its first line".into()],
    }
}

/// Everything that must be in step before a package is built.
pub fn check(repo: &Path) -> Vec<String> {
    let dist = repo.join("dist");
    let mut p = stale(&dist);
    match std::fs::read_to_string(dist.join("debian/changelog")) {
        Ok(c) => p.extend(version_problems(&c)),
        Err(e) => p.push(format!("dist/debian/changelog: {e}")),
    }
    p
}

/// No license has been chosen for mailha yet; the packages say so rather
/// than invent one (dist/debian/copyright says the same).
pub const LICENSE: &str = "LicenseRef-none-chosen";

/// The package's long description (the .deb's is in Cargo.toml).
pub const DESCRIPTION: &str = "mailha keeps a two-node mail server up on Corosync and Pacemaker: one \
typed config file, the generated cluster configuration, OCF agents for the mail daemons, shared \
storage and a disk lease, the fence agent fence_mailha, alert mail, and the operator CLI.";
