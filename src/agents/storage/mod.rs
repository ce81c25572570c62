//! `ocf:mailha:storage`: one shared mount that never hangs the cluster
//! (DESIGN section 6).
//!
//! - "Mounted?" comes from /proc/self/mountinfo, never from stat().
//! - monitor depth 0: mounted (and, for NFS, the server answers an RPC
//!   NULL call); 10: a directory read; 20: a marker written, synced and
//!   read back. Depths 10 and 20 run in a child with a deadline.
//! - stop: the mount's users get TERM, then KILL (found via /proc), then
//!   umount, MNT_FORCE, MNT_DETACH, each in a child with its own share of
//!   the op timeout: stop always answers in time and logs which step
//!   released the mount. It succeeds only if no process still holds files
//!   there (a process stuck in the kernel means: fence this node).

pub mod io;
pub mod locks;
pub mod mmp;
pub mod nfs;

use crate::mounts::mountinfo;
use crate::mounts::release::{self, Mode, Release, Umount};

use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Applies one of mailha.toml's own rules to a parameter, so the agent
/// accepts exactly what `mailha check` accepts.
fn config_rule<T>(
    v: &str,
    rule: fn(&mut crate::config::validate::Ctx, crate::config::FieldPath, &str) -> Option<T>,
) -> Result<T, String> {
    let mut errs = crate::config::validate::Ctx::default();
    rule(&mut errs, crate::config::FieldPath::root(), v).ok_or_else(|| {
        errs.problems
            .first()
            .map(|p| p.message.clone())
            .unwrap_or_default()
    })
}

fn check_device(v: &str) -> Result<(), String> {
    config_rule(v, crate::config::validate::block_dev).map(|_| ())
}

fn check_nfs(v: &str) -> Result<(), String> {
    config_rule(v, crate::config::validate::nfs_export).map(|_| ())
}

/// A mount point: absolute, clean, not `/` and not inside the system's own
/// trees (the same rule as mailha.toml).
fn check_directory(v: &str) -> Result<(), String> {
    let p = config_rule(v, crate::config::validate::mount_point)?;
    if p.to_string_lossy() == v {
        Ok(())
    } else {
        Err(format!("{v:?} is not in its clean form ({})", p.display()))
    }
}

fn check_fstype(v: &str) -> Result<(), String> {
    let ok =
        !v.is_empty() && v.len() <= 16 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a filesystem type"))
}

fn check_options(v: &str) -> Result<(), String> {
    let ok = v.split(',').all(|o| {
        !o.is_empty()
            && o.chars()
                .all(|c| c.is_ascii_alphanumeric() || "=_-.:/+".contains(c))
    });
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a comma-separated list of mount options"))
}

fn check_timeout(v: &str) -> Result<(), String> {
    match humantime::parse_duration(v) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(120) => Ok(()),
        _ => Err(format!("{v:?} is not a duration between 1ms and 2min")),
    }
}

use ParamType::{Integer, String as Str};

