//! Phase two of loading: raw structs -> the typed model. Every rule
//! reports a `Problem` naming the field; all problems are collected, so one
//! run of `mailha check` shows everything that is wrong.

use super::diag::{FieldPath, Problem, did_you_mean};
use super::model::*;
use super::raw::*;
use crate::profiles;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod exporter;

/// What validation may look at outside the text: the config file's mode and
/// the filesystem for password files and the eYou tree. Tests pass a
/// temporary root.
pub struct Env<'a> {
    pub config_path: &'a Path,
    /// Mode bits of the config file, if it is a real file.
    pub config_mode: Option<u32>,
    /// Where to read the eYou tree's files instead of `eyou_root` (paths
    /// in the result still name `eyou_root`): the lab checks its stand-in
    /// tree on the host before writing it into the nodes.
    pub eyou_files: Option<&'a Path>,
}

#[derive(Default)]
pub struct Ctx {
    pub problems: Vec<Problem>,
}

impl Ctx {
    fn err(&mut self, path: FieldPath, msg: impl Into<String>) {
        self.problems.push(Problem::error(path, msg));
    }
    fn err_hint(&mut self, path: FieldPath, msg: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem::error(path, msg).hint(hint));
    }
    fn warn(&mut self, path: FieldPath, msg: impl Into<String>) {
        self.problems.push(Problem::warning(path, msg));
    }
    fn warn_hint(&mut self, path: FieldPath, msg: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem::warning(path, msg).hint(hint));
    }
    fn missing(&mut self, path: FieldPath) {
        self.err(path, "required but missing");
    }
}

fn root() -> FieldPath {
    FieldPath::root()
}

/// Characters that would mean something to a shell, or break a line-based
/// format. mailha never hands a value to a shell, but such characters in
/// an address, path or name are a sign of a mistake or an attack, and they
/// would end up in the CIB and in logs.
pub fn hostile_char(s: &str) -> Option<char> {
    s.chars().find(|c| {
        c.is_control()
            || matches!(
                c,
                ';' | '$' | '`' | '|' | '&' | '<' | '>' | '\\' | '"' | '\''
            )
    })
}

/// A systemd service unit as mailha takes it: `NAME.service` or
/// `TEMPLATE@INSTANCE.service`, of ASCII letters, digits and `:_.-`, NAME
/// and TEMPLATE starting with a letter or digit, at most 255 bytes
/// (systemd's limit). A subset of systemd's grammar: no `\` escapes (a
/// hostile character in a parameter), no bare template (it runs nothing),
/// only services (the monitor reads a service's cgroup), and never a
/// leading `-` (systemctl would take it for an option).
pub fn check_unit_name(v: &str) -> Result<(), String> {
    let chars_ok = |p: &str| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.-".contains(c))
    };
    let head_ok = |p: &str| p.starts_with(|c: char| c.is_ascii_alphanumeric()) && chars_ok(p);
    let ok = v.len() <= 255
        && v.strip_suffix(".service")
            .is_some_and(|stem| match stem.split_once('@') {
                Some((template, instance)) => {
                    head_ok(template) && !instance.is_empty() && chars_ok(instance)
                }
                None => head_ok(stem),
            });
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{v:?} is not a systemd service unit name (NAME.service or TEMPLATE@INSTANCE.service, of letters, digits, ':', '_', '.', '-')"
        )
    })
}

fn duration(ctx: &mut Ctx, path: FieldPath, v: &Option<String>, default: &str) -> Duration {
    let text = v.as_deref().unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => {
            ctx.err(path, "must be longer than zero");
            humantime::parse_duration(default).unwrap_or_default()
        }
        Ok(d) => d,
        Err(e) => {
            ctx.err_hint(
                path,
                format!("{text:?} is not a duration: {e}"),
                "write e.g. \"500ms\", \"5s\", \"10min\"",
            );
            humantime::parse_duration(default).unwrap_or_default()
        }
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn hostname_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn ip(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            ctx.err(path, format!("{s:?} is not an IP address"));
            None
        }
    }
}

