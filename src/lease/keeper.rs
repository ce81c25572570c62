//! The keeper daemon (`mailha lease keeper`), one per node: the executor
//! around the pure `machine::Keeper`. It owns the lease I/O worker
//! (`disk.rs`), the watchdog, the control socket the agent and
//! fence_mailha talk to, and the self-fence.
//!
//! One thread decides: every `TICK` (or sooner, when an I/O completes)
//! it feeds the machine a tick, the I/O results and the control requests,
//! and carries out the actions. Nothing on that thread waits on the disk
//! past a deadline: I/O runs on the worker thread, the self-fence on its
//! own thread (it kills processes and unmounts, which can take seconds).
//!
//! The control socket is an abstract Unix socket: it lives in the
//! network namespace (one per node in the lab, like Pacemaker's libqb
//! sockets), needs no directory, and vanishes with the process. Only root
//! may talk to it (SO_PEERCRED). One request line in, one JSON line out:
//! `status`, `acquire`, `release`, `fence NODE`.

use super::client::{DEFAULT_SOCKET, Status};
use super::disk::{Block, LeaseFile, Reply, Request, Wait, Worker};
use super::format::{FormatError, Header, SlotImage, cluster_id, slot_offset};
use super::machine::{Action, FenceOutcome, FenceReason, Input, Keeper, Mono, Role};
use super::nfs::NfsLease;
use super::timing::Timing;
use crate::config::model::{BlockDev, Config, LeaseTarget};
use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the decision loop runs at the latest. The machine wants a
/// tick "at least every few hundred milliseconds".
const TICK: Duration = Duration::from_millis(100);
/// How long one control request may take in all: the client's line in,
/// the decision thread's answer out.
const REQUEST_DEADLINE: Duration = Duration::from_millis(500);
/// Requests served at once; a connection beyond them is closed at once.
const MAX_CLIENTS: usize = 8;
/// The longest request line (`fence NODE` with a long node name).
const MAX_REQUEST: usize = 512;
/// Fence outcomes kept for fence_mailha to collect.
const FENCE_HISTORY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Disk(#[from] super::disk::DiskError),
    #[error("lease {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lease {0} did not complete within io_timeout")]
    Deadline(&'static str),
    #[error("{what} did not complete within {}", humantime::format_duration(*.deadline))]
    Slow { what: String, deadline: Duration },
    #[error("the lease header: {0}")]
    Header(#[from] FormatError),
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Nfs(#[from] super::nfs::NfsLeaseError),
    #[error("watchdog {path}: {source}")]
    Watchdog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0} mounted without the lease and could not be let go: the watchdog is left to reset this node"
    )]
    Unleased(String),
    #[error("control socket @{name}: {source}")]
    Socket {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything the keeper needs, resolved from mailha.toml.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lease device, or the lease file on the NFS mount below.
    pub device: PathBuf,
    /// The lease is a file on NFS: the keeper mounts the export first.
    pub nfs: Option<NfsLease>,
    pub cluster: String,
    pub me: (u32, String),
    pub peer: (u32, String),
    pub timing: Timing,
    /// The watchdog device (a character device, or in the lab the FIFO
    /// its emulated watchdog reads).
    pub watchdog: PathBuf,
    /// `watchdog` is an emulation, said so in the config.
    pub watchdog_emulated: bool,
    pub socket: String,
    /// The shared mounts a self-fence clears.
    pub mounts: Vec<DataMount>,
    /// Kill the cluster stack in a self-fence (off only in tests that run
    /// keepers on a host whose own cluster stack must live).
    pub stop_stack: bool,
    /// What follows the ack of a fence request (`reset.rs`).
    pub reset: super::reset::ResetMode,
    /// The cluster's addresses (the VIP), taken off this node before
    /// the ack.
    pub addresses: Vec<std::net::IpAddr>,
    pub proc_root: PathBuf,
}

/// One shared mount, as a self-fence needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMount {
    pub dir: PathBuf,
    /// The block device, when the config names it by path: the fence
    /// finds the filesystem by it even where the keeper's own mount
    /// namespace no longer has it. (`UUID=`/`LABEL=` would need a
    /// superblock read of every disk; those are found through the mount.)
    pub device: Option<String>,
}

impl DataMount {
    fn of(m: &crate::config::model::Mount) -> DataMount {
        use crate::config::model::MountSource;
        DataMount {
            dir: m.mount_point.clone(),
            device: match &m.source {
                MountSource::Block {
                    device: BlockDev::Path(p),
                    ..
                } => Some(p.display().to_string()),
                _ => None,
            },
        }
    }
}

impl Settings {
    /// This node's keeper settings. `node`: this node's name (default:
    /// this machine as `setup` finds it: its host name, short or FQDN,
    /// else an address bound here).
    pub fn from_config(cfg: &Config, node: Option<&str>) -> Result<Settings, KeeperError> {
        Settings::resolved(
            cfg,
            node,
            &crate::host::hostname(),
            &crate::host::bound_addresses(),
        )
    }

    /// `from_config` over what was observed of this machine.
    pub fn resolved(
        cfg: &Config,
        node: Option<&str>,
        hostname: &str,
        local_addrs: &[std::net::IpAddr],
    ) -> Result<Settings, KeeperError> {
        let me = slot_owner(cfg, node, hostname, local_addrs)?;
        let peer = cfg
            .cluster
            .nodes
            .iter()
            .find(|n| n.id != me.id)
            .ok_or_else(|| KeeperError::Config("the cluster has no second node".into()))?;
        let lease = cfg
            .storage
            .lease
            .as_ref()
            .ok_or_else(|| KeeperError::Config("no [storage.lease] in the config".into()))?;
        let (device, nfs) = match &lease.target {
            LeaseTarget::Block(BlockDev::Path(p)) => (p.clone(), None),
            LeaseTarget::Block(d) => (
                PathBuf::from(
                    crate::mounts::device::resolve(&d.spec(), lease.io_timeout * 5)
                        .map_err(|e| KeeperError::Config(e.to_string()))?,
                ),
                None,
            ),
            LeaseTarget::NfsFile {
                export,
                file,
                options,
            } => {
                let n = NfsLease::new(export, file, options, lease.io_timeout)?;
                (n.path(), Some(n))
            }
        };
        let timing = Timing::standard(lease.io_timeout, cfg.fencing.watchdog_timeout)
            .and_then(|t| {
                // A real watchdog counts whole seconds.
                if cfg.fencing.watchdog_emulated {
                    Ok(t)
                } else {
                    t.check_for_device().map(|()| t)
                }
            })
            .map_err(|e| KeeperError::Config(format!("lease timing: {e}")))?;
        Ok(Settings {
            device,
            nfs,
            cluster: cfg.cluster.name.clone(),
            me: (me.id, me.name.clone()),
            peer: (peer.id, peer.name.clone()),
            timing,
            watchdog: cfg.fencing.watchdog.clone(),
            watchdog_emulated: cfg.fencing.watchdog_emulated,
            socket: DEFAULT_SOCKET.into(),
            mounts: cfg.storage.mounts.iter().map(DataMount::of).collect(),
            stop_stack: true,
            reset: super::reset::ResetMode::default(),
            addresses: vec![cfg.vip.address],
            proc_root: PathBuf::from("/proc"),
        })
    }
}

