//! The device node behind a mount's `device`: a path as given, or the one
//! block device whose superblock carries the `UUID=`/`LABEL=` (no udev
//! needed: the lab has none). Superblocks are read in a child with a
//! deadline (`mailha io superblock DEV`): a dead disk blocks the read.

use super::superblock::{self, Identity};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("no /sys/class/block: cannot look for {0}")]
    NoSysfs(String),
    #[error("no device has {0}")]
    NotFound(String),
    #[error("{spec} is on several devices ({}): name the device by path", .found.join(", "))]
    Ambiguous { spec: String, found: Vec<String> },
}

/// The device node to mount: a path as given, or the one device whose
/// superblock carries the UUID/LABEL. Two matches is an error: in a lab
/// both nodes' loop devices show the same filesystem, and guessing could
/// mount the other node's path.
pub fn resolve(spec: &str, timeout: Duration) -> Result<String, DeviceError> {
    let (want_uuid, want_label) = match (spec.strip_prefix("UUID="), spec.strip_prefix("LABEL=")) {
        (Some(u), _) => (Some(u.to_ascii_lowercase()), None),
        (_, Some(l)) => (None, Some(l.to_string())),
        _ => return Ok(spec.to_string()),
    };
    let Ok(rd) = std::fs::read_dir("/sys/class/block") else {
        return Err(DeviceError::NoSysfs(spec.into()));
    };
    let mut found = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let dev = format!("/dev/{name}");
        if !Path::new(&dev).exists() {
            continue;
        }
        if let Ok(Some(id)) = read_identity(&dev, timeout)
            && (want_uuid.as_deref() == Some(id.uuid.as_str())
                || want_label.as_deref() == Some(id.label.as_str()))
        {
            found.push(dev);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(DeviceError::NotFound(spec.into())),
        _ => Err(DeviceError::Ambiguous {
            spec: spec.into(),
            found,
        }),
    }
}

/// The (major, minor) of a block device node; None for anything else.
pub fn numbers(dev: &str) -> Option<(u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(dev).ok()?;
    if !m.file_type().is_block_device() {
        return None;
    }
    let r = m.rdev();
    Some((
        nix::sys::stat::major(r) as u32,
        nix::sys::stat::minor(r) as u32,
    ))
}

/// The filesystem on `dev`, from its superblock, read in a child with a
/// deadline. Ok(None): no ext4/xfs superblock.
pub fn read_identity(dev: &str, deadline: Duration) -> Result<Option<Identity>, String> {
    let out = crate::exec::io_child(&["superblock", dev], deadline)?;
    let v: Vec<&str> = out.trim_end_matches('\n').splitn(4, '\t').collect();
    Ok(match v.as_slice() {
        [fstype, flags, uuid, label] => Some(Identity {
            fstype: if *fstype == "xfs" { "xfs" } else { "ext4" },
            uuid: uuid.to_string(),
            label: label.to_string(),
            mmp: flags.split(',').any(|f| f == "mmp"),
            in_use: flags.split(',').any(|f| f == "in-use"),
        }),
        _ => None,
    })
}

/// The child side of `read_identity` (`mailha io superblock DEV`).
pub fn child_superblock(dev: &Path) -> Result<String, String> {
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
    Ok(match superblock::identify(&head[..n]) {
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
