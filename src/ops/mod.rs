//! Day-2 operations (issue 15): the decisions behind `mailha cleanup`,
//! `maintenance`, `standby`/`online` and `stop`/`start`, pure over what
//! Pacemaker's tools print (crm_mon's XML through `status::parse`, the
//! CIB, crm_simulate's XML). `cli/` runs the tools, each with a deadline;
//! `switchover.rs` is the planned move these build on.
//!
//! - `cleanup`: which failures to forget, one resource on one node at a
//!   time (never a cluster-wide refresh, which re-probes everything).
//! - `maintenance`: the cluster's maintenance mode or one service's, and
//!   the preview of what Pacemaker does when control is handed back.
//! - `standby`: draining a node (its mail moved first), bringing it back,
//!   and the whole stack stopped or started through the chain's root.
//! - `history`: the incidents as a timeline, from Pacemaker's histories
//!   and the alert spool.
//! - `report`: the support bundle's window, scrubbing and manifest.
//! - `destroy`: the cluster taken down for good, the data untouched.

pub mod cleanup;
pub mod destroy;
pub mod history;
pub mod maintenance;
pub mod report;
pub mod standby;

use crate::cib::xml::El;

/// The resources the CIB configures (primitives, and clones and groups by
/// their own ids), in document order.
pub fn resource_ids(cib: &El) -> Vec<String> {
    fn walk(e: &El, out: &mut Vec<String>) {
        for c in &e.children {
            if matches!(c.name.as_str(), "primitive" | "clone" | "group")
                && let Some(id) = c.get("id")
            {
                out.push(id.to_string());
            }
            if matches!(c.name.as_str(), "clone" | "group") {
                walk(c, out);
            }
        }
    }
    let mut out = Vec::new();
    let conf = if cib.name == "configuration" {
        Some(cib)
    } else {
        cib.find("configuration")
    };
    if let Some(r) = conf.and_then(|c| c.find("resources")) {
        walk(r, &mut out);
    }
    out
}

/// A name an operator typed (`postfix`, or a resource id as `crm_mon`
/// shows it: `svc-postfix`, `fs-data`, `vip`) to the primitive's id.
/// Unknown: an error naming the services, with a suggestion.
pub fn resolve(cib: &El, name: &str) -> Result<String, String> {
    let ids = resource_ids(cib);
    let primitive = |id: &str| ids.iter().any(|x| x == id) && !id.ends_with("-clone");
    for candidate in [name.to_string(), format!("svc-{name}")] {
        if primitive(&candidate) {
            return Ok(candidate);
        }
    }
    // A clone's id names its primitive.
    if let Some(p) = name.strip_suffix("-clone")
        && primitive(p)
    {
        return Ok(p.to_string());
    }
    let services: Vec<&str> = ids
        .iter()
        .filter_map(|i| i.strip_prefix("svc-"))
        .filter(|i| !i.ends_with("-clone"))
        .collect();
    let mut known: Vec<&str> = services.clone();
    known.extend(
        ids.iter()
            .map(String::as_str)
            .filter(|i| !i.ends_with("-clone")),
    );
    let hint = match crate::config::diag::did_you_mean(name, &known) {
        Some(s) => format!("did you mean {s:?}?"),
        None => format!("the services are {}", services.join(", ")),
    };
    Err(format!("no service or resource is named {name:?} ({hint})"))
}

/// One action of a transition crm_simulate would run, as its summary
/// says it (`<actions><rsc_action action="recover" resource="svc-postfix"
/// node="mail1"/>`; a move has `source` and `dest`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub action: String,
    pub resource: String,
    /// "mail1", or "mail1 -> mail2" for a move.
    pub node: String,
}

impl std::fmt::Display for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.action, self.resource, self.node)
    }
}

/// The transition summary of `crm_simulate --simulate --output-as=xml`:
/// what the scheduler would do, in its order. Only the `<actions>` list
/// (the summary); the individual operations under `<transition>` are
/// their parts.
pub fn simulated(xml: &str) -> Result<Vec<Planned>, String> {
    let root = El::parse(xml).map_err(|e| format!("crm_simulate's answer: {e}"))?;
    let actions = root
        .find("actions")
        .map(|a| a.children.as_slice())
        .unwrap_or_default();
    Ok(actions
        .iter()
        .filter(|a| a.name == "rsc_action")
        .filter_map(|a| {
            let node = match (a.get("node"), a.get("source"), a.get("dest")) {
                (Some(n), _, _) => n.to_string(),
                (None, Some(s), Some(d)) => format!("{s} -> {d}"),
                (None, Some(s), None) => s.to_string(),
                _ => String::new(),
            };
            Some(Planned {
                action: a.get("action")?.to_string(),
                resource: a.get("resource")?.to_string(),
                node,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cib() -> El {
        El::parse(
            r#"<cib><configuration><resources>
<primitive id="lease"/><primitive id="fs-data"/><primitive id="vip"/>
<primitive id="svc-postfix"/><primitive id="svc-dovecot"/>
<clone id="ping-clone"><primitive id="ping"/></clone>
</resources></configuration></cib>"#,
        )
        .unwrap()
    }

    #[test]
    fn a_service_is_named_as_in_the_config_or_as_crm_mon_shows_it() {
        assert_eq!(resolve(&cib(), "postfix").unwrap(), "svc-postfix");
        assert_eq!(resolve(&cib(), "svc-postfix").unwrap(), "svc-postfix");
        assert_eq!(resolve(&cib(), "fs-data").unwrap(), "fs-data");
        assert_eq!(resolve(&cib(), "ping-clone").unwrap(), "ping");
        let e = resolve(&cib(), "postfx").unwrap_err();
        assert!(
            e.contains("\"postfx\"") && e.contains("did you mean \"postfix\""),
            "{e}"
        );
        let e = resolve(&cib(), "zzzzzzzz").unwrap_err();
        assert!(e.contains("the services are postfix, dovecot"), "{e}");
    }

    #[test]
    fn the_transition_summary_is_read_from_crm_simulates_xml() {
        let xml = r#"<pacemaker-result api-version="2.25" request="crm_simulate">
  <modifications><inject_spec spec="x"/></modifications>
  <actions>
    <rsc_action action="recover" resource="svc-postfix" node="mail1"/>
    <rsc_action action="move" resource="vip" source="mail1" dest="mail2"/>
  </actions>
  <transition>
    <rsc_action resource="svc-postfix" op="stop" node="mail1"/>
  </transition>
  <status code="0" message="OK"/>
</pacemaker-result>"#;
        let p = simulated(xml).unwrap();
        let shown: Vec<String> = p.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            shown,
            ["recover svc-postfix (mail1)", "move vip (mail1 -> mail2)"]
        );
        assert!(simulated("<pacemaker-result/>").unwrap().is_empty());
        assert!(simulated("not xml <").is_err());
    }
}