/// Which node's slot this machine writes. Two machines in one slot (a
/// cloned VM, a wrong `--node`, a host name that is not the node's) break
/// everything the lease promises, so a machine that holds an address of
/// the other node and none of its own is refused: it says it is one node
/// and looks like the other. (Without any configured address bound, as
/// early in a boot, only the name can tell.)
fn slot_owner<'a>(
    cfg: &'a Config,
    node: Option<&str>,
    hostname: &str,
    local_addrs: &[std::net::IpAddr],
) -> Result<&'a crate::config::Node, KeeperError> {
    let nodes = &cfg.cluster.nodes;
    let me = match node {
        Some(name) => nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            KeeperError::Config(format!("--node {name:?} is not in [cluster.nodes]"))
        })?,
        None => crate::host::local_node(cfg, hostname, local_addrs).ok_or_else(|| {
            KeeperError::Config(format!(
                "this machine (host name {hostname:?}) is none of [cluster.nodes]: no name is its host name and no address is bound here; pass --node"
            ))
        })?,
    };
    let bound = |n: &crate::config::Node| n.addresses.iter().any(|a| local_addrs.contains(a));
    if let Some(other) = nodes.iter().find(|n| n.id != me.id && bound(n))
        && !bound(me)
    {
        return Err(KeeperError::Config(format!(
            "this machine would write node {}'s slot ({}) but holds {}'s address and none of {}'s: a cloned machine, a wrong host name or --node? Two machines writing one slot would defeat the lease",
            me.name, me.id, other.name, me.name
        )));
    }
    Ok(me)
}

/// The keeper's clock: CLOCK_BOOTTIME, which keeps counting while the
/// machine is suspended (CLOCK_MONOTONIC, behind `Instant`, stops). A
/// holder resumed from a suspend finds at its first tick that renew_fail
/// has passed, fences itself and does not pet the watchdog, instead of
/// renewing a lease its peer may have taken meanwhile (docs/lease.md,
/// "Suspend").
pub fn boot_clock() -> Mono {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME exists on Linux >= 2.6.39");
    Mono(t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
}

/// Tells systemd (`Type=notify`) how the keeper is doing; nothing without
/// a socket to tell (SysV, by hand).
fn notify_systemd(msg: &str) {
    if let Some(to) = notify_socket(|k| std::env::var_os(k))
        && let Err(e) = notify(&to, msg)
    {
        eprintln!("lease-keeper: telling systemd {msg:?}: {e}");
    }
}

/// Where to notify: `NOTIFY_SOCKET` as systemd sets it, else the unit's
/// `MAILHA_NOTIFY_SOCKET` (systemd-inhibit, which the unit runs the keeper
/// under, clears `NOTIFY_SOCKET` from systemd 256 on).
fn notify_socket(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<std::ffi::OsString> {
    env("NOTIFY_SOCKET")
        .or_else(|| env("MAILHA_NOTIFY_SOCKET"))
        .filter(|s| !s.is_empty())
}

/// sd_notify(3)'s protocol: one datagram to the socket systemd named (a
/// path, or an abstract name written with a leading '@').
fn notify(to: &std::ffi::OsStr, msg: &str) -> std::io::Result<usize> {
    use std::os::unix::net::UnixDatagram;
    let s = UnixDatagram::unbound()?;
    let b = to.as_encoded_bytes();
    let addr = match b.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::path::Path::new(to))?,
    };
    s.send_to_addr(msg.as_bytes(), &addr)
}

/// The watchdog: a write pets it; "V" before closing disarms it (the
/// kernel's "magic close"), done only when nothing is held.
pub struct Watchdog {
    file: std::fs::File,
    last: Option<Instant>,
    every: Duration,
}

/// `_IOWR('W', 6, int)` and `_IOR('W', 7, int)` from linux/watchdog.h.
const WDIOC_SETTIMEOUT: u64 = 0xC004_5706;
const WDIOC_GETTIMEOUT: u64 = 0x8004_5707;

/// The timeout a watchdog driver reports back (it may round the one asked
/// for): refused when above the configured one, which the lease's formula
/// assumes (`host_dead >= renew_fail + watchdog + ...`). A shorter one
/// only resets sooner.
pub fn check_driver_timeout(
    path: &Path,
    configured: Duration,
    driver_secs: i32,
) -> Result<Duration, KeeperError> {
    let driver = Duration::from_secs(driver_secs.max(0) as u64);
    if driver_secs <= 0 || driver > configured {
        return Err(KeeperError::Watchdog {
            path: path.into(),
            source: std::io::Error::other(format!(
                "the driver runs a timeout of {driver_secs} s, not the configured watchdog_timeout of {}: the lease's timing assumes the watchdog fires within watchdog_timeout (set a timeout this driver supports)",
                humantime::format_duration(configured)
            )),
        });
    }
    Ok(driver)
}

impl Watchdog {
    /// Opens the watchdog and sets its timeout. `emulated`: the config
    /// says the path is not a watchdog device (the lab's FIFO); anything
    /// but a watchdog character device is refused otherwise.
    pub fn open(path: &Path, timeout: Duration, emulated: bool) -> Result<Watchdog, KeeperError> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        use std::os::unix::io::AsRawFd;
        let err = |source| KeeperError::Watchdog {
            path: path.into(),
            source,
        };
        // O_NONBLOCK: a FIFO without its reader (the lab's supervisor
        // gone) is an error at once (ENXIO) rather than a hang, and a
        // full one fails a pet instead of blocking the keeper.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(err)?;
        let chardev = file.metadata().map_err(err)?.file_type().is_char_device();
        let not_a_watchdog = |why: String| {
            err(std::io::Error::other(format!(
                "{why}; set [fencing] watchdog_emulated = true only for an emulated watchdog (the lab's)"
            )))
        };
        if chardev {
            let mut secs: nix::libc::c_int = timeout.as_secs().max(1) as nix::libc::c_int;
            // SAFETY: WDIOC_SETTIMEOUT reads and writes one int we own.
            let set =
                unsafe { nix::libc::ioctl(file.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut secs) };
            if set != 0 {
                // A driver with a fixed timeout: it must say which.
                // SAFETY: WDIOC_GETTIMEOUT writes one int we own.
                let get =
                    unsafe { nix::libc::ioctl(file.as_raw_fd(), WDIOC_GETTIMEOUT as _, &mut secs) };
                if get != 0 {
                    let e = std::io::Error::last_os_error();
                    if emulated {
                        secs = timeout.as_secs() as nix::libc::c_int;
                    } else {
                        return Err(not_a_watchdog(format!(
                            "not a watchdog driver (its timeout can be neither set nor read: {e})"
                        )));
                    }
                }
            }
            let driver = check_driver_timeout(path, timeout, secs)?;
            if driver < timeout {
                eprintln!(
                    "lease-keeper: {}: the driver set {} s (asked {}): it resets sooner, which is safe",
                    path.display(),
                    driver.as_secs(),
                    humantime::format_duration(timeout)
                );
            }
        } else if !emulated {
            return Err(not_a_watchdog(
                "not a character device, so not a watchdog".into(),
            ));
        }
        Ok(Watchdog {
            file,
            last: None,
            // Several pets per timeout, not one per tick.
            every: (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
        })
    }

    pub fn pet(&mut self) {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        match (&self.file).write_all(b"k") {
            Ok(_) => self.last = Some(Instant::now()),
            Err(e) => eprintln!("lease-keeper: petting the watchdog failed: {e}"),
        }
    }