/// A path mailha will use as given: absolute, no `..`, no hostile bytes.
fn abs_path(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<PathBuf> {
    if let Some(c) = hostile_char(s) {
        ctx.err(
            path,
            format!("{s:?} contains {c:?}, which no path here may hold"),
        );
        return None;
    }
    if !s.starts_with('/') {
        ctx.err(path, format!("{s:?} must be an absolute path"));
        return None;
    }
    if s.chars().any(char::is_whitespace) {
        ctx.err(path, format!("{s:?} contains white space"));
        return None;
    }
    if s.split('/').any(|c| c == "..") {
        ctx.err(path, format!("{s:?} must not contain '..'"));
        return None;
    }
    Some(PathBuf::from(s))
}

fn argv_list(ctx: &mut Ctx, path: FieldPath, v: &[String]) -> Option<Vec<String>> {
    if v.is_empty() {
        ctx.err(path, "must name a program: an empty argv runs nothing");
        return None;
    }
    let mut ok = abs_path(ctx, path.index(0), &v[0]).is_some();
    // The same rule as the agents apply to their argv parameters, so a
    // config that passes check is never refused by an agent.
    for (i, a) in v.iter().enumerate().skip(1) {
        if a.chars().any(|c| c == '\0' || c == '\n' || c == '\r') {
            ctx.err(
                path.index(i),
                "an argument must not contain NUL or a line break",
            );
            ok = false;
        } else if let Some(c) = hostile_char(a) {
            ctx.err(path.index(i), format!("argument {a:?} contains {c:?}"));
            ok = false;
        }
    }
    ok.then(|| v.to_vec())
}

fn nic_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn validate(raw: &RawConfig, env: &Env) -> (Option<Config>, Vec<Problem>) {
    let mut ctx = Ctx {
        problems: Vec::new(),
    };
    let cluster = cluster(&mut ctx, raw.cluster.as_ref());
    let vip = vip(&mut ctx, raw.vip.as_ref(), &cluster);
    let network = network(&mut ctx, raw.network.as_ref());
    let storage = storage(&mut ctx, raw.storage.as_ref());
    let policy = policy(&mut ctx, raw.policy.as_ref());
    let services = services(&mut ctx, raw.services.as_ref(), &policy, env);
    let lease_given = raw.storage.as_ref().is_some_and(|s| s.lease.is_some());
    let fencing = fencing(&mut ctx, raw.fencing.as_ref(), &storage, lease_given);
    let mut alerts = raw.alerts.as_ref().map(|a| alerts(&mut ctx, a, env));
    let exporter = exporter::exporter(&mut ctx, raw.exporter.as_ref());
    // The diagnostics keep the cluster's own addresses (not personal data,
    // and what an administrator reads the bundle by).
    if let Some(Some(a)) = &mut alerts {
        let mut keep: Vec<IpAddr> = cluster
            .nodes
            .iter()
            .flat_map(|n| n.addresses.iter().copied())
            .chain(vip.as_ref().map(|v| v.address))
            .chain(network.ping_targets.iter().copied())
            .collect();
        keep.sort();
        keep.dedup();
        a.diagnostics.keep = keep;
    }
    let ok = !ctx
        .problems
        .iter()
        .any(|p| p.severity == super::diag::Severity::Error);
    let cfg = ok.then(|| Config {
        cluster,
        vip: vip.expect("checked"),
        network,
        storage,
        services,
        policy,
        fencing,
        alerts: alerts.flatten(),
        exporter,
    });
    (cfg, ctx.problems)
}

fn cluster(ctx: &mut Ctx, raw: Option<&RawCluster>) -> Cluster {
    let p = root().key("cluster");
    let empty = RawCluster::default();
    let raw = raw.unwrap_or_else(|| {
        ctx.missing(p.clone());
        &empty
    });
    let name = match &raw.name {
        None => {
            ctx.missing(p.key("name"));
            String::new()
        }
        Some(n) if !name_ok(n) || n.len() > 32 => {
            ctx.err_hint(
                p.key("name"),
                format!("{n:?} is not a valid cluster name"),
                "letters, digits, '-' and '_', at most 32",
            );
            n.clone()
        }
        Some(n) => n.clone(),
    };
    let token_timeout = duration(ctx, p.key("token_timeout"), &raw.token_timeout, "3s");
    if token_timeout < Duration::from_millis(200) || token_timeout > Duration::from_secs(60) {
        ctx.err(
            p.key("token_timeout"),
            format!(
                "{} is outside 200ms..60s",
                humantime::format_duration(token_timeout)
            ),
        );
    }
    let ssh_port = raw.ssh_port.unwrap_or(22);
    if ssh_port == 0 {
        ctx.err(p.key("ssh_port"), "0 is not a port");
    }
    let mut nodes = Vec::new();
    match &raw.nodes {
        None => ctx.missing(p.key("nodes")),
        Some(list) if list.len() != 2 => ctx.err(
            p.key("nodes"),
            format!("mailha runs exactly two nodes; {} given", list.len()),
        ),
        Some(list) => {
            for (i, n) in list.iter().enumerate() {
                let np = p.key("nodes").index(i);
                let name = match &n.name {
                    None => {
                        ctx.missing(np.key("name"));
                        String::new()
                    }
                    Some(s) if !hostname_ok(s) => {
                        ctx.err(np.key("name"), format!("{s:?} is not a valid node name"));
                        s.clone()
                    }
                    Some(s) => s.clone(),
                };
                let mut addresses = Vec::new();
                match &n.addresses {
                    None => ctx.missing(np.key("addresses")),
                    Some(a) if a.is_empty() => ctx.err(
                        np.key("addresses"),
                        "at least one heartbeat address is needed",
                    ),
                    Some(a) => {
                        if a.len() > 8 {
                            ctx.err(np.key("addresses"), "knet allows at most 8 links");
                        }
                        for (j, s) in a.iter().enumerate() {
                            if let Some(ip) = ip(ctx, np.key("addresses").index(j), s) {
                                addresses.push(ip);
                            }
                        }
                    }
                }
                nodes.push(Node {
                    id: i as u32 + 1,
                    name,
                    addresses,
                });
            }
            if nodes[0].name == nodes[1].name && !nodes[0].name.is_empty() {
                ctx.err(
                    p.key("nodes").index(1).key("name"),
                    format!("duplicate node name {:?}", nodes[1].name),
                );
            }
            // Counted as written: an entry that is not an address, or an
            // empty list, is its own error, not also a link mismatch.
            let given = |n: &RawNode| n.addresses.as_ref().map_or(0, Vec::len);
            let (na, nb) = (given(&list[0]), given(&list[1]));
            if na > 0 && nb > 0 && na != nb {
                ctx.err(
                    p.key("nodes").index(1).key("addresses"),
                    format!(
                        "both nodes need one address per link: node 1 has {na}, node 2 has {nb}"
                    ),
                );
            }
            let (a, b) = (&nodes[0].addresses, &nodes[1].addresses);
            let mut seen = BTreeSet::new();
            for (i, n) in nodes.iter().enumerate() {
                for (j, addr) in n.addresses.iter().enumerate() {
                    if !seen.insert(*addr) {
                        ctx.err(
                            p.key("nodes").index(i).key("addresses").index(j),
                            format!("address {addr} is used twice"),
                        );
                    }
                }
            }
            for (j, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                if x.is_ipv4() != y.is_ipv4() {
                    ctx.err(
                        p.key("nodes").index(1).key("addresses").index(j),
                        format!("link {j} mixes IPv4 and IPv6"),
                    );
                }
            }
            if a.len() == 1 && b.len() == 1 {
                ctx.warn(
                    p.key("nodes"),
                    "one heartbeat link only: a second link is recommended",
                );
            }
        }
    }
    Cluster {
        name,
        token_timeout,
        ssh_port,
        nodes,
    }
}

fn vip(ctx: &mut Ctx, raw: Option<&RawVip>, cluster: &Cluster) -> Option<Vip> {
    let p = root().key("vip");
    let Some(raw) = raw else {
        ctx.missing(p);
        return None;
    };
    let address = match &raw.address {
        None => {
            ctx.missing(p.key("address"));
            None
        }
        Some(s) => ip(ctx, p.key("address"), s),
    };
    if let Some(a) = address {
        for n in &cluster.nodes {
            if n.addresses.contains(&a) {
                ctx.err(
                    p.key("address"),
                    format!("{a} is node {:?}'s own address; the VIP must float", n.name),
                );
            }
        }
    }
    let max = if address.is_some_and(|a| a.is_ipv6()) {
        128
    } else {
        32
    };
    let prefix = match raw.prefix {
        None => {
            ctx.missing(p.key("prefix"));
            0
        }
        Some(x) if x == 0 || x > max => {
            ctx.err(p.key("prefix"), format!("{x} is outside 1..{max}"));
            x
        }
        Some(x) => x,
    };
    let nic = match &raw.nic {
        None => {
            ctx.missing(p.key("nic"));
            String::new()
        }
        Some(s) if !nic_ok(s) => {
            ctx.err_hint(
                p.key("nic"),
                format!("{s:?} is not an interface name"),
                "e.g. \"eth0\"; an old-style \"eth0:0\" alias is written as nic + label",
            );
            s.clone()
        }
        Some(s) => s.clone(),
    };
    if let Some(l) = &raw.label {
        // IPaddr2 names the address "nic:label", which must fit IFNAMSIZ.
        if !nic_ok(l) || nic.len() + 1 + l.len() > 15 {
            ctx.err(
                p.key("label"),
                format!("{l:?}: \"{nic}:{l}\" must be at most 15 letters, digits, '-', '_'"),
            );
        }
    }
    Some(Vip {
        address: address?,
        prefix,
        nic,
        label: raw.label.clone(),
    })
}

fn network(ctx: &mut Ctx, raw: Option<&RawNetwork>) -> Network {
    let p = root().key("network");
    let empty = RawNetwork::default();
    let raw = raw.unwrap_or(&empty);
    let mut ping_targets = Vec::new();
    match &raw.ping_targets {
        None | Some(_) if raw.ping_targets.as_ref().is_none_or(|v| v.is_empty()) => ctx.warn(
            p.key("ping_targets"),
            "no ping target: the VIP will not leave a node that lost its network",
        ),
        _ => {}
    }
    for (i, s) in raw.ping_targets.iter().flatten().enumerate() {
        if let Some(a) = ip(ctx, p.key("ping_targets").index(i), s) {
            if ping_targets.contains(&a) {
                ctx.err(
                    p.key("ping_targets").index(i),
                    format!("{a} is listed twice"),
                );
            }
            ping_targets.push(a);
        }
    }
    Network {
        ping_targets,
        // 1 s each: a lost gateway moves the mail in about 3 s of the
        // 10 s goal (DESIGN section 10); bench/drills.sh cut-ping measures.
        dampen: duration(ctx, p.key("dampen"), &raw.dampen, "1s"),
        interval: duration(ctx, p.key("interval"), &raw.interval, "1s"),
        failed_checks: match raw.failed_checks {
            None => 2,
            Some(n @ (1 | 2)) => n,
            Some(n) => {
                ctx.err(
                    p.key("failed_checks"),
                    format!(
                        "{n} is neither 2 (the failed check, then the check of the ping's restart) nor 1 (the first failed check moves the mail)"
                    ),
                );
                2
            }
        },
    }
}

pub fn block_dev(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<BlockDev> {
    if let Some(u) = s.strip_prefix("UUID=") {
        let ok = !u.is_empty() && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !ok {
            ctx.err(path, format!("{u:?} is not a filesystem UUID"));
            return None;
        }
        return Some(BlockDev::Uuid(u.to_ascii_lowercase()));
    }
    if let Some(l) = s.strip_prefix("LABEL=") {
        let ok = !l.is_empty()
            && l.len() <= 16
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            ctx.err(
                path,
                format!("{l:?} is not a usable label (letters, digits, '-', '_', '.', at most 16)"),
            );
            return None;
        }
        return Some(BlockDev::Label(l.to_string()));
    }
    // Any absolute device node: usually under /dev, but a node made
    // elsewhere (the lab's per-node /run/lab/data) is just as good.
    if !s.starts_with('/') {
        ctx.err_hint(
            path,
            format!("{s:?} is not a device path"),
            "name a block device by absolute path, UUID=... or LABEL=...",
        );
        return None;
    }
    let p = abs_path(ctx, path, s)?;
    Some(BlockDev::Path(p))
}

pub fn nfs_export(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<NfsExport> {
    let Some((host, export)) = s.split_once(":/") else {
        ctx.err_hint(
            path,
            format!("{s:?} is not an NFS export"),
            "write host:/export",
        );
        return None;
    };
    let host_ok = host.parse::<IpAddr>().is_ok() || hostname_ok(host);
    if !host_ok {
        ctx.err(
            path.clone(),
            format!("{host:?} is not a host name or address"),
        );
    }
    let export = abs_path(ctx, path, &format!("/{export}"))?;
    host_ok.then(|| NfsExport {
        host: host.to_string(),
        export,
    })
}

fn options(ctx: &mut Ctx, path: FieldPath, v: &Option<Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, o) in v.iter().flatten().enumerate() {
        let ok = !o.is_empty()
            && o.chars()
                .all(|c| c.is_ascii_alphanumeric() || "=_-.:/+".contains(c));
        if ok {
            out.push(o.clone());
        } else {
            ctx.err(
                path.index(i),
                format!("{o:?} is not a mount option (one option per item, no commas)"),
            );
        }
    }
    out
}

/// Mount points that would shadow the system, or that mailha's own
/// mountinfo checks cannot trust.
/// The filesystems a failover mount of the mail store may be: local,
/// single-writer ones Debian's kernel mounts (ext4 with MMP is the one
/// that refuses a second mount by itself: docs/lease.md).
pub const BLOCK_FSTYPES: &[&str] = &["ext4", "ext3", "ext2", "xfs", "btrfs"];

const FORBIDDEN_MOUNT_ROOTS: &[&str] = &["/proc", "/sys", "/dev", "/run", "/boot", "/etc", "/usr"];

fn storage(ctx: &mut Ctx, raw: Option<&RawStorage>) -> Storage {
    let p = root().key("storage");
    let empty = RawStorage::default();
    let raw = raw.unwrap_or(&empty);
    let lease = raw
        .lease
        .as_ref()
        .and_then(|l| lease(ctx, p.key("lease"), l));
    let mut mounts: Vec<Mount> = Vec::new();
    let mut points: Vec<(usize, PathBuf)> = Vec::new();
    for (i, m) in raw.mounts.iter().flatten().enumerate() {
        let mp = p.key("mounts").index(i);
        let source = match (&m.device, &m.nfs) {
            (Some(_), Some(_)) => {
                ctx.err(mp.key("nfs"), "give either device or nfs, not both");
                None
            }
            (None, None) => {
                ctx.err_hint(
                    mp.clone(),
                    "neither device nor nfs is given",
                    "device = \"LABEL=maildata\" or nfs = \"host:/export\"",
                );
                None
            }
            (Some(d), None) => {
                let fstype = m.fstype.clone().unwrap_or_else(|| "ext4".into());
                if fstype == "nfs" || fstype == "nfs4" {
                    ctx.err(
                        mp.key("fstype"),
                        format!("{fstype:?} is not a block filesystem type"),
                    );
                } else if !BLOCK_FSTYPES.contains(&fstype.as_str()) {
                    // A typo would pass here and fail only at the mount,
                    // at failover time.
                    let hint = did_you_mean(&fstype, BLOCK_FSTYPES)
                        .map(|s| format!("did you mean {s:?}?"))
                        .unwrap_or_else(|| format!("one of {}", BLOCK_FSTYPES.join(", ")));
                    ctx.err_hint(
                        mp.key("fstype"),
                        format!("unknown filesystem type {fstype:?}"),
                        hint,
                    );
                }
                block_dev(ctx, mp.key("device"), d)
                    .map(|device| MountSource::Block { device, fstype })
            }
            (None, Some(n)) => {
                if m.fstype
                    .as_deref()
                    .is_some_and(|f| f != "nfs" && f != "nfs4")
                {
                    ctx.err(mp.key("fstype"), "an NFS mount's fstype is nfs or nfs4");
                }
                nfs_export(ctx, mp.key("nfs"), n).map(MountSource::Nfs)
            }
        };
        let mount_point = match &m.mount_point {
            None => {
                ctx.missing(mp.key("mount_point"));
                None
            }
            Some(s) => mount_point(ctx, mp.key("mount_point"), s),
        };
        let name = match &m.name {
            Some(n) if !name_ok(n) => {
                ctx.err(mp.key("name"), format!("{n:?} is not a valid name"));
                n.clone()
            }
            Some(n) => n.clone(),
            None => mount_point
                .as_ref()
                .map(|p| default_mount_name(p))
                .unwrap_or_default(),
        };
        if mounts.iter().any(|x| x.name == name) && !name.is_empty() {
            ctx.err(mp.key("name"), format!("duplicate mount name {name:?}"));
        }
        let opts = options(ctx, mp.key("options"), &m.options);
        if let Some(mpt) = &mount_point {
            for (j, other) in &points {
                if other == mpt {
                    ctx.err(
                        mp.key("mount_point"),
                        format!("{} is also mounts[{j}]'s mount point", mpt.display()),
                    );
                } else if mpt.starts_with(other) || other.starts_with(mpt) {
                    ctx.err(
                        mp.key("mount_point"),
                        format!(
                            "{} and mounts[{j}]'s {} are nested; mount order would decide what is seen",
                            mpt.display(),
                            other.display()
                        ),
                    );
                }
            }
            points.push((i, mpt.clone()));
        }
        if let (Some(source), Some(mount_point)) = (source, mount_point) {
            mounts.push(Mount {
                name,
                source,
                mount_point,
                options: opts,
            });
        }
    }
    Storage { lease, mounts }
}

/// A mount point: absolute, not `/`, not inside the system's own trees.
/// Returns its clean form.
pub fn mount_point(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<PathBuf> {
    let pb = abs_path(ctx, path.clone(), s)?;
    let norm = normalize(&pb);
    if norm == Path::new("/") {
        ctx.err(path, "the root directory cannot be a mount point here");
        return None;
    }
    if let Some(r) = FORBIDDEN_MOUNT_ROOTS.iter().find(|r| norm.starts_with(r)) {
        ctx.err(
            path,
            format!("{s:?} is under {r}, which belongs to the system"),
        );
        return None;
    }
    Some(norm)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        if let std::path::Component::Normal(x) = c {
            out.push(x);
        }
    }
    out
}

/// `/srv/mail` -> `srv-mail`.
pub fn default_mount_name(p: &Path) -> String {
    let s: String = p
        .to_string_lossy()
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s
}

fn lease(ctx: &mut Ctx, p: FieldPath, raw: &RawLease) -> Option<Lease> {
    let io_timeout = duration(ctx, p.key("io_timeout"), &raw.io_timeout, "1s");
    let target = match (&raw.device, &raw.nfs) {
        (Some(_), Some(_)) => {
            ctx.err(p.key("nfs"), "give either device or nfs, not both");
            None
        }
        (None, None) => {
            ctx.err(p.clone(), "a lease needs a device or an nfs export");
            None
        }
        (Some(d), None) => {
            if raw.file.is_some() {
                ctx.err(p.key("file"), "file goes with nfs, not with a device");
            }
            block_dev(ctx, p.key("device"), d).map(LeaseTarget::Block)
        }
        (None, Some(n)) => {
            let file = raw.file.clone().unwrap_or_else(|| ".mailha-lease".into());
            if let Err(m) = plain_file_name(&file) {
                ctx.err(p.key("file"), m);
            }
            let opts = options(ctx, p.key("options"), &raw.options);
            for (i, o) in opts.iter().enumerate() {
                if let Some(why) = crate::lease::nfs::refused(o) {
                    ctx.err(
                        p.key("options").index(i),
                        format!("{o:?} cannot be used for a lease: {why}"),
                    );
                }
            }
            nfs_export(ctx, p.key("nfs"), n).map(|export| LeaseTarget::NfsFile {
                export,
                file,
                options: opts,
            })
        }
    };
    Some(Lease {
        target: target?,
        io_timeout,
    })
}

fn policy(ctx: &mut Ctx, raw: Option<&RawPolicy>) -> Policy {
    let p = root().key("policy");
    let empty = RawPolicy::default();
    let raw = raw.unwrap_or(&empty);
    let migration_threshold = raw.migration_threshold.unwrap_or(10);
    if migration_threshold == 0 {
        ctx.err(
            p.key("migration_threshold"),
            "0 would never move a failing service; use at least 1",
        );
    }
    let mut policy = Policy {
        migration_threshold,
        failure_timeout: duration(ctx, p.key("failure_timeout"), &raw.failure_timeout, "10min"),
        resource_stickiness: raw.resource_stickiness.unwrap_or(100),
        monitor_interval: duration(ctx, p.key("monitor_interval"), &raw.monitor_interval, "2s"),
        storage_monitor_interval: duration(
            ctx,
            p.key("storage_monitor_interval"),
            &raw.storage_monitor_interval,
            "10s",
        ),
        vip_monitor_interval: duration(
            ctx,
            p.key("vip_monitor_interval"),
            &raw.vip_monitor_interval,
            "10s",
        ),
        start_timeout: duration(ctx, p.key("start_timeout"), &raw.start_timeout, "60s"),
        stop_timeout: duration(ctx, p.key("stop_timeout"), &raw.stop_timeout, "60s"),
        monitor_timeout: duration(ctx, p.key("monitor_timeout"), &raw.monitor_timeout, "20s"),
        start_stall: Duration::ZERO,
    };
    policy.start_stall = start_stall(ctx, p.key("start_stall"), &raw.start_stall, &policy);
    policy
}

/// A `start_stall`: at least 1 s (a daemon between two of its ticks is not
/// stalled), and shorter than the start's op timeout, which would end the
/// start first.
fn start_stall(ctx: &mut Ctx, path: FieldPath, v: &Option<String>, policy: &Policy) -> Duration {
    let default = humantime::parse_duration(START_STALL_DEFAULT).expect("a duration");
    let d = duration(ctx, path.clone(), v, START_STALL_DEFAULT);
    if d < Duration::from_secs(1) {
        ctx.err_hint(
            path,
            format!(
                "{} is too short: a daemon that is working may show no progress for a moment",
                humantime::format_duration(d)
            ),
            "at least 1s; the default is 5s",
        );
        return default;
    }
    if d >= policy.start_timeout {
        ctx.err_hint(
            path,
            format!(
                "{} is not shorter than policy.start_timeout ({}): the op timeout would end the start first",
                humantime::format_duration(d),
                humantime::format_duration(policy.start_timeout)
            ),
            "a few seconds (default 5s); a daemon that makes progress is waited for up to the op timeout anyway",
        );
        return default;
    }
    d
}

/// `lease_given`: the file has a `[storage.lease]`; when it is there but
/// invalid, its own errors say so and the fencing rules stay quiet.
fn fencing(
    ctx: &mut Ctx,
    raw: Option<&RawFencing>,
    storage: &Storage,
    lease_given: bool,
) -> Fencing {
    let p = root().key("fencing");
    let empty = RawFencing::default();
    let raw = raw.unwrap_or(&empty);
    let mode = match raw.mode.as_deref() {
        None | Some("lease") => FencingMode::Lease,
        Some("sbd") => FencingMode::Sbd,
        Some("none") => FencingMode::None,
        Some(other) => {
            let hint = did_you_mean(other, FencingMode::ALL)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| "one of lease, sbd, none".into());
            ctx.err_hint(
                p.key("mode"),
                format!("unknown fencing mode {other:?}"),
                hint,
            );
            FencingMode::Lease
        }
    };
    // Without a lease there is no fence device: Pacemaker would refuse to
    // start anything, so say it here.
    let lease_invalid = lease_given && storage.lease.is_none();
    if mode == FencingMode::Lease && storage.lease.is_none() && !lease_invalid {
        ctx.err_hint(
            p.key("mode"),
            "fencing by lease needs a lease device, and [storage.lease] is missing",
            "add [storage.lease] device = \"LABEL=mailha-lease\", or choose fencing.mode = \"sbd\"",
        );
    }
    if mode == FencingMode::Sbd
        && !lease_invalid
        && !matches!(
            storage.lease.as_ref().map(|l| &l.target),
            Some(LeaseTarget::Block(_))
        )
    {
        // Watchdog-only sbd cannot tell a dead peer from a cut link in a
        // two-node cluster; it needs the shared disk as its poison-pill.
        ctx.err_hint(
            p.key("mode"),
            "sbd needs a shared block device, and storage.lease.device is not set",
            "set [storage.lease] device = ... (sbd uses it as its disk)",
        );
    }
    if mode == FencingMode::None && !storage.mounts.is_empty() {
        ctx.warn(
            p.key("mode"),
            "no fencing: both nodes could mount the shared storage after a split",
        );
    }
    let watchdog = raw
        .watchdog
        .as_deref()
        .and_then(|w| abs_path(ctx, p.key("watchdog"), w))
        .unwrap_or_else(|| PathBuf::from("/dev/watchdog"));
    Fencing {
        mode,
        priority_fencing_delay: duration(
            ctx,
            p.key("priority_fencing_delay"),
            &raw.priority_fencing_delay,
            "10s",
        ),
        watchdog,
        watchdog_timeout: duration(ctx, p.key("watchdog_timeout"), &raw.watchdog_timeout, "5s"),
        watchdog_emulated: raw.watchdog_emulated.unwrap_or(false),
    }
}