pub static PARAMS: &[Param] = &[
    Param::new(
        "device",
        Str,
        false,
        None,
        "block device",
        "The block device: a path under /dev (or another absolute device node), UUID=... or LABEL=... (resolved from superblocks, no udev needed). Give device or nfs.",
        check_device,
    ),
    Param::new(
        "nfs",
        Str,
        false,
        None,
        "NFS export",
        "host:/export. Give device or nfs.",
        check_nfs,
    ),
    Param {
        unique: true,
        ..Param::new(
            "directory",
            Str,
            true,
            None,
            "mount point",
            "Where to mount.",
            check_directory,
        )
    },
    Param::new(
        "fstype",
        Str,
        false,
        Some("ext4"),
        "filesystem type",
        "ext4, xfs, nfs, nfs4...",
        check_fstype,
    ),
    Param::new(
        "options",
        Str,
        false,
        None,
        "mount options",
        "Comma-separated mount options.",
        check_options,
    ),
    Param::new(
        "io_timeout",
        Str,
        false,
        Some("10s"),
        "I/O deadline",
        "Deadline of each I/O probe and each umount attempt.",
        check_timeout,
    ),
    Param::new(
        "nfs_port",
        Integer,
        false,
        Some("2049"),
        "NFS port",
        "Port of the NFS server's RPC service.",
        ocf::check_port,
    ),
    Param::new(
        "cluster",
        Str,
        false,
        None,
        "cluster name",
        "Used in the monitor's marker file name.",
        ocf::no_check,
    ),
    Param::new(
        "lease_socket",
        Str,
        false,
        None,
        "lease keeper socket",
        "Abstract socket name of this node's lease keeper (mailha's generated CIB sets it when [storage.lease] is configured). A start then mounts only while the keeper says this node holds the data lease, and clears an ext4 MMP block left by a peer that died holding the lease instead of waiting out MMP.",
        crate::lease::client::check_socket,
    ),
    Param::new(
        "stale_locks",
        Str,
        false,
        None,
        "lock files a dead node leaves",
        "File names, separated by spaces (Dovecot's dovecot-uidlist.lock ...). Only with lease_socket: a start that mounted the filesystem itself while the keeper holds the lease removes every regular file of these names below the mount point before any service starts, since no process of the peer can hold them any more. Symlinks are never followed, other filesystems below are skipped, a Maildir's cur/new/tmp are not read; the walk runs in a child with a deadline and never fails the start.",
        check_stale_locks,
    ),
];

/// No cap on the count: the CIB's list is every service's names, which
/// mailha.toml does not cap either (an agent refusing what `check`
/// accepted would keep the data from mounting).
fn check_stale_locks(v: &str) -> Result<(), String> {
    v.split(' ')
        .try_for_each(crate::config::validate::plain_file_name)
}

pub static ACTIONS: &[Action] = &[
    Action::once("start", 60),
    Action::once("stop", 60),
    Action::monitor(20, 10, 0),
    Action::monitor(30, 30, 20),
    Action::once("validate-all", 5),
    Action::once("meta-data", 5),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "storage",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "A shared mount that never hangs the cluster",
    longdesc: "Mounts one block device (path, UUID= or LABEL=) or NFS export. Mount state comes from /proc/self/mountinfo; I/O probes and umounts run in children with deadlines, so a hung disk or server gives a timely failure and a bounded stop.",
    params: PARAMS,
    actions: ACTIONS,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Device(String),
    Nfs { host: String, export: String },
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub source: Source,
    pub directory: String,
    pub fstype: String,
    pub options: Option<String>,
    pub io_timeout: Duration,
    pub nfs_port: u16,
    pub marker: String,
    /// This node's lease keeper, when the data is under the lease.
    pub lease_socket: Option<String>,
    /// Lock files removed after a mount under the lease (`locks`).
    pub stale_locks: Vec<String>,
}