    pub fn disarm(mut self) {
        let _ = self.file.write_all(b"V");
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The executor's state around the machine.
struct Daemon {
    s: Settings,
    cid: u64,
    keeper: Keeper,
    worker: Worker,
    watchdog: Watchdog,
    /// The machine's clock at the start (`boot_clock`).
    origin: Mono,
    peer_image: Option<(SlotImage, Instant)>,
    last_renewal: Option<Instant>,
    /// How long the writes that landed took; reported, never decided on.
    renewals: super::latency::Histogram,
    write_failures: u64,
    released: bool,
    fences: Vec<(u64, FenceOutcome)>,
    /// The highest fence id this node posted, as far as it knows.
    last_fence_id: u64,
    /// The highest id the peer's slot was seen to have acked.
    peer_acked: u64,
    /// Who else writes our slot (a clone, or late writes of this node's
    /// previous keeper).
    own: super::own_slot::OwnSlot,
    /// An acquire that waits for our previous keeper's late writes to
    /// stop landing in our slot.
    acquire_waits: bool,
    self_fenced: Option<FenceReason>,
    fence_done: Option<mpsc::Receiver<bool>>,
    after_ack: super::reset::AfterAck,
}

impl Daemon {
    fn now(&self) -> Mono {
        Mono(boot_clock().0.saturating_sub(self.origin.0))
    }

    fn feed(&mut self, input: Input) {
        let now = self.now();
        let actions = self.keeper.step(now, input);
        for a in actions {
            self.act(a);
        }
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::WriteSlot { seq, slot } => {
                // Fenced on request and saying so: this write is the ack.
                self.after_ack.issued(
                    seq,
                    slot.fenced && matches!(self.keeper.role(), Role::Fenced { reset: false }),
                );
                let data = match slot.encode() {
                    Ok(b) => Block::from_bytes(&b),
                    Err(e) => {
                        // Cannot happen for a validated node id; the
                        // write simply never lands and counts as failed.
                        eprintln!("lease-keeper: encoding our slot: {e}");
                        return;
                    }
                };
                self.own.wrote(data.bytes());
                self.worker.submit(Request::Write {
                    seq,
                    offset: slot_offset(self.s.me.0).expect("validated node id"),
                    data,
                    check: true,
                });
            }
            Action::ReadPeer { seq } => {
                self.worker.submit(Request::Read {
                    seq,
                    offset: slot_offset(self.s.peer.0).expect("validated node id"),
                });
            }
            Action::PetWatchdog if !self.after_ack.starve => self.watchdog.pet(),
            Action::PetWatchdog => {}
            Action::SelfFence(reason) => {
                eprintln!("lease-keeper: fencing this node ({reason:?})");
                self.self_fenced = Some(reason);
                let (tx, rx) = mpsc::channel();
                let s = self.s.clone();
                std::thread::Builder::new()
                    .name("mailha-self-fence".into())
                    .spawn(move || {
                        // Before anything is killed: the units that end
                        // now are the fence's, not deaths to report. Only
                        // the node's own keeper (a --keep-stack keeper
                        // tried on a host fences no units of the host's).
                        if s.stop_stack {
                            mark_fencing(Path::new("/"), &format!("{reason:?}"));
                        }
                        // The addresses too, before the ack (reset.rs).
                        let ok = self_fence(&s) && super::reset::drop_before_ack(&s.addresses);
                        let _ = tx.send(ok);
                        // After the fence, which comes first; the spool is
                        // on the node's own disk, not the shared one.
                        crate::alert::spool::note(
                            crate::alert::event::Kind::LeaseLost,
                            None,
                            &format!(
                                "{} fenced itself ({reason:?}): its mail processes were killed and the shared disk unmounted",
                                s.me.1
                            ),
                        );
                    })
                    .expect("spawn the self-fence thread");
                self.fence_done = Some(rx);
            }
            Action::Acquired => {
                eprintln!("lease-keeper: the data lease is ours");
                self.released = false;
            }
            Action::Released => {
                eprintln!("lease-keeper: released");
                self.released = true;
            }
            Action::FenceDone { id, outcome } => {
                eprintln!("lease-keeper: fence request {id}: {outcome:?}");
                crate::alert::spool::note_about(
                    crate::alert::event::Kind::Fenced,
                    &self.s.peer.1,
                    None,
                    &format!("fence request {id} through the disk lease: {outcome:?}"),
                );
                self.fences.push((id, outcome));
                if self.fences.len() > FENCE_HISTORY {
                    self.fences.remove(0);
                }
            }
        }
    }

    fn on_reply(&mut self, r: Reply) {
        match r {
            Reply::Written {
                seq,
                result,
                before,
                took,
            } => {
                if let Err(e) = &result {
                    eprintln!("lease-keeper: writing our slot: {e}");
                }
                if let Some(b) = before {
                    self.check_own_slot(b.bytes());
                }
                let ok = result.is_ok();
                self.feed(Input::WriteDone { seq, ok });
                if self.after_ack.due(Some(seq), self.s.timing.io_timeout) {
                    self.after_ack.reset(self.s.reset);
                }
                if ok {
                    self.last_renewal = Some(Instant::now());
                    self.renewals.observe(took);
                } else {
                    self.write_failures += 1;
                }
            }
            Reply::Read { seq, result } => {
                let image = match result {
                    Ok(b) => Some(SlotImage::of(self.s.peer.0, self.cid, b.bytes())),
                    Err(e) => {
                        eprintln!("lease-keeper: reading the peer's slot: {e}");
                        None
                    }
                };
                if let Some(SlotImage::Valid(p)) = &image {
                    self.peer_acked = self.peer_acked.max(p.acked);
                }
                if let Some(img) = &image
                    && self.peer_image.as_ref().is_none_or(|(i, _)| i != img)
                {
                    self.peer_image = Some((img.clone(), Instant::now()));
                }
                self.feed(Input::ReadDone { seq, image });
            }
        }
    }

    /// Our slot, read just before our write (see `own_slot`).
    fn check_own_slot(&mut self, before: &[u8]) {
        use super::own_slot::Seen;
        let idle = self.keeper.role() == Role::Idle;
        let what = match self.own.seen(self.now(), before, idle) {
            Seen::Ours | Seen::Foreign => return,
            Seen::LateWrite { boot, counter } => {
                eprintln!(
                    "lease-keeper: a write of this node's previous keeper (boot {boot:x}, counter {counter}) landed late in our slot; no claim until they stop"
                );
                return;
            }
            Seen::SecondWriter(what) => what,
        };
        eprintln!(
            "lease-keeper: ANOTHER MACHINE WRITES THIS NODE'S SLOT ({} = id {}; found {what}): a cloned machine, or a wrong host name or --node on one of them; this node holds nothing from now on",
            self.s.me.1, self.s.me.0
        );
        crate::alert::spool::note(
            crate::alert::event::Kind::LeaseLost,
            None,
            &format!(
                "another machine writes the lease slot of {} (found {what}): {} holds nothing until the second writer is gone and its keeper restarted",
                self.s.me.1, self.s.me.1
            ),
        );
        if self.self_fenced.is_none() {
            self.self_fenced = Some(FenceReason::SlotShared);
        }
        self.feed(Input::SlotShared);
    }

    fn status(&self) -> Status {
        let role = match self.keeper.role() {
            Role::Idle => "idle",
            Role::Claiming => "claiming",
            Role::Holding => "holding",
            Role::SelfFencing(_) => "self-fencing",
            Role::Fenced { .. } => "fenced",
        };
        let peer = match &self.peer_image {
            Some((SlotImage::Valid(s), _)) => Some(s),
            _ => None,
        };
        let slot = self.keeper.slot();
        Status {
            pid: std::process::id(),
            node: self.s.me.1.clone(),
            node_id: self.s.me.0,
            peer: self.s.peer.1.clone(),
            peer_id: self.s.peer.0,
            cluster: self.s.cluster.clone(),
            device: self.s.device.display().to_string(),
            role: role.into(),
            holds: self.keeper.holds(),
            wanted: self.wanted(),
            released: self.released && !self.keeper.holds(),
            counter: slot.counter,
            renewal_age_ms: self.last_renewal.map(|t| t.elapsed().as_millis() as u64),
            io_stalled_ms: self.worker.stalled_for().map(|d| d.as_millis() as u64),
            peer_unchanged_ms: self
                .peer_image
                .as_ref()
                .map(|(_, t)| t.elapsed().as_millis() as u64),
            peer_dead: self.keeper.peer_dead(),
            peer_holding: peer.is_some_and(|p| p.holding),
            peer_fenced: peer.is_some_and(|p| p.fenced),
            host_dead_ms: self.s.timing.host_dead.as_millis() as u64,
            renew_ms: self.s.timing.renew.as_millis() as u64,
            fence_pending: slot.request.map(|r| r.id),
            fences: self
                .fences
                .iter()
                .map(|(id, o)| {
                    let o = match o {
                        FenceOutcome::Acked => "acked",
                        FenceOutcome::Dead => "dead",
                    };
                    (*id, o.to_string())
                })
                .collect(),
            self_fenced: self.self_fenced.map(|r| match r {
                FenceReason::Request(id) => format!("fence request {id} from the peer"),
                FenceReason::RenewalsFailed => "lease renewals failed".into(),
                FenceReason::PeerHolds => {
                    "the peer kept renewing a lease this node held (two holders)".into()
                }
                FenceReason::SlotShared => {
                    "another machine writes this node's lease slot (a clone, a wrong host name or --node)".into()
                }
            }),
            reset: self.s.reset.to_string(),
            renewal_latency: Some(self.renewals.clone()),
            write_failures: self.write_failures,
        }
    }

    fn wanted(&self) -> bool {
        matches!(self.keeper.role(), Role::Claiming | Role::Holding) || !self.released
    }

    fn handle(&mut self, line: &str) -> serde_json::Value {
        let mut words = line.split_whitespace();
        let ok = serde_json::json!({"ok": true});
        match (words.next(), words.next(), words.next()) {
            (Some("status"), None, _) => {
                serde_json::to_value(self.status()).expect("status serializes")
            }
            (Some("acquire"), None, _) => {
                if matches!(
                    self.keeper.role(),
                    Role::SelfFencing(_) | Role::Fenced { .. }
                ) {
                    return serde_json::json!({
                        "error": "this node fenced itself: it holds nothing until it is restarted"
                    });
                }
                self.released = false;
                if self.own.claims_wait(self.now(), self.s.timing.host_dead) {
                    // Answered at once all the same: the agent's start
                    // waits for "holds" until its own deadline.
                    if !self.acquire_waits {
                        eprintln!(
                            "lease-keeper: acquire waits: writes of this node's previous keeper are still landing in its slot"
                        );
                    }
                    self.acquire_waits = true;
                } else {
                    self.feed(Input::Acquire);
                }
                ok
            }
            (Some("release"), None, _) => {
                // The peer may take the lease as soon as our slot says we
                // hold nothing: never while the data is mounted here.
                let up = if self.keeper.holds() {
                    mounted_data(&self.s)
                } else {
                    Vec::new()
                };
                if !up.is_empty() {
                    return serde_json::json!({
                        "error": format!("{} still mounted: stop the storage first (the peer could mount it as soon as the lease is released)", up.join(", "))
                    });
                }
                self.acquire_waits = false;
                self.feed(Input::Release);
                ok
            }
            (Some("fence"), Some(target), None) => {
                // A node that fenced itself must not fence the survivor: a
                // fence_mailha still running there from before (both sides
                // of a cut heartbeat ask) would take both nodes down.
                if matches!(
                    self.keeper.role(),
                    Role::SelfFencing(_) | Role::Fenced { .. }
                ) {
                    return serde_json::json!({
                        "error": "this node fenced itself: it fences nobody"
                    });
                }
                if target != self.s.peer.1 {
                    return serde_json::json!({
                        "error": format!("can fence only the peer {:?}, not {target:?}", self.s.peer.1)
                    });
                }
                let id = next_fence_id(self.last_fence_id, self.peer_acked);
                self.last_fence_id = id;
                eprintln!("lease-keeper: posting fence request {id} for {target}");
                self.feed(Input::Fence { id });
                serde_json::json!({"ok": true, "id": id})
            }
            _ => serde_json::json!({"error": format!("unknown request {line:?}")}),
        }
    }
}

/// The shared mounts that are up on this node: in our mount namespace,
/// or (for a device named by path) in any other.
fn mounted_data(s: &Settings) -> Vec<String> {
    use crate::mounts::{device, mountinfo, users};
    let ours = mountinfo::read().unwrap_or_default();
    s.mounts
        .iter()
        .filter(|m| {
            let dir = m.dir.display().to_string();
            mountinfo::find(&ours, &dir).is_some()
                || m.device
                    .as_deref()
                    .and_then(device::numbers)
                    .is_some_and(|fs| {
                        !users::namespaces(&s.proc_root, fs, std::process::id()).is_empty()
                    })
        })
        .map(|m| m.dir.display().to_string())
        .collect()
}

/// A keeper that starts without resuming (its own slot does not say "held
/// in this boot": unreadable, torn, or overwritten) holds nothing, and its
/// peer may take the lease at once. The shared data must then not be
/// mounted here: if it is (a keeper restarted under a mount whose slot it
/// could not resume from, a mount made by hand or from fstab), the node is
/// fenced before the keeper writes or pets anything. On failure the
/// watchdog is armed and never petted, so the node is reset.
fn fence_unleased_mounts(s: &Settings) -> Result<(), KeeperError> {
    let up = mounted_data(s);
    if up.is_empty() {
        return Ok(());
    }
    eprintln!(
        "lease-keeper: {} mounted while this node holds no lease: fencing this node before anything else",
        up.join(", ")
    );
    let ok = self_fence(s);
    crate::alert::spool::note(
        crate::alert::event::Kind::LeaseLost,
        None,
        &format!(
            "{} found {} mounted without the lease at keeper start: {}",
            s.me.1,
            up.join(", "),
            if ok {
                "its users were killed and the data unmounted"
            } else {
                "it could not be let go: the watchdog resets the node"
            }
        ),
    );
    if ok {
        eprintln!("lease-keeper: self-fence done: starting without the lease");
        return Ok(());
    }
    // Armed and dropped without the magic close: it fires.
    let armed = Watchdog::open(&s.watchdog, s.timing.watchdog, s.watchdog_emulated)?;
    drop(armed);
    Err(KeeperError::Unleased(up.join(", ")))
}

/// The id of a new fence request: above every id this node is known to
/// have posted and above every id the peer acked, so that an ack can only
/// answer this request. From the slots, never from a clock: after a
/// keeper restart and a clock stepped back, a clock's id could be one the
/// peer had acked long ago, and fence_mailha would report "acked" with no
/// fencing done.
pub fn next_fence_id(last_posted: u64, peer_acked: u64) -> u64 {
    last_posted.max(peer_acked).saturating_add(1)
}

/// Reads or writes one block synchronously (start-up only), within
/// `io_timeout`.
fn sync_io(worker: &Worker, req: Request, io: Duration) -> Result<Reply, KeeperError> {
    let seq = match &req {
        Request::Read { seq, .. } | Request::Write { seq, .. } => *seq,
    };
    let what = match &req {
        Request::Read { .. } => "read",
        Request::Write { .. } => "write",
    };
    worker.submit(req);
    let deadline = Instant::now() + io;
    loop {
        if worker.wait(deadline) == Wait::TimedOut {
            return Err(KeeperError::Deadline(what));
        }
        if let Some(r) = worker.take_replies().into_iter().find(|r| r.seq() == seq) {
            return Ok(r);
        }
    }
}

fn read_block(worker: &Worker, seq: u64, offset: u64, io: Duration) -> Result<Block, KeeperError> {
    match sync_io(worker, Request::Read { seq, offset }, io)? {
        Reply::Read { result, .. } => result.map_err(|source| KeeperError::Io {
            what: format!("read at {offset}"),
            source,
        }),
        Reply::Written { .. } => unreachable!("a read's reply"),
    }
}

/// Checks the header, writing it if the lease is blank. Both nodes may
/// initialise at once: they write the same bytes. Runs before anything
/// is held, so each I/O may take `start_deadline`.
fn init_header(worker: &Worker, s: &Settings) -> Result<(), KeeperError> {
    let io = start_deadline(s);
    let want = Header {
        cluster: s.cluster.clone(),
        io_timeout: s.timing.io_timeout,
        renew: s.timing.renew,
        renew_fail: s.timing.renew_fail,
        watchdog: s.timing.watchdog,
        host_dead: s.timing.host_dead,
    };
    let b = read_block(worker, u64::MAX - 1, 0, io)?;
    match Header::decode(b.bytes())? {
        Some(h) if h == want => Ok(()),
        Some(h) if h.cluster != want.cluster => Err(KeeperError::Mismatch(format!(
            "{} belongs to cluster {:?}, not {:?}",
            s.device.display(),
            h.cluster,
            want.cluster
        ))),
        Some(h) => Err(KeeperError::Mismatch(format!(
            "{} was initialised with other timeouts ({h:?}) than this node's ({want:?}): both nodes must use the same",
            s.device.display()
        ))),
        None => {
            eprintln!(
                "lease-keeper: initialising the lease header on {}",
                s.device.display()
            );
            let data = Block::from_bytes(&want.encode()?);
            match sync_io(
                worker,
                Request::Write {
                    seq: u64::MAX - 2,
                    offset: 0,
                    data,
                    check: false,
                },
                io,
            )? {
                Reply::Written { result, .. } => result.map_err(|source| KeeperError::Io {
                    what: "header write".into(),
                    source,
                }),
                Reply::Read { .. } => unreachable!("a write's reply"),
            }
        }
    }
}

/// How long opening the lease may take (a dead disk or NFS server
/// blocks the open itself).
fn open_deadline(s: &Settings) -> Duration {
    (s.timing.io_timeout * 10).max(Duration::from_secs(5))
}

/// How long each I/O before the keeper holds anything may take: the
/// header's check and the first reads of both slots. `io_timeout` bounds
/// the renewals that keep a lease; here nothing is held and the watchdog
/// is not open yet, so a disk that is slow at boot (a SAN path failing
/// over, an array spinning up, a loaded host) only delays the start.
/// Failing it instead would leave the node without a keeper: its unit
/// does not restart one (a keeper that died may have been fencing).
fn start_deadline(s: &Settings) -> Duration {
    open_deadline(s)
}

/// The start-up reads: the header checked (written if blank), then our
/// own slot and the peer's, each within `start_deadline`.
fn read_at_start(worker: &Worker, s: &Settings) -> Result<(Block, Block), KeeperError> {
    init_header(worker, s)?;
    let io = start_deadline(s);
    let own = read_block(worker, u64::MAX - 3, slot_offset(s.me.0)?, io)?;
    let peer = read_block(worker, u64::MAX - 4, slot_offset(s.peer.0)?, io)?;
    Ok((own, peer))
}

/// The lease ready for I/O: on NFS, the export mounted first (before
/// anything else: the keeper starts before the cluster stack); opened
/// O_DIRECT | O_DSYNC within a deadline.
fn open_lease(s: &Settings) -> Result<LeaseFile, KeeperError> {
    if let Some(n) = &s.nfs {
        n.ensure_mounted()?;
    }
    let path = s.device.clone();
    let deadline = open_deadline(s);
    let file =
        match super::nfs::within(deadline, move || LeaseFile::open(&path)).ok_or_else(|| {
            KeeperError::Slow {
                what: format!("opening {}", s.device.display()),
                deadline,
            }
        })? {
            Err(super::disk::DiskError::Open { path, source })
                if s.nfs.is_some() && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(KeeperError::Config(format!(
                    "{}: no lease file on the export yet: run `mailha lease init` once",
                    path.display()
                )));
            }
            r => r?,
        };
    if !file.direct() {
        return Err(KeeperError::Config(format!(
            "{} does not support O_DIRECT: a lease read through the page cache can show a stale slot",
            s.device.display()
        )));
    }
    Ok(file)
}