fn services(ctx: &mut Ctx, raw: Option<&RawServices>, policy: &Policy, env: &Env) -> Services {
    let p = root().key("services");
    let empty = RawServices::default();
    let raw = raw.unwrap_or(&empty);
    let profile = match raw.profile.as_deref() {
        None | Some("none") => None,
        Some("eyou") => Some(ProfileName::Eyou),
        Some("postfix") => Some(ProfileName::Postfix),
        Some("gateway") => Some(ProfileName::Gateway),
        Some(other) => {
            let hint = did_you_mean(other, ProfileName::ALL)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| format!("one of {}", ProfileName::ALL.join(", ")));
            ctx.err_hint(p.key("profile"), format!("unknown profile {other:?}"), hint);
            None
        }
    };
    let mode = match raw.mode.as_deref() {
        None if profile == Some(ProfileName::Gateway) => Mode::Gateway,
        None | Some("mail") => Mode::Mail,
        Some("gateway") => Mode::Gateway,
        Some("2in1") => Mode::TwoInOne,
        Some(other) => {
            let hint = did_you_mean(other, Mode::ALL)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| "one of mail, gateway, 2in1".into());
            ctx.err_hint(p.key("mode"), format!("unknown mode {other:?}"), hint);
            Mode::Mail
        }
    };
    if profile == Some(ProfileName::Gateway) && mode != Mode::Gateway {
        ctx.err(
            p.key("mode"),
            format!(
                "profile \"gateway\" runs the gateway only; mode {:?} needs profile \"eyou\"",
                mode.as_str()
            ),
        );
    }
    let eyou_root = match &raw.eyou_root {
        Some(r) => abs_path(ctx, p.key("eyou_root"), r).unwrap_or_default(),
        None => PathBuf::from("/usr/local/eyou/mail"),
    };
    let catalog = match profiles::catalog(profile, mode, &eyou_root, env.eyou_files) {
        Ok(c) => c,
        Err(e) => {
            ctx.err(p.key("profile"), format!("reading the eYou tree: {e}"));
            profiles::Catalog::default()
        }
    };
    for n in &catalog.notes {
        ctx.warn(p.key("profile"), n.clone());
    }

    // Lay the user's tables over the profile's, field by field.
    let mut merged: BTreeMap<String, (RawService, bool)> = catalog
        .services
        .into_iter()
        .map(|(k, v)| (k, (v, false)))
        .collect();
    for (name, user) in &raw.defined {
        let sp = p.key(name);
        if !name_ok(name) || name.len() > 40 {
            let hint = did_you_mean(name, SERVICES_SETTINGS)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| "letters, digits, '-' and '_', at most 40".into());
            ctx.err_hint(sp, format!("{name:?} is not a valid service name"), hint);
            continue;
        }
        match merged.get_mut(name) {
            Some((base, user_touched)) => {
                *base = overlay(base, user);
                *user_touched = true;
            }
            None => {
                let mut s = user.clone();
                s.enabled.get_or_insert(true);
                merged.insert(name.clone(), (s, true));
            }
        }
    }

    let enabled: BTreeSet<String> = merged
        .iter()
        .filter(|(_, (s, _))| s.enabled.unwrap_or(true))
        .map(|(k, _)| k.clone())
        .collect();

    let mut list = Vec::new();
    for (name, (s, user)) in &merged {
        if !enabled.contains(name) {
            continue;
        }
        let sp = p.key(name);
        if let Some(svc) = service(ctx, &sp, name, s, *user, &merged, &enabled, policy) {
            list.push(svc);
        }
    }
    indistinguishable(ctx, &p, &list);
    let list = order_services(ctx, &p, list);
    Services {
        profile,
        mode,
        eyou_version: catalog.eyou_version,
        list,
    }
}

