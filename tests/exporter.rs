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

/// A CA and a certificate for 127.0.0.1 with its key (0600), for the
/// exporter's HTTPS; None (SKIPPED) without openssl.
fn certs() -> Option<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    if !openssl_ready() {
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    make_certs(d.path());
    std::fs::set_permissions(
        d.path().join("hook.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    Some(d)
}

fn tls_config(d: &Path) -> String {
    format!(
        "tls_cert_file = \"{0}/hook.pem\"\ntls_key_file = \"{0}/hook.key\"\n",
        d.display()
    )
}

/// A TLS client of the exporter's port that trusts only `ca` (the
/// handshake happens at the first write).
fn https_client(
    port: u16,
    ca: &Path,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(GENEROUS)).unwrap();
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// A GET over HTTPS as a scraper makes it, trusting only `ca`: the head
/// and the body, or why the connection failed.
fn https_get(port: u16, ca: &Path, path: &str, auth: &str) -> Result<(String, String), String> {
    let mut s = https_client(port, ca)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let out = String::from_utf8(out).map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    Ok((head.to_string(), body.to_string()))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {b}\r\n")
}

#[test]
fn over_https_a_scraper_that_trusts_the_ca_is_served_and_nothing_else_is() {
    use std::os::unix::fs::PermissionsExt;
    let Some(d) = certs() else { return };
    let pw = d.path().join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Exporter::start(&format!(
        "user = \"prometheus\"\npassword_file = \"{}\"\n{}",
        pw.display(),
        tls_config(d.path())
    ));
    let ca = d.path().join("ca.pem");
    let (head, body) = https_get(e.port, &ca, "/metrics", &basic("prometheus", "s3cret")).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
    let (head, page) = https_get(e.port, &ca, "/", &basic("prometheus", "s3cret")).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(page.contains(">mail1<"), "{page}");
    let (head, _) = https_get(e.port, &ca, "/metrics", &basic("prometheus", "wrong")).unwrap();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // A client that trusts another CA stops at the handshake.
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path());
    let refused = https_get(e.port, &other.path().join("ca.pem"), "/metrics", "");
    assert!(refused.is_err(), "{refused:?}");
    // Plain HTTP on the HTTPS port: no answer in clear, no scrape run.
    let runs = e.runs();
    let mut s = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !String::from_utf8_lossy(&out).contains("mailha_"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(e.runs(), runs);
}

#[test]
fn clients_that_never_finish_a_handshake_do_not_stop_a_scrape() {
    let Some(d) = certs() else { return };
    let e = Exporter::start(&tls_config(d.path()));
    // More than the exporter keeps waiting: some say nothing, some start
    // a ClientHello (a handshake record's header) and stop.
    let stalled: Vec<TcpStream> = (0..80)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
            if i % 2 == 0 {
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
            }
            s
        })
        .collect();
    let (head, body) = https_get(e.port, &d.path().join("ca.pem"), "/metrics", "").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
    drop(stalled);
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    use std::os::unix::fs::PermissionsExt;
    let Some(d) = certs() else { return };
    let e = Exporter::start(&tls_config(d.path()));
    let renewed = tempfile::tempdir().unwrap();
    make_certs(renewed.path());
    let new_ca = renewed.path().join("ca.pem");
    assert!(
        https_get(e.port, &new_ca, "/metrics", "").is_err(),
        "the new CA does not sign the certificate served now"
    );
    // As a renewal tool writes them: each file replaced whole.
    let replace = |name: &str, mode: u32| {
        let tmp = d.path().join(format!("{name}.new"));
        std::fs::copy(renewed.path().join(name), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::rename(&tmp, d.path().join(name)).unwrap();
    };
    replace("hook.key", 0o600);
    replace("hook.pem", 0o644);
    let (head, _) = https_get(e.port, &new_ca, "/metrics", "").expect("the renewed certificate");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    // A renewal gone wrong: the last good certificate stays.
    std::fs::write(d.path().join("hook.pem"), "not a certificate\n").unwrap();
    let (head, _) = https_get(e.port, &new_ca, "/metrics", "").expect("the last good one");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
}

#[test]
fn a_key_others_can_read_is_refused_at_start_naming_the_field() {
    use std::os::unix::fs::PermissionsExt;
    let Some(d) = certs() else { return };
    let key = d.path().join("hook.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = d.path().join("mailha.toml");
    std::fs::write(
        &cfg,
        format!(
            "{BASE}\n[exporter]\nlisten = \"127.0.0.1:{}\"\n{}",
            free_port(),
            tls_config(d.path())
        ),
    )
    .unwrap();
    let o = run_with_deadline(
        Command::new(assert_cmd::cargo::cargo_bin("mailha"))
            .arg("--config")
            .arg(&cfg)
            .args(["exporter", "--spool"])
            .arg(d.path().join("spool"))
            .args(["--lease-socket", "mailha-test-no-keeper"]),
        GENEROUS,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("tls_key_file"), "{err}");
    assert!(err.contains(&key.display().to_string()), "{err}");
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

/// A TLS session to the exporter that has sent its GET for /metrics and
/// waits for the answer, as Prometheus does until its scrape timeout.
fn https_asked(port: u16, ca: &Path) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut s = https_client(port, ca).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.flush().unwrap();
    s
}

/// Stop 36's CI: a scrape whose crm_mon hit its deadline was answered
/// after Prometheus had given up on it, and node1's exporter ended
/// "successfully" (systemd counts a death by SIGPIPE as a clean exit),
/// serving no metrics for the rest of the run.
#[test]
fn scrapers_that_hang_up_before_a_late_answer_do_not_end_the_exporter() {
    let Some(d) = certs() else { return };
    let mut e = Exporter::start(&tls_config(d.path()));
    let ca = d.path().join("ca.pem");
    std::fs::write(e.dir.path().join("hang"), "").unwrap();
    // Every way a scraper goes away while its answer is still being
    // made: the TLS goodbye and a close (Go's client at its timeout), a
    // close alone, a close with the server's records still unread (a
    // reset), a half-close.
    for round in 0..3 {
        let mut gone = Vec::new();
        for way in 0..4 {
            let mut s = https_asked(e.port, &ca);
            match way {
                0 => {
                    s.conn.send_close_notify();
                    let _ = s.conn.write_tls(&mut s.sock);
                }
                1 => {
                    // Read what the server said so far (its session
                    // tickets), so the close is a FIN, not a reset.
                    s.sock.set_nonblocking(true).unwrap();
                    let _ = s.conn.read_tls(&mut s.sock);
                    let _ = s.conn.process_new_packets();
                }
                2 => {}
                _ => {
                    s.sock.shutdown(std::net::Shutdown::Write).unwrap();
                    gone.push(s);
                    continue;
                }
            }
            drop(s);
        }
        // The hung crm_mon's deadline (scrape_timeout 1 s) passes, and
        // the late answers go out to nobody.
        std::thread::sleep(Duration::from_millis(2500));
        drop(gone);
        if let Some(status) = e.child.try_wait().unwrap() {
            panic!("the exporter ended in round {round} when its scrapers hung up: {status:?}");
        }
    }
    std::fs::remove_file(e.dir.path().join("hang")).unwrap();
    let (head, body) = https_get(e.port, &ca, "/metrics", "").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(value(&body, "mailha_scrape_ok").as_deref(), Some("1"));
}
