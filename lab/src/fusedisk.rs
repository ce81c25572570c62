//! Per-node storage faults: each node's loop devices are backed by its own
//! FUSE pass-through of the shared images (`mailha lab fusedisk`, hidden),
//! so a drill can make ONE node's path to the disk fail (EIO) or hang while
//! the other node's path works, the way a SAN path or an HBA dies.
//!
//! The daemon serves one directory holding the images by name; every open
//! is `FOPEN_DIRECT_IO`, so no page cache sits between the node's loop
//! device and the image (both nodes see each other's writes, as on a
//! shared disk). Its mode comes from a plain file beside the mount, polled
//! every 20 ms (never from a file inside the FUSE mount: the control path
//! must not depend on the path it breaks):
//! - `ok`: reads, writes and syncs go to the image;
//! - `eio`: they fail with EIO at once;
//! - `hang`: they are parked unanswered (the node's I/O waits in the kernel,
//!   D state) until the mode changes; then each parked request is answered
//!   under the new mode. So a hang is always releasable: `lab down` writes
//!   `eio` first and teardown never sticks.
//!
//! Metadata (lookup, getattr, open) is always answered: the fault is on
//! the data path, like a disk that stops answering I/O.

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request,
    WriteFlags,
};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of one node's path to the shared disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    Ok,
    Eio,
    Hang,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "ok" => Some(Mode::Ok),
            "eio" => Some(Mode::Eio),
            "hang" => Some(Mode::Hang),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::Eio => "eio",
            Mode::Hang => "hang",
        }
    }
}

/// Where one node's fusedisk lives under the lab's base dir.
pub fn mount_dir(base_dir: &Path, node: &str) -> PathBuf {
    base_dir.join("fusedisk").join(node)
}
pub fn mode_file(base_dir: &Path, node: &str) -> PathBuf {
    base_dir.join("fusedisk").join(format!("{node}.mode"))
}
pub fn log_file(base_dir: &Path, node: &str) -> PathBuf {
    base_dir.join("fusedisk").join(format!("{node}.log"))
}

/// Switches a node's path (the daemon picks it up within ~20 ms). Written
/// via rename so the daemon never reads half a word.
pub fn set_mode(base_dir: &Path, node: &str, mode: Mode) -> std::io::Result<()> {
    set_mode_file(&mode_file(base_dir, node), mode)
}

/// As `set_mode`, given the mode file itself (the emulated watchdog is
/// handed the file, not the lab's layout).
pub fn set_mode_file(f: &Path, mode: Mode) -> std::io::Result<()> {
    let tmp = f.with_extension("mode.new");
    std::fs::write(&tmp, mode.name())?;
    std::fs::rename(&tmp, f)
}

pub fn get_mode(base_dir: &Path, node: &str) -> Option<Mode> {
    Mode::parse(&std::fs::read_to_string(mode_file(base_dir, node)).ok()?)
}

/// Where the daemon records the mode it has applied, once the requests it
/// parked were answered under it.
fn applied_file(mode_file: &Path) -> PathBuf {
    mode_file.with_extension("mode.applied")
}

