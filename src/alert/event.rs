//! One alert event: what Pacemaker told the alert agent, or what one of
//! mailha's own agents saw.
//!
//! The `CRM_alert_*` environment is hostile input: node names, resource
//! descriptions and attribute values can carry anything an attacker (or a
//! broken agent) managed to put into the cluster. Every value is therefore
//! length-capped, has its control characters escaped, and is stored as a
//! JSON string. Nothing here ever builds a command line or a shell string.

use crate::ocf::OcfStatus;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::time::{SystemTime, UNIX_EPOCH};

/// OCF's "running, promoted" (not among `OcfStatus`: mailha's agents
/// are never promotable, but a probe of another agent may answer so).
const OCF_RUNNING_PROMOTED: i32 = 8;

/// Longest value kept for a free-text field (descriptions, attribute
/// values). Pacemaker's own messages are far shorter; anything longer is
/// cut, and the cut is said in the value itself.
pub const MAX_TEXT: usize = 1024;
/// Longest value kept for a name (node, resource, task, ...).
pub const MAX_NAME: usize = 256;

/// What the event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    // Told by Pacemaker (CRM_alert_kind).
    /// A node joined or left the cluster.
    Node,
    /// A node was fenced (or fencing was attempted).
    Fencing,
    /// A resource operation finished (start, stop, monitor...).
    Resource,
    /// A node attribute changed.
    Attribute,
    /// A kind this version does not know; the raw kind is in `raw_kind`.
    OtherPacemaker,
    // Told by mailha's own agents through `spool::record`.
    ServiceRestarted,
    Switchover,
    LeaseLost,
    Fenced,
    StorageStopEscalated,
    /// `mailha alert test`.
    Test,
}

impl Kind {
    /// How much this kind matters to an operator; the highest-ranked event
    /// of an incident names it in the subject.
    pub fn rank(self) -> u8 {
        match self {
            Kind::Fenced | Kind::Fencing => 90,
            Kind::LeaseLost => 80,
            Kind::StorageStopEscalated => 75,
            Kind::Switchover => 70,
            Kind::Node => 60,
            Kind::ServiceRestarted => 50,
            Kind::Resource => 40,
            Kind::OtherPacemaker => 20,
            Kind::Attribute => 10,
            Kind::Test => 0,
        }
    }
}

/// One event as it is stored in the spool (JSON, one file per event).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Event {
    pub kind: Option<Kind>,
    /// `CRM_alert_kind` as given when it was not one we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_kind: Option<String>,
    /// The host that recorded the event (this machine's name).
    pub host: String,
    /// When it was recorded here, milliseconds since the epoch (our clock:
    /// the batching works on it).
    pub recorded_at_ms: u64,
    /// Pacemaker's timestamp, as formatted by Pacemaker (text only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_value: Option<String>,
    /// Pacemaker's per-node alert sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Numeric fields whose value was not a number: kept (escaped) so
    /// nothing is silently dropped, but never used as a number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "CRM_alert_kind is not set: alert_mailha is run by Pacemaker as an alert agent, not by hand"
    )]
    NotFromPacemaker,
}

