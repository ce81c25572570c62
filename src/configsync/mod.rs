//! One config on both nodes (docs/config.md, "One config on both nodes").
//!
//! - `mailha apply` stores the applied file in the CIB (`record`) in the
//!   same patch as the cluster change, then sends it, with the files it
//!   names (the SMTP password file, CA files), to the peer over ssh: the
//!   constant command `mailha config receive`, the payload on stdin
//!   (`Push`). The peer validates it as its own before anything is
//!   written (`receive`): the config loads, one node entry is this machine
//!   with addresses bound here, and it renders the same cluster the sender
//!   rendered. A first round (`check_only`) runs before the CIB patch, so
//!   a refusal changes nothing anywhere.
//! - A node that was down catches up when Pacemaker starts the
//!   `config-sync` clone instance on it (`agents::config`): after the join,
//!   so its CIB is the cluster's, with Pacemaker's timeout around it and
//!   every child under `exec::run`. It rebuilds the file from the CIB only
//!   when this node's file is exactly an older generation or missing, and
//!   only if the CIB alone gives it back byte for byte (secrets and files
//!   are never in the CIB); everything else is left to the operator
//!   (`mailha config pull`, which can also fetch from the peer).
//! - A file that held edits the cluster never ran is never lost: before it
//!   is replaced it is kept beside as `mailha.toml.unapplied`.

pub mod record;

use crate::cib::xml::El;
use crate::config::{self, Config};
use crate::files::{FileError, write_atomic};
use record::{FileRef, FileState, Key, Running};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The largest payload a peer reads.
pub const MAX_PAYLOAD: usize = 1 << 20;
pub const LOCK_PATH: &str = "/run/mailha/config.lock";
/// The remote command of the push: a constant; nothing from the config.
pub const RECEIVE_ARGV: &[&str] = &["mailha", "config", "receive"];
/// The remote command a pull fetches the peer's file with.
pub const SEND_ARGV: &[&str] = &["mailha", "config", "send"];

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the payload is not valid: {0}")]
    Payload(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
    #[error("the cluster key {}: {source} (config digests are keyed with it)", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Record(#[from] record::RecordError),
    #[error("{0}")]
    Lock(String),
}

/// Where this node keeps what the sync reads and writes; a parameter so
/// tests run in a temporary directory.
#[derive(Debug, Clone)]
pub struct Local {
    pub config: PathBuf,
    pub authkey: PathBuf,
    pub lock: PathBuf,
}

impl Local {
    pub fn system(config: &Path) -> Local {
        Local {
            config: config.to_path_buf(),
            authkey: PathBuf::from(crate::corosync::AUTHKEY_PATH),
            lock: PathBuf::from(LOCK_PATH),
        }
    }

    pub fn key(&self) -> Result<Key, SyncError> {
        std::fs::read(&self.authkey)
            .map(|k| Key::from_authkey(&k))
            .map_err(|source| SyncError::Key {
                path: self.authkey.clone(),
                source,
            })
    }

    /// Where a file with edits the cluster never ran is kept.
    pub fn unapplied(&self) -> PathBuf {
        let mut s = self.config.clone().into_os_string();
        s.push(".unapplied");
        s.into()
    }
}

/// The files a config names that must be the same on both nodes, with the
/// mode each is written with.
pub fn referenced(cfg: &Config) -> Vec<(PathBuf, u32)> {
    let mut v = Vec::new();
    if let Some(a) = &cfg.alerts {
        if let Some(s) = &a.smtp {
            if let config::Secret::File(p) = &s.password {
                v.push((p.clone(), 0o600));
            }
            if let Some(c) = &s.ca_file {
                v.push((c.clone(), 0o644));
            }
        }
        if let Some(c) = a.webhook.as_ref().and_then(|w| w.ca_file.as_ref()) {
            v.push((c.clone(), 0o644));
        }
    }
    if let Some(a) = &cfg.exporter.auth {
        v.push((a.password_file.clone(), 0o600));
    }
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// The record's entries for the referenced files this node has.
pub fn file_refs(cfg: &Config, key: &Key) -> Vec<FileRef> {
    referenced(cfg)
        .into_iter()
        .filter_map(|(p, mode)| {
            std::fs::read(&p).ok().map(|c| FileRef {
                path: p.display().to_string(),
                mode,
                digest: key.digest(&c),
            })
        })
        .collect()
}

/// The referenced files whose content here is not the one the record
/// names (missing ones included).
pub fn files_behind(r: &record::Record, key: &Key) -> Vec<String> {
    r.files
        .iter()
        .filter(|f| {
            std::fs::read(&f.path)
                .map(|c| key.digest(&c))
                .ok()
                .as_deref()
                != Some(f.digest.as_str())
        })
        .map(|f| f.path.clone())
        .collect()
}

/// One referenced file in a payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileBlob {
    pub path: String,
    pub content_b64: String,
}