/// As `set_mode`, and waits (up to `deadline`) until the daemon has
/// applied it: a switch the daemon never saw has no effect, and one
/// shorter than its 20 ms poll can be missed (a hang given back through
/// `eio` and at once `ok` answered the parked writes under `ok`: a lease
/// write held for half a minute landed under the node's newer ones). True
/// when applied.
pub fn set_mode_applied(base_dir: &Path, node: &str, mode: Mode, deadline: Duration) -> bool {
    let f = mode_file(base_dir, node);
    if set_mode_file(&f, mode).is_err() {
        return false;
    }
    let t = std::time::Instant::now();
    loop {
        let applied = std::fs::read_to_string(applied_file(&f))
            .ok()
            .and_then(|t| Mode::parse(&t));
        if applied == Some(mode) {
            return true;
        }
        if t.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A request the hang mode holds back.
enum Parked {
    Read {
        file: usize,
        offset: u64,
        size: u32,
        reply: ReplyData,
    },
    Write {
        file: usize,
        offset: u64,
        data: Vec<u8>,
        reply: ReplyWrite,
    },
    Sync {
        file: usize,
        reply: ReplyEmpty,
    },
}

struct Image {
    name: String,
    file: File,
}

struct Shared {
    mode: Mode,
    parked: Vec<Parked>,
}

struct FuseDisk {
    images: Arc<Vec<Image>>,
    shared: Arc<Mutex<Shared>>,
}

const TTL: Duration = Duration::from_secs(1);
const ROOT: u64 = 1;

impl FuseDisk {
    fn index(&self, ino: INodeNo) -> Option<usize> {
        let i = u64::from(ino).checked_sub(2)? as usize;
        (i < self.images.len()).then_some(i)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, perm, size, nlink) = if ino == ROOT {
            (FileType::Directory, 0o755, 0, 2)
        } else {
            let i = self.index(INodeNo(ino))?;
            let len = self.images[i].file.metadata().map(|m| m.len()).ok()?;
            (FileType::RegularFile, 0o600, len, 1)
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Parks `p` under hang, else answers it under the current mode.
    fn serve(&self, p: Parked) {
        let mode = {
            let mut s = self.shared.lock().expect("not poisoned");
            if s.mode == Mode::Hang {
                s.parked.push(p);
                return;
            }
            s.mode
        };
        answer(&self.images, p, mode);
    }
}

/// Answers one request under `mode` (never Hang: the caller parks those).
fn answer(images: &[Image], p: Parked, mode: Mode) {
    let eio = mode != Mode::Ok;
    match p {
        Parked::Read {
            file,
            offset,
            size,
            reply,
        } => {
            if eio {
                return reply.error(Errno::EIO);
            }
            let mut buf = vec![0u8; size as usize];
            let mut got = 0;
            // A short read only at the end of the image.
            while got < buf.len() {
                match images[file]
                    .file
                    .read_at(&mut buf[got..], offset + got as u64)
                {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => return reply.error(Errno::from(e)),
                }
            }
            reply.data(&buf[..got]);
        }
        Parked::Write {
            file,
            offset,
            data,
            reply,
        } => {
            if eio {
                return reply.error(Errno::EIO);
            }
            match images[file].file.write_all_at(&data, offset) {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(Errno::from(e)),
            }
        }
        Parked::Sync { file, reply } => {
            if eio {
                return reply.error(Errno::EIO);
            }
            match images[file].file.sync_data() {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(Errno::from(e)),
            }
        }
    }
}

impl Filesystem for FuseDisk {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (u64::from(parent) == ROOT)
            .then(|| self.images.iter().position(|i| OsStr::new(&i.name) == name))
            .flatten()
            .and_then(|i| self.attr(i as u64 + 2));
        match found {
            Some(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(u64::from(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    // losetup and the loop driver may set times or the size: the images
    // keep their size, the answer is the current attributes.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.attr(u64::from(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.index(ino) {
            // Direct I/O: no FUSE page cache, every block goes to the image.
            Some(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            None => reply.error(Errno::EISDIR),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.index(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.serve(Parked::Read {
            file,
            offset,
            size,
            reply,
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(file) = self.index(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.serve(Parked::Write {
            file,
            offset,
            data: data.to_vec(),
            reply,
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let Some(file) = self.index(ino) else {
            return reply.error(Errno::ENOENT);
        };
        self.serve(Parked::Sync { file, reply });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if u64::from(ino) != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let mut entries = vec![
            (ROOT, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        for (i, img) in self.images.iter().enumerate() {
            entries.push((i as u64 + 2, FileType::RegularFile, img.name.clone()));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// `mailha lab fusedisk`: serves `images` at `mount` until unmounted. The
/// mode file is created as `ok` if missing.
pub fn run(images: &[PathBuf], mount: &Path, mode_file: &Path) -> std::io::Result<()> {
    // Our own mount namespace, a slave of the host's: the FUSE mount must
    // not propagate into namespaces created later (found here: another
    // lab's nodes, started while a host-side FUSE mount existed, kept
    // copies of it, and its loop device stayed busy until they died), and
    // the host's unmounts of shared mounts (the lab nodes' disks, node.rs)
    // must reach the copies this namespace took of them. Before any
    // thread: unshare(CLONE_NEWNS) refuses a multithreaded process.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(std::io::Error::from)?;
    std::fs::create_dir_all(mount)?;
    let mut open = Vec::new();
    for p in images {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(p)?;
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| std::io::Error::other(format!("{}: no file name", p.display())))?
            .to_string();
        open.push(Image { name, file });
    }
    if !mode_file.exists() {
        std::fs::write(mode_file, Mode::Ok.name())?;
    }
    let initial = Mode::parse(&std::fs::read_to_string(mode_file)?).unwrap_or(Mode::Ok);
    set_mode_file(&applied_file(mode_file), initial)?;
    let shared = Arc::new(Mutex::new(Shared {
        mode: initial,
        parked: Vec::new(),
    }));
    let images = Arc::new(open);

    // The poller: follows the mode file; leaving hang answers every
    // parked request under the new mode.
    {
        let (shared, images, mode_file) = (shared.clone(), images.clone(), mode_file.to_path_buf());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let Some(m) = std::fs::read_to_string(&mode_file)
                    .ok()
                    .and_then(|t| Mode::parse(&t))
                else {
                    continue;
                };
                let drained = {
                    let mut s = shared.lock().expect("not poisoned");
                    if s.mode == m {
                        continue;
                    }
                    eprintln!("fusedisk: mode {} -> {}", s.mode.name(), m.name());
                    s.mode = m;
                    if m == Mode::Hang {
                        Vec::new()
                    } else {
                        std::mem::take(&mut s.parked)
                    }
                };
                if !drained.is_empty() {
                    eprintln!("fusedisk: answering {} parked requests", drained.len());
                }
                for p in drained {
                    answer(&images, p, m);
                }
                // Only now: a waiter may switch again once every request
                // parked under the old mode has its answer.
                if let Err(e) = set_mode_file(&applied_file(&mode_file), m) {
                    eprintln!("fusedisk: recording the applied mode: {e}");
                }
            }
        });
    }

    let fs = FuseDisk { images, shared };
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        fuser::MountOption::FSName("mailha-fusedisk".into()),
        fuser::MountOption::RW,
    ];
    fuser::mount(fs, mount, &cfg)
}

/// How long a fusedisk daemon may take to mount.
const MOUNT_DEADLINE: Duration = Duration::from_secs(5);

impl super::Lab<'_> {
    /// Starts `node`'s fusedisk over `images` (recorded before it starts)
    /// and returns the paths of the images through it. The loop devices
    /// must be attached inside the daemon's mount namespace
    /// (`losetup_argv`).
    pub fn start_fusedisk(
        &self,
        st: &mut super::state::State,
        node: &str,
        images: &[PathBuf],
    ) -> Result<u32, super::LabError> {
        use super::LabError;
        use std::os::unix::process::CommandExt;
        let mount = mount_dir(&self.base_dir, node);
        let dir = mount.parent().expect("under the base dir").to_path_buf();
        std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let modef = mode_file(&self.base_dir, node);
        std::fs::write(&modef, Mode::Ok.name()).map_err(LabError::io(&modef))?;
        st.fusedisks.push(super::state::FusediskRec {
            node: node.to_string(),
            mount: mount.clone(),
            pid: None,
            start_time: None,
        });
        self.store.save(st)?;
        let logp = log_file(&self.base_dir, node);
        let log = std::fs::File::create(&logp).map_err(LabError::io(&logp))?;
        let exe = self.helper_exe();
        let mut c = std::process::Command::new(&exe);
        c.arg("fusedisk");
        for i in images {
            c.arg("--image").arg(i);
        }
        c.arg("--mount")
            .arg(&mount)
            .arg("--mode-file")
            .arg(&modef)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(LabError::io(&logp))?)
            .stderr(log)
            .process_group(0);
        // Long-lived by design (until `lab down`); never waited for.
        let child = c.spawn().map_err(LabError::io(&exe))?;
        let pid = child.id();
        let start_time = super::proc::identity(&self.proc_root, pid).map(|(_, t)| t);
        if let Some(r) = st.fusedisks.last_mut() {
            r.pid = Some(pid);
            r.start_time = start_time;
        }
        self.store.save(st)?;
        let want = mount.display().to_string();
        let t = std::time::Instant::now();
        loop {
            let mi = std::fs::read_to_string(self.proc_root.join(format!("{pid}/mountinfo")))
                .unwrap_or_default();
            if mi
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()) && l.contains(" - fuse"))
            {
                return Ok(pid);
            }
            if t.elapsed() > MOUNT_DEADLINE {
                let why = std::fs::read_to_string(&logp).unwrap_or_default();
                return Err(LabError::Io {
                    path: mount,
                    source: std::io::Error::other(format!(
                        "fusedisk did not mount within {MOUNT_DEADLINE:?}: {}",
                        why.trim()
                    )),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Releases every recorded fusedisk (eio): parked I/O is answered, so
    /// processes waiting in the kernel on a hung path can die.
    pub fn release_fusedisks(&self, st: &super::state::State) -> Vec<String> {
        let mut done = Vec::new();
        for r in &st.fusedisks {
            if get_mode(&self.base_dir, &r.node) == Some(Mode::Hang)
                && set_mode(&self.base_dir, &r.node, Mode::Eio).is_ok()
            {
                done.push(format!("released {}'s hung disk path", r.node));
            }
        }
        done
    }

    /// Stops one fusedisk daemon (its private mount namespace, and the
    /// FUSE mount in it, go with it). Identity-checked against PID reuse.
    pub fn stop_fusedisk(
        &self,
        r: &super::state::FusediskRec,
    ) -> Result<Option<String>, super::LabError> {
        let (Some(pid), Some(st)) = (r.pid, r.start_time) else {
            return Ok(None);
        };
        if !super::proc::is_alive(&self.proc_root, pid, st) {
            return Ok(None);
        }
        self.runner
            .run_ok(&super::cmd::Cmd::new("kill").args(["-KILL", &pid.to_string()]))?;
        let t = std::time::Instant::now();
        while super::proc::is_alive(&self.proc_root, pid, st) {
            if t.elapsed() > Duration::from_secs(5) {
                return Err(super::LabError::NodeDead {
                    node: format!("{}'s fusedisk (killed, still exiting)", r.node),
                    pid,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Some(format!("stopped {}'s fusedisk (pid {pid})", r.node)))
    }
}

/// losetup inside the fusedisk's mount namespace (only there is the FUSE
/// mount visible); the loop device itself is global.
pub fn losetup_cmd(daemon_pid: u32, image: &Path) -> super::cmd::Cmd {
    super::cmd::Cmd::new("nsenter")
        .args(["-t", &daemon_pid.to_string(), "-m", "--"])
        .args(["losetup", "-f", "--show", "--direct-io=on"])
        .arg(image.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_names_only() {
        for m in [Mode::Ok, Mode::Eio, Mode::Hang] {
            assert_eq!(Mode::parse(m.name()), Some(m));
            assert_eq!(Mode::parse(&format!("{}\n", m.name())), Some(m));
        }
        assert_eq!(Mode::parse(""), None);
        assert_eq!(Mode::parse("error"), None);
    }

    #[test]
    fn a_mode_switch_is_read_back() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("fusedisk")).unwrap();
        assert_eq!(get_mode(d.path(), "node1"), None);
        set_mode(d.path(), "node1", Mode::Hang).unwrap();
        assert_eq!(get_mode(d.path(), "node1"), Some(Mode::Hang));
        assert_eq!(get_mode(d.path(), "node2"), None);
    }
}
