//! Day-2 operations on a real cluster (issue 15), on the `postfix`
//! profile (disk lease, fence_mailha): maintenance of the cluster with a
//! daemon killed during it (nothing restarts it until `off`, which shows
//! the recovery first), cleanup of a recorded failure without restarting
//! the daemon, maintenance of one service that an apply keeps, standby
//! of the active node and back, stop and start of the whole stack, and
//! destroy (both nodes out of the cluster, the data kept). After
//! each, where the mail runs and whether the client gets a 220 on the VIP.
//! And the upgrades of docs/operations.md, each step as written there: a
//! rolling upgrade of mailha (the standby, a switchover, the other node)
//! and an upgrade of Postfix under maintenance mode on both nodes.
//!
//! Root only; SKIPPED without root or the lab's programs, FAILS in CI (env
//! `CI`) when they are missing. A guard tears the lab down whatever
//! happens.

use std::time::{Duration, Instant};

mod common;

use common::*;

const VIP: &str = "198.51.100.100";

fn said(o: &Out) -> String {
    format!("exit {:?}\n{}\n{}", o.code, o.stdout, o.stderr)
}

/// `mailha ARGS --json` on `node`, its JSON.
fn mailha_json(node: &str, args: &[&str]) -> serde_json::Value {
    let mut argv = vec!["mailha"];
    argv.extend_from_slice(args);
    argv.push("--json");
    let o = exec(node, &argv);
    println!("{node}: {argv:?}: {}", said(&o));
    assert_eq!(o.code, Some(0), "{}", said(&o));
    // One line after what a verb printed on the way, or (switchover) a
    // pretty-printed document.
    let last = o.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .or_else(|_| serde_json::from_str(&o.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}", said(&o)))
}

fn status(node: &str) -> (serde_json::Value, String) {
    let j = exec(node, &["mailha", "status", "--json"]);
    let h = exec(node, &["mailha", "status"]);
    (
        serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}: {}", said(&j))),
        h.stdout,
    )
}

/// Whether the client gets SMTP's greeting on the VIP now.
fn smtp_answers() -> bool {
    exec(
        "client",
        &[
            "swaks",
            "--server",
            VIP,
            "--quit-after",
            "BANNER",
            "--timeout",
            "5",
        ],
    )
    .stdout
    .contains("220 ")
}

fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < deadline, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Postfix's master process on `node` ("" when none).
fn master_pid(node: &str) -> String {
    exec(node, &["pgrep", "-x", "master"])
        .stdout
        .trim()
        .to_string()
}

