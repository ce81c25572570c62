//! The exporter as its consumer sees it (issue 18): both nodes run the
//! package's `mailha-exporter` unit under systemd, listening on the LAN
//! over HTTPS (certificates from the lab CA) with basic auth, and Debian's Prometheus in the gw namespace scrapes
//! them every second, as a monitoring host would. A planned switchover
//! under mail load must show in Prometheus: the lease holder and the
//! active node change, no keeper ever reports two holders, and both
//! keepers' renewal latencies are there. The package's alert rules load,
//! stay quiet on a healthy cluster and see maintenance mode; the status
//! page answers a browser through gw; and a power cut of the active node
//! shows as a failover with its cause and duration.
//!
//! Root only; SKIPPED without root, the lab's programs or Prometheus,
//! FAILS in CI (env `CI`) when they are missing. A guard tears the lab
//! down whatever happens.

use std::time::{Duration, Instant};

mod common;

use common::*;

fn query(expr: &str) -> serde_json::Value {
    let o = ok(
        lab().args(["prometheus", "query", expr]),
        Duration::from_secs(30),
    );
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{expr}: {e}: {}", o.stdout))
}

fn query_range(expr: &str, range: &str) -> serde_json::Value {
    let o = ok(
        lab().args([
            "prometheus",
            "query",
            expr,
            "--range",
            range,
            "--step",
            "1s",
        ]),
        Duration::from_secs(30),
    );
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{expr}: {e}: {}", o.stdout))
}

