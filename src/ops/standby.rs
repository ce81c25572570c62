//! `mailha standby NODE` / `online NODE` and `mailha stop` / `start`.
//!
//! A standby drains a node for patching: when it runs the mail, the mail
//! must have somewhere to go, by the same checks as a switchover
//! (`switchover::unfit`), or nothing changes. Stop and start act on the
//! root of the generated chain (lease -> mounts -> VIP -> services: its
//! `target-role`), so Pacemaker stops the services first and the lease
//! last, and starts them the other way round: the dependency order the
//! 2014 kit's README made the operator follow by hand.

use crate::status::Status;
use crate::switchover::{Keeper, Refusal};

pub use crate::switchover::in_stack;

/// What `mailha standby NODE` does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Standby {
    pub node: String,
    /// Where the mail goes first, when `node` runs it.
    pub mail_to: Option<String>,
}

pub fn standby_argv(node: &str, on: bool) -> Vec<String> {
    [
        "crm_attribute",
        "--node",
        node,
        "--name",
        "standby",
        "--update",
        if on { "on" } else { "off" },
        "--lifetime",
        "forever",
    ]
    .map(str::to_string)
    .to_vec()
}

fn node_of<'a>(st: &'a Status, node: &str) -> Result<&'a crate::status::NodeState, Refusal> {
    st.nodes.iter().find(|n| n.name == node).ok_or_else(|| {
        let names: Vec<&str> = st.nodes.iter().map(|n| n.name.as_str()).collect();
        let hint = match crate::config::diag::did_you_mean(node, &names) {
            Some(s) => format!("did you mean {s:?}?"),
            None => format!("the nodes are {}", names.join(", ")),
        };
        Refusal::UnknownNode {
            name: node.to_string(),
            hint,
        }
    })
}

/// The decision for `mailha standby NODE`: refused (nothing changed)
/// when the mail runs there and the other node could not take it.
pub fn standby(st: &Status, node: &str, keeper: &Keeper) -> Result<Option<Standby>, Refusal> {
    let n = node_of(st, node)?;
    if n.standby {
        return Ok(None);
    }
    if !st.quorate {
        return Err(Refusal::Cluster(
            "the cluster has no quorum: nothing would move".into(),
        ));
    }
    if st.active_node.as_deref() != Some(node) {
        return Ok(Some(Standby {
            node: node.to_string(),
            mail_to: None,
        }));
    }
    if st.maintenance_mode {
        return Err(Refusal::Cluster(
            "the cluster is in maintenance mode: the mail would not move".into(),
        ));
    }
    let peer = st
        .nodes
        .iter()
        .find(|x| x.name != node)
        .map(|x| x.name.clone())
        .ok_or_else(|| {
            Refusal::Cluster(format!(
                "{node} runs the mail and there is no other node to take it"
            ))
        })?;
    let why = crate::switchover::unfit(st, &peer, keeper);
    if !why.is_empty() {
        return Err(Refusal::Unfit {
            node: peer,
            reasons: why,
        });
    }
    Ok(Some(Standby {
        node: node.to_string(),
        mail_to: Some(peer),
    }))
}

/// The decision for `mailha online NODE`: None when it is not in standby.
pub fn online(st: &Status, node: &str) -> Result<Option<String>, Refusal> {
    let n = node_of(st, node)?;
    Ok(n.standby.then(|| node.to_string()))
}

/// Whether `node` is back as a place the mail can go: online, not in
/// standby, and its clones (the network check) running there.
pub fn is_back(st: &Status, node: &str) -> bool {
    st.nodes
        .iter()
        .any(|n| n.name == node && n.online && !n.standby)
        && st.resources.iter().filter(|r| r.clone.is_some()).all(|r| {
            // Each clone has an instance on the node, started.
            let clone = r.clone.as_deref();
            st.resources
                .iter()
                .filter(|x| x.clone.as_deref() == clone)
                .any(|x| x.role == "Started" && x.nodes.iter().any(|y| y == node))
        })
}

