//! `mailha report`: one bundle for support, from both nodes, with the
//! secrets out of it. The pure parts: which of Pacemaker's saved
//! transition inputs fall in the window, the redaction every collected
//! text goes through, and the manifest that says what is inside and what
//! could not be collected.

use std::path::PathBuf;
use std::time::SystemTime;

/// At most this many transition inputs per node (the newest in the window).
pub const MAX_INPUTS: usize = 30;
/// At most this much of one collected text (the rest cut, and said so).
pub const MAX_BYTES: usize = 8 << 20;

/// The transition inputs (`pe-input-N.bz2`, `pe-warn-*`, `pe-error-*`)
/// written in `[from, to]`, newest first, at most `MAX_INPUTS`.
pub fn inputs_in_window(
    files: &[(PathBuf, SystemTime)],
    from: SystemTime,
    to: SystemTime,
) -> Vec<PathBuf> {
    let mut v: Vec<&(PathBuf, SystemTime)> = files
        .iter()
        .filter(|(p, t)| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("pe-") && name.ends_with(".bz2") && *t >= from && *t <= to
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v.into_iter()
        .take(MAX_INPUTS)
        .map(|(p, _)| p.clone())
        .collect()
}

/// Every text in the bundle goes through this: the known secrets (the
/// relay password, the webhook URL and its token part) wherever they
/// appear, and the value after any secret word (`password`, `token`...),
/// which covers a CIB nvpair named like one. Then the size bound.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let out = crate::alert::diag::redact(text, secrets);
    if out.len() <= MAX_BYTES {
        return out;
    }
    let mut cut = MAX_BYTES;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n[mailha report: cut at {MAX_BYTES} bytes of {}]\n",
        &out[..cut],
        out.len()
    )
}

/// One entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// Its path in the bundle (`node1/cib.xml`).
    pub path: String,
    /// Where it came from (the command or file).
    pub from: String,
    /// Bytes in the bundle; None when it could not be collected.
    pub bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The manifest a person reads first.
pub fn manifest(window: &str, items: &[Item], notes: &[String]) -> String {
    let mut o = format!(
        "mailha report\nwindow: {window}\nsecrets: the relay password, the webhook URL and values after secret words are replaced by [redacted]; the corosync authkey and password files are never collected\n\n"
    );
    for i in items {
        match (&i.bytes, &i.error) {
            (Some(b), _) => o.push_str(&format!("{:<40} {b:>9} bytes  {}\n", i.path, i.from)),
            (None, e) => o.push_str(&format!(
                "{:<40} MISSING: {} ({})\n",
                i.path,
                e.as_deref().unwrap_or("?"),
                i.from
            )),
        }
    }
    for n in notes {
        o.push_str(&format!("\nnote: {n}"));
    }
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_windows_transition_inputs_newest_first() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let files = vec![
            (PathBuf::from("/p/pe-input-1.bz2"), at(10)),
            (PathBuf::from("/p/pe-input-2.bz2"), at(100)),
            (PathBuf::from("/p/pe-warn-3.bz2"), at(200)),
            (PathBuf::from("/p/pe-input.last"), at(150)),
            (PathBuf::from("/p/pe-input-4.bz2"), at(900)),
        ];
        assert_eq!(
            inputs_in_window(&files, at(50), at(500)),
            [
                PathBuf::from("/p/pe-warn-3.bz2"),
                PathBuf::from("/p/pe-input-2.bz2")
            ]
        );
    }

    #[test]
    fn planted_secrets_leave_the_bundle() {
        let secrets = vec![
            "s3cret-relay-pw".to_string(),
            "https://hooks.example.net/T0/B1/abcdefghij".to_string(),
            "/T0/B1/abcdefghij".to_string(),
        ];
        let text = "relay auth with s3cret-relay-pw failed\n\
                    <nvpair id=\"x\" name=\"password\" value=\"in-the-cib\"/>\n\
                    POST /T0/B1/abcdefghij 500\n\
                    webhook token: zzz-tok-zzz\n";
        let out = scrub(text, &secrets);
        for s in ["s3cret-relay-pw", "in-the-cib", "abcdefghij", "zzz-tok-zzz"] {
            assert!(!out.contains(s), "{s} left in:\n{out}");
        }
        assert!(out.contains("relay auth with [redacted] failed"), "{out}");
    }

    #[test]
    fn a_huge_text_is_cut_and_says_so() {
        let big = "é".repeat(MAX_BYTES);
        let out = scrub(&big, &[]);
        assert!(out.len() < MAX_BYTES + 100);
        assert!(
            out.ends_with(&format!("of {}]\n", big.len())),
            "{}",
            &out[out.len() - 80..]
        );
    }

    #[test]
    fn the_manifest_names_what_is_missing() {
        let m = manifest(
            "2h",
            &[
                Item {
                    path: "node1/cib.xml".into(),
                    from: "cibadmin --query".into(),
                    bytes: Some(1234),
                    error: None,
                },
                Item {
                    path: "node2/".into(),
                    from: "ssh node2".into(),
                    bytes: None,
                    error: Some("unreachable".into()),
                },
            ],
            &[],
        );
        assert!(
            m.contains("node1/cib.xml") && m.contains("1234 bytes"),
            "{m}"
        );
        assert!(
            m.contains("node2/") && m.contains("MISSING: unreachable"),
            "{m}"
        );
    }
}
