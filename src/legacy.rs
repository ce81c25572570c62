//! `mailha import-legacy`: turns the 2014 kit's `etc/ha_conf.ini` into a
//! `mailha.toml`.
//!
//! The original `source`d that file, so every `$(...)` in it ran as root on
//! every check. Here it is data: `shellvars` tokenizes it, command
//! substitutions stay literal text, and nothing is ever evaluated. A field
//! that must hold an address, a path or a device refuses anything a shell
//! would have acted on; free text (subject, advice) drops the substitutions
//! and says so. Whatever has no mailha equivalent is listed by line with the
//! reason, so the operator can finish the job by hand.
//!
//! Pure: text in, TOML text out. The CLI verb does the file I/O and runs the
//! result through `mailha check` before writing anything.

use crate::config::raw::*;
use crate::config::validate::{default_mount_name, hostile_char};
use crate::shellvars::{self, Assignment, Part};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The result of an import: the new config and what could not be carried
/// over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub toml: String,
    pub unmapped: Vec<Unmapped>,
    /// `#######` lines that look like assignments: the original's disabled
    /// examples, ignored.
    pub disabled_examples: usize,
}

/// One thing the importer did not carry over, or carried over with a
/// caveat the operator must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// `None` when the note is about something absent from the file.
    pub line: Option<usize>,
    pub key: String,
    /// The value as written, for the message; `None` for secrets and for
    /// notes that are about the key as a whole.
    pub value: Option<String>,
    pub reason: String,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: ")?,
            None => f.write_str("(not in file): ")?,
        }
        match &self.value {
            Some(v) => write!(f, "{}={}: {}", self.key, v, self.reason),
            None => write!(f, "{}: {}", self.key, self.reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// Something a shell would have run or expanded, where only a literal
    /// value makes sense. Never evaluated; named so the operator can see
    /// what the file tried to do.
    #[error("{file}:{line}: {key}: {message}; this file is read as data and nothing was run")]
    ShellSyntax {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{file}: {key}: required but missing")]
    Missing { file: String, key: String },
}

/// Every error found in one pass, so one run shows everything to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ImportFailed {
    pub errors: Vec<LegacyError>,
}

/// The original's sendEmail keys are spelled `FROM`/`FROM_PASS`/`TO` in
/// its docs and `EMAIL_FROM`/... in some installs; both are accepted, the
/// later line wins as it would have in the shell.
const FROM_KEYS: &[&str] = &["FROM", "EMAIL_FROM"];
const PASS_KEYS: &[&str] = &["FROM_PASS", "EMAIL_FROM_PASS"];
const TO_KEYS: &[&str] = &["TO", "EMAIL_TO"];
const SUBJECT_KEYS: &[&str] = &["SUBJECT", "EMAIL_SUBJECT"];
const MESSAGE_KEYS: &[&str] = &["MESSAGE", "EMAIL_MESSAGE"];
const SMTP_KEYS: &[&str] = &[
    "EMAIL_SERVER",
    "FROM",
    "EMAIL_FROM",
    "FROM_PASS",
    "EMAIL_FROM_PASS",
    "TO",
    "EMAIL_TO",
];

/// Keys whose values end up in an address, path, device or number: a
/// trailing command on their line is an error, not a note.
const STRICT_KEYS: &[&str] = &[
    "EMAIL_VIP",
    "EMAIL_VIP_DEV",
    "EMAIL_VIP_NET",
    "EMAIL_SER_N",
    "HA_PING_GW",
    "SSH_PORT",
    "CHECK_SEND_MESSAGE",
    "EMAIL_SERVER",
    "FROM",
    "EMAIL_FROM",
    "FROM_PASS",
    "EMAIL_FROM_PASS",
    "TO",
    "EMAIL_TO",
    "EYOU_DISK_XT_STATUS",
    "EYOU_DISK_XT",
    "EYOU_DISK_NFS_XT",
    "DISK_NUM",
    "HA_SERVER",
];

/// The original mounted NFS with exactly these; keeping them keeps the
/// import faithful (one node mounts at a time, so local locks suffice).
const NFS_OPTIONS: &[&str] = &["tcp", "nolock", "rw"];

fn disk_mount_index(name: &str) -> Option<u32> {
    name.strip_prefix("DISK_MOUNT_")?.parse().ok()
}

fn is_mapped(name: &str) -> bool {
    STRICT_KEYS.contains(&name)
        || name == "EMAIL_SJ"
        || SUBJECT_KEYS.contains(&name)
        || MESSAGE_KEYS.contains(&name)
        || disk_mount_index(name).is_some()
}

/// Keys of the original we know and deliberately do not map, with why.
fn known_unmapped(name: &str) -> Option<&'static str> {
    Some(match name {
        "EYOU_NETWORK_CHECK" => {
            "mailha generates and names the network-check clone itself (see `mailha render cib`)"
        }
        "HA_NFS_PORT" => {
            "mailha probes NFS reachability itself; the port comes from the export in [[storage.mounts]]"
        }
        "NC_WAIT_TIME" => "mailha bounds every storage probe with its own deadline",
        _ => return None,
    })
}