impl FileBlob {
    pub fn read(path: &Path) -> Option<FileBlob> {
        use base64::Engine;
        std::fs::read(path).ok().map(|c| FileBlob {
            path: path.display().to_string(),
            content_b64: base64::engine::general_purpose::STANDARD.encode(c),
        })
    }
    fn content(&self) -> Result<Vec<u8>, SyncError> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.content_b64)
            .map_err(|_| SyncError::Payload(format!("{}: not base64", self.path)))
    }
}

/// The files the config names that exist here, for a payload.
pub fn blobs(cfg: &Config) -> Vec<FileBlob> {
    referenced(cfg)
        .iter()
        .filter_map(|(p, _)| FileBlob::read(p))
        .collect()
}

/// What `apply` sends the peer on stdin (and `config send` answers a pull
/// with).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Push {
    /// The node that sends it.
    pub from: String,
    pub generation: u64,
    pub text: String,
    #[serde(default)]
    pub files: Vec<FileBlob>,
    /// `cib::digest` of what the text renders on the sender.
    pub rendered_digest: String,
    /// Digests of every generation the cluster has run: a file here with
    /// one of these is no loss when replaced.
    #[serde(default)]
    pub known: Vec<String>,
    /// Validate only; write nothing.
    #[serde(default)]
    pub check_only: bool,
}

impl Push {
    pub fn new(cfg: &Config, text: &str, from: &str, generation: u64, known: Vec<String>) -> Push {
        Push {
            from: from.to_string(),
            generation,
            text: text.to_string(),
            files: blobs(cfg),
            rendered_digest: crate::cib::digest(&crate::cib::render(cfg)),
            known,
            check_only: false,
        }
    }
}

/// The payload's files, each one the config names (else refused), with
/// the mode it is written with.
pub fn named_files(
    cfg: &Config,
    blobs: &[FileBlob],
) -> Result<Vec<(PathBuf, u32, Vec<u8>)>, SyncError> {
    let allowed = referenced(cfg);
    blobs
        .iter()
        .map(|b| {
            let (path, mode) = allowed
                .iter()
                .find(|(a, _)| a.as_path() == Path::new(&b.path))
                .ok_or_else(|| {
                    SyncError::Payload(format!("{} is not a file this config names", b.path))
                })?;
            Ok((path.clone(), *mode, b.content()?))
        })
        .collect()
}