/// Makes a hostile string safe to store and show: control characters
/// (newlines included) become visible escapes, and the value is cut to
/// `cap` bytes on a character boundary, saying how much was cut.
pub fn clean(s: &str, cap: usize) -> String {
    let mut out = String::with_capacity(s.len().min(cap) + 16);
    for (i, c) in s.char_indices() {
        let esc: Option<String> = match c {
            '\n' => Some("\\n".into()),
            '\r' => Some("\\r".into()),
            '\t' => Some("\\t".into()),
            c if c.is_control() => Some(format!("\\u{{{:x}}}", c as u32)),
            // Bidirectional overrides can make a mail lie about what it
            // says; show them instead of obeying them.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                Some(format!("\\u{{{:x}}}", c as u32))
            }
            _ => None,
        };
        let piece_len = esc.as_ref().map_or(c.len_utf8(), |e| e.len());
        if out.len() + piece_len > cap {
            out.push_str(&format!("…[cut {} bytes]", s.len() - i));
            return out;
        }
        match esc {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch (0 if the clock is before 1970).
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Event {
    /// An event of mailha's own agents, recorded now on this host.
    pub fn new(kind: Kind, host: &str, now: SystemTime) -> Event {
        Event {
            kind: Some(kind),
            host: clean(host, MAX_NAME),
            recorded_at_ms: epoch_ms(now),
            ..Event::default()
        }
    }

    /// Builds an event from an alert agent's environment. Only `CRM_alert_*`
    /// variables are read; everything else is ignored. Values that are not
    /// valid UTF-8 are decoded lossily (they are text for a human).
    pub fn from_crm_env<I>(vars: I, host: &str, now: SystemTime) -> Result<Event, EventError>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut e = Event::new(Kind::OtherPacemaker, host, now);
        let mut kind_seen = false;
        for (k, v) in vars {
            let Some(k) = k.to_str() else { continue };
            let Some(name) = k.strip_prefix("CRM_alert_") else {
                continue;
            };
            let v = v.to_string_lossy();
            let text = |cap| Some(clean(&v, cap));
            match name {
                "kind" => {
                    kind_seen = true;
                    e.kind = Some(match v.as_ref() {
                        "node" => Kind::Node,
                        "fencing" => Kind::Fencing,
                        "resource" => Kind::Resource,
                        "attribute" => Kind::Attribute,
                        _ => {
                            e.raw_kind = text(MAX_NAME);
                            Kind::OtherPacemaker
                        }
                    });
                }
                "node" => e.node = text(MAX_NAME),
                "rsc" => e.rsc = text(MAX_NAME),
                "task" => e.task = text(MAX_NAME),
                "desc" => e.desc = text(MAX_TEXT),
                "timestamp" => e.timestamp = text(MAX_NAME),
                "attribute_name" => e.attribute_name = text(MAX_NAME),
                "attribute_value" => e.attribute_value = text(MAX_TEXT),
                "nodeid" => e.nodeid = number(&mut e.invalid, name, &v),
                "interval" => e.interval_ms = number(&mut e.invalid, name, &v),
                "rc" => e.rc = number(&mut e.invalid, name, &v),
                "target_rc" => e.target_rc = number(&mut e.invalid, name, &v),
                "status" => e.status = number(&mut e.invalid, name, &v),
                "node_sequence" => e.sequence = number(&mut e.invalid, name, &v),
                // recipient, version, timestamp_epoch/usec, select_*, exec_time:
                // nothing an operator reads in a mail.
                _ => {}
            }
        }
        if !kind_seen {
            return Err(EventError::NotFromPacemaker);
        }
        Ok(e)
    }

    /// The kind, `OtherPacemaker` when an old file lacks it.
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::OtherPacemaker)
    }

    /// Did a resource operation fail? (rc differs from what was expected.)
    /// A probe (a monitor without an interval) asks whether the resource
    /// runs on the node: running (0, or 8 promoted) and not running (7)
    /// are answers whatever Pacemaker expected (its target is 7), and only
    /// an error is a failure. A clone found running where a node's
    /// Pacemaker came back was mailed as "failed (rc 0)".
    pub fn failed(&self) -> bool {
        let probe = self.task.as_deref() == Some("monitor") && self.interval_ms == Some(0);
        if probe && let Some(rc) = self.rc {
            let answers = [OcfStatus::Success, OcfStatus::NotRunning].map(|s| i32::from(s.code()));
            return !(answers.contains(&rc) || rc == OCF_RUNNING_PROMOTED);
        }
        match (self.rc, self.target_rc) {
            (Some(rc), Some(t)) => rc != t,
            (Some(rc), None) => rc != 0,
            _ => false,
        }
    }
}

