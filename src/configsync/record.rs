//! The running config as the cluster keeps it, and how a node's file
//! compares with it. Pure: no I/O here.
//!
//! `mailha apply` stores, in mailha's own property set of the CIB:
//! - `mailha-config-text`: the applied mailha.toml, byte for byte
//!   (comments included), base64 so no XML normalisation touches a tab, a
//!   CR or a trailing space, and so no comment can ever look like another
//!   nvpair to the service agent's substring scan (`watch::is_off`); the
//!   values of `SECRET_FIELDS` are replaced by `REDACTED`, since the CIB
//!   is readable by `hacluster`;
//! - `mailha-config-record` (JSON): the generation (+1 per apply), who
//!   applied it where and when, the keyed digest of the whole file (secrets
//!   included), the fields left out, the referenced files (path, mode,
//!   keyed digest: their content never enters the CIB) and the digests of
//!   the last `HISTORY` generations, so a node can tell "my file is an
//!   older generation" (behind) from "my file has new edits" (ahead).
//!
//! Every digest is an HMAC keyed from the corosync authkey (root only, the
//! same on both nodes): a plain hash of a file whose only unknown is a
//! password would let anyone who reads the CIB test guesses offline.

use crate::cib::xml::El;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::ops::Range;

pub const RECORD_NAME: &str = "mailha-config-record";
pub const TEXT_NAME: &str = "mailha-config-text";
/// Permanent node attribute: the generation this node's file was last
/// made equal to (by apply, by the peer's push, by a catch-up or a pull).
pub const NODE_ATTR: &str = "mailha-config-generation";
/// The largest mailha.toml the cluster keeps a copy of. Pacemaker
/// replicates every CIB change to every node and the scheduler saves the
/// whole CIB with each transition (`pe-input-*.bz2`); real configs are a
/// few KiB.
pub const MAX_TEXT: usize = 64 * 1024;
/// How many earlier generations' digests the record keeps.
pub const HISTORY: usize = 20;
/// Values that never go into the CIB: the relay password, and the webhook
/// URL (chat webhooks carry their token in it).
pub const SECRET_FIELDS: &[&str] = &["alerts.smtp.password", "alerts.webhook.url"];
/// What stands in for a secret's value in the CIB's copy (valid TOML, so
/// the copy still parses).
pub const REDACTED: &str = "\"<kept on the nodes, never in the CIB>\"";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("the CIB's {RECORD_NAME} is not mailha's JSON: {0}")]
    Json(String),
    #[error("the CIB's {TEXT_NAME} is not valid base64 UTF-8")]
    Text,
    #[error(
        "mailha.toml is {0} bytes; the cluster keeps a copy of at most {MAX_TEXT} (every CIB change is replicated to both nodes and saved with each scheduler run)"
    )]
    TooLarge(usize),
}

/// The HMAC key for config digests, derived from the corosync authkey
/// (domain-separated: the authkey itself keys corosync's own crypto).
#[derive(Clone)]
pub struct Key([u8; 32]);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Key {
    pub fn from_authkey(authkey: &[u8]) -> Key {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(authkey).expect("any key length");
        m.update(b"mailha config digest v1");
        Key(m.finalize().into_bytes().into())
    }

    pub fn digest(&self, data: &[u8]) -> String {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("any key length");
        m.update(data);
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A file the config names that must be the same on both nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub mode: u32,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub generation: u64,
    pub digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub generation: u64,
    /// The node `apply` ran on.
    pub node: String,
    /// Who ran it there (the login behind sudo, else the user).
    pub user: String,
    /// When, RFC 3339 UTC, by the applying node's clock.
    pub at: String,
    /// Keyed digest of the whole file.
    pub digest: String,
    #[serde(default)]
    pub redacted: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileRef>,
    /// Earlier generations, newest first.
    #[serde(default)]
    pub history: Vec<Generation>,
}

impl Record {
    /// The generation whose file has this digest (the newest one).
    pub fn generation_of(&self, digest: &str) -> Option<u64> {
        if self.digest == digest {
            return Some(self.generation);
        }
        self.history
            .iter()
            .find(|g| g.digest == digest)
            .map(|g| g.generation)
    }