/// Problems as the loader prints them: file:line:column, the field.
fn located(path: &Path, text: &str, problems: Vec<config::Problem>) -> String {
    let map = config::diag::SourceMap::new(text);
    problems
        .into_iter()
        .map(|p| map.locate(path, p).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a receive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Checked,
    Wrote {
        /// This node's name in the config.
        node: String,
        generation: u64,
        /// Where edits the cluster never ran were kept.
        kept: Option<PathBuf>,
    },
}

/// The peer's side of a push: validate the payload as this node's own
/// config, then (unless `check_only`) write the files it names and the
/// config, atomically, the config 0600. A refusal writes nothing and says
/// why with file:line:column. `me` is what this machine observes of
/// itself (hostname, bound addresses).
pub fn receive(
    local: &Local,
    input: &[u8],
    hostname: &str,
    addrs: &[std::net::IpAddr],
) -> Result<Received, SyncError> {
    if input.len() > MAX_PAYLOAD {
        return Err(SyncError::Payload("larger than 1 MiB".into()));
    }
    let p: Push = serde_json::from_slice(input).map_err(|e| SyncError::Payload(e.to_string()))?;
    let loaded = config::load_str(&local.config, &p.text, Some(0o600))
        .map_err(|e| SyncError::Invalid(e.to_string()))?;
    let cfg = &loaded.config;
    let id = crate::host::identity_problems(cfg, hostname, addrs);
    if !id.is_empty() {
        return Err(SyncError::Invalid(located(&local.config, &p.text, id)));
    }
    let node = crate::host::local_node(cfg, hostname, addrs)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let mine = crate::cib::digest(&crate::cib::render(cfg));
    if mine != p.rendered_digest {
        return Err(SyncError::Refused(format!(
            "{hostname} renders another cluster from this file than {} does: mailha or the installed software differ between the nodes (`mailha render cib` on both shows how); nothing was written",
            p.from
        )));
    }
    let files = named_files(cfg, &p.files)?;
    if p.check_only {
        return Ok(Received::Checked);
    }
    let _lock = lock(&local.lock, Duration::from_secs(10))?;
    let key = local.key().ok();
    let kept = install(local, key.as_ref(), &p.text, &files, &p.known)?;
    Ok(Received::Wrote {
        node,
        generation: p.generation,
        kept,
    })
}

/// Writes the referenced files, then the config; a config with text the
/// cluster never ran (`known`: the digests it ran) is kept beside first.
/// The caller holds the lock.
pub fn install(
    local: &Local,
    key: Option<&Key>,
    text: &str,
    files: &[(PathBuf, u32, Vec<u8>)],
    known: &[String],
) -> Result<Option<PathBuf>, SyncError> {
    for (path, mode, content) in files {
        if std::fs::read(path).ok().as_deref() != Some(content.as_slice()) {
            write_atomic(path, content, *mode)?;
        }
    }
    let mut kept = None;
    if let Ok(old) = std::fs::read(&local.config)
        && old != text.as_bytes()
    {
        let ran = key.is_some_and(|k| known.contains(&k.digest(&old)));
        if !ran {
            let to = local.unapplied();
            write_atomic(&to, &old, 0o600)?;
            kept = Some(to);
        }
    }
    write_atomic(&local.config, text.as_bytes(), 0o600)?;
    Ok(kept)
}

/// An exclusive lock on `path` (created 0600), waited for until `deadline`:
/// a receive, a catch-up and a pull on one node never interleave.
pub fn lock(
    path: &Path,
    deadline: Duration,
) -> Result<nix::fcntl::Flock<std::fs::File>, SyncError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(crate::files::io(d))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(crate::files::io(path))?;
    let t = Instant::now();
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((back, _)) if t.elapsed() < deadline => {
                f = back;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((_, e)) => {
                return Err(SyncError::Lock(format!(
                    "{} is held by another mailha for more than {}s: {e}",
                    path.display(),
                    deadline.as_secs()
                )));
            }
        }
    }
}

/// How this node's files stand against the running config, and what is
/// needed to bring them to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub state: FileState,
    /// Referenced files that differ here from the applied ones.
    pub files_behind: Vec<String>,
}

/// This node's file against the CIB's running config. `me` is this node's
/// name (its `NODE_ATTR`).
pub fn standing(local: &Local, key: &Key, cib: &El, me: &str) -> Result<Standing, SyncError> {
    let running = Running::from_cib(cib)?;
    let digest = std::fs::read(&local.config).ok().map(|t| key.digest(&t));
    let base = record::node_generation(cib, me);
    let state = record::judge(running.as_ref().map(|r| &r.record), digest.as_deref(), base);
    let files_behind = running
        .as_ref()
        .map(|r| files_behind(&r.record, key))
        .unwrap_or_default();
    Ok(Standing {
        state,
        files_behind,
    })
}

/// The whole running file from the CIB, its secrets taken from this
/// node's own file; None when that does not give the applied file back
/// byte for byte (a secret changed, or this node has none).
pub fn rebuild(running: &Running, key: &Key, local_text: Option<&str>) -> Option<String> {
    let text = if running.record.redacted.is_empty() {
        running.text.clone()
    } else {
        record::unredact(&running.text, &running.record.redacted, local_text?)?
    };
    (key.digest(text.as_bytes()) == running.record.digest).then_some(text)
}

/// What a catch-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// The file is the running one (now or already).
    InSync { generation: u64, wrote: bool },
    /// Behind, but the CIB alone cannot give it back: `why`.
    NeedsPeer { generation: u64, why: String },
    /// Edits here the cluster never ran, or no running config: not ours
    /// to touch.
    LeftAlone(FileState),
}

