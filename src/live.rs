//! What this node really sees of the configured storage: `mailha check
//! --live` and the MMP step of `mailha setup`.
//!
//! `config` only knows what the file says; here the devices are looked at.
//! Every read that can hang in the kernel (a superblock, a UUID/LABEL
//! scan) runs in a `mailha io` child with a deadline, like the storage
//! agent's, and an NFS server is asked an RPC NULL call with a deadline.
//!
//! The decisions are pure (`judge_mount`, `mmp_plan`): tested without
//! devices. Findings are `config::Problem`s so they print located at the
//! field they are about (file:line:column).

use crate::agents::storage::nfs;
use crate::config::model::Service;
use crate::config::{BlockDev, Config, FieldPath, LeaseTarget, Mount, MountSource, Problem};
use crate::mounts::device::{self, resolve as resolve_device};
use crate::mounts::superblock::Identity;
use std::path::Path;
use std::time::Duration;

/// What a block device looked like from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not present here (a path that does not exist, no device with that
    /// UUID/LABEL, or two of them).
    Missing(String),
    /// Present but its first 64 KiB could not be read within the deadline.
    Unreadable(String),
    /// Readable, no ext4/xfs superblock.
    NoFilesystem {
        device: String,
    },
    Filesystem {
        device: String,
        id: Identity,
    },
}

/// Where a mount's device field lives in the file.
fn device_field(i: usize) -> FieldPath {
    FieldPath::root()
        .key("storage")
        .key("mounts")
        .index(i)
        .key("device")
}

/// The findings about mount number `i`, given what its device looks like.
pub fn judge_mount(i: usize, m: &Mount, seen: &Seen, lease_on: bool) -> Vec<Problem> {
    let MountSource::Block { fstype, .. } = &m.source else {
        return Vec::new();
    };
    let at = device_field(i);
    match seen {
        Seen::Missing(why) => vec![
            Problem::error(at, format!("not present on this node: {why}"))
                .hint("attach the shared disk to this node, or fix the name"),
        ],
        Seen::Unreadable(why) => vec![
            Problem::error(at, format!("cannot read its superblock: {why}"))
                .hint("a disk that does not answer within the deadline cannot be served"),
        ],
        Seen::NoFilesystem { device } => vec![
            Problem::error(at, format!("{device} holds no ext4 or xfs filesystem")).hint(format!(
                "make one first, e.g. mkfs.{fstype} -O mmp {device}"
            )),
        ],
        Seen::Filesystem { device, id } => {
            let mut v = Vec::new();
            if id.fstype != fstype {
                v.push(Problem::error(
                    FieldPath::root()
                        .key("storage")
                        .key("mounts")
                        .index(i)
                        .key("fstype"),
                    format!("says {fstype}, but {device} holds {}", id.fstype),
                ));
            } else if id.fstype == "ext4" && !id.mmp {
                v.push(
                    Problem::warning(
                        at,
                        format!(
                            "{device} (ext4) has no multi-mount protection (MMP): nothing in the filesystem stops a second node from mounting it"
                        ),
                    )
                    .hint("`mailha setup` enables it; by hand: `tune2fs -O mmp DEVICE`, unmounted on both nodes"),
                );
            } else if id.fstype == "xfs" && !lease_on {
                v.push(
                    Problem::warning(
                        at,
                        format!(
                            "{device} (xfs) has no multi-mount protection and no lease guards it"
                        ),
                    )
                    .hint("configure [storage.lease] and fencing"),
                );
            }
            v
        }
    }
}

/// What setup should do about MMP on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmpPlan {
    AlreadyOn,
    /// Not ext4: MMP does not exist there.
    NotExt4,
    Enable,
    /// Its journal needs recovery: mounted somewhere (maybe on the peer),
    /// or not cleanly unmounted. Changing features now could corrupt it.
    Refuse,
}

pub fn mmp_plan(id: &Identity) -> MmpPlan {
    match (id.fstype, id.mmp, id.in_use) {
        ("ext4", true, _) => MmpPlan::AlreadyOn,
        ("ext4", false, true) => MmpPlan::Refuse,
        ("ext4", false, false) => MmpPlan::Enable,
        _ => MmpPlan::NotExt4,
    }
}

