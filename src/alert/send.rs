//! Delivery channels: SMTP (lettre, STARTTLS + AUTH), webhook (HTTP POST of
//! the incident JSON) and command (argv, JSON on stdin). Each one is bounded
//! in time, so a dead relay or a hung script delays the next try, never the
//! cluster.

use super::compose::{self, Composed, Incident};
use crate::config::model::{AlertCommand, Alerts, Secret, Smtp, Webhook};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("reading the SMTP password from {path}: {source}")]
    Secret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the relay's CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
    #[error("SMTP {host}:{port}: {source}")]
    Smtp {
        host: String,
        port: u16,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("webhook {url}: {reason}")]
    Webhook { url: String, reason: String },
    #[error("command {program}: {reason}")]
    Command { program: String, reason: String },
}

/// A way to deliver an incident.
pub trait Channel {
    /// Short stable name; also the name of the spool's done-marker.
    fn name(&self) -> &'static str;
    fn send(&self, inc: &Incident, c: &Composed) -> Result<(), SendError>;
}

/// The channels the config enables, in a fixed order.
pub fn channels(cfg: &Alerts, hello: &str) -> Vec<Box<dyn Channel>> {
    let mut v: Vec<Box<dyn Channel>> = Vec::new();
    if let Some(s) = &cfg.smtp {
        v.push(Box::new(SmtpChannel {
            cfg: s.clone(),
            hello: hello.to_string(),
        }));
    }
    if let Some(w) = &cfg.webhook {
        v.push(Box::new(WebhookChannel { cfg: w.clone() }));
    }
    if let Some(c) = &cfg.command {
        v.push(Box::new(CommandChannel { cfg: c.clone() }));
    }
    v
}

pub struct SmtpChannel {
    pub cfg: Smtp,
    /// The EHLO name (this host's name).
    pub hello: String,
}

/// The password, read when sending (never kept in memory between sends,
/// never passed on a command line, never logged). One trailing newline, as
/// `echo pw > file` leaves it, is not part of the password.
fn password(s: &Secret) -> Result<Option<String>, SendError> {
    match s {
        Secret::None => Ok(None),
        Secret::Inline(p) => Ok(Some(p.clone())),
        Secret::File(path) => {
            let mut p = std::fs::read_to_string(path).map_err(|source| SendError::Secret {
                path: path.clone(),
                source,
            })?;
            if p.ends_with('\n') {
                p.pop();
                if p.ends_with('\r') {
                    p.pop();
                }
            }
            Ok(Some(p))
        }
    }
}

impl Channel for SmtpChannel {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send(&self, inc: &Incident, c: &Composed) -> Result<(), SendError> {
        let s = &self.cfg;
        let err = |source| SendError::Smtp {
            host: s.host.clone(),
            port: s.port,
            source,
        };
        let msg = compose::message(s, inc, c)?;
        // STARTTLS is required when configured: falling back to plain text
        // would send the AUTH password in the clear.
        let tls = if s.starttls {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(ca) = &s.ca_file {
                // A private CA (the lab's, a company's) on top of the
                // system's roots; the relay's name is still verified.
                let pem = std::fs::read(ca).map_err(|source| SendError::CaFile {
                    path: ca.clone(),
                    reason: source.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| SendError::CaFile {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
                params = params.add_root_certificate(cert);
            }
            Tls::Required(params.build().map_err(err)?)
        } else {
            Tls::None
        };
        // lettre applies the timeout to the connect and to every read and
        // write of the SMTP dialogue.
        let mut b = SmtpTransport::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.timeout))
            .hello_name(ClientId::Domain(self.hello.clone()));
        if let (Some(user), Some(pw)) = (&s.user, password(&s.password)?) {
            b = b.credentials(Credentials::new(user.clone(), pw));
        }
        b.build().send(&msg).map_err(err)?;
        Ok(())
    }
}

pub struct WebhookChannel {
    pub cfg: Webhook,
}

/// `http(s)://host[:port]/path` split up: (https?, host, port, path).
fn parse_http_url(url: &str) -> Result<(bool, String, u16, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("not an http:// or https:// URL".to_string());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let default = if tls { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?)
        }
        _ => (authority, default),
    };
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok((tls, host.to_string(), port, path.to_string()))
}

/// A rustls client config: the system's roots plus `ca_file`'s.
fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| format!("{}: {e}", f.display()))?;
            roots.add(c).map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(cfg))
}

/// A byte stream both ways: plain TCP or TLS over it.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// One HTTP/1.1 POST with `Connection: close`, every step under `timeout`.
/// Returns the status code.
pub fn http_post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<u16, String> {
    let (tls, host, port, path) = parse_http_url(url)?;
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .collect();
    let mut last = format!("{host}: no address");
    let mut stream = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    let tcp = stream.ok_or(last)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    // The socket timeouts bound every read and write, the TLS handshake
    // included (it happens inside the first write).
    tcp.set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    let mut s: Box<dyn ReadWrite> = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host}: {e}"))?;
        let conn =
            rustls::ClientConnection::new(tls_config(ca_file)?, name).map_err(|e| e.to_string())?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let host_header = if port == if tls { 443 } else { 80 } {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: mailha/{}\r\n",
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes())
        .and_then(|()| s.write_all(body))
        .and_then(|()| s.flush())
        .map_err(|e| format!("sending: {e}"))?;
    // Only the status line matters; read at most a little of the answer.
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !got.contains(&b'\n') && got.len() < 512 {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    let code = line
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                line.lines().next().unwrap_or("")
            )
        })?;
    Ok(code)
}