/// Brings this node's file to the running config from the CIB alone, when
/// it is exactly an older generation or missing. The caller records the
/// generation (`NODE_ATTR`) when the result is `InSync`.
pub fn catch_up(local: &Local, cib: &El, me: &str) -> Result<CatchUp, SyncError> {
    let key = local.key()?;
    let _lock = lock(&local.lock, Duration::from_secs(10))?;
    let Some(running) = Running::from_cib(cib)? else {
        return Ok(CatchUp::LeftAlone(FileState::NoRecord));
    };
    let st = standing(local, &key, cib, me)?;
    let generation = running.record.generation;
    match st.state {
        FileState::Same { .. } if st.files_behind.is_empty() => Ok(CatchUp::InSync {
            generation,
            wrote: false,
        }),
        FileState::Same { .. } | FileState::Behind { .. } | FileState::Missing { .. } => {
            let local_text = std::fs::read_to_string(&local.config).ok();
            let Some(text) = rebuild(&running, &key, local_text.as_deref()) else {
                return Ok(CatchUp::NeedsPeer {
                    generation,
                    why: format!(
                        "{} changed in generation {generation} and secrets are never in the CIB",
                        running.record.redacted.join(", ")
                    ),
                });
            };
            if !st.files_behind.is_empty() {
                return Ok(CatchUp::NeedsPeer {
                    generation,
                    why: format!(
                        "{} differ from the applied ones, and files are never in the CIB",
                        st.files_behind.join(", ")
                    ),
                });
            }
            install(local, Some(&key), &text, &[], &running.record.known())?;
            Ok(CatchUp::InSync {
                generation,
                wrote: true,
            })
        }
        other => Ok(CatchUp::LeftAlone(other)),
    }
}

/// This node's name among a CIB's nodes, by hostname.
pub fn me_in_cib(cib: &El, hostname: &str) -> Option<String> {
    let short = hostname.split('.').next().unwrap_or(hostname);
    cib.find("configuration")?
        .find("nodes")?
        .children
        .iter()
        .filter_map(|n| n.get("uname"))
        .find(|u| *u == hostname || *u == short)
        .map(str::to_string)
}

