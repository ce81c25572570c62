//! Whether mailha may be removed from this node now: the package's prerm
//! asks (`mailha package may-remove`) before dpkg takes the binary away.
//! Removing it from a cluster member that runs mailha's resources would
//! pull their agents out from under Pacemaker (a failed monitor, a stop
//! that cannot run, a fence), and removing it under a running lease keeper
//! would orphan the split-brain guard. The decision is pure (`verdict`);
//! `observe` gathers what it needs, every command under a deadline.

use crate::status::Status;
use std::time::Duration;

/// What the cluster stack says, as crm_mon answered.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// No cluster stack runs here (crm_mon: "Not connected"), or
    /// Pacemaker's tools are not installed at all.
    NotRunning,
    /// The state crm_mon printed.
    Up(Box<Status>),
    /// crm_mon failed otherwise or overran its deadline: no way to tell.
    Unknown(String),
}

/// What the prerm looked at.
#[derive(Debug, Clone)]
pub struct Observed {
    /// This node's name in the cluster (`crm_node -n`, else the host name).
    pub node: String,
    pub cluster: Cluster,
    /// The local lease keeper's role when it answers on its socket.
    pub keeper: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Why not, and what to do first.
    Refuse(String),
}

/// Whether a resource runs one of mailha's agents.
pub fn is_mailhas(agent: &str) -> bool {
    agent.starts_with("ocf:mailha:") || agent == format!("stonith:{}", crate::fence::NAME)
}

/// What to do before removing, on this node.
fn advice(node: &str) -> String {
    format!(
        "First move the cluster's work off this node and stop its stack: \
         `crm_standby --node {node} --update on`, wait until `crm_mon -1` shows nothing \
         running on {node}, then stop Pacemaker and Corosync (`systemctl stop pacemaker corosync` \
         or `service pacemaker stop; service corosync stop`) and the lease keeper \
         (`systemctl stop mailha-lease` or `service mailha-lease stop`). \
         To remove it anyway, set MAILHA_REMOVE_ANYWAY=yes."
    )
}

pub fn verdict(o: &Observed) -> Verdict {
    let mut why = Vec::new();
    match &o.cluster {
        Cluster::NotRunning => {}
        Cluster::Unknown(e) => why.push(format!(
            "cannot tell whether this node runs mailha's resources (crm_mon: {e})"
        )),
        Cluster::Up(st) => {
            let member = st.nodes.iter().any(|n| n.name == o.node && n.online);
            let ours: Vec<String> = st
                .resources
                .iter()
                .filter(|r| is_mailhas(&r.agent) && r.nodes.contains(&o.node))
                .map(|r| format!("{} ({})", r.id, r.agent))
                .collect();
            if member && !ours.is_empty() {
                why.push(format!(
                    "this node ({}) is a cluster member running mailha's resources: {}",
                    o.node,
                    ours.join(", ")
                ));
            }
        }
    }
    if let Some(role) = &o.keeper {
        why.push(format!(
            "the lease keeper runs on this node (role: {role}); stopped while it holds the lease, \
             the watchdog resets the machine"
        ));
    }
    if why.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Refuse(format!(
            "not removing the package: {}.\n{}",
            why.join("; "),
            advice(&o.node)
        ))
    }
}

/// crm_mon's exit code when no cluster stack answers (CRM_EX_NOT_CONNECTED).
const NOT_CONNECTED: i32 = 102;

/// Looks at this node: crm_node, crm_mon, the keeper's socket, each with
/// its own deadline. crm_mon honours Pacemaker's `CIB_file`, so the
/// check can be pointed at a saved CIB.
pub fn observe() -> Observed {
    use crate::exec::{ExecError, run};
    let node = run(&["crm_node", "-n"], &[], None, Duration::from_secs(5))
        .ok()
        .filter(|o| o.success() && !o.stdout.trim().is_empty())
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default()
        });
    let cluster = match run(
        &["crm_mon", "--one-shot", "--output-as=xml", "--include=all"],
        &[],
        None,
        Duration::from_secs(20),
    ) {
        Ok(o) if o.success() => match crate::status::parse(&o.stdout) {
            Ok(st) => Cluster::Up(Box::new(st)),
            Err(e) => Cluster::Unknown(e.to_string()),
        },
        Ok(o) if o.code == Some(NOT_CONNECTED) => Cluster::NotRunning,
        Ok(o) => Cluster::Unknown(format!("exit {:?}: {}", o.code, o.stderr.trim())),
        Err(ExecError::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Cluster::NotRunning
        }
        Err(e) => Cluster::Unknown(e.to_string()),
    };
    let keeper =
        crate::lease::client::status(crate::lease::client::DEFAULT_SOCKET, Duration::from_secs(3))
            .ok()
            .map(|s| s.role);
    Observed {
        node,
        cluster,
        keeper,
    }
}