/// A service that mailha's agent can only find by its binary or process
/// name (no pid file) takes every process of that binary for its own: a
/// monitor of it passes on another service's process, and a stop of it
/// ends the other service too. (eYou's three memcached, without the
/// installed tree's pid files, are such.)
fn indistinguishable(ctx: &mut Ctx, p: &FieldPath, list: &[Service]) {
    let key = |svc: &Service| match (&svc.executable, svc.params.get("process_name")) {
        (Some(exe), _) => Some(format!("executable {}", exe.display())),
        (None, Some(n)) => Some(format!("process name {n:?}")),
        (None, None) => None,
    };
    // A unit-only service is told apart by its unit's cgroup.
    let ours: Vec<(&Service, String)> = list
        .iter()
        .filter(|s| s.agent == Agent::Mailha && !s.start.is_empty())
        .filter_map(|s| Some((s, key(s)?)))
        .collect();
    for (svc, k) in ours.iter().filter(|(s, _)| s.pid_file.is_none()) {
        let others: Vec<&str> = ours
            .iter()
            .filter(|(o, ok)| o.name != svc.name && ok == k)
            .map(|(o, _)| o.name.as_str())
            .collect();
        if !others.is_empty() {
            ctx.warn_hint(
                p.key(&svc.name),
                format!(
                    "{} is found by {k} with no pid_file, and so is {}: the agent cannot tell them apart (a stop of {} ends {} too)",
                    svc.name,
                    others.join(", "),
                    svc.name,
                    others.join(", ")
                ),
                format!("give {} a pid_file", svc.name),
            );
        }
    }
}

