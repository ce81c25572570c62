//! One config on both nodes (issue 21), on a real two-node lab (`stock`
//! profile: the config sync does not depend on the mail's agents).
//!
//! Root only: `SKIPPED` without root or the lab's programs, FAILS in CI.
//! Its own lab name (`MAILHA_TEST_LAB`), torn down whatever happens.
//!
//! - apply on node1 changes the VIP: node2's file is node1's, byte for
//!   byte, and the mail answers on the new VIP;
//! - a file that node2 refuses (an address that is not node2's) shows
//!   node2's file:line errors on node1, and nothing changes anywhere;
//! - an older copy on node2: status there says behind, apply there refuses
//!   without --force, `mailha config pull` takes the running one;
//! - apply while node2 is down (stack and sshd stopped): node2 catches up
//!   when it rejoins;
//! - two operators applying at once, one per node: one wins, the other is
//!   told its file is behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn file_of(node: &str) -> PathBuf {
    base_dir().join(format!("{node}/root/etc/mailha/mailha.toml"))
}

fn read(node: &str) -> String {
    std::fs::read_to_string(file_of(node)).unwrap()
}

fn write(node: &str, text: &str) {
    std::fs::write(file_of(node), text).unwrap();
}

fn said(o: &Out) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

fn sync_of(node: &str) -> serde_json::Value {
    let o = exec(node, &["mailha", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json on {node}: {e}: {}", said(&o)));
    v["config_sync"].clone()
}

fn node_entry(sync: &serde_json::Value, name: &str) -> serde_json::Value {
    sync["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} in {sync}"))
}

fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < deadline, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn apply(node: &str, args: &[&str]) -> Out {
    let mut argv = vec!["mailha", "apply"];
    argv.extend_from_slice(args);
    let o = exec(node, &argv);
    println!("apply on {node} {args:?}: exit {:?}\n{}", o.code, said(&o));
    o
}

#[test]
fn one_config_on_both_nodes() {
    if !skip_unless_ready("config sync", &["/usr/bin/swaks"]) {
        return;
    }
    let _guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(
        lab().args(["up", "--profile", "stock"]),
        Duration::from_secs(240),
    );
    let gen1 = read("node1");
    assert_eq!(read("node2"), gen1, "setup sent the same file");
    let s = sync_of("node2");
    assert_eq!(s["state"], "same", "{s}");
    let run1 = s["running_generation"].as_u64().expect("setup applied");

    // 1. The VIP changes on node1: node2's file follows, byte for byte.
    let gen2 = format!(
        "# issue 21: the VIP moved \t\n{}",
        gen1.replace("198.51.100.100", "198.51.100.101")
    );
    write("node1", &gen2);
    let o = apply("node1", &[]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    assert!(
        o.stdout
            .contains(&format!("node2: mailha.toml is generation {}", run1 + 1)),
        "{}",
        said(&o)
    );
    assert_eq!(read("node2"), gen2, "node2's file is node1's");
    let s = sync_of("node2");
    assert_eq!(s["state"], "same", "{s}");
    assert_eq!(node_entry(&s, "node2")["behind"], false, "{s}");
    assert!(s["applied_by"].as_str().unwrap().ends_with("@node1"), "{s}");
    wait_for("SMTP on the new VIP", Duration::from_secs(60), || {
        exec(
            "client",
            &[
                "swaks",
                "--server",
                "198.51.100.101",
                "--quit-after",
                "BANNER",
            ],
        )
        .stdout
        .contains("220 ")
    });

    // 2. A file node2 does not accept: its errors, here; nothing changes.
    let line = gen2
        .lines()
        .position(|l| l.contains("198.51.100.12"))
        .expect("node2's lan address")
        + 1;
    write("node1", &gen2.replace("198.51.100.12", "198.51.100.22"));
    let o = apply("node1", &[]);
    assert_eq!(o.code, Some(2), "{}", said(&o));
    let e = said(&o);
    assert!(
        e.contains("node2 refuses this file (nothing was changed)")
            && e.contains(&format!("mailha.toml:{line}:"))
            && e.contains("cluster.nodes[1].addresses[1]")
            && e.contains("198.51.100.22 is not an address of this machine"),
        "{e}"
    );
    assert_eq!(read("node2"), gen2, "node2's old file stays");
    assert_eq!(
        sync_of("node1")["running_generation"].as_u64(),
        Some(run1 + 1),
        "the CIB did not change"
    );
    write("node1", &gen2);

    // 3. An older copy on node2: behind; apply there refuses; pull.
    write("node2", &gen1);
    let s = sync_of("node2");
    assert_eq!(
        (s["state"].as_str(), s["generation"].as_u64()),
        (Some("behind"), Some(run1)),
        "{s}"
    );
    let human = exec("node2", &["mailha", "status"]).stdout;
    assert!(
        human.contains(&format!(
            "mailha.toml here is generation {run1}, behind {}: mailha config pull",
            run1 + 1
        )),
        "{human}"
    );
    let o = apply("node2", &[]);
    assert_eq!(o.code, Some(2), "{}", said(&o));
    assert!(
        said(&o).contains("older than what runs")
            && said(&o).contains("-address = \"198.51.100.101\"")
            && said(&o).contains("--force"),
        "{}",
        said(&o)
    );
    let o = exec("node2", &["mailha", "config", "pull"]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    assert!(
        o.stdout.contains("+address = \"198.51.100.101\""),
        "{}",
        said(&o)
    );
    assert_eq!(read("node2"), gen2);

    // 4. node2 down (stack and sshd stopped) during an apply: it catches
    // up when it rejoins.
    for svc in ["pacemaker", "corosync", "ssh"] {
        let o = exec("node2", &["service", svc, "stop"]);
        assert_eq!(o.code, Some(0), "stop {svc}: {}", said(&o));
    }
    wait_for("node2 offline", Duration::from_secs(60), || {
        let o = exec("node1", &["crm_mon", "-1", "--output-as=xml"]);
        o.stdout.contains("name=\"node2\"") && o.stdout.contains("online=\"false\"")
    });
    let gen3 = format!("# generation 3: the VIP back\n{gen1}");
    write("node1", &gen3);
    let o = apply("node1", &[]);
    assert_eq!(o.code, Some(0), "{}", said(&o));
    assert!(said(&o).contains("node2: not reached"), "{}", said(&o));
    assert_eq!(read("node2"), gen2, "node2 was down");
    let s = sync_of("node1");
    assert_eq!(node_entry(&s, "node2")["behind"], true, "{s}");
    assert!(
        exec("node1", &["mailha", "status"])
            .stdout
            .contains("node2's mailha.toml is behind"),
        "status on node1 says node2 is behind"
    );
    for svc in ["ssh", "corosync", "pacemaker"] {
        let o = exec("node2", &["service", svc, "start"]);
        assert_eq!(o.code, Some(0), "start {svc}: {}", said(&o));
    }
    wait_for("node2 caught up", Duration::from_secs(120), || {
        read("node2") == gen3
    });
    wait_for(
        "node2 recorded as caught up",
        Duration::from_secs(30),
        || node_entry(&sync_of("node1"), "node2")["behind"] == false,
    );
    assert_eq!(sync_of("node2")["state"], "same");

    // 5. Two operators at once, one on each node: one patch wins, the
    // other is told its file is behind.
    let gen_a = format!("{gen3}# operator a\n");
    let gen_b = format!("{gen3}# operator b\n");
    write("node1", &gen_a);
    write("node2", &gen_b);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| apply("node1", &[]));
        let b = s.spawn(|| apply("node2", &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let won: Vec<&Out> = [&a, &b].into_iter().filter(|o| o.code == Some(0)).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one wins:\n{}\n{}",
        said(&a),
        said(&b)
    );
    let (winner, loser, winner_text) = if a.code == Some(0) {
        ("node1", &b, &gen_a)
    } else {
        ("node2", &a, &gen_b)
    };
    assert!(said(loser).contains("behind"), "{}", said(loser));
    assert_ne!(loser.code, Some(0));
    wait_for(
        "both files are the winner's",
        Duration::from_secs(30),
        || read("node1") == *winner_text && read("node2") == *winner_text,
    );
    let s = sync_of(winner);
    assert_eq!(s["state"], "same", "{s}");
    println!("operator on {winner} won");
}
