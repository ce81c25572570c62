//! What `lab up` created, recorded as it goes (so `lab down` can undo a
//! failed or partial `up`): `{state_dir}/state.json`, written atomically
//! after every step.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DEFAULT_STATE_DIR: &str = "/run/mailha-lab";
const FILE: &str = "state.json";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a lab state file: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A running node: its PID 1 (its systemd, PID 1 of the node's PID
/// namespace) as seen from the host. `start_time` (field 22 of
/// /proc/PID/stat) guards against PID reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRec {
    pub node: String,
    pub pid: u32,
    pub start_time: u64,
}

/// One loop device the lab attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopRec {
    pub node: String,
    pub device: PathBuf,
    pub image: PathBuf,
}

/// One node's FUSE path to the images (`lab::fusedisk`): recorded with
/// its mount dir before the daemon starts, with the daemon's identity
/// once it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FusediskRec {
    pub node: String,
    pub mount: PathBuf,
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub prefix: String,
    pub base_dir: PathBuf,
    /// Where `up` got to, for humans (`lab status`).
    pub phase: String,
    /// The cluster's config (where it came from), once `up` got there.
    #[serde(default)]
    pub config: Option<String>,
    /// The nodes that run, each by its PID 1 (`holders` in state files
    /// written before the systemd nodes).
    #[serde(alias = "holders")]
    pub nodes: Vec<NodeRec>,
    /// Named network namespaces (ip netns).
    pub netns: Vec<String>,
    /// Host links (veth host ends, bridges).
    pub links: Vec<String>,
    pub loops: Vec<LoopRec>,
    #[serde(default)]
    pub fusedisks: Vec<FusediskRec>,
    /// The NFS server's processes (`lab::nfs`), each recorded as soon as
    /// it was spawned.
    #[serde(default)]
    pub nfs: Vec<ProcRec>,
    /// The Prometheus in gw (`lab::prometheus`), when started.
    #[serde(default)]
    pub prometheus: Vec<ProcRec>,
    /// The lab's copy of the .deb its nodes installed (None: mailha
    /// installed from the binary).
    #[serde(default)]
    pub package: Option<PathBuf>,
    /// The Debian release the nodes run (None: a lab from before releases,
    /// the host's).
    #[serde(default)]
    pub release: Option<super::release::Release>,
}

/// A daemon the lab started on the host side (in a lab namespace): its
/// host PID and start time (field 22 of /proc/PID/stat, against reuse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRec {
    pub name: String,
    pub pid: u32,
    pub start_time: u64,
}

impl State {
    pub fn new(prefix: &str, base_dir: &Path) -> Self {
        State {
            version: VERSION,
            prefix: prefix.to_string(),
            base_dir: base_dir.to_path_buf(),
            phase: "starting".into(),
            config: None,
            nodes: Vec::new(),
            netns: Vec::new(),
            links: Vec::new(),
            loops: Vec::new(),
            fusedisks: Vec::new(),
            nfs: Vec::new(),
            prometheus: Vec::new(),
            package: None,
            release: None,
        }
    }

    pub fn node(&self, node: &str) -> Option<&NodeRec> {
        self.nodes.iter().find(|h| h.node == node)
    }
}

/// Where the state of one lab lives.
#[derive(Debug, Clone)]
pub struct StateStore {
    pub dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: &Path) -> Self {
        StateStore {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Parse { path, source })
    }

    /// Writes `state` atomically (temp file + rename).
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let text = serde_json::to_string_pretty(state).expect("state serializes");
        std::fs::write(&tmp, text + "\n").map_err(io(&tmp))?;
        std::fs::rename(&tmp, self.path()).map_err(io(&self.path()))
    }

    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_file(self.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                path: self.path(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_no_lab() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(&dir.path().join("lab"));
        assert_eq!(store.load().unwrap(), None);
        let mut s = State::new("mhx", Path::new("/var/lib/mailha-lab"));
        s.nodes.push(NodeRec {
            node: "node1".into(),
            pid: 42,
            start_time: 7,
        });
        s.links.push("mhxlan".into());
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), Some(s.clone()));
        assert_eq!(s.node("node1").unwrap().pid, 42);
        store.remove().unwrap();
        store.remove().unwrap();
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_corrupt_state_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        std::fs::write(store.path(), "{").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("state.json: not a lab state file"), "{e}");
    }
}