    /// Every digest the cluster has run, newest first.
    pub fn known(&self) -> Vec<String> {
        std::iter::once(self.digest.clone())
            .chain(self.history.iter().map(|g| g.digest.clone()))
            .collect()
    }

    /// The record of the next apply: this one moves into the history.
    pub fn next(
        prev: Option<&Record>,
        digest: String,
        redacted: Vec<String>,
        files: Vec<FileRef>,
        node: &str,
        user: &str,
        at: &str,
    ) -> Record {
        let (generation, history) = match prev {
            None => (1, Vec::new()),
            Some(p) => {
                let mut h = vec![Generation {
                    generation: p.generation,
                    digest: p.digest.clone(),
                }];
                h.extend(p.history.iter().cloned());
                h.truncate(HISTORY);
                (p.generation + 1, h)
            }
        };
        Record {
            generation,
            node: node.to_string(),
            user: user.to_string(),
            at: at.to_string(),
            digest,
            redacted,
            files,
            history,
        }
    }
}

/// What the CIB holds: the record and the (redacted) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub record: Record,
    pub text: String,
}

fn mailha_set(cib: &El) -> Option<&El> {
    cib.find("configuration")?
        .find("crm_config")?
        .children
        .iter()
        .find(|s| s.get("id") == Some(crate::cib::MAILHA_SET_ID))
}

fn nvpair_value<'a>(set: &'a El, name: &str) -> Option<&'a str> {
    set.children
        .iter()
        .find(|p| p.get("name") == Some(name))
        .and_then(|p| p.get("value"))
}

impl Running {
    /// The running config of a CIB (live or saved), None when no apply of
    /// this mailha stored one.
    pub fn from_cib(cib: &El) -> Result<Option<Running>, RecordError> {
        let Some(set) = mailha_set(cib) else {
            return Ok(None);
        };
        let (Some(rec), Some(text)) =
            (nvpair_value(set, RECORD_NAME), nvpair_value(set, TEXT_NAME))
        else {
            return Ok(None);
        };
        let record: Record =
            serde_json::from_str(rec).map_err(|e| RecordError::Json(e.to_string()))?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| RecordError::Text)?;
        let text = String::from_utf8(bytes).map_err(|_| RecordError::Text)?;
        Ok(Some(Running { record, text }))
    }

    /// The two nvpairs, with pcs-style ids, for mailha's property set.
    pub fn nvpairs(&self) -> Result<Vec<El>, RecordError> {
        if self.text.len() > MAX_TEXT {
            return Err(RecordError::TooLarge(self.text.len()));
        }
        use base64::Engine;
        let set = crate::cib::MAILHA_SET_ID;
        let pair = |name: &str, value: String| {
            El::new("nvpair")
                .attr("id", format!("{set}-{name}"))
                .attr("name", name)
                .attr("value", value)
        };
        Ok(vec![
            pair(
                RECORD_NAME,
                serde_json::to_string(&self.record).expect("serializable"),
            ),
            pair(
                TEXT_NAME,
                base64::engine::general_purpose::STANDARD.encode(self.text.as_bytes()),
            ),
        ])
    }
}

/// Puts the running config into a `<configuration>` (or whole CIB) that
/// already has mailha's property set, replacing an older one.
pub fn store(conf: &mut El, running: &Running) -> Result<(), RecordError> {
    let pairs = running.nvpairs()?;
    let crm = if conf.name == "configuration" {
        conf.find_mut("crm_config")
    } else {
        conf.find_mut("configuration")
            .and_then(|c| c.find_mut("crm_config"))
    };
    if let Some(set) = crm.and_then(|c| {
        c.children
            .iter_mut()
            .find(|s| s.get("id") == Some(crate::cib::MAILHA_SET_ID))
    }) {
        set.children
            .retain(|p| !matches!(p.get("name"), Some(RECORD_NAME | TEXT_NAME)));
        set.children.extend(pairs);
    }
    Ok(())
}