fn number<T: std::str::FromStr>(
    invalid: &mut Vec<(String, String)>,
    name: &str,
    v: &str,
) -> Option<T> {
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            invalid.push((name.to_string(), clean(v, MAX_NAME)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }

    #[test]
    fn a_failed_monitor_is_recorded_field_by_field() {
        let e = Event::from_crm_env(
            env(&[
                ("CRM_alert_kind", "resource"),
                ("CRM_alert_node", "mx1"),
                ("CRM_alert_nodeid", "1"),
                ("CRM_alert_rsc", "postfix"),
                ("CRM_alert_task", "monitor"),
                ("CRM_alert_interval", "10000"),
                ("CRM_alert_rc", "7"),
                ("CRM_alert_target_rc", "0"),
                ("CRM_alert_status", "0"),
                ("CRM_alert_desc", "not running"),
                ("CRM_alert_node_sequence", "42"),
                ("CRM_alert_timestamp", "2025-01-02T03:04:05.000000Z"),
                ("PATH", "/ignored"),
            ]),
            "mx1",
            at(1_000),
        )
        .unwrap();
        assert_eq!(e.kind(), Kind::Resource);
        assert_eq!(e.node.as_deref(), Some("mx1"));
        assert_eq!(e.rsc.as_deref(), Some("postfix"));
        assert_eq!(
            (e.rc, e.target_rc, e.interval_ms),
            (Some(7), Some(0), Some(10_000))
        );
        assert_eq!(e.sequence, Some(42));
        assert_eq!(e.recorded_at_ms, 1_000);
        assert!(e.failed());
        assert!(e.invalid.is_empty());
    }

    #[test]
    fn a_probe_fails_only_with_an_error_not_with_running_or_not_running() {
        let probe = |rc: &str| {
            Event::from_crm_env(
                env(&[
                    ("CRM_alert_kind", "resource"),
                    ("CRM_alert_task", "monitor"),
                    ("CRM_alert_interval", "0"),
                    ("CRM_alert_rc", rc),
                    ("CRM_alert_target_rc", "7"),
                ]),
                "mx1",
                at(0),
            )
            .unwrap()
        };
        for rc in ["0", "7", "8"] {
            assert!(!probe(rc).failed(), "rc {rc}");
        }
        for rc in ["1", "2", "5", "6"] {
            assert!(probe(rc).failed(), "rc {rc}");
        }
    }

    #[test]
    fn shell_syntax_is_kept_as_plain_text() {
        let e = Event::from_crm_env(
            env(&[
                ("CRM_alert_kind", "node"),
                ("CRM_alert_node", "$(touch /tmp/pwned)`id`;rm -rf /"),
                (
                    "CRM_alert_desc",
                    "a\nSubject: injected\r\nBcc: evil@example.com",
                ),
            ]),
            "mx1",
            at(0),
        )
        .unwrap();
        assert_eq!(e.node.as_deref(), Some("$(touch /tmp/pwned)`id`;rm -rf /"));
        let desc = e.desc.unwrap();
        assert!(!desc.contains(['\n', '\r']), "{desc}");
        assert_eq!(desc, "a\\nSubject: injected\\r\\nBcc: evil@example.com");
    }

    #[test]
    fn a_64_kib_value_is_cut_and_says_so() {
        let huge = "x".repeat(64 * 1024);
        let e = Event::from_crm_env(
            env(&[
                ("CRM_alert_kind", "resource"),
                ("CRM_alert_desc", &huge),
                ("CRM_alert_rsc", &huge),
            ]),
            "mx1",
            at(0),
        )
        .unwrap();
        let desc = e.desc.unwrap();
        assert!(desc.len() <= MAX_TEXT + 32, "{}", desc.len());
        assert!(desc.ends_with(&format!("…[cut {} bytes]", 64 * 1024 - MAX_TEXT)));
        assert!(e.rsc.unwrap().len() <= MAX_NAME + 32);
    }

    #[test]
    fn cutting_never_splits_a_character() {
        let s = "邮件".repeat(1000);
        let c = clean(&s, 100);
        assert!(c.starts_with("邮件"));
        assert!(c.contains("[cut "));
    }

    #[test]
    fn escape_and_bidi_characters_are_shown_not_obeyed() {
        assert_eq!(clean("a\u{1b}[31mb", 100), "a\\u{1b}[31mb");
        assert_eq!(clean("x\u{202e}y", 100), "x\\u{202e}y");
        assert_eq!(clean("日本\t", 100), "日本\\t");
    }

    #[test]
    fn a_non_number_rc_is_kept_aside_not_parsed() {
        let e = Event::from_crm_env(
            env(&[
                ("CRM_alert_kind", "resource"),
                ("CRM_alert_rc", "0; reboot"),
            ]),
            "mx1",
            at(0),
        )
        .unwrap();
        assert_eq!(e.rc, None);
        assert_eq!(e.invalid, vec![("rc".to_string(), "0; reboot".to_string())]);
    }

    #[test]
    fn an_unknown_kind_is_recorded_with_its_name() {
        let e =
            Event::from_crm_env(env(&[("CRM_alert_kind", "select_x\n")]), "mx1", at(0)).unwrap();
        assert_eq!(e.kind(), Kind::OtherPacemaker);
        assert_eq!(e.raw_kind.as_deref(), Some("select_x\\n"));
    }

    #[test]
    fn without_crm_alert_kind_it_is_not_an_alert() {
        assert_eq!(
            Event::from_crm_env(env(&[("CRM_alert_node", "mx1")]), "mx1", at(0)),
            Err(EventError::NotFromPacemaker)
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        use std::os::unix::ffi::OsStringExt;
        let vars = vec![
            (OsString::from("CRM_alert_kind"), OsString::from("node")),
            (
                OsString::from("CRM_alert_node"),
                OsString::from_vec(vec![b'm', 0xff, b'x']),
            ),
        ];
        let e = Event::from_crm_env(vars, "mx1", at(0)).unwrap();
        assert_eq!(e.node.as_deref(), Some("m\u{fffd}x"));
    }
}
