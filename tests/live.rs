//! `mailha check --live` against real loop devices: what this node sees
//! of the configured disks, located at the config line it is about.
//!
//! Root only (losetup). Without root the tests print `SKIPPED` and return,
//! except in CI (env `CI` set), where that fails.

mod common;

use common::{LoopImage, run_with_deadline};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn can_run(what: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("needs root")
    } else if !Path::new("/sbin/losetup").exists() && !Path::new("/usr/sbin/losetup").exists() {
        Some("needs losetup")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) if std::env::var_os("CI").is_some() => panic!("{what}: {w} (CI)"),
        Some(w) => {
            eprintln!("SKIPPED: {what}: {w}");
            false
        }
    }
}

/// BASE with the data mount on `device` and no lease device, written
/// next to the image.
fn config(disk: &LoopImage, device: &str) -> PathBuf {
    let text = common::BASE
        .replace(
            "[storage.lease]\ndevice = \"LABEL=mailha-lease\"\n",
            "[fencing]\nmode = \"none\"\n",
        )
        .replace(
            "device = \"LABEL=maildata\"",
            &format!("device = \"{device}\""),
        );
    let p = disk.dir.path().join("mailha.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn check_live(config: &Path) -> std::process::Output {
    run_with_deadline(
        Command::new(env!("CARGO_BIN_EXE_mailha"))
            .args(["--config"])
            .arg(config)
            .args(["check", "--live", "--io-timeout", "5s"]),
        Duration::from_secs(60),
    )
}

fn line_of(path: &Path, needle: &str) -> usize {
    common::line_of(&std::fs::read_to_string(path).unwrap(), needle)
}

#[test]
fn an_ext4_disk_without_mmp_is_a_located_warning_and_check_still_passes() {
    if !can_run("check --live without MMP") {
        return;
    }
    let disk = LoopImage::ext4(32 << 20, &[]);
    let cfg = config(&disk, &disk.dev);
    let o = check_live(&cfg);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let line = line_of(&cfg, &disk.dev);
    let want = format!(
        "{}:{line}:10: warning: storage.mounts[0].device: {} (ext4) has no multi-mount protection (MMP)",
        cfg.display(),
        disk.dev
    );
    assert!(err.contains(&want), "want {want:?} in\n{err}");
}

#[test]
fn an_ext4_disk_with_mmp_draws_no_comment() {
    if !can_run("check --live with MMP") {
        return;
    }
    let disk = LoopImage::ext4(32 << 20, &["-O", "mmp"]);
    let o = check_live(&config(&disk, &disk.dev));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // (The config's own warning about fencing "none" is not ours.)
    assert!(!err.contains("storage.mounts"), "{err}");
}

#[test]
fn a_device_this_node_does_not_have_fails_the_check_at_its_line() {
    if !can_run("check --live, missing device") {
        return;
    }
    let disk = LoopImage::ext4(32 << 20, &[]);
    let cfg = config(&disk, "/dev/mailha-test-no-such-disk");
    let o = check_live(&cfg);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = line_of(&cfg, "/dev/mailha-test-no-such-disk");
    assert!(
        err.contains(&format!(
            ":{line}:10: error: storage.mounts[0].device: not present on this node"
        )),
        "{err}"
    );
}

#[test]
fn a_label_finds_the_disk_by_its_superblock() {
    if !can_run("check --live by LABEL") {
        return;
    }
    // A label no other device here carries, so the scan finds exactly one.
    let label = format!("mhl{}", std::process::id() % 100_000);
    let disk = LoopImage::ext4(32 << 20, &["-O", "mmp", "-L", &label]);
    let o = check_live(&config(&disk, &format!("LABEL={label}")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
