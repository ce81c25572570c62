//! `ocf:mailha:config`: the config sync's catch-up (`crate::configsync`)
//! as a cloned resource, one instance on every node.
//!
//! Who notices that a node missed an apply? Pacemaker does: it starts this
//! clone's instance on a node when the node joins the cluster (boot,
//! `service pacemaker start`, rejoining after a fence or a partition), and
//! only after the joining node received the cluster's CIB. Start then
//! brings this node's mailha.toml to the running config from that CIB
//! (only when the file is exactly an older generation or missing, and
//! only byte for byte) and records the node's generation. Why not the
//! others: the lease keeper runs only under lease fencing and must stay
//! the small thing the split-brain proof is about; a boot-path verb misses
//! a stack restarted by hand, and runs before the node has the CIB; a
//! monitor may create no process, and recording the generation in the CIB
//! needs one (crm_attribute).
//!
//! The monitor only checks that start ran (a marker on /run, gone with
//! a reboot): no process, no CIB read. Nothing is ordered after this
//! resource: the mail never waits for it, and a failed start here is an
//! attention line in `mailha status`, not an outage.

use crate::cib::xml::El;
use crate::configsync::{self, CatchUp, record};
use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use std::path::{Path, PathBuf};

pub const MARKER: &str = "/run/mailha/config-sync.active";

use ocf::check_plain_path as check_abs;

pub static PARAMS: &[Param] = &[
    Param::new(
        "config",
        ParamType::String,
        false,
        Some(crate::config::DEFAULT_PATH),
        "mailha.toml",
        "This node's config file, brought to the running config at start.",
        check_abs,
    ),
    Param::new(
        "authkey",
        ParamType::String,
        false,
        Some(crate::corosync::AUTHKEY_PATH),
        "cluster key",
        "The corosync authkey, which keys the config digests in the CIB.",
        check_abs,
    ),
    Param::new(
        "marker",
        ParamType::String,
        false,
        Some(MARKER),
        "marker file",
        "Left by start, removed by stop: what the monitor looks for (on /run, so gone after a reboot).",
        check_abs,
    ),
];

pub static ACTIONS: &[Action] = &[
    Action::once("start", 30),
    Action::once("stop", 10),
    Action::monitor(10, 60, 0),
    Action::once("validate-all", 5),
    Action::once("meta-data", 5),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "config",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "mailha's config sync",
    longdesc: "At start, brings this node's mailha.toml to the running config the CIB holds (written by `mailha apply`) when the file is an older generation or missing, and records the node's generation. Clone it: every node catches up when it joins.",
    params: PARAMS,
    actions: ACTIONS,
};

/// The node name Pacemaker runs this on: hostile input, so it must be one
/// of the CIB's own nodes.
fn this_node(env: &dyn Fn(&str) -> Option<String>, cib: &El) -> Result<String, OcfError> {
    let name = env("OCF_RESKEY_CRM_meta_on_node")
        .or_else(|| configsync::me_in_cib(cib, &crate::host::hostname()))
        .ok_or_else(|| {
            OcfError::configured("which node this is: no OCF_RESKEY_CRM_meta_on_node")
        })?;
    let known = cib
        .find("configuration")
        .and_then(|c| c.find("nodes"))
        .is_some_and(|n| {
            n.children
                .iter()
                .any(|x| x.get("uname") == Some(name.as_str()))
        });
    if !known {
        return Err(OcfError::configured(format!(
            "{name:?} is not a node of this cluster"
        )));
    }
    Ok(name)
}

/// Start: the catch-up, then this node's generation recorded.
pub fn start(
    local: &configsync::Local,
    marker: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<OcfStatus, OcfError> {
    let cib =
        crate::cluster::query().map_err(|e| OcfError::generic(format!("reading the CIB: {e}")))?;
    let me = this_node(env, &cib)?;
    let done = configsync::catch_up(local, &cib, &me)
        .map_err(|e| OcfError::generic(format!("catching up: {e}")))?;
    match &done {
        CatchUp::InSync { generation, wrote } => {
            if *wrote {
                eprintln!(
                    "{}: brought to generation {generation} from the CIB",
                    local.config.display()
                );
            }
            if record::node_generation(&cib, &me) != Some(*generation) {
                crate::cluster::set_node_attribute(&me, record::NODE_ATTR, &generation.to_string())
                    .map_err(|e| OcfError::generic(format!("recording the generation: {e}")))?;
            }
        }
        // Status on both nodes shows this node as behind (its recorded
        // generation); the operator's `mailha config pull` fetches what
        // the CIB does not hold.
        CatchUp::NeedsPeer { generation, why } => eprintln!(
            "{} stays behind generation {generation}: {why}: run `mailha config pull` here",
            local.config.display()
        ),
        CatchUp::LeftAlone(state) => {
            eprintln!("{} left as it is ({state:?})", local.config.display())
        }
    }
    crate::files::write_atomic(marker, b"", 0o600).map_err(|e| OcfError::generic(e.to_string()))?;
    Ok(OcfStatus::Success)
}

/// The agent's entry point: `config ACTION`.
pub fn main(
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
    _proc_root: &Path,
) -> Result<OcfStatus, OcfError> {
    let (params, _timeout) = match ocf::prepare(&SPEC, action, env) {
        Ok(p) => p,
        Err(done) => return done,
    };
    let path = |k: &str| PathBuf::from(params.get(k).cloned().unwrap_or_default());
    let marker = &path("marker");
    let local = configsync::Local {
        authkey: path("authkey"),
        // Beside the marker: the default is configsync::LOCK_PATH.
        lock: marker.with_file_name("config.lock"),
        ..configsync::Local::system(&path("config"))
    };
    match action {
        "validate-all" => Ok(OcfStatus::Success),
        "start" => start(&local, marker, env),
        "stop" => {
            match std::fs::remove_file(marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(OcfError::generic(format!("{}: {e}", marker.display())));
                }
                _ => {}
            }
            Ok(OcfStatus::Success)
        }
        _ => monitor(marker),
    }
}

/// Running = start ran since boot. No process, no CIB.
pub fn monitor(marker: &Path) -> Result<OcfStatus, OcfError> {
    if marker.exists() {
        Ok(OcfStatus::Success)
    } else {
        Err(OcfError::not_running("not started"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_name_from_pacemaker_must_be_one_of_the_cibs_nodes() {
        let cib =
            El::new("cib").child(El::new("configuration").child(
                El::new("nodes").child(El::new("node").attr("id", "1").attr("uname", "node1")),
            ));
        let env = |v: &'static str| {
            move |k: &str| (k == "OCF_RESKEY_CRM_meta_on_node").then(|| v.to_string())
        };
        assert_eq!(this_node(&env("node1"), &cib).unwrap(), "node1");
        let e = this_node(&env("../../etc"), &cib).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
    }

    #[test]
    fn the_monitor_only_looks_for_the_marker_start_leaves() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("active");
        assert_eq!(monitor(&m).unwrap_err().status, OcfStatus::NotRunning);
        std::fs::write(&m, "").unwrap();
        assert_eq!(monitor(&m).unwrap(), OcfStatus::Success);
    }

    #[test]
    fn hostile_parameters_are_refused() {
        for v in ["relative", "/a/../etc/shadow", "/a b"] {
            assert!(check_abs(v).is_err(), "{v:?}");
        }
    }
}
