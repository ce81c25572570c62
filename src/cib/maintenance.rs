//! What the CIB says is in maintenance: the cluster (`maintenance-mode`),
//! one resource (its `maintenance` meta-attribute) or a node (its
//! `maintenance` attribute). Read by `mailha maintenance` (`ops`), the
//! exporter and the service agent's report of a daemon's death
//! (`agents::service::ended`): Pacemaker monitors nothing in maintenance,
//! so nothing may report a failure for it either.

use super::xml::El;

/// What is put in or out of maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    /// A primitive's id (`ops::resolve`).
    Resource(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Cluster => f.write_str("the cluster"),
            Scope::Resource(r) => f.write_str(r),
        }
    }
}

/// The meta-attribute that puts one resource in maintenance.
pub const META: &str = "maintenance";
/// The cluster property.
pub const PROPERTY: &str = "maintenance-mode";

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "yes" | "on" | "1" | "y")
    )
}

fn nvpair<'a>(set: &'a El, name: &str) -> Option<&'a El> {
    set.children
        .iter()
        .find(|p| p.name == "nvpair" && p.get("name") == Some(name))
}

/// Whether `scope` is in maintenance as the CIB says.
pub fn is_on(cib: &El, scope: &Scope) -> bool {
    match scope {
        Scope::Cluster => cib
            .find("configuration")
            .and_then(|c| c.find("crm_config"))
            .is_some_and(|c| {
                c.children
                    .iter()
                    .filter_map(|s| nvpair(s, PROPERTY))
                    .any(|p| truthy(p.get("value")))
            }),
        Scope::Resource(r) => cib.by_id(r).is_some_and(|e| {
            e.children
                .iter()
                .filter(|s| s.name == "meta_attributes")
                .filter_map(|s| nvpair(s, META))
                .any(|p| truthy(p.get("value")))
        }),
    }
}

/// Whether `node` is in maintenance by its permanent node attribute
/// (`crm_attribute --node N --name maintenance --update true`). A
/// transient one lives in the status section, which the CIB on disk
/// does not hold.
pub fn node_is_on(cib: &El, node: &str) -> bool {
    cib.find("configuration")
        .and_then(|c| c.find("nodes"))
        .is_some_and(|nodes| {
            nodes
                .children
                .iter()
                .filter(|n| n.name == "node" && n.get("uname") == Some(node))
                .flat_map(|n| n.children.iter())
                .filter(|s| s.name == "instance_attributes")
                .filter_map(|s| nvpair(s, META))
                .any(|p| truthy(p.get("value")))
        })
}
