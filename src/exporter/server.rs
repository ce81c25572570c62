//! The HTTP front: a small std::net server, one request per connection.
//!
//! One thread reads every connection's request head at once (poll(2),
//! non-blocking reads), so a client that connects and sends nothing, or
//! trickles, holds no worker: it waits in the reader's table until its
//! deadline, and when the table is full the oldest is dropped for a new
//! one. Only a complete request reaches the fixed pool of workers, through
//! a bounded queue (full: 503 at once). Each worker writes its answer under
//! a write timeout. So the exporter's threads, memory and sockets are
//! bounded whatever clients do.
//!
//! With TLS the reader also runs each connection's handshake (rustls,
//! driven by the same non-blocking reads and writes), under the same
//! deadline: a client that opens a connection and never finishes its
//! handshake is a silent client like any other.

use crate::config::model::Language;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections whose request is still being read.
    pub max_connections: usize,
    /// Threads answering complete requests.
    pub workers: usize,
    /// Complete requests waiting for a worker.
    pub queue: usize,
    /// From connect to the end of the request head.
    pub request_deadline: Duration,
    pub write_timeout: Duration,
    /// The longest request head (a scrape's is a few hundred bytes).
    pub max_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            workers: 4,
            queue: 16,
            request_deadline: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_request: 8 * 1024,
        }
    }
}

/// Basic auth's expected credentials, kept as a digest: the comparison
/// takes the same time whatever the guess, its length included.
#[derive(Clone)]
pub struct Auth {
    digest: [u8; 32],
}

impl Auth {
    pub fn new(user: &str, password: &str) -> Auth {
        Auth {
            digest: Sha256::digest(format!("{user}:{password}")).into(),
        }
    }

    /// Whether an `Authorization` header's value carries the credentials.
    pub fn admits(&self, header: Option<&str>) -> bool {
        use base64::Engine;
        let given = header
            .and_then(|h| h.trim().strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .unwrap_or_default();
        let d: [u8; 32] = Sha256::digest(&given).into();
        let diff = d
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        // Not optimized into an early exit: the fold reads every byte.
        std::hint::black_box(diff) == 0 && header.is_some()
    }
}

/// A request as far as the exporter cares.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// What follows `?` in the target (the status page's `lang=`).
    pub query: String,
    pub authorization: Option<String>,
    pub accept_language: Option<String>,
}

/// Parses a complete request head; None when it is not HTTP/1.x.
pub fn parse_request(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("HTTP/1.") || first.next().is_some() {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        authorization: header("authorization"),
        accept_language: header("accept-language"),
    })
}

/// An answer: status line, content type, body.
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
    pub extra_header: Option<&'static str>,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            extra_header: None,
        }
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut v = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
            self.extra_header
                .map(|h| format!("{h}\r\n"))
                .unwrap_or_default()
        )
        .into_bytes();
        if !head_only {
            v.extend_from_slice(self.body.as_bytes());
        }
        v
    }
}

/// What the exporter serves: the metrics, and the status page in a
/// language.
pub struct Pages<'a> {
    pub metrics: &'a dyn Fn() -> String,
    pub status: &'a dyn Fn(Language) -> String,
    /// The page's language when the request names none (`[alerts]
    /// language`).
    pub language: Language,
}

/// What the exporter answers to one request (auth, then the route).
pub fn route(req: &Request, auth: Option<&Auth>, pages: &Pages) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text("405 Method Not Allowed", "read-only: GET only\n");
        r.extra_header = Some("Allow: GET, HEAD");
        return r;
    }
    if let Some(a) = auth
        && !a.admits(req.authorization.as_deref())
    {
        let mut r = Response::text("401 Unauthorized", "who are you?\n");
        r.extra_header = Some("WWW-Authenticate: Basic realm=\"mailha\", charset=\"UTF-8\"");
        return r;
    }
    match req.path.as_str() {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: (pages.metrics)(),
            extra_header: None,
        },
        "/" => Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: (pages.status)(super::page::language(
                &req.query,
                req.accept_language.as_deref(),
                pages.language,
            )),
            // The page is one moment's state: a cache must not keep it,
            // and it varies with the browser's language.
            extra_header: Some("Cache-Control: no-store\r\nVary: Accept-Language"),
        },
        _ => Response::text("404 Not Found", "not here: / or /metrics\n"),
    }
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A client's connection: plain, or TLS with rustls' state for it.
pub struct Conn {
    stream: TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
}

/// Serves until the listener fails. Never returns Ok. With `tls`, every
/// connection is HTTPS.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    tls: Option<super::tls::Source>,
    handler: Handler,
) -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Conn, Request)>(limits.queue);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..limits.workers.max(1) {
        let rx = rx.clone();
        let handler = handler.clone();
        std::thread::Builder::new()
            .name(format!("scrape-{i}"))
            .spawn(move || work(&rx, &*handler, limits))?;
    }
    read_requests(listener, limits, tls, tx)
}

fn work(
    rx: &std::sync::Mutex<Receiver<(Conn, Request)>>,
    handler: &dyn Fn(&Request) -> Response,
    limits: Limits,
) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((conn, req)) = next else { return };
        let resp = handler(&req);
        answer(conn, &resp, req.method == "HEAD", limits.write_timeout);
    }
}