/// `mailha lease init`: makes the lease ready before the first keeper
/// runs. On NFS: mounts the export and creates the file (zeros to the
/// lease's size, written through to the server). Then, on either, writes
/// the header if the lease is blank and checks it otherwise. Idempotent;
/// what it did, for the operator.
pub fn init(s: &Settings) -> Result<String, KeeperError> {
    let mut done = Vec::new();
    if let Some(n) = &s.nfs {
        n.ensure_mounted()?;
        let path = s.device.clone();
        let created = super::nfs::within(super::nfs::MOUNT_DEADLINE, move || {
            super::nfs::create_file(&path, super::format::LEASE_SIZE)
        })
        .ok_or_else(|| KeeperError::Slow {
            what: format!("creating {}", s.device.display()),
            deadline: super::nfs::MOUNT_DEADLINE,
        })??;
        done.push(format!(
            "{} on {} ({}): {}",
            n.spec,
            n.mount_point.display(),
            n.options.join(","),
            if created {
                "lease file created"
            } else {
                "lease file already there"
            }
        ));
    }
    let worker = Worker::spawn(open_lease(s)?);
    init_header(&worker, s)?;
    done.push(format!(
        "{}: header for cluster {:?} in place",
        s.device.display(),
        s.cluster
    ));
    Ok(done.join("\n"))
}

