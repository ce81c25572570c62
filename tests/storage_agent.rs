//! `ocf:mailha:storage` on real mounts: a loop device with ext4 + MMP, and
//! a FUSE mount (bindfs) whose daemon is frozen, standing in for a hung
//! network mount. Each scenario runs in its own mount namespace (the outer
//! test re-runs this binary under `unshare --mount`), so nothing is ever
//! mounted on the host.

#[macro_use]
mod common;
use common::*;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn prerequisites() -> bool {
    root_and_tools(
        "the storage agent tests",
        &[
            "/usr/bin/unshare",
            "/usr/sbin/ocf-tester",
            "/usr/bin/bindfs",
            "/usr/sbin/mkfs.ext4",
            "/usr/sbin/losetup",
        ],
    )
}

/// Runs `name` (an #[ignore]d test of this file) in a new mount namespace.
fn in_private_mount_ns(name: &str) {
    if !prerequisites() {
        return;
    }
    run_in_private_mount_ns(name, Duration::from_secs(240));
}

/// A scratch dir with the agent as `storage`, an ext4+MMP image on its own
/// loop device; the loop device is detached on drop.
struct Disk {
    img: common::LoopImage,
    loopdev: String,
}

impl Disk {
    fn new() -> Disk {
        let img = common::LoopImage::ext4(64 << 20, &["-O", "mmp", "-L", "mhtest"]);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), img.dir.path().join("storage"))
            .unwrap();
        let loopdev = img.dev.clone();
        Disk { img, loopdev }
    }
    fn agent(&self) -> PathBuf {
        self.img.dir.path().join("storage")
    }
    fn mnt(&self) -> PathBuf {
        self.img.dir.path().join("mnt")
    }
    fn cmd(&self, action: &str, timeout_ms: u64) -> Command {
        let mut c = Command::new(self.agent());
        c.arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            // The agent's notes (an escalated stop) go to the test's own
            // spool, never the machine's /var/lib/mailha/spool (the lab's
            // nodes, whose root is this machine's, would read them).
            .env("MAILHA_SPOOL", self.img.dir.path().join("spool"))
            .env("OCF_RESKEY_device", &self.loopdev)
            .env("OCF_RESKEY_directory", self.mnt())
            .env("OCF_RESKEY_io_timeout", "3s")
            .env("OCF_RESKEY_CRM_meta_timeout", timeout_ms.to_string());
        c
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Before the image's own drop detaches the loop device.
        let _ = nix::mount::umount2(&self.mnt(), nix::mount::MntFlags::MNT_DETACH);
    }
}

in_mount_ns! {
    fn ocf_tester_passes_on_a_loop_device() {
        let d = Disk::new();
        let params = [
            ("device".to_string(), d.loopdev.clone()),
            ("directory".to_string(), d.mnt().display().to_string()),
        ];
        if let Err(out) = ocf_tester("fs-test", &params, &d.agent()) {
            panic!("{out}");
        }
    }
}

in_mount_ns! {
    fn stop_ends_the_users_of_a_busy_mount() {
        let d = Disk::new();
        assert_eq!(
            run_with_deadline(&mut d.cmd("start", 60_000), Duration::from_secs(90))
                .status
                .code(),
            Some(0)
        );
        let mut deep = d.cmd("monitor", 20_000);
        deep.env("OCF_CHECK_LEVEL", "20");
        assert_eq!(
            run_with_deadline(&mut deep, Duration::from_secs(30))
                .status
                .code(),
            Some(0),
            "write probe"
        );
        // A daemon with its working directory on the mount keeps it busy.
        let mut user = Command::new("/bin/sleep")
            .arg("300")
            .current_dir(d.mnt())
            .spawn()
            .unwrap();
        let o = run_with_deadline(&mut d.cmd("stop", 20_000), Duration::from_secs(30));
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "{log}");
        eprintln!("{log}");
        assert!(
            log.contains("sending TERM to users") && log.contains("released by umount"),
            "{log}"
        );
        assert!(
            user.try_wait().unwrap().is_some() || {
                std::thread::sleep(Duration::from_millis(200));
                user.try_wait().unwrap().is_some()
            }
        );
        assert_eq!(
            run_with_deadline(&mut d.cmd("monitor", 20_000), Duration::from_secs(30))
                .status
                .code(),
            Some(7)
        );
    }
}

/// A FUSE mount of `src` on `mnt` (bindfs in the foreground, so the
/// child's pid is the daemon's: SIGSTOP to it freezes the mount, as a dead
/// NFS server would), once it shows in mountinfo.
fn bindfs(src: &std::path::Path, mnt: &std::path::Path) -> (std::process::Child, nix::unistd::Pid) {
    let fuse = Command::new("bindfs")
        .arg("-f")
        .arg(src)
        .arg(mnt)
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(fuse.id() as i32);
    let up = Instant::now();
    while !std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&*mnt.to_string_lossy())
    {
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "bindfs did not mount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (fuse, pid)
}