/// Whether nothing of the mail stack runs on `node` any more.
pub fn drained(st: &Status, node: &str) -> bool {
    !st.resources
        .iter()
        .any(|r| in_stack(r) && r.nodes.iter().any(|n| n == node))
}

/// The argv that stops (`Stopped`) or starts again (the meta-attribute
/// removed: the default role) the chain from `root`.
pub fn role_argv(root: &str, stop: bool) -> Vec<String> {
    let mut v: Vec<String> = ["crm_resource", "--resource", root, "--meta"]
        .map(str::to_string)
        .to_vec();
    if stop {
        v.extend(
            [
                "--set-parameter",
                "target-role",
                "--parameter-value",
                "Stopped",
            ]
            .map(str::to_string),
        );
    } else {
        v.extend(["--delete-parameter", "target-role"].map(str::to_string));
    }
    v
}

/// Whether the whole stack is stopped (no resource of it runs anywhere).
pub fn all_stopped(st: &Status) -> bool {
    !st.resources
        .iter()
        .any(|r| in_stack(r) && !r.nodes.is_empty())
}

/// One line per change of the stack between two looks, in the order
/// crm_mon lists the resources: what the operator sees step by step.
pub fn steps(before: &Status, now: &Status) -> Vec<String> {
    let place = |st: &Status, id: &str| -> Option<String> {
        st.resources
            .iter()
            .find(|r| r.id == id)
            .filter(|r| !r.nodes.is_empty())
            .map(|r| format!("{} on {}", r.role, r.nodes.join(", ")))
    };
    now.resources
        .iter()
        .filter(|r| in_stack(r))
        .filter_map(|r| {
            let (was, is) = (place(before, &r.id), place(now, &r.id));
            (was != is).then(|| match (was, is) {
                (_, Some(is)) => format!("{}: {is}", r.id),
                (Some(_), None) => format!("{}: stopped", r.id),
                (None, None) => unreachable!("equal"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Resource;

    fn res(id: &str, clone: Option<&str>, role: &str, nodes: &[&str]) -> Resource {
        Resource {
            id: id.into(),
            agent: "ocf:mailha:service".into(),
            role: role.into(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            failed: false,
            managed: true,
            clone: clone.map(str::to_string),
            fail_count: 0,
            more: Default::default(),
        }
    }

    #[test]
    fn steps_name_each_resource_that_moved_stopped_or_started() {
        let before = Status {
            resources: vec![
                res("vip", None, "Started", &["mail1"]),
                res("svc-postfix", None, "Started", &["mail1"]),
                res("ping", Some("ping-clone"), "Started", &["mail1"]),
            ],
            ..Default::default()
        };
        let now = Status {
            resources: vec![
                res("vip", None, "Started", &["mail2"]),
                res("svc-postfix", None, "Stopped", &[]),
                res("ping", Some("ping-clone"), "Stopped", &[]),
            ],
            ..Default::default()
        };
        assert_eq!(
            steps(&before, &now),
            ["vip: Started on mail2", "svc-postfix: stopped"]
        );
        assert!(steps(&now, &now).is_empty());
        assert!(!all_stopped(&now));
        assert!(drained(&now, "mail1"));
        assert!(!drained(&now, "mail2"));
    }

    #[test]
    fn stop_and_start_set_and_remove_the_roots_target_role() {
        assert_eq!(
            role_argv("lease", true).join(" "),
            "crm_resource --resource lease --meta --set-parameter target-role --parameter-value Stopped"
        );
        assert_eq!(
            role_argv("lease", false).join(" "),
            "crm_resource --resource lease --meta --delete-parameter target-role"
        );
        assert_eq!(
            standby_argv("mail1", true).join(" "),
            "crm_attribute --node mail1 --name standby --update on --lifetime forever"
        );
    }
}
