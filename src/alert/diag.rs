//! The diagnostics bundle attached to an incident mail (and put in the
//! webhook's and the command's JSON): cluster status, the cluster's recent
//! logs and daemon states, taken when the incident is composed. It goes to
//! every channel, so it holds what an administrator needs to see why the
//! cluster acted, and no more (`[alerts.diagnostics]` in docs/config.md):
//!
//! - nothing is copied from disk (so never /etc/shadow, never a config
//!   holding a password): only the output of a fixed list of read-only
//!   commands, each run by `exec::run` with a deadline and an output cap;
//! - the logs are the journal of the cluster's own units (`LOG_UNITS`:
//!   corosync, Pacemaker with every agent's messages, the lease keeper),
//!   at most `log_lines` of the last hour; never the mail daemons' logs,
//!   which are the mail traffic itself;
//! - secrets are always removed: the configured SMTP password and the
//!   webhook URL wherever they appear, and the value after `=` or `:` on
//!   any line naming a secret word (`password`, `token`, ...);
//! - personal data is replaced (`redact_personal`, on by default): a mail
//!   address by `[mail-N]`, the value of a `user=`/`sasl_username=`/...
//!   field by `[user-N]`, an IP address by `[ip-N]`, numbered in order of
//!   appearance so that one client's lines still read as one client's.
//!   The cluster's own addresses (nodes, VIP, ping targets), the addresses
//!   bound on this machine, loopback and the unspecified address are kept:
//!   they are not personal and the bundle is read by them. Host names are
//!   kept;
//! - the whole is cut at `max_lines` lines or `max_bytes` bytes, the logs
//!   last, so a cut takes logs before status.

use crate::config::model::Diagnostics;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The units whose journal goes into the bundle.
pub const LOG_UNITS: &[&str] = &[
    "corosync.service",
    "pacemaker.service",
    "mailha-lease.service",
];

/// What is gathered, in order: a title and the argv (no shell).
pub fn commands(opts: &Diagnostics) -> Vec<(&'static str, Vec<String>)> {
    let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut v = vec![
        (
            "cluster status",
            argv(&["crm_mon", "--one-shot", "--inactive", "--failcounts"]),
        ),
        (
            "where the VIP runs",
            argv(&["crm_resource", "--locate", "--resource", crate::cib::VIP_ID]),
        ),
        ("corosync links", argv(&["corosync-cfgtool", "-s"])),
        (
            "failed units",
            argv(&["systemctl", "--no-pager", "--failed"]),
        ),
        (
            "running services",
            argv(&[
                "systemctl",
                "--no-pager",
                "--plain",
                "--type=service",
                "--state=running",
            ]),
        ),
        ("file systems", argv(&["df", "-hT"])),
        ("addresses", argv(&["ip", "-brief", "address"])),
    ];
    if opts.log_lines > 0 {
        let mut j = argv(&[
            "journalctl",
            "--no-pager",
            "--since",
            "-1h",
            "-o",
            "short-iso",
        ]);
        j.push("-n".into());
        j.push(opts.log_lines.to_string());
        for u in LOG_UNITS {
            j.push("-u".into());
            j.push(u.to_string());
        }
        v.push(("recent cluster logs", j));
    }
    v
}

/// Each command's time limit.
const DEADLINE: Duration = Duration::from_secs(5);

/// Words after which a value is a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
];

/// Blanks secrets in `text`: every occurrence of a known secret, and the
/// value after `=` or `:` on any line naming a secret word.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut l = line.to_string();
        for s in secrets.iter().filter(|s| s.len() >= 3) {
            l = l.replace(s.as_str(), "[redacted]");
        }
        let lower = l.to_ascii_lowercase();
        if let Some(w) = SECRET_WORDS
            .iter()
            .filter_map(|w| lower.find(w).map(|i| i + w.len()))
            .min()
            && let Some(sep) = l[w..].find(['=', ':']).map(|i| w + i)
        {
            let nl = if l.ends_with('\n') { "\n" } else { "" };
            l = format!("{} [redacted]{nl}", &l[..=sep]);
        }
        out.push_str(&l);
    }
    out
}