fn kill_master(node: &str) {
    let o = exec(node, &["pkill", "-KILL", "-x", "master"]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
}

fn no_leftover_constraints(node: &str) {
    let o = exec(node, &["cibadmin", "--query", "--scope", "constraints"]);
    assert!(
        !o.stdout.contains("cli-prefer-") && !o.stdout.contains("cli-ban-"),
        "{}",
        o.stdout
    );
}

/// Both tests use the one test lab name: they take turns.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This test's turn, a fresh `postfix` lab, and the guard that tears it
/// down whatever happens.
fn lab_up() -> (std::sync::MutexGuard<'static, ()>, Teardown) {
    let turn = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(
        lab().args(["up", "--profile", "postfix"]),
        Duration::from_secs(240),
    );
    (turn, guard)
}

#[test]
fn an_operator_patches_upgrades_and_restarts_the_pair_with_mailhas_verbs() {
    if !skip_unless_ready("lab day-2 operations", &["/usr/bin/swaks"]) {
        return;
    }
    let (_turn, _guard) = lab_up();
    let (st, _) = status("node1");
    let active = st["active_node"]
        .as_str()
        .expect("the mail runs")
        .to_string();
    let peer = if active == "node1" { "node2" } else { "node1" }.to_string();
    assert!(smtp_answers());

    // 1. Maintenance of the cluster: a daemon killed meanwhile stays dead
    // (an operator upgrading it by hand must not race Pacemaker), and the
    // status says MAINTENANCE; off shows the recovery, then does it.
    let v = mailha_json(&active, &["maintenance", "on"]);
    assert_eq!(v["changed"], true, "{v}");
    let (st, human) = status(&peer);
    assert_eq!(st["maintenance_mode"], true, "{st}");
    assert!(
        human.starts_with("DEGRADED") && human.contains("MAINTENANCE"),
        "{human}"
    );
    kill_master(&active);
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        master_pid(&active),
        "",
        "nothing restarts postfix in maintenance"
    );
    assert!(!smtp_answers(), "postfix is down on the VIP's node");
    // Nor was its death told to Pacemaker: systemd's word is held back
    // in maintenance, so nothing is recorded as failed.
    let journal = unit_journal(&active, "postfix@-.service");
    assert!(
        journal.contains(
            "postfix@-.service killed by signal KILL; not reported: the cluster is in maintenance"
        ),
        "{journal}"
    );
    let (st, _) = status(&peer);
    assert_eq!(st["failures"].as_array().map(Vec::len), Some(0), "{st}");
    let t = Instant::now();
    let v = mailha_json(&active, &["maintenance", "off"]);
    let did = v["did"].to_string();
    assert!(
        did.contains("svc-postfix"),
        "off showed postfix's recovery: {v}"
    );
    assert_eq!(v["settled"], true, "{v}");
    wait_for(
        "SMTP after maintenance off",
        Duration::from_secs(60),
        smtp_answers,
    );
    println!(
        "MEASURED maintenance off -> SMTP answers: {:.1} s (mailha's own count {})",
        t.elapsed().as_secs_f64(),
        v["seconds"]
    );

    // 2. A failure recorded (postfix killed, Pacemaker restarts it):
    // cleanup forgets it and restarts nothing.
    let (st, _) = status(&active);
    let on = st["active_node"].as_str().unwrap().to_string();
    kill_master(&on);
    wait_for(
        "postfix restarted by Pacemaker",
        Duration::from_secs(60),
        || !master_pid(&on).is_empty() && smtp_answers(),
    );
    let pid = master_pid(&on);
    // Told by systemd (mailha's report, `asyncmon`), and counted once
    // although Pacemaker 2.1.5 counts such a report twice: the first
    // monitor after the restart sets it back.
    let (st, _) = status(&on);
    assert!(st["failures"].to_string().contains("asyncmon"), "{st}");
    let count = || {
        exec(
            &on,
            &[
                "attrd_updater",
                "--query",
                "--name=fail-count-svc-postfix#asyncmon_0",
                &format!("--node={on}"),
            ],
        )
        .stdout
    };
    wait_for("one death counted once", Duration::from_secs(10), || {
        count().contains("value=\"1\"")
    });
    let dry = mailha_json(&on, &["cleanup", "postfix", "--dry-run"]);
    assert!(
        dry["would_clear"].to_string().contains("svc-postfix"),
        "{dry}"
    );
    let v = mailha_json(&on, &["cleanup", "postfix"]);
    assert!(v["cleared"].to_string().contains("svc-postfix"), "{v}");
    let (st, _) = status(&on);
    assert_eq!(st["failures"].as_array().map(Vec::len), Some(0), "{st}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(master_pid(&on), pid, "the cleanup restarted postfix");
    assert_eq!(status(&on).0["active_node"].as_str(), Some(on.as_str()));

    // 3. One service in maintenance: unmanaged, shown, and an apply of
    // the same file keeps it so (the operator's state is not the
    // config's); off hands it back.
    mailha_json(&on, &["maintenance", "on", "postfix"]);
    let (_, human) = status(&on);
    assert!(human.contains("MAINTENANCE: svc-postfix"), "{human}");
    // A new generation of the file (a comment) is a real patch of the CIB.
    let o = exec(
        &on,
        &[
            "sh",
            "-c",
            "echo '# day-2: a new generation' >> /etc/mailha/mailha.toml",
        ],
    );
    assert_eq!(o.code, Some(0), "{}", said(&o));
    let o = exec(&on, &["mailha", "apply"]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    assert!(!o.stdout.contains("already runs"), "{}", said(&o));
    let (st, human) = status(&on);
    assert!(
        human.contains("MAINTENANCE: svc-postfix"),
        "an apply ended it: {human}"
    );
    assert!(
        st["maintenance"].to_string().contains("svc-postfix"),
        "{st}"
    );
    let v = mailha_json(&on, &["maintenance", "off", "postfix"]);
    assert_eq!(v["settled"], true, "{v}");
    let (_, human) = status(&on);
    assert!(!human.contains("MAINTENANCE"), "{human}");

    // 4. Standby of the node running the mail: the mail moves first;
    // online brings it back as a place to go, the mail stays.
    let other = if on == "node1" { "node2" } else { "node1" }.to_string();
    let v = mailha_json(&other, &["standby", &on]);
    assert_eq!(v["mail_to"].as_str(), Some(other.as_str()), "{v}");
    println!(
        "MEASURED standby of the active node: {} s to SMTP on {other}",
        v["smtp_after_s"]
    );
    assert!(smtp_answers());
    let (st, _) = status(&other);
    assert_eq!(st["active_node"].as_str(), Some(other.as_str()), "{st}");
    let refused = exec(&on, &["mailha", "standby", &other]);
    assert_eq!(
        refused.code,
        Some(2),
        "standby of the only node left must be refused: {}",
        said(&refused)
    );
    assert!(
        refused.stderr.contains("nothing was changed"),
        "{}",
        said(&refused)
    );
    let v = mailha_json(&other, &["online", &on]);
    assert_eq!(v["mail_on"].as_str(), Some(other.as_str()), "{v}");
    no_leftover_constraints(&other);

    // History: postfix's failures (forgotten by Pacemaker after the
    // cleanup, kept by the alert spool of the node that recorded them)
    // and the standby's move (Pacemaker's own record).
    let mut seen = String::new();
    for node in ["node1", "node2"] {
        let o = exec(node, &["mailha", "history", "--since", "1h", "--json"]);
        assert_eq!(o.code, Some(0), "{}", said(&o));
        seen.push_str(&o.stdout);
        println!(
            "{node}: mailha history:\n{}",
            exec(node, &["mailha", "history", "--since", "1h"]).stdout
        );
    }
    // Postfix's death was told at once by systemd (`unit-ended`).
    assert!(seen.contains("svc-postfix ended of itself on"), "{seen}");
    assert!(seen.contains(&format!("vip started on {other}")), "{seen}");

    // 5. The whole stack stopped (services first, the lease last) and
    // started again.
    let v = mailha_json(&other, &["stop"]);
    assert_eq!(v["changed"], true, "{v}");
    assert!(!smtp_answers(), "the mail is stopped");
    let (st, human) = status(&other);
    assert!(st["active_node"].is_null(), "{st}");
    assert!(human.starts_with("DOWN"), "{human}");
    let v = mailha_json(&other, &["start"]);
    println!("MEASURED mailha start: {} s to SMTP", v["seconds"]);
    assert!(v["mail_on"].as_str().is_some(), "{v}");
    assert!(smtp_answers());
    let (_, human) = status(&other);
    assert!(human.starts_with("OK"), "{human}");
    no_leftover_constraints(&other);

    // A report for support from both nodes: 0600, both nodes' state in
    // it, the relay's password (the lab's alerts authenticate) nowhere.
    let o = exec(
        "node1",
        &[
            "mailha",
            "report",
            "--since",
            "1h",
            "-o",
            "/root/report.tar.gz",
        ],
    );
    assert_eq!(o.code, Some(0), "{}", said(&o));
    assert!(o.stdout.contains("from both nodes"), "{}", said(&o));
    let mode = exec("node1", &["stat", "-c", "%a", "/root/report.tar.gz"]);
    assert_eq!(mode.stdout.trim(), "600", "{}", said(&mode));
    let list = exec("node1", &["tar", "-tzf", "/root/report.tar.gz"]).stdout;
    for f in [
        "node1/cib.xml",
        "node2/cib.xml",
        "node2/journal.txt",
        "node1/alerts.json",
        "MANIFEST.txt",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(f)),
            "{f} not in the report:\n{list}"
        );
    }
    let pw = exec("node1", &["cat", "/etc/mailha/relay-password"]).stdout;
    let pw = pw.trim();
    assert!(pw.len() >= 8, "the lab's relay password: {pw:?}");
    assert_eq!(exec("node1", &["mkdir", "/root/report"]).code, Some(0));
    let x = exec(
        "node1",
        &["tar", "-xzf", "/root/report.tar.gz", "-C", "/root/report"],
    );
    assert_eq!(x.code, Some(0), "{}", said(&x));
    let g = exec(
        "node1",
        &["grep", "-r", "-l", "-F", "--", pw, "/root/report"],
    );
    assert_eq!(
        g.code,
        Some(1),
        "the relay password is in the report: {}",
        said(&g)
    );
    println!("MEASURED mailha report of both nodes: {}", o.stdout.trim());

    // 6. Destroy: refused without the flag, then both nodes out of the
    // cluster, their keys and the CIB gone, mailha.toml and the mail's
    // data kept.
    let o = exec("node1", &["mailha", "destroy"]);
    assert_eq!(o.code, Some(2), "{}", said(&o));
    assert!(o.stderr.contains("--yes-really-destroy"), "{}", said(&o));
    assert!(smtp_answers(), "a refused destroy changed something");
    let t = Instant::now();
    let v = mailha_json("node1", &["destroy", "--yes-really-destroy"]);
    println!(
        "MEASURED mailha destroy: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(v["destroyed"], true, "{v}");
    assert!(!smtp_answers());
    for node in ["node1", "node2"] {
        let o = exec(
            node,
            &[
                "systemctl",
                "is-active",
                "pacemaker",
                "corosync",
                "mailha-lease",
            ],
        );
        assert_eq!(
            o.stdout.split_whitespace().collect::<Vec<_>>(),
            ["inactive", "inactive", "inactive"],
            "{node}: {}",
            said(&o)
        );
        for gone in [
            "/etc/corosync/authkey",
            "/etc/corosync/corosync.conf",
            "/var/lib/pacemaker/cib/cib.xml",
        ] {
            assert_ne!(
                exec(node, &["test", "-e", gone]).code,
                Some(0),
                "{node}: {gone}"
            );
        }
        assert_eq!(
            exec(node, &["test", "-s", "/etc/mailha/mailha.toml"]).code,
            Some(0),
            "{node}"
        );
        let m = exec(node, &["findmnt", "-n", "/srv/data"]);
        assert!(
            m.stdout.trim().is_empty(),
            "{node}: the data is still mounted: {}",
            said(&m)
        );
    }
    // The mail's data is where it was: mounted read-only by hand.
    let o = exec("node1", &["mount", "-o", "ro", "/dev/lab/data", "/mnt"]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    let ls = exec("node1", &["ls", "-A", "/mnt"]);
    drop(exec("node1", &["umount", "/mnt"]));
    let names: Vec<&str> = ls
        .stdout
        .split_whitespace()
        .filter(|n| *n != "lost+found")
        .collect();
    assert!(
        !names.is_empty(),
        "the data disk is empty after destroy: {}",
        said(&ls)
    );
    println!("the data disk after destroy holds {names:?}");
}

/// Debian's package of the Postfix the host runs, which
/// scripts/install-deps.sh downloads for this test (the nodes have no
/// route to a mirror): installed again over itself it runs the
/// maintainer scripts an upgrade runs (prerm upgrade, postinst configure,
/// the unit's restart).
fn postfix_package() -> std::path::PathBuf {
    let o = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "postfix"])
        .output()
        .expect("dpkg-query");
    let version = String::from_utf8_lossy(&o.stdout).replace(':', "%3a");
    let arch = std::process::Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg");
    let arch = String::from_utf8_lossy(&arch.stdout);
    std::path::PathBuf::from(format!(
        "/var/cache/mailha-lab/debs/postfix_{version}_{}.deb",
        arch.trim()
    ))
}

