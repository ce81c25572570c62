//! The alert rules and the Grafana dashboard the package ships
//! (`dist/prometheus/`, `dist/grafana/`): promtool accepts the rules and
//! their unit tests pass (each rule fires when it should and stays quiet
//! when it should not), and every metric the rules, their tests and the
//! dashboard name is one the exporter emits (its golden snapshots), so a
//! renamed metric breaks this test rather than an operator's pager.
//! Without promtool (Debian's `prometheus` package) the promtool part says
//! SKIPPED, except in CI (env CI) where it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const RULES: &str = "dist/prometheus/mailha-rules.yml";
const RULE_TESTS: &str = "tests/fixtures/prometheus/mailha-rules.test.yml";
const DASHBOARD: &str = "dist/grafana/mailha-dashboard.json";

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("promtool missing in CI (scripts/install-deps.sh installs prometheus)");
        }
        println!("SKIPPED: needs promtool (scripts/install-deps.sh)");
    }
    found
}

fn run(tool: &Path, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let Some(tool) = promtool() else { return };
    run(&tool, &["check", "rules", RULES]);
    run(&tool, &["test", "rules", RULE_TESTS]);
}

/// The metric families the exporter emits, as its reviewed golden
/// output shows them (every family appears there: the snapshots'
/// observation has a keeper, a spool, deliveries and a failover); a
/// histogram's series carry `_bucket`, `_sum` and `_count`.
fn emitted() -> BTreeSet<String> {
    let dir = root().join("src/exporter/snapshots");
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').unwrap();
            names.insert(name.to_string());
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{s}"));
                }
            }
        }
    }
    assert!(names.len() > 30, "snapshots unread: {names:?}");
    names
}

/// The exporter's metric names in a text: identifiers under its two
/// prefixes (mailha's prose says `mailha.toml` and `mailha-lease`, never
/// `mailha_`).
fn named_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("mailha_") || w.starts_with("ha_cluster_"))
        .map(str::to_string)
        .collect()
}

fn assert_all_emitted(what: &str, used: &BTreeSet<String>) {
    let emitted = emitted();
    let unknown: Vec<&String> = used.difference(&emitted).collect();
    assert!(
        unknown.is_empty(),
        "{what} names metrics the exporter does not emit: {unknown:?}"
    );
}

#[test]
fn the_rules_and_their_tests_name_only_metrics_the_exporter_emits() {
    let rules = named_in(&read(RULES));
    assert!(rules.contains("mailha_mail_running"), "{rules:?}");
    assert!(rules.contains("mailha_lease_renewal_duration_seconds_bucket"));
    assert_all_emitted(RULES, &rules);
    assert_all_emitted(RULE_TESTS, &named_in(&read(RULE_TESTS)));
}

/// Each rule's unit tests: whether one expects it to fire, and one that
/// it stays quiet.
#[test]
fn every_rule_is_tested_both_firing_and_quiet() {
    let rules: BTreeSet<String> = read(RULES)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect();
    assert!(rules.len() >= 15, "{rules:?}");
    let tests = read(RULE_TESTS);
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.strip_prefix("alertname: ") else {
            continue;
        };
        match lines.get(i + 1).copied() {
            Some("exp_alerts: []") => quiet.insert(name.to_string()),
            Some("exp_alerts:") => fires.insert(name.to_string()),
            other => panic!("{name}: exp_alerts expected after alertname, got {other:?}"),
        };
    }
    for r in &rules {
        assert!(fires.contains(r), "no test makes {r} fire");
        assert!(quiet.contains(r), "no test keeps {r} quiet");
    }
    let unknown: Vec<_> = fires
        .union(&quiet)
        .filter(|n| !rules.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "tests of rules that do not exist: {unknown:?}"
    );
}

/// Every `expr` and query string in the dashboard, wherever it sits
/// (panels, rows, templating).
fn queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_parses_and_queries_only_metrics_the_exporter_emits() {
    let d: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).expect("valid JSON");
    assert_eq!(d["uid"], "mailha");
    let panels = d["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids unique");
    let mut q = Vec::new();
    queries(&d, &mut q);
    let used: BTreeSet<String> = q.iter().flat_map(|s| named_in(s)).collect();
    for wanted in [
        "mailha_active_node",
        "mailha_probe_ok",
        "mailha_probe_duration_seconds",
        "mailha_lease_holder",
        "mailha_lease_renewal_duration_seconds_bucket",
        "mailha_alert_spool_pending_events",
        "mailha_last_failover_info",
        "mailha_config_drift",
        "mailha_scrape_ok",
    ] {
        assert!(used.contains(wanted), "the dashboard shows no {wanted}");
    }
    assert_all_emitted(DASHBOARD, &used);
    // Any other series is Prometheus's own (`up`): nothing outside the
    // exporter's prefixes but that.
    for s in &q {
        for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let looks_like_metric = w.contains('_') && !w.starts_with("__");
            assert!(
                !looks_like_metric
                    || w.starts_with("mailha_")
                    || w.starts_with("ha_cluster_")
                    || ["histogram_quantile", "label_values"].contains(&w),
                "{w} in {s:?}: not an exporter metric"
            );
        }
    }
}
