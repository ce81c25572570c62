//! Releasing a shared mount within a deadline, and proving it released:
//! the one implementation behind the storage agent's stop and the lease
//! keeper's self-fence ("end every user and prove the device is free").
//!
//! 1. Which filesystem: the device number of the mount here, or of the
//!    configured device (found even where this namespace no longer has it).
//! 2. A fence first ends whatever is about to mount it (a storage start in
//!    progress, a `mount` naming the directory).
//! 3. Its users, in every mount namespace of this PID namespace
//!    (`users`): a stop sends TERM, then KILL; a fence KILL at once.
//! 4. The mount here: umount, then MNT_FORCE, then MNT_DETACH (a fence
//!    skips the plain one); then in every other mount namespace that still
//!    has it, from a child that enters that namespace.
//! 5. The proof: a block device can be opened exclusively (no filesystem
//!    holds it anywhere, not even one detached with a process stuck
//!    inside); a network filesystem shows in no mount namespace any more.
//!    Without the proof the mount is not released, whatever umount said.
//!
//! Every umount2(2) and the exclusive open run in a child (`mailha io
//! ...`) that a hung disk or server may hold, never the caller.

use super::users::{self, Fs};
use super::{device, mountinfo};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Umount {
    Plain,
    Force,
    Detach,
}

impl Umount {
    pub fn name(self) -> &'static str {
        match self {
            Umount::Plain => "umount",
            Umount::Force => "umount MNT_FORCE",
            Umount::Detach => "umount MNT_DETACH",
        }
    }
    fn arg(self) -> &'static str {
        match self {
            Umount::Plain => "plain",
            Umount::Force => "force",
            Umount::Detach => "detach",
        }
    }
}

/// Waits up to `wait` for the block device `dev` to be given up by the
/// filesystem that was on it. Ok(true): released; Ok(false): still
/// claimed when the time was up.
pub fn device_released(dev: &str, wait: Duration) -> Result<bool, String> {
    let ms = wait.as_millis().to_string();
    let out = crate::exec::io_child(&["released", dev, &ms], wait + Duration::from_secs(1))?;
    Ok(out.trim() == "released")
}

pub fn umount(dir: &str, how: Umount, deadline: Duration) -> Result<(), String> {
    crate::exec::io_child(&["umount", dir, how.arg()], deadline).map(|_| ())
}

/// `umount` in the mount namespace of process `pid`, where the
/// filesystem is mounted on `dir` (as that namespace names it).
pub fn umount_in(pid: u32, dir: &str, how: Umount, deadline: Duration) -> Result<(), String> {
    let pid = pid.to_string();
    crate::exec::io_child(&["umount", dir, how.arg(), &pid], deadline).map(|_| ())
}

/// The child side of `device_released` (`mailha io released DEV MS`). A
/// mounted filesystem holds its block device exclusively, and keeps
/// holding it after MNT_DETACH for as long as anything is still inside it
/// (a process stuck in the kernel, even one holding no file yet, which no
/// /proc scan can see), and while any mount namespace still has it
/// mounted. An exclusive open succeeds once the filesystem is really gone.
pub fn child_wait_released(dev: &Path, wait: Duration) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let until = std::time::Instant::now() + wait;
    loop {
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_EXCL)
            .open(dev)
        {
            Ok(_) => return Ok("released\n".into()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {}
            Err(e) => return Err(format!("{}: {e}", dev.display())),
        }
        if std::time::Instant::now() >= until {
            return Ok("claimed\n".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child side of `umount` and `umount_in` (`mailha io umount DIR
/// plain|force|detach [PID]`). Entering another mount namespace needs a
/// single-threaded process: this child is one.
pub fn child_umount(dir: &str, how: &str, ns_of: Option<&str>) -> Result<String, String> {
    use nix::mount::{MntFlags, umount2};
    if let Some(pid) = ns_of {
        let pid: u32 = pid.parse().map_err(|_| format!("{pid:?} is not a pid"))?;
        let path = format!("/proc/{pid}/ns/mnt");
        let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("entering {path}: {e}"))?;
    }
    let flags = match how {
        "plain" => MntFlags::empty(),
        "force" => MntFlags::MNT_FORCE,
        "detach" => MntFlags::MNT_DETACH,
        _ => return Err(format!("unknown umount mode {how:?}")),
    };
    umount2(dir, flags).map_err(|e| format!("{dir}: {e}"))?;
    Ok(String::new())
}

/// How hard a release pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The storage agent's stop: users get TERM, then KILL; umount, then
    /// MNT_FORCE, then MNT_DETACH; each with its share of the timeout.
    Stop,
    /// The keeper's self-fence: no grace. Whatever is about to mount the
    /// directory and every user get KILL at once; MNT_FORCE, MNT_DETACH.
    Fence,
}

/// The time shares of a release, in tenths of its timeout: users TERM,
/// users KILL, umount, MNT_FORCE, MNT_DETACH. The rest goes to the other
/// namespaces and the proof, up to 95% of the timeout, so the caller
/// always answers in time.
pub const STOP_SHARES: [u32; 5] = [3, 1, 2, 1, 2];
/// A fence gives no grace: no TERM and no plain umount.
pub const FENCE_SHARES: [u32; 5] = [0, 2, 0, 3, 3];

/// One mount to release.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    pub dir: &'a str,
    /// The configured block device, when there is one: the filesystem is
    /// found by it even where this namespace no longer has it mounted.
    pub device: Option<&'a str>,
    pub proc_root: &'a Path,
    /// The caller, never signalled (nor, in a fence, its children).
    pub me: u32,
    pub mode: Mode,
    pub timeout: Duration,
    /// Prefix of the log lines ("storage", "lease-keeper").
    pub who: &'a str,
}

