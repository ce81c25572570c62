//! The durable spool: one file per event on local disk, so an event that
//! was recorded survives a crash, a reboot and a relay that is down.
//!
//! Layout under the spool directory (0700, or root:hacluster 0710 once
//! shared with Pacemaker; files 0600):
//!
//! ```text
//! pending/<event-id>.json        recorded, not yet part of an incident
//! outbox/<incident-id>/          claimed into an incident, being delivered
//!     <event-id>.json            the incident's events (moved from pending/)
//!     done-<channel>             that channel has delivered the incident
//!     failed-<channel>           "<attempts> <unix-ms>\n": that channel's
//!                                failed attempts and the last one's time
//! sent/<incident-id>/            every channel delivered; kept for the record
//!                                (with its failed-* counts)
//! lock                           held (flock) by the one sender at a time
//! ```
//!
//! Writing an event: a temporary file is written with `create_new`, synced,
//! renamed into `pending/`, and the directory is synced, so after `record`
//! returns the event is on disk whatever happens next.
//!
//! Delivery is **at-least-once**, per channel. The order is: claim (rename
//! events into `outbox/<incident>`, sync), send, then mark the channel done
//! (create `done-<channel>`, sync). A crash between a channel's successful
//! send and its mark makes that one channel send the incident again after
//! the restart. The other order (mark, then send) is at-most-once: a crash
//! between mark and send would lose the incident for good. For alerting a
//! lost mail about a fenced node is far worse than a duplicate, and the
//! window is milliseconds (between the relay's "250 OK" and one fsync). A
//! repeat is recognisable: it carries the same Message-ID and the same
//! incident id (webhook `Idempotency-Key`), so receivers can drop it. In
//! every other case, including a failure of another channel, the marks make
//! sure the same incident is never sent twice on a channel.

use super::event::Event;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

/// Where the spool lives on a cluster node.
pub const DEFAULT_DIR: &str = "/var/lib/mailha/spool";
/// Environment variable that moves the spool (tests, a non-root lab).
pub const ENV_DIR: &str = "MAILHA_SPOOL";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a spooled event: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}: another sender holds the spool lock")]
    Busy(PathBuf),
    #[error("{0:?}: not an incident id and a channel's short name")]
    BadName(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The spool directory from `MAILHA_SPOOL`, else the default.
pub fn default_dir() -> PathBuf {
    std::env::var_os(ENV_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// Records one event in the default spool. This is the call mailha's own
/// agents make (service restarted, switchover, lease lost, fenced, storage
/// stop escalated); it returns once the event is durable and never touches
/// the network.
pub fn record(event: &Event) -> Result<String, SpoolError> {
    Spool::open(default_dir())?.record(event)
}

/// What an agent says happened, recorded in the default spool for the
/// operator's mail: the node (this host), the resource and a description,
/// all cleaned like Pacemaker's values. Best effort: an agent's verdict
/// never depends on the spool, so a failure is only logged (stderr, which
/// Pacemaker keeps in its log).
pub fn note(kind: super::event::Kind, rsc: Option<&str>, desc: &str) {
    note_about(kind, &super::hostname(), rsc, desc)
}

/// `note` about another node (e.g. the peer this node fenced).
pub fn note_about(kind: super::event::Kind, node: &str, rsc: Option<&str>, desc: &str) {
    use super::event::{Event, MAX_NAME, MAX_TEXT, clean};
    let host = super::hostname();
    let mut e = Event::new(kind, &host, SystemTime::now());
    e.node = Some(clean(node, MAX_NAME));
    e.rsc = rsc.map(|r| clean(r, MAX_NAME));
    e.desc = Some(clean(desc, MAX_TEXT));
    if let Err(err) = record(&e) {
        eprintln!("mailha: could not spool the event for the alert mail: {err}");
    }
}

/// Events read from a directory, by id, and the files that could not be
/// read.
pub type Read = (Vec<(String, Event)>, Vec<SpoolError>);

/// An incident claimed into `outbox/`, with the channels already done.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: String,
    pub events: Vec<(String, Event)>,
    pub done: Vec<String>,
}

/// An incident of `sent/` as `Spool::sent_since` reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentIncident {
    /// When it began, ms since the epoch.
    pub at_ms: u64,
    pub events: Vec<(String, Event)>,
    /// Kept back as a repeat rather than mailed.
    pub quieted: bool,
}

/// One channel's failed attempts at one incident (`failed-<channel>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub attempts: u64,
    /// When the last one failed, ms since the epoch.
    pub last_ms: u64,
}

