//! The soak's history: what the clients and the samplers saw, one JSON
//! event per line (JSONL), each with its time in ms since the soak's
//! start:
//!
//! ```text
//! {"t_ms":1200,"type":"smtp","id":"soak-7-000042","outcome":"ok"}
//! {"t_ms":1250,"type":"imap","outcome":"ok","ids":["soak-7-000041"]}
//! {"t_ms":1300,"type":"mount","node":"node1","mounted":true}
//! {"t_ms":30000,"type":"fault","step":0,"phase":"start"}
//! {"t_ms":31800,"type":"fence","target":"node2"}
//! {"t_ms":32000,"type":"holder","lease":"node1","mail":"node1"}
//! ```
//!
//! The writer appends and flushes each line whole, so a crash leaves at
//! most the last line torn; the reader skips and counts such a line and
//! refuses anything else malformed, naming its line.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One event at its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Since the soak's start (the nodes share the host's clock).
    pub t_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// One SMTP submission's outcome; `id` is unique per message (in its
    /// Message-ID and subject, so IMAP reads find it).
    Smtp { id: String, outcome: SmtpOutcome },
    /// One IMAP session (login, select, fetch): the soak's ids it saw
    /// (the runner keeps only its own, so older mail in the box is not
    /// "unexpected"), in order and with repeats. `final` marks the read after the soak, on a
    /// healed cluster, that the checker judges lost and duplicates by.
    Imap {
        outcome: ImapOutcome,
        #[serde(default)]
        ids: Vec<String>,
        #[serde(default, rename = "final", skip_serializing_if = "is_false")]
        final_read: bool,
    },
    /// One node's mount table sampled (every 100 ms): the data mounted?
    Mount { node: String, mounted: bool },
    /// A schedule step injected (`start`) or healed (`end`).
    Fault { step: usize, phase: Phase },
    /// A fence seen (the node's journal, the lease): who was fenced.
    Fence { target: String },
    /// Who holds the lease (none: nobody; both nodes comma-separated),
    /// and where the mail runs when the recorder looked (the runner
    /// records the lease only, each time it changes: the mount samples
    /// say where the mail ran).
    Holder {
        lease: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail: Option<String>,
    },
    /// One node's Pacemaker seen running (`up`) or not, recorded when it
    /// changes (`soak observe`: what CTS does to the stack is not in a
    /// schedule). A moment with every node's down is a cluster stopped.
    Stack { node: String, up: bool },
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpOutcome {
    /// 250 after DATA: the server took responsibility for the message.
    Ok,
    /// A 4xx/5xx answer, or no connection: the message was not taken.
    Refused,
    /// The connection died after DATA was sent, before the answer: it
    /// may or may not have been taken.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapOutcome {
    Ok,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Start,
    End,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history: {0}")]
    Io(#[from] std::io::Error),
    #[error("history: an event did not encode: {0}")]
    Encode(serde_json::Error),
    #[error("history line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// Appends events to a history, one flushed line each.
pub struct HistoryWriter<W: Write> {
    out: W,
}

impl HistoryWriter<File> {
    /// Opens (or creates) the history file for appending: a runner that
    /// restarts continues the same history.
    pub fn append_to(path: &Path) -> Result<Self, HistoryError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| HistoryError::File {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(HistoryWriter { out })
    }
}

impl<W: Write> HistoryWriter<W> {
    pub fn new(out: W) -> Self {
        HistoryWriter { out }
    }

    pub fn append(&mut self, record: &Record) -> Result<(), HistoryError> {
        let mut line = serde_json::to_string(record).map_err(HistoryError::Encode)?;
        line.push('\n');
        // One write of the whole line: a crash tears at most this one.
        self.out.write_all(line.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A history as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub records: Vec<Record>,
    /// A last line cut short by a crash (0 or 1), skipped.
    pub torn: usize,
}

pub fn read_file(path: &Path) -> Result<History, HistoryError> {
    let mut f = File::open(path).map_err(|source| HistoryError::File {
        path: path.to_path_buf(),
        source,
    })?;
    read(&mut f)
}

pub fn read(r: &mut impl Read) -> Result<History, HistoryError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// Every line is one event; only a last line without its newline may be
/// torn (the writer ends each line with one).
pub fn parse(bytes: &[u8]) -> Result<History, HistoryError> {
    let mut h = History::default();
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // What follows the last newline: empty after a clean close, a torn
    // line (or a whole one that lost only its newline) after a crash.
    let tail = lines.pop().unwrap_or_default();
    for (i, line) in lines.iter().enumerate() {
        h.records
            .push(parse_line(line).map_err(|reason| HistoryError::Malformed {
                line: i + 1,
                reason,
            })?);
    }
    if !tail.is_empty() {
        match parse_line(tail) {
            Ok(r) => h.records.push(r),
            Err(_) => h.torn = 1,
        }
    }
    Ok(h)
}

fn parse_line(line: &[u8]) -> Result<Record, String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t_ms: u64, event: Event) -> Record {
        Record { t_ms, event }
    }

    fn sample() -> Vec<Record> {
        vec![
            rec(
                1200,
                Event::Smtp {
                    id: "m1".into(),
                    outcome: SmtpOutcome::Ok,
                },
            ),
            rec(
                1250,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids: vec!["m1".into()],
                    final_read: false,
                },
            ),
            rec(
                1300,
                Event::Mount {
                    node: "node1".into(),
                    mounted: true,
                },
            ),
            rec(
                30_000,
                Event::Fault {
                    step: 0,
                    phase: Phase::Start,
                },
            ),
            rec(
                31_800,
                Event::Fence {
                    target: "node2".into(),
                },
            ),
            rec(
                32_000,
                Event::Holder {
                    lease: Some("node1".into()),
                    mail: None,
                },
            ),
            rec(
                99_000,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids: vec!["m1".into()],
                    final_read: true,
                },
            ),
        ]
    }

    fn written(records: &[Record]) -> Vec<u8> {
        let mut w = HistoryWriter::new(Vec::new());
        for r in records {
            w.append(r).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads_back() {
        let h = parse(&written(&sample())).unwrap();
        assert_eq!(h.records, sample());
        assert_eq!(h.torn, 0);
    }

    #[test]
    fn an_event_is_one_flat_line_in_the_documented_shape() {
        let text = String::from_utf8(written(&sample()[..1])).unwrap();
        assert_eq!(
            text,
            "{\"t_ms\":1200,\"type\":\"smtp\",\"id\":\"m1\",\"outcome\":\"ok\"}\n"
        );
        let last = String::from_utf8(written(&sample()[6..])).unwrap();
        assert!(last.contains("\"final\":true"), "{last}");
    }

    #[test]
    fn a_line_torn_by_a_crash_is_skipped_and_counted() {
        let mut bytes = written(&sample());
        bytes.extend_from_slice(b"{\"t_ms\":99500,\"type\":\"sm");
        let h = parse(&bytes).unwrap();
        assert_eq!(h.records, sample());
        assert_eq!(h.torn, 1);
    }

    #[test]
    fn a_whole_last_line_that_lost_only_its_newline_is_kept() {
        let mut bytes = written(&sample());
        bytes.pop();
        let h = parse(&bytes).unwrap();
        assert_eq!(h.records, sample());
        assert_eq!(h.torn, 0);
    }

    #[test]
    fn a_malformed_line_inside_the_history_is_an_error_naming_it() {
        // Not a crash's trace: the writer never leaves a broken line
        // followed by more lines.
        let mut bytes = written(&sample()[..2]);
        bytes.extend_from_slice(b"{\"t_ms\":5,\"type\":\"teleport\"}\n");
        bytes.extend_from_slice(&written(&sample()[2..]));
        let e = parse(&bytes).unwrap_err().to_string();
        assert!(e.starts_with("history line 3: "), "{e}");
        assert!(e.contains("teleport"), "{e}");
    }

    #[test]
    fn a_file_history_is_appended_to_across_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        for r in sample() {
            HistoryWriter::append_to(&path).unwrap().append(&r).unwrap();
        }
        assert_eq!(read_file(&path).unwrap().records, sample());
    }
}
