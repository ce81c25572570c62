//! The keeper's control socket, client side, and what it answers: every
//! user of the lease that is not the keeper (the lease and storage agents,
//! fence_mailha, setup, `mailha lease status`) talks to it through here,
//! so none of them needs the keeper itself.
//!
//! The socket is an abstract Unix socket: it lives in the network
//! namespace (one per node in the lab, like Pacemaker's libqb sockets),
//! needs no directory, and vanishes with the process. One request line
//! in, one JSON line out: `status`, `acquire`, `release`, `fence NODE`.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::Duration;

/// The abstract socket name the keeper listens on by default.
pub const DEFAULT_SOCKET: &str = "mailha-lease";

/// A socket name as the agents' parameters give it: letters, digits and
/// `-_.`, so it names nothing but an abstract socket.
pub fn check_socket(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a socket name (letters, digits, - _ .)"))
}

/// What `status` answers. The agent, fence_mailha and `mailha lease
/// status` read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// The keeper's process id (in its own PID namespace).
    pub pid: u32,
    pub node: String,
    pub node_id: u32,
    pub peer: String,
    pub peer_id: u32,
    pub cluster: String,
    pub device: String,
    /// idle, claiming, holding, self-fencing, fenced
    pub role: String,
    /// The data may be mounted here (from acquired to a release or a
    /// clean self-fence).
    pub holds: bool,
    /// The agent asked for the lease and has not released it.
    pub wanted: bool,
    /// Our slot on disk says we hold nothing (a release landed, or we
    /// never held).
    pub released: bool,
    pub counter: u64,
    /// Since the last renewal that landed.
    pub renewal_age_ms: Option<u64>,
    /// The lease I/O in progress has run this long.
    pub io_stalled_ms: Option<u64>,
    /// Since the peer's slot last changed (as we read it), if ever read.
    pub peer_unchanged_ms: Option<u64>,
    pub peer_dead: bool,
    pub peer_holding: bool,
    pub peer_fenced: bool,
    pub host_dead_ms: u64,
    /// How often a live keeper writes its slot.
    #[serde(default)]
    pub renew_ms: u64,
    /// Our fence request waiting for the peer, if any.
    pub fence_pending: Option<u64>,
    /// Recent fence outcomes: (request id, "acked" | "dead").
    pub fences: Vec<(u64, String)>,
    /// Why we fenced ourselves, if we did.
    pub self_fenced: Option<String>,
    /// What follows an acked fence: reboot, watchdog, or none (the node
    /// stays up fenced until restarted by hand). Empty from an older keeper.
    #[serde(default)]
    pub reset: String,
    /// How long this keeper's slot writes took since it started (the
    /// ones that landed). None from an older keeper.
    #[serde(default)]
    pub renewal_latency: Option<super::latency::Histogram>,
    /// Slot writes that failed since the keeper started.
    #[serde(default)]
    pub write_failures: u64,
}

/// The longest reply a client reads: a status is a few hundred bytes.
pub const MAX_REPLY: usize = 64 * 1024;

/// The uid of the process at the other end of a Unix socket (for a
/// client: the one that bound and listened), from SO_PEERCRED.
pub fn peer_uid(s: &UnixStream) -> Option<u32> {
    use std::os::unix::io::AsRawFd;
    let mut cred = nix::libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: 0,
    };
    let mut len = std::mem::size_of::<nix::libc::ucred>() as nix::libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the given size.
    let r = unsafe {
        nix::libc::getsockopt(
            s.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut nix::libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// Reads one line of at most `max` bytes before `deadline`: a peer that
/// trickles bytes or never ends its line holds the reader no longer.
pub fn read_line_by(
    s: &UnixStream,
    deadline: std::time::Instant,
    max: usize,
) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Error::new(ErrorKind::TimedOut, "no whole line in time"));
        }
        s.set_read_timeout(Some(left))?;
        let n = (&*s).read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.iter().position(|c| *c == b'\n') {
            got.truncate(i);
            break;
        }
        if got.len() > max {
            return Err(Error::new(ErrorKind::InvalidData, "line too long"));
        }
    }
    String::from_utf8(got).map_err(|e| Error::new(ErrorKind::InvalidData, e))
}

/// One request to the keeper's control socket; the reply as JSON, within
/// `timeout` in all. The answer counts only from a process of root's: an
/// abstract name can be bound by anyone while the keeper is down, and a
/// squatter saying "you hold, the peer is dead" would make the storage
/// agent mount without the lease and clear the MMP block.
pub fn request(socket: &str, line: &str, timeout: Duration) -> Result<serde_json::Value, String> {
    let deadline = std::time::Instant::now() + timeout;
    let addr =
        SocketAddr::from_abstract_name(socket.as_bytes()).map_err(|e| format!("@{socket}: {e}"))?;
    let mut s = UnixStream::connect_addr(&addr)
        .map_err(|e| format!("the lease keeper (@{socket}) is not running: {e}"))?;
    match peer_uid(&s) {
        Some(0) => {}
        Some(uid) => {
            return Err(format!(
                "@{socket} is held by a process of uid {uid}, not by the lease keeper (root): not believed"
            ));
        }
        None => return Err(format!("@{socket}: cannot tell who answers (SO_PEERCRED)")),
    }
    s.set_write_timeout(Some(timeout)).ok();
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("@{socket}: {e}"))?;
    let out =
        read_line_by(&s, deadline, MAX_REPLY).map_err(|e| format!("@{socket}: no answer: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("@{socket}: bad answer {out:?}: {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(e.to_string());
    }
    Ok(v)
}

pub fn status(socket: &str, timeout: Duration) -> Result<Status, String> {
    let v = request(socket, "status", timeout)?;
    serde_json::from_value(v).map_err(|e| format!("@{socket}: bad status: {e}"))
}