/// A channel's name as the sender has it (`smtp`, `webhook`, ...): it
/// becomes part of a file name here and a label value in the exporter.
pub fn channel_name_ok(ch: &str) -> bool {
    (1..=32).contains(&ch.len())
        && ch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A `failed-<channel>` file's text; None unless it is exactly what
/// `mark_failed` writes.
fn parse_failed(text: &str) -> Option<Failed> {
    let (attempts, last_ms) = text.strip_suffix('\n')?.split_once(' ')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(attempts) || !digits(last_ms) {
        return None;
    }
    Some(Failed {
        attempts: attempts.parse().ok()?,
        last_ms: last_ms.parse().ok()?,
    })
}

/// Reads one `failed-<channel>` file; anything but our own format (or a
/// file too long to be ours) is None.
fn read_failed(path: &Path) -> Option<Failed> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(64)
        .read_to_string(&mut text)
        .ok()?;
    parse_failed(&text)
}

#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A new event id: microseconds since the epoch, pid, per-process counter,
/// zero-padded so that ids sort in recording order as plain strings, and
/// unique on this host (a pid is not reused within one microsecond, and the
/// counter separates the events of one process).
fn new_id(now: SystemTime) -> String {
    let us = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    format!("{us:017}-{:07}-{seq:06}", std::process::id())
}

/// The marker of an incident kept back as a repeat (`Spool::quiet`).
const QUIETED: &str = "quieted";

/// When the event or incident of `id` was recorded, ms since the epoch;
/// None for a name that is not an id.
pub fn id_time_ms(id: &str) -> Option<u64> {
    if !valid_id(id) {
        return None;
    }
    id.get(..17)?.parse::<u64>().ok().map(|us| us / 1000)
}