/// Runs the keeper until SIGTERM/SIGINT.
pub fn run(s: Settings) -> Result<(), KeeperError> {
    // First, so that every thread the keeper starts inherits it.
    for refused in realtime() {
        eprintln!("lease-keeper: warning: {refused}");
    }
    let file = open_lease(&s)?;
    let cid = cluster_id(&s.cluster);
    let worker = Worker::spawn(file);
    // The keeper's clock starts before its first read: a holder that
    // resumes (same boot) counts the time its start-up reads took against
    // its renew_fail, as if it had renewed no later than now.
    let origin = boot_clock();
    let (own, peer) = read_at_start(&worker, &s)?;
    let own_bytes = own.bytes().to_vec();
    let me_id = s.me.0;
    let own = SlotImage::of(s.me.0, cid, own.bytes());
    // What the peer acked, before any fence request can be posted.
    let peer_acked = match SlotImage::of(s.peer.0, cid, peer.bytes()) {
        SlotImage::Valid(p) => p.acked,
        _ => 0,
    };
    let listener = bind(&s.socket)?;
    let (to_decide, asks) = mpsc::channel::<Ask>();
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        use nix::sys::signal::{SigHandler, Signal, signal};
        let _ = signal(Signal::SIGTERM, SigHandler::Handler(on_term));
        let _ = signal(Signal::SIGINT, SigHandler::Handler(on_term));
    }
    if s.stop_stack {
        clear_fencing_mark(Path::new("/"));
    }
    let boot = crate::host::boot_id(&s.proc_root);
    let keeper = Keeper::new(s.me.0, s.peer.0, cid, boot, s.timing, &own, Mono(0));
    let resumed = keeper.holds();
    // After the bind (a second keeper on this node fails there, before
    // it could fence the first one's mounts), before the watchdog opens
    // (a failed fence opens it itself, to leave it armed).
    if !resumed {
        fence_unleased_mounts(&s)?;
    }
    let watchdog = Watchdog::open(&s.watchdog, s.timing.watchdog, s.watchdog_emulated)?;
    let last_fence_id = match &own {
        SlotImage::Valid(slot) => slot.request.map(|r| r.id).unwrap_or(0),
        _ => 0,
    };
    eprintln!(
        "lease-keeper: node {} ({}) on {}, peer {} ({}); {:?}{}",
        s.me.1,
        s.me.0,
        s.device.display(),
        s.peer.1,
        s.peer.0,
        s.timing,
        if resumed {
            "; resuming as holder (same boot)"
        } else {
            ""
        }
    );
    let mut d = Daemon {
        s,
        cid,
        keeper,
        worker,
        watchdog,
        origin,
        peer_image: None,
        last_renewal: None,
        renewals: super::latency::Histogram::new(),
        write_failures: 0,
        released: !resumed,
        fences: Vec::new(),
        last_fence_id,
        peer_acked,
        own: super::own_slot::OwnSlot::new(me_id, cid, boot, &own_bytes),
        acquire_waits: false,
        self_fenced: None,
        fence_done: None,
        after_ack: Default::default(),
    };
    serve(listener, to_decide);
    notify_systemd("READY=1");
    while !STOP.load(Ordering::SeqCst) {
        d.feed(Input::Tick);
        if d.acquire_waits && !d.own.claims_wait(d.now(), d.s.timing.host_dead) {
            d.acquire_waits = false;
            eprintln!("lease-keeper: no late write for host_dead: the acquire goes ahead");
            d.feed(Input::Acquire);
        }
        let next = Instant::now() + TICK;
        // Wait for I/O until the next tick, answering clients meanwhile.
        loop {
            // The requests that arrived, at most one per client thread.
            while let Ok((line, reply)) = asks.try_recv() {
                let _ = reply.send(d.handle(&line));
            }
            let step = (Instant::now() + Duration::from_millis(20)).min(next);
            if d.worker.wait(step) == Wait::Done {
                for r in d.worker.take_replies() {
                    d.on_reply(r);
                }
            }
            if let Some(rx) = &d.fence_done
                && let Ok(ok) = rx.try_recv()
            {
                d.fence_done = None;
                eprintln!(
                    "lease-keeper: self-fence {}",
                    if ok { "done" } else { "FAILED" }
                );
                d.feed(Input::SelfFenceDone { ok });
            }
            if d.after_ack.due(None, d.s.timing.io_timeout) {
                d.after_ack.reset(d.s.reset);
            }
            if Instant::now() >= next || STOP.load(Ordering::SeqCst) {
                break;
            }
        }
    }
    let leave_armed = d.keeper.holds()
        || matches!(d.keeper.role(), Role::Fenced { reset: true })
        || d.after_ack.starve;
    if leave_armed {
        eprintln!("lease-keeper: stopping while the data may be mounted: the watchdog stays armed");
    } else {
        d.watchdog.disarm();
    }
    Ok(())
}

