//! Releasing a mount within a deadline: each umount2(2) runs in a child
//! (`mailha io umount ...`) that a hung disk or server may hold, never the
//! caller; and the proof that the filesystem let go of its device.

use std::path::Path;
use std::time::Duration;

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

/// The child side of `umount` (`mailha io umount DIR plain|force|detach`).
pub fn child_umount(dir: &str, how: &str) -> Result<String, String> {
    use nix::mount::{MntFlags, umount2};
    let flags = match how {
        "plain" => MntFlags::empty(),
        "force" => MntFlags::MNT_FORCE,
        "detach" => MntFlags::MNT_DETACH,
        _ => return Err(format!("unknown umount mode {how:?}")),
    };
    umount2(dir, flags).map_err(|e| format!("{dir}: {e}"))?;
    Ok(String::new())
}
