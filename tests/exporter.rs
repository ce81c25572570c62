//! `mailha exporter` as a process on 127.0.0.1, with a stand-in crm_mon
//! found through PATH (test equipment only: the shipped exporter runs
//! Pacemaker's). No assertion on time: deadlines here only keep a broken
//! exporter from hanging the suite (bench/exporter.sh measures speed).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for any healthy answer on a loaded machine.
const GENEROUS: Duration = Duration::from_secs(60);

struct Exporter {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    /// The exporter with `extra` in its `[exporter]` table; the stand-in
    /// crm_mon prints the `healthy.xml` fixture, or hangs while the file
    /// `hang` exists, and counts its runs in `runs`.
    fn start(extra: &str) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let d = dir.path().display();
        write_exec(
            &bin.join("crm_mon"),
            &format!(
                "#!/bin/sh\necho run >> {d}/runs\nif [ -e {d}/hang ]; then exec sleep 600; fi\nexec cat {}\n",
                repo().join("tests/fixtures/status/healthy.xml").display()
            ),
        );
        let port = free_port();
        let timeout = if extra.contains("scrape_timeout") {
            ""
        } else {
            "scrape_timeout = \"1s\"\n"
        };
        let cfg = dir.path().join("mailha.toml");
        std::fs::write(
            &cfg,
            format!("{BASE}\n[exporter]\nlisten = \"127.0.0.1:{port}\"\n{timeout}{extra}\n"),
        )
        .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let child = Command::new(assert_cmd::cargo::cargo_bin("mailha"))
            .args(["--config"])
            .arg(&cfg)
            .args(["exporter", "--spool"])
            .arg(dir.path().join("spool"))
            // No keeper answers here: a test must not talk to a real one.
            .args(["--lease-socket", "mailha-test-no-keeper"])
            .arg("--cib-file")
            .arg(dir.path().join("no-cib.xml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let e = Exporter { child, port, dir };
        let until = Instant::now() + GENEROUS;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the exporter never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        e
    }

    fn get(&self, path: &str, auth: Option<(&str, &str)>) -> (String, String) {
        use base64::Engine;
        let auth = auth
            .map(|(u, p)| {
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Authorization: Basic {b}\r\n")
            })
            .unwrap_or_default();
        let (head, body) = self.request(path, &auth);
        (head.lines().next().unwrap().to_string(), body)
    }

    /// The whole head and the body of a GET with `headers` (each ending
    /// in CRLF).
    fn request(&self, path: &str, headers: &str) -> (String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(GENEROUS)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
        (head.to_string(), body.to_string())
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn value(body: &str, series: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

#[test]
fn a_scrape_returns_the_cluster_s_metrics_from_one_crm_mon() {
    let e = Exporter::start("");
    let (status, body) = e.get("/metrics", None);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(
        value(&body, "mailha_scrape_ok").as_deref(),
        Some("1"),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "ha_cluster_pacemaker_nodes{node=\"mail1\",type=\"member\",status=\"online\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(value(&body, "mailha_lease_keeper_up").as_deref(), Some("0"));
    assert_eq!(e.runs(), 1, "one scrape, one crm_mon");
    let (_, body) = e.get("/metrics", None);
    assert_eq!(value(&body, "mailha_scrapes_total").as_deref(), Some("2"));
    assert_eq!(e.runs(), 2);
}

#[test]
fn clients_that_connect_and_say_nothing_do_not_stop_a_scrape() {
    let e = Exporter::start("");
    // More silent clients than the exporter keeps waiting: the oldest
    // are dropped, and the scraper that speaks is served.
    let silent: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(("127.0.0.1", e.port)).unwrap())
        .collect();
    let mut trickle = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    trickle.write_all(b"GET /metr").unwrap();
    let (status, body) = e.get("/metrics", None);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
    drop(silent);
}

#[test]
fn a_flood_of_bytes_is_cut_off_and_others_are_served() {
    let e = Exporter::start("");
    let mut flood = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    flood.set_write_timeout(Some(GENEROUS)).unwrap();
    // No end of header ever: refused once past the limit.
    let _ = flood.write_all(&vec![b'a'; 64 * 1024]);
    let (status, _) = e.get("/metrics", None);
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn a_hung_crm_mon_gives_a_stale_scrape_not_a_hung_one() {
    let e = Exporter::start("");
    let (_, body) = e.get("/metrics", None);
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
    std::fs::write(e.dir.path().join("hang"), "").unwrap();
    let (status, body) = e.get("/metrics", None);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        value(&body, "mailha_scrape_ok").as_deref(),
        Some("0"),
        "{body}"
    );
    assert!(!body.contains("ha_cluster_pacemaker_nodes{"), "{body}");
    assert!(value(&body, "mailha_scrape_last_success_age_seconds").is_some());
    assert_eq!(
        value(&body, "mailha_scrape_failures_total").as_deref(),
        Some("1")
    );
    std::fs::remove_file(e.dir.path().join("hang")).unwrap();
    let (_, body) = e.get("/metrics", None);
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
}

#[test]
fn scrapes_that_arrive_while_crm_mon_hangs_share_its_one_run() {
    // Long enough that all three are asked before the first gives up.
    let e = Exporter::start("scrape_timeout = \"3s\"");
    std::fs::write(e.dir.path().join("hang"), "").unwrap();
    let answers: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| e.get("/metrics", None).1))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for body in &answers {
        assert_eq!(
            value(body, "mailha_scrape_ok").as_deref(),
            Some("0"),
            "{body}"
        );
    }
    assert_eq!(e.runs(), 1, "three scrapes, one crm_mon");
}

#[test]
fn basic_auth_refuses_a_wrong_password_and_admits_the_right_one() {
    use std::os::unix::fs::PermissionsExt;
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "s3cret\n").unwrap();
    std::fs::set_permissions(pw.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Exporter::start(&format!(
        "user = \"prometheus\"\npassword_file = \"{}\"",
        pw.path().display()
    ));
    let (status, _) = e.get("/metrics", Some(("prometheus", "wrong")));
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let (status, _) = e.get("/metrics", None);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert_eq!(e.runs(), 0, "a refused scrape runs nothing");
    let (status, body) = e.get("/metrics", Some(("prometheus", "s3cret")));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
}

#[test]
fn nothing_is_changed_through_it() {
    let e = Exporter::start("");
    let mut s = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert_eq!(e.runs(), 0);
}

#[test]
fn the_status_page_is_served_at_the_root_from_the_same_one_crm_mon() {
    let e = Exporter::start("");
    let (head, body) = e.request("/", "");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(body.contains("<html lang=\"en\">"));
    assert!(body.contains("<meta http-equiv=\"refresh\""));
    // healthy.xml runs the mail on mail1; no keeper answers here, so
    // mailha status would say DEGRADED too.
    assert!(body.contains("The mail runs on mail1"), "{body}");
    assert!(body.contains(">svc-postfix<"), "{body}");
    assert_eq!(e.runs(), 1, "one page, one crm_mon");

    assert!(
        body.contains("Nothing recorded in the last 24 hours."),
        "the fixture's history is older: {body}"
    );

    // An alert this node recorded a minute ago is in the last 24 hours.
    let mut lost = mailha::alert::event::Event::new(
        mailha::alert::event::Kind::Node,
        "mail1",
        std::time::SystemTime::now() - Duration::from_secs(60),
    );
    lost.node = Some("mail2".into());
    lost.desc = Some("lost".into());
    mailha::alert::spool::Spool::open(e.dir.path().join("spool"))
        .unwrap()
        .record(&lost)
        .unwrap();
    let (_, body) = e.request("/", "");
    assert!(body.contains("node mail2 lost"), "{body}");

    let (_, zh) = e.request("/", "Accept-Language: zh-CN,zh;q=0.9,en;q=0.5\r\n");
    assert!(zh.contains("<html lang=\"zh-CN\">"), "{zh}");
    assert!(zh.contains("邮件服务运行于 mail1"), "{zh}");
    let (_, en) = e.request("/?lang=en", "Accept-Language: zh-CN\r\n");
    assert!(en.contains("<html lang=\"en\">"));
    assert_eq!(e.runs(), 4);
}

#[test]
fn a_hung_crm_mon_gives_a_status_page_marked_stale_not_a_hung_one() {
    let e = Exporter::start("");
    let (_, body) = e.request("/", "");
    assert!(!body.contains("verdict stale"), "{body}");
    std::fs::write(e.dir.path().join("hang"), "").unwrap();
    let (head, body) = e.request("/", "");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(body.contains("class=\"verdict stale\""), "{body}");
    assert!(
        body.contains("Pacemaker did not answer this time"),
        "{body}"
    );
    assert!(
        body.contains(">mail1<"),
        "the last answer is still shown: {body}"
    );
    std::fs::remove_file(e.dir.path().join("hang")).unwrap();
    let (_, body) = e.request("/", "");
    assert!(!body.contains("verdict stale"), "{body}");
}

#[test]
fn a_channel_that_keeps_failing_is_named_in_the_scrape() {
    let e = Exporter::start("");
    let spool = mailha::alert::spool::Spool::open(e.dir.path().join("spool")).unwrap();
    let fenced = mailha::alert::event::Event::new(
        mailha::alert::event::Kind::Fenced,
        "mail1",
        std::time::SystemTime::now(),
    );
    let inc = spool
        .claim(&[spool.record(&fenced).unwrap()])
        .unwrap()
        .unwrap();
    spool.mark_done(&inc, "webhook").unwrap();
    let at = |s| std::time::UNIX_EPOCH + Duration::from_secs(s);
    spool.mark_failed(&inc, "smtp", at(1_796_500_000)).unwrap();
    spool.mark_failed(&inc, "smtp", at(1_796_500_005)).unwrap();
    let (_, body) = e.get("/metrics", None);
    let smtp = "{channel=\"smtp\"}";
    assert_eq!(
        value(&body, &format!("mailha_alert_send_failures_total{smtp}")).as_deref(),
        Some("2"),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            &format!("mailha_alert_last_send_failure_timestamp_seconds{smtp}")
        )
        .as_deref(),
        Some("1796500005")
    );
    assert_eq!(
        value(
            &body,
            "mailha_alert_send_failures_total{channel=\"webhook\"}"
        ),
        None,
        "the webhook delivered"
    );
}