/// What a release did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Something was mounted (here or in another namespace) or in use.
    pub found: bool,
    /// How the mount in our namespace went away (None: it did not, or it
    /// was not mounted here).
    pub released_by: Option<Umount>,
    /// Still mounted here at the end.
    pub still_mounted: bool,
    /// Processes still using the filesystem at the end (stuck in the
    /// kernel: KILL does not end a process in D state).
    pub holders: Vec<u32>,
    /// Why the filesystem may still be alive although nothing in sight
    /// uses it (the device still claimed, a namespace still has it).
    pub alive: Option<String>,
    /// What went beyond a plain umount with no users left, for the
    /// operator's mail.
    pub escalated: Vec<String>,
}

impl Outcome {
    /// Nothing can write the filesystem from this node any more.
    pub fn released(&self) -> bool {
        !self.still_mounted && self.holders.is_empty() && self.alive.is_none()
    }
}

fn signal(pids: &[u32], sig: Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), sig);
    }
}

/// The block device behind a mount entry, if it is one (for the proof).
fn block_device(e: &mountinfo::MountEntry) -> Option<String> {
    let (maj, min) = e.major_minor;
    (e.source.starts_with("/dev/") && Path::new(&format!("/sys/dev/block/{maj}:{min}")).exists())
        .then(|| e.source.clone())
}

