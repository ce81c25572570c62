//! The split-brain guard's drills in the lab (issue 6, DESIGN sections 7
//! and 9), back to back on one lab per profile:
//! - `postfix` (disk lease, fence_mailha, emulated watchdog): the drills
//!   keep the contract (no mail lost, never mounted twice, the expected
//!   switch, healthy afterwards), and a reset ends the node's I/O;
//! - `stock` (no guard): the same faults mount the data twice.
//!
//! Root only; SKIPPED without root or the lab's programs, FAILS in CI (env
//! `CI`) when they are missing. The lab's name comes from tests/common/lab.rs
//! (`MAILHA_TEST_LAB`); a guard tears it down whatever happens.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::*;

/// Both tests use the one test lab name: they take turns.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab_up(profile: &str) -> (std::sync::MutexGuard<'static, ()>, Teardown) {
    let turn = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(
        lab().args(["up", "--profile", profile]),
        Duration::from_secs(240),
    );
    (turn, guard)
}

fn notes(v: &serde_json::Value) -> String {
    v["notes"].to_string()
}

/// The contract every drill keeps under the guard.
fn kept_the_contract(v: &serde_json::Value) {
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["lost"].as_u64(), Some(0), "{v}");
    assert_eq!(v["double_mounts"].as_u64(), Some(0), "{v}");
    assert!(v["recovered_s"].as_f64().is_some(), "{v}");
    assert!(!notes(v).contains("not healthy afterwards"), "{v}");
}