fn overlay(base: &RawService, user: &RawService) -> RawService {
    RawService {
        enabled: user.enabled.or(base.enabled),
        agent: user.agent.clone().or_else(|| base.agent.clone()),
        // A stock agent the user picks does not inherit the profile's
        // unit (a parameter of mailha's agent), as it ignores its argv.
        unit: user.unit.clone().or_else(|| {
            let stock = user
                .agent
                .as_deref()
                .is_some_and(|a| !matches!(a, "mailha" | "ocf:mailha:service"));
            (!stock).then(|| base.unit.clone()).flatten()
        }),
        start: user.start.clone().or_else(|| base.start.clone()),
        stop: user.stop.clone().or_else(|| base.stop.clone()),
        pid_file: user.pid_file.clone().or_else(|| base.pid_file.clone()),
        executable: user.executable.clone().or_else(|| base.executable.clone()),
        probe: user.probe.clone().or_else(|| base.probe.clone()),
        depends_on: user.depends_on.clone().or_else(|| base.depends_on.clone()),
        watch: user.watch.or(base.watch),
        clone: user.clone.or(base.clone),
        monitor_interval: user
            .monitor_interval
            .clone()
            .or_else(|| base.monitor_interval.clone()),
        start_stall: user
            .start_stall
            .clone()
            .or_else(|| base.start_stall.clone()),
        stale_locks: user
            .stale_locks
            .clone()
            .or_else(|| base.stale_locks.clone()),
        params: match (&base.params, &user.params) {
            (Some(b), Some(u)) => {
                let mut m = b.clone();
                m.extend(u.clone());
                Some(m)
            }
            (b, u) => u.clone().or_else(|| b.clone()),
        },
    }
}