/// What `mailha status` shows of the config sync, from a CIB with its
/// configuration (`cluster::query_configuration`).
pub fn status_of(local: &Local, cib: &El, me: &str) -> crate::status::ConfigSync {
    let running = Running::from_cib(cib).ok().flatten();
    let r = running.as_ref().map(|r| &r.record);
    let nodes = cib
        .find("configuration")
        .and_then(|c| c.find("nodes"))
        .map(|n| {
            n.children
                .iter()
                .filter_map(|n| n.get("uname"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|name| crate::status::NodeConfig {
            name: name.to_string(),
            generation: record::node_generation(cib, name),
            behind: false,
        })
        .collect::<Vec<_>>();
    // A node with no generation recorded is behind only where recording
    // is in use (an apply records its own node); a saved CIB applied from
    // elsewhere records none.
    let recording = nodes.iter().any(|n| n.generation.is_some());
    let nodes = nodes
        .into_iter()
        .map(|n| crate::status::NodeConfig {
            behind: r.is_some_and(|r| n.generation != Some(r.generation))
                && (n.generation.is_some() || recording),
            ..n
        })
        .collect();
    let (state, generation, files_behind) = match local.key() {
        Err(_) => ("unknown".to_string(), None, Vec::new()),
        Ok(key) => match standing(local, &key, cib, me) {
            Err(_) => ("unknown".to_string(), None, Vec::new()),
            Ok(st) => {
                let (name, g) = match st.state {
                    FileState::Same { generation } => ("same", Some(generation)),
                    FileState::Behind { generation, .. } => ("behind", Some(generation)),
                    FileState::Diverged { .. } => ("diverged", None),
                    FileState::Ahead { .. } => ("ahead", None),
                    FileState::Missing { .. } => ("missing", None),
                    FileState::NoRecord => ("no_record", None),
                };
                (name.to_string(), g, st.files_behind)
            }
        },
    };
    crate::status::ConfigSync {
        node: me.to_string(),
        state,
        generation,
        base_generation: record::node_generation(cib, me),
        running_generation: r.map(|r| r.generation),
        applied_by: r.map(|r| format!("{}@{}", r.user, r.node)),
        applied_at: r.map(|r| r.at.clone()),
        files_behind,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn local(dir: &Path) -> Local {
        std::fs::write(dir.join("authkey"), [7u8; 256]).unwrap();
        Local {
            config: dir.join("mailha.toml"),
            authkey: dir.join("authkey"),
            lock: dir.join("lock"),
        }
    }

    fn push(text: &str, check_only: bool) -> Vec<u8> {
        let cfg = config::load_str(Path::new("m.toml"), text, Some(0o600))
            .unwrap()
            .config;
        let mut p = Push::new(&cfg, text, "mail1", 2, vec![]);
        p.check_only = check_only;
        serde_json::to_vec(&p).unwrap()
    }

    fn mail2_addrs() -> Vec<std::net::IpAddr> {
        vec![
            "203.0.113.12".parse().unwrap(),
            "198.51.100.12".parse().unwrap(),
        ]
    }

    /// mail2 receives the example's push, changed by `f`; it must refuse.
    fn receive_changed(l: &Local, f: impl FnOnce(&mut Push)) -> SyncError {
        let mut p: Push = serde_json::from_slice(&push(&example("postfix.toml"), false)).unwrap();
        f(&mut p);
        receive(l, &serde_json::to_vec(&p).unwrap(), "mail2", &mail2_addrs()).unwrap_err()
    }

    #[test]
    fn the_peer_writes_a_valid_payload_private_and_keeps_edits_the_cluster_never_ran() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let text = example("postfix.toml");
        std::fs::write(&l.config, "# an edit nobody applied\n").unwrap();
        assert_eq!(
            receive(&l, &push(&text, true), "mail2", &mail2_addrs()).unwrap(),
            Received::Checked
        );
        assert_eq!(
            std::fs::read_to_string(&l.config).unwrap(),
            "# an edit nobody applied\n",
            "a check writes nothing"
        );
        let r = receive(&l, &push(&text, false), "mail2", &mail2_addrs()).unwrap();
        assert_eq!(
            r,
            Received::Wrote {
                node: "mail2".into(),
                generation: 2,
                kept: Some(l.unapplied())
            }
        );
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), text);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&l.config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(l.unapplied()).unwrap(),
            "# an edit nobody applied\n"
        );
    }

    #[test]
    fn a_payload_that_does_not_describe_this_machine_is_refused_with_its_line_and_nothing_is_written()
     {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        std::fs::write(&l.config, "old\n").unwrap();
        let text = example("postfix.toml").replace("198.51.100.12", "198.51.100.22");
        let e = receive(&l, &push(&text, false), "mail2", &mail2_addrs()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SyncError::Invalid(_)), "{msg}");
        let line = text
            .lines()
            .position(|l| l.contains("198.51.100.22"))
            .unwrap()
            + 1;
        assert!(
            msg.contains(&format!("mailha.toml:{line}:"))
                && msg.contains("cluster.nodes[1].addresses[1]")
                && msg.contains("198.51.100.22 is not an address of this machine"),
            "{msg}"
        );
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), "old\n");

        let e = receive_changed(&l, |p| {
            p.text = p.text.replace("prefix = 24", "prefix = 77");
        });
        assert!(e.to_string().contains("vip.prefix"), "{e}");
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), "old\n");
    }

    #[test]
    fn the_password_file_travels_as_a_file_and_is_written_private() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let pw = t.path().join("relay-password");
        std::fs::write(&pw, "hunter2\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text =
            example("postfix.toml").replace("/etc/mailha/smtp.password", pw.to_str().unwrap());
        let payload = push(&text, false);
        std::fs::remove_file(&pw).unwrap();
        receive(&l, &payload, "mail2", &mail2_addrs()).unwrap();
        assert_eq!(std::fs::read_to_string(&pw).unwrap(), "hunter2\n");
        let mode = std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_exporter_password_file_travels_too() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let pw = t.path().join("exporter-password");
        std::fs::write(&pw, "s3cret\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "{}\n[exporter]\nuser = \"prometheus\"\npassword_file = \"{}\"\n",
            example("postfix.toml"),
            pw.display()
        );
        let payload = push(&text, false);
        std::fs::remove_file(&pw).unwrap();
        receive(&l, &payload, "mail2", &mail2_addrs()).unwrap();
        assert_eq!(std::fs::read_to_string(&pw).unwrap(), "s3cret\n");
        let mode = std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_payload_naming_a_file_the_config_does_not_name_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let e = receive_changed(&l, |p| {
            p.files.push(FileBlob {
                path: "/etc/shadow".into(),
                content_b64: "eA==".into(),
            })
        });
        assert!(e.to_string().contains("/etc/shadow is not a file"), "{e}");
        assert!(!l.config.exists());
    }

    fn cib_with(running: &Running, attr: Option<u64>) -> El {
        let mut cib = El::new("cib").child(
            El::new("configuration")
                .child(
                    El::new("crm_config").child(
                        El::new("cluster_property_set").attr("id", crate::cib::MAILHA_SET_ID),
                    ),
                )
                .child(
                    El::new("nodes").child(El::new("node").attr("id", "2").attr("uname", "mail2")),
                ),
        );
        record::store(&mut cib, running).unwrap();
        if let Some(g) = attr {
            record::set_node_generation(&mut cib, "mail2", g);
        }
        cib
    }

    fn running(key: &Key, texts: &[&str]) -> Running {
        let mut r: Option<record::Record> = None;
        for t in texts {
            let (_, fields) = record::redact(t);
            r = Some(record::Record::next(
                r.as_ref(),
                key.digest(t.as_bytes()),
                fields,
                vec![],
                "mail1",
                "root",
                "2026-12-05T10:00:00Z",
            ));
        }
        Running {
            record: r.unwrap(),
            text: record::redact(texts.last().unwrap()).0,
        }
    }

    #[test]
    fn a_node_behind_catches_up_from_the_cib_an_edited_one_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let key = l.key().unwrap();
        let (old, new) = ("# gen 1\na = 1\n", "# gen 2\na = 2\n");
        let run = running(&key, &[old, new]);
        let cib = cib_with(&run, Some(1));

        std::fs::write(&l.config, old).unwrap();
        assert_eq!(
            catch_up(&l, &cib, "mail2").unwrap(),
            CatchUp::InSync {
                generation: 2,
                wrote: true
            }
        );
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), new);
        assert!(!l.unapplied().exists(), "an older generation is no loss");

        std::fs::remove_file(&l.config).unwrap();
        assert!(matches!(
            catch_up(&l, &cib, "mail2").unwrap(),
            CatchUp::InSync { wrote: true, .. }
        ));

        std::fs::write(&l.config, "# mine\n").unwrap();
        assert_eq!(
            catch_up(&l, &cib, "mail2").unwrap(),
            CatchUp::LeftAlone(FileState::Diverged {
                base: 1,
                running: 2
            })
        );
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), "# mine\n");
    }

    #[test]
    fn a_changed_secret_cannot_come_from_the_cib() {
        let t = tempfile::tempdir().unwrap();
        let l = local(t.path());
        let key = l.key().unwrap();
        let old = "[alerts.smtp]\npassword = \"one\"\n";
        let new = "[alerts.smtp]\npassword = \"two\"\n# gen 2\n";
        let run = running(&key, &[old, new]);
        assert!(!run.text.contains("two"));
        let cib = cib_with(&run, Some(1));
        std::fs::write(&l.config, old).unwrap();
        let r = catch_up(&l, &cib, "mail2").unwrap();
        assert!(
            matches!(&r, CatchUp::NeedsPeer { why, .. } if why.contains("alerts.smtp.password")),
            "{r:?}"
        );
        assert_eq!(std::fs::read_to_string(&l.config).unwrap(), old);
        // The same secret with a changed comment comes back whole.
        let run = running(&key, &[new, &new.replace("gen 2", "gen 3")]);
        std::fs::write(&l.config, new).unwrap();
        assert!(matches!(
            catch_up(&l, &cib_with(&run, Some(1)), "mail2").unwrap(),
            CatchUp::InSync { wrote: true, .. }
        ));
        assert!(
            std::fs::read_to_string(&l.config)
                .unwrap()
                .contains("gen 3")
        );
    }
}
