//! The eYou mail suite, with the service graph the original kit generated
//! (see `shared/seed/original-behaviour.md`, "The Pacemaker configuration
//! it generates"), and discovery from an installed eYou tree by PARSING
//! its files, never running them:
//!
//! | file (under the eYou root) | what is read |
//! |---|---|
//! | `opt/bin/eyou_mail` | `PIDF_<SVC>=...` lines: each service's pid file |
//! | `etc/em_init_config` | `ARRAY_START=( ... )`: the services this install runs |
//! | `web/conf/conf_global.php` | `EYOUM_VERSION`: the suite's version |
//!
//! Without a tree the whole graph is used and pid files are unknown, so
//! the agent finds each daemon by its process name.

use super::{Catalog, ProfileError, argv, probe};
use crate::config::raw::RawService;
use crate::shellvars;
use std::collections::BTreeMap;
use std::path::Path;

pub const CONTROL_SCRIPT: &str = "opt/bin/eyou_mail";
pub const INIT_CONFIG: &str = "etc/em_init_config";
pub const GLOBAL_CONF: &str = "web/conf/conf_global.php";

/// The original's mandatory order constraints, as "service: what it needs".
/// Services needing nothing are ordered after the VIP only.
pub const GRAPH: &[(&str, &[&str])] = &[
    ("mysql", &[]),
    ("mysql_index", &[]),
    ("mysql_log", &[]),
    ("cron_etc", &[]),
    ("cleanup", &[]),
    ("crtmpd", &[]),
    ("filedagent", &[]),
    ("filed", &[]),
    ("httpd", &[]),
    ("nginx", &[]),
    ("syslog", &[]),
    ("rsyslogd", &[]),
    ("mproxy", &["mysql"]),
    ("mproxy_index", &["mysql_index"]),
    ("memcache_fix", &["mysql"]),
    ("memcache_hot", &["mysql"]),
    ("memcache_session", &["mysql"]),
    ("gearman", &["mysql"]),
    ("smtp", &["mproxy"]),
    ("pop", &["mproxy"]),
    ("imap", &["mproxy"]),
    (
        "bounce",
        &["mproxy", "memcache_fix", "memcache_session", "memcache_hot"],
    ),
    (
        "local",
        &["mproxy", "memcache_fix", "memcache_session", "memcache_hot"],
    ),
    (
        "mlist",
        &["mproxy", "memcache_fix", "memcache_session", "memcache_hot"],
    ),
    (
        "remote",
        &["mproxy", "memcache_fix", "memcache_session", "memcache_hot"],
    ),
    ("phpd", &["mysql_log", "gearman"]),
    // Runs on both nodes, as the original's clone did.
    ("filedrepd", &[]),
];

pub const CLONED: &[&str] = &["filedrepd"];

/// The original judged a pid's identity by whether the process name
/// contained the service's base name: prefix `m` and the suffixes `d`,
/// `_index`, `_log`, `_session`, `_fix`, `_hot` stripped.
pub fn base_name(svc: &str) -> String {
    let mut s = svc;
    for suffix in ["_index", "_log", "_session", "_fix", "_hot"] {
        if let Some(x) = s.strip_suffix(suffix) {
            s = x;
            break;
        }
    }
    let s = s.strip_prefix('m').unwrap_or(s);
    let s = if s.len() > 1 {
        s.strip_suffix('d').unwrap_or(s)
    } else {
        s
    };
    s.to_string()
}

fn well_known_probe(svc: &str) -> Option<crate::config::raw::RawProbe> {
    match svc {
        "smtp" => probe("smtp", 25),
        "pop" => probe("pop3", 110),
        "imap" => probe("imap", 143),
        "mysql" => probe("mysql", 3306),
        _ => None,
    }
}

/// What was read from an installed tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    pub pid_files: BTreeMap<String, String>,
    pub started: Option<Vec<String>>,
    pub version: Option<String>,
}

fn tree_err(file: &Path, line: usize, message: String) -> ProfileError {
    ProfileError::Tree {
        file: file.display().to_string(),
        line,
        message,
    }
}