/// An instant vector's series as (label value, sample value).
fn by_label(v: &serde_json::Value, label: &str) -> Vec<(String, f64)> {
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|r| {
            (
                r["metric"][label].as_str().unwrap_or("").to_string(),
                r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// The nodes every scraped exporter names as the lease holder, once they
/// all agree on exactly one.
fn agreed_holder() -> Option<String> {
    let v = query("mailha_lease_holder == 1");
    let seen = by_label(&v, "node");
    let mut nodes: Vec<String> = seen.into_iter().map(|(n, _)| n).collect();
    let per_instance = nodes.len();
    nodes.dedup();
    (per_instance == 2 && nodes.len() == 1).then(|| nodes.remove(0))
}

#[test]
fn prometheus_in_gw_sees_a_switchover_in_the_exporters_metrics() {
    let prometheus = mailha_lab::prometheus::PROGRAM;
    if !skip_unless_ready("lab metrics", &["/usr/bin/swaks", prometheus]) {
        return;
    }
    let _guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(
        lab().args(["up", "--profile", "postfix"]),
        Duration::from_secs(240),
    );

    // The package's unit, enabled as an administrator does, runs under
    // the node's systemd with its sandbox.
    for node in ["node1", "node2"] {
        let o = exec(node, &["systemctl", "is-active", "mailha-exporter"]);
        assert_eq!(
            o.stdout.trim(),
            "active",
            "{node}: {}{}",
            o.stdout,
            o.stderr
        );
        let o = exec(
            node,
            &[
                "systemctl",
                "show",
                "-p",
                "ProtectSystem,NoNewPrivileges",
                "mailha-exporter",
            ],
        );
        assert!(
            o.stdout.contains("ProtectSystem=full") && o.stdout.contains("NoNewPrivileges=yes"),
            "{node}: {}",
            o.stdout
        );
    }

    // An exporter ended by a signal systemd counts as a clean exit
    // (SIGTERM from anyone but systemd) comes back by itself: a reporter
    // that stays down is found missing only when it was needed.
    let main_pid = |node: &str| {
        let o = exec(
            node,
            &[
                "systemctl",
                "show",
                "-p",
                "MainPID",
                "--value",
                "mailha-exporter",
            ],
        );
        o.stdout.trim().parse::<u32>().unwrap_or(0)
    };
    let before = main_pid("node1");
    assert_ne!(before, 0, "node1's exporter has no main process");
    let o = exec("node1", &["kill", "-TERM", &before.to_string()]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    let t = Instant::now();
    while !(main_pid("node1") != 0 && main_pid("node1") != before)
        && t.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    let o = exec("node1", &["systemctl", "is-active", "mailha-exporter"]);
    assert_eq!(
        (o.stdout.trim(), main_pid("node1") != before),
        ("active", true),
        "node1's exporter after a SIGTERM not from systemd: {}",
        exec(
            "node1",
            &["journalctl", "-u", "mailha-exporter", "--since", "-2min"]
        )
        .stdout
    );
    println!(
        "MEASURED an exporter ended by SIGTERM was back after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let up = ok(lab().args(["prometheus", "up"]), Duration::from_secs(90));
    println!("{}", up.stdout.trim());
    // The package's alert rules are loaded and evaluate cleanly against
    // the real exporters' series.
    let rules_file = std::fs::read_to_string(
        mailha_lab::prometheus::shipped_rules().expect("dist/prometheus/mailha-rules.yml"),
    )
    .unwrap();
    let shipped = rules_file.matches("- alert: ").count();
    let prom = std::net::SocketAddr::from(([198, 51, 100, 1], mailha_lab::prometheus::PORT));
    let netns = format!("{}-gw", prefix());
    let api = |path: &str| -> serde_json::Value {
        let body = mailha_lab::prometheus::get_in_netns(&netns, prom, path, &[])
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };
    let wait_rules = Instant::now();
    let loaded = loop {
        let v = api("/api/v1/rules");
        let rules: Vec<serde_json::Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = rules.iter().all(|r| r["health"] == "ok");
        if (rules.len() == shipped && evaluated) || wait_rules.elapsed() > Duration::from_secs(20) {
            break rules;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(loaded.len(), shipped, "every shipped rule loaded");
    for r in &loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }
    let alerts = |v: &serde_json::Value| -> Vec<String> {
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{} {}", r["metric"]["alertname"], r["metric"]["alertstate"]))
            .collect()
    };

    let before = agreed_holder().expect("both exporters name one holder");
    let ok_scrapes = by_label(&query("mailha_scrape_ok"), "instance");
    assert_eq!(ok_scrapes.len(), 2, "{ok_scrapes:?}");
    assert!(ok_scrapes.iter().all(|(_, v)| *v == 1.0), "{ok_scrapes:?}");

    let t = Instant::now();
    let d = drill(&["switchover"]);
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["lost"], 0, "{d}");
    let after = d["node_after"]
        .as_str()
        .expect("the drill names where the mail went");
    assert_eq!(d["node_before"].as_str(), Some(before.as_str()), "{d}");

    // Prometheus follows within a few scrapes.
    let seen = Instant::now();
    let holder = loop {
        let h = agreed_holder();
        if h.as_deref() == Some(after) || seen.elapsed() > Duration::from_secs(15) {
            break h;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(holder.as_deref(), Some(after), "the holder in Prometheus");
    let active = by_label(&query("mailha_active_node == 1"), "node");
    assert!(
        active.len() == 2 && active.iter().all(|(n, _)| n == after),
        "both exporters put the mail on {after}: {active:?}"
    );

    // Over the whole drill, second by second: each keeper named at most
    // one holder at a time, and the holder changed from the old node to
    // the new one (samples of both nodes, in that order).
    let range = format!("{}s", t.elapsed().as_secs() + 10);
    let v = query_range("count by (instance) (mailha_lease_holder == 1)", &range);
    for r in v["data"]["result"].as_array().expect("a matrix") {
        for s in r["values"].as_array().unwrap() {
            assert_eq!(
                s[1].as_str(),
                Some("1"),
                "{} saw two holders at {}",
                r["metric"],
                s[0]
            );
        }
    }
    let v = query_range("max by (node) (mailha_lease_holder)", &range);
    let span = |node: &str| -> (f64, f64) {
        let r = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"]["node"] == node)
            .unwrap_or_else(|| panic!("no holder samples of {node}: {v}"));
        let ts: Vec<f64> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s[0].as_f64())
            .collect();
        (ts[0], *ts.last().unwrap())
    };
    let (old, new) = (span(&before), span(after));
    assert!(
        old.1 < new.1 && old.0 < new.0,
        "{before} {old:?} then {after} {new:?}"
    );
    println!(
        "MEASURED in Prometheus (1 s scrapes): {before}'s last holder sample to {after}'s first: {:.0} s; the drill's recovery {} s",
        new.0 - old.1,
        d["recovered_s"]
    );

    // A healthy cluster after a planned move raises no alert, not even a
    // pending one.
    assert_eq!(
        alerts(&query("ALERTS")),
        Vec::<String>::new(),
        "alerts on a healthy cluster"
    );

    // The status page, as a browser on the monitoring host gets it from
    // node1's exporter: behind the same basic auth, in either language.
    let exporter = std::net::SocketAddr::from(([198, 51, 100, 11], 9664));
    let password = std::fs::read_to_string(mailha_lab::prometheus::password_file(&base_dir()))
        .expect("the scrape password lab up made");
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                mailha_lab::prometheus::SCRAPE_USER,
                password.trim()
            )
        )
    );
    // Over HTTPS, trusting the lab CA only, as Prometheus scrapes; in
    // clear the exporter answers nothing.
    let ca = mailha_lab::relay::Relay::new(&base_dir()).ca();
    let page = |path: &str, headers: &[(&str, &str)]| {
        mailha_lab::prometheus::get_https_in_netns(&netns, exporter, path, headers, &ca)
    };
    let clear = mailha_lab::prometheus::get_in_netns(&netns, exporter, "/", &[]);
    assert!(
        clear.as_ref().is_err_and(|e| !e.contains("mailha")),
        "plain HTTP: {clear:?}"
    );
    let refused = page("/", &[]).expect_err("no page without the password");
    assert!(refused.contains(" 401 "), "{refused}");
    // Without a choice the page speaks the config's alert language (the
    // lab's is Chinese); the browser's or the query's choice wins.
    let en = page(
        "/",
        &[
            ("Authorization", &auth),
            ("Accept-Language", "en-US,en;q=0.9"),
        ],
    )
    .expect("the page");
    assert!(
        en.contains("class=\"verdict ok\"") && en.contains(&format!("The mail runs on {after}")),
        "{en}"
    );
    let zh = page("/", &[("Authorization", &auth)]).expect("the page in Chinese");
    assert!(
        zh.contains("<html lang=\"zh-CN\">") && zh.contains(after),
        "{zh}"
    );

    // Both keepers' renewal latencies, as the histogram the rules read.
    let counts = by_label(
        &query("mailha_lease_renewal_duration_seconds_count"),
        "instance",
    );
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n > 0.0), "{counts:?}");
    let p99 = by_label(
        &query("histogram_quantile(0.99, rate(mailha_lease_renewal_duration_seconds_bucket[1m]))"),
        "instance",
    );
    println!("MEASURED p99 lease write per node over the last minute: {p99:?}");

    // Maintenance mode shows as the rule's pending alert within a few
    // evaluations, and goes when maintenance ends.
    let maintenance = "ALERTS{alertname=\"MailhaMaintenanceLeftOn\"}";
    ok(
        lab().args(["exec", after, "--", "mailha", "maintenance", "on"]),
        Duration::from_secs(60),
    );
    let t = Instant::now();
    while alerts(&query(maintenance)).is_empty() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        alerts(&query(maintenance)),
        vec!["\"MailhaMaintenanceLeftOn\" \"pending\"".to_string()]
    );
    println!(
        "MEASURED maintenance on -> pending alert in Prometheus: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    ok(
        lab().args(["exec", after, "--", "mailha", "maintenance", "off"]),
        Duration::from_secs(120),
    );
    let t = Instant::now();
    while !alerts(&query(maintenance)).is_empty() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        alerts(&query(maintenance)),
        Vec::<String>::new(),
        "gone after maintenance off"
    );

    // A real failover: the node with the mail loses power (and boots
    // again). Prometheus sees the holder move, and the exporters name the
    // failover's cause and how long it took.
    let cut_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let d = drill(&["kill-node", "active"]);
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["lost"], 0, "{d}");
    assert_eq!(d["switched"], true, "{d}");
    let survivor = d["node_after"].as_str().expect("where the mail went");
    // Each exporter's account of this failover, once its last failover
    // began after the cut. The survivor's must come; the rebooted node
    // learns its own fence only when its fencer has the record, so its
    // account is checked when it has one.
    let t = Instant::now();
    let (fresh, duration, info) = loop {
        let fresh: Vec<String> =
            by_label(&query("mailha_last_failover_timestamp_seconds"), "instance")
                .into_iter()
                .filter(|(_, at)| *at >= cut_unix - 1.0)
                .map(|(i, _)| i)
                .collect();
        let duration: Vec<(String, f64)> =
            by_label(&query("mailha_last_failover_duration_seconds"), "instance")
                .into_iter()
                .filter(|(i, _)| fresh.contains(i))
                .collect();
        let info = query("mailha_last_failover_info");
        let settled = agreed_holder().as_deref() == Some(survivor) && fresh.len() == 2;
        if settled || t.elapsed() > Duration::from_secs(30) {
            break (fresh, duration, info);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !fresh.iter().any(|i| i == survivor) {
        // What each exporter said over the last two minutes and what the
        // survivor's own history and exporter log hold: enough to tell a
        // failing crm_mon from a failover grouped with older events.
        for expr in [
            "mailha_last_failover_timestamp_seconds",
            "mailha_scrape_ok",
            "up",
        ] {
            println!("{expr}: {}", query_range(expr, "120s"));
        }
        println!("the cut at {cut_unix}");
        // How the exporter's last run ended (exit code or signal), and
        // everything the node logged around it: who stopped or signalled it.
        for argv in [
            &["mailha", "history", "--since", "15m", "--json"][..],
            &[
                "systemctl",
                "show",
                "-p",
                "ActiveState,Result,NRestarts,ExecMainPID,ExecMainCode,ExecMainStatus,ExecMainExitTimestamp",
                "mailha-exporter",
            ][..],
            &["journalctl", "-u", "mailha-exporter", "--since", "-3min"][..],
            &["journalctl", "--since", "-3min", "-o", "short-precise"][..],
        ] {
            let o = exec(survivor, argv);
            println!("{survivor}: {argv:?}:\n{}{}", o.stdout, o.stderr);
        }
    }
    assert!(
        fresh.iter().any(|i| i == survivor),
        "the survivor's exporter reports this failover: {fresh:?}"
    );
    assert_eq!(
        agreed_holder().as_deref(),
        Some(survivor),
        "the holder after the power cut"
    );
    assert!(
        !duration.is_empty() && duration.iter().all(|(_, s)| *s > 0.0),
        "the failover's duration: {duration:?}"
    );
    // Its window lies inside the client's: from the loss Pacemaker saw
    // (after corosync's token) to the last start on the survivor, while
    // the client counts from the power cut to its first 250. The lost
    // node's reboot and rejoin are no part of it.
    let client = d["recovered_s"].as_f64().expect("the drill's recovery");
    assert!(
        duration.iter().all(|(_, s)| *s <= client),
        "failover {duration:?} s against the client's {client} s"
    );
    let causes: Vec<String> = info["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| fresh.iter().any(|i| r["metric"]["instance"] == i.as_str()))
        .map(|r| r["metric"]["cause"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !causes.is_empty() && causes.iter().all(|c| c == "fencing" || c == "node_lost"),
        "a power cut is a lost node or a fence: {causes:?}"
    );
    println!(
        "MEASURED last failover as the exporters that know it ({fresh:?}) report it: {duration:?} s, cause {causes:?}; the drill's recovery {} s",
        d["recovered_s"]
    );
}
