//! A relay that resets the connection in the middle of the conversation
//! is a failed delivery, reported and retried, never the sender's death.
//! The relay here is test equipment: a loopback listener that speaks
//! just enough SMTP to reach STARTTLS, does the TLS handshake (rustls,
//! a certificate from a CA made here by openssl), reads the EHLO sent
//! over TLS, and then resets. Needs openssl (SKIPPED without it, FAILS
//! in CI).

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Closes `tcp` with a reset (SO_LINGER 0), as a relay that crashes or a
/// firewall that drops the session does.
fn reset(tcp: TcpStream) {
    use nix::libc;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger struct that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(tcp);
}

/// One connection: the SMTP greeting, EHLO offering STARTTLS, the TLS
/// handshake, the EHLO over TLS read, then a reset. Returns the port and
/// what the relay saw.
fn relay_that_resets(dir: &Path) -> (u16, std::thread::JoinHandle<Result<String, String>>) {
    let cfg = tls::tls_server_config(dir);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut tcp, _) = l.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut seen = String::new();
        let mut lines = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        tcp.write_all(b"220 relay.test ESMTP\r\n").unwrap();
        lines.read_line(&mut line).map_err(|e| e.to_string())?;
        seen += &line;
        tcp.write_all(b"250-relay.test\r\n250 STARTTLS\r\n")
            .unwrap();
        line.clear();
        lines.read_line(&mut line).map_err(|e| e.to_string())?;
        seen += &line;
        if !line.starts_with("STARTTLS") {
            return Err(format!("expected STARTTLS: {seen}"));
        }
        tcp.write_all(b"220 go ahead\r\n").unwrap();
        let mut tls = rustls::ServerConnection::new(cfg).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let mut s = rustls::Stream::new(&mut tls, &mut tcp);
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        seen += &String::from_utf8_lossy(&buf[..n]);
        reset(tcp);
        Ok(seen)
    });
    (port, h)
}

#[test]
fn a_relay_that_resets_the_connection_is_a_failed_delivery_not_the_senders_death() {
    use std::os::unix::process::ExitStatusExt;
    if !openssl_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    make_certs(t.path());
    let (port, relay) = relay_that_resets(t.path());
    let cfg = config_with_alerts(
        t.path(),
        "mailha.toml",
        &format!(
            "[alerts]\ncustomer = \"ACME\"\n\n[alerts.smtp]\nrelay = \"127.0.0.1:{port}\"\nstarttls = true\nca_file = \"{}\"\nfrom = \"ha@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"10s\"\n",
            t.path().join("ca.pem").display()
        ),
    );

    let o = run_with_deadline(
        Command::new(env!("CARGO_BIN_EXE_mailha"))
            .arg("--config")
            .arg(&cfg)
            .args(["alert", "test"]),
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let seen = relay.join().unwrap().unwrap();
    assert!(seen.contains("EHLO"), "the relay saw: {seen}");
    // lettre answers the reset with a QUIT, a write into the reset
    // connection: EPIPE, and SIGPIPE under its default action.
    assert_eq!(
        o.status.signal(),
        None,
        "mailha alert test was killed by signal {:?} when the relay reset the connection\n{out}",
        o.status.signal()
    );
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("smtp: FAILED"), "{out}");
}

/// `mailha alert test | head -1`: the reader leaves before the report is
/// written. `mailha alert` ignores SIGPIPE for its peers' sake, so the
/// report's write fails with EPIPE instead; it must end the process the
/// way the signal ends every other face (quietly), not with Rust's panic
/// "failed printing to stdout".
#[test]
fn a_reader_that_leaves_ends_alert_test_as_it_ends_a_filter_not_with_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let t = tempfile::tempdir().unwrap();
    // A port nothing listens on: the webhook fails at once, and its
    // FAILED line is the report's first write.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config_with_alerts(
        t.path(),
        "mailha.toml",
        &format!(
            "[alerts]\ncustomer = \"ACME\"\n\n[alerts.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\ntimeout = \"10s\"\n"
        ),
    );
    let err_path = t.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailha"))
        .arg("--config")
        .arg(&cfg)
        .args(["alert", "test"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // The reader goes away before anything was written.
    drop(child.stdout.take());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailha alert test overran 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        !err.contains("panicked"),
        "mailha alert test panicked:\n{err}"
    );
    assert_eq!(
        status.signal(),
        Some(nix::libc::SIGPIPE),
        "expected the end by SIGPIPE a filter has, got {status:?}\n{err}"
    );
}
