//! I/O that may hang in the kernel (on a dead disk or NFS server) runs in
//! a child process, `mailha io ...`, under a deadline: a thread stuck in
//! D state would keep the agent from exiting, a child cannot. The parent
//! side is `in_child`; the child side is `run`.

use std::io::{Read, Write};
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

/// Runs `mailha io ARGS` with a deadline; its stdout on success.
pub fn in_child(args: &[&str], deadline: Duration) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding mailha: {e}"))?;
    let mut argv: Vec<String> = vec![exe.to_string_lossy().into_owned(), "io".into()];
    argv.extend(args.iter().map(|s| s.to_string()));
    match crate::exec::run(&argv, &[], None, deadline) {
        Ok(o) if o.success() => Ok(o.stdout),
        Ok(o) => Err(o.stderr.trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn superblock(
    dev: &str,
    deadline: Duration,
) -> Result<Option<super::superblock::Identity>, String> {
    let out = in_child(&["superblock", dev], deadline)?;
    let v: Vec<&str> = out.trim_end_matches('\n').splitn(4, '\t').collect();
    Ok(match v.as_slice() {
        [fstype, flags, uuid, label] => Some(super::superblock::Identity {
            fstype: if *fstype == "xfs" { "xfs" } else { "ext4" },
            uuid: uuid.to_string(),
            label: label.to_string(),
            mmp: flags.split(',').any(|f| f == "mmp"),
            in_use: flags.split(',').any(|f| f == "in-use"),
        }),
        _ => None,
    })
}

/// The ext4 MMP block of `dev`, read past every cache. Ok(None): not
/// ext4, or no MMP.
pub fn mmp(dev: &str, deadline: Duration) -> Result<Option<super::mmp::Mmp>, String> {
    let out = in_child(&["mmp", dev], deadline)?;
    let line = out.trim_end_matches('\n');
    if line == "none" {
        return Ok(None);
    }
    // The node name is last: it is the one field that may hold a tab.
    let v: Vec<&str> = line.splitn(4, '\t').collect();
    let parse = |s: &str| u32::from_str_radix(s, 16).map_err(|e| format!("{s:?}: {e}"));
    match v.as_slice() {
        [seq, check, update, name] => Ok(Some(super::mmp::Mmp {
            seq: parse(seq)?,
            check_interval: check.parse().map_err(|e| format!("{check:?}: {e}"))?,
            update_interval: update.parse().map_err(|e| format!("{update:?}: {e}"))?,
            nodename: name.to_string(),
        })),
        _ => Err(format!("unexpected answer {line:?}")),
    }
}

/// Waits up to `wait` for the block device `dev` to be given up by the
/// filesystem that was on it. Ok(true): released; Ok(false): still
/// claimed when the time was up.
pub fn device_released(dev: &str, wait: Duration) -> Result<bool, String> {
    let ms = wait.as_millis().to_string();
    let out = in_child(&["released", dev, &ms], wait + Duration::from_secs(1))?;
    Ok(out.trim() == "released")
}

pub fn umount(dir: &str, how: Umount, deadline: Duration) -> Result<(), String> {
    in_child(&["umount", dir, how.arg()], deadline).map(|_| ())
}

/// The child side. Returns the process exit code.
pub fn run(args: &[String]) -> u8 {
    let r = match args.iter().map(|s| s.as_str()).collect::<Vec<_>>().as_slice() {
        ["superblock", dev] => read_superblock(Path::new(dev)),
        ["mmp", dev] => read_mmp(Path::new(dev)),
        ["read", dir] => read_dir(Path::new(dir)),
        ["write", dir, name] => write_marker(Path::new(dir), name),
        ["umount", dir, how] => do_umount(dir, how),
        ["released", dev, ms] => match ms.parse() {
            Ok(ms) => wait_released(Path::new(dev), Duration::from_millis(ms)),
            Err(_) => Err(format!("{ms:?}: not milliseconds")),
        },
        // The service agent's pid file, read here so a hung disk holds
        // this child, not the stop (`agents::service`).
        ["pidfile", path] => crate::agents::service::procs::read_pid_file(Path::new(path))
            .map(|p| p.map(|p| format!("{p}\n")).unwrap_or_default()),
        _ => Err("usage: mailha io superblock DEV | mmp DEV | read DIR | write DIR NAME | umount DIR plain|force|detach | released DEV MS | pidfile PATH".into()),
    };
    match r {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn read_superblock(dev: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(dev).map_err(|e| format!("{}: {e}", dev.display()))?;
    let mut head = vec![0u8; 65536];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("{}: {e}", dev.display())),
        }
    }
    Ok(match super::superblock::identify(&head[..n]) {
        Some(id) => {
            // The label is last: it is the one field that may hold a tab.
            let flags: Vec<&str> = [(id.mmp, "mmp"), (id.in_use, "in-use")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| *f)
                .collect();
            let flags = if flags.is_empty() {
                "-".to_string()
            } else {
                flags.join(",")
            };
            format!("{}\t{flags}\t{}\t{}\n", id.fstype, id.uuid, id.label)
        }
        None => String::new(),
    })
}

/// O_DIRECT: the MMP block changes under us (another node's kmmpd), and
/// a page-cache copy of it would be exactly the stale answer MMP exists
/// to avoid.
fn read_mmp(dev: &Path) -> Result<String, String> {
    use crate::lease::disk::Block;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let err = |e: std::io::Error| format!("{}: {e}", dev.display());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT)
        .open(dev)
        .map_err(err)?;
    let read = |offset: u64| -> Result<Block, String> {
        let mut b = Block::zeroed();
        f.read_exact_at(b.bytes_mut(), offset).map_err(err)?;
        Ok(b)
    };
    let head = read(0)?;
    let Some((offset, update)) = super::mmp::locate(head.bytes()) else {
        return Ok("none\n".into());
    };
    // The block may be 1 KiB inside an aligned 4 KiB read.
    let aligned = offset - offset % 4096;
    let b = read(aligned)?;
    let m = super::mmp::Mmp::parse(&b.bytes()[(offset - aligned) as usize..], update)
        .ok_or_else(|| format!("{}: no MMP block at byte {offset}", dev.display()))?;
    Ok(format!(
        "{:x}\t{}\t{}\t{}\n",
        m.seq, m.check_interval, m.update_interval, m.nodename
    ))
}

fn read_dir(dir: &Path) -> Result<String, String> {
    let n = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .take(16)
        .count();
    Ok(format!("{n}\n"))
}

/// Writes, syncs and reads back a small marker file: the mount takes
/// writes and returns them.
fn write_marker(dir: &Path, name: &str) -> Result<String, String> {
    let p = dir.join(name);
    let stamp = format!(
        "mailha monitor {} {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let mut f = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    f.write_all(stamp.as_bytes())
        .map_err(|e| format!("{}: {e}", p.display()))?;
    f.sync_all()
        .map_err(|e| format!("{}: fsync: {e}", p.display()))?;
    let back = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    if back != stamp {
        return Err(format!("{}: read back something else", p.display()));
    }
    Ok("ok\n".into())
}

/// A mounted filesystem holds its block device exclusively, and keeps
/// holding it after MNT_DETACH for as long as anything is still inside it
/// (a process stuck in the kernel, even one holding no file yet, which no
/// /proc scan can see). An exclusive open succeeds once the filesystem is
/// really gone.
fn wait_released(dev: &Path, wait: Duration) -> Result<String, String> {
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

fn do_umount(dir: &str, how: &str) -> Result<String, String> {
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