/// An id is ours only if it has exactly our shape: a file someone dropped
/// into the spool cannot smuggle a path through it.
fn valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes().enumerate().all(|(i, b)| match i {
            17 | 25 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn make_private_dir(dir: &Path) -> Result<(), SpoolError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have narrowed it further, never widened it;
            // set it exactly so the check below is meaningful.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

impl Spool {
    /// Opens (creating if needed) the spool at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        let root = root.into();
        if let Some(parent) = root.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        make_private_dir(&root)?;
        for sub in ["pending", "outbox", "sent"] {
            make_private_dir(&root.join(sub))?;
        }
        Ok(Spool { root })
    }

    /// Run as root (the sender, the package's postinst): lets Pacemaker's
    /// `hacluster` user, as whom the alert agent may run, record: it owns
    /// `pending/`, and its group may pass through the spool directory
    /// (root's, mode 0710) to reach it. Nothing more: were the spool
    /// directory its own, it could swap `outbox/`, `sent/` or `lock` for
    /// symlinks that this root sender then follows. A spool an older
    /// version gave to hacluster is taken back. Nothing to do when not
    /// root or when there is no such user (tests, other setups).
    pub fn share_with_pacemaker(&self) -> Result<(), SpoolError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        let Some(user) = nix::unistd::User::from_name("hacluster").ok().flatten() else {
            return Ok(());
        };
        let root = &self.root;
        std::os::unix::fs::chown(root, Some(0), Some(user.gid.as_raw())).map_err(io_err(root))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o710)).map_err(io_err(root))?;
        let pending = self.root.join("pending");
        std::os::unix::fs::chown(&pending, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(io_err(&pending))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes the event durably into `pending/`; returns its id.
    pub fn record(&self, event: &Event) -> Result<String, SpoolError> {
        let id = new_id(SystemTime::now());
        let dir = self.root.join("pending");
        let tmp = dir.join(format!(".tmp-{id}"));
        let dst = dir.join(format!("{id}.json"));
        let json = serde_json::to_vec_pretty(event).expect("an Event always serializes");
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.write_all(b"\n")?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
        sync_dir(&dir)?;
        Ok(id)
    }

    /// Reads the `*.json` events of a directory, ordered by id. Unreadable
    /// or foreign files are reported, not fatal: one bad file must not
    /// block every other alert.
    fn read_events(dir: &Path) -> Result<Read, SpoolError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let path = entry.path();
            match fs::read(&path) {
                Err(e) => bad.push(io_err(&path)(e)),
                Ok(bytes) => match serde_json::from_slice::<Event>(&bytes) {
                    Ok(ev) => ok.push((id.to_string(), ev)),
                    Err(source) => bad.push(SpoolError::Corrupt { path, source }),
                },
            }
        }
        ok.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((ok, bad))
    }

    /// Events recorded and not yet claimed, oldest first, plus the files
    /// that could not be read.
    pub fn pending(&self) -> Result<Read, SpoolError> {
        Self::read_events(&self.root.join("pending"))
    }

    /// Every event the spool holds: pending, being delivered and sent
    /// (kept for the record), for `mailha history`; unreadable files are
    /// skipped (the sender reports them). Opened without creating: a
    /// history must not make the spool.
    pub fn all_events(root: &Path) -> Vec<Event> {
        Self::events_since(root, 0)
    }

    /// The readable events of `pending/`, `outbox/` and `sent/` recorded
    /// since `since_ms` (ms since the epoch), opening only what may be
    /// that recent (0: everything, `all_events`): a
    /// directory of an incident (named by its first event's id, which
    /// starts with its time) that began more than an hour earlier is
    /// skipped, since an incident gathers its events within a batch
    /// window of seconds. So a status page that asks every few seconds
    /// reads a day's events, not the spool's whole record.
    pub fn events_since(root: &Path, since_ms: u64) -> Vec<Event> {
        let oldest_us = since_ms.saturating_sub(3_600_000).saturating_mul(1000);
        let recent = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.get(..17)?.parse::<u64>().ok())
                .is_none_or(|us| us >= oldest_us)
        };
        let mut dirs = vec![root.join("pending")];
        for sub in ["outbox", "sent"] {
            if let Ok(rd) = fs::read_dir(root.join(sub)) {
                dirs.extend(
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_dir() && recent(p)),
                );
            }
        }
        dirs.iter()
            .filter_map(|d| Self::read_events(d).ok())
            .flat_map(|(ok, _)| ok.into_iter().map(|(_, e)| e))
            .filter(|e| e.recorded_at_ms >= since_ms)
            .collect()
    }

    /// One incident directory of `outbox/` or `sent/` as it stands: its
    /// readable events and the channels that delivered it (`done-*`).
    /// Creates nothing (the exporter reads a spool it does not own).
    pub fn read_incident(dir: &Path) -> (Vec<Event>, Vec<String>) {
        let events = Self::read_events(dir)
            .map(|(ok, _)| ok.into_iter().map(|(_, e)| e).collect())
            .unwrap_or_default();
        let mut done: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|f| {
                f.file_name()
                    .to_str()?
                    .strip_prefix("done-")
                    .map(str::to_string)
            })
            .collect();
        done.sort();
        (events, done)
    }

    /// The failed attempts per channel recorded in one incident directory
    /// of `outbox/` or `sent/`. A garbled or unreadable file counts as
    /// none: a metric's input must never stop anyone. Creates nothing.
    pub fn read_failures(dir: &Path) -> BTreeMap<String, Failed> {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|f| {
                let name = f.file_name();
                let ch = name.to_str()?.strip_prefix("failed-")?;
                if !channel_name_ok(ch) {
                    return None;
                }
                Some((ch.to_string(), read_failed(&f.path())?))
            })
            .collect()
    }

    /// Moves the given pending events into `outbox/<incident_id>`. The
    /// incident id is its first event's id. A crash halfway leaves the rest
    /// in `pending/`, where they become a later incident: split, never lost
    /// and never duplicated.
    pub fn claim(&self, event_ids: &[String]) -> Result<Option<String>, SpoolError> {
        let Some(first) = event_ids.first() else {
            return Ok(None);
        };
        let pending = self.root.join("pending");
        let dir = self.root.join("outbox").join(first);
        make_private_dir(&dir)?;
        for id in event_ids.iter().filter(|i| valid_id(i)) {
            let from = pending.join(format!("{id}.json"));
            let to = dir.join(format!("{id}.json"));
            match fs::rename(&from, &to) {
                Ok(()) => {}
                // Claimed already (a previous run crashed after this
                // rename): nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&from)(e)),
            }
        }
        sync_dir(&dir)?;
        sync_dir(&pending)?;
        Ok(Some(first.clone()))
    }

    /// Incidents claimed and not yet delivered on every channel, oldest
    /// first: after a restart these are sent before anything new.
    pub fn outbox(&self) -> Result<(Vec<Claimed>, Vec<SpoolError>), SpoolError> {
        let out = self.root.join("outbox");
        let mut incidents = Vec::new();
        let mut bad = Vec::new();
        for entry in fs::read_dir(&out).map_err(io_err(&out))? {
            let entry = entry.map_err(io_err(&out))?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !valid_id(&id) {
                continue;
            }
            let dir = entry.path();
            let (events, mut b) = Self::read_events(&dir)?;
            bad.append(&mut b);
            let mut done = Vec::new();
            for f in fs::read_dir(&dir).map_err(io_err(&dir))? {
                let f = f.map_err(io_err(&dir))?;
                if let Some(ch) = f.file_name().to_str().and_then(|n| n.strip_prefix("done-")) {
                    done.push(ch.to_string());
                }
            }
            done.sort();
            incidents.push(Claimed { id, events, done });
        }
        incidents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((incidents, bad))
    }

    /// Records that `channel` delivered the incident; synced before return.
    pub fn mark_done(&self, incident: &str, channel: &str) -> Result<(), SpoolError> {
        self.mark(incident, &format!("done-{channel}"))
    }

    /// An empty marker file `name` in the incident's `outbox/` directory,
    /// synced with the directory before return.
    fn mark(&self, incident: &str, name: &str) -> Result<(), SpoolError> {
        let dir = self.root.join("outbox").join(incident);
        let path = dir.join(name);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&path))?;
        sync_dir(&dir)
    }

    /// Counts one failed attempt of `channel` at the incident, at `when`,
    /// in `failed-<channel>`; synced before return. Only a count and a
    /// time: the error's text may quote a relay's banner, a URL with its
    /// token or anything a hostile server answered, so it stays in the
    /// sender's log. Written to a temporary file and renamed, so a reader
    /// (the exporter) sees the old count or the new one, never half; a
    /// garbled file starts over at one rather than failing the sender.
    pub fn mark_failed(
        &self,
        incident: &str,
        channel: &str,
        when: SystemTime,
    ) -> Result<Failed, SpoolError> {
        if !channel_name_ok(channel) || !valid_id(incident) {
            return Err(SpoolError::BadName(format!("{incident}/{channel}")));
        }
        let dir = self.root.join("outbox").join(incident);
        let path = dir.join(format!("failed-{channel}"));
        let tmp = dir.join(format!(".tmp-failed-{channel}"));
        let before = read_failed(&path).map_or(0, |f| f.attempts);
        let now = Failed {
            attempts: before.saturating_add(1),
            last_ms: super::event::epoch_ms(when),
        };
        let write = || -> io::Result<()> {
            // One sender at a time (the lock): a leftover is a crash's.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            writeln!(f, "{} {}", now.attempts, now.last_ms)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&dir)?;
        Ok(now)
    }

    /// A repeat kept back (`repeat`): marked `quieted` and moved to
    /// `sent/` unmailed, so the record still holds it.
    pub fn quiet(&self, incident: &str) -> Result<(), SpoolError> {
        if !valid_id(incident) {
            return Err(SpoolError::BadName(incident.to_string()));
        }
        self.mark(incident, QUIETED)?;
        self.finish(incident)
    }

    /// The incidents of `sent/` that began at `since_ms` or later, oldest
    /// first: their begin (ms since the epoch), events and whether they
    /// were quieted. Only those directories are opened (an id starts with
    /// its time); unreadable files are skipped.
    pub fn sent_since(&self, since_ms: u64) -> Vec<SentIncident> {
        let sent = self.root.join("sent");
        let Ok(rd) = fs::read_dir(&sent) else {
            return Vec::new();
        };
        let mut out: Vec<SentIncident> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let id = e.file_name().into_string().ok()?;
                let at_ms = id_time_ms(&id)?;
                (at_ms >= since_ms).then_some((id, at_ms))
            })
            .filter_map(|(id, at_ms)| {
                let dir = sent.join(&id);
                let (events, _) = Self::read_events(&dir).ok()?;
                Some(SentIncident {
                    at_ms,
                    events,
                    quieted: Self::is_quieted(&dir),
                })
            })
            .collect();
        out.sort_by_key(|i| i.at_ms);
        out
    }

    /// Whether the incident directory `dir` (of `sent/`) was kept back
    /// as a repeat rather than mailed. Creates nothing.
    pub fn is_quieted(dir: &Path) -> bool {
        dir.join(QUIETED).exists()
    }

    /// Every channel delivered: the incident moves to `sent/`.
    pub fn finish(&self, incident: &str) -> Result<(), SpoolError> {
        let from = self.root.join("outbox").join(incident);
        let sent = self.root.join("sent");
        fs::rename(&from, sent.join(incident)).map_err(io_err(&from))?;
        sync_dir(&self.root.join("outbox"))?;
        sync_dir(&sent)
    }

    /// Takes the sender lock (non-blocking), so that a `send-pending` run
    /// by hand and the `run` loop never deliver the same incident at once.
    /// Held until the returned file is dropped.
    pub fn lock(&self) -> Result<File, SpoolError> {
        let path = self.root.join("lock");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(fs::TryLockError::WouldBlock) => Err(SpoolError::Busy(path)),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::Kind;
    use super::*;

    #[test]
    fn hacluster_owns_pending_only_never_the_spool_directory() {
        use std::os::unix::fs::MetadataExt;
        let user = nix::unistd::User::from_name("hacluster").ok().flatten();
        let (true, Some(user)) = (nix::unistd::geteuid().is_root(), user) else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: spool ownership: needs root and a hacluster user"
            );
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("spool");
        let s = Spool::open(&dir).unwrap();
        // As an older version left it: the whole spool hacluster's.
        std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), None).unwrap();
        s.share_with_pacemaker().unwrap();
        let m = |p: &Path| fs::metadata(p).unwrap();
        assert_eq!(m(&dir).uid(), 0, "the spool directory is root's");
        assert_eq!(m(&dir).gid(), user.gid.as_raw());
        assert_eq!(m(&dir).mode() & 0o7777, 0o710);
        assert_eq!(m(&dir.join("pending")).uid(), user.uid.as_raw());
        for sub in ["outbox", "sent"] {
            assert_eq!(m(&dir.join(sub)).uid(), 0, "{sub}");
            assert_eq!(m(&dir.join(sub)).mode() & 0o7777, 0o700, "{sub}");
        }
    }

    fn ev(kind: Kind) -> Event {
        Event::new(kind, "mx1", SystemTime::now())
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_spool_and_its_files_are_private() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path().join("spool")).unwrap();
        let id = s.record(&ev(Kind::Switchover)).unwrap();
        assert_eq!(mode(s.root()), 0o700);
        assert_eq!(mode(&s.root().join("pending")), 0o700);
        assert_eq!(
            mode(&s.root().join("pending").join(format!("{id}.json"))),
            0o600
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(s.root().join("pending")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn ids_are_unique_and_sort_in_recording_order() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let ids: Vec<String> = (0..200)
            .map(|_| s.record(&ev(Kind::Resource)).unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert!(ids.iter().all(|i| valid_id(i)), "{}", ids[0]);
    }

    #[test]
    fn a_second_spool_instance_sees_what_the_first_recorded() {
        let t = tempfile::tempdir().unwrap();
        let a = Spool::open(t.path()).unwrap();
        a.record(&ev(Kind::LeaseLost)).unwrap();
        a.record(&ev(Kind::Fenced)).unwrap();
        drop(a);
        // A new process after a restart.
        let b = Spool::open(t.path()).unwrap();
        let (events, bad) = b.pending().unwrap();
        assert!(bad.is_empty());
        let kinds: Vec<_> = events.iter().map(|(_, e)| e.kind()).collect();
        assert_eq!(kinds, vec![Kind::LeaseLost, Kind::Fenced]);
    }

    #[test]
    fn the_last_day_s_events_are_read_without_opening_older_incidents() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let now = SystemTime::now();
        let day_ago = now - std::time::Duration::from_secs(24 * 3600);
        let old = Event::new(
            Kind::Node,
            "mx1",
            now - std::time::Duration::from_secs(48 * 3600),
        );
        let inc = s.claim(&[s.record(&old).unwrap()]).unwrap().unwrap();
        s.finish(&inc).unwrap();
        s.record(&ev(Kind::Fenced)).unwrap();
        // An incident whose id says it began long ago is not opened, even
        // if an event in it were recent.
        let ancient = t
            .path()
            .join("sent")
            .join("00000000000000001-0000001-000000");
        fs::create_dir_all(&ancient).unwrap();
        fs::copy(
            t.path().join("sent").join(&inc).join(format!("{inc}.json")),
            ancient.join("00000000000000001-0000001-000000.json"),
        )
        .unwrap();
        let since = day_ago
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let kinds: Vec<_> = Spool::events_since(t.path(), since)
            .iter()
            .map(|e| e.kind())
            .collect();
        assert_eq!(kinds, vec![Kind::Fenced]);
        assert_eq!(
            Spool::events_since(t.path(), 0).len(),
            3,
            "since the epoch, every incident is opened"
        );
    }

    #[test]
    fn a_delivered_incident_is_not_offered_again() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let ids = vec![
            s.record(&ev(Kind::Node)).unwrap(),
            s.record(&ev(Kind::Switchover)).unwrap(),
        ];
        let inc = s.claim(&ids).unwrap().unwrap();
        assert!(s.pending().unwrap().0.is_empty());
        s.mark_done(&inc, "smtp").unwrap();
        s.finish(&inc).unwrap();
        let again = Spool::open(t.path()).unwrap();
        assert!(again.pending().unwrap().0.is_empty());
        assert!(again.outbox().unwrap().0.is_empty());
        assert!(
            t.path()
                .join("sent")
                .join(&inc)
                .join(format!("{}.json", ids[1]))
                .exists()
        );
    }

    #[test]
    fn after_a_crash_mid_delivery_only_the_undone_channels_remain() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let id = s.record(&ev(Kind::Fenced)).unwrap();
        let inc = s.claim(std::slice::from_ref(&id)).unwrap().unwrap();
        s.mark_done(&inc, "smtp").unwrap();
        // ...the process dies before the webhook went out.
        let after = Spool::open(t.path()).unwrap();
        let (out, _) = after.outbox().unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, inc);
        assert_eq!(out[0].done, vec!["smtp".to_string()]);
        assert_eq!(out[0].events[0].0, id);
    }

    #[test]
    fn claiming_twice_after_a_crash_is_harmless() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let ids = vec![s.record(&ev(Kind::Node)).unwrap()];
        s.claim(&ids).unwrap();
        s.claim(&ids).unwrap();
        assert_eq!(s.outbox().unwrap().0[0].events.len(), 1);
    }

    #[test]
    fn a_corrupt_file_is_reported_and_does_not_block_the_others() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        s.record(&ev(Kind::Node)).unwrap();
        fs::write(
            t.path()
                .join("pending/00000000000000001-0000001-000001.json"),
            "{not json",
        )
        .unwrap();
        let (ok, bad) = s.pending().unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 1);
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }

    fn claimed_incident(s: &Spool) -> String {
        let id = s.record(&ev(Kind::Fenced)).unwrap();
        s.claim(&[id]).unwrap().unwrap()
    }

    #[test]
    fn each_failed_attempt_is_counted_per_channel_with_the_last_time() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let inc = claimed_incident(&s);
        let dir = t.path().join("outbox").join(&inc);
        assert!(Spool::read_failures(&dir).is_empty(), "nothing failed yet");
        s.mark_failed(&inc, "smtp", at(1_000)).unwrap();
        s.mark_failed(&inc, "smtp", at(6_000)).unwrap();
        s.mark_failed(&inc, "webhook", at(2_000)).unwrap();
        let f = Spool::read_failures(&dir);
        assert_eq!(
            f["smtp"],
            Failed {
                attempts: 2,
                last_ms: 6_000
            }
        );
        assert_eq!(f["webhook"].attempts, 1);
        assert_eq!(
            fs::read_to_string(dir.join("failed-smtp")).unwrap(),
            "2 6000\n"
        );
        assert_eq!(mode(&dir.join("failed-smtp")), 0o600);
        // No temporary file is left behind, and the incident is still
        // waiting for its channels.
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        let (out, bad) = s.outbox().unwrap();
        assert!(bad.is_empty());
        assert_eq!(out[0].done, Vec::<String>::new());
    }

    #[test]
    fn the_failure_count_survives_delivery_into_sent() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let inc = claimed_incident(&s);
        s.mark_failed(&inc, "smtp", at(1_000)).unwrap();
        s.mark_done(&inc, "smtp").unwrap();
        s.finish(&inc).unwrap();
        let f = Spool::read_failures(&t.path().join("sent").join(&inc));
        assert_eq!(f["smtp"].attempts, 1);
        let (events, done) = Spool::read_incident(&t.path().join("sent").join(&inc));
        assert_eq!((events.len(), done), (1, vec!["smtp".to_string()]));
    }

    #[test]
    fn a_garbled_failure_file_counts_as_none_and_never_stops_the_sender() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let inc = claimed_incident(&s);
        let dir = t.path().join("outbox").join(&inc);
        for garbage in [
            "",
            "x 1\n",
            "3\n",
            "-1 5\n",
            "1 2 3\n",
            "99999999999999999999 1\n",
        ] {
            fs::write(dir.join("failed-smtp"), garbage).unwrap();
            assert!(Spool::read_failures(&dir).is_empty(), "{garbage:?}");
        }
        fs::write(dir.join("failed-smtp"), vec![b'7'; 4096]).unwrap();
        assert!(Spool::read_failures(&dir).is_empty(), "too long to be ours");
        // A foreign name is not a channel.
        fs::write(dir.join("failed-SMTP relay"), "1 1\n").unwrap();
        assert!(Spool::read_failures(&dir).is_empty());
        // The sender starts the count over instead of failing.
        let f = s.mark_failed(&inc, "smtp", at(5_000)).unwrap();
        assert_eq!(f.attempts, 1);
        assert_eq!(Spool::read_failures(&dir)["smtp"].attempts, 1);
    }

    #[test]
    fn a_failure_record_holds_a_count_and_a_time_only() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let inc = claimed_incident(&s);
        s.mark_failed(&inc, "webhook", at(1_796_501_861_123))
            .unwrap();
        let text =
            fs::read_to_string(t.path().join("outbox").join(&inc).join("failed-webhook")).unwrap();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || b == b' ' || b == b'\n'),
            "{text:?}"
        );
        // A name that is no channel's never becomes a path.
        for hostile in ["../../etc/x", "smtp/../x", "", "SMTP"] {
            assert!(matches!(
                s.mark_failed(&inc, hostile, at(1)),
                Err(SpoolError::BadName(_))
            ));
        }
        assert!(matches!(
            s.mark_failed("../pending", "smtp", at(1)),
            Err(SpoolError::BadName(_))
        ));
    }

    #[test]
    fn only_one_sender_holds_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let held = s.lock().unwrap();
        assert!(matches!(s.lock(), Err(SpoolError::Busy(_))));
        drop(held);
        s.lock().unwrap();
    }
}
