//! The lease on a file on NFS (`[storage.lease] nfs = "host:/export"`,
//! docs/lease.md "The lease on NFS"): the keeper mounts the export itself
//! on a private mount point, with options that keep the lease's two
//! promises, then runs the same O_DIRECT | O_DSYNC 4 KiB I/O on the file
//! as on a block device (`disk.rs`).
//!
//! Why the keeper mounts it, and not the operator or a resource: the
//! keeper starts before the cluster stack at boot and must not depend on
//! anything the cluster manages, and the options are part of the lease's
//! correctness, not a preference.
//!
//! The two promises the options keep:
//! - every read reaches the server (a cached slot would show a dead peer
//!   alive or a live one dead): O_DIRECT bypasses the data cache, `noac`
//!   the attribute cache;
//! - a write that returned is on the server's stable storage, and one
//!   node's writes land in the order issued (docs/lease.md, "Late
//!   writes"): O_DSYNC, `sync`, and `hard`. A `soft` mount gives up on a
//!   request with EIO while the server may still hold it; the worker
//!   would issue the next write, and a multi-threaded server (ganesha)
//!   could apply the two in either order. `hard` retries the request until
//!   it lands, so the worker starts nothing new meanwhile; the keeper's
//!   decision loop never waits on the worker past `io_timeout` (disk.rs),
//!   so a hung server stalls the worker, never the keeper, and the keeper
//!   fences the node by the formula.

