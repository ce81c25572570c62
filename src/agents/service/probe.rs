//! Protocol probes, spoken in-process with a deadline: no client program
//! is started (the stock agents exec 11 to 99 processes per monitor).
//! Each probe checks the first thing a real client would need: the greeting
//! (and for SMTP the EHLO reply), a MySQL handshake, memcached's version,
//! an HTTP status.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Smtp,
    Pop3,
    Imap,
    Mysql,
    Memcached,
    Http { path: String, expect: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix(std::path::PathBuf),
}

/// A stream with a deadline: every read and write gets the time that is
/// left, so a server that accepts and then says nothing fails in time.
trait Io: Read + Write {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()>;
}
impl Io for TcpStream {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}
impl Io for UnixStream {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

struct Conn<S: Io> {
    r: BufReader<S>,
    deadline: Instant,
}

impl<S: Io> Conn<S> {
    fn left(&self) -> Result<Duration, String> {
        let d = self.deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err("no answer within the probe timeout".into())
        } else {
            Ok(d)
        }
    }
    fn arm(&mut self) -> Result<(), String> {
        let t = self.left()?;
        self.r.get_ref().set_timeouts(t).map_err(|e| e.to_string())
    }
    fn line(&mut self) -> Result<String, String> {
        self.arm()?;
        let mut s = String::new();
        // Bounded: a greeting longer than this is not a mail daemon's.
        let n = (&mut self.r)
            .take(4096)
            .read_line(&mut s)
            .map_err(|e| format!("reading: {e}"))?;
        if n == 0 {
            return Err("connection closed before an answer".into());
        }
        Ok(s.trim_end().to_string())
    }
    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.arm()?;
        self.r
            .get_mut()
            .write_all(data)
            .map_err(|e| format!("writing: {e}"))
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), String> {
        self.arm()?;
        self.r.read_exact(buf).map_err(|e| format!("reading: {e}"))
    }
}

fn show(s: &str) -> String {
    let mut t: String = s.chars().take(80).collect();
    t.retain(|c| !c.is_control());
    format!("{t:?}")
}