/// Looks at one block device from this node, every read in a child with
/// `deadline`.
pub fn look(dev: &BlockDev, deadline: Duration) -> Seen {
    let device = match dev {
        BlockDev::Path(p) => {
            if !p.exists() {
                return Seen::Missing(format!("{} does not exist", p.display()));
            }
            p.display().to_string()
        }
        other => match resolve_device(&other.spec(), deadline) {
            Ok(d) => d,
            Err(e) => return Seen::Missing(e.to_string()),
        },
    };
    match device::read_identity(&device, deadline) {
        Err(e) => Seen::Unreadable(e),
        Ok(None) => Seen::NoFilesystem { device },
        Ok(Some(id)) => Seen::Filesystem { device, id },
    }
}

/// Every live finding for `cfg` on this node.
pub fn check(cfg: &Config, deadline: Duration) -> Vec<Problem> {
    let lease_on = cfg.storage.lease.is_some();
    let mut v = Vec::new();
    for (i, m) in cfg.storage.mounts.iter().enumerate() {
        match &m.source {
            MountSource::Block { device, .. } => {
                v.extend(judge_mount(i, m, &look(device, deadline), lease_on));
            }
            MountSource::Nfs(x) => {
                if let Err(e) = nfs::ping(&x.host, nfs_port(m), deadline) {
                    v.push(
                        Problem::warning(
                            FieldPath::root()
                                .key("storage")
                                .key("mounts")
                                .index(i)
                                .key("nfs"),
                            format!("the NFS server does not answer an RPC NULL call: {e}"),
                        )
                        .hint("the mount will fail until it does"),
                    );
                }
            }
        }
    }
    if let Some(l) = &cfg.storage.lease
        && let LeaseTarget::Block(dev) = &l.target
        && let BlockDev::Path(p) = dev
        && !Path::new(p).exists()
    {
        v.push(Problem::error(
            FieldPath::root().key("storage").key("lease").key("device"),
            format!("not present on this node: {} does not exist", p.display()),
        ));
    }
    v.extend(look_units(cfg, deadline));
    v
}

/// What systemd on this node says of a service's unit (`systemctl show
/// --property=LoadState,ConflictedBy UNIT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSeen {
    pub load_state: String,
    /// Units whose `Conflicts=` names this one.
    pub conflicted_by: Vec<String>,
}

/// Reads the `systemctl show` properties `judge_unit` needs.
pub fn parse_unit_show(out: &str) -> UnitSeen {
    let mut seen = UnitSeen {
        load_state: String::new(),
        conflicted_by: Vec::new(),
    };
    for l in out.lines() {
        if let Some(v) = l.strip_prefix("LoadState=") {
            seen.load_state = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("ConflictedBy=") {
            seen.conflicted_by
                .extend(v.split_whitespace().map(str::to_string));
        }
    }
    seen
}

/// A service's unit as this node has it. A unit systemd does not know
/// cannot start. One that another installed unit conflicts with is
/// stopped whenever that one starts, and stops it: on Debian 13 Postfix
/// runs as postfix.service, which conflicts with Debian 12's
/// postfix@-.service (whose start fails there besides: its instance has
/// no /etc/postfix-/).
pub fn judge_unit(svc: &Service, unit: &str, seen: &UnitSeen) -> Vec<Problem> {
    let field = FieldPath::root().key("services").key(&svc.name).key("unit");
    if seen.load_state == "not-found" {
        return vec![Problem::error(
            field,
            format!("systemd on this node has no unit {unit}"),
        )];
    }
    seen.conflicted_by
        .iter()
        .map(|c| {
            Problem::warning(
                field.clone(),
                format!("{unit} conflicts with {c} on this node: starting one stops the other"),
            )
            .hint(format!("unit = \"{c}\" if {c} runs {}", svc.name))
        })
        .collect()
}

/// Asks systemd about every service's unit; nothing when systemctl is
/// not there or systemd is not running (a node without systemd runs its
/// services by argv).
fn look_units(cfg: &Config, deadline: Duration) -> Vec<Problem> {
    let mut v = Vec::new();
    for svc in &cfg.services.list {
        let Some(unit) = &svc.unit else { continue };
        let asked = crate::exec::run(
            &[
                "systemctl",
                "show",
                "--property=LoadState,ConflictedBy",
                unit.as_str(),
            ],
            &[],
            None,
            deadline,
        );
        match asked {
            Ok(o) if o.success() => v.extend(judge_unit(svc, unit, &parse_unit_show(&o.stdout))),
            _ => return v,
        }
    }
    v
}

fn nfs_port(m: &Mount) -> u16 {
    m.options
        .iter()
        .find_map(|o| o.strip_prefix("port=")?.parse().ok())
        .filter(|p| *p != 0)
        .unwrap_or(2049)
}

#[derive(Debug, thiserror::Error)]
pub enum MmpError {
    #[error("storage.mounts[{index}].device: {message}")]
    Device { index: usize, message: String },
    #[error(
        "storage.mounts[{index}].device: {device}'s journal needs recovery: it is mounted somewhere (the peer?) or was not unmounted cleanly; not changing it (unmount it everywhere, run e2fsck -f {device}, then setup again)"
    )]
    InUse { index: usize, device: String },
    #[error("storage.mounts[{index}].device: tune2fs -O mmp {device} failed: {message}")]
    Tune2fs {
        index: usize,
        device: String,
        message: String,
    },
}

