//! The lab (DESIGN section 9, backend 1): a real two-node cluster on one
//! Linux machine: two nodes that boot systemd in containers on the host
//! kernel, bridges, and namespaces for a client, a gateway and an NFS
//! server.
//!
//! - `topology`: names and addresses (never the host's uplink subnet).
//! - `node`: a node's disk (an overlay over the host's tree), its boot
//!   (systemd-nspawn), power and freeze (its cgroup); `tree`: what its disk
//!   holds that the host's does not; `proc`: processes by PID and start
//!   time.
//! - `plan`: pure functions: the commands that build and remove the lab,
//!   and what counts as a leftover.
//! - `cmd`: every external command with a deadline, behind a trait.
//! - `state`: what `up` created, recorded step by step under
//!   `/run/mailha-lab/`, so `down` undoes partial runs too.
//! - `provision`: the cluster on top (mail stack files, ssh trust, CIB
//!   seed, `mailha setup` in node1, the wait until everything runs).
//! - `up`, `down`, `status`: the lifecycle actions.
//! - `soak`: the soak's pure pieces (schedule from a seed, JSONL
//!   history, the Jepsen-style checker), its runner, and `soak observe`
//!   (the same recorders and load with no faults of its own).
//! - `cts`: Pacemaker's CTS judged by the mail (`bench/cts.sh`): CTS's
//!   log parsed into test windows, each window's outage against the
//!   bound of the drill it amounts to (pure).
//! - `uml`: backend 2, User-mode Linux guests on the lab's bridge for what
//!   this kernel lacks (an NFS client, a kernel watchdog), driven through
//!   a mailbox directory shared over hostfs.
//!
//! Every later command in a node runs through `nsenter -t PID1 -a` (all
//! of its PID 1's namespaces: the node's /proc belongs to its PID
//! namespace, and /proc/self would not resolve otherwise).

pub mod cmd;
pub mod cts;
pub mod down;
pub mod drill;
pub mod eyou_tree;
pub mod fusedisk;
pub mod load;
pub mod nfs;
pub mod node;
pub mod package;
pub mod plan;
pub mod proc;
pub mod prometheus;
pub mod provision;
pub mod relay;
pub mod release;
pub mod restart;
pub mod soak;
pub mod state;
pub mod status;
pub mod topology;
pub mod tree;
pub mod uml;
pub mod up;
pub mod watchdog;

use cmd::{CmdError, Runner};
use state::{StateError, StateStore};
use std::path::{Path, PathBuf};
use topology::Topology;

pub const DEFAULT_BASE_DIR: &str = "/var/lib/mailha-lab";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (namespaces, bridges, loop devices)")]
    NotRoot,
    #[error("a lab is already up (state in {}); run `mailha lab down` first", .0.display())]
    AlreadyUp(PathBuf),
    #[error("no lab is up (no state in {})", .0.display())]
    NotUp(PathBuf),
    #[error("a host route overlaps a lab subnet (198.51.100.0/24 or 203.0.113.0/24): {0}")]
    RouteOverlap(String),
    #[error(
        "link {0} already exists on this host; is another lab (or something else) using the name?"
    )]
    LinkExists(String),
    #[error("netns {0} already exists on this host")]
    NetnsExists(String),
    #[error("no such node: {0} (nodes: node1, node2; namespaces: client, gw, nfs)")]
    UnknownNode(String),
    #[error("{node} (PID 1 {pid}) is not running")]
    NodeDead { node: String, pid: u32 },
    #[error("the lab's config: {0}")]
    Config(String),
    #[error("missing on this host: {}; run scripts/install-deps.sh", .0.join(", "))]
    Prerequisites(Vec<String>),
    #[error("agents not installed: {}{}", .0.join(", "), if .0.iter().any(|a| a.contains("mailha")) { " (mailha's own agents are not built yet: use --profile stock)" } else { "" })]
    AgentsMissing(Vec<String>),
    #[error("the cluster did not come up: {0}")]
    Cluster(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("teardown left things behind:\n  {}", .0.join("\n  "))]
    Incomplete(Vec<String>),
}

impl LabError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
        move |source| LabError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Everything an action needs; roots are parameters so tests can point
/// them at temp dirs and a recording runner.
pub struct Lab<'r> {
    pub runner: &'r dyn Runner,
    pub topo: Topology,
    pub store: StateStore,
    pub base_dir: PathBuf,
    /// The host's /proc.
    pub proc_root: PathBuf,
    /// This binary, which the lab's own helpers run (`<exe> fusedisk`,
    /// `watchdog`, `load`, `uml-guest`).
    pub exe: PathBuf,
    /// The product: the mailha binary the lab installs on the host and
    /// pins in its nodes.
    pub mailha: PathBuf,
    /// The product as its Debian package: when set, the nodes get mailha
    /// by `dpkg -i` of it (as an administrator installs it) instead of a
    /// `mailha install` of the binary.
    pub deb: Option<PathBuf>,
}

impl<'r> Lab<'r> {
    pub fn new(runner: &'r dyn Runner, prefix: &str, state_dir: &Path, base_dir: &Path) -> Self {
        Lab {
            runner,
            topo: Topology::new(prefix),
            store: StateStore::new(state_dir),
            base_dir: base_dir.to_path_buf(),
            proc_root: PathBuf::from("/proc"),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("mailha-lab")),
            mailha: default_mailha(),
            deb: None,
        }
    }
}

impl Lab<'_> {
    /// The lab binary its long-lived helpers run (each node's watchdog
    /// supervisor, which boots the node again after a reset, and the FUSE
    /// disk paths): the copy `up` made in the base dir. A rebuild of the
    /// lab replaces the file this process runs from; a helper that
    /// spawned from it would find only `... (deleted)` when it boots a
    /// node again, and a long soak would go on with one node.
    pub fn helper_exe(&self) -> PathBuf {
        let copy = self.base_dir.join(HELPER_EXE);
        if copy.exists() {
            copy
        } else {
            self.exe.clone()
        }
    }

    /// Copies this binary into the base dir for the helpers (written
    /// beside and renamed: an older copy may still be running).
    pub(crate) fn install_helper_exe(&self) -> Result<(), LabError> {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, dest) = (
            self.base_dir.join(format!(".{HELPER_EXE}.new")),
            self.base_dir.join(HELPER_EXE),
        );
        std::fs::copy(&self.exe, &tmp).map_err(LabError::io(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(LabError::io(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(LabError::io(&dest))
    }
}

/// The helpers' copy of the lab binary, in the base dir.
pub const HELPER_EXE: &str = "mailha-lab";

/// The mailha binary beside this one: cargo builds both into one target
/// directory (`cargo build --workspace`).
pub fn default_mailha() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("mailha")))
        .unwrap_or_else(|| PathBuf::from(mailha::install::BIN_PATH))
}
