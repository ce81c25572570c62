//! Phase one of loading: the file as written, deserialized with every
//! unknown key rejected. Nothing here is checked beyond its TOML type; the
//! meaning is checked in `validate`, which turns these structs into the
//! typed model.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub cluster: Option<RawCluster>,
    pub vip: Option<RawVip>,
    pub network: Option<RawNetwork>,
    pub storage: Option<RawStorage>,
    pub services: Option<RawServices>,
    pub policy: Option<RawPolicy>,
    pub fencing: Option<RawFencing>,
    pub alerts: Option<RawAlerts>,
    pub exporter: Option<RawExporter>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Option<String>,
    pub token_timeout: Option<String>,
    pub ssh_port: Option<u16>,
    pub nodes: Option<Vec<RawNode>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: Option<String>,
    /// One address per heartbeat link, link 0 first.
    pub addresses: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVip {
    pub address: Option<String>,
    pub prefix: Option<u8>,
    pub nic: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub ping_targets: Option<Vec<String>>,
    pub dampen: Option<String>,
    pub interval: Option<String>,
    pub failed_checks: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub lease: Option<RawLease>,
    pub mounts: Option<Vec<RawMount>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLease {
    pub device: Option<String>,
    pub nfs: Option<String>,
    pub file: Option<String>,
    pub options: Option<Vec<String>>,
    pub io_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMount {
    pub name: Option<String>,
    pub device: Option<String>,
    pub nfs: Option<String>,
    pub mount_point: Option<String>,
    pub fstype: Option<String>,
    pub options: Option<Vec<String>>,
}

/// `[services]` mixes a few settings (`profile`, `mode`, `eyou_root`) with
/// one sub-table per service (`[services.smtp]`), so it has a hand-written
/// visitor: every key that is not a setting is a service name.
#[derive(Debug, Default, Serialize)]
pub struct RawServices {
    pub profile: Option<String>,
    pub mode: Option<String>,
    pub eyou_root: Option<String>,
    #[serde(flatten)]
    pub defined: BTreeMap<String, RawService>,
}

pub const SERVICES_SETTINGS: &[&str] = &["profile", "mode", "eyou_root"];

impl<'de> Deserialize<'de> for RawServices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawServices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the [services] table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawServices, A::Error> {
                let mut out = RawServices::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "profile" => out.profile = Some(map.next_value()?),
                        "mode" => out.mode = Some(map.next_value()?),
                        "eyou_root" => out.eyou_root = Some(map.next_value()?),
                        _ => {
                            let svc: RawService = map.next_value()?;
                            out.defined.insert(key, svc);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub enabled: Option<bool>,
    pub agent: Option<String>,
    /// A systemd service unit, or "none".
    pub unit: Option<String>,
    pub start: Option<Vec<String>>,
    pub stop: Option<Vec<String>>,
    pub pid_file: Option<String>,
    pub executable: Option<String>,
    pub probe: Option<RawProbe>,
    pub depends_on: Option<Vec<String>>,
    pub watch: Option<bool>,
    pub clone: Option<bool>,
    pub monitor_interval: Option<String>,
    pub start_stall: Option<String>,
    pub stale_locks: Option<Vec<String>>,
    pub params: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<String>,
    pub path: Option<String>,
    pub expect: Option<u16>,
    pub argv: Option<Vec<String>>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub migration_threshold: Option<u32>,
    pub failure_timeout: Option<String>,
    pub resource_stickiness: Option<u32>,
    pub monitor_interval: Option<String>,
    pub storage_monitor_interval: Option<String>,
    pub vip_monitor_interval: Option<String>,
    pub start_timeout: Option<String>,
    pub stop_timeout: Option<String>,
    pub monitor_timeout: Option<String>,
    pub start_stall: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFencing {
    pub mode: Option<String>,
    pub priority_fencing_delay: Option<String>,
    pub watchdog: Option<String>,
    pub watchdog_timeout: Option<String>,
    pub watchdog_emulated: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub customer: Option<String>,
    pub language: Option<String>,
    pub subject: Option<String>,
    pub advice: Option<String>,
    pub batch_window: Option<String>,
    pub smtp: Option<RawSmtp>,
    pub webhook: Option<RawWebhook>,
    pub command: Option<RawCommand>,
    pub diagnostics: Option<RawDiagnostics>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiagnostics {
    pub enabled: Option<bool>,
    pub log_lines: Option<u32>,
    pub max_lines: Option<u32>,
    pub max_bytes: Option<u32>,
    pub redact_personal: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub relay: Option<String>,
    pub starttls: Option<bool>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub argv: Option<Vec<String>>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExporter {
    pub run_by: Option<String>,
    pub listen: Option<String>,
    pub scrape_timeout: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
}