fn bind(name: &str) -> Result<UnixListener, KeeperError> {
    let err = |source| KeeperError::Socket {
        name: name.into(),
        source,
    };
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?;
    // An abstract name is taken while its owner lives: a second keeper
    // on the node fails here (EADDRINUSE) instead of sharing the slot.
    UnixListener::bind_addr(&addr).map_err(err)
}

/// Runs the keeper as sbd and corosync run: real-time round-robin at the
/// top priority (a machine busy with mail must not delay a renewal into
/// a self-fence), its memory locked (a renewal must not wait for a page
/// to come back from swap), and the OOM killer's last choice (its death
/// under a holder is a watchdog reset). Called before any thread starts,
/// so all of them inherit it; the programs it runs drop it
/// (`exec::run`). What the machine refuses is returned, never fatal: a
/// keeper at normal priority still guards, only with less margin.
fn realtime() -> Vec<String> {
    use nix::libc;
    let mut refused = Vec::new();
    // SAFETY: reads a constant of the kernel.
    let top = unsafe { libc::sched_get_priority_max(libc::SCHED_RR) };
    if let Err(e) = crate::exec::set_scheduler(libc::SCHED_RR, top) {
        refused.push(format!("no real-time priority (SCHED_RR {top}): {e}"));
    }
    // Locking what is mapped later too needs CAP_IPC_LOCK or a
    // memory-lock limit that allows it; without either, later
    // allocations would fail.
    use nix::sys::mman::{MlockAllFlags, mlockall};
    use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
    let unlimited = has_cap_ipc_lock()
        || setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok();
    let flags = if unlimited {
        MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE
    } else {
        refused
            .push("RLIMIT_MEMLOCK cannot be raised: only the memory mapped now is locked".into());
        MlockAllFlags::MCL_CURRENT
    };
    if let Err(e) = mlockall(flags) {
        refused.push(format!("memory not locked (mlockall): {e}"));
    }
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "-1000") {
        refused.push(format!("oom_score_adj -1000: {e}"));
    }
    refused
}

/// Whether this process may lock memory beyond its RLIMIT_MEMLOCK
/// (CAP_IPC_LOCK, capability 14, in its effective set).
fn has_cap_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            let hex = st
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 14) != 0)
}

/// A request line for the decision thread, and where its answer goes.
type Ask = (String, mpsc::Sender<serde_json::Value>);