use crate::config::model::NfsExport;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the keeper (and `mailha lease init`) mount the lease's export:
/// under /run (gone at reboot), one lease per node.
pub const MOUNT_POINT: &str = "/run/mailha/lease-nfs";
/// The mount as a whole (mount.nfs: the portmapper, MOUNT, the first
/// GETATTR): a dead server fails it here instead of hanging the keeper's
/// start.
pub const MOUNT_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NfsLeaseError {
    #[error("[storage.lease] options: {option:?} cannot be used for a lease: {why}")]
    Refused { option: String, why: &'static str },
    #[error("{mount_point}: {source_spec} is mounted there, not {want}")]
    Occupied {
        mount_point: String,
        source_spec: String,
        want: String,
    },
    #[error("mounting {spec} on {mount_point}: {why}")]
    Mount {
        spec: String,
        mount_point: String,
        why: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Options an operator may not give the lease's mount, and why. Checked
/// by `config::validate` (so `mailha check` points at the item) and again
/// here.
pub fn refused(option: &str) -> Option<&'static str> {
    let name = option.split('=').next().unwrap_or(option);
    Some(match name {
        "soft" | "softerr" => {
            "a soft mount abandons a request the server may still apply, so one node's lease writes could land out of order; the lease needs hard"
        }
        "ro" => "the keeper writes its slot",
        "async" => "a lease write must be on the server before it returns",
        "ac" => "cached attributes could hide the peer's writes; the lease needs noac",
        "fsc" => "a local cache could answer a lease read",
        "bg" => "the mount must be there when mount returns",
        _ => return None,
    })
}

/// The mount options, ours first: the kernel takes the last of two
/// conflicting options, so an operator's `vers=4.2` or `timeo=50`
/// replaces our default; what would break the lease is refused.
pub fn mount_options(io_timeout: Duration, user: &[String]) -> Result<Vec<String>, NfsLeaseError> {
    if let Some((option, why)) = user.iter().find_map(|o| refused(o).map(|w| (o, w))) {
        return Err(NfsLeaseError::Refused {
            option: option.clone(),
            why,
        });
    }
    // timeo is in tenths of a second: one retransmission per io_timeout,
    // so after a short outage a hard mount resends within a renewal
    // instead of after the TCP default of 60 s.
    let timeo = io_timeout.as_millis().div_ceil(100).max(1);
    let mut v: Vec<String> = [
        "hard",
        "proto=tcp",
        // NFSv3 is stateless: no client state to recover and no grace
        // period stalling the lease's I/O after a server restart, no
        // state that expires while the server is hung.
        "vers=3",
        // The lease takes no locks; NFSv3 locking would need rpc.statd.
        "nolock",
        "noac",
        "sync",
        // mount.nfs retries a failed mount for 2 minutes by default: the
        // keeper's deadline decides instead.
        "retry=0",
        "nosuid",
        "nodev",
        "noexec",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("timeo={timeo}"));
    v.push("retrans=2".into());
    v.extend(user.iter().cloned());
    Ok(v)
}

/// One node's lease on NFS: the export, its private mount, the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsLease {
    /// `host:/export`.
    pub spec: String,
    pub options: Vec<String>,
    pub mount_point: PathBuf,
    pub file: String,
}

impl NfsLease {
    pub fn new(
        export: &NfsExport,
        file: &str,
        user_options: &[String],
        io_timeout: Duration,
    ) -> Result<NfsLease, NfsLeaseError> {
        Ok(NfsLease {
            spec: export.spec(),
            options: mount_options(io_timeout, user_options)?,
            mount_point: PathBuf::from(MOUNT_POINT),
            file: file.to_string(),
        })
    }

    /// The lease file as the keeper opens it.
    pub fn path(&self) -> PathBuf {
        self.mount_point.join(&self.file)
    }

    /// The mount command: argv, never a shell string.
    pub fn mount_argv(&self) -> Vec<String> {
        vec![
            "mount".into(),
            "-t".into(),
            "nfs".into(),
            "-o".into(),
            self.options.join(","),
            self.spec.clone(),
            self.mount_point.display().to_string(),
        ]
    }

    /// What to do given the mount table: nothing (ours is there, e.g. a
    /// restarted keeper), mount, or refuse (something else is there).
    pub fn plan(
        &self,
        mounts: &[crate::mounts::mountinfo::MountEntry],
    ) -> Result<bool, NfsLeaseError> {
        let mp = self.mount_point.display().to_string();
        match crate::mounts::mountinfo::find(mounts, &mp) {
            None => Ok(true),
            Some(e) if e.fstype.starts_with("nfs") && e.source == self.spec => Ok(false),
            Some(e) => Err(NfsLeaseError::Occupied {
                mount_point: mp,
                source_spec: format!("{} ({})", e.source, e.fstype),
                want: self.spec.clone(),
            }),
        }
    }

    /// Mounts the export unless it is mounted already. Reads only
    /// /proc/self/mountinfo (a stat of a hung mount point would hang).
    pub fn ensure_mounted(&self) -> Result<(), NfsLeaseError> {
        let mp = self.mount_point.display().to_string();
        let mounts = crate::mounts::mountinfo::read().map_err(|source| NfsLeaseError::Io {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
        if !self.plan(&mounts)? {
            return Ok(());
        }
        std::fs::create_dir_all(&self.mount_point).map_err(|source| NfsLeaseError::Io {
            path: self.mount_point.clone(),
            source,
        })?;
        let err = |why: String| NfsLeaseError::Mount {
            spec: self.spec.clone(),
            mount_point: mp.clone(),
            why,
        };
        let out = crate::exec::run(&self.mount_argv(), &[], None, MOUNT_DEADLINE)
            .map_err(|e| err(e.to_string()))?;
        if !out.success() {
            return Err(err(format!(
                "mount exited with {:?}: {}",
                out.code,
                out.stderr.trim()
            )));
        }
        Ok(())
    }
}

/// Runs `f` on a thread and waits at most `deadline` (None past it):
/// file operations on a hard NFS mount (or a dead disk) block while the
/// server is away. A thread left behind is blocked in a killable wait and
/// ends with the process.
pub fn within<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("mailha-lease-open".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(deadline).ok()
}

/// Creates the lease file if it is not there and makes it `size` bytes
/// of zeros written through O_DIRECT | O_DSYNC (on the server's disk,
/// not a sparse promise), never shortening a file. Both nodes may run it
/// at once: they write the same zeros, and only past the old end. True
/// when it wrote anything.
pub fn create_file(path: &Path, size: u64) -> Result<bool, NfsLeaseError> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let io = |source| NfsLeaseError::Io {
        path: path.into(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_DIRECT | nix::libc::O_DSYNC)
        .open(path)
        .map_err(io)?;
    let have = f.metadata().map_err(io)?.len();
    if have >= size {
        return Ok(false);
    }
    let zero = super::disk::Block::zeroed();
    let block = zero.bytes().len() as u64;
    // From the block holding the old end: a torn last block is rewritten
    // whole (the lease's blocks are all zeros when blank).
    let mut off = have / block * block;
    while off < size {
        f.write_all_at(zero.bytes(), off).map_err(io)?;
        off += block;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::mountinfo::parse;

    fn export() -> NfsExport {
        NfsExport {
            host: "198.51.100.30".into(),
            export: "/export".into(),
        }
    }

    #[test]
    fn the_mount_keeps_every_read_at_the_server_and_every_write_durable_and_ordered() {
        let o = mount_options(Duration::from_secs(1), &[]).unwrap();
        for want in [
            "hard",
            "noac",
            "sync",
            "nolock",
            "vers=3",
            "proto=tcp",
            "retry=0",
        ] {
            assert!(o.iter().any(|x| x == want), "{want} in {o:?}");
        }
        assert!(o.contains(&"timeo=10".to_string()), "{o:?}");
        // A quarter second still retransmits: rounded up, never 0.
        let o = mount_options(Duration::from_millis(250), &[]).unwrap();
        assert!(o.contains(&"timeo=3".to_string()), "{o:?}");
        let o = mount_options(Duration::from_millis(10), &[]).unwrap();
        assert!(o.contains(&"timeo=1".to_string()), "{o:?}");
    }

    #[test]
    fn the_operators_options_come_last_so_they_override_ours() {
        let o = mount_options(
            Duration::from_secs(1),
            &["vers=4.2".into(), "timeo=50".into()],
        )
        .unwrap();
        assert_eq!(
            &o[o.len() - 2..],
            &["vers=4.2".to_string(), "timeo=50".to_string()]
        );
    }

    #[test]
    fn options_that_break_the_lease_are_refused_by_name() {
        for bad in ["soft", "softerr", "ro", "async", "ac", "fsc", "bg"] {
            let e = mount_options(Duration::from_secs(1), &["vers=4.1".into(), bad.into()])
                .unwrap_err();
            match e {
                NfsLeaseError::Refused { option, .. } => assert_eq!(option, bad),
                e => panic!("{bad}: {e}"),
            }
        }
        for fine in [
            "vers=4.1",
            "port=2049",
            "timeo=30",
            "noac",
            "actimeo=0",
            "sec=sys",
            "hard",
        ] {
            assert_eq!(refused(fine), None, "{fine}");
        }
    }

    #[test]
    fn the_mount_command_is_argv_with_one_option_string() {
        let l = NfsLease::new(
            &export(),
            ".mailha-lease",
            &["vers=4.1".into()],
            Duration::from_secs(1),
        )
        .unwrap();
        let a = l.mount_argv();
        assert_eq!(&a[..4], &["mount", "-t", "nfs", "-o"]);
        assert!(
            a[4].starts_with("hard,proto=tcp,vers=3,") && a[4].ends_with(",vers=4.1"),
            "{}",
            a[4]
        );
        assert_eq!(&a[5..], &["198.51.100.30:/export", MOUNT_POINT]);
        assert_eq!(l.path(), Path::new("/run/mailha/lease-nfs/.mailha-lease"));
    }

    fn line(mp: &str, fstype: &str, source: &str) -> String {
        format!("40 25 0:50 / {mp} rw,relatime shared:1 - {fstype} {source} rw\n")
    }

    #[test]
    fn a_restarted_keeper_reuses_its_mount_and_refuses_a_stranger_there() {
        let l = NfsLease::new(&export(), "lease", &[], Duration::from_secs(1)).unwrap();
        assert!(
            l.plan(&parse(&line("/run", "tmpfs", "tmpfs"))).unwrap(),
            "not mounted: mount"
        );
        assert!(
            !l.plan(&parse(&line(MOUNT_POINT, "nfs", "198.51.100.30:/export")))
                .unwrap()
        );
        assert!(
            !l.plan(&parse(&line(MOUNT_POINT, "nfs4", "198.51.100.30:/export")))
                .unwrap()
        );
        let e = l
            .plan(&parse(&line(MOUNT_POINT, "nfs", "198.51.100.31:/other")))
            .unwrap_err();
        assert!(e.to_string().contains("198.51.100.31:/other"), "{e}");
        assert!(
            l.plan(&parse(&line(MOUNT_POINT, "tmpfs", "tmpfs")))
                .is_err()
        );
    }

    #[test]
    fn the_file_is_created_in_zeros_to_the_lease_size_and_never_shortened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lease");
        let size = crate::lease::format::LEASE_SIZE;
        assert!(create_file(&p, size).unwrap(), "written");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
        assert!(std::fs::read(&p).unwrap().iter().all(|b| *b == 0));
        assert!(
            !create_file(&p, size).unwrap(),
            "already there: nothing written"
        );
        assert!(!create_file(&p, 4096).unwrap(), "never shortened");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
    }

    #[test]
    fn a_call_that_never_returns_is_given_up_at_its_deadline() {
        let t0 = std::time::Instant::now();
        let r = within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(3600));
        });
        assert_eq!(r, None);
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(within(Duration::from_secs(5), || 7), Some(7));
    }
}
