//! `mailha switchover`: the whole mail stack moved to the other node by a
//! temporary location preference on the root of the generated chain
//! (lease -> mounts -> VIP -> services, INFINITY colocations: moving the
//! root moves everything colocated with it, in order), removed again once
//! the mail answers there or the move failed.
//!
//! Everything here is pure: crm_mon's XML (`status::parse`) and the CIB's
//! configuration in, the verdict and the commands out. `cli/switchover.rs`
//! runs them (Pacemaker's tools through `cluster`, each with a deadline)
//! and holds the guard that clears the constraint on every exit path.

use crate::cib::xml::El;
use crate::status::{LeftoverMove, Status};

/// Whether a location constraint id is one `crm_resource --move/--ban`
/// made (`cli-prefer-RSC`, `cli-ban-RSC-on-NODE`).
pub fn is_cli_constraint(id: &str) -> bool {
    id.starts_with("cli-prefer-") || id.starts_with("cli-ban-")
}

fn constraints(cib: &El) -> Option<&El> {
    let conf = if cib.name == "configuration" {
        cib
    } else {
        cib.find("configuration")?
    };
    conf.find("constraints")
}

/// The `cli-*` constraints in a CIB (or its configuration section), bans
/// and preferences alike. crm_mon lists only negative location
/// constraints (its `<bans>`), so a leftover `cli-prefer-*`, the one
/// `crm_resource --move` leaves, is seen only here.
pub fn leftovers(cib: &El) -> Vec<LeftoverMove> {
    constraints(cib)
        .map(|c| {
            c.children
                .iter()
                .filter(|l| l.name == "rsc_location")
                .filter(|l| l.get("id").is_some_and(is_cli_constraint))
                .map(|l| LeftoverMove {
                    id: l.get("id").unwrap_or_default().to_string(),
                    resource: l.get("rsc").unwrap_or_default().to_string(),
                    // A move with --lifetime puts the node in a rule.
                    node: l.get("node").unwrap_or("(rule)").to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_infinity(score: Option<&str>) -> bool {
    matches!(score, Some("INFINITY" | "+INFINITY"))
}

/// The resources to move so the whole stack follows: the roots of the
/// INFINITY colocations above the VIP (a resource colocated with nothing
/// but clones). In the generated CIB that is `lease` under lease fencing,
/// else each mount, else the VIP itself. Moving the VIP instead would
/// leave the scheduler to drag its primaries along by the dependent's
/// preference; moving the root is what the chain is built for.
pub fn roots(cib: &El) -> Result<Vec<String>, String> {
    let conf = if cib.name == "configuration" {
        Some(cib)
    } else {
        cib.find("configuration")
    }
    .ok_or("the CIB has no configuration")?;
    let resources = conf.find("resources").ok_or("the CIB has no resources")?;
    let vip = crate::cib::VIP_ID;
    if resources.by_id(vip).is_none() {
        return Err(format!(
            "the CIB has no resource {vip:?}: not a cluster mailha configured"
        ));
    }
    let clones: Vec<&str> = resources
        .children
        .iter()
        .filter(|r| r.name == "clone")
        .filter_map(|r| r.get("id"))
        .collect();
    let up: Vec<(&str, &str)> = constraints(cib)
        .map(|c| {
            c.children
                .iter()
                .filter(|x| x.name == "rsc_colocation" && is_infinity(x.get("score")))
                .filter_map(|x| Some((x.get("rsc")?, x.get("with-rsc")?)))
                .filter(|(_, with)| !clones.contains(with))
                .collect()
        })
        .unwrap_or_default();
    let (mut seen, mut todo, mut out) = (vec![vip], vec![vip], Vec::new());
    while let Some(r) = todo.pop() {
        let above: Vec<&str> = up
            .iter()
            .filter(|(d, _)| *d == r)
            .map(|(_, w)| *w)
            .collect();
        if above.is_empty() {
            out.push(r.to_string());
        }
        for w in above {
            if !seen.contains(&w) {
                seen.push(w);
                todo.push(w);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The VIP's address as the live CIB has it.
pub fn vip_address(cib: &El) -> Option<String> {
    cib.by_id(crate::cib::VIP_ID)?
        .children
        .iter()
        .filter(|c| c.name == "instance_attributes")
        .flat_map(|c| c.children.iter())
        .find(|p| p.get("name") == Some("ip"))
        .and_then(|p| p.get("value"))
        .map(str::to_string)
}

/// What the lease keeper of the node running the command says, when the
/// cluster fences by lease (the CIB has a `lease` resource). The keeper
/// answers only for its own node; of its peer it knows what the peer's
/// slot on the lease disk shows.
#[derive(Debug, Clone)]
pub enum Keeper {
    /// No lease in this cluster (or a saved CIB: no live keeper).
    NotUsed,
    Asked {
        /// The node running the command.
        me: String,
        answer: Result<Box<crate::lease::client::Status>, String>,
    },
}

impl Keeper {
    /// Why `target` could not take the lease, if it could not.
    fn unfit(&self, target: &str) -> Option<String> {
        let Keeper::Asked { me, answer } = self else {
            return None;
        };
        let s = match answer {
            Ok(s) => s,
            Err(e) if me == target => {
                return Some(format!(
                    "the lease keeper here ({me}) does not answer, so {target} cannot take the lease: {e}"
                ));
            }
            Err(e) => {
                return Some(format!(
                    "the lease keeper here ({me}) does not answer, so nothing tells whether {target} can take the lease: {e}"
                ));
            }
        };
        if me == target {
            let view = crate::status::KeeperView::of(Ok(&**s));
            return view
                .needs_attention()
                .then(|| format!("{target}: {}", view.line()));
        }
        if s.peer_fenced {
            Some(format!(
                "{target}'s lease keeper fenced itself (its lease slot says so): it takes no lease until restarted"
            ))
        } else if s.peer_dead {
            Some(format!(
                "{target}'s lease keeper is not running: its lease slot has not changed for {} s",
                s.peer_unchanged_ms.unwrap_or(0) / 1000
            ))
        } else {
            None
        }
    }
}

/// Why a switchover is not done; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no node is named {name:?} in this cluster ({hint})")]
    UnknownNode { name: String, hint: String },
    #[error("{node} cannot take the mail over: {}", reasons.join("; "))]
    Unfit { node: String, reasons: Vec<String> },
    #[error("the mail already runs on {0}: nothing to do")]
    AlreadyThere(String),
    #[error("{0}")]
    Cluster(String),
}

/// What a switchover changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub from: String,
    pub to: String,
    /// The resources given a temporary preference for `to`.
    pub roots: Vec<String>,
    /// Everything that runs on `from` and must run on `to` afterwards.
    pub stack: Vec<String>,
    /// The failures Pacemaker already recorded when the move was planned
    /// (an old failure below the threshold does not stop the move: only
    /// one that happens during it ends the wait).
    #[serde(skip)]
    pub known_failures: Vec<crate::status::Failure>,
}

impl Plan {
    /// The constraint ids `crm_resource --move` creates.
    pub fn constraint_ids(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|r| format!("cli-prefer-{r}"))
            .collect()
    }

    pub fn move_argv(&self, root: &str) -> Vec<String> {
        [
            "crm_resource",
            "--move",
            "--resource",
            root,
            "--node",
            &self.to,
        ]
        .map(str::to_string)
        .to_vec()
    }
}

/// `crm_resource --clear` for one resource: every cli-prefer and cli-ban
/// of it.
pub fn clear_argv(resource: &str) -> Vec<String> {
    ["crm_resource", "--clear", "--resource", resource]
        .map(str::to_string)
        .to_vec()
}

/// Whether a status is a resource the mail stack is made of: not a clone
/// instance (those run on both nodes), not a fence device.
pub fn in_stack(r: &crate::status::Resource) -> bool {
    r.clone.is_none() && !r.agent.starts_with("stonith:")
}

/// Why `target` cannot take the mail: offline, standby, no network (the
/// ping clone not running there), fail counts at the migration threshold,
/// no lease possible there.
pub fn unfit(st: &Status, target: &str, keeper: &Keeper) -> Vec<String> {
    let mut why = Vec::new();
    let Some(n) = st.nodes.iter().find(|n| n.name == target) else {
        return vec![format!("{target} is not a node of this cluster")];
    };
    if n.unclean {
        why.push(format!("{target} is UNCLEAN (waiting to be fenced)"));
    } else if !n.online {
        why.push(format!("{target} is offline"));
    }
    if n.standby {
        why.push(format!("{target} is in standby"));
    }
    if n.maintenance {
        why.push(format!("{target} is in maintenance"));
    }
    let ping = format!("{}-clone", crate::cib::PING_ID);
    let pings: Vec<_> = st
        .resources
        .iter()
        .filter(|r| r.clone.as_deref() == Some(ping.as_str()))
        .collect();
    if !pings.is_empty()
        && !pings
            .iter()
            .any(|r| !r.failed && r.role == "Started" && r.nodes.iter().any(|x| x == target))
    {
        why.push(format!(
            "the network check (ping) does not run on {target}: its ping targets do not answer there, and the VIP runs only with it"
        ));
    }
    for r in st.resources.iter().filter(|r| in_stack(r)) {
        let hist = st
            .history
            .iter()
            .find(|h| h.node == target && h.resource == r.id);
        let failures = st
            .failures
            .iter()
            .filter(|f| f.node == target && f.resource == r.id)
            .count() as u32;
        let count = hist.map_or(0, |h| h.fail_count).max(failures);
        let threshold = hist
            .and_then(|h| h.migration_threshold)
            .unwrap_or(crate::status::INFINITY);
        if count > 0 && count >= threshold {
            why.push(format!(
                "{} failed {count} times on {target} (migration-threshold {threshold}): Pacemaker keeps it off {target} until cleaned up (crm_resource --cleanup --resource {} --node {target})",
                r.id, r.id
            ));
        }
    }
    if let Some(k) = keeper.unfit(target) {
        why.push(k);
    }
    why
}

/// The switchover's decision: where the mail goes, what to move, or why
/// not (nothing changed then).
pub fn plan(st: &Status, cib: &El, to: Option<&str>, keeper: &Keeper) -> Result<Plan, Refusal> {
    let names: Vec<&str> = st.nodes.iter().map(|n| n.name.as_str()).collect();
    if let Some(t) = to
        && !names.contains(&t)
    {
        let hint = match crate::config::diag::did_you_mean(t, &names) {
            Some(s) => format!("did you mean {s:?}?"),
            None => format!("the nodes are {}", names.join(", ")),
        };
        return Err(Refusal::UnknownNode {
            name: t.to_string(),
            hint,
        });
    }
    if !st.quorate {
        return Err(Refusal::Cluster(
            "the cluster has no quorum: nothing would move".into(),
        ));
    }
    if st.maintenance_mode {
        return Err(Refusal::Cluster(
            "the cluster is in maintenance mode: nothing would move".into(),
        ));
    }
    let from = st
        .active_node
        .clone()
        .ok_or_else(|| Refusal::Cluster("the mail runs nowhere: nothing to move".into()))?;
    let to = match to {
        Some(t) => t.to_string(),
        None => names
            .iter()
            .find(|n| **n != from)
            .map(|n| n.to_string())
            .ok_or_else(|| Refusal::Cluster(format!("no node other than {from}")))?,
    };
    if to == from {
        return Err(Refusal::AlreadyThere(from));
    }
    let left = leftovers(cib);
    if !left.is_empty() {
        let ids: Vec<&str> = left.iter().map(|l| l.id.as_str()).collect();
        return Err(Refusal::Cluster(format!(
            "constraints left by an earlier move pin the mail ({}): remove them first with mailha switchover --clear",
            ids.join(", ")
        )));
    }
    let reasons = unfit(st, &to, keeper);
    if !reasons.is_empty() {
        return Err(Refusal::Unfit { node: to, reasons });
    }
    let unmanaged: Vec<&str> = st
        .resources
        .iter()
        .filter(|r| in_stack(r) && !r.managed)
        .map(|r| r.id.as_str())
        .collect();
    if !unmanaged.is_empty() {
        return Err(Refusal::Cluster(format!(
            "{} not managed by Pacemaker: it would not move",
            unmanaged.join(", ")
        )));
    }
    let stack: Vec<String> = st
        .resources
        .iter()
        .filter(|r| in_stack(r) && r.role == "Started" && r.nodes.contains(&from))
        .map(|r| r.id.clone())
        .collect();
    Ok(Plan {
        from,
        to,
        roots: roots(cib).map_err(Refusal::Cluster)?,
        stack,
        known_failures: st.failures.clone(),
    })
}

/// Whether the move is done as far as Pacemaker tells: the VIP and every
/// resource of the stack started on the target, none failed.
pub fn landed(st: &Status, plan: &Plan) -> bool {
    st.active_node.as_deref() == Some(plan.to.as_str())
        && plan.stack.iter().all(|id| {
            st.resources.iter().any(|r| {
                &r.id == id && !r.failed && r.role == "Started" && r.nodes == [plan.to.clone()]
            })
        })
}

/// A resource of the stack that failed on the target during the move:
/// waiting longer will not help.
pub fn failed_on_target(st: &Status, plan: &Plan) -> Option<String> {
    new_failure(st, &plan.known_failures, &plan.to, &plan.stack)
}

/// A failure on `node` of one of `stack` that was not recorded in
/// `before` (when the change began): waiting longer will not help. One
/// recorded earlier (a fail count below the threshold) is history, not
/// the change's outcome.
pub fn new_failure(
    st: &Status,
    before: &[crate::status::Failure],
    node: &str,
    stack: &[String],
) -> Option<String> {
    st.failures
        .iter()
        .find(|f| f.node == node && stack.contains(&f.resource) && !before.contains(f))
        .map(|f| format!("{} {} failed on {}: {}", f.resource, f.task, f.node, f.exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cib(constraints: &str) -> El {
        El::parse(&format!(
            r#"<cib><configuration><resources>
<primitive id="lease"/><primitive id="fs-a"/><primitive id="fs-b"/>
<primitive id="vip"><instance_attributes id="vip-ia"><nvpair id="vip-ia-ip" name="ip" value="198.51.100.100"/></instance_attributes></primitive>
<primitive id="svc-postfix"/><clone id="ping-clone"><primitive id="ping"/></clone>
</resources><constraints>{constraints}</constraints></configuration></cib>"#
        ))
        .unwrap()
    }

    const PING: &str =
        r#"<rsc_colocation id="c-ping" rsc="vip" with-rsc="ping-clone" score="INFINITY"/>"#;

    fn colo(rsc: &str, with: &str) -> String {
        format!(
            r#"<rsc_colocation id="colocation-{rsc}-{with}-INFINITY" rsc="{rsc}" with-rsc="{with}" score="INFINITY"/>"#
        )
    }

    #[test]
    fn the_root_of_the_chain_is_moved_not_a_clone() {
        let c = format!(
            "{PING}{}{}{}",
            colo("svc-postfix", "vip"),
            colo("vip", "fs-a"),
            colo("fs-a", "lease")
        );
        assert_eq!(roots(&cib(&c)).unwrap(), ["lease"]);
        // Without the lease: each mount the VIP sits on.
        let c = format!(
            "{PING}{}{}{}",
            colo("svc-postfix", "vip"),
            colo("vip", "fs-a"),
            colo("vip", "fs-b")
        );
        assert_eq!(roots(&cib(&c)).unwrap(), ["fs-a", "fs-b"]);
        // No storage: the VIP itself.
        assert_eq!(roots(&cib(PING)).unwrap(), ["vip"]);
        assert!(
            roots(&El::parse("<cib><configuration><resources/></configuration></cib>").unwrap())
                .is_err()
        );
    }

    #[test]
    fn preferences_and_bans_from_crm_resource_are_leftovers_mailhas_own_constraints_not() {
        let c = r#"<rsc_location id="cli-prefer-lease" rsc="lease" role="Started" node="node2" score="INFINITY"/>
<rsc_location id="cli-ban-vip-on-node1" rsc="vip" node="node1" score="-INFINITY"/>
<rsc_location id="location-fence-node1-avoids-node1" rsc="fence-node1" node="node1" score="-INFINITY"/>"#;
        let l = leftovers(&cib(c));
        let ids: Vec<&str> = l.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["cli-prefer-lease", "cli-ban-vip-on-node1"]);
        assert_eq!(
            (l[0].resource.as_str(), l[0].node.as_str()),
            ("lease", "node2")
        );
    }

    #[test]
    fn only_a_failure_during_the_move_ends_its_wait() {
        let old = crate::status::Failure {
            resource: "svc-postfix".into(),
            node: "mail2".into(),
            task: "monitor".into(),
            exit: "not running".into(),
            reason: String::new(),
        };
        let new = crate::status::Failure {
            task: "start".into(),
            exit: "error".into(),
            ..old.clone()
        };
        let stack = vec!["svc-postfix".to_string()];
        let st = |f: Vec<crate::status::Failure>| Status {
            failures: f,
            ..Default::default()
        };
        assert_eq!(
            new_failure(
                &st(vec![old.clone()]),
                std::slice::from_ref(&old),
                "mail2",
                &stack
            ),
            None,
            "yesterday's failure below the threshold"
        );
        assert_eq!(
            new_failure(
                &st(vec![old.clone(), new]),
                std::slice::from_ref(&old),
                "mail2",
                &stack
            )
            .as_deref(),
            Some("svc-postfix start failed on mail2: error")
        );
        assert_eq!(
            new_failure(&st(vec![old]), &[], "mail1", &stack),
            None,
            "not the target"
        );
    }

    #[test]
    fn the_vip_address_is_read_from_the_cib() {
        assert_eq!(vip_address(&cib("")).as_deref(), Some("198.51.100.100"));
    }
}