/// A copy of a configuration without the running-config nvpairs and the
/// nodes' generations: what the operator's diff shows (the text is diffed
/// as text instead).
pub fn without_record(conf: &El) -> El {
    let mut c = conf.clone();
    fn strip(e: &mut El) {
        if e.name == "cluster_property_set" && e.get("id") == Some(crate::cib::MAILHA_SET_ID) {
            e.children
                .retain(|p| !matches!(p.get("name"), Some(RECORD_NAME | TEXT_NAME)));
        }
        if e.name == "instance_attributes" {
            e.children.retain(|p| p.get("name") != Some(NODE_ATTR));
        }
        for ch in &mut e.children {
            strip(ch);
        }
    }
    strip(&mut c);
    c
}

/// The node attribute `NODE_ATTR` of node `uname` in a whole CIB.
pub fn node_generation(cib: &El, uname: &str) -> Option<u64> {
    cib.find("configuration")?
        .find("nodes")?
        .children
        .iter()
        .find(|n| n.get("uname") == Some(uname))?
        .children
        .iter()
        .filter(|s| s.name == "instance_attributes")
        .flat_map(|s| s.children.iter())
        .find(|p| p.get("name") == Some(NODE_ATTR))
        .and_then(|p| p.get("value"))
        .and_then(|v| v.parse().ok())
}

/// Sets `NODE_ATTR` of node `uname` in a whole CIB, as crm_attribute
/// would (ids `nodes-{id}`, `nodes-{id}-{name}`). False when the CIB has
/// no such node entry.
pub fn set_node_generation(cib: &mut El, uname: &str, generation: u64) -> bool {
    let Some(node) = cib
        .find_mut("configuration")
        .and_then(|c| c.find_mut("nodes"))
        .and_then(|n| {
            n.children
                .iter_mut()
                .find(|n| n.get("uname") == Some(uname))
        })
    else {
        return false;
    };
    let id = node.get("id").unwrap_or(uname).to_string();
    let set_id = format!("nodes-{id}");
    if !node
        .children
        .iter()
        .any(|s| s.name == "instance_attributes")
    {
        node.children
            .push(El::new("instance_attributes").attr("id", set_id.clone()));
    }
    let set = node
        .children
        .iter_mut()
        .find(|s| s.name == "instance_attributes")
        .expect("just made");
    set.children.retain(|p| p.get("name") != Some(NODE_ATTR));
    let sid = set.get("id").unwrap_or(&set_id).to_string();
    set.children.push(
        El::new("nvpair")
            .attr("id", format!("{sid}-{NODE_ATTR}"))
            .attr("name", NODE_ATTR)
            .attr("value", generation.to_string()),
    );
    true
}

/// The source span of the value at a dotted path, when the path exists.
fn value_span(text: &str, dotted: &str) -> Option<Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    for k in dotted.split('.') {
        item = item.get(k)?;
    }
    match item {
        toml_edit::Item::Value(v) => v.span(),
        _ => None,
    }
}

/// The text with every secret's value replaced by `REDACTED`, and the
/// fields that were.
pub fn redact(text: &str) -> (String, Vec<String>) {
    let mut spans: Vec<(Range<usize>, &str)> = SECRET_FIELDS
        .iter()
        .filter_map(|f| value_span(text, f).map(|s| (s, *f)))
        .collect();
    spans.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for (s, _) in &spans {
        out.replace_range(s.clone(), REDACTED);
    }
    let mut fields: Vec<String> = spans.iter().map(|(_, f)| f.to_string()).collect();
    fields.sort();
    (out, fields)
}

/// The whole file again: the redacted copy with each of `fields` taken,
/// byte for byte, from `local` (this node's own file). None when `local`
/// lacks one of them. Whether the result IS the applied file is for the
/// caller to check against the record's digest.
pub fn unredact(redacted: &str, fields: &[String], local: &str) -> Option<String> {
    let mut spans = Vec::new();
    for f in fields {
        let at = value_span(redacted, f)?;
        let from = value_span(local, f)?;
        spans.push((at, &local[from]));
    }
    spans.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    let mut out = redacted.to_string();
    for (s, v) in spans {
        out.replace_range(s, v);
    }
    Some(out)
}

