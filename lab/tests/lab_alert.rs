//! Alerts in the lab, end to end (issue 7): the real cluster, the alert
//! agent fired by Pacemaker, the sender clone on both nodes, and the lab's
//! relay in the gw namespace (Postfix with STARTTLS from the lab CA and
//! SASL AUTH through Dovecot) delivering into a Maildir this test reads.
//!
//! Same conventions as tests/lab.rs: root only; SKIPPED without the lab's
//! prerequisites, FAILS in CI; the lab name comes from `MAILHA_TEST_LAB`
//! (default `mht`); a guard runs `lab down` whatever happens. One lab up
//! for every scenario here (an up costs ~25 s).

use base64::Engine;
use mailha_lab::relay::Relay;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

mod common;

use common::*;

fn skip_unless_ready_alert(test: &str) -> bool {
    skip_unless_ready(
        test,
        &["/usr/bin/openssl", "/usr/sbin/dovecot", "/usr/sbin/postfix"],
    )
}

fn relay() -> Relay {
    Relay::new(&base_dir())
}

fn relay_ctl(verb: &str) {
    let argv = relay().postfix_argv(verb);
    ok(
        lab()
            .args(["exec", "gw", "--timeout", "30s", "--"])
            .args(&argv),
        Duration::from_secs(60),
    );
}

fn spool(node: &str) -> PathBuf {
    base_dir().join(node).join("root/var/lib/mailha/spool")
}

/// The incident directories under `dir` (a spool's `sent/`).
fn ids_under(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The incidents in `node`'s `sent/` that were not in `before`, oldest
/// first: their id, events and whether the sender kept them back as a
/// repeat (its `quieted` mark).
fn new_incidents(
    node: &str,
    before: &BTreeSet<String>,
) -> Vec<(String, Vec<serde_json::Value>, bool)> {
    let sent = spool(node).join("sent");
    ids_under(&sent)
        .into_iter()
        .filter(|id| !before.contains(id))
        .map(|id| {
            let dir = sent.join(&id);
            let mut files = Vec::new();
            files_under(&dir, &mut files);
            let events = files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "json"))
                .filter_map(|f| serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok())
                .collect();
            let quieted = dir.join("quieted").exists();
            (id, events, quieted)
        })
        .collect()
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

