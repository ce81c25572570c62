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
        ["stale-locks", dir, names @ ..] if !names.is_empty() => {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            super::locks::clear(Path::new(dir), &names).map(|c| c.to_text())
        }
        // The service agent's pid file, read here so a hung disk holds
        // this child, not the stop (`agents::service`).
        ["pidfile", path] => crate::procs::read_pid_file(Path::new(path))
            .map(|p| p.map(|p| format!("{p}\n")).unwrap_or_default()),
        _ => Err("usage: mailha io superblock DEV | mmp DEV | read DIR | write DIR NAME | umount DIR plain|force|detach [PID] | released DEV MS | stale-locks DIR NAME... | pidfile PATH".into()),
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
/// writes and returns them. The directory is the shared data's, which
/// local users may write: whatever sits at the marker's name (a symlink
/// to /etc/shadow, a FIFO) is removed, never followed or opened, and the
/// marker is created anew (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) and read back
/// through the same descriptor.
fn write_marker(dir: &Path, name: &str) -> Result<String, String> {
    use std::io::{Read, Seek};
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join(name);
    let fail = |e: std::io::Error| format!("{}: {e}", p.display());
    let stamp = format!(
        "mailha monitor {} {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&p)
        .map_err(fail)?;
    f.write_all(stamp.as_bytes()).map_err(fail)?;
    f.sync_all()
        .map_err(|e| format!("{}: fsync: {e}", p.display()))?;
    let mut back = String::new();
    f.rewind()
        .and_then(|_| f.read_to_string(&mut back))
        .map_err(fail)?;
    if back != stamp {
        return Err(format!("{}: read back something else", p.display()));
    }
    Ok("ok\n".into())
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn the_marker_never_follows_a_symlink_planted_at_its_name() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let marker = data.join(".mailha-monitor-mx1");
        std::os::unix::fs::symlink(&victim, &marker).unwrap();
        assert_eq!(write_marker(&data, ".mailha-monitor-mx1").unwrap(), "ok\n");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let m = std::fs::symlink_metadata(&marker).unwrap();
        assert!(m.file_type().is_file(), "the marker is a file of its own");
        // Again, over the marker it left.
        assert_eq!(write_marker(&data, ".mailha-monitor-mx1").unwrap(), "ok\n");
    }
}