fn agent(ctx: &mut Ctx, path: FieldPath, s: &str) -> Option<Agent> {
    let tok_ok = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = s.split(':').collect();
    let a = match parts.as_slice() {
        ["mailha"] | ["ocf", "mailha", "service"] => Some(Agent::Mailha),
        ["ocf", prov, kind] if tok_ok(prov) && tok_ok(kind) => Some(Agent::Other {
            class: "ocf".into(),
            provider: Some(prov.to_string()),
            kind: kind.to_string(),
        }),
        [class @ ("lsb" | "systemd" | "service"), kind] if tok_ok(kind) => Some(Agent::Other {
            class: class.to_string(),
            provider: None,
            kind: kind.to_string(),
        }),
        _ => None,
    };
    if a.is_none() {
        ctx.err_hint(
            path,
            format!("{s:?} is not an agent"),
            "\"mailha\", \"ocf:PROVIDER:TYPE\" (e.g. ocf:heartbeat:postfix) or \"lsb:NAME\"",
        );
    }
    a
}

fn default_port(kind: &str) -> Option<u16> {
    Some(match kind {
        "smtp" => 25,
        "pop3" => 110,
        "imap" => 143,
        "mysql" => 3306,
        "memcached" => 11211,
        "http" => 80,
        _ => return None,
    })
}

fn probe(ctx: &mut Ctx, p: FieldPath, raw: &RawProbe) -> Option<Probe> {
    // Generous: a busy 2-core machine can take seconds to answer, and a
    // dead daemon is caught at once anyway (connection refused).
    let timeout = duration(ctx, p.key("timeout"), &raw.timeout, "5s");
    let kind_s = match raw.kind.as_deref() {
        None => {
            ctx.missing(p.key("type"));
            return None;
        }
        Some(k) => k,
    };
    let kind = match kind_s {
        "smtp" => ProbeKind::Smtp,
        "pop3" => ProbeKind::Pop3,
        "imap" => ProbeKind::Imap,
        "mysql" => ProbeKind::Mysql,
        "memcached" => ProbeKind::Memcached,
        "http" => {
            let path = raw.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') || hostile_char(&path).is_some() || path.contains(' ') {
                ctx.err(p.key("path"), format!("{path:?} is not an HTTP path"));
            }
            let expect = raw.expect.unwrap_or(200);
            if !(100..=599).contains(&expect) {
                ctx.err(p.key("expect"), format!("{expect} is not an HTTP status"));
            }
            ProbeKind::Http { path, expect }
        }
        "command" => match &raw.argv {
            None => {
                ctx.missing(p.key("argv"));
                return None;
            }
            Some(v) => ProbeKind::Command {
                argv: argv_list(ctx, p.key("argv"), v)?,
            },
        },
        other => {
            let hint = did_you_mean(other, ProbeKind::NAMES)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| format!("one of {}", ProbeKind::NAMES.join(", ")));
            ctx.err_hint(p.key("type"), format!("unknown probe {other:?}"), hint);
            return None;
        }
    };
    let is_net = default_port(kind_s).is_some();
    if !is_net {
        for (field, set) in [
            ("port", raw.port.is_some()),
            ("host", raw.host.is_some()),
            ("socket", raw.socket.is_some()),
        ] {
            if set {
                ctx.err(p.key(field), format!("a {kind_s} probe has no {field}"));
            }
        }
    } else if raw.argv.is_some() {
        ctx.err(p.key("argv"), "argv belongs to a command probe");
    }
    let target = if !is_net {
        ProbeTarget::None
    } else if let Some(sock) = &raw.socket {
        if raw.port.is_some() || raw.host.is_some() {
            ctx.err(p.key("socket"), "give a socket or host/port, not both");
        }
        if !matches!(kind, ProbeKind::Mysql | ProbeKind::Memcached) {
            ctx.err(
                p.key("socket"),
                "only mysql and memcached probes use a socket",
            );
        }
        ProbeTarget::Unix(abs_path(ctx, p.key("socket"), sock)?)
    } else {
        let host = raw.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        if host.parse::<IpAddr>().is_err() && !hostname_ok(&host) {
            ctx.err(p.key("host"), format!("{host:?} is not a host"));
        }
        let port = raw.port.or(default_port(kind_s)).unwrap_or(0);
        if port == 0 {
            ctx.err(p.key("port"), "0 is not a port");
        }
        ProbeTarget::Tcp { host, port }
    };
    Some(Probe {
        kind,
        target,
        timeout,
    })
}