impl Channel for WebhookChannel {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, inc: &Incident, c: &Composed) -> Result<(), SendError> {
        let body = serde_json::to_vec(&c.json).expect("JSON values serialize");
        let err = |reason| SendError::Webhook {
            url: self.cfg.url.clone(),
            reason,
        };
        // The incident id lets a receiver drop a repeat (see spool).
        let code = http_post(
            &self.cfg.url,
            &[("Idempotency-Key", &inc.id)],
            &body,
            self.cfg.timeout,
            self.cfg.ca_file.as_deref(),
        )
        .map_err(err)?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(err(format!("answered HTTP {code}")))
        }
    }
}

pub struct CommandChannel {
    pub cfg: AlertCommand,
}

/// What a bounded child process left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
}

/// Runs `argv` (no shell), writes `stdin` to it, and waits at most
/// `deadline`. On overrun the child is killed by its PID (SIGKILL) and
/// reaped. Output beyond `max_out` bytes is dropped.
pub fn run_bounded(
    argv: &[String],
    stdin: &[u8],
    deadline: Duration,
    max_out: usize,
) -> Result<Finished, String> {
    let (prog, args) = argv.split_first().ok_or("empty argv")?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("LC_ALL", "C.UTF-8")
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    // Feeding stdin and reading stdout happen on threads, so a child that
    // does not read, or writes a lot, cannot block us past the deadline.
    let mut input = child.stdin.take().expect("piped");
    let data = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut output = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match output.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.len() < max_out {
                        out.extend_from_slice(&buf[..n.min(max_out - out.len())]);
                    }
                }
            }
        }
        let _ = tx.send(out);
    });
    let end = Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "killed after the {} deadline",
                    humantime::format_duration(deadline)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting: {e}")),
        }
    };
    // A grandchild may still hold stdout open; do not wait for it long.
    let stdout = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    Ok(Finished { status, stdout })
}

impl Channel for CommandChannel {
    fn name(&self) -> &'static str {
        "command"
    }

    fn send(&self, _inc: &Incident, c: &Composed) -> Result<(), SendError> {
        let body = serde_json::to_vec(&c.json).expect("JSON values serialize");
        let err = |reason| SendError::Command {
            program: self.cfg.argv.first().cloned().unwrap_or_default(),
            reason,
        };
        let f = run_bounded(&self.cfg.argv, &body, self.cfg.timeout, 0).map_err(err)?;
        if f.status.success() {
            Ok(())
        } else {
            Err(err(format!("exited with {}", f.status)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_command_gets_the_json_on_stdin() {
        let f = run_bounded(
            &argv(&["/bin/cat"]),
            br#"{"incident":"x"}"#,
            Duration::from_secs(5),
            1024,
        )
        .unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout, br#"{"incident":"x"}"#);
    }

    #[test]
    fn a_hung_command_is_killed_at_its_deadline() {
        let t = Instant::now();
        let e = run_bounded(
            &argv(&["/bin/sleep", "30"]),
            b"",
            Duration::from_millis(200),
            0,
        )
        .unwrap_err();
        assert!(e.contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_panic() {
        assert!(run_bounded(&argv(&["/nonexistent/x"]), b"", Duration::from_secs(1), 0).is_err());
    }

    #[test]
    fn urls_are_split_with_their_scheme() {
        assert_eq!(
            parse_http_url("http://h:8080/a/b").unwrap(),
            (false, "h".into(), 8080, "/a/b".into())
        );
        assert_eq!(
            parse_http_url("http://h").unwrap(),
            (false, "h".into(), 80, "/".into())
        );
        assert_eq!(
            parse_http_url("https://h/x").unwrap(),
            (true, "h".into(), 443, "/x".into())
        );
        assert_eq!(
            parse_http_url("http://[::1]:81/x").unwrap(),
            (false, "::1".into(), 81, "/x".into())
        );
        assert!(parse_http_url("ftp://h/").is_err());
        assert!(parse_http_url("http://u:p@h/").is_err());
    }

    /// A one-shot HTTP server on loopback: returns the request it got.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Read headers, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if req.len() >= i + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(req).unwrap()
        });
        (url, h)
    }

    #[test]
    fn a_webhook_posts_json_with_an_idempotency_key() {
        let (url, h) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let code = http_post(
            &url,
            &[("Idempotency-Key", "inc-1")],
            r#"{"a":"邮件"}"#.as_bytes(),
            Duration::from_secs(5),
            None,
        )
        .unwrap();
        assert_eq!(code, 204);
        let req = h.join().unwrap();
        assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Idempotency-Key: inc-1\r\n"));
        assert!(req.contains("Content-Type: application/json"));
        assert!(req.ends_with(r#"{"a":"邮件"}"#));
    }

    #[test]
    fn a_silent_webhook_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let t = Instant::now();
        // Accepted by the kernel's backlog, never answered.
        let e = http_post(&url, &[], b"{}", Duration::from_millis(300), None).unwrap_err();
        assert!(e.contains("reading"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(l);
    }

    #[test]
    fn the_password_file_loses_its_trailing_newline_only() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("pw");
        std::fs::write(&p, " s3cret \n").unwrap();
        assert_eq!(
            password(&Secret::File(p)).unwrap().as_deref(),
            Some(" s3cret ")
        );
        let e = password(&Secret::File(t.path().join("missing"))).unwrap_err();
        assert!(e.to_string().contains("missing"));
    }
}
