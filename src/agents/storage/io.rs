//! The storage agent's I/O that may hang in the kernel (on a dead disk or
//! NFS server) runs in a child process, `mailha io ...`, under a deadline
//! (`exec::io_child`): a thread stuck in D state would keep the agent from
//! exiting, a child cannot. `run` is the child side of every `mailha io`
//! request; the mount-release and superblock ones live in `crate::mounts`.

use crate::exec::io_child;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The ext4 MMP block of `dev`, read past every cache. Ok(None): not
/// ext4, or no MMP.
pub fn mmp(dev: &str, deadline: Duration) -> Result<Option<super::mmp::Mmp>, String> {
    let out = io_child(&["mmp", dev], deadline)?;
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

/// The child side. Returns the process exit code.
pub fn run(args: &[String]) -> u8 {
    let r = match args.iter().map(|s| s.as_str()).collect::<Vec<_>>().as_slice() {
        ["superblock", dev] => crate::mounts::device::child_superblock(Path::new(dev)),
        ["mmp", dev] => read_mmp(Path::new(dev)),
        ["read", dir] => read_dir(Path::new(dir)),
        ["write", dir, name] => write_marker(Path::new(dir), name),
        ["umount", dir, how] => crate::mounts::release::child_umount(dir, how, None),
        ["umount", dir, how, pid] => crate::mounts::release::child_umount(dir, how, Some(pid)),
        ["released", dev, ms] => match ms.parse() {
            Ok(ms) => crate::mounts::release::child_wait_released(Path::new(dev), Duration::from_millis(ms)),
            Err(_) => Err(format!("{ms:?}: not milliseconds")),
        },
        // The service agent's pid file, read here so a hung disk holds
        // this child, not the stop (`agents::service`).
        ["pidfile", path] => crate::procs::read_pid_file(Path::new(path))
            .map(|p| p.map(|p| format!("{p}\n")).unwrap_or_default()),
        _ => Err("usage: mailha io superblock DEV | mmp DEV | read DIR | write DIR NAME | umount DIR plain|force|detach [PID] | released DEV MS | pidfile PATH".into()),
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