struct Importer<'a> {
    file: String,
    parsed: &'a shellvars::Parsed,
    errors: Vec<LegacyError>,
    unmapped: Vec<Unmapped>,
}

/// What a value is for decides how strictly it is read.
#[derive(Clone, Copy)]
enum Want {
    /// Address, path, device, number: literal or an error.
    Literal(&'static str),
    /// A password: literal, but any byte is allowed, since the original
    /// double-quoted it and only `$` and backticks meant anything there.
    Secret,
}

impl<'a> Importer<'a> {
    fn last(&self, names: &[&str]) -> Option<&'a Assignment> {
        let parsed: &'a shellvars::Parsed = self.parsed;
        parsed
            .assignments
            .iter()
            .rev()
            .find(|a| names.contains(&a.name.as_str()))
    }

    fn note(&mut self, line: Option<usize>, key: &str, value: Option<String>, reason: String) {
        self.unmapped.push(Unmapped {
            line,
            key: key.to_string(),
            value,
            reason,
        });
    }

    fn note_at(&mut self, a: &Assignment, reason: impl Into<String>) {
        let value = (!PASS_KEYS.contains(&a.name.as_str())).then(|| shown(a));
        self.note(Some(a.line), &a.name, value, reason.into());
    }

    fn invalid(&mut self, a: &Assignment, message: impl Into<String>) {
        self.errors.push(LegacyError::Invalid {
            file: self.file.clone(),
            line: a.line,
            key: a.name.clone(),
            message: message.into(),
        });
    }