/// `"<target> reset by its watchdog at 2.06 s, <peer> held the lease at
/// 5.82 s"` -> (2.06, 5.82).
fn reset_and_takeover(note: &str) -> Option<(f64, f64)> {
    let num = |after: &str| -> Option<f64> {
        let rest = &note[note.find(after)? + after.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((
        num("reset by its watchdog at ")?,
        num("held the lease at ")?,
    ))
}

#[test]
fn the_guard_keeps_one_mount_through_cut_kill_freeze_and_simul_start() {
    if !skip_unless_ready("lab lease drills", &["/usr/bin/swaks"]) {
        return;
    }
    let (_turn, guard) = lab_up("postfix");

    // Heartbeat cut, storage fine: the mail stays, the standby is fenced.
    let v = drill(&["cut-heartbeat"]);
    kept_the_contract(&v);
    assert_eq!(v["switched"], false, "{v}");
    assert!(notes(&v).contains("fenced itself"), "{v}");

    // Every process of the active node killed while Dovecot held a
    // mailbox's lock: SMTP on the peer, and the mailbox opens there.
    let dead = active_node().expect("the mail runs somewhere");
    plant_a_dovecot_lock(&dead);
    let v = drill(&["kill-node", "active"]);
    kept_the_contract(&v);
    assert_eq!(v["switched"], true, "{v}");
    assert_ne!(v["node_after"], v["node_before"], "{v}");
    the_dead_nodes_lock_does_not_close_the_mailbox(v["node_after"].as_str().unwrap());

    // The active node frozen: its watchdog resets it BEFORE the peer holds
    // the lease, then SMTP on the peer.
    let v = drill(&["freeze-node", "active"]);
    kept_the_contract(&v);
    assert_eq!(v["switched"], true, "{v}");
    let note = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.contains("reset by its watchdog"))
        .unwrap_or_else(|| panic!("no reset seen: {v}"));
    let (reset, taken) =
        reset_and_takeover(note).unwrap_or_else(|| panic!("reset and takeover: {v}"));
    assert!(reset < taken, "the peer held the lease first: {v}");
    // The reset left ext4's MMP block "in use"; the lease proved the reset,
    // so the peer cleared it instead of waiting ~42 s.
    assert!(notes(&v).contains("cleared the MMP block"), "{v}");

    // Both nodes start together, cut off from each other: exactly one
    // mounts (the lease arbitrates), then the cluster is whole again.
    let v = drill(&["simul-start"]);
    kept_the_contract(&v);
    assert!(notes(&v).contains("at most 1 at once"), "{v}");
    assert!(
        notes(&v).contains("lease holders at the end of the cut: [\\\"node"),
        "{v}"
    );

    a_fence_ends_a_sandboxed_writer_before_the_peer_mounts();

    a_reset_ends_the_nodes_io();

    ok(lab().args(["down"]), Duration::from_secs(60));
    drop(guard);
}

const VIP: &str = "198.51.100.100";

/// user1's INBOX, where the drills' load delivers and the soak reads.
const INBOX: &str = "/srv/data/vmail/lab.test/user1/Maildir";

/// The state a node leaves when it dies while Dovecot updates a mailbox's
/// uidlist (a delivery, a flag change): `dovecot-uidlist.lock`, holding
/// `pid:host` as Dovecot writes it. Dovecot holds it for milliseconds, so
/// the test puts it there instead of racing a kill against it; what the
/// survivor finds on the disk is the same.
fn plant_a_dovecot_lock(node: &str) {
    let o = exec(
        node,
        &[
            "sh",
            "-c",
            &format!(
                "cd {INBOX} && printf '%s:%s' 4242 \"$(hostname)\" >dovecot-uidlist.lock \
                 && chown --reference=. dovecot-uidlist.lock && cat dovecot-uidlist.lock"
            ),
        ],
    );
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
}

/// Dovecot cannot check another host's pid: it waits for the lock to go
/// stale (2 minutes) and fails every SELECT of that mailbox meanwhile (an
/// hour's soak: IMAP down 119.8 s after the active node's reset). The
/// takeover removes the dead node's lock, so the mailbox opens as soon as
/// Dovecot answers on the survivor.
fn the_dead_nodes_lock_does_not_close_the_mailbox(survivor: &str) {
    let o = exec(survivor, &["ls", "-a", INBOX]);
    assert!(
        !o.stdout.lines().any(|l| l == "dovecot-uidlist.lock"),
        "the dead node's lock is still in {INBOX} on {survivor}: {}",
        o.stdout
    );
    let out = base_dir().join("imap-read-after-kill.txt");
    let t = Instant::now();
    loop {
        let o = exec(
            "client",
            &[
                env!("CARGO_BIN_EXE_mailha-lab"),
                "imap-read",
                "--vip",
                VIP,
                "--out",
                &out.display().to_string(),
            ],
        );
        if o.code == Some(0) {
            break;
        }
        // Dovecot may still be starting; its lock wait would be 120 s.
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "INBOX cannot be opened on {survivor} {:?} after the takeover: {}{}",
            t.elapsed(),
            o.stdout,
            o.stderr
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = std::fs::read_to_string(
        mailha_lab::plan::node_root(&base_dir(), survivor).join("var/log/pacemaker/pacemaker.log"),
    )
    .unwrap_or_default();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("stale locks on"))
        .collect();
    assert!(
        said.iter()
            .any(|l| l.contains("removed ") && l.contains("user1/Maildir/dovecot-uidlist.lock")),
        "the storage agent did not say what it removed on {survivor}: {said:?}"
    );
}

fn pid1(node: &str) -> u64 {
    let lab: serde_json::Value = lab_status();
    lab["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .and_then(|n| n["holder_pid"].as_u64())
        .unwrap_or_else(|| panic!("{node} in {lab}"))
}

fn active_node() -> Option<String> {
    let o = exec("node1", &["mailha", "status", "--json"]);
    let o = if o.code == Some(0) {
        o
    } else {
        exec("node2", &["mailha", "status", "--json"])
    };
    let st: serde_json::Value = serde_json::from_str(&o.stdout).ok()?;
    st["active_node"].as_str().map(str::to_string)
}

/// Issue 12, item 1, as it was seen: a daemon run the way systemd runs
/// MariaDB or Dovecot (a unit with `PrivateTmp=`, so a mount namespace of
/// its own) writes the shared data on the active node, and the peer fences
/// that node. The fence must end the writer too (or not ack, and let the
/// watchdog reset the node): before the fix the fence acked with the
/// writer alive, the peer's mount was refused by ext4's MMP, fs-data's
/// fail count went to INFINITY and the mail was down on both nodes.
fn a_fence_ends_a_sandboxed_writer_before_the_peer_mounts() {
    let active = active_node().expect("the mail runs somewhere");
    let peer = if active == "node1" { "node2" } else { "node1" };
    let o = exec(
        &active,
        &[
            "systemd-run",
            "--unit=lab-writer",
            "--property=PrivateTmp=yes",
            "--property=ProtectSystem=full",
            "/bin/sh",
            "-c",
            // One dd holds the file open the whole time (the fs stays
            // busy) and writes each timestamp with O_DSYNC: a line is on
            // the disk when its write returns, so the last line the peer
            // reads is the writer's last write.
            "while :; do date +%s.%6N; sleep 0.1; done | dd of=/srv/data/lab-writer.log oflag=append,dsync conv=notrunc status=none",
        ],
    );
    assert_eq!(o.code, Some(0), "systemd-run in {active}: {}", o.stderr);
    let o = exec(
        &active,
        &[
            "sh",
            "-c",
            "sleep 1; readlink /proc/1/ns/mnt /proc/$(systemctl show -P MainPID lab-writer)/ns/mnt",
        ],
    );
    let ns: Vec<&str> = o.stdout.lines().collect();
    assert!(
        ns.len() == 2 && ns[0] != ns[1],
        "the writer runs in a mount namespace of its own: {} {}",
        o.stdout,
        o.stderr
    );

    let boot = pid1(&active);
    let fenced_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let o = exec(
        peer,
        &["stonith_admin", "--fence", &active, "--timeout", "50"],
    );
    assert_eq!(
        o.code,
        Some(0),
        "fencing {active} from {peer}: {} {}",
        o.stdout,
        o.stderr
    );

    // The peer runs the mail, its mount of the data accepted.
    let t = Instant::now();
    loop {
        let xml = exec(peer, &["crm_mon", "-1", "--output-as=xml"]).stdout;
        // `<resource id="fs-data" ... role="Started" ...>` then its `<node name=...>`.
        let lines: Vec<&str> = xml.lines().collect();
        let started_here = lines.windows(2).any(|w| {
            w[0].contains("id=\"fs-data\"")
                && w[0].contains("role=\"Started\"")
                && w[1].contains(&format!("name=\"{peer}\""))
        });
        let failed = xml
            .lines()
            .any(|l| l.contains("<failure ") && l.contains("fs-data_start_0"));
        assert!(!failed, "fs-data's start failed after the fence:\n{xml}");
        if started_here && active_node().as_deref() == Some(peer) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the mail is not on {peer} 90 s after the fence:\n{xml}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The writer is gone from the fenced node (ended by the fence, or the
    // node reset by its watchdog: then exec finds nothing running either).
    let o = exec(&active, &["systemctl", "is-active", "lab-writer"]);
    assert_ne!(o.stdout.trim(), "active", "the writer survived the fence");
    // And it ended before the peer could mount: its last write (read on
    // the peer, from the shared disk) precedes the moment the peer's
    // keeper took the lease, which the storage start waits for.
    let log = exec(peer, &["cat", "/srv/data/lab-writer.log"]).stdout;
    let last_write = last_write(&log).expect("the writer wrote timestamps to the data");
    let took = lease_taken_at(peer, fenced_at).expect("the peer's keeper logged taking the lease");
    assert!(
        last_write < took,
        "the writer wrote at {last_write:.6}, after {peer} took the lease at {took:.6}"
    );
    // A fence is a reset (issue 19): the fenced node's keeper reboots it
    // after the ack, the lab boots it again, and it rejoins whole.
    rejoins_whole(&active, boot);
    println!(
        "fence of {active} with a sandboxed writer: the mail on {peer} after {:.1} s, \
         the writer's last write {:.3} s before {peer} took the lease",
        t.elapsed().as_secs_f64(),
        took - last_write
    );
}

/// The writer's last write, in seconds since the epoch, from its log
/// (`date +%s.%6N` lines): the last whole line, or, when the log ends in
/// a torn line (the fence ended that write midway: seen, 8 of its 18
/// bytes on the disk), a bound on that write's start, which came one
/// 0.1 s sleep and a fork after the last whole line: 0.5 s later.
fn last_write(log: &str) -> Option<f64> {
    let stamp = |l: &str| -> Option<f64> {
        let (s, us) = l.split_once('.')?;
        let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
        (digits(s, 10) && digits(us, 6)).then(|| l.parse().ok())?
    };
    let whole: Vec<&str> = log.split_inclusive('\n').collect();
    let torn = whole.last().is_some_and(|l| !l.ends_with('\n'));
    let last = whole
        .iter()
        .filter_map(|l| stamp(l.strip_suffix('\n')?))
        .next_back()?;
    Some(if torn { last + 0.5 } else { last })
}

/// When `node`'s keeper first said it took the lease, since `since` (unix
/// seconds): journald's microsecond time of the line.
fn lease_taken_at(node: &str, since: u64) -> Option<f64> {
    let o = exec(
        node,
        &[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "--output-fields=MESSAGE",
            "-u",
            "mailha-lease",
            "--since",
            &format!("@{since}"),
        ],
    );
    o.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains("the data lease is ours"))
        })
        .filter_map(|v| v["__REALTIME_TIMESTAMP"].as_str()?.parse::<u64>().ok())
        .next()
        .map(|us| us as f64 / 1e6)
}

/// After its fence, `node` (whose boot was `boot`) boots again by itself
/// and rejoins whole: `mailha status` there says OK (its keeper answers,
/// is not fenced, and Pacemaker shows both nodes online).
fn rejoins_whole(node: &str, boot: u64) {
    let t = Instant::now();
    while pid1(node) == boot {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{node} was not booted again within 120 s of its fence (watchdog log:\n{})",
            std::fs::read_to_string(base_dir().join(node).join("watchdog.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let t = Instant::now();
    loop {
        let o = exec(node, &["mailha", "status"]);
        if o.stdout.starts_with("OK") {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{node} did not rejoin whole within 120 s of its boot:\n{}{}",
            o.stdout,
            o.stderr
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// DESIGN section 7: a real reset also ends the machine's I/O. The active
/// node's disk path hangs and a reader sits in D state on it, where no
/// SIGKILL reaches; its keeper cannot renew, fences itself and stops
/// petting; the emulated watchdog fails the node's storage path (eio) as
/// it resets the node, so the stuck reader ends and the node is gone:
/// no D-state wait keeps it alive. Ends with one node down (the lab goes
/// down next).
fn a_reset_ends_the_nodes_io() {
    let active = active_node().expect("the mail runs somewhere");
    let holder = pid1(&active);
    let mode = base_dir().join("fusedisk").join(format!("{active}.mode"));
    // A reader re-reading one block (O_DIRECT) until a read fails, started
    // while the path still works: once the path hangs it waits in the
    // kernel. (Started after the hang, it could come too late: the node is
    // reset ~4 s after its path hangs.)
    let mut reader = lab()
        .args(["exec", &active, "--timeout", "120s", "--"])
        .args([
            "sh",
            "-c",
            "while dd if=/dev/lab/data of=/dev/null bs=4096 count=1 skip=21 iflag=direct 2>/dev/null; do :; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Seen from the host: the state of the node's dd processes.
    let dd_states = || -> Vec<char> {
        let ns = std::fs::read_link(format!("/proc/{holder}/ns/pid")).ok();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| ns.is_some() && std::fs::read_link(e.path().join("ns/pid")).ok() == ns)
            .filter_map(|e| {
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let rest = stat.strip_prefix(&format!("{} (dd) ", e.file_name().to_str()?))?;
                rest.chars().next()
            })
            .collect()
    };
    let t = Instant::now();
    let mut seen = false;
    while !seen {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the reader never started in {active}"
        );
        // The shell loop runs dd after dd; any one seen will do.
        seen = !dd_states().is_empty();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&mode, "hang").unwrap();
    let t = Instant::now();
    while !dd_states().contains(&'D') {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the reader never blocked on the hung path"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Reset: every process of the node gone, the stuck reader included,
    // with nobody but the watchdog touching the path.
    let t = Instant::now();
    while Path::new(&format!("/proc/{holder}")).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{active} still runs 60 s after its disk path hung (mode {:?}, watchdog log:\n{})",
            std::fs::read_to_string(&mode),
            std::fs::read_to_string(base_dir().join(&active).join("watchdog.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = reader.wait();
    assert_eq!(std::fs::read_to_string(&mode).unwrap(), "eio");
    let log = std::fs::read_to_string(base_dir().join(&active).join("watchdog.log")).unwrap();
    assert!(
        log.contains(&format!(
            "resetting the node (SIGKILL to its PID 1, {holder})"
        )),
        "{log}"
    );
    assert!(log.contains("storage path failed (eio"), "{log}");
    // The peer's takeover after a reset is freeze-node's (above).
}

/// Issue 19, defect 1: `stonith_admin --reboot` of the node running the
/// mail. Before the fix its keeper killed the shared mounts' users and the
/// stack, acked, and left the node on the network: the VIP still on eth0,
/// memcached and Dovecot still running, and Pacemaker later found the VIP
/// "active on 2 nodes" and restarted the stack on the survivor (a second
/// outage). A fence must mean off or reset: right after the fence returns
/// the target holds no VIP and none of its daemons answers; the mail runs
/// on the peer without any "active on 2 nodes" recovery; the target boots
/// again by itself and rejoins whole (a switchover back to it works).
#[test]
fn a_fence_takes_the_node_off_the_network_and_it_comes_back_whole() {
    if !skip_unless_ready("lab fence reset", &["/usr/bin/swaks"]) {
        return;
    }
    let (_turn, guard) = lab_up("postfix");
    let target = active_node().expect("the mail runs somewhere");
    let peer = if target == "node1" { "node2" } else { "node1" };
    let boot = pid1(&target);
    let since = exec(peer, &["date", "+%s"]).stdout.trim().to_string();
    let o = exec(
        peer,
        &["stonith_admin", "--reboot", &target, "--timeout", "50"],
    );
    assert_eq!(
        o.code,
        Some(0),
        "fencing {target}: {} {}",
        o.stdout,
        o.stderr
    );

    // At once: nothing of the target on the network. While its old boot
    // still runs, ask it; once gone, it holds nothing by construction.
    let old_boot_runs = || Path::new(&format!("/proc/{boot}")).exists();
    if old_boot_runs() {
        let o = exec(
            &target,
            &["ip", "-o", "addr", "show", "to", "198.51.100.100"],
        );
        assert!(
            !(old_boot_runs() && o.stdout.contains("198.51.100.100")),
            "{target} still has the VIP after its fence was acked: {}",
            o.stdout
        );
        let o = exec(
            &target,
            &[
                "sh",
                "-c",
                "pidof memcached dovecot master mariadbd || true",
            ],
        );
        assert!(
            !old_boot_runs() || o.stdout.trim().is_empty(),
            "{target}'s mail daemons still run after its fence was acked: {}",
            o.stdout
        );
    }
    for port in ["25", "143", "11211", "3306"] {
        let o = exec(
            peer,
            &[
                "timeout",
                "3",
                "bash",
                "-c",
                &format!("</dev/tcp/{target}/{port}"),
            ],
        );
        assert_ne!(
            o.code,
            Some(0),
            "port {port} of the fenced {target} answers"
        );
    }

    // The mail on the peer.
    let t = Instant::now();
    while active_node().as_deref() != Some(peer) {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the mail is not on {peer} 90 s after the fence"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The target boots again by itself (its keeper rebooted it; the lab
    // boots a node that rebooted itself, as a machine comes back), and
    // rejoins whole: its keeper idle, not fenced, `mailha status` OK.
    rejoins_whole(&target, boot);
    let log = std::fs::read_to_string(base_dir().join(&target).join("watchdog.log")).unwrap();
    assert!(log.contains("the node rebooted itself"), "{log}");
    let o = exec(&target, &["mailha", "lease", "status"]);
    let st: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        st["role"] == "idle" && st["self_fenced"].is_null() && st["reset"] == "reboot",
        "{st}"
    );

    // The fence's own SIGKILLs are no crashes: none of the target's units
    // was reported as a daemon that died of itself (each one's
    // `unit-ended` found the keeper's self-fencing mark), so the fence's
    // alert mail carries the fence, not a "restarted" line per daemon.
    let o = exec(
        &target,
        &[
            "sh",
            "-c",
            "grep -rh -A1 'reported by systemd' /var/lib/mailha/spool || true",
        ],
    );
    assert!(
        o.stdout.trim().is_empty(),
        "{target}'s spool holds deaths its own fence caused:\n{}",
        o.stdout
    );

    // No second outage: nobody saw the VIP (or anything) on two nodes.
    for n in ["node1", "node2"] {
        let o = exec(
            n,
            &[
                "journalctl",
                "--since",
                &format!("@{since}"),
                "--no-pager",
                "-q",
            ],
        );
        assert!(
            !o.stdout.contains("might be active on 2 nodes"),
            "{n}'s journal since the fence:\n{}",
            o.stdout
                .lines()
                .filter(|l| l.contains("active on 2 nodes"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Whole: it can take the lease, and the mail, back.
    let v = drill(&["kill-node", "active"]);
    kept_the_contract(&v);
    assert_eq!(v["switched"], true, "{v}");
    assert_eq!(v["node_after"], target.as_str(), "{v}");

    ok(lab().args(["down"]), Duration::from_secs(60));
    drop(guard);
}

/// The same faults without the guard (lab/stock.toml: fencing off, no
/// lease, no watchdog, and, as the original had, no MMP on the data disk):
/// the peer mounts the data while the other node still has it mounted.
/// This is what the guard prevents.
#[test]
fn without_the_guard_the_same_drills_mount_the_data_twice() {
    if !skip_unless_ready("lab stock drills", &["/usr/bin/swaks"]) {
        return;
    }
    let (_turn, guard) = lab_up("stock");

    // kill-node: a dead node holds nothing; the stock cluster recovers too.
    let v = drill(&["kill-node", "active"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["double_mounts"].as_u64(), Some(0), "{v}");
    assert_eq!(v["switched"], true, "{v}");

    // Heartbeat cut: nothing fences the standby; both nodes run the mail
    // stack and mount the data.
    let v = drill(&["cut-heartbeat"]);
    assert_eq!(v["ok"], false, "{v}");
    assert!(notes(&v).contains("no split-brain guard"), "{v}");
    assert!(
        v["double_mounts"].as_u64().unwrap() > 0,
        "a cut heartbeat without the guard mounts twice: {v}"
    );

    // freeze-node: nothing resets the frozen node, whose mount stays while
    // the peer mounts the data too.
    let v = drill(&["freeze-node", "active"]);
    assert_eq!(v["ok"], false, "{v}");
    assert!(notes(&v).contains("no watchdog resets it"), "{v}");
    assert!(
        v["double_mounts"].as_u64().unwrap() > 0,
        "a frozen node without the guard keeps its mount under the peer's: {v}"
    );

    // A node left frozen (a soak ended mid-freeze, no watchdog on stock)
    // is torn down too: its killed PID 1 is reaped only once its frozen
    // nspawn is thawed (a 5-minute bench/soak.sh left one behind).
    let name = format!("mailha-lab-{}-node2", prefix());
    let freeze = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(|root| Path::new(root).join(&name).join("cgroup.freeze"))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no cgroup v2 of {name}"));
    std::fs::write(&freeze, "1").unwrap();
    ok(lab().args(["down"]), Duration::from_secs(60));
    assert!(!freeze.exists(), "{} is still there", freeze.display());
    drop(guard);
}

#[test]
fn the_writers_last_write_is_its_last_whole_line_or_later_when_torn() {
    let log = "1796501840.060305\n1796501840.265212\n";
    assert_eq!(last_write(log), Some(1796501840.265212));
    // Seen after a fence: the last write ended midway.
    let torn = "1796501840.060305\n1796501840.265212\n17965018";
    assert_eq!(last_write(torn), Some(1796501840.265212 + 0.5));
    assert_eq!(last_write("17965018"), None);
    assert_eq!(last_write(""), None);
}

#[test]
fn the_reset_and_takeover_times_are_read_from_the_freeze_note() {
    assert_eq!(
        reset_and_takeover(
            "node2 reset by its watchdog at 2.06 s, node1 held the lease at 5.82 s (after the freeze)"
        ),
        Some((2.06, 5.82))
    );
    assert_eq!(
        reset_and_takeover("node2 reset by its watchdog at never, node1 held the lease at 5.82 s"),
        None
    );
}