impl MmpError {
    /// The config field the error is about (to locate it in the file).
    pub fn field(&self) -> FieldPath {
        let (MmpError::Device { index, .. }
        | MmpError::InUse { index, .. }
        | MmpError::Tune2fs { index, .. }) = self;
        device_field(*index)
    }
}

/// What setup did for one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmpDone {
    pub mount: String,
    pub device: String,
    pub plan: MmpPlan,
}

/// Turns MMP on for every ext4 data mount that lacks it. Refuses (and
/// changes nothing more) when a device is missing or its journal says it
/// is in use.
pub fn enable_mmp(cfg: &Config, deadline: Duration) -> Result<Vec<MmpDone>, MmpError> {
    let mut done = Vec::new();
    for (index, m) in cfg.storage.mounts.iter().enumerate() {
        let MountSource::Block { device, .. } = &m.source else {
            continue;
        };
        let (dev, id) = match look(device, deadline) {
            Seen::Filesystem { device, id } => (device, id),
            Seen::Missing(message) | Seen::Unreadable(message) => {
                return Err(MmpError::Device { index, message });
            }
            Seen::NoFilesystem { device } => {
                return Err(MmpError::Device {
                    index,
                    message: format!("{device} holds no ext4 or xfs filesystem"),
                });
            }
        };
        let plan = mmp_plan(&id);
        match plan {
            MmpPlan::Refuse => return Err(MmpError::InUse { index, device: dev }),
            MmpPlan::Enable => {
                let argv = ["tune2fs", "-O", "mmp", dev.as_str()];
                let fail = |message: String| MmpError::Tune2fs {
                    index,
                    device: dev.clone(),
                    message,
                };
                // tune2fs reads and writes a few blocks; a disk that does
                // not answer in a minute is not one to serve mail from.
                let o = crate::exec::run(&argv, &[], None, deadline.max(Duration::from_secs(60)))
                    .map_err(|e| fail(e.to_string()))?;
                if !o.success() {
                    return Err(fail(o.stderr.trim().to_string()));
                }
            }
            MmpPlan::AlreadyOn | MmpPlan::NotExt4 => {}
        }
        done.push(MmpDone {
            mount: m.name.clone(),
            device: dev,
            plan,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The postfix profile's Postfix, as examples/postfix.toml loads it.
    fn postfix() -> Service {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/postfix.toml"
        ))
        .unwrap();
        let cfg = crate::config::load_str(Path::new("p.toml"), &text, Some(0o600))
            .unwrap()
            .config;
        cfg.services
            .list
            .into_iter()
            .find(|s| s.name == "postfix")
            .unwrap()
    }

    #[test]
    fn debian_12s_postfix_unit_on_debian_13_warns_with_the_unit_that_runs_postfix() {
        let svc = postfix();
        let unit = svc.unit.clone().unwrap();
        assert_eq!(unit, "postfix@-.service", "the profile's default");
        // Debian 13: postfix.service says Conflicts=postfix@-.service.
        // (systemctl show's own order, as a Debian 13 node printed it)
        let seen = parse_unit_show("ConflictedBy=postfix.service\nLoadState=loaded\n");
        assert_eq!(seen.conflicted_by, ["postfix.service"]);
        let p = judge_unit(&svc, &unit, &seen);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path.to_string(), "services.postfix.unit");
        assert!(
            p[0].message.contains("conflicts with postfix.service"),
            "{p:?}"
        );
        assert_eq!(
            p[0].hint.as_deref(),
            Some("unit = \"postfix.service\" if postfix.service runs postfix")
        );
        // Debian 12: nothing conflicts with it.
        let seen = parse_unit_show("ConflictedBy=\nLoadState=loaded\n");
        assert!(judge_unit(&svc, &unit, &seen).is_empty());
    }

    #[test]
    fn a_unit_systemd_does_not_know_is_an_error() {
        let svc = postfix();
        let seen = parse_unit_show("ConflictedBy=\nLoadState=not-found\n");
        let p = judge_unit(&svc, "postfix@-.service", &seen);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("no unit postfix@-.service"), "{p:?}");
        assert_eq!(p[0].severity, crate::config::Severity::Error);
    }

    fn ext4_mount() -> Mount {
        Mount {
            name: "data".into(),
            source: MountSource::Block {
                device: BlockDev::Path("/dev/lab/data".into()),
                fstype: "ext4".into(),
            },
            mount_point: PathBuf::from("/srv/data"),
            options: vec![],
        }
    }

    fn ext4(mmp: bool, in_use: bool) -> Identity {
        Identity {
            fstype: "ext4",
            uuid: "u".into(),
            label: "l".into(),
            mmp,
            in_use,
        }
    }

    fn seen(id: Identity) -> Seen {
        Seen::Filesystem {
            device: "/dev/lab/data".into(),
            id,
        }
    }

    #[test]
    fn ext4_without_mmp_is_a_warning_at_the_device_field() {
        let p = judge_mount(0, &ext4_mount(), &seen(ext4(false, false)), true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].severity, crate::config::Severity::Warning);
        assert_eq!(p[0].path.to_string(), "storage.mounts[0].device");
        assert!(p[0].message.contains("MMP"), "{}", p[0].message);
    }

    #[test]
    fn ext4_with_mmp_is_fine() {
        assert!(judge_mount(0, &ext4_mount(), &seen(ext4(true, true)), false).is_empty());
    }

    #[test]
    fn a_missing_device_or_the_wrong_filesystem_is_an_error() {
        let m = ext4_mount();
        let p = judge_mount(1, &m, &Seen::Missing("gone".into()), true);
        assert_eq!(p[0].severity, crate::config::Severity::Error);
        assert_eq!(p[0].path.to_string(), "storage.mounts[1].device");
        let xfs = Identity {
            fstype: "xfs",
            ..ext4(false, false)
        };
        let p = judge_mount(0, &m, &seen(xfs), true);
        assert_eq!(p[0].path.to_string(), "storage.mounts[0].fstype");
    }

    #[test]
    fn a_setup_refusal_names_the_device_field() {
        let e = MmpError::InUse {
            index: 1,
            device: "/dev/x".into(),
        };
        assert_eq!(e.field().to_string(), "storage.mounts[1].device");
        assert!(
            e.to_string()
                .starts_with("storage.mounts[1].device: /dev/x")
        );
    }

    #[test]
    fn setup_enables_mmp_only_on_a_clean_ext4() {
        assert_eq!(mmp_plan(&ext4(false, false)), MmpPlan::Enable);
        assert_eq!(mmp_plan(&ext4(false, true)), MmpPlan::Refuse);
        assert_eq!(mmp_plan(&ext4(true, true)), MmpPlan::AlreadyOn);
        let xfs = Identity {
            fstype: "xfs",
            ..ext4(false, false)
        };
        assert_eq!(mmp_plan(&xfs), MmpPlan::NotExt4);
    }
}