    fn shell(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(LegacyError::ShellSyntax {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// A `$VAR` is what the shell would have substituted from an earlier
    /// plain assignment in the same file; anything else (the environment,
    /// a computed value) is unknown to us.
    fn var_before(&self, name: &str, line: usize) -> Option<String> {
        let a = self
            .parsed
            .assignments
            .iter()
            .rev()
            .find(|a| a.name == name && a.line < line && !a.is_array)?;
        let mut s = String::new();
        for p in a.value() {
            match p {
                Part::Lit(l) => s.push_str(&l),
                _ => return None,
            }
        }
        Some(s)
    }

    /// The value of `a` as one literal string, or an error naming what a
    /// shell would have done with it.
    fn literal(&mut self, a: &Assignment, want: Want) -> Option<String> {
        let mut s = String::new();
        let mut ok = true;
        for (i, w) in a.words.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            for p in w {
                match p {
                    Part::Lit(l) => s.push_str(l),
                    Part::Var(v) => match self.var_before(v, a.line) {
                        Some(val) => s.push_str(&val),
                        None => {
                            self.invalid(
                                a,
                                format!("${v} is not set by an earlier line of this file"),
                            );
                            ok = false;
                        }
                    },
                    Part::Command(c) => {
                        self.shell(
                            a.line,
                            &a.name,
                            format!("{c} is a command substitution, refused here"),
                        );
                        ok = false;
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        if let Want::Literal(what) = want
            && let Some(c) = hostile_char(&s)
        {
            self.shell(
                a.line,
                &a.name,
                format!("{s:?} contains {c:?}, shell syntax that has no place in {what}"),
            );
            return None;
        }
        if matches!(want, Want::Secret) && s.chars().any(|c| c.is_control()) {
            self.invalid(a, "a password must not contain control characters");
            return None;
        }
        Some(s)
    }

    fn get(&mut self, names: &[&str], want: Want) -> Option<(&'a Assignment, String)> {
        let a = self.last(names)?;
        let v = self.literal(a, want)?;
        // The original's template ships every key; an empty one is unset.
        if v.trim().is_empty() {
            return None;
        }
        Some((a, v.trim().to_string()))
    }

    fn required(&mut self, name: &str, want: Want) -> Option<(&'a Assignment, String)> {
        if self.last(&[name]).is_none() {
            self.errors.push(LegacyError::Missing {
                file: self.file.clone(),
                key: name.to_string(),
            });
            return None;
        }
        let got = self.get(&[name], want);
        if got.is_none() && self.last(&[name]).is_some_and(|a| self.literal_ok(a)) {
            let a = self.last(&[name]).expect("checked");
            self.invalid(a, "empty, and mailha needs it");
        }
        got
    }

    /// Whether `literal` would succeed without recording errors (to avoid
    /// reporting an empty value on top of a refused one).
    fn literal_ok(&self, a: &Assignment) -> bool {
        a.words.iter().flatten().all(|p| match p {
            Part::Lit(l) => hostile_char(l).is_none(),
            Part::Var(v) => self.var_before(v, a.line).is_some(),
            Part::Command(_) => false,
        })
    }

    /// Free text (customer, subject, advice): substitutions are dropped,
    /// never run, and listed so the operator knows what went missing.
    fn text(&mut self, names: &[&str], why_dropped: &str) -> Option<(&'a Assignment, String)> {
        let a = self.last(names)?;
        let mut s = String::new();
        let mut dropped = Vec::new();
        for p in a.words.iter().flatten() {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => match self.var_before(v, a.line) {
                    Some(val) => s.push_str(&val),
                    None => dropped.push(format!("${{{v}}}")),
                },
                Part::Command(c) => dropped.push(c.clone()),
            }
        }
        if !dropped.is_empty() {
            let list: Vec<String> = dropped.iter().map(|d| format!("`{d}`")).collect();
            self.note_at(
                a,
                format!(
                    "{} not evaluated and dropped; {why_dropped}",
                    list.join(", ")
                ),
            );
        }
        let s: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        (!s.is_empty()).then_some((a, s))
    }

    fn ip(&mut self, a: &Assignment, s: &str) -> Option<IpAddr> {
        match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.invalid(a, format!("{s:?} is not an IP address"));
                None
            }
        }
    }

    fn abs_path(&mut self, a: &Assignment, s: &str) -> Option<String> {
        if !s.starts_with('/') || s.split('/').any(|c| c == "..") {
            self.invalid(a, format!("{s:?} is not an absolute path"));
            return None;
        }
        Some(s.to_string())
    }

    /// `-U <uuid>` and `-L <label>` are how the original named devices
    /// (blkid style); mailha writes them the fstab way.
    fn block_device(&mut self, a: &Assignment, s: &str) -> Option<String> {
        let s = s.trim();
        if let Some(u) = s.strip_prefix("-U") {
            let u = u.trim();
            if u.is_empty() || !u.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                self.invalid(a, format!("{u:?} is not a filesystem UUID"));
                return None;
            }
            return Some(format!("UUID={u}"));
        }
        if let Some(l) = s.strip_prefix("-L") {
            return Some(format!("LABEL={}", l.trim()));
        }
        if s.starts_with("UUID=") || s.starts_with("LABEL=") {
            return Some(s.to_string());
        }
        if !s.starts_with("/dev/") {
            self.invalid(
                a,
                format!("{s:?} is not a device: expected /dev/..., -U <uuid> or -L <label>"),
            );
            return None;
        }
        self.abs_path(a, s)
    }
}

/// The value as written, for messages: substitutions shown, not run.
fn shown(a: &Assignment) -> String {
    let words: Vec<String> = a.words.iter().map(|w| shellvars::display(w)).collect();
    let s = words.join(" ");
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// `ACME Corp.` -> `acme-corp`: a cluster name is an identifier, the
/// customer name is free text.
fn cluster_name(customer: Option<&str>) -> String {
    let mut out = String::new();
    for c in customer.unwrap_or("").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.chars().take(32).collect();
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "mail".into() } else { out }
}

/// `24` or `255.255.255.0`; the original passed either to IPaddr2.
fn prefix_of(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return (1..=32).contains(&n).then_some(n);
    }
    let m: Ipv4Addr = s.parse().ok()?;
    let bits = u32::from(m);
    let n = bits.leading_ones();
    (n > 0 && bits.checked_shl(n).unwrap_or(0) == 0).then_some(n as u8)
}

/// Reads `text` (the contents of `path`, named in messages) and returns the
/// equivalent `mailha.toml`. Never runs anything.
pub fn import(path: &Path, text: &str) -> Result<Imported, ImportFailed> {
    let parsed = shellvars::parse(text);
    let mut im = Importer {
        file: path.display().to_string(),
        parsed: &parsed,
        errors: Vec::new(),
        unmapped: Vec::new(),
    };

    refuse_trailing_commands(&mut im);

    let customer = im.text(&["EMAIL_SJ"], "the customer name is plain text");
    let cluster = cluster_section(&mut im);
    let vip = vip_section(&mut im);
    let network = network_section(&mut im);
    let (storage, fencing) = storage_section(&mut im);
    let services = services_section(&mut im);
    let alerts = alerts_section(&mut im, customer.as_ref().map(|(_, c)| c.clone()));
    report_the_rest(&mut im);

    if !im.errors.is_empty() {
        let mut errors = im.errors;
        errors.sort_by_key(|e| match e {
            LegacyError::ShellSyntax { line, .. } | LegacyError::Invalid { line, .. } => *line,
            LegacyError::Missing { .. } => usize::MAX,
        });
        errors.dedup();
        return Err(ImportFailed { errors });
    }

    let raw = RawConfig {
        cluster: Some(RawCluster {
            name: Some(cluster_name(customer.as_ref().map(|(_, c)| c.as_str()))),
            ..cluster
        }),
        vip,
        network,
        storage,
        services: Some(services),
        policy: None,
        fencing,
        alerts,
        exporter: None,
    };
    let body = toml::to_string(&raw).expect("raw config structs always serialize");
    let mut unmapped = im.unmapped;
    unmapped.sort_by_key(|u| u.line.unwrap_or(usize::MAX));
    let disabled_examples = parsed
        .disabled
        .iter()
        .filter(|d| {
            let rest = d.text.trim_start_matches('#').trim_start();
            rest.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .count();
    Ok(Imported {
        toml: header(path, &unmapped) + &body,
        unmapped,
        disabled_examples,
    })
}

/// The output explains its own origin, and carries the to-do list with it
/// so it survives after the terminal is closed.
fn header(path: &Path, unmapped: &[Unmapped]) -> String {
    let one_line = |s: String| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let mut h = format!(
        "# Imported by `mailha import-legacy` from {}.\n\
         # Review it, then run `mailha check`. This file may hold the SMTP\n\
         # password: keep it mode 0600.\n",
        one_line(path.display().to_string())
    );
    if !unmapped.is_empty() {
        h.push_str("#\n# Not carried over, or needing your attention:\n");
        for u in unmapped {
            h.push_str(&format!("# - {}\n", one_line(u.to_string())));
        }
    }
    h.push('\n');
    h
}

/// `EMAIL_VIP=1.2.3.4; reboot` or `EMAIL_VIP=1.2.3.4 rm -rf /`: the
/// original would have run the rest of the line as a command when it
/// sourced the file.
fn refuse_trailing_commands(im: &mut Importer) {
    for o in &im.parsed.others {
        let on_line: Vec<&Assignment> = im
            .parsed
            .assignments
            .iter()
            .filter(|a| a.line == o.line)
            .collect();
        match on_line.iter().find(|a| is_mapped(&a.name)) {
            Some(a) => {
                let (line, key) = (a.line, a.name.clone());
                im.shell(
                    line,
                    &key,
                    format!("{:?} follows the value and would run as a command", o.text),
                );
            }
            None => {
                let key = on_line
                    .first()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| "(command)".into());
                im.note(
                    Some(o.line),
                    &key,
                    None,
                    format!(
                        "{:?} is shell code, not a setting: never run, ignored",
                        o.text
                    ),
                );
            }
        }
    }
}

fn cluster_section(im: &mut Importer) -> RawCluster {
    let mut nodes = None;
    if let Some((a, v)) = im.required("EMAIL_SER_N", Want::Literal("an address")) {
        let addrs: Vec<&str> = v.split_whitespace().collect();
        if addrs.len() != 2 {
            im.invalid(
                a,
                format!(
                    "expected the two nodes' heartbeat addresses, found {}",
                    addrs.len()
                ),
            );
        } else {
            let ips: Vec<Option<IpAddr>> = addrs.iter().map(|s| im.ip(a, s)).collect();
            if ips.iter().all(Option::is_some) {
                nodes = Some(
                    ips.iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, ip)| RawNode {
                            name: Some(format!("node{}", i + 1)),
                            addresses: Some(vec![ip.to_string()]),
                        })
                        .collect(),
                );
                im.note(
                    Some(a.line),
                    &a.name,
                    Some(v.clone()),
                    "node names are placeholders: set them to each node's `uname -n`".into(),
                );
            }
        }
    }
    let ssh_port = im
        .get(&["SSH_PORT"], Want::Literal("a port"))
        .and_then(|(a, v)| match v.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                im.invalid(a, format!("{v:?} is not a port"));
                None
            }
        });
    RawCluster {
        name: None,
        token_timeout: None,
        ssh_port,
        nodes,
    }
}