/// Nothing waiting in either node's spool and no new mail at the relay
/// for `quiet`: every recorded event has been mailed.
fn wait_until_all_sent(quiet: Duration, deadline: Duration) -> Vec<PathBuf> {
    let t = Instant::now();
    let mut last = relay().delivered();
    let mut since = Instant::now();
    loop {
        let now = relay().delivered();
        if now != last {
            last = now;
            since = Instant::now();
        }
        // Idle: nothing left in either spool, and the relay delivered
        // every mail it accepted (a mail handed over a moment ago is out
        // of the spool but not yet in the Maildir).
        let idle = ["node1", "node2"].iter().all(|n| {
            entries(&spool(n).join("pending")) == 0 && entries(&spool(n).join("outbox")) == 0
        }) && last.len() >= relay().accepted();
        if idle && since.elapsed() >= quiet {
            return last;
        }
        assert!(
            t.elapsed() < deadline,
            "alerts still pending after {deadline:?}; relay log:\n{}",
            std::fs::read_to_string(relay().log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_for_mails(n: usize, deadline: Duration) -> Vec<PathBuf> {
    let t = Instant::now();
    loop {
        let d = relay().delivered();
        if d.len() >= n {
            return d;
        }
        assert!(
            t.elapsed() < deadline,
            "{} mails, not {n}, within {deadline:?}; relay log:\n{}",
            d.len(),
            std::fs::read_to_string(relay().log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A delivered mail, taken apart just enough: headers, and each MIME
/// leaf's content type, file name and decoded body.
struct Mail {
    raw: String,
    parts: Vec<(String, Option<String>, Vec<u8>)>,
}

fn header(block: &str, name: &str) -> Option<String> {
    let mut lines = block.split('\n').map(|l| l.trim_end_matches('\r'));
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let first = lines.find(|l| l.to_ascii_lowercase().starts_with(&prefix))?;
    let mut v = first[prefix.len()..].trim().to_string();
    for l in lines {
        if !l.starts_with([' ', '\t']) {
            break;
        }
        v.push(' ');
        v.push_str(l.trim());
    }
    Some(v)
}

fn qp_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b.get(i + 1) == Some(&b'\r') || b.get(i + 1) == Some(&b'\n') => {
                i += if b.get(i + 1) == Some(&b'\r') { 3 } else { 2 };
            }
            b'=' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn leaves(entity: &str, out: &mut Vec<(String, Option<String>, Vec<u8>)>) {
    let norm = entity.replace("\r\n", "\n");
    let (head, body) = norm.split_once("\n\n").unwrap_or((&norm, ""));
    let ctype = header(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    if ctype.to_ascii_lowercase().starts_with("multipart/") {
        let b = ctype
            .split("boundary=")
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .split(['"', ';'])
            .next()
            .unwrap()
            .to_string();
        let delim = format!("--{b}");
        for part in body.split(&delim).skip(1) {
            if part.starts_with("--") {
                break;
            }
            leaves(part.trim_start_matches('\n'), out);
        }
        return;
    }
    let cte = header(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let data = match cte.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .unwrap(),
        "quoted-printable" => qp_decode(body),
        _ => body.as_bytes().to_vec(),
    };
    let disp = header(head, "Content-Disposition").unwrap_or_default();
    let file = disp
        .split("filename=")
        .nth(1)
        .map(|f| f.trim_matches('"').to_string());
    out.push((ctype, file, data));
}

fn read_mail(p: &Path) -> Mail {
    let raw = std::fs::read_to_string(p).unwrap();
    let mut parts = Vec::new();
    leaves(&raw, &mut parts);
    Mail { raw, parts }
}

impl Mail {
    fn subject(&self) -> String {
        let v = header(&self.raw.replace("\r\n", "\n"), "Subject").unwrap();
        let mut out = String::new();
        for w in v.split(' ') {
            match w
                .strip_prefix("=?utf-8?b?")
                .or_else(|| w.strip_prefix("=?UTF-8?B?"))
                .and_then(|w| w.strip_suffix("?="))
            {
                Some(b) => out.push_str(
                    &String::from_utf8(
                        base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
                    )
                    .unwrap(),
                ),
                None => {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(w);
                }
            }
        }
        out
    }
    fn message_id(&self) -> String {
        header(&self.raw.replace("\r\n", "\n"), "Message-ID").unwrap_or_default()
    }
    fn part(&self, ctype: &str) -> Option<String> {
        self.parts
            .iter()
            .find(|(t, f, _)| t.starts_with(ctype) && f.is_none())
            .map(|(_, _, d)| String::from_utf8(d.clone()).expect("UTF-8 part"))
    }
    fn attachment(&self, name: &str) -> Option<String> {
        self.parts
            .iter()
            .find(|(_, f, _)| f.as_deref() == Some(name))
            .map(|(_, _, d)| String::from_utf8_lossy(d).into_owned())
    }
}

fn new_mails(before: &[PathBuf], now: &[PathBuf]) -> Vec<PathBuf> {
    now.iter()
        .filter(|p| !before.contains(p))
        .cloned()
        .collect()
}

/// Every file under `dir` (logs), recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

#[test]
fn alerts_reach_the_lab_relay_once_in_chinese_over_tls_and_auth_survive_a_relay_outage_and_a_node_death()
 {
    if !skip_unless_ready_alert("lab alerts") {
        return;
    }
    let guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(lab().args(["up"]), Duration::from_secs(240));

    // The cluster's own start (resources started, nodes joined) makes its
    // first mails; wait until they are all out.
    let before = wait_until_all_sent(Duration::from_secs(8), Duration::from_secs(120));
    assert!(
        !before.is_empty(),
        "the start of the cluster mailed nothing; relay log:\n{}",
        std::fs::read_to_string(relay().log()).unwrap_or_default()
    );
    // Every session that handed over a mail used STARTTLS and AUTH (the
    // relay refuses anything else; its log says what each session did).
    let relay_log = std::fs::read_to_string(relay().log()).unwrap_or_default();
    let sessions: Vec<&str> = relay_log
        .lines()
        .filter(|l| l.contains("disconnect from") && l.contains(" mail=1"))
        .collect();
    assert!(!sessions.is_empty(), "{relay_log}");
    for l in &sessions {
        assert!(
            l.contains("starttls=1") && l.contains("auth=1"),
            "a mail came in without TLS or AUTH: {l}"
        );
    }
    assert!(
        relay_log.contains("sasl_username=mailha-alerts"),
        "{relay_log}"
    );

    // 1. A drill makes exactly one incident mail, with its parts.
    let v = drill(&["kill-daemon", "postfix"]);
    assert_eq!(v["ok"], true, "{v}");
    let after = wait_until_all_sent(Duration::from_secs(8), Duration::from_secs(120));
    let fresh = new_mails(&before, &after);
    assert_eq!(fresh.len(), 1, "one incident, one mail: {fresh:?}");
    let m = read_mail(&fresh[0]);
    let subject = m.subject();
    assert!(
        subject.starts_with("邮件系统高可用告警 [实验室] "),
        "{subject}"
    );
    assert!(subject.contains("svc-postfix"), "{subject}");
    let text = m.part("text/plain").expect("a text part");
    let html = m.part("text/html").expect("an HTML part");
    assert!(
        text.contains("请在任一节点运行 mailha status 查看状态"),
        "the advice arrives intact:\n{text}"
    );
    assert!(text.contains("svc-postfix"), "{text}");
    assert!(
        html.contains("邮件") && html.contains("svc-postfix"),
        "{html}"
    );
    let bundle = m.attachment("diagnostics.txt").expect("the bundle");
    assert!(bundle.contains("crm_mon"), "{bundle}");

    // 2. The relay is down during two incidents: both arrive after it
    // returns, once each.
    relay_ctl("stop");
    let v = drill(&["kill-daemon", "postfix"]);
    assert_eq!(v["ok"], true, "{v}");
    std::thread::sleep(Duration::from_secs(7)); // past the batch window
    let v = drill(&["kill-daemon", "dovecot"]);
    assert_eq!(v["ok"], true, "{v}");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(relay().delivered(), after, "the relay was down");
    relay_ctl("start");
    let all = wait_for_mails(after.len() + 2, Duration::from_secs(240));
    let all_quiet = wait_until_all_sent(Duration::from_secs(8), Duration::from_secs(240));
    assert_eq!(all_quiet.len(), all.len(), "nothing beyond the two");
    let two: Vec<Mail> = new_mails(&after, &all_quiet)
        .iter()
        .map(|p| read_mail(p))
        .collect();
    assert_eq!(two.len(), 2);
    let mut subjects: Vec<String> = two.iter().map(|m| m.subject()).collect();
    subjects.sort_by_key(|s| !s.contains("svc-postfix"));
    assert!(
        subjects[0].contains("svc-postfix") && subjects[1].contains("svc-dovecot"),
        "{subjects:?}"
    );
    let ids: BTreeSet<String> = all_quiet
        .iter()
        .map(|p| read_mail(p).message_id())
        .collect();
    assert_eq!(ids.len(), all_quiet.len(), "a mail was delivered twice");

    // 3. Cross-node dedup as the cluster did it: no node recorded a node or
    // fencing event about itself, so each such event was mailed once.
    for node in ["node1", "node2"] {
        let mut files = Vec::new();
        files_under(&spool(node).join("sent"), &mut files);
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let e: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            if matches!(e["kind"].as_str(), Some("node" | "fencing")) {
                assert_ne!(e["node"].as_str(), Some(node), "{node} recorded {e}");
            }
        }
    }

    // 4. The relay password is nowhere it must not be: no command line of
    // any process on this machine, no log of either node or of the relay,
    // no spool file, no mail and no bundle.
    let password = std::fs::read_to_string(relay().password_file())
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 32);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&c).contains(&password),
                "in /proc/{}/cmdline",
                e.file_name().to_string_lossy()
            );
        }
    }
    let mut files = Vec::new();
    for node in ["node1", "node2"] {
        files_under(&base_dir().join(node).join("root/var/log"), &mut files);
        files_under(&spool(node), &mut files);
    }
    files.push(relay().log());
    files.push(relay().dir.join("dovecot.log"));
    files.extend(relay().delivered());
    assert!(files.len() > 10, "{files:?}");
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(&password),
            "the password is in {}",
            f.display()
        );
    }
    for p in relay().delivered() {
        let m = read_mail(&p);
        for (_, _, data) in &m.parts {
            assert!(
                !String::from_utf8_lossy(data).contains(&password),
                "the password is in a part of {}",
                p.display()
            );
        }
    }

    // 5. A failure that keeps coming back: the standby's ping target
    // unanswering for 50 s. Its failed ping start is retried every ~12 s
    // (the clone's failure-timeout) and fails each time: the first of a
    // kind is mailed, the same again is kept back in the standby's sent/
    // (quieted, in no mail), and the network's return is mailed.
    let o = exec("node1", &["mailha", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| {
        panic!("mailha status: {e}: {}{}", o.stdout, o.stderr);
    });
    let (active, standby) = match st["active_node"].as_str() {
        Some("node1") => ("node1", "node2"),
        Some("node2") => ("node2", "node1"),
        other => panic!("the VIP is not placed: {other:?}"),
    };
    let before_cut = wait_until_all_sent(Duration::from_secs(8), Duration::from_secs(120));
    let sent_before: BTreeSet<String> = ids_under(&spool(standby).join("sent"));
    let gw = mailha_lab::topology::Aux::Gw.addr().to_string();
    let table = "mailha_test_ping";
    let nft = |args: &[&str]| {
        let mut argv = vec!["nft"];
        argv.extend_from_slice(args);
        let o = exec(standby, &argv);
        assert_eq!(o.code, Some(0), "{argv:?} in {standby}: {}", o.stderr);
    };
    nft(&["add", "table", "inet", table]);
    for (chain, hook) in [("out", "output"), ("in", "input")] {
        let spec = format!("{{ type filter hook {hook} priority -10 ; }}");
        nft(&["add", "chain", "inet", table, chain, &spec]);
    }
    // ICMP only: the relay is in gw too, and the kept-back repeats are
    // decided as each incident is mailed (a relay out of reach as well
    // only delays every decision until it is back).
    for (chain, dir) in [("out", "daddr"), ("in", "saddr")] {
        nft(&[
            "add", "rule", "inet", table, chain, "ip", dir, &gw, "ip", "protocol", "icmp", "drop",
        ]);
    }
    std::thread::sleep(Duration::from_secs(50));
    nft(&["delete", "table", "inet", table]);
    let t = Instant::now();
    let ping_back = loop {
        let back = new_incidents(standby, &sent_before)
            .into_iter()
            .find(|(_, events, _)| {
                events.iter().any(|e| {
                    e["rsc"] == "ping"
                        && e["task"] == "start"
                        && e["rc"] == 0
                        && e["node"] == standby
                })
            });
        if let Some(b) = back {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{standby}'s ping never started again after its network came back"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // A standby without network is no reason to move the mail.
    let o = exec("node1", &["mailha", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| {
        panic!("mailha status: {e}: {}{}", o.stdout, o.stderr);
    });
    assert_eq!(
        st["active_node"].as_str(),
        Some(active),
        "the mail moved while only the standby's network was cut: {st}"
    );
    let after_cut = wait_until_all_sent(Duration::from_secs(8), Duration::from_secs(180));
    let mailed: BTreeSet<String> = new_mails(&before_cut, &after_cut)
        .iter()
        .map(|p| read_mail(p).message_id())
        .collect();
    let in_a_mail = |id: &str| mailed.iter().any(|m| m.contains(&format!("<{id}.mailha@")));
    let failures: Vec<(String, bool)> = new_incidents(standby, &sent_before)
        .into_iter()
        .filter(|(_, events, _)| {
            events.iter().all(|e| e["rsc"] == "ping")
                && events
                    .iter()
                    .any(|e| e["rc"].as_i64().is_some_and(|rc| rc != 0))
        })
        .map(|(id, _, quieted)| (id, quieted))
        .collect();
    println!("{standby}'s ping failures while cut off (id, quieted): {failures:?}");
    assert!(
        failures.len() >= 3,
        "a start retried every ~12 s for 50 s: {failures:?}"
    );
    for (id, quieted) in &failures {
        assert_eq!(
            in_a_mail(id),
            !quieted,
            "incident {id}: quieted {quieted}, mails {mailed:?}"
        );
    }
    assert!(
        failures.iter().any(|(_, q)| *q),
        "the same failure again was mailed each time: {failures:?}"
    );
    assert!(
        !ping_back.2 && in_a_mail(&ping_back.0),
        "the network's return ({}) is news: mailed",
        ping_back.0
    );

    // 6. The node running the mail dies (its holder killed: a power-off).
    // The survivor's sender, already running as the other clone instance,
    // mails the loss; the dead node mails nothing, so it arrives once.
    let status: serde_json::Value = lab_status();
    let active = run(
        lab().args(["exec", "node1", "--", "mailha", "status", "--json"]),
        Duration::from_secs(60),
    );
    let active: serde_json::Value = serde_json::from_str(&active.stdout).unwrap();
    let dead = active["active_node"]
        .as_str()
        .expect("the VIP is placed")
        .to_string();
    let survivor = if dead == "node1" { "node2" } else { "node1" };
    let holder = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == dead.as_str())
        .and_then(|n| n["holder_pid"].as_u64())
        .unwrap();
    let before_death = relay().delivered();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let lost = format!("节点 {dead} 已离开集群（lost）");
    let t = Instant::now();
    let told: Vec<Mail> = loop {
        let told: Vec<Mail> = new_mails(&before_death, &relay().delivered())
            .iter()
            .map(|p| read_mail(p))
            .filter(|m| m.part("text/plain").is_some_and(|t| t.contains(&lost)))
            .collect();
        if !told.is_empty() {
            // Give a duplicate the time to show up, then count.
            std::thread::sleep(Duration::from_secs(12));
            break new_mails(&before_death, &relay().delivered())
                .iter()
                .map(|p| read_mail(p))
                .filter(|m| m.part("text/plain").is_some_and(|t| t.contains(&lost)))
                .collect();
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no mail about {dead}'s death; relay log:\n{}",
            std::fs::read_to_string(relay().log()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(told.len(), 1, "the loss of {dead} mailed once");
    assert!(
        told[0].message_id().ends_with(&format!("@{survivor}>")),
        "{}",
        told[0].message_id()
    );

    // 7. `lab down` ends the relay's daemons with the gw namespace.
    let pid_of = |f: &str| -> u32 {
        std::fs::read_to_string(relay().dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .trim()
            .parse()
            .unwrap()
    };
    let daemons = [
        pid_of("postfix/queue/pid/master.pid"),
        pid_of("dovecot/run/master.pid"),
    ];
    ok(lab().args(["down"]), Duration::from_secs(60));
    // Gone, or a zombie this machine's init has not reaped yet.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    for pid in daemons {
        assert!(!alive(pid), "relay daemon {pid} outlived lab down");
    }
    drop(guard);
}