/// How this node's file stands against the running config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileState {
    /// The file is what runs.
    Same { generation: u64 },
    /// The file is exactly an older generation: take the running one.
    Behind { generation: u64, running: u64 },
    /// The file was last synced at `base` and edited since, while the
    /// cluster moved on: applying it would revert the newer generations.
    Diverged { base: u64, running: u64 },
    /// Edits on top of what runs: `mailha apply` them.
    Ahead { running: u64 },
    /// No file here.
    Missing { running: u64 },
    /// The cluster holds no running config (never applied by this mailha).
    NoRecord,
}

impl FileState {
    /// Applying this file would undo what runs.
    pub fn would_revert(&self) -> bool {
        matches!(
            self,
            FileState::Behind { .. } | FileState::Diverged { .. } | FileState::Missing { .. }
        )
    }
}

/// The file (its keyed digest, None when there is none) against the
/// running record; `base` is this node's `NODE_ATTR`.
pub fn judge(running: Option<&Record>, file_digest: Option<&str>, base: Option<u64>) -> FileState {
    let Some(r) = running else {
        return FileState::NoRecord;
    };
    let Some(d) = file_digest else {
        return FileState::Missing {
            running: r.generation,
        };
    };
    match r.generation_of(d) {
        Some(g) if g == r.generation => FileState::Same { generation: g },
        Some(g) => FileState::Behind {
            generation: g,
            running: r.generation,
        },
        None => match base {
            Some(b) if b < r.generation => FileState::Diverged {
                base: b,
                running: r.generation,
            },
            _ => FileState::Ahead {
                running: r.generation,
            },
        },
    }
}