fn vip_section(im: &mut Importer) -> Option<RawVip> {
    let address = im
        .required("EMAIL_VIP", Want::Literal("an address"))
        .and_then(|(a, v)| im.ip(a, &v));
    let prefix = im
        .required("EMAIL_VIP_NET", Want::Literal("a prefix length"))
        .and_then(|(a, v)| {
            let p = prefix_of(&v);
            if p.is_none() {
                im.invalid(
                    a,
                    format!("{v:?} is neither a prefix length (1-32) nor a netmask"),
                );
            }
            p
        });
    // `eth0:0` is an old-style alias: IPaddr2 builds the same name from nic
    // + label, so the label is kept as written ("0") and `ip addr` still
    // shows `eth0:0` where the operator's scripts expect it. validate.rs
    // checks that "nic:label" fits in 15 characters.
    let dev = im
        .required("EMAIL_VIP_DEV", Want::Literal("an interface name"))
        .map(|(_, v)| match v.split_once(':') {
            Some((nic, label)) => (nic.to_string(), Some(label.to_string())),
            None => (v, None),
        });
    let (nic, label) = dev?;
    Some(RawVip {
        address: Some(address?.to_string()),
        prefix: Some(prefix?),
        nic: Some(nic),
        label,
    })
}

fn network_section(im: &mut Importer) -> Option<RawNetwork> {
    let (a, v) = im.get(&["HA_PING_GW"], Want::Literal("an address"))?;
    let targets: Vec<String> = v
        .split_whitespace()
        .filter_map(|s| im.ip(a, s))
        .map(|ip| ip.to_string())
        .collect();
    Some(RawNetwork {
        ping_targets: Some(targets),
        ..Default::default()
    })
}