/// Processes about to mount `dir` (a fence must not leave a mount behind
/// it): a storage agent whose environment names the directory
/// (`OCF_RESKEY_directory`), a command whose arguments name it (`mount
/// ... DIR`), and their children; never `me` nor its own children.
pub fn mounters(proc_root: &Path, dir: &str, me: u32) -> Vec<u32> {
    use std::io::Read;
    let all: Vec<crate::procs::ProcInfo> = crate::procs::all(proc_root)
        .into_iter()
        .filter(|p| crate::procs::same_namespaces(proc_root, *p, &["pid"]))
        .filter_map(|p| crate::procs::read(proc_root, p))
        .collect();
    let mine = crate::procs::descendants(&all, me);
    let env_key = format!("OCF_RESKEY_directory={dir}");
    let read_capped = |p: u32, what: &str| {
        let mut b = Vec::new();
        let _ = std::fs::File::open(proc_root.join(p.to_string()).join(what))
            .and_then(|f| f.take(256 * 1024).read_to_end(&mut b));
        b
    };
    let mut out = Vec::new();
    for p in all.iter().map(|p| p.pid).filter(|p| !mine.contains(p)) {
        let named = |what: &str, want: &str| {
            read_capped(p, what)
                .split(|c| *c == 0)
                .any(|a| a == want.as_bytes())
        };
        if named("cmdline", dir) || named("environ", &env_key) {
            for d in crate::procs::descendants(&all, p) {
                if !out.contains(&d) && !mine.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// Releases one mount (see the module's steps); never takes longer than
/// `r.timeout` by more than a child's reaping.
pub fn release(r: &Release) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let shares = match r.mode {
        Mode::Stop => STOP_SHARES,
        Mode::Fence => FENCE_SHARES,
    };
    let mut t = start;
    let mut next = |share: u32| {
        t += r.timeout.mul_f64(share as f64 / 10.0);
        t
    };
    let log = |m: String| eprintln!("{}: {}: {m}", r.who, r.dir);
    let here = || {
        mountinfo::read()
            .ok()
            .and_then(|e| mountinfo::find(&e, r.dir).cloned())
    };
    if r.mode == Mode::Fence {
        let m = mounters(r.proc_root, r.dir, r.me);
        if !m.is_empty() {
            log(format!("ending what is about to mount it: {m:?}"));
            signal(&m, Signal::SIGKILL);
            out.escalated
                .push(format!("mounts in progress {m:?} killed"));
            // A mount(2) that completes as it dies must show up below.
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until && m.iter().any(|p| users::alive(r.proc_root, *p)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let entry = here();
    let fs: Option<Fs> = entry
        .as_ref()
        .map(|e| e.major_minor)
        .or_else(|| r.device.and_then(device::numbers));
    let dev = entry.as_ref().and_then(block_device).or_else(|| {
        r.device
            .filter(|d| device::numbers(d).is_some())
            .map(String::from)
    });
    let Some(fs) = fs else {
        return out;
    };
    let users = || users::users(r.proc_root, fs, r.me);
    let first = users();
    let elsewhere = users::namespaces(r.proc_root, fs, r.me);
    out.found = entry.is_some() || !first.is_empty() || !elsewhere.is_empty();
    if !out.found {
        return out;
    }
    let wait_users = |until: Instant| {
        while Instant::now() < until && !users().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let term_end = next(shares[0]);
    let kill_end = next(shares[1]);
    if !first.is_empty() {
        if r.mode == Mode::Stop {
            log(format!("sending TERM to users {first:?}"));
            signal(&first, Signal::SIGTERM);
            wait_users(term_end);
        }
        let left = users();
        if !left.is_empty() {
            log(format!("sending KILL to users {left:?}"));
            if r.mode == Mode::Stop {
                out.escalated.push(format!("users {left:?} needed KILL"));
            }
            signal(&left, Signal::SIGKILL);
            // New users may appear until the mount is gone: keep killing.
            while Instant::now() < kill_end {
                let left = users();
                if left.is_empty() {
                    break;
                }
                signal(&left, Signal::SIGKILL);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // Who still holds the filesystem before the mount is released: after
    // MNT_DETACH their paths no longer name a mount point, so they are
    // checked by pid (found here: a writer stuck in fsync on a hung device
    // survived KILL, the detach "released" the mount, and the filesystem
    // stayed alive in the kernel with its dirty data).
    let before = users();
    let steps: &[(Umount, u32)] = match r.mode {
        Mode::Stop => &[
            (Umount::Plain, shares[2]),
            (Umount::Force, shares[3]),
            (Umount::Detach, shares[4]),
        ],
        Mode::Fence => &[(Umount::Force, shares[3]), (Umount::Detach, shares[4])],
    };
    if entry.is_some() {
        for (how, share) in steps {
            let end = next(*share);
            let budget = end
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            match umount(r.dir, *how, budget) {
                Ok(()) if here().is_none() => {
                    out.released_by = Some(*how);
                    break;
                }
                Ok(()) => log(format!("{} returned, still mounted", how.name())),
                Err(e) => log(format!("{} failed: {e}", how.name())),
            }
        }
        out.still_mounted = out.released_by.is_none();
        if let Some(how) = out.released_by
            && how != Umount::Plain
        {
            out.escalated.push(format!("released by {}", how.name()));
        }
    }
    let end = start + r.timeout.mul_f64(0.95);
    // Other mount namespaces that still have it (their users are gone).
    for ns in users::namespaces(r.proc_root, fs, r.me)
        .into_iter()
        .filter(|n| !n.ours)
    {
        for point in &ns.points {
            for how in [Umount::Plain, Umount::Detach] {
                let budget = end
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(3))
                    .max(Duration::from_millis(100));
                match umount_in(ns.pid, point, how, budget) {
                    Ok(()) => {
                        log(format!(
                            "{} in the mount namespace of process {} ({point})",
                            how.name(),
                            ns.pid
                        ));
                        out.escalated.push(format!(
                            "unmounted in the mount namespace of process {}",
                            ns.pid
                        ));
                        break;
                    }
                    Err(e) => log(format!(
                        "{} in the mount namespace of process {}: {e}",
                        how.name(),
                        ns.pid
                    )),
                }
            }
        }
    }
    let mut holders = users();
    for pid in before {
        if !holders.contains(&pid) && users::alive(r.proc_root, pid) {
            holders.push(pid);
        }
    }
    out.holders = holders;
    // The proof. With holders in sight the release has failed anyway:
    // answer now, the sooner the node is fenced the sooner the peer serves.
    if out.holders.is_empty() && !out.still_mounted {
        out.alive = match &dev {
            Some(dev) => {
                let wait = end
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(Duration::from_secs(1))
                    .max(Duration::from_millis(200));
                match device_released(dev, wait) {
                    Ok(true) => None,
                    Ok(false) => Some(format!(
                        "the filesystem still holds {dev} {:.1} s after the release (a process stuck inside it, or a mount namespace nothing runs in)",
                        wait.as_secs_f64()
                    )),
                    Err(e) => Some(format!("{dev}: {e}")),
                }
            }
            None => {
                let left = users::namespaces(r.proc_root, fs, r.me);
                (!left.is_empty()).then(|| {
                    format!(
                        "still mounted in the mount namespaces of processes {:?}",
                        left.iter().map(|n| n.pid).collect::<Vec<_>>()
                    )
                })
            }
        };
    }
    out
}