fn answer(conn: Conn, resp: &Response, head_only: bool, timeout: Duration) {
    let Conn { mut stream, tls } = conn;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(timeout));
    // A TLS write may also read (a key update); never wait on that long.
    let _ = stream.set_read_timeout(Some(timeout));
    match tls {
        None => {
            let _ = stream.write_all(&resp.bytes(head_only));
        }
        Some(tls) => {
            let mut s = rustls::StreamOwned::new(*tls, stream);
            if s.write_all(&resp.bytes(head_only)).is_ok() {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            stream = s.sock;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// The reader's own short answers (400, 408, 431, 503): one try, never a
/// wait. A fresh socket's send buffer takes them whole. A TLS client
/// still in its handshake gets no answer: there is no channel to it yet.
fn answer_now(conn: &mut Conn, resp: &Response) {
    match conn.tls.as_mut() {
        None => {
            let _ = conn.stream.write(&resp.bytes(false));
        }
        Some(tls) if !tls.is_handshaking() => {
            let _ = tls.writer().write_all(&resp.bytes(false));
            tls.send_close_notify();
            let _ = tls.write_tls(&mut conn.stream);
        }
        Some(_) => {}
    }
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
}

struct Pending {
    conn: Conn,
    deadline: Instant,
    head: Vec<u8>,
}

/// Moves what a TLS connection has to say along: the records that
/// arrived, the handshake's answers, the request's plaintext into
/// `head`. Err: the connection is over (closed, or not TLS).
fn pump_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut TcpStream,
    head: &mut Vec<u8>,
    max: usize,
) -> Result<(), ()> {
    use std::io::ErrorKind::WouldBlock;
    match tls.read_tls(stream) {
        Ok(0) => return Err(()),
        Ok(_) => {}
        Err(e) if e.kind() == WouldBlock => {}
        Err(_) => return Err(()),
    }
    if tls.process_new_packets().is_err() {
        // rustls has queued an alert saying why; one try to send it.
        let _ = tls.write_tls(stream);
        return Err(());
    }
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == WouldBlock => break,
            Err(_) => return Err(()),
        }
    }
    let mut buf = [0u8; 2048];
    while head.len() <= max {
        match tls.reader().read(&mut buf) {
            Ok(0) => return Err(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == WouldBlock => break,
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

fn read_requests(
    listener: TcpListener,
    limits: Limits,
    mut tls: Option<super::tls::Source>,
    tx: SyncSender<(Conn, Request)>,
) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, poll};
    listener.set_nonblocking(true)?;
    let mut conns: Vec<Pending> = Vec::new();
    loop {
        let now = Instant::now();
        let wait = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        let ready: Vec<bool> = {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(conns.iter().map(|c| {
                // A handshake answer the socket did not take at once
                // goes out when it can.
                let out = c.conn.tls.as_ref().is_some_and(|t| t.wants_write());
                let flags = if out {
                    PollFlags::POLLIN | PollFlags::POLLOUT
                } else {
                    PollFlags::POLLIN
                };
                PollFd::new(c.conn.stream.as_fd(), flags)
            }));
            match poll(&mut fds, (wait.as_millis() as u16).max(1)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        // Read what arrived, oldest first; `keep` says who stays.
        let mut keep = vec![true; conns.len()];
        for (i, c) in conns.iter_mut().enumerate() {
            if !ready[i + 1] {
                continue;
            }
            if let Some(t) = c.conn.tls.as_mut() {
                keep[i] = pump_tls(t, &mut c.conn.stream, &mut c.head, limits.max_request).is_ok();
                continue;
            }
            let mut buf = [0u8; 2048];
            match c.conn.stream.read(&mut buf) {
                Ok(0) => keep[i] = false,
                Ok(n) => c.head.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => keep[i] = false,
            }
        }
        let now = Instant::now();
        let mut next = Vec::with_capacity(conns.len());
        for (c, k) in conns.drain(..).zip(keep) {
            if !k {
                continue;
            }
            let mut c = c;
            if let Some(end) = find(&c.head, b"\r\n\r\n") {
                let req = parse_request(&c.head[..end]);
                match req {
                    None => answer_now(
                        &mut c.conn,
                        &Response::text("400 Bad Request", "not HTTP/1.x\n"),
                    ),
                    Some(req) => match tx.try_send((c.conn, req)) {
                        Ok(()) => {}
                        Err(TrySendError::Full((mut s, _))) => answer_now(
                            &mut s,
                            &Response::text("503 Service Unavailable", "busy; try again\n"),
                        ),
                        Err(TrySendError::Disconnected(_)) => {
                            return Err(std::io::Error::other("every worker ended"));
                        }
                    },
                }
            } else if c.head.len() > limits.max_request {
                answer_now(
                    &mut c.conn,
                    &Response::text("431 Request Header Fields Too Large", "too long\n"),
                );
            } else if now >= c.deadline {
                answer_now(
                    &mut c.conn,
                    &Response::text("408 Request Timeout", "no request in time\n"),
                );
            } else {
                next.push(c);
            }
        }
        conns = next;
        if ready[0] {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        // Full: the oldest waiter goes. A real scraper
                        // sends its request at once, so it is never the
                        // oldest for long; a silent one is.
                        if conns.len() >= limits.max_connections.max(1) {
                            conns.remove(0);
                        }
                        let tls = match tls.as_mut() {
                            None => None,
                            Some(src) => match rustls::ServerConnection::new(src.config()) {
                                Ok(t) => Some(Box::new(t)),
                                Err(e) => {
                                    eprintln!("mailha exporter: TLS: {e}");
                                    continue;
                                }
                            },
                        };
                        conns.push(Pending {
                            conn: Conn { stream, tls },
                            deadline: Instant::now() + limits.request_deadline,
                            head: Vec::new(),
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // Out of file descriptors and the like: the next
                    // round tries again, after the table has drained.
                    Err(e) => {
                        eprintln!("mailha exporter: accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                        break;
                    }
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