fn storage_section(im: &mut Importer) -> (Option<RawStorage>, Option<RawFencing>) {
    let mounts = mounts(im);
    let status = im
        .get(&["EYOU_DISK_XT_STATUS"], Want::Literal("0 or 1"))
        .and_then(|(a, v)| match v.as_str() {
            "0" => Some((a, false)),
            "1" => Some((a, true)),
            _ => {
                im.invalid(a, format!("{v:?} is neither 0 (off) nor 1 (on)"));
                None
            }
        });
    let disk = im.get(&["EYOU_DISK_XT"], Want::Literal("a device"));
    let nfs_file = im.get(&["EYOU_DISK_NFS_XT"], Want::Literal("a file name"));

    let mut lease = None;
    let mut fencing = None;
    match status {
        Some((_, true)) => {
            let first_nfs = mounts.iter().find_map(|m| m.nfs.clone());
            let has_block = mounts.iter().any(|m| m.device.is_some());
            // The original chose the variant by the storage it mounted;
            // with both kinds, the block heartbeat is the one that can be
            // checked without the network, so it wins.
            if let Some((a, v)) = disk.clone().filter(|_| has_block || first_nfs.is_none()) {
                lease = im.block_device(a, &v).map(|d| RawLease {
                    device: Some(d),
                    ..Default::default()
                });
                if let Some((f, _)) = nfs_file {
                    im.note_at(
                        f,
                        "the NFS heartbeat file is not used: the lease is on EYOU_DISK_XT",
                    );
                }
            } else if let Some(export) = first_nfs {
                let file = match nfs_file {
                    Some((a, v)) => {
                        if let Err(m) = crate::config::validate::plain_file_name(&v) {
                            im.invalid(a, m);
                        }
                        Some(v)
                    }
                    None => None,
                };
                lease = Some(RawLease {
                    nfs: Some(export),
                    file,
                    ..Default::default()
                });
                if let Some((a, _)) = disk {
                    im.note_at(
                        a,
                        "the block heartbeat is not used: the storage is NFS, the lease is a file on it",
                    );
                }
            } else {
                let a = im.last(&["EYOU_DISK_XT_STATUS"]).expect("status was read");
                im.invalid(
                    a,
                    "the disk heartbeat is on but EYOU_DISK_XT names no device and no NFS mount is configured",
                );
            }
        }
        Some((a, false)) => {
            fencing = Some(RawFencing {
                mode: Some("none".into()),
                ..Default::default()
            });
            im.note_at(
                a,
                "WARNING: the disk heartbeat was off, so the split-brain guard is OFF \
                 ([fencing] mode = \"none\"): both nodes can mount the storage after a split. \
                 Add [storage.lease] or use fencing mode \"sbd\"",
            );
            for (k, _) in [disk, nfs_file].into_iter().flatten() {
                im.note_at(k, "not used: EYOU_DISK_XT_STATUS is 0");
            }
        }
        None => {
            // No lease means no fence device, whether or not there is
            // shared storage: say so instead of leaving a config that
            // `check` refuses.
            fencing = Some(RawFencing {
                mode: Some("none".into()),
                ..Default::default()
            });
            im.note(
                None,
                "EYOU_DISK_XT_STATUS",
                None,
                "WARNING: not set, so no disk heartbeat: the split-brain guard is OFF \
                 ([fencing] mode = \"none\"). Add [storage.lease] or use fencing mode \"sbd\""
                    .into(),
            );
        }
    }
    let storage = (lease.is_some() || !mounts.is_empty()).then(|| RawStorage {
        lease,
        mounts: (!mounts.is_empty()).then_some(mounts),
    });
    (storage, fencing)
}

/// `DISK_MOUNT_n="device,mountpoint,fstype"`, in numeric order. Every
/// `DISK_MOUNT_n` present is read (the original's `eval` loop made more
/// than five work), and a disagreement with `DISK_NUM` is reported.
fn mounts(im: &mut Importer) -> Vec<RawMount> {
    let mut by_index: BTreeMap<u32, &Assignment> = BTreeMap::new();
    for a in &im.parsed.assignments {
        if let Some(n) = disk_mount_index(&a.name) {
            // Later lines win, as in the shell.
            by_index.insert(n, a);
        }
    }
    let mut out = Vec::new();
    for a in by_index.values() {
        let Some(v) = im.literal(a, Want::Literal("a device or path")) else {
            continue;
        };
        if v.trim().is_empty() {
            continue;
        }
        if let Some(m) = mount(im, a, v.trim()) {
            out.push(m);
        }
    }
    if let Some((a, v)) = im.get(&["DISK_NUM"], Want::Literal("a number")) {
        match v.parse::<usize>() {
            Ok(n) if n != out.len() => im.note_at(
                a,
                format!(
                    "says {n} but {} DISK_MOUNT_n line(s) hold a mount: all {} imported; \
                     the original mounted DISK_MOUNT_1..{n} only",
                    out.len(),
                    out.len()
                ),
            ),
            Ok(_) => {}
            Err(_) => im.invalid(a, format!("{v:?} is not a number")),
        }
    }
    out
}