/// SMTP: a 220 greeting (possibly multi-line), then EHLO answered by 250.
fn smtp<S: Io>(c: &mut Conn<S>) -> Result<(), String> {
    loop {
        let l = c.line()?;
        if !l.starts_with("220") {
            return Err(format!("greeting is not 220: {}", show(&l)));
        }
        if l.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    c.send(b"EHLO mailha-monitor\r\n")?;
    loop {
        let l = c.line()?;
        if !l.starts_with("250") {
            return Err(format!("EHLO answered {}", show(&l)));
        }
        if l.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    let _ = c.send(b"QUIT\r\n");
    Ok(())
}

fn pop3<S: Io>(c: &mut Conn<S>) -> Result<(), String> {
    let l = c.line()?;
    if !l.starts_with("+OK") {
        return Err(format!("greeting is not +OK: {}", show(&l)));
    }
    let _ = c.send(b"QUIT\r\n");
    Ok(())
}

fn imap<S: Io>(c: &mut Conn<S>) -> Result<(), String> {
    let l = c.line()?;
    if !(l.starts_with("* OK") || l.starts_with("* PREAUTH")) {
        return Err(format!("greeting is not * OK: {}", show(&l)));
    }
    let _ = c.send(b"a1 LOGOUT\r\n");
    Ok(())
}

/// MySQL/MariaDB: the server speaks first with a handshake packet
/// (protocol 10), or an error packet (0xff) such as "Too many connections"
/// or "Host is blocked".
fn mysql<S: Io>(c: &mut Conn<S>) -> Result<(), String> {
    let mut head = [0u8; 4];
    c.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    if len == 0 || len > 1 << 16 {
        return Err(format!("handshake packet of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)?;
    match body[0] {
        10 => Ok(()),
        0xff => {
            let msg = String::from_utf8_lossy(body.get(3..).unwrap_or_default()).into_owned();
            Err(format!("server refused: {}", show(&msg)))
        }
        v => Err(format!("unknown protocol version {v}")),
    }
}

fn memcached<S: Io>(c: &mut Conn<S>) -> Result<(), String> {
    c.send(b"version\r\n")?;
    let l = c.line()?;
    if !l.starts_with("VERSION ") {
        return Err(format!("version answered {}", show(&l)));
    }
    Ok(())
}

fn http<S: Io>(c: &mut Conn<S>, host: &str, path: &str, expect: u16) -> Result<(), String> {
    c.send(
        format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mailha-monitor\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let l = c.line()?;
    let code = l
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {}", show(&l)))?;
    if code != expect {
        return Err(format!("HTTP status {code}, expected {expect}"));
    }
    Ok(())
}

fn speak<S: Io>(stream: S, kind: &Kind, host: &str, deadline: Instant) -> Result<(), String> {
    let mut c = Conn {
        r: BufReader::new(stream),
        deadline,
    };
    match kind {
        Kind::Smtp => smtp(&mut c),
        Kind::Pop3 => pop3(&mut c),
        Kind::Imap => imap(&mut c),
        Kind::Mysql => mysql(&mut c),
        Kind::Memcached => memcached(&mut c),
        Kind::Http { path, expect } => http(&mut c, host, path, *expect),
    }
}

/// Runs one probe; the error says what failed, for the exit reason.
pub fn run(kind: &Kind, target: &Target, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    match target {
        Target::Tcp { host, port } => {
            // The host is validated to be an address or a plain name; name
            // resolution could block, so literal addresses are preferred
            // (the generated CIB uses 127.0.0.1).
            let addr: SocketAddr = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("{host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host}: no address"))?;
            let s = TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| format!("connect {addr}: {e}"))?;
            speak(s, kind, host, deadline).map_err(|e| format!("{addr}: {e}"))
        }
        Target::Unix(path) => {
            let s = connect_unix(path)?;
            speak(s, kind, "localhost", deadline).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

fn connect_unix(path: &Path) -> Result<UnixStream, String> {
    // A unix connect does not block on a live listener's backlog in
    // practice; the per-read deadline bounds everything after it.
    UnixStream::connect(path).map_err(|e| format!("connect {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server that writes `script` replies: each entry is
    /// (expected line prefix from the client, or "" to speak first; reply).
    fn server(script: Vec<(&'static str, &'static [u8])>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            for (expect, reply) in script {
                if !expect.is_empty() {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with(expect) {
                        return;
                    }
                }
                let _ = w.write_all(reply);
            }
            std::thread::sleep(Duration::from_millis(200));
        });
        port
    }

    fn tcp(port: u16) -> Target {
        Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn smtp_needs_a_220_greeting_and_an_ehlo_answer() {
        let p = server(vec![
            ("", b"220-mail ESMTP\r\n220 ready\r\n"),
            ("EHLO", b"250-mail\r\n250 PIPELINING\r\n"),
        ]);
        assert_eq!(run(&Kind::Smtp, &tcp(p), T), Ok(()));
        let p = server(vec![("", b"421 too busy\r\n")]);
        assert!(
            run(&Kind::Smtp, &tcp(p), T)
                .unwrap_err()
                .contains("greeting is not 220")
        );
        let p = server(vec![("", b"220 ok\r\n"), ("EHLO", b"554 no\r\n")]);
        assert!(
            run(&Kind::Smtp, &tcp(p), T)
                .unwrap_err()
                .contains("EHLO answered")
        );
    }

    #[test]
    fn a_server_that_accepts_and_says_nothing_fails_within_the_timeout() {
        let p = server(vec![]);
        let start = Instant::now();
        let e = run(&Kind::Smtp, &tcp(p), Duration::from_millis(300)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "{e}");
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(
            run(&Kind::Pop3, &tcp(port), T)
                .unwrap_err()
                .contains("connect")
        );
    }

    #[test]
    fn pop3_and_imap_greetings() {
        let p = server(vec![("", b"+OK Dovecot ready.\r\n")]);
        assert_eq!(run(&Kind::Pop3, &tcp(p), T), Ok(()));
        let p = server(vec![(
            "",
            b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n",
        )]);
        assert_eq!(run(&Kind::Imap, &tcp(p), T), Ok(()));
        let p = server(vec![("", b"* BYE shutting down\r\n")]);
        assert!(run(&Kind::Imap, &tcp(p), T).is_err());
    }

    #[test]
    fn mysql_handshake_or_error_packet() {
        let p = server(vec![("", b"\x05\x00\x00\x00\x0a5.5.\x00")]);
        assert_eq!(run(&Kind::Mysql, &tcp(p), T), Ok(()));
        let p = server(vec![(
            "",
            b"\x17\x00\x00\x00\xff\x10\x04Too many connections",
        )]);
        assert!(
            run(&Kind::Mysql, &tcp(p), T)
                .unwrap_err()
                .contains("Too many connections")
        );
    }

    #[test]
    fn memcached_version_and_http_status() {
        let p = server(vec![("version", b"VERSION 1.6.18\r\n")]);
        assert_eq!(run(&Kind::Memcached, &tcp(p), T), Ok(()));
        let p = server(vec![("GET /ok", b"HTTP/1.1 204 No Content\r\n\r\n")]);
        assert_eq!(
            run(
                &Kind::Http {
                    path: "/ok".into(),
                    expect: 204
                },
                &tcp(p),
                T
            ),
            Ok(())
        );
        let p = server(vec![("GET /", b"HTTP/1.1 502 Bad Gateway\r\n\r\n")]);
        assert!(
            run(
                &Kind::Http {
                    path: "/".into(),
                    expect: 200
                },
                &tcp(p),
                T
            )
            .unwrap_err()
            .contains("502")
        );
    }
}
