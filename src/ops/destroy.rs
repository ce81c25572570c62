//! `mailha destroy --yes-really-destroy` (the 2014 kit's `uninstall.sh
//! YeS`): the cluster taken down for good on both nodes, and nothing of
//! the mail's data touched. The order is what keeps it safe:
//! 1. the mail stack stopped through the cluster (`mailha stop`), so the
//!    storage agent unmounts and the lease resource releases, each as in
//!    a switchover;
//! 2. on each node (the peer first, over setup's SSH channel, a constant
//!    remote command): refused while a shared mount is up here or this
//!    node's keeper holds the lease; then Pacemaker, Corosync and the
//!    keeper stopped and disabled (a keeper that holds nothing disarms its
//!    watchdog as it exits), the Corosync key and configuration and
//!    Pacemaker's saved CIB removed, mailha's drop-ins on the services'
//!    units removed (the units stay disabled: say which).
//!
//! Kept: /etc/mailha (a later `mailha setup` starts again from it), the
//! package, the data device and everything on it.

use crate::setup::{InitSystem, Paths};
use std::path::PathBuf;

/// Why this node cannot be taken out yet; nothing was changed.
pub fn refusals(
    mounted: &[String],
    keeper_holds: Option<bool>,
    keeper_error: Option<&str>,
) -> Vec<String> {
    let mut why: Vec<String> = mounted
        .iter()
        .map(|m| format!("the shared data is mounted at {m}: mailha stop first"))
        .collect();
    if keeper_holds == Some(true) {
        why.push(
            "this node's lease keeper holds the lease: mailha stop first (the lease resource releases it)"
                .into(),
        );
    }
    if let Some(e) = keeper_error {
        why.push(format!(
            "this node's lease keeper does not answer ({e}): whether it holds the lease is unknown"
        ));
    }
    why
}

/// The commands that stop and disable the stack here, Pacemaker first.
pub fn stop_commands(init: InitSystem, lease: bool) -> Vec<Vec<String>> {
    let mut svcs = vec!["pacemaker", "corosync"];
    if lease {
        svcs.push("mailha-lease");
    }
    svcs.iter()
        .map(|s| match init {
            InitSystem::Systemd => ["systemctl", "disable", "--now", s]
                .map(str::to_string)
                .to_vec(),
            InitSystem::SysV => ["service", s, "stop"].map(str::to_string).to_vec(),
        })
        .collect()
}

/// The files that make this machine a cluster node: Corosync's key and
/// configuration, and the CIB Pacemaker saved (without which a start
/// would come back with the old configuration), its scheduler inputs.
pub fn files(paths: &Paths, listing: &dyn Fn(&PathBuf) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let mut v = vec![paths.corosync_conf(), paths.authkey()];
    for dir in ["var/lib/pacemaker/cib", "var/lib/pacemaker/pengine"] {
        v.extend(listing(&paths.root.join(dir)));
    }
    v
}

/// Regular files directly in `dir` (none when it does not exist).
pub fn regular_files(dir: &PathBuf) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_with_the_data_mounted_or_the_lease_held_is_refused() {
        assert!(refusals(&[], Some(false), None).is_empty());
        assert!(refusals(&[], None, None).is_empty(), "no lease guard");
        let why = refusals(&["/srv/data".into()], Some(true), None);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("mounted at /srv/data"));
        assert!(why[1].contains("holds the lease"));
        assert!(refusals(&[], None, Some("connection refused"))[0].contains("unknown"));
    }

    #[test]
    fn the_stack_stops_pacemaker_first_and_the_keeper_last() {
        let c = stop_commands(InitSystem::Systemd, true);
        let shown: Vec<String> = c.iter().map(|a| a.join(" ")).collect();
        assert_eq!(
            shown,
            [
                "systemctl disable --now pacemaker",
                "systemctl disable --now corosync",
                "systemctl disable --now mailha-lease"
            ]
        );
        assert_eq!(stop_commands(InitSystem::SysV, false).len(), 2);
    }

    #[test]
    fn the_cluster_files_are_corosyncs_and_pacemakers_never_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        let cib = dir.path().join("var/lib/pacemaker/cib");
        std::fs::create_dir_all(&cib).unwrap();
        std::fs::write(cib.join("cib.xml"), "x").unwrap();
        std::fs::write(cib.join("cib.xml.sig"), "x").unwrap();
        std::fs::create_dir_all(cib.join("sub")).unwrap();
        let f = files(&paths, &regular_files);
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.contains(&paths.authkey()) && f.contains(&cib.join("cib.xml")));
        assert!(
            !f.iter()
                .any(|p| p.starts_with(dir.path().join("etc/mailha")))
        );
    }
}