in_mount_ns! {
    fn stop_is_bounded_on_a_hung_mount() {
        use nix::sys::signal::{Signal, kill};
        let dir = tempfile::tempdir().unwrap();
        let (src, mnt) = (dir.path().join("src"), dir.path().join("mnt"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        let (mut fuse, fuse_pid) = bindfs(&src, &mnt);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("storage")).unwrap();
        // Freeze the daemon: every access to the mount now blocks, like a
        // dead NFS server's.
        kill(fuse_pid, Signal::SIGSTOP).unwrap();
        let mut stuck = Command::new("/bin/cat").arg(mnt.join("f")).spawn().unwrap();
        let mut stop = Command::new(dir.path().join("storage"));
        stop.arg("stop")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MAILHA_SPOOL", dir.path().join("spool"))
            .env("OCF_RESOURCE_INSTANCE", "fs-data")
            .env("OCF_RESKEY_nfs", "198.51.100.30:/export")
            .env("OCF_RESKEY_fstype", "fuse")
            .env("OCF_RESKEY_directory", &mnt)
            .env("OCF_RESKEY_io_timeout", "2s")
            .env("OCF_RESKEY_CRM_meta_timeout", "10000");
        let start = Instant::now();
        let o = run_with_deadline(&mut stop, Duration::from_secs(30));
        let took = start.elapsed();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        // Clean up what we started, whatever happened.
        let _ = kill(fuse_pid, Signal::SIGCONT);
        let _ = fuse.kill();
        let _ = fuse.wait();
        let _ = stuck.kill();
        let _ = stuck.wait();
        let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
        assert!(
            took <= Duration::from_secs(10),
            "stop overran its 10 s op timeout: {took:?}\n{log}"
        );
        assert_eq!(o.status.code(), Some(0), "{log}");
        // The operator's mail says the stop had to be forced, and how.
        let pending = dir.path().join("spool/pending");
        let events: Vec<serde_json::Value> = std::fs::read_dir(&pending)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["kind"], "storage_stop_escalated", "{}", events[0]);
        assert_eq!(events[0]["rsc"], "fs-data", "{}", events[0]);
        assert!(
            events[0]["desc"].as_str().unwrap().contains("released by"),
            "{}",
            events[0]
        );
        assert!(
            log.contains("released by"),
            "the log says which step released it: {log}"
        );
    }
}

in_mount_ns! {
    /// The mail daemon's pid file lives on the shared disk (the lab keeps
    /// Postfix's there) and that disk hangs: stopping the service must still
    /// end within its op timeout, finding the daemon by its executable.
    fn a_service_stop_is_bounded_when_its_pid_file_hangs() {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let dir = tempfile::tempdir().unwrap();
        let (src, mnt) = (dir.path().join("src"), dir.path().join("mnt"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let (mut fuse, fuse_pid) = bindfs(&src, &mnt);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let pid_file = mnt.join("memcached.pid");
        let start = [
            "/usr/bin/memcached",
            "-d",
            "-u",
            "root",
            "-l",
            "127.0.0.1",
            "-p",
            &port,
            "-P",
            pid_file.to_str().unwrap(),
        ];
        assert!(
            Command::new(start[0])
                .args(&start[1..])
                .status()
                .unwrap()
                .success()
        );
        let up = Instant::now();
        let daemon: i32 = loop {
            if let Some(p) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(up.elapsed() < Duration::from_secs(10), "no pid file");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("service")).unwrap();
        // The disk under the pid file stops answering. Should the stop hang
        // on it anyway (the bug this test is for), the disk answers again
        // after 20 s, so the failure is reported instead of hanging the run.
        kill(fuse_pid, Signal::SIGSTOP).unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(20));
            let _ = kill(fuse_pid, Signal::SIGCONT);
        });
        let mut stop = Command::new(dir.path().join("service"));
        stop.arg("stop")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MAILHA_SPOOL", dir.path().join("spool"))
            .env("OCF_RESKEY_name", "memcached")
            .env("OCF_RESKEY_start", serde_json::to_string(&start).unwrap())
            .env("OCF_RESKEY_pid_file", &pid_file)
            .env("OCF_RESKEY_executable", "/usr/bin/memcached")
            .env("OCF_RESKEY_CRM_meta_timeout", "10000");
        let began = Instant::now();
        let o = run_with_deadline(&mut stop, Duration::from_secs(30));
        let took = began.elapsed();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        let daemon_left = std::fs::read_link(format!("/proc/{daemon}/exe"))
            .is_ok_and(|e| e == std::path::Path::new("/usr/bin/memcached"));
        // Clean up what we started, whatever happened.
        if daemon_left {
            let _ = kill(Pid::from_raw(daemon), Signal::SIGKILL);
        }
        let _ = kill(fuse_pid, Signal::SIGCONT);
        let _ = fuse.kill();
        let _ = fuse.wait();
        let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
        assert!(
            took <= Duration::from_secs(10),
            "stop overran its 10 s op timeout: {took:?}\n{log}"
        );
        assert_eq!(o.status.code(), Some(0), "{log}");
        assert!(!daemon_left, "memcached {daemon} survived the stop\n{log}");
        assert!(log.contains("by executable"), "{log}");
    }
}