/// Serves the control socket on threads of its own, so that no client
/// (a connect flood, one that trickles its line a byte at a time) can
/// delay a renewal: the accepting thread hands each connection to a
/// thread of its own, at most `MAX_CLIENTS` at once (beyond that a
/// connection is closed at once), and each request is bounded as a whole
/// by `REQUEST_DEADLINE`. Only the request line travels to the decision
/// thread, which answers it within one turn of its loop.
fn serve(listener: UnixListener, to_decide: mpsc::Sender<Ask>) {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("mailha-lease-socket".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: closed at once
                }
                let (mine, to_decide) = (busy.clone(), to_decide.clone());
                let spawned = std::thread::Builder::new()
                    .name("mailha-lease-client".into())
                    .spawn(move || {
                        answer(&stream, &to_decide);
                        mine.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
        .expect("spawn the control socket thread");
}

/// One connection: who asks, their line, the decision thread's answer.
fn answer(stream: &UnixStream, to_decide: &mpsc::Sender<Ask>) {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let _ = stream.set_write_timeout(Some(REQUEST_DEADLINE));
    let reply = if super::client::peer_uid(stream) != Some(0) {
        serde_json::json!({"error": "only root may talk to the lease keeper"})
    } else {
        match super::client::read_line_by(stream, deadline, MAX_REQUEST) {
            Err(e) => serde_json::json!({"error": format!("reading the request: {e}")}),
            Ok(line) => {
                let (tx, rx) = mpsc::channel();
                let _ = to_decide.send((line.trim().to_string(), tx));
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()) + TICK)
                    .unwrap_or_else(
                        |_| serde_json::json!({"error": "the keeper did not answer in time"}),
                    )
            }
        }
    };
    let _ = (&*stream).write_all(format!("{reply}\n").as_bytes());
}

/// The cluster stack's daemons, by the name the kernel shows.
fn is_stack(comm: &str) -> bool {
    comm == "corosync" || comm == "pacemakerd" || comm.starts_with("pacemaker-")
}

/// Where, under the node's root, a self-fence that takes the node out
/// says so, from before it kills anything until the node restarts
/// (`/run` is a tmpfs) or a keeper starts again. The services' units end
/// under its SIGKILL and their `ExecStopPost=` (`mailha unit-ended`)
/// would report each as a daemon that died of itself: a "service
/// restarted" line per daemon in the fence's alert mail, for deaths that
/// are the fence. `agents::service::ended` reads it and reports nothing.
pub const FENCING_MARK: &str = "run/mailha/self-fencing";

/// Sets the mark (`FENCING_MARK` under `root`) with the reason in it.
/// Best effort: a mark that cannot be written costs only the noise it
/// keeps out, never the fence.
pub fn mark_fencing(root: &Path, reason: &str) {
    let path = root.join(FENCING_MARK);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, format!("{reason}\n")));
    if let Err(e) = written {
        eprintln!("lease-keeper: {}: {e}", path.display());
    }
}

