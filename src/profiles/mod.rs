//! Built-in service catalogs. A profile hands back the services it knows,
//! each as a fully filled `RawService`; the user's `[services.NAME]` tables
//! are then laid over them field by field, so a user can switch one
//! daemon's watch off or run it under a stock agent without restating the
//! rest.

pub mod eyou;
pub mod postfix;

use crate::config::raw::{RawProbe, RawService};
use std::collections::BTreeMap;
use std::path::Path;

/// A profile's services, plus what it learnt on the way.
#[derive(Debug, Default)]
pub struct Catalog {
    pub services: BTreeMap<String, RawService>,
    /// Notes for `mailha check` (e.g. "eYou tree not found, using defaults").
    pub notes: Vec<String>,
    pub eyou_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}:{line}: {message}")]
    Tree {
        file: String,
        line: usize,
        message: String,
    },
}

pub(crate) fn argv(parts: &[&str]) -> Option<Vec<String>> {
    Some(parts.iter().map(|s| s.to_string()).collect())
}

pub(crate) fn probe(kind: &str, port: u16) -> Option<RawProbe> {
    Some(RawProbe {
        kind: Some(kind.into()),
        port: Some(port),
        ..Default::default()
    })
}

/// The eYou mail gateway, as the original's gateway mode ran it: a wrapper
/// around the gateway's own init script, checked for liveness only (the
/// original did not monitor the gateway in detail).
pub fn gateway_service() -> (String, RawService) {
    let init = "/etc/init.d/eyou_gateway";
    (
        "gateway".into(),
        RawService {
            enabled: Some(true),
            start: argv(&[init, "start"]),
            stop: argv(&[init, "stop"]),
            probe: Some(RawProbe {
                kind: Some("command".into()),
                argv: argv(&[init, "status"]),
                ..Default::default()
            }),
            watch: Some(false),
            ..Default::default()
        },
    )
}

/// Builds the catalog for `profile` and `mode`. `eyou_root` is where an
/// installed eYou tree is looked for; `eyou_files`, when given, is where
/// its files are read instead (the commands still name `eyou_root`).
pub fn catalog(
    profile: Option<crate::config::ProfileName>,
    mode: crate::config::Mode,
    eyou_root: &Path,
    eyou_files: Option<&Path>,
) -> Result<Catalog, ProfileError> {
    use crate::config::{Mode, ProfileName};
    let mut cat = match profile {
        Some(ProfileName::Eyou) if mode != Mode::Gateway => {
            eyou::catalog_at(eyou_root, eyou_files.unwrap_or(eyou_root))?
        }
        Some(ProfileName::Postfix) => postfix::catalog(),
        _ => Catalog::default(),
    };
    let wants_gateway =
        matches!(mode, Mode::Gateway | Mode::TwoInOne) || profile == Some(ProfileName::Gateway);
    if wants_gateway {
        let (name, svc) = gateway_service();
        cat.services.insert(name, svc);
    }
    Ok(cat)
}