fn mount(im: &mut Importer, a: &Assignment, v: &str) -> Option<RawMount> {
    let fields: Vec<&str> = v.split(',').map(str::trim).collect();
    let [device, mount_point, fstype] = fields[..] else {
        im.invalid(
            a,
            format!(
                "expected \"device,mountpoint,fstype\", found {} field(s)",
                fields.len()
            ),
        );
        return None;
    };
    let mount_point = im.abs_path(a, mount_point)?;
    let name = Some(default_mount_name(Path::new(&mount_point)));
    if fstype == "nfs" || fstype == "nfs4" {
        if device.split_once(":/").is_none() {
            im.invalid(a, format!("{device:?} is not an NFS export (host:/export)"));
            return None;
        }
        return Some(RawMount {
            name,
            nfs: Some(device.to_string()),
            mount_point: Some(mount_point),
            fstype: Some(fstype.to_string()),
            options: Some(NFS_OPTIONS.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        });
    }
    let device = im.block_device(a, device)?;
    Some(RawMount {
        name,
        device: Some(device),
        mount_point: Some(mount_point),
        fstype: Some(fstype.to_string()),
        ..Default::default()
    })
}

fn services_section(im: &mut Importer) -> RawServices {
    let (profile, mode) = match im.get(&["HA_SERVER"], Want::Literal("mail, gateway or 2in1")) {
        Some((_, v)) if v == "mail" => ("eyou", "mail"),
        Some((_, v)) if v == "2in1" => ("eyou", "2in1"),
        Some((_, v)) if v == "gateway" => ("gateway", "gateway"),
        Some((a, v)) => {
            im.invalid(a, format!("{v:?} is not mail, gateway or 2in1"));
            ("eyou", "mail")
        }
        None => {
            im.note(
                None,
                "HA_SERVER",
                None,
                "not set: imported as \"mail\" (eYou mail only), the original's default use".into(),
            );
            ("eyou", "mail")
        }
    };
    RawServices {
        profile: Some(profile.into()),
        mode: Some(mode.into()),
        ..Default::default()
    }
}

fn alerts_section(im: &mut Importer, customer: Option<String>) -> Option<RawAlerts> {
    let channel = im.get(&["CHECK_SEND_MESSAGE"], Want::Literal("0, 1 or 2"));
    let mail = match &channel {
        None => true,
        Some((_, v)) if v == "0" => true,
        Some((a, v)) if v == "1" => {
            im.note_at(
                a,
                "monitoring-platform channel has no equivalent; configure [alerts.webhook]",
            );
            false
        }
        Some((a, v)) if v == "2" => {
            im.note_at(
                a,
                "custom message_agent edits have no equivalent; configure [alerts.command] with an argv",
            );
            false
        }
        Some((a, v)) => {
            let a = *a;
            im.invalid(a, format!("{v:?} is not 0 (mail), 1 or 2"));
            false
        }
    };
    let subject = im
        .text(
            SUBJECT_KEYS,
            "mailha's own subject already carries the time and the host",
        )
        .map(|(_, s)| s);
    let advice = im
        .text(MESSAGE_KEYS, "the advice text is plain text")
        .map(|(_, s)| s);

    let smtp = if mail {
        smtp(im)
    } else {
        let keys: Vec<&Assignment> = SMTP_KEYS.iter().filter_map(|k| im.last(&[k])).collect();
        for a in keys {
            im.note_at(
                a,
                "not imported: the original did not send mail (CHECK_SEND_MESSAGE is not 0)",
            );
        }
        None
    };
    if customer.is_none() && subject.is_none() && advice.is_none() && smtp.is_none() {
        return None;
    }
    Some(RawAlerts {
        customer,
        subject,
        advice,
        smtp,
        ..Default::default()
    })
}

fn smtp(im: &mut Importer) -> Option<RawSmtp> {
    let relay = im.get(&["EMAIL_SERVER"], Want::Literal("a host:port"));
    let from = im.get(FROM_KEYS, Want::Literal("a mail address"));
    let password = im.get(PASS_KEYS, Want::Secret);
    let to = im.get(TO_KEYS, Want::Literal("a mail address"));
    let (relay_a, relay) = relay?;
    if relay.contains(char::is_whitespace) {
        im.invalid(relay_a, format!("{relay:?} is not one host:port"));
    }
    im.note_at(
        relay_a,
        "mailha requires STARTTLS by default; the original's sendEmail fell back to plain \
         SMTP when the relay offered no TLS: set starttls = false only for such a relay",
    );
    let from = from.map(|(_, f)| f);
    // sendEmail logged in as the sender: the original had no separate user.
    let (user, password) = match password {
        Some((_, p)) => (from.clone(), Some(p)),
        None => (None, None),
    };
    let to = to.map(|(_, t)| {
        t.split([' ', '\t', ',', ';'])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    });
    Some(RawSmtp {
        relay: Some(relay),
        user,
        password,
        from,
        to,
        ..Default::default()
    })
}

/// Everything not read above: the original's known-but-unneeded keys,
/// the computed "defaults" tail, and anything else.
fn report_the_rest(im: &mut Importer) {
    let mut seen_last: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &im.parsed.assignments {
        seen_last.insert(a.name.as_str(), a.line);
    }
    let assignments: Vec<&Assignment> = im.parsed.assignments.iter().collect();
    for a in assignments {
        if seen_last.get(a.name.as_str()) != Some(&a.line) {
            im.note_at(
                a,
                format!("overridden by line {}", seen_last[a.name.as_str()]),
            );
            continue;
        }
        if is_mapped(&a.name) {
            continue;
        }
        let reason = match known_unmapped(&a.name) {
            Some(r) => r.to_string(),
            None if a.words.iter().flatten().any(|p| !matches!(p, Part::Lit(_))) => {
                "computed by the shell (command substitution or variables), never evaluated; \
                 mailha finds its own paths"
                    .into()
            }
            None => "not a setting mailha knows; no equivalent".into(),
        };
        im.note_at(a, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "EMAIL_VIP=\"172.16.100.10\"\nEMAIL_VIP_DEV=\"eth0\"\n\
        EMAIL_VIP_NET=\"24\"\nEMAIL_SER_N=\"10.10.10.10 10.10.10.20\"\n";

    fn imp(extra: &str) -> Result<Imported, ImportFailed> {
        import(Path::new("ha_conf.ini"), &format!("{MINIMAL}{extra}"))
    }

    fn raw(extra: &str) -> RawConfig {
        let im = imp(extra).unwrap_or_else(|e| panic!("{e}"));
        crate::config::parse_raw(&im.toml).expect("output parses as mailha.toml")
    }

    fn err(extra: &str) -> String {
        imp(extra).expect_err("must be refused").to_string()
    }

    #[test]
    fn an_old_style_alias_becomes_nic_plus_label() {
        let r = raw("EMAIL_VIP_DEV=\"eth0:0\"\n");
        let v = r.vip.unwrap();
        assert_eq!(v.nic.as_deref(), Some("eth0"));
        assert_eq!(v.label.as_deref(), Some("0"));
    }

    #[test]
    fn a_netmask_is_read_as_a_prefix() {
        assert_eq!(prefix_of("255.255.255.0"), Some(24));
        assert_eq!(prefix_of("255.0.255.0"), None);
        assert_eq!(prefix_of("0"), None);
        assert_eq!(prefix_of("33"), None);
    }

    #[test]
    fn the_cluster_name_is_the_customer_made_an_identifier() {
        assert_eq!(cluster_name(Some("ACME Corp.")), "acme-corp");
        assert_eq!(cluster_name(Some("某公司")), "mail");
        assert_eq!(cluster_name(None), "mail");
    }

    #[test]
    fn uuid_devices_are_written_the_fstab_way() {
        let r = raw(
            "EYOU_DISK_XT_STATUS=\"1\"\nEYOU_DISK_XT=\"-U 74efe5c0-aaaa\"\n\
             DISK_NUM=1\nDISK_MOUNT_1=\"-U 0b6b6a0e-bbbb,/iscsi_data,ext4\"\n",
        );
        let s = r.storage.unwrap();
        assert_eq!(
            s.lease.unwrap().device.as_deref(),
            Some("UUID=74efe5c0-aaaa")
        );
        assert_eq!(
            s.mounts.unwrap()[0].device.as_deref(),
            Some("UUID=0b6b6a0e-bbbb")
        );
    }

    #[test]
    fn on_nfs_the_heartbeat_file_becomes_a_lease_file_on_the_export() {
        let r = raw(
            "EYOU_DISK_XT_STATUS=\"1\"\nEYOU_DISK_NFS_XT=\".eyou_check_disk_time_12345\"\n\
             DISK_NUM=1\nDISK_MOUNT_1=\"172.16.100.249:/nfs_data,/nfs_data,nfs\"\n",
        );
        let l = r.storage.unwrap().lease.unwrap();
        assert_eq!(l.nfs.as_deref(), Some("172.16.100.249:/nfs_data"));
        assert_eq!(l.file.as_deref(), Some(".eyou_check_disk_time_12345"));
        assert!(r.fencing.is_none(), "lease fencing is the default");
    }

    #[test]
    fn heartbeat_off_turns_fencing_off_and_says_so_loudly() {
        let im = imp("EYOU_DISK_XT_STATUS=\"0\"\nDISK_MOUNT_1=\"/dev/sdb1,/data,ext4\"\n").unwrap();
        assert!(im.toml.contains("[fencing]\nmode = \"none\""));
        let u = im
            .unmapped
            .iter()
            .find(|u| u.key == "EYOU_DISK_XT_STATUS")
            .unwrap();
        assert!(u.reason.starts_with("WARNING"), "{u}");
        assert!(u.reason.contains("guard is OFF"), "{u}");
    }

    #[test]
    fn every_disk_mount_is_read_and_a_wrong_disk_num_is_reported() {
        let im = imp(
            "EYOU_DISK_XT_STATUS=0\nDISK_NUM=\"1\"\nDISK_MOUNT_1=\"/dev/sdb1,/a,ext4\"\n\
             DISK_MOUNT_2=\"/dev/sdc1,/b,xfs\"\nDISK_MOUNT_10=\"/dev/sdd1,/c,ext4\"\n",
        )
        .unwrap();
        let r = crate::config::parse_raw(&im.toml).unwrap();
        let points: Vec<String> = r
            .storage
            .unwrap()
            .mounts
            .unwrap()
            .into_iter()
            .map(|m| m.mount_point.unwrap())
            .collect();
        assert_eq!(points, ["/a", "/b", "/c"]);
        assert!(
            im.unmapped
                .iter()
                .any(|u| u.key == "DISK_NUM" && u.reason.contains("says 1 but 3"))
        );
    }

    #[test]
    fn a_substitution_in_the_subject_is_dropped_and_reported() {
        let im = imp("EMAIL_SJ=ACME\nSUBJECT=\"[${EMAIL_SJ}] HA $(date +%F) on $(hostname)\"\n")
            .unwrap();
        let r = crate::config::parse_raw(&im.toml).unwrap();
        assert_eq!(r.alerts.unwrap().subject.as_deref(), Some("[ACME] HA on"));
        let u = im.unmapped.iter().find(|u| u.key == "SUBJECT").unwrap();
        assert!(u.reason.contains("`$(date +%F)`, `$(hostname)`"), "{u}");
    }

    #[test]
    fn the_password_is_never_echoed_in_notes() {
        let im = imp("CHECK_SEND_MESSAGE=1\nFROM_PASS=\"hunter2\"\n").unwrap();
        let listed: Vec<String> = im.unmapped.iter().map(ToString::to_string).collect();
        assert!(listed.iter().any(|l| l.contains("FROM_PASS")));
        assert!(!listed.iter().any(|l| l.contains("hunter2")));
        assert!(!im.toml.contains("hunter2"));
    }

    #[test]
    fn a_password_may_hold_punctuation_but_not_a_substitution() {
        let r = raw("EMAIL_SERVER=mx:25\nFROM=a@b.c\nTO=c@d.e\nFROM_PASS=\"p;a|s&s\"\n");
        let smtp = r.alerts.unwrap().smtp.unwrap();
        assert_eq!(smtp.password.as_deref(), Some("p;a|s&s"));
        assert_eq!(smtp.user.as_deref(), Some("a@b.c"));
        assert!(err("FROM_PASS=\"$(cat /etc/shadow)\"\n").contains("FROM_PASS"));
    }

    #[test]
    fn shell_syntax_in_an_address_names_file_line_and_key() {
        let e = err("HA_PING_GW=\"`reboot`\"\n");
        assert_eq!(
            e,
            "ha_conf.ini:5: HA_PING_GW: `reboot` is a command substitution, refused here; \
             this file is read as data and nothing was run"
        );
    }

    #[test]
    fn a_command_after_a_mapped_value_is_refused() {
        assert!(err("HA_PING_GW=172.16.100.254; reboot\n").contains(":5: HA_PING_GW:"));
        assert!(err("SSH_PORT=22 rm -rf /\n").contains(":5: SSH_PORT:"));
    }

    #[test]
    fn all_errors_are_reported_at_once_in_line_order() {
        let e = import(
            Path::new("x.ini"),
            "EMAIL_VIP=\"$(id)\"\nEMAIL_VIP_DEV=eth0\nEMAIL_VIP_NET=99\n",
        )
        .unwrap_err();
        let lines: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("x.ini:1: EMAIL_VIP:"));
        assert!(lines[1].starts_with("x.ini:3: EMAIL_VIP_NET:"));
        assert_eq!(lines[2], "x.ini: EMAIL_SER_N: required but missing");
    }

    #[test]
    fn the_tail_defaults_and_unknown_keys_are_listed_with_a_reason() {
        let im =
            imp("HA_NFS_PORT=\"2049\"\nHA_PATH=$(cd $(dirname $0)/..; pwd)\nFOO=bar\n").unwrap();
        let reason = |k: &str| {
            im.unmapped
                .iter()
                .find(|u| u.key == k)
                .map(|u| u.reason.clone())
                .unwrap()
        };
        assert!(reason("HA_NFS_PORT").contains("probes NFS"));
        assert!(reason("HA_PATH").contains("never evaluated"));
        assert!(reason("FOO").contains("no equivalent"));
    }

    #[test]
    fn every_ha_server_value_gives_a_config_that_passes_check() {
        for (ha_server, profile, mode) in [
            ("mail", "eyou", "mail"),
            ("2in1", "eyou", "2in1"),
            ("gateway", "gateway", "gateway"),
        ] {
            let im = imp(&format!("HA_SERVER=\"{ha_server}\"\n")).unwrap();
            let loaded = crate::config::load_str(Path::new("m.toml"), &im.toml, Some(0o600))
                .unwrap_or_else(|e| panic!("{ha_server}: {e}"));
            let s = &loaded.config.services;
            assert_eq!(s.profile.map(|p| p.as_str()), Some(profile));
            assert_eq!(s.mode.as_str(), mode);
        }
        assert!(err("HA_SERVER=\"both\"\n").contains(":5: HA_SERVER: \"both\""));
    }

    #[test]
    fn a_custom_message_agent_is_listed_with_the_command_channel_as_the_way_out() {
        let im = imp("CHECK_SEND_MESSAGE=\"2\"\n").unwrap();
        let u = im
            .unmapped
            .iter()
            .find(|u| u.key == "CHECK_SEND_MESSAGE")
            .unwrap();
        assert!(u.reason.contains("[alerts.command]"), "{u}");
    }

    #[test]
    fn a_redefined_key_uses_the_last_line_like_the_shell() {
        let im = imp("SSH_PORT=22\nSSH_PORT=2222\n").unwrap();
        assert!(im.toml.contains("ssh_port = 2222"));
        assert!(
            im.unmapped
                .iter()
                .any(|u| u.line == Some(5) && u.reason == "overridden by line 6")
        );
    }
}