in_mount_ns! {
    /// A process stuck inside the filesystem without holding any file there
    /// yet (in the middle of an open on a hung disk) is invisible to a /proc
    /// scan. MNT_DETACH still "releases" the mount, but the filesystem lives
    /// on in the kernel with the device claimed: the stop must say the node
    /// needs fencing, not report success.
    fn a_stop_that_leaves_the_filesystem_alive_in_the_kernel_fails() {
        use nix::sys::signal::{Signal, kill};
        // The disk's image sits on a FUSE mount, so freezing the FUSE daemon
        // hangs the disk underneath ext4, as a dead SAN path would.
        let dir = tempfile::tempdir().unwrap();
        let (src, via, mnt) = (
            dir.path().join("src"),
            dir.path().join("via"),
            dir.path().join("mnt"),
        );
        for d in [&src, &via, &mnt] {
            std::fs::create_dir_all(d).unwrap();
        }
        let img = src.join("data.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        run_ok(&["mkfs.ext4", "-q", "-F", &img.to_string_lossy()]);
        let (mut fuse, fuse_pid) = bindfs(&src, &via);
        let dev = run_ok(&[
            "losetup",
            "-f",
            "--show",
            &via.join("data.img").to_string_lossy(),
        ]);
        let m = mnt.to_string_lossy().into_owned();
        run_ok(&["mount", "-t", "ext4", &dev, &m]);
        std::fs::create_dir(mnt.join("maildir")).unwrap();
        std::fs::write(mnt.join("maildir/msg"), "hello").unwrap();
        // Mounted afresh, so nothing of the maildir is cached and a lookup
        // has to read the disk.
        run_ok(&["umount", &m]);
        run_ok(&["mount", "-t", "ext4", &dev, &m]);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("storage")).unwrap();

        kill(fuse_pid, Signal::SIGSTOP).unwrap();
        let mut stuck = Command::new("/bin/cat")
            .arg(mnt.join("maildir/msg"))
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let mut stop = Command::new(dir.path().join("storage"));
        stop.arg("stop")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MAILHA_SPOOL", dir.path().join("spool"))
            .env("OCF_RESKEY_device", &dev)
            .env("OCF_RESKEY_directory", &mnt)
            .env("OCF_RESKEY_io_timeout", "2s")
            .env("OCF_RESKEY_CRM_meta_timeout", "10000");
        let o = run_with_deadline(&mut stop, Duration::from_secs(30));
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        // Give the disk back, then clean up what we started, whatever happened.
        let _ = kill(fuse_pid, Signal::SIGCONT);
        let _ = stuck.wait();
        let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
        let gone = Instant::now();
        while Command::new("losetup")
            .args(["-d", &dev])
            .status()
            .is_ok_and(|s| !s.success())
            && gone.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = fuse.kill();
        let _ = fuse.wait();
        assert_eq!(o.status.code(), Some(1), "{log}");
        assert!(
            log.contains("released by") || log.contains("detached by"),
            "{log}"
        );
        assert!(
            log.contains("must be fenced") && log.contains(&dev),
            "{log}"
        );
    }
}

in_mount_ns! {
    /// A daemon with a mount namespace of its own (systemd's PrivateTmp=)
    /// holds a copy of the data mount even when it uses nothing on it:
    /// after our umount the filesystem lives on there, and the peer's
    /// mount would meet it. The stop must unmount it there too, and say
    /// "released" only once the device is free.
    fn a_stop_leaves_the_filesystem_in_no_mount_namespace() {
        let d = Disk::new();
        assert_eq!(
            run_with_deadline(&mut d.cmd("start", 60_000), Duration::from_secs(90))
                .status
                .code(),
            Some(0)
        );
        let mut bystander = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "600"])
            .current_dir("/")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let o = run_with_deadline(&mut d.cmd("stop", 20_000), Duration::from_secs(30));
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        let free = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_EXCL)
            .open(&d.loopdev)
            .is_ok();
        let alive = bystander.try_wait().unwrap().is_none();
        let _ = bystander.kill();
        let _ = bystander.wait();
        assert_eq!(o.status.code(), Some(0), "{log}");
        assert!(free, "the stop succeeded with the filesystem alive in another mount namespace\n{log}");
        assert!(alive, "a process that used nothing on the data was killed\n{log}");
    }
}