/// `PIDF_SMTP="${EYOU_MAIL_ROOT}/run/smtp.pid"` -> smtp => path. Variables
/// resolve against plain assignments earlier in the same script.
pub fn parse_control_script(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, ProfileError> {
    let parsed = shellvars::parse(text);
    let mut vars = BTreeMap::new();
    let mut pids = BTreeMap::new();
    for a in &parsed.assignments {
        if a.is_array {
            continue;
        }
        if let Some(svc) = a.name.strip_prefix("PIDF_") {
            let v = shellvars::expand(&a.value(), &vars)
                .map_err(|m| tree_err(path, a.line, format!("{}: {m}", a.name)))?;
            if !v.starts_with('/') {
                return Err(tree_err(
                    path,
                    a.line,
                    format!("{}: pid file {v:?} is not an absolute path", a.name),
                ));
            }
            pids.insert(svc.to_ascii_lowercase(), v.clone());
            vars.insert(a.name.clone(), v);
        } else if !a.has_command()
            && let Ok(v) = shellvars::expand(&a.value(), &vars)
        {
            vars.insert(a.name.clone(), v);
        }
    }
    Ok(pids)
}

pub fn parse_init_config(path: &Path, text: &str) -> Result<Option<Vec<String>>, ProfileError> {
    let parsed = shellvars::parse(text);
    let Some(a) = parsed.last("ARRAY_START") else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for w in &a.words {
        let s = shellvars::expand(w, &BTreeMap::new())
            .map_err(|m| tree_err(path, a.line, format!("ARRAY_START: {m}")))?;
        out.push(s);
    }
    Ok(Some(out))
}

/// `define('EYOUM_VERSION', '8.1.0');` or `$EYOUM_VERSION = "8.1.0";`
pub fn parse_version(text: &str) -> Option<String> {
    for line in text.lines() {
        let Some(i) = line.find("EYOUM_VERSION") else {
            continue;
        };
        let rest = &line[i + "EYOUM_VERSION".len()..];
        let quotes: Vec<(usize, char)> = rest
            .char_indices()
            .filter(|(_, c)| *c == '\'' || *c == '"')
            .collect();
        // The value is the first quoted string after the name's own closing
        // quote (define form) or after `=` (variable form).
        let skip = if rest.trim_start().starts_with(['\'', '"']) {
            1
        } else {
            0
        };
        let q = &quotes[skip.min(quotes.len())..];
        if q.len() >= 2 && q[0].1 == q[1].1 {
            let v = &rest[q[0].0 + 1..q[1].0];
            if !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

pub fn discover(root: &Path) -> Result<Option<Discovered>, ProfileError> {
    let script = root.join(CONTROL_SCRIPT);
    let Ok(text) = std::fs::read_to_string(&script) else {
        return Ok(None);
    };
    let mut d = Discovered {
        pid_files: parse_control_script(&script, &text)?,
        ..Default::default()
    };
    let init = root.join(INIT_CONFIG);
    if let Ok(t) = std::fs::read_to_string(&init) {
        d.started = parse_init_config(&init, &t)?;
    }
    if let Ok(t) = std::fs::read_to_string(root.join(GLOBAL_CONF)) {
        d.version = parse_version(&t);
    }
    Ok(Some(d))
}

pub fn catalog(root: &Path) -> Result<Catalog, ProfileError> {
    catalog_at(root, root)
}

/// The catalog of the tree at `root`, its files read from `files` (the
/// same place, except when the lab checks its stand-in tree before
/// writing it where it belongs): commands name `root`.
pub fn catalog_at(root: &Path, files: &Path) -> Result<Catalog, ProfileError> {
    let found = discover(files)?;
    let control = root.join(CONTROL_SCRIPT).display().to_string();
    let mut cat = Catalog::default();
    match &found {
        None => cat.notes.push(format!(
            "no eYou tree at {}: using the built-in service list; pid files unknown",
            root.display()
        )),
        Some(d) => cat.eyou_version = d.version.clone(),
    }
    if let Some(list) = found.as_ref().and_then(|d| d.started.as_ref()) {
        let absent: Vec<&str> = GRAPH
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !list.iter().any(|s| s == n) && !CLONED.contains(n))
            .collect();
        if !absent.is_empty() {
            cat.notes.push(format!(
                "{} of the eYou graph's {} services are not in {}'s ARRAY_START (not installed, off): {}",
                absent.len(),
                GRAPH.len(),
                INIT_CONFIG,
                absent.join(", ")
            ));
        }
    }
    for (name, deps) in GRAPH {
        let enabled = match found.as_ref().and_then(|d| d.started.as_ref()) {
            Some(list) => list.iter().any(|s| s == name) || CLONED.contains(name),
            None => true,
        };
        let pid_file = found.as_ref().and_then(|d| d.pid_files.get(*name).cloned());
        let svc = RawService {
            enabled: Some(enabled),
            start: argv(&[&control, "start", name]),
            stop: argv(&[&control, "stop", name]),
            pid_file,
            params: Some(BTreeMap::from([(
                "process_name".to_string(),
                base_name(name),
            )])),
            probe: well_known_probe(name),
            depends_on: Some(deps.iter().map(|s| s.to_string()).collect()),
            clone: Some(CLONED.contains(name)),
            ..Default::default()
        };
        cat.services.insert(name.to_string(), svc);
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_follow_the_originals_stripping_rule() {
        assert_eq!(base_name("mysql_index"), "ysql");
        assert_eq!(base_name("mproxy"), "proxy");
        assert_eq!(base_name("memcache_session"), "emcache");
        assert_eq!(base_name("httpd"), "http");
        assert_eq!(base_name("smtp"), "smtp");
    }

    #[test]
    fn pid_files_come_from_pidf_lines_with_variables_resolved() {
        let text = "#!/bin/bash\nEYOU_ROOT=/usr/local/eyou/mail\nRUN=\"$EYOU_ROOT/run\"\nPIDF_SMTP=\"${RUN}/smtp.pid\"\nPIDF_MYSQL_INDEX=$RUN/mysql_index.pid\ncase \"$1\" in\nstart) do_start ;;\nesac\n";
        let m = parse_control_script(Path::new("eyou_mail"), text).unwrap();
        assert_eq!(m["smtp"], "/usr/local/eyou/mail/run/smtp.pid");
        assert_eq!(m["mysql_index"], "/usr/local/eyou/mail/run/mysql_index.pid");
    }

    #[test]
    fn a_pid_file_computed_by_a_command_is_refused_with_its_line() {
        let text = "PIDF_SMTP=\"$(cat /etc/where)/smtp.pid\"\n";
        let e = parse_control_script(Path::new("eyou_mail"), text).unwrap_err();
        assert!(e.to_string().starts_with("eyou_mail:1: PIDF_SMTP"), "{e}");
    }

    #[test]
    fn the_version_is_read_from_define_or_assignment() {
        assert_eq!(
            parse_version("<?php\ndefine('EYOUM_VERSION', '8.1.0.4');\n"),
            Some("8.1.0.4".into())
        );
        assert_eq!(
            parse_version("<?php $EYOUM_VERSION = \"5.0\";"),
            Some("5.0".into())
        );
        assert_eq!(parse_version("<?php // nothing"), None);
    }

    #[test]
    fn services_missing_from_array_start_are_off_and_named_in_a_note() {
        let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eyou-tree");
        let cat = catalog(&tree).unwrap();
        assert_eq!(cat.services["cron_etc"].enabled, Some(false));
        assert_eq!(cat.services["smtp"].enabled, Some(true));
        let note = cat
            .notes
            .iter()
            .find(|n| n.contains("ARRAY_START"))
            .expect("a note");
        assert!(
            note.starts_with("7 of the eYou graph's 27 services"),
            "{note}"
        );
        assert!(
            note.contains("cron_etc") && !note.contains("smtp"),
            "{note}"
        );
    }

    #[test]
    fn the_graph_names_only_its_own_services() {
        for (_, deps) in GRAPH {
            for d in *deps {
                assert!(GRAPH.iter().any(|(n, _)| n == d), "{d}");
            }
        }
        assert_eq!(GRAPH.len(), 27);
    }
}