/// Field names whose value is a user name (Postfix, Dovecot, PAM).
const USER_KEYS: &[&str] = &["user", "sasl_username", "ruser", "username", "login"];

/// Characters of a token: what mail addresses, IPv4/IPv6 addresses (with
/// a port) and user names are made of. Everything else separates tokens
/// and is copied as is.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '%' | '+' | '-' | '@')
}

/// Numbered stand-ins, the same for the same value within one bundle.
#[derive(Default)]
struct StandIns {
    given: HashMap<(&'static str, String), String>,
    count: HashMap<&'static str, usize>,
}

impl StandIns {
    fn of(&mut self, kind: &'static str, value: &str) -> String {
        if let Some(s) = self.given.get(&(kind, value.to_string())) {
            return s.clone();
        }
        let n = self.count.entry(kind).or_insert(0);
        *n += 1;
        let s = format!("[{kind}-{n}]");
        self.given.insert((kind, value.to_string()), s.clone());
        s
    }
}

fn is_mail_address(t: &str) -> bool {
    let Some((local, domain)) = t.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
}

/// The IP address a token is, alone or with a `:port` after it.
fn ip_of(t: &str) -> Option<IpAddr> {
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, port) = t.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Replaces mail addresses, user names and IP addresses other than
/// `keep` (and loopback, unspecified) by numbered stand-ins.
pub fn redact_personal(text: &str, keep: &[IpAddr]) -> String {
    let mut names = StandIns::default();
    let mut out = String::with_capacity(text.len());
    // Set after a USER_KEYS token followed by `=`: the next token is a name.
    let mut user_next = false;
    let mut rest = text;
    while !rest.is_empty() {
        let sep_len = rest.find(token_char).unwrap_or(rest.len());
        let sep = &rest[..sep_len];
        out.push_str(sep);
        if !sep.is_empty() && !matches!(sep, "=" | "=<" | "=\"" | "=[" | "=<'" | "='") {
            user_next = false;
        }
        rest = &rest[sep_len..];
        let tok_len = rest.find(|c| !token_char(c)).unwrap_or(rest.len());
        if tok_len == 0 {
            continue;
        }
        let tok = &rest[..tok_len];
        rest = &rest[tok_len..];
        // A sentence's full stop or a list's colon is not part of it.
        let core = tok.trim_end_matches(['.', ':']);
        let tail = &tok[core.len()..];
        let replaced = if is_mail_address(core) {
            Some(names.of("mail", core))
        } else if let Some(ip) = ip_of(core) {
            (!(ip.is_loopback() || ip.is_unspecified() || keep.contains(&ip)))
                .then(|| names.of("ip", &ip.to_string()))
        } else if user_next {
            Some(names.of("user", core))
        } else {
            None
        };
        user_next = false;
        match replaced {
            Some(r) => {
                out.push_str(&r);
                out.push_str(tail);
            }
            None => {
                out.push_str(tok);
                user_next =
                    USER_KEYS.iter().any(|k| tok.eq_ignore_ascii_case(k)) && rest.starts_with('=');
            }
        }
    }
    out
}

/// `text` cut to at most `max_lines` lines and `max_bytes` bytes, the
/// last line saying what was cut.
pub fn bound(text: &str, max_lines: usize, max_bytes: usize) -> String {
    let total = text.lines().count();
    if total <= max_lines && text.len() <= max_bytes {
        return text.to_string();
    }
    let note = |kept: usize| {
        format!(
            "[... {} more lines cut: [alerts.diagnostics] max_lines = {max_lines}, max_bytes = {max_bytes}]\n",
            total - kept
        )
    };
    // Room for the note (its longest form) within both limits.
    let lines = max_lines.saturating_sub(1);
    let bytes = max_bytes.saturating_sub(note(0).len());
    let mut out = String::new();
    let mut kept = 0;
    for line in text.split_inclusive('\n') {
        if kept >= lines || out.len() + line.len() > bytes {
            break;
        }
        out.push_str(line);
        kept += 1;
    }
    out + &note(kept)
}

/// Runs the commands and returns the bundle, redacted and bounded as
/// `opts` says; empty when `opts.enabled` is false. Never fails: a missing
/// or hung command is noted in the bundle.
pub fn collect(opts: &Diagnostics, secrets: &[String]) -> String {
    if !opts.enabled {
        return String::new();
    }
    let mut out = format!(
        "mailha {} diagnostics, taken {}\n",
        env!("CARGO_PKG_VERSION"),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    let run_opts = crate::exec::Opts {
        max_output: opts.max_bytes as usize,
        linger: Duration::from_millis(500),
        ..Default::default()
    };
    for (title, argv) in commands(opts) {
        out += &format!("\n===== {title}: {} =====\n", argv.join(" "));
        match crate::exec::run_opts(&argv, &[("LC_ALL", "C.UTF-8")], None, DEADLINE, run_opts) {
            Ok(o) => {
                out += &o.stdout;
                if !o.success() {
                    out += &o.stderr;
                    match o.code {
                        Some(c) => out += &format!("[exit code {c}]\n"),
                        None => out += "[killed by a signal]\n",
                    }
                }
            }
            Err(e) => out += &format!("[not available: {e}]\n"),
        }
    }
    let mut out = redact(&out, secrets);
    if opts.redact_personal {
        let mut keep = opts.keep.clone();
        keep.extend(crate::host::bound_addresses());
        out = redact_personal(&out, &keep);
    }
    bound(&out, opts.max_lines as usize, opts.max_bytes as usize)
}

/// The node running the VIP, asked from Pacemaker (`crm_resource
/// --locate`), or None when that cannot be known.
pub fn vip_location() -> Option<String> {
    let argv = ["crm_resource", "--locate", "--resource", crate::cib::VIP_ID];
    let o = crate::exec::run_opts(
        &argv,
        &[("LC_ALL", "C.UTF-8")],
        None,
        DEADLINE,
        crate::exec::Opts {
            max_output: 4096,
            linger: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .ok()?;
    // "resource vip is running on: mx1"
    let node = o
        .stdout
        .lines()
        .find_map(|l| l.split_once("is running on:"))?
        .1
        .trim();
    let node = super::event::clean(node.split_whitespace().next()?, super::event::MAX_NAME);
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_values_are_blanked() {
        let text = "smtp_sasl_password_maps = hash:/etc/postfix/sasl\nFROM_PASS: hunter2\nAPI_KEY=abc\nplain line\n";
        let r = redact(text, &[]);
        assert!(r.contains("smtp_sasl_password_maps = [redacted]\n"), "{r}");
        assert!(r.contains("API_KEY= [redacted]\n"), "{r}");
        assert!(r.contains("plain line\n"));
    }

    #[test]
    fn the_configured_password_is_blanked_anywhere() {
        let r = redact(
            "AUTH PLAIN ok as ha with s3cr3t-pw in log\n",
            &["s3cr3t-pw".into()],
        );
        assert!(!r.contains("s3cr3t-pw"), "{r}");
    }

    #[test]
    fn mail_addresses_user_names_and_client_ips_are_replaced_consistently() {
        let keep: Vec<IpAddr> = vec!["203.0.113.11".parse().unwrap()];
        let log = "\
2024-05-01T12:34:56+0200 mx1 postfix/smtpd[42]: connect from unknown[198.51.100.7]
2024-05-01T12:34:57+0200 mx1 postfix/qmgr[43]: 4B1: from=<alice@example.com>, size=512
2024-05-01T12:34:58+0200 mx1 dovecot[44]: auth failed, user=<bob>, rip=198.51.100.7, lip=203.0.113.11
2024-05-01T12:34:59+0200 mx1 postfix/smtpd[42]: sasl_username=carol@example.org client=[2001:db8::5]:587
2024-05-01T12:35:00+0200 mx1 pacemaker-execd[5]: notice: postfix_monitor_20000 on 127.0.0.1:25 from Alice@Example.com.
link eth0 aa:bb:cc:dd:ee:ff, mailha 0.1.0, corosync 3.1.7, listening on 0.0.0.0:25 and ::1
";
        let r = redact_personal(log, &keep);
        for gone in [
            "198.51.100.7",
            "alice@",
            "Alice@",
            "bob",
            "carol",
            "2001:db8::5",
        ] {
            assert!(!r.contains(gone), "{gone} left in:\n{r}");
        }
        // One client is one stand-in throughout; a new one gets the next.
        assert!(r.contains("connect from unknown[[ip-1]]"), "{r}");
        assert!(r.contains("rip=[ip-1], lip=203.0.113.11"), "{r}");
        assert!(r.contains("from=<[mail-1]>"), "{r}");
        assert!(r.contains("user=<[user-1]>"), "{r}");
        assert!(r.contains("sasl_username=[mail-2]"), "{r}");
        assert!(r.contains("client=[[ip-2]]:587"), "{r}");
        assert!(r.contains("from [mail-3]."), "{r}");
        // Timestamps, MACs, versions, loopback and the cluster's own
        // address stay as they were.
        for kept in [
            "2024-05-01T12:34:56+0200",
            "aa:bb:cc:dd:ee:ff",
            "mailha 0.1.0",
            "corosync 3.1.7",
            "127.0.0.1:25",
            "0.0.0.0:25",
            "::1",
            "postfix/smtpd[42]",
        ] {
            assert!(r.contains(kept), "{kept} lost in:\n{r}");
        }
    }

    #[test]
    fn the_bundle_is_cut_to_its_lines_and_bytes() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let r = bound(&text, 20, 100_000);
        assert_eq!(r.lines().count(), 20, "{r}");
        assert!(
            r.ends_with(
                "981 more lines cut: [alerts.diagnostics] max_lines = 20, max_bytes = 100000]\n"
            ),
            "{r}"
        );
        let r = bound(&text, 10_000, 4096);
        assert!(r.len() <= 4096, "{}", r.len());
        assert!(r.starts_with("line 0\n"));
        assert_eq!(bound("short\n", 20, 4096), "short\n");
    }

    #[test]
    fn no_command_reads_a_file_like_etc_shadow() {
        for (_, argv) in commands(&Diagnostics::default()) {
            assert!(
                !argv
                    .iter()
                    .any(|a| a.contains("shadow") || a.starts_with('/')),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn the_logs_are_the_cluster_units_only_and_as_many_as_configured() {
        let logs = |n| {
            let opts = Diagnostics {
                log_lines: n,
                ..Default::default()
            };
            commands(&opts)
                .into_iter()
                .find(|(_, a)| a[0] == "journalctl")
                .map(|(_, a)| a)
        };
        let j = logs(42).unwrap();
        assert!(j.windows(2).any(|w| w == ["-n", "42"]), "{j:?}");
        let units: Vec<&String> = j
            .windows(2)
            .filter(|w| w[0] == "-u")
            .map(|w| &w[1])
            .collect();
        assert_eq!(units, LOG_UNITS, "{j:?}");
        assert!(logs(0).is_none());
    }

    #[test]
    fn collecting_never_fails_and_keeps_to_its_bounds() {
        let opts = Diagnostics {
            max_bytes: 4096,
            max_lines: 40,
            ..Default::default()
        };
        let b = collect(&opts, &[]);
        assert!(b.contains("===== cluster status"), "{b}");
        assert!(b.len() <= 4096 && b.lines().count() <= 40, "{b}");
        let off = Diagnostics {
            enabled: false,
            ..Default::default()
        };
        assert_eq!(collect(&off, &[]), "");
    }
}
