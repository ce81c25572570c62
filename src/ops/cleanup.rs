//! `mailha cleanup [SERVICE] [--node NODE]`: forget failures (fail counts
//! and failed operations) without touching what runs. Each pair of
//! resource and node with something recorded gets its own
//! `crm_resource --cleanup --resource R --node N`: Pacemaker then forgets
//! that history and probes R on N once, which restarts nothing that runs
//! (a refresh of everything, or a cleanup of a clone's parent, is what
//! re-probes and disturbs more than was asked).

use crate::status::Status;

/// What is recorded against one resource on one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    pub resource: String,
    pub node: String,
    pub fail_count: u32,
    /// The failed operations, as `task: exit (reason)`.
    pub failed: Vec<String>,
}

impl Recorded {
    pub fn argv(&self) -> Vec<String> {
        [
            "crm_resource",
            "--cleanup",
            "--resource",
            &self.resource,
            "--node",
            &self.node,
        ]
        .map(str::to_string)
        .to_vec()
    }
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}: ", self.resource, self.node)?;
        let mut parts = Vec::new();
        if self.fail_count > 0 {
            parts.push(format!("fail count {}", self.fail_count));
        }
        parts.extend(self.failed.iter().cloned());
        f.write_str(&parts.join(", "))
    }
}

/// An anonymous clone's instances show as `ping:0`, `ping:1` in places:
/// the primitive is what crm_resource takes.
fn primitive(id: &str) -> &str {
    id.split_once(':').map_or(id, |(p, _)| p)
}

fn entry(out: &mut Vec<Recorded>, r: &str, n: &str) -> usize {
    let r = primitive(r);
    match out.iter().position(|e| e.resource == r && e.node == n) {
        Some(i) => i,
        None => {
            out.push(Recorded {
                resource: r.to_string(),
                node: n.to_string(),
                fail_count: 0,
                failed: Vec::new(),
            });
            out.len() - 1
        }
    }
}

/// Everything recorded, for `resource` (a primitive id) and `node` when
/// given; sorted by resource, then node.
pub fn recorded(st: &Status, resource: Option<&str>, node: Option<&str>) -> Vec<Recorded> {
    let wanted = |r: &str, n: &str| {
        resource.is_none_or(|x| primitive(r) == x) && node.is_none_or(|x| n == x)
    };
    let mut out: Vec<Recorded> = Vec::new();
    for h in st.history.iter().filter(|h| h.fail_count > 0) {
        if wanted(&h.resource, &h.node) {
            let i = entry(&mut out, &h.resource, &h.node);
            out[i].fail_count = out[i].fail_count.max(h.fail_count);
        }
    }
    for f in &st.failures {
        if wanted(&f.resource, &f.node) {
            let i = entry(&mut out, &f.resource, &f.node);
            let reason = if f.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.reason)
            };
            out[i]
                .failed
                .push(format!("{}: {}{reason}", f.task, f.exit));
        }
    }
    out.sort_by(|a, b| (&a.resource, &a.node).cmp(&(&b.resource, &b.node)));
    out
}

/// A node name the operator typed must be a node of the cluster.
pub fn check_node(st: &Status, node: &str) -> Result<(), String> {
    let names: Vec<&str> = st.nodes.iter().map(|n| n.name.as_str()).collect();
    if names.contains(&node) {
        return Ok(());
    }
    let hint = match crate::config::diag::did_you_mean(node, &names) {
        Some(s) => format!("did you mean {s:?}?"),
        None => format!("the nodes are {}", names.join(", ")),
    };
    Err(format!(
        "no node is named {node:?} in this cluster ({hint})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Failure, NodeHistory, NodeState};

    fn st() -> Status {
        Status {
            nodes: ["mail1", "mail2"]
                .map(|n| NodeState {
                    name: n.into(),
                    online: true,
                    standby: false,
                    maintenance: false,
                    unclean: false,
                    more: Default::default(),
                })
                .to_vec(),
            history: vec![
                NodeHistory {
                    node: "mail1".into(),
                    resource: "svc-postfix".into(),
                    fail_count: 2,
                    migration_threshold: Some(3),
                    last_monitor: None,
                },
                NodeHistory {
                    node: "mail1".into(),
                    resource: "vip".into(),
                    fail_count: 0,
                    migration_threshold: Some(3),
                    last_monitor: None,
                },
                NodeHistory {
                    node: "mail2".into(),
                    resource: "ping:1".into(),
                    fail_count: 1,
                    migration_threshold: None,
                    last_monitor: None,
                },
            ],
            failures: vec![Failure {
                resource: "svc-postfix".into(),
                node: "mail1".into(),
                task: "monitor".into(),
                exit: "not running".into(),
                reason: "no master process".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn each_resource_with_something_recorded_is_cleaned_on_its_node_only() {
        let r = recorded(&st(), None, None);
        let shown: Vec<String> = r.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            shown,
            [
                "ping on mail2: fail count 1",
                "svc-postfix on mail1: fail count 2, monitor: not running (no master process)"
            ]
        );
        assert_eq!(
            r[1].argv(),
            [
                "crm_resource",
                "--cleanup",
                "--resource",
                "svc-postfix",
                "--node",
                "mail1"
            ]
        );
    }

    #[test]
    fn a_service_or_a_node_narrows_what_is_forgotten() {
        assert_eq!(recorded(&st(), Some("ping"), None).len(), 1);
        assert_eq!(recorded(&st(), Some("svc-postfix"), Some("mail2")), []);
        assert_eq!(
            recorded(&st(), None, Some("mail1"))[0].resource,
            "svc-postfix"
        );
        assert_eq!(recorded(&st(), Some("vip"), None), [], "nothing recorded");
    }

    #[test]
    fn an_unknown_node_is_refused_with_a_suggestion() {
        let e = check_node(&st(), "mial1").unwrap_err();
        assert!(e.contains("did you mean \"mail1\""), "{e}");
        assert!(check_node(&st(), "mail2").is_ok());
    }
}
