//! Delivery channels: SMTP (lettre, STARTTLS + AUTH), webhook (HTTP POST of
//! the incident JSON) and command (argv, JSON on stdin, through
//! `exec::run`). Each one is bounded in time, so a dead relay or a hung
//! script delays the next try, never the cluster.
//!
//! A webhook URL often carries its credential (a token in the path or the
//! query), so it is never written whole into an error, a log line or a
//! mail: errors name it by `redact_url` (scheme and host).

use super::compose::{self, Composed, Incident};
use crate::config::model::{AlertCommand, Alerts, Secret, Smtp, Webhook};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
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
    /// `url` is `redact_url`'s: scheme and host only.
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

/// A URL as errors and logs may show it: the scheme and the host (with
/// its port), then `/...` when anything followed. The path, the query, a
/// fragment and any user:password@ are where webhook services put their
/// tokens, so they never appear.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s, r)
        }
        _ => return "[a URL]".into(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if end < rest.len() && &rest[end..] != "/" {
        "/..."
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
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

/// `host`'s addresses, or an error once `timeout` is over: getaddrinfo has
/// no deadline of its own (a dead DNS server holds it for the resolver's
/// timeouts times its attempts), so it runs on a thread that is left
/// behind if it overruns.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let r = (name.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.collect::<Vec<_>>());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(format!("resolving {host}: {e}")),
        Err(_) => Err(format!(
            "resolving {host}: no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}

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
    let addrs = resolve(&host, port, timeout)?;
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
            url: redact_url(&self.cfg.url),
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
        // Its output is not kept (nothing reads it, and it may echo the
        // incident); `exec::run` kills its process group at the deadline.
        let opts = crate::exec::Opts {
            max_output: 4096,
            ..Default::default()
        };
        let o = crate::exec::run_opts(
            &self.cfg.argv,
            &[("LC_ALL", "C.UTF-8")],
            Some(&body),
            self.cfg.timeout,
            opts,
        )
        .map_err(|e| {
            err(match e {
                crate::exec::ExecError::Timeout { deadline, .. } => format!(
                    "killed after the {} deadline",
                    humantime::format_duration(deadline)
                ),
                crate::exec::ExecError::Spawn { source, .. } => format!("cannot start: {source}"),
                crate::exec::ExecError::Io { source, .. } => source.to_string(),
            })
        })?;
        match o.code {
            Some(0) => Ok(()),
            Some(c) => Err(err(format!("exited with code {c}"))),
            None => Err(err("killed by a signal".into())),
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

    fn incident() -> (Incident, Composed) {
        let now = std::time::SystemTime::now();
        let inc = Incident {
            id: "inc-1".into(),
            events: vec![(
                "e".into(),
                super::super::event::Event::new(super::super::event::Kind::Test, "mx1", now),
            )],
            repeats: None,
            host: "mx1".into(),
            running_on: None,
            diagnostics: String::new(),
        };
        let cfg = crate::config::model::Alerts {
            customer: "ACME".into(),
            language: crate::config::model::Language::En,
            subject: None,
            advice: None,
            batch_window: Duration::from_secs(1),
            smtp: None,
            webhook: None,
            command: None,
            diagnostics: Default::default(),
        };
        let c = compose::compose(&cfg, &inc);
        (inc, c)
    }

    fn command(v: &[&str], timeout: Duration) -> Result<(), SendError> {
        let (inc, c) = incident();
        CommandChannel {
            cfg: AlertCommand {
                argv: argv(v),
                timeout,
            },
        }
        .send(&inc, &c)
    }

    #[test]
    fn a_command_gets_the_json_on_stdin() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("got");
        let script = format!("cat > {}", f.display());
        command(&["/bin/sh", "-c", &script], Duration::from_secs(5)).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(got["incident"], "inc-1", "{got}");
    }

    #[test]
    fn a_hung_command_is_killed_at_its_deadline() {
        let t = Instant::now();
        let e = command(&["/bin/sleep", "30"], Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let e = command(&["/bin/sh", "-c", "exit 3"], Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("exited with code 3"), "{e}");
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_panic() {
        let e = command(&["/nonexistent/x"], Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("cannot start"), "{e}");
    }

    #[test]
    fn a_url_is_shown_as_its_scheme_and_host_only() {
        for (url, shown) in [
            (
                "https://hooks.example.com/services/T0/B0/s3cr3tT0ken",
                "https://hooks.example.com/...",
            ),
            ("http://h:8080/x?token=s3cr3tT0ken", "http://h:8080/..."),
            ("http://h?token=s3cr3tT0ken", "http://h/..."),
            ("https://u:s3cr3tT0ken@h/", "https://h"),
            ("https://h/", "https://h"),
            ("https://[::1]:8443/s3cr3tT0ken", "https://[::1]:8443/..."),
            ("not a url s3cr3tT0ken", "[a URL]"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    /// Every way the webhook channel fails names the URL without its
    /// path or query.
    #[test]
    fn webhook_errors_never_show_the_token() {
        let token = "s3cr3tT0ken";
        let (inc, c) = incident();
        let send = |url: String| {
            WebhookChannel {
                cfg: Webhook {
                    url,
                    ca_file: None,
                    timeout: Duration::from_millis(500),
                },
            }
            .send(&inc, &c)
            .unwrap_err()
            .to_string()
        };
        // Refused: nothing listens on the port any more.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap();
        drop(l);
        // Answers 403.
        let (url403, h) = serve_once("HTTP/1.1 403 Forbidden\r\n\r\n");
        let base403 = url403.trim_end_matches("/hook").to_string();
        let errors = [
            send(format!("http://{closed}/hooks/{token}?key={token}")),
            send(format!("{base403}/hooks/{token}")),
            send(format!("http://no-such-host.invalid/{token}")),
            send(format!("http://127.0.0.1:99999/{token}")),
        ];
        h.join().unwrap();
        for e in &errors {
            assert!(!e.contains(token), "{e}");
            assert!(e.starts_with("webhook http://"), "{e}");
        }
        assert!(errors[1].contains("403"), "{}", errors[1]);
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