/// Removes the mark: a keeper that starts is not fencing.
pub fn clear_fencing_mark(root: &Path) {
    let path = root.join(FENCING_MARK);
    match std::fs::remove_file(&path) {
        Ok(()) => eprintln!(
            "lease-keeper: removed {} left by an earlier self-fence",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("lease-keeper: {}: {e}", path.display()),
    }
}

/// How long a self-fence may spend on one mount: kill, MNT_FORCE,
/// MNT_DETACH and the proof (`mounts::release`, fence mode).
const FENCE_PER_MOUNT: Duration = Duration::from_secs(10);

/// Fences this node: kill the cluster stack (nothing may start the
/// services again), then release every shared mount without grace: kill
/// what is about to mount it and every user in any mount namespace of
/// this node, force it off, and prove the filesystem let go of its
/// device. True only with that proof for every mount: otherwise the node
/// must not ack, and its watchdog resets it.
pub fn self_fence(s: &Settings) -> bool {
    use crate::mounts::release::{Mode, Release, release};
    let me = std::process::id();
    if s.stop_stack {
        // Our PID namespace only: a keeper on a host running lab nodes
        // stays on its own node (the service agent's rule).
        let stack: Vec<u32> = crate::procs::all(&s.proc_root)
            .into_iter()
            .filter(|p| *p != me && crate::procs::same_namespaces(&s.proc_root, *p, &["pid"]))
            .filter(|p| {
                std::fs::read_to_string(s.proc_root.join(p.to_string()).join("comm"))
                    .is_ok_and(|c| is_stack(c.trim()))
            })
            .collect();
        eprintln!("lease-keeper: killing the cluster stack {stack:?}");
        for p in stack {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let mut ok = true;
    for m in &s.mounts {
        let dir = m.dir.display().to_string();
        let o = release(&Release {
            dir: &dir,
            device: m.device.as_deref(),
            proc_root: &s.proc_root,
            me,
            mode: Mode::Fence,
            timeout: FENCE_PER_MOUNT,
            who: "lease-keeper",
        });
        if !o.released() {
            eprintln!(
                "lease-keeper: {dir}: not released: still mounted {}, used by {:?}{}",
                o.still_mounted,
                o.holders,
                o.alive.map(|a| format!(", {a}")).unwrap_or_default()
            );
            ok = false;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::{Arc, Mutex};

    fn lab_config() -> Config {
        crate::config::load_str(
            Path::new("mailha.toml"),
            include_str!("../../lab/configs/postfix.toml"),
            None,
        )
        .unwrap()
        .config
    }

    #[test]
    fn the_keepers_node_is_found_as_setup_finds_it_fqdn_or_address() {
        let cfg = lab_config();
        let addr = |n: usize| cfg.cluster.nodes[n].addresses[0];
        let me = |host: &str, addrs: &[std::net::IpAddr]| {
            Settings::resolved(&cfg, None, host, addrs).map(|s| s.me.1)
        };
        assert_eq!(me("node2", &[]).unwrap(), "node2");
        assert_eq!(me("node2.mail.example", &[addr(1)]).unwrap(), "node2");
        assert_eq!(me("localhost", &[addr(0)]).unwrap(), "node1");
        let e = me("localhost", &[]).unwrap_err().to_string();
        assert!(e.contains("none of [cluster.nodes]"), "{e}");
    }

    #[test]
    fn a_machine_that_looks_like_the_other_node_gets_no_slot() {
        // A clone of node1 that came up with node2's address, or node2
        // started with --node node1: one slot, two writers.
        let cfg = lab_config();
        let node2 = [cfg.cluster.nodes[1].addresses[0]];
        for (node, host) in [(None, "node1"), (Some("node1"), "node2")] {
            let e = Settings::resolved(&cfg, node, host, &node2)
                .unwrap_err()
                .to_string();
            assert!(e.contains("holds node2's address"), "{e}");
        }
        // Its own address bound too: it is node1 (a machine may carry
        // more addresses than its ring's).
        let both = [cfg.cluster.nodes[0].addresses[0], node2[0]];
        assert!(Settings::resolved(&cfg, Some("node1"), "node1", &both).is_ok());
        assert!(Settings::resolved(&cfg, Some("node9"), "node1", &[]).is_err());
    }

    #[test]
    fn a_fence_id_is_above_what_the_peer_acked_whatever_the_clock_says() {
        // A restarted keeper whose own slot kept no request (it is cleared
        // once answered) and a peer that acked an id from a clock running
        // far ahead: the next id must still be new to the peer.
        let far_ahead = 4_102_444_800_000; // 2100-01-01 in ms
        assert_eq!(next_fence_id(0, far_ahead), far_ahead + 1);
        assert_eq!(next_fence_id(7, 3), 8);
        assert_eq!(next_fence_id(0, 0), 1);
    }

    #[test]
    fn the_cluster_stack_is_told_by_its_process_names() {
        for c in [
            "corosync",
            "pacemakerd",
            "pacemaker-based",
            "pacemaker-controld",
        ] {
            assert!(is_stack(c), "{c}");
        }
        for c in ["mailha", "postfix", "master", "corosync-cfgtool"] {
            assert!(!is_stack(c), "{c}");
        }
    }

    #[test]
    fn a_lease_on_nfs_is_a_file_on_the_keepers_own_mount() {
        let text = include_str!("../../lab/configs/postfix.toml").replace(
            "device = \"/dev/lab/lease\"",
            "nfs = \"198.51.100.30:/export\"\nfile = \"lease\"\noptions = [\"vers=4.1\"]",
        );
        let cfg = crate::config::load_str(Path::new("mailha.toml"), &text, None)
            .unwrap()
            .config;
        let s = Settings::from_config(&cfg, Some("node2")).unwrap();
        assert_eq!(s.device, Path::new("/run/mailha/lease-nfs/lease"));
        let n = s.nfs.expect("mounted by the keeper");
        assert_eq!(n.spec, "198.51.100.30:/export");
        // io_timeout 250 ms: a retransmission every 0.3 s; the operator's
        // version last, so it wins.
        assert!(
            n.options.contains(&"timeo=3".to_string()),
            "{:?}",
            n.options
        );
        assert_eq!(n.options.last().unwrap(), "vers=4.1");
    }

    #[test]
    fn systemd_hears_ready_on_the_socket_it_named() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify(path.as_os_str(), "READY=1").unwrap();
        let mut b = [0u8; 64];
        let n = rx.recv(&mut b).unwrap();
        assert_eq!(&b[..n], b"READY=1");
        let name = format!("@mailha-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(&name.as_bytes()[1..]).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        notify(std::ffi::OsStr::new(&name), "READY=1").unwrap();
        let n = rx.recv(&mut b).unwrap();
        assert_eq!(&b[..n], b"READY=1");
    }

    #[test]
    fn under_systemd_inhibit_the_units_socket_path_stands_in_for_notify_socket() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let unit = "/run/systemd/notify";
        assert_eq!(
            notify_socket(env(&[("MAILHA_NOTIFY_SOCKET", "/run/systemd/notify")])),
            Some(unit.into()),
            "systemd-inhibit cleared NOTIFY_SOCKET"
        );
        assert_eq!(
            notify_socket(env(&[
                ("NOTIFY_SOCKET", "@private"),
                ("MAILHA_NOTIFY_SOCKET", "/run/systemd/notify")
            ])),
            Some("@private".into()),
            "systemd's own variable first"
        );
        assert_eq!(notify_socket(env(&[])), None, "not under systemd");
    }

    #[test]
    fn the_keepers_clock_counts_from_boot() {
        // CLOCK_BOOTTIME, as /proc/uptime (which counts a suspend too).
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ours = boot_clock().0 as f64 / 1000.0;
        assert!((ours - up).abs() < 1.0, "{ours} vs uptime {up}");
    }

    #[test]
    fn a_driver_timeout_above_the_configured_one_is_refused() {
        let p = Path::new("/dev/watchdog");
        let five = Duration::from_secs(5);
        assert_eq!(check_driver_timeout(p, five, 5).unwrap(), five);
        // Rounded down: it only resets sooner.
        assert_eq!(
            check_driver_timeout(p, five, 4).unwrap(),
            Duration::from_secs(4)
        );
        // Rounded up (a driver counting in coarser units), or nonsense.
        for bad in [6, 0, -1] {
            let e = check_driver_timeout(p, five, bad).unwrap_err().to_string();
            assert!(e.contains("watchdog_timeout"), "{e}");
        }
    }

    #[test]
    fn only_a_watchdog_device_is_accepted_unless_the_config_says_emulated() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("watchdog");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // The lab's supervisor: a reader on the FIFO.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let w = Duration::from_secs(2);
        let e = Watchdog::open(&fifo, w, false)
            .err()
            .expect("a FIFO taken for a watchdog");
        assert!(e.to_string().contains("watchdog_emulated"), "{e}");
        assert!(Watchdog::open(&fifo, w, true).is_ok());
        // A character device that is no watchdog.
        let e = Watchdog::open(Path::new("/dev/null"), w, false)
            .err()
            .expect("/dev/null taken for a watchdog");
        assert!(e.to_string().contains("not a watchdog driver"), "{e}");
    }

    #[test]
    fn the_socket_refuses_unknown_requests_and_a_second_keeper() {
        let name = format!("mailha-lease-test-{}", std::process::id());
        let _l = bind(&name).unwrap();
        assert!(matches!(bind(&name), Err(KeeperError::Socket { .. })));
    }

    /// A lease on a disk that answers, but slowly: every I/O takes `lag`.
    struct SlowDisk {
        blocks: std::collections::HashMap<u64, Vec<u8>>,
        lag: Duration,
        ops: Arc<Mutex<Vec<(&'static str, u64)>>>,
    }

    impl super::super::disk::BlockIo for SlowDisk {
        fn read_block(&mut self, offset: u64) -> std::io::Result<Block> {
            std::thread::sleep(self.lag);
            self.ops.lock().unwrap().push(("read", offset));
            Ok(self
                .blocks
                .get(&offset)
                .map_or_else(Block::zeroed, |b| Block::from_bytes(b)))
        }
        fn write_block(&mut self, offset: u64, data: &Block) -> std::io::Result<()> {
            std::thread::sleep(self.lag);
            self.ops.lock().unwrap().push(("write", offset));
            self.blocks.insert(offset, data.bytes().to_vec());
            Ok(())
        }
    }

    #[test]
    fn a_disk_slow_at_boot_delays_the_keepers_start_instead_of_failing_it() {
        // Each I/O takes twice io_timeout, as a SAN path failing over or a
        // host loaded at boot can. Nothing is held yet, so the keeper waits
        // (its unit would not restart it), and reads what a start reads.
        let cfg = lab_config();
        let s = Settings::resolved(&cfg, Some("node1"), "node1", &[]).unwrap();
        let ops = Arc::new(Mutex::new(Vec::new()));
        let worker = Worker::spawn(SlowDisk {
            blocks: Default::default(),
            lag: s.timing.io_timeout * 2,
            ops: ops.clone(),
        });
        let (own, peer) = read_at_start(&worker, &s).unwrap();
        assert!(own.bytes().iter().all(|b| *b == 0));
        assert!(peer.bytes().iter().all(|b| *b == 0));
        let own_at = slot_offset(s.me.0).unwrap();
        let peer_at = slot_offset(s.peer.0).unwrap();
        assert_eq!(
            *ops.lock().unwrap(),
            [
                ("read", 0),
                ("write", 0),
                ("read", own_at),
                ("read", peer_at)
            ],
            "the blank lease's header written, then both slots read"
        );
    }

    #[test]
    fn a_disk_that_hangs_at_boot_still_fails_the_start_within_its_deadline() {
        let cfg = lab_config();
        let s = Settings::resolved(&cfg, Some("node1"), "node1", &[]).unwrap();
        let worker = Worker::spawn(SlowDisk {
            blocks: Default::default(),
            lag: Duration::from_secs(3600),
            ops: Default::default(),
        });
        let e = read_at_start(&worker, &s).unwrap_err();
        assert!(matches!(e, KeeperError::Deadline("read")), "{e}");
    }
}
