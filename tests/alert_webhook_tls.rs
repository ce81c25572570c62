//! The webhook channel over https: a real TLS server (rustls) on loopback
//! with a certificate from a CA made here by openssl. `mailha alert test`
//! posts the incident to it when the config trusts that CA (`ca_file`),
//! and refuses to talk to it when it does not. Needs openssl (SKIPPED
//! without it, FAILS in CI).

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Serves one TLS connection: reads one request (headers + body), answers
/// 204. Returns the port and the request text (or the handshake error).
fn serve_once(dir: &Path) -> (u16, std::thread::JoinHandle<Result<String, String>>) {
    let cfg = tls::tls_server_config(dir);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (tcp, _) = l.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(i) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if req.len() >= i + 4 + len {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        s.conn.send_close_notify();
        let _ = s.flush();
        Ok(String::from_utf8_lossy(&req).into_owned())
    });
    (port, h)
}

fn config(dir: &Path, port: u16, trust: bool) -> std::path::PathBuf {
    let ca = if trust {
        format!("ca_file = \"{}\"\n", dir.join("ca.pem").display())
    } else {
        String::new()
    };
    config_with_alerts(
        dir,
        &format!("mailha-{trust}.toml"),
        &format!(
            "[alerts]\ncustomer = \"ACME\"\n\n[alerts.webhook]\nurl = \"https://127.0.0.1:{port}/hook\"\n{ca}timeout = \"10s\"\n"
        ),
    )
}

#[test]
fn an_https_webhook_gets_the_incident_when_its_ca_is_trusted() {
    if !openssl_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    make_certs(t.path());
    let (port, server) = serve_once(t.path());
    let o = run_with_deadline(
        Command::new(env!("CARGO_BIN_EXE_mailha"))
            .arg("--config")
            .arg(config(t.path(), port, true))
            .args(["alert", "test"]),
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("webhook: ok"), "{out}");
    let req = server.join().unwrap().unwrap();
    assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("Idempotency-Key: test-"), "{req}");
    assert!(req.contains("\"customer\":\"ACME\""), "{req}");
}

#[test]
fn an_https_webhook_with_an_unknown_ca_is_refused() {
    if !openssl_ready() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    make_certs(t.path());
    let (port, server) = serve_once(t.path());
    let o = run_with_deadline(
        Command::new(env!("CARGO_BIN_EXE_mailha"))
            .arg("--config")
            .arg(config(t.path(), port, false))
            .args(["alert", "test"]),
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("webhook: FAILED"), "{out}");
    assert!(
        out.to_lowercase().contains("certificate"),
        "says why: {out}"
    );
    // The server saw a handshake it could not finish, never a request.
    let r = server.join().unwrap();
    assert!(r.is_err() || r.as_deref() == Ok(""), "{r:?}");
}