/// A unified diff of two config texts, `from` -> `to`.
pub fn text_diff(from: &str, to: &str, from_name: &str, to_name: &str) -> String {
    similar::TextDiff::from_lines(from, to)
        .unified_diff()
        .context_radius(2)
        .header(from_name, to_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# the relay\n[alerts]\ncustomer = \"x\"\n\n[alerts.smtp]\nrelay = \"r:587\"  # ours\nuser = \"u\"\npassword = \"s3cr\\\"et\"\t\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";

    fn key() -> Key {
        Key::from_authkey(&[7u8; 256])
    }

    #[test]
    fn a_secret_never_reaches_the_copy_and_comes_back_byte_for_byte_from_the_nodes_file() {
        let (copy, fields) = redact(TEXT);
        assert_eq!(fields, ["alerts.smtp.password"]);
        assert!(!copy.contains("s3cr"), "{copy}");
        assert!(copy.contains("# ours") && copy.contains("\t\n"), "{copy}");
        assert!(toml::from_str::<toml::Table>(&copy).is_ok(), "still TOML");
        assert_eq!(unredact(&copy, &fields, TEXT).as_deref(), Some(TEXT));
        // A node whose file lacks the secret cannot rebuild it.
        assert_eq!(unredact(&copy, &fields, "[alerts]\n"), None);
        // Without secrets the copy is the file.
        assert_eq!(redact("a = 1\n"), ("a = 1\n".to_string(), vec![]));
    }

    #[test]
    fn the_digest_is_keyed_so_the_cib_does_not_let_anyone_test_password_guesses() {
        let a = key().digest(TEXT.as_bytes());
        assert_eq!(a, key().digest(TEXT.as_bytes()));
        assert_ne!(a, Key::from_authkey(&[8u8; 256]).digest(TEXT.as_bytes()));
        use sha2::Digest;
        let plain: String = sha2::Sha256::digest(TEXT.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(a, plain);
    }

    fn rec(g: u64) -> Record {
        let mut r = Record::next(None, "d1".into(), vec![], vec![], "node1", "root", "t1");
        for i in 2..=g {
            r = Record::next(
                Some(&r),
                format!("d{i}"),
                vec![],
                vec![],
                "node1",
                "root",
                "t",
            );
        }
        r
    }

    #[test]
    fn each_apply_is_the_next_generation_and_the_history_is_bounded() {
        let r = rec(30);
        assert_eq!(r.generation, 30);
        assert_eq!(r.history.len(), HISTORY);
        assert_eq!(r.history[0].generation, 29);
        assert_eq!(r.generation_of("d25"), Some(25));
        assert_eq!(r.generation_of("d5"), None, "older than the history");
        assert_eq!(r.known()[0], "d30");
    }

    #[test]
    fn an_older_copy_is_behind_an_edit_of_an_older_copy_diverged_a_new_edit_ahead() {
        let r = rec(7);
        assert_eq!(
            judge(Some(&r), Some("d7"), Some(7)),
            FileState::Same { generation: 7 }
        );
        let behind = judge(Some(&r), Some("d5"), Some(7));
        assert_eq!(
            behind,
            FileState::Behind {
                generation: 5,
                running: 7
            }
        );
        assert!(behind.would_revert());
        let diverged = judge(Some(&r), Some("new"), Some(5));
        assert_eq!(
            diverged,
            FileState::Diverged {
                base: 5,
                running: 7
            }
        );
        assert!(diverged.would_revert());
        let ahead = judge(Some(&r), Some("new"), Some(7));
        assert_eq!(ahead, FileState::Ahead { running: 7 });
        assert!(!ahead.would_revert());
        assert_eq!(
            judge(Some(&r), Some("new"), None),
            FileState::Ahead { running: 7 },
            "no base known: an edit"
        );
        assert_eq!(judge(None, Some("x"), None), FileState::NoRecord);
        assert_eq!(
            judge(Some(&r), None, Some(7)),
            FileState::Missing { running: 7 }
        );
    }

    #[test]
    fn the_record_round_trips_through_the_cib_and_the_text_is_kept_exactly() {
        let running = Running {
            record: rec(3),
            text: TEXT.to_string(),
        };
        let mut conf = El::new("configuration").child(
            El::new("crm_config").child(
                El::new("cluster_property_set")
                    .attr("id", crate::cib::MAILHA_SET_ID)
                    .child(El::new("nvpair").attr("name", "mailha-config-digest")),
            ),
        );
        store(&mut conf, &running).unwrap();
        store(&mut conf, &running).unwrap();
        let cib = El::parse(&El::new("cib").child(conf.clone()).to_xml()).unwrap();
        assert_eq!(Running::from_cib(&cib).unwrap(), Some(running));
        let set = &conf.find("crm_config").unwrap().children[0];
        assert_eq!(set.children.len(), 3, "replaced, not added twice");
        assert_eq!(
            without_record(&conf).find("crm_config").unwrap().children[0]
                .children
                .len(),
            1
        );
        let big = Running {
            record: rec(1),
            text: "#".repeat(MAX_TEXT + 1),
        };
        assert_eq!(
            store(&mut conf, &big),
            Err(RecordError::TooLarge(MAX_TEXT + 1))
        );
    }

    #[test]
    fn a_nodes_generation_is_a_permanent_node_attribute() {
        let mut cib = El::new("cib").child(
            El::new("configuration").child(
                El::new("nodes")
                    .child(El::new("node").attr("id", "1").attr("uname", "node1"))
                    .child(El::new("node").attr("id", "2").attr("uname", "node2")),
            ),
        );
        assert_eq!(node_generation(&cib, "node2"), None);
        assert!(set_node_generation(&mut cib, "node2", 4));
        assert!(set_node_generation(&mut cib, "node2", 5));
        assert_eq!(node_generation(&cib, "node2"), Some(5));
        assert_eq!(node_generation(&cib, "node1"), None);
        assert!(cib.by_id("nodes-2-mailha-config-generation").is_some());
        assert!(!set_node_generation(&mut cib, "node9", 1));
    }
}