/// The package's version on `node`.
fn installed(node: &str, package: &str) -> String {
    let o = exec(node, &["dpkg-query", "-W", "-f", "${Version}", package]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    o.stdout.trim().to_string()
}

/// Whether `node`'s journal says since `since` (unix seconds) that
/// Pacemaker found a resource active on both nodes.
fn twice_active_since(node: &str, since: u64) -> Vec<String> {
    exec(
        node,
        &[
            "journalctl",
            "--since",
            &format!("@{since}"),
            "--no-pager",
            "-q",
        ],
    )
    .stdout
    .lines()
    .filter(|l| l.contains("active on 2 nodes"))
    .map(str::to_string)
    .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Issue 15, item 9: docs/operations.md's two upgrade procedures, each
/// step as the administrator runs it.
/// - mailha, rolling: the package and a keeper restart on the standby
///   (the lab's `upgrade` drill does both under mail load and watches
///   the mail), `mailha switchover` to it, then the same on the other
///   node. Nothing moves but the switchover, no mail is lost, both nodes
///   end on the new version.
/// - Postfix under `mailha maintenance on`: its package installed on the
///   node running the mail (its postinst leaves the unit disabled and the
///   old master running: `maintenance off --dry-run` names it, and the
///   documented `systemctl restart` ends it), `maintenance off`, then the
///   same on the other node. The mail answers again where it ran,
///   nothing is started on the node that does not run the mail, and
///   Pacemaker never finds Postfix on both nodes.
#[test]
fn the_documented_upgrades_of_mailha_and_of_postfix_keep_the_mail() {
    let Some(_) = deb_or_skip("lab upgrades") else {
        return;
    };
    let postfix = postfix_package();
    if !skip_unless_ready(
        "lab upgrades",
        &["/usr/bin/swaks", postfix.to_str().unwrap()],
    ) {
        return;
    }
    let (_turn, _guard) = lab_up();
    let since = unix_now();
    let (st, _) = status("node1");
    let first = st["active_node"]
        .as_str()
        .expect("the mail runs")
        .to_string();
    let second = if first == "node1" { "node2" } else { "node1" }.to_string();
    let old = installed(&first, "mailha");

    // mailha on the standby first: nothing moves, nothing is lost, its
    // keeper comes back idle.
    let v = drill(&["upgrade", &second]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["switched"], false, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert!(
        v["notes"]
            .to_string()
            .contains("new keeper does not hold the lease"),
        "{v}"
    );
    let new = installed(&second, "mailha");
    assert_ne!(new, old, "{second} was not upgraded");

    // The mail to the upgraded node; nothing left pinned.
    let v = mailha_json(&first, &["switchover"]);
    assert_eq!(v["to"].as_str(), Some(second.as_str()), "{v}");
    println!(
        "MEASURED switchover to the upgraded node: SMTP after {} s",
        v["smtp_after_s"]
    );
    assert!(smtp_answers());
    no_leftover_constraints(&second);

    // The other node, now the standby, the same way.
    let v = drill(&["upgrade", &first]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["switched"], false, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(installed(&first, "mailha"), new);
    for n in [&first, &second] {
        let (st, human) = status(n);
        assert!(human.starts_with("OK"), "{n}: {human}");
        assert_eq!(st["active_node"].as_str(), Some(second.as_str()), "{st}");
    }
    println!("rolling upgrade of mailha {old} -> {new}: both nodes, the mail moved once");

    // Postfix under maintenance: first where the mail runs, then the
    // other node.
    let name = postfix.file_name().unwrap().to_str().unwrap().to_string();
    for n in [&first, &second] {
        let dir = base_dir().join(n).join("root/var/cache/mailha-lab");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&postfix, dir.join(&name)).unwrap();
    }
    let in_node = format!("/var/cache/mailha-lab/{name}");
    for n in [&second, &first] {
        let before = master_pid(&second);
        let v = mailha_json(n, &["maintenance", "on"]);
        assert_eq!(v["changed"], true, "{v}");
        let t = Instant::now();
        let o = exec(n, &["dpkg", "-i", &in_node]);
        assert_eq!(o.code, Some(0), "dpkg -i postfix on {n}: {}", said(&o));
        println!(
            "{n}: dpkg -i {name} in {:.1} s; postfix's master on {second} {before:?} -> {:?}, on {first} {:?}",
            t.elapsed().as_secs_f64(),
            master_pid(&second),
            master_pid(&first)
        );
        // The package restarted nothing: the unit is disabled (Pacemaker
        // runs it) and stays so, so where the mail runs the old master
        // runs on, from a replaced executable. `maintenance off` says so
        // (the preview first), and the documented restart ends it.
        let o = exec(n, &["systemctl", "is-enabled", "postfix.service"]);
        assert_eq!(o.stdout.trim(), "disabled", "{n}: {}", said(&o));
        let v = mailha_json(n, &["maintenance", "off", "--dry-run"]);
        let replaced = v["replaced"].to_string();
        if n == &second {
            assert!(
                replaced.contains("\"postfix\"") && replaced.contains(&before),
                "{v}"
            );
            let o = exec(n, &["systemctl", "restart", "postfix@-.service"]);
            assert_eq!(o.code, Some(0), "{}", said(&o));
            assert_ne!(master_pid(n), before, "postfix was not restarted");
        } else {
            assert_eq!(v["replaced"].as_array().map(Vec::len), Some(0), "{v}");
        }
        let v = mailha_json(n, &["maintenance", "off"]);
        assert_eq!(v["settled"], true, "{v}");
        assert_eq!(v["replaced"].as_array().map(Vec::len), Some(0), "{v}");
        wait_for(
            "SMTP after maintenance off",
            Duration::from_secs(60),
            smtp_answers,
        );
        let (st, human) = status(n);
        assert_eq!(st["active_node"].as_str(), Some(second.as_str()), "{st}");
        assert!(human.starts_with("OK"), "{n}: {human}");
        assert_eq!(
            master_pid(&first),
            "",
            "postfix runs on {first}, which does not run the mail"
        );
        assert!(!master_pid(&second).is_empty());
    }
    for n in [&first, &second] {
        let twice = twice_active_since(n, since);
        assert!(twice.is_empty(), "{n}: {}", twice.join("\n"));
    }
    no_leftover_constraints(&second);
}