/// Follows `dep` through disabled services to the enabled ones it stands
/// for, so turning a middle service off keeps its dependents ordered after
/// what it depended on.
fn resolve_dep(
    dep: &str,
    merged: &BTreeMap<String, (RawService, bool)>,
    enabled: &BTreeSet<String>,
    out: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) {
    if !seen.insert(dep.to_string()) {
        return;
    }
    if enabled.contains(dep) {
        if !out.iter().any(|x| x == dep) {
            out.push(dep.to_string());
        }
        return;
    }
    if let Some((s, _)) = merged.get(dep) {
        for d in s.depends_on.iter().flatten() {
            resolve_dep(d, merged, enabled, out, seen);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn service(
    ctx: &mut Ctx,
    sp: &FieldPath,
    name: &str,
    s: &RawService,
    _user: bool,
    merged: &BTreeMap<String, (RawService, bool)>,
    enabled: &BTreeSet<String>,
    policy: &Policy,
) -> Option<Service> {
    let before = ctx.problems.len();
    let agent = match &s.agent {
        None => Agent::Mailha,
        Some(a) => agent(ctx, sp.key("agent"), a)?,
    };
    let start = s
        .start
        .as_ref()
        .and_then(|v| argv_list(ctx, sp.key("start"), v))
        .unwrap_or_default();
    let stop = s
        .stop
        .as_ref()
        .and_then(|v| argv_list(ctx, sp.key("stop"), v))
        .unwrap_or_default();
    // "none": no unit, even where a profile gives one (argv mode on
    // every node).
    let unit = match s.unit.as_deref() {
        None | Some("none") => None,
        Some(u) => match check_unit_name(u) {
            Ok(()) => Some(u.to_string()),
            Err(m) => {
                ctx.err_hint(
                    sp.key("unit"),
                    m,
                    "e.g. unit = \"mariadb.service\"; unit = \"none\" runs it by start and stop",
                );
                None
            }
        },
    };
    if unit.is_some() && agent != Agent::Mailha {
        ctx.err_hint(
            sp.key("unit"),
            format!("unit is for mailha's agent, not {}", agent.spec()),
            "Pacemaker's own systemd class is agent = \"systemd:NAME\"",
        );
    }
    let unit_given = s.unit.as_deref().is_some_and(|u| u != "none");
    if agent == Agent::Mailha && s.start.is_none() && !unit_given {
        ctx.err_hint(
            sp.key("start"),
            "mailha's agent needs the service's systemd unit or the command that starts it",
            "unit = \"postfix@-.service\", start = [\"/usr/sbin/postfix\", \"start\"], or name a stock agent with agent = ...",
        );
    }
    let pid_file = s
        .pid_file
        .as_ref()
        .and_then(|v| abs_path(ctx, sp.key("pid_file"), v));
    let executable = s
        .executable
        .as_ref()
        .and_then(|v| abs_path(ctx, sp.key("executable"), v));
    let probe = s
        .probe
        .as_ref()
        .and_then(|pr| probe(ctx, sp.key("probe"), pr));
    let mut depends_on = Vec::new();
    let raw_deps = s.depends_on.clone().unwrap_or_default();
    for (i, d) in raw_deps.iter().enumerate() {
        let dp = sp.key("depends_on").index(i);
        if d == name {
            ctx.err(dp, format!("{name:?} cannot depend on itself"));
            continue;
        }
        if raw_deps[..i].contains(d) {
            ctx.err(dp, format!("{d:?} is listed twice"));
            continue;
        }
        if !merged.contains_key(d) {
            let names: Vec<&str> = merged.keys().map(|s| s.as_str()).collect();
            let hint = did_you_mean(d, &names)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| format!("known services: {}", names.join(", ")));
            ctx.err_hint(dp, format!("no service is named {d:?}"), hint);
            continue;
        }
        resolve_dep(d, merged, enabled, &mut depends_on, &mut BTreeSet::new());
    }
    let monitor_interval = match &s.monitor_interval {
        Some(_) => duration(ctx, sp.key("monitor_interval"), &s.monitor_interval, "2s"),
        None => policy.monitor_interval,
    };
    if s.start_stall.is_some() && agent != Agent::Mailha {
        ctx.err_hint(
            sp.key("start_stall"),
            format!("start_stall is for mailha's agent, not {}", agent.spec()),
            "a stock agent's start waits as the agent decides, up to policy.start_timeout",
        );
    }
    let start_stall = match &s.start_stall {
        Some(_) => start_stall(ctx, sp.key("start_stall"), &s.start_stall, policy),
        None => policy.start_stall,
    };
    let mut stale_locks = Vec::new();
    for (i, l) in s.stale_locks.iter().flatten().enumerate() {
        match plain_file_name(l) {
            Ok(()) if stale_locks.contains(l) => ctx.err(
                sp.key("stale_locks").index(i),
                format!("{l:?} is listed twice"),
            ),
            Ok(()) => stale_locks.push(l.clone()),
            Err(m) => ctx.err_hint(
                sp.key("stale_locks").index(i),
                m,
                "a file's name, as Dovecot's \"dovecot-uidlist.lock\"",
            ),
        }
    }
    let mut params = BTreeMap::new();
    for (k, v) in s.params.iter().flatten() {
        let kp = sp.key("params").key(k);
        let key_ok = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !key_ok {
            ctx.err(kp, format!("{k:?} is not a parameter name"));
        } else if v.chars().any(|c| c.is_control()) {
            ctx.err(kp, "a parameter value must not contain control characters");
        } else {
            params.insert(k.clone(), v.clone());
        }
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Service {
        name: name.to_string(),
        agent,
        unit,
        start,
        stop,
        pid_file,
        executable,
        probe,
        depends_on,
        watch: s.watch.unwrap_or(true),
        clone: s.clone.unwrap_or(false),
        monitor_interval,
        start_stall,
        stale_locks,
        params,
    })
}

/// One file's name, never a path or a pattern: the lease's file on NFS,
/// a `stale_locks` entry (matched in every directory of the shared mounts,
/// so the takeover's removal can only touch files of exactly that name),
/// and the storage agent's `stale_locks` parameter.
pub fn plain_file_name(v: &str) -> Result<(), String> {
    if v.contains('/') {
        return Err(format!("{v:?} is a path: give a file's name only"));
    }
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.len() <= 255
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} must be a plain file name (letters, digits, '.', '-', '_')"
        ))
    }
}

/// Orders services so each follows what it depends on (Kahn's algorithm,
/// ties by name). A cycle is an error that prints the cycle.
fn order_services(ctx: &mut Ctx, p: &FieldPath, list: Vec<Service>) -> Vec<Service> {
    let names: BTreeMap<&str, usize> = list
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut indeg = vec![0usize; list.len()];
    for (i, s) in list.iter().enumerate() {
        indeg[i] = s
            .depends_on
            .iter()
            .filter(|d| names.contains_key(d.as_str()))
            .count();
    }
    let mut done = vec![false; list.len()];
    let mut order = Vec::new();
    loop {
        let next = (0..list.len()).find(|&i| !done[i] && indeg[i] == 0);
        let Some(i) = next else { break };
        done[i] = true;
        order.push(i);
        for (j, s) in list.iter().enumerate() {
            if s.depends_on.iter().any(|d| d == &list[i].name) {
                indeg[j] -= 1;
            }
        }
    }
    if order.len() < list.len() {
        // Walk from a stuck service along stuck dependencies until a name
        // repeats: that loop is the cycle.
        let start = (0..list.len()).find(|&i| !done[i]).expect("stuck");
        let mut path = vec![start];
        let mut cur = start;
        let cycle = loop {
            let next = list[cur]
                .depends_on
                .iter()
                .filter_map(|d| names.get(d.as_str()).copied())
                .find(|&j| !done[j])
                .expect("a stuck service has a stuck dependency");
            if let Some(pos) = path.iter().position(|&x| x == next) {
                let mut c: Vec<&str> = path[pos..].iter().map(|&x| list[x].name.as_str()).collect();
                c.push(list[next].name.as_str());
                break c;
            }
            path.push(next);
            cur = next;
        };
        let first = cycle[0].to_string();
        ctx.err(
            p.key(&first).key("depends_on"),
            format!("dependency cycle: {}", cycle.join(" -> ")),
        );
        return list;
    }
    let mut list: Vec<Option<Service>> = list.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| list[i].take().expect("once"))
        .collect()
}

fn email_ok(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>()[],;:\"\\".contains(c))
        && (hostname_ok(domain) || domain.starts_with('['))
}

fn mode_check(ctx: &mut Ctx, path: FieldPath, what: &str, mode: u32) {
    if mode & 0o077 != 0 {
        ctx.err_hint(
            path,
            format!(
                "{what} is mode {:04o}: group or others can read it",
                mode & 0o7777
            ),
            "chmod 600",
        );
    }
}

