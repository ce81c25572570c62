//! The lab's per-node disk path (`mailha-lab fusedisk`, lab/src/fusedisk.rs)
//! as the drills use it. Root and /dev/fuse only: without them the test
//! prints `SKIPPED: <reason>` and returns, except in CI (env `CI` set),
//! where it fails.

use mailha_lab::fusedisk::{self, Mode};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon, ended (only it, by its pid) whatever the test does.
struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A write parked by a hang and then given back through `eio` fails and
/// never lands, however soon `ok` follows. In an hour's soak a restore
/// switched to `ok` within the daemon's 20 ms poll, the daemon never saw
/// the `eio`, and a lease write held for half a minute landed under the
/// node's newer ones: its keeper took it for a second machine writing its
/// slot and refused to hold the lease until restarted.
#[test]
fn a_write_parked_by_a_hang_fails_when_the_path_is_given_back() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/dev/fuse").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the fusedisk test needs root and /dev/fuse in CI"
        );
        println!("SKIPPED: the fusedisk test needs root and /dev/fuse");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = d.path();
    std::fs::create_dir_all(base.join("fusedisk")).unwrap();
    let image = base.join("disk.img");
    std::fs::write(&image, vec![0u8; 4096]).unwrap();
    let mount = fusedisk::mount_dir(base, "node1");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_mailha-lab"))
            .arg("fusedisk")
            .arg("--image")
            .arg(&image)
            .arg("--mount")
            .arg(&mount)
            .arg("--mode-file")
            .arg(fusedisk::mode_file(base, "node1"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id().to_string();
    // The mount lives in the daemon's own mount namespace.
    let in_daemon = |argv: &[&str]| {
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid, "-m", "--"]).args(argv);
        c
    };
    let served = mount.join("disk.img").display().to_string();
    let t = Instant::now();
    while !in_daemon(&["test", "-e", &served])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "fusedisk not mounted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = Duration::from_secs(5);
    assert!(fusedisk::set_mode_applied(base, "node1", Mode::Hang, s));
    let mut writer = in_daemon(&[
        "dd",
        "if=/dev/urandom",
        &format!("of={served}"),
        "bs=512",
        "count=1",
        "conv=notrunc",
        "oflag=direct",
        "status=none",
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the write was not parked"
    );
    // Given back as the drills do it: eio, then ok at once.
    assert!(fusedisk::set_mode_applied(base, "node1", Mode::Eio, s));
    fusedisk::set_mode(base, "node1", Mode::Ok).unwrap();
    let status = writer.wait().unwrap();
    assert!(!status.success(), "the parked write succeeded");
    std::thread::sleep(Duration::from_millis(200));
    let on_disk = std::fs::read(&image).unwrap();
    assert!(
        on_disk[..512].iter().all(|b| *b == 0),
        "the parked write landed"
    );
    drop(daemon);
}