pub fn from_params(p: &BTreeMap<&'static str, String>) -> Result<Storage, OcfError> {
    let source = match (p.get("device"), p.get("nfs")) {
        (Some(d), None) => Source::Device(d.clone()),
        (None, Some(n)) => {
            let (host, export) = n.split_once(':').expect("checked");
            Source::Nfs {
                host: host.into(),
                export: export.into(),
            }
        }
        _ => return Err(OcfError::configured("give exactly one of device and nfs")),
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(Storage {
        source,
        directory: p["directory"].clone(),
        fstype: p["fstype"].clone(),
        options: p.get("options").cloned(),
        io_timeout: humantime::parse_duration(&p["io_timeout"]).expect("checked"),
        nfs_port: p["nfs_port"].parse().expect("checked"),
        marker: format!(".mailha-monitor-{host}"),
        lease_socket: p.get("lease_socket").cloned(),
        stale_locks: p
            .get("stale_locks")
            .map(|v| v.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The device node to mount (`mounts::device::resolve`), its failure as
/// the OCF status it means: nothing found is "not installed" (the disk is
/// not attached here), two matches a configuration error.
pub fn resolve_device(spec: &str, timeout: Duration) -> Result<String, OcfError> {
    use crate::mounts::device::{DeviceError, resolve};
    resolve(spec, timeout).map_err(|e| match e {
        DeviceError::Ambiguous { .. } => OcfError::configured(e.to_string()),
        DeviceError::NoSysfs(_) | DeviceError::NotFound(_) => {
            OcfError::new(OcfStatus::ErrInstalled, e.to_string())
        }
    })
}

/// Mounted here, by what? Reads mountinfo only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountState {
    NotMounted,
    Ours,
    Foreign(String),
}

pub fn mount_state(
    s: &Storage,
    entries: &[mountinfo::MountEntry],
    device: Option<&str>,
) -> MountState {
    let Some(e) = mountinfo::find(entries, &s.directory) else {
        return MountState::NotMounted;
    };
    let ours = match &s.source {
        Source::Nfs { host, export } => e.source == format!("{host}:{export}"),
        Source::Device(_) => match device.and_then(crate::mounts::device::numbers) {
            Some(mm) => mm == e.major_minor,
            None => device.is_some_and(|d| e.source == d),
        },
    };
    if ours {
        MountState::Ours
    } else {
        MountState::Foreign(e.source.clone())
    }
}

fn device_for_state(s: &Storage) -> Option<String> {
    match &s.source {
        Source::Device(d) if !d.contains('=') => Some(d.clone()),
        // UUID/LABEL: whatever mountinfo shows on the directory is checked
        // by major:minor only after a (bounded) resolution.
        Source::Device(d) => resolve_device(d, Duration::from_secs(2)).ok(),
        Source::Nfs { .. } => None,
    }
}

pub fn monitor(s: &Storage, depth: u32) -> Result<OcfStatus, OcfError> {
    let entries = mountinfo::read().map_err(|e| OcfError::generic(format!("mountinfo: {e}")))?;
    match mount_state(s, &entries, device_for_state(s).as_deref()) {
        MountState::NotMounted => {
            return Err(OcfError::not_running(format!(
                "{} is not mounted",
                s.directory
            )));
        }
        MountState::Foreign(src) => {
            return Err(OcfError::generic(format!(
                "{} is mounted from {src}, not from this resource's source",
                s.directory
            )));
        }
        MountState::Ours => {}
    }
    if let Source::Nfs { host, .. } = &s.source {
        nfs::ping(host, s.nfs_port, s.io_timeout)
            .map_err(|e| OcfError::generic(format!("NFS server: {e}")))?;
    }
    if depth >= 10 {
        crate::exec::io_child(&["read", &s.directory], s.io_timeout)
            .map_err(|e| OcfError::generic(format!("read probe on {}: {e}", s.directory)))?;
    }
    if depth >= 20 {
        crate::exec::io_child(&["write", &s.directory, &s.marker], s.io_timeout)
            .map_err(|e| OcfError::generic(format!("write probe on {}: {e}", s.directory)))?;
    }
    Ok(OcfStatus::Success)
}

pub fn start(s: &Storage, timeout: Duration) -> Result<OcfStatus, OcfError> {
    let deadline = Instant::now() + timeout;
    if let Source::Nfs { host, .. } = &s.source {
        nfs::ping(host, s.nfs_port, s.io_timeout)
            .map_err(|e| OcfError::generic(format!("NFS server: {e}")))?;
    }
    let entries = mountinfo::read().map_err(|e| OcfError::generic(format!("mountinfo: {e}")))?;
    let device = match &s.source {
        Source::Device(d) => Some(resolve_device(d, s.io_timeout)?),
        Source::Nfs { .. } => None,
    };
    match mount_state(s, &entries, device.as_deref()) {
        MountState::Ours => return Ok(OcfStatus::Success),
        MountState::Foreign(src) => {
            return Err(OcfError::generic(format!(
                "{} is already mounted from {src}",
                s.directory
            )));
        }
        MountState::NotMounted => {}
    }
    if let Some(socket) = &s.lease_socket {
        under_lease(s, socket, device.as_deref(), deadline)?;
    }
    std::fs::create_dir_all(&s.directory)
        .map_err(|e| OcfError::generic(format!("{}: {e}", s.directory)))?;
    let source = match (&s.source, &device) {
        (Source::Nfs { host, export }, _) => format!("{host}:{export}"),
        (_, Some(d)) => d.clone(),
        _ => unreachable!("a device source was resolved"),
    };
    let mut argv = vec!["/bin/mount".to_string(), "-t".into(), s.fstype.clone()];
    if let Some(o) = &s.options {
        argv.push("-o".into());
        argv.push(o.clone());
    }
    argv.push(source.clone());
    argv.push(s.directory.clone());
    // The mount itself may wait: ext4's MMP refuses a device active
    // elsewhere only after it watched the MMP block for a while.
    let left = deadline.saturating_duration_since(Instant::now());
    let o = crate::exec::run(&argv, &[], None, left)
        .map_err(|e| OcfError::generic(format!("mount: {e}")))?;
    if !o.success() {
        return Err(OcfError::generic(format!(
            "mount {source} on {} failed: {}",
            s.directory,
            o.stderr.trim()
        )));
    }
    eprintln!("storage: mounted {source} on {}", s.directory);
    // The mount may have waited most of the timeout (ext4's MMP check):
    // the lease asked for before it may be gone by now.
    if let Some(socket) = &s.lease_socket
        && let Err(e) = still_held(s, socket)
    {
        let o = release::release(&Release {
            dir: &s.directory,
            device: device.as_deref(),
            proc_root: Path::new("/proc"),
            me: std::process::id(),
            mode: Mode::Stop,
            timeout: deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(5)),
            who: "storage",
        });
        let undone = if o.released() {
            "unmounted it again"
        } else {
            "and could not unmount it again: this node must be fenced"
        };
        return Err(OcfError::generic(format!("{}; {undone}", e.reason)));
    }
    if s.lease_socket.is_some() && !s.stale_locks.is_empty() {
        clear_stale_locks(s, deadline);
    }
    Ok(OcfStatus::Success)
}

/// What the walk may take: what the start has left, less a margin for
/// the start to answer, and never more than half a minute (a tree that
/// large is better left to the daemons' own stale timeouts).
fn locks_budget(left: Duration) -> Duration {
    left.saturating_sub(Duration::from_secs(5))
        .min(Duration::from_secs(30))
}

/// Removes the peer's leftover locks (`locks`). Called only right after
/// this start mounted the filesystem under the lease: nothing of the peer
/// can hold them and nothing here has opened the mount yet. Its failure is
/// logged, never the start's: the daemons then wait the locks out.
fn clear_stale_locks(s: &Storage, deadline: Instant) {
    let budget = locks_budget(deadline.saturating_duration_since(Instant::now()));
    if budget.is_zero() {
        eprintln!(
            "storage: no time left to remove stale locks on {}: the daemons will wait them out",
            s.directory
        );
        return;
    }
    let mut argv = vec!["stale-locks", s.directory.as_str()];
    argv.extend(s.stale_locks.iter().map(String::as_str));
    match crate::exec::io_child(&argv, budget) {
        Ok(out) => {
            let mut lines = out.lines();
            let summary = lines.next().unwrap_or_default();
            let shown: Vec<&str> = lines.by_ref().take(10).collect();
            let more = lines.count();
            let list = match (shown.is_empty(), more) {
                (true, _) => String::new(),
                (false, 0) => format!(": {}", shown.join(" ")),
                (false, n) => format!(": {} and {n} more", shown.join(" ")),
            };
            eprintln!(
                "storage: stale locks on {} ({}): {summary}{list}",
                s.directory,
                s.stale_locks.join(" ")
            );
        }
        Err(e) => eprintln!(
            "storage: stale locks on {} not removed ({e}): the daemons will wait them out",
            s.directory
        ),
    }
}

/// The keeper says this node holds the data lease, and is not fencing
/// itself (a self-fencing keeper still says `holds` until its fence is
/// done: nothing may mount meanwhile).
fn still_held(s: &Storage, socket: &str) -> Result<crate::lease::client::Status, OcfError> {
    let ask = s.io_timeout.min(Duration::from_secs(5));
    let st = crate::lease::client::status(socket, ask).map_err(|e| {
        OcfError::generic(format!(
            "the lease keeper ({socket}) does not answer ({e}): nothing mounts shared storage without the lease"
        ))
    })?;
    if !st.holds || st.role != "holding" {
        return Err(OcfError::generic(format!(
            "this node does not hold the data lease (keeper: {}): nothing mounts shared storage without it",
            st.role
        )));
    }
    Ok(st)
}

/// The lease's part of a start: nothing mounts without the lease (the
/// CIB's order says so too; this holds when the agent is run by hand or
/// the constraints were edited), and an MMP block the lease proves stale
/// is cleared rather than waited out (`mmp`).
fn under_lease(
    s: &Storage,
    socket: &str,
    device: Option<&str>,
    deadline: Instant,
) -> Result<(), OcfError> {
    let st = still_held(s, socket)?;
    let Some(dev) = device.filter(|_| s.fstype == "ext4") else {
        return Ok(());
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let m = match io::mmp(dev, s.io_timeout.min(left)) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(()),
        // The mount reads the same block and decides for itself.
        Err(e) => {
            eprintln!("storage: {dev}: reading the MMP block: {e}; the mount decides");
            return Ok(());
        }
    };
    match mmp::plan(&m, &mmp::LeaseView::from(&st)) {
        mmp::Plan::Mount => Ok(()),
        mmp::Plan::Wait(why) => {
            eprintln!("storage: {dev}: {why}");
            Ok(())
        }
        mmp::Plan::Refuse(why) => Err(OcfError::generic(format!("{dev}: {why}"))),
        mmp::Plan::Clear(why) => {
            eprintln!("storage: {dev}: {why}");
            let argv = ["tune2fs", "-f", "-E", "clear_mmp", dev].map(String::from);
            let left = deadline.saturating_duration_since(Instant::now());
            match crate::exec::run(&argv, &[], None, s.io_timeout.min(left)) {
                Ok(o) if o.success() => eprintln!("storage: {dev}: {}", mmp::LOG_CLEARED),
                // Not fatal: the kernel's wait still guards the mount.
                Ok(o) => eprintln!(
                    "storage: {dev}: tune2fs -E clear_mmp failed ({}); the mount waits out MMP",
                    o.stderr.trim()
                ),
                Err(e) => {
                    eprintln!("storage: {dev}: tune2fs -E clear_mmp: {e}; the mount waits out MMP")
                }
            }
            Ok(())
        }
    }
}

/// Stops the mount (`mounts::release`, its stop mode); with the result,
/// what had to be escalated beyond a plain umount with no users left (for
/// the operator's mail), if anything. It succeeds only once nothing on
/// this node can write the filesystem any more.
pub fn stop(
    s: &Storage,
    timeout: Duration,
    proc_root: &Path,
) -> (Result<OcfStatus, OcfError>, Option<String>) {
    let start = Instant::now();
    // A device named by path finds the filesystem even where this
    // namespace no longer has it; UUID=/LABEL= would cost a superblock
    // read of every disk, so those are found through the mount alone.
    let device = match &s.source {
        Source::Device(d) if !d.contains('=') => Some(d.as_str()),
        _ => None,
    };
    let o = release::release(&Release {
        dir: &s.directory,
        device,
        proc_root,
        me: std::process::id(),
        mode: Mode::Stop,
        timeout,
        who: "storage",
    });
    if !o.found {
        return (Ok(OcfStatus::Success), None);
    }
    let how = o
        .released_by
        .map(Umount::name)
        .unwrap_or("unmounting it in other mount namespaces");
    let r = if o.released() {
        eprintln!(
            "storage: {} released by {how} after {:?}",
            s.directory,
            start.elapsed()
        );
        Ok(OcfStatus::Success)
    } else if o.still_mounted {
        Err(OcfError::generic(format!(
            "{} could not be unmounted within {timeout:?}",
            s.directory
        )))
    } else if !o.holders.is_empty() {
        Err(OcfError::generic(format!(
            "{} detached by {how} but processes {:?} still hold files there (stuck in the kernel): this node must be fenced",
            s.directory, o.holders
        )))
    } else {
        Err(OcfError::generic(format!(
            "{} detached by {how} but {}: this node must be fenced",
            s.directory,
            o.alive.as_deref().unwrap_or_default()
        )))
    };
    let mut escalated = o.escalated;
    if let Err(e) = &r {
        escalated.push(e.reason.clone());
    }
    let said = (!escalated.is_empty()).then(|| {
        format!(
            "{}: {} ({:.1} s)",
            s.directory,
            escalated.join("; "),
            start.elapsed().as_secs_f64()
        )
    });
    (r, said)
}

pub fn main(
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
    proc_root: &Path,
) -> Result<OcfStatus, OcfError> {
    let (params, timeout) = match ocf::prepare(&SPEC, action, env) {
        Ok(p) => p,
        Err(done) => return done,
    };
    let s = from_params(&params)?;
    match action {
        "validate-all" => Ok(OcfStatus::Success),
        "start" => start(&s, timeout),
        "stop" => {
            let (r, escalated) = stop(&s, timeout, proc_root);
            if let Some(what) = escalated {
                crate::alert::spool::note(
                    crate::alert::event::Kind::StorageStopEscalated,
                    env("OCF_RESOURCE_INSTANCE").as_deref(),
                    &what,
                );
            }
            r
        }
        _ => {
            let depth = env("OCF_CHECK_LEVEL")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            monitor(&s, depth)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<Storage, OcfError> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string()))
            .collect();
        let p = ocf::read_params(&SPEC, &|k| m.get(k).cloned())?;
        from_params(&p)
    }

    #[test]
    fn hostile_or_dangerous_parameters_are_misconfiguration() {
        for (k, v) in [
            ("device", "/dev/sdb;reboot"),
            ("device", "$(reboot)"),
            ("device", "relative/disk"),
            ("directory", "/"),
            ("directory", "/proc/sys"),
            ("directory", "srv/mail"),
            ("directory", "/srv/../etc"),
            ("options", "rw;reboot"),
            ("options", "rw,,sync"),
            ("fstype", "ext4 -o remount"),
            ("nfs", "host:/export;id"),
        ] {
            let mut ps = vec![("directory", "/srv/mail")];
            if k != "nfs" && k != "device" {
                ps.push(("device", "/dev/vdb"));
            }
            ps.retain(|(n, _)| *n != k);
            ps.push((k, v));
            let e = params(&ps).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{k}={v:?} accepted");
        }
        assert!(
            params(&[("directory", "/srv/mail")]).is_err(),
            "a source is needed"
        );
        assert!(
            params(&[
                ("directory", "/srv/mail"),
                ("device", "/dev/vdb"),
                ("nfs", "h:/e")
            ])
            .is_err()
        );
    }

    #[test]
    fn mount_state_compares_the_source() {
        let s = params(&[("directory", "/srv/mail"), ("nfs", "198.51.100.30:/export")]).unwrap();
        let e = mountinfo::parse("40 22 0:45 / /srv/mail rw - nfs4 198.51.100.30:/export rw\n");
        assert_eq!(mount_state(&s, &e, None), MountState::Ours);
        let e = mountinfo::parse("40 22 0:45 / /srv/mail rw - nfs4 198.51.100.31:/export rw\n");
        assert!(matches!(mount_state(&s, &e, None), MountState::Foreign(_)));
        assert_eq!(mount_state(&s, &[], None), MountState::NotMounted);
    }
}