fn alerts(ctx: &mut Ctx, raw: &RawAlerts, env: &Env) -> Option<Alerts> {
    let p = root().key("alerts");
    let customer = raw.customer.clone().unwrap_or_default();
    if customer.chars().any(|c| c.is_control()) {
        ctx.err(p.key("customer"), "must not contain control characters");
    }
    let language = match raw.language.as_deref() {
        None | Some("en") => Language::En,
        Some("zh-CN") | Some("zh_CN") => Language::ZhCn,
        Some(o) => {
            ctx.err_hint(
                p.key("language"),
                format!("unknown language {o:?}"),
                "\"en\" or \"zh-CN\"",
            );
            Language::En
        }
    };
    if raw
        .subject
        .as_deref()
        .is_some_and(|s| s.contains(['\r', '\n']))
    {
        ctx.err(p.key("subject"), "a subject is one line");
    }
    let batch_window = duration(ctx, p.key("batch_window"), &raw.batch_window, "10s");
    let smtp = raw
        .smtp
        .as_ref()
        .and_then(|s| smtp(ctx, p.key("smtp"), s, env));
    let webhook = raw.webhook.as_ref().and_then(|w| {
        let wp = p.key("webhook");
        let url = w.url.clone().or_else(|| {
            ctx.missing(wp.key("url"));
            None
        })?;
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            // Not echoed: a URL's path or query may hold its token, and
            // the error is located at the field anyway.
            ctx.err(
                wp.key("url"),
                "is not an http:// or https:// URL without spaces",
            );
        }
        let ca_file = w
            .ca_file
            .as_ref()
            .and_then(|f| abs_path(ctx, wp.key("ca_file"), f));
        if ca_file.is_some() && !url.starts_with("https://") {
            ctx.err(
                wp.key("ca_file"),
                "a CA file is only used with an https URL",
            );
        }
        Some(Webhook {
            url,
            ca_file,
            timeout: duration(ctx, wp.key("timeout"), &w.timeout, "10s"),
        })
    });
    let command = raw.command.as_ref().and_then(|c| {
        let cp = p.key("command");
        let argv = match &c.argv {
            None => {
                ctx.missing(cp.key("argv"));
                None
            }
            Some(v) => argv_list(ctx, cp.key("argv"), v),
        }?;
        Some(AlertCommand {
            argv,
            timeout: duration(ctx, cp.key("timeout"), &c.timeout, "30s"),
        })
    });
    if smtp.is_none()
        && webhook.is_none()
        && command.is_none()
        && raw.smtp.is_none()
        && raw.webhook.is_none()
        && raw.command.is_none()
    {
        ctx.warn(
            p.clone(),
            "no channel configured: alerts are spooled but not sent",
        );
    }
    let diagnostics = raw
        .diagnostics
        .as_ref()
        .map(|d| diagnostics(ctx, p.key("diagnostics"), d))
        .unwrap_or_default();
    Some(Alerts {
        customer,
        language,
        subject: raw.subject.clone(),
        advice: raw.advice.clone(),
        batch_window,
        smtp,
        webhook,
        command,
        diagnostics,
    })
}

/// `[alerts.diagnostics]`: each bound within a range that keeps the
/// bundle useful and mail-sized.
fn diagnostics(ctx: &mut Ctx, p: FieldPath, raw: &RawDiagnostics) -> Diagnostics {
    let d = Diagnostics::default();
    let mut within = |field: &str, v: Option<u32>, default: u32, lo: u32, hi: u32| match v {
        None => default,
        Some(n) if (lo..=hi).contains(&n) => n,
        Some(n) => {
            ctx.err(p.key(field), format!("{n} is outside {lo}..={hi}"));
            default
        }
    };
    Diagnostics {
        enabled: raw.enabled.unwrap_or(d.enabled),
        log_lines: within("log_lines", raw.log_lines, d.log_lines, 0, 1000),
        max_lines: within("max_lines", raw.max_lines, d.max_lines, 20, 10_000),
        max_bytes: within("max_bytes", raw.max_bytes, d.max_bytes, 4096, 1 << 20),
        redact_personal: raw.redact_personal.unwrap_or(d.redact_personal),
        keep: Vec::new(),
    }
}

fn smtp(ctx: &mut Ctx, p: FieldPath, raw: &RawSmtp, env: &Env) -> Option<Smtp> {
    let relay = raw.relay.clone().or_else(|| {
        ctx.missing(p.key("relay"));
        None
    })?;
    let (host, port) = match relay.rsplit_once(':') {
        Some((h, port)) => match port.parse::<u16>() {
            Ok(n) if n > 0 => (h.trim_matches(['[', ']']).to_string(), n),
            _ => {
                ctx.err(p.key("relay"), format!("{port:?} is not a port"));
                return None;
            }
        },
        None => (relay.clone(), 25),
    };
    if host.parse::<IpAddr>().is_err() && !hostname_ok(&host) {
        ctx.err(p.key("relay"), format!("{host:?} is not a host"));
    }
    let from = raw.from.clone().unwrap_or_default();
    if raw.from.is_none() {
        ctx.missing(p.key("from"));
    } else if !email_ok(&from) {
        ctx.err(p.key("from"), format!("{from:?} is not a mail address"));
    }
    let to = raw.to.clone().unwrap_or_default();
    if to.is_empty() {
        ctx.err(p.key("to"), "at least one recipient is needed");
    }
    for (i, t) in to.iter().enumerate() {
        if !email_ok(t) {
            ctx.err(p.key("to").index(i), format!("{t:?} is not a mail address"));
        }
    }
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            ctx.err(
                p.key("password_file"),
                "give password or password_file, not both",
            );
            Secret::None
        }
        (Some(pw), None) => {
            if let Some(mode) = env.config_mode {
                mode_check(
                    ctx,
                    p.key("password"),
                    &format!("{} holds a password but", env.config_path.display()),
                    mode,
                );
            }
            Secret::Inline(pw.clone())
        }
        (None, Some(f)) => match abs_path(ctx, p.key("password_file"), f) {
            None => Secret::None,
            Some(pf) => {
                match std::fs::metadata(&pf) {
                    // Secrets are often deployed after the config: say
                    // so, but let the config be checked.
                    Err(e) => ctx.warn(
                        p.key("password_file"),
                        format!("{f}: {e}: alert mail will fail until it exists"),
                    ),
                    Ok(m) if !m.is_file() => {
                        ctx.err(p.key("password_file"), format!("{f} is not a file"))
                    }
                    Ok(m) => mode_check(ctx, p.key("password_file"), f, m.permissions().mode()),
                }
                Secret::File(pf)
            }
        },
        (None, None) => Secret::None,
    };
    if raw.user.is_some()
        && password == Secret::None
        && raw.password.is_none()
        && raw.password_file.is_none()
    {
        ctx.err(p.key("user"), "a user needs a password or password_file");
    }
    if raw.user.is_none() && password != Secret::None {
        ctx.err(p.key("user"), "a password needs a user to log in as");
    }
    if let Some(u) = &raw.user
        && u.chars().any(|c| c.is_control())
    {
        ctx.err(p.key("user"), "must not contain control characters");
    }
    let ca_file = raw
        .ca_file
        .as_ref()
        .and_then(|f| abs_path(ctx, p.key("ca_file"), f));
    if ca_file.is_some() && raw.starttls == Some(false) {
        ctx.err(
            p.key("ca_file"),
            "a CA file without STARTTLS is never used: set starttls = true",
        );
    }
    Some(Smtp {
        host,
        port,
        starttls: raw.starttls.unwrap_or(true),
        ca_file,
        user: raw.user.clone(),
        password,
        from,
        to,
        timeout: duration(ctx, p.key("timeout"), &raw.timeout, "30s"),
    })
}
