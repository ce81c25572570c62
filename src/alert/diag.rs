//! The diagnostics bundle attached to an incident mail: cluster status,
//! recent logs and daemon states, taken when the mail is composed.
//!
//! Unlike the original's snapshot, nothing is copied from disk (so never
//! /etc/shadow, never a config holding a password): only the output of a
//! fixed list of read-only commands, each bounded in time and size, and
//! then redacted: lines that look like `password=...` lose their value, and
//! the configured SMTP password is blanked wherever it appears.

use super::send::run_bounded;
use std::time::Duration;

/// What is gathered: a title and the argv (no shell) of each command.
pub const COMMANDS: &[(&str, &[&str])] = &[
    (
        "cluster status",
        &["crm_mon", "--one-shot", "--inactive", "--failcounts"],
    ),
    (
        "where the VIP runs",
        &["crm_resource", "--locate", "--resource", crate::cib::VIP_ID],
    ),
    ("corosync links", &["corosync-cfgtool", "-s"]),
    ("failed units", &["systemctl", "--no-pager", "--failed"]),
    (
        "running services",
        &[
            "systemctl",
            "--no-pager",
            "--plain",
            "--type=service",
            "--state=running",
        ],
    ),
    (
        "recent logs",
        &[
            "journalctl",
            "--no-pager",
            "--since",
            "-1h",
            "-n",
            "300",
            "-o",
            "short-iso",
        ],
    ),
    ("file systems", &["df", "-hT"]),
    ("addresses", &["ip", "-brief", "address"]),
];

/// Each command's time limit and output limit.
const DEADLINE: Duration = Duration::from_secs(5);
const MAX_OUT: usize = 256 * 1024;

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

/// Runs the commands and returns the redacted bundle. Never fails: a
/// missing or hung command is noted in the bundle.
pub fn collect(secrets: &[String]) -> String {
    let mut out = format!(
        "mailha {} diagnostics, taken {}\n",
        env!("CARGO_PKG_VERSION"),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    for (title, argv) in COMMANDS {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        out += &format!("\n===== {title}: {} =====\n", argv.join(" "));
        match run_bounded(&argv, b"", DEADLINE, MAX_OUT) {
            Ok(f) => {
                out += &String::from_utf8_lossy(&f.stdout);
                if !f.status.success() {
                    out += &format!("[{}]\n", f.status);
                }
            }
            Err(e) => out += &format!("[not available: {e}]\n"),
        }
    }
    redact(&out, secrets)
}

/// The node running the VIP, asked from Pacemaker (`crm_resource
/// --locate`), or None when that cannot be known.
pub fn vip_location() -> Option<String> {
    let argv: Vec<String> = ["crm_resource", "--locate", "--resource", crate::cib::VIP_ID]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let f = run_bounded(&argv, b"", DEADLINE, 4096).ok()?;
    // "resource vip is running on: mx1"
    let text = String::from_utf8_lossy(&f.stdout);
    let node = text
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
    fn no_command_reads_a_file_like_etc_shadow() {
        for (_, argv) in COMMANDS {
            assert!(
                !argv
                    .iter()
                    .any(|a| a.contains("shadow") || a.starts_with('/')),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn collecting_never_fails_even_without_a_cluster() {
        let b = collect(&[]);
        assert!(b.contains("===== cluster status"));
        assert!(b.contains("===== recent logs"));
    }
}
