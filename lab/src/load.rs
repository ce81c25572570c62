//! The drills' mail load: a client that sends one message per SMTP
//! session to the VIP, over and over, and logs every attempt with a
//! timestamp. A message counts as accepted only on the 250 after DATA;
//! its Message-ID is then looked for in the mailbox (`lost`).
//!
//! It runs inside the lab's client namespace (`mailha lab load ...`) and
//! writes its log to a file the drill reads from the host. It stops when
//! the stop file appears or its time is up, so it can never run forever.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 220 greeting seen, message accepted (250 after DATA).
    Accepted(String),
    /// 220 greeting seen but the message was not accepted.
    Greeted,
    /// The whole message was sent and the connection died before its
    /// answer: the server may or may not have taken it (Jepsen's
    /// "indeterminate"; the soak's checker counts these apart).
    Unknown(String),
    /// No 220 greeting: refused, reset, timed out or not 220.
    Down,
}

/// One log line: `<unix ms> accepted <msgid>` | `<ms> greeted` | `<ms>
/// unknown <msgid>` | `<ms> down`.
pub fn format_line(ms: u128, a: &Attempt) -> String {
    match a {
        Attempt::Accepted(id) => format!("{ms} accepted {id}\n"),
        Attempt::Unknown(id) => format!("{ms} unknown {id}\n"),
        Attempt::Greeted => format!("{ms} greeted\n"),
        Attempt::Down => format!("{ms} down\n"),
    }
}

pub fn parse_line(l: &str) -> Option<(u128, Attempt)> {
    let mut it = l.split_whitespace();
    let ms = it.next()?.parse().ok()?;
    let a = match it.next()? {
        "accepted" => Attempt::Accepted(it.next()?.to_string()),
        "unknown" => Attempt::Unknown(it.next()?.to_string()),
        "greeted" => Attempt::Greeted,
        "down" => Attempt::Down,
        _ => return None,
    };
    Some((ms, a))
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn expect(r: &mut BufReader<TcpStream>, code: &str) -> Result<(), ()> {
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).map_err(|_| ())? == 0 {
            return Err(());
        }
        if !l.starts_with(code) {
            return Err(());
        }
        if l.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// One SMTP session sending one message.
pub fn send_one(addr: SocketAddr, to: &str, msgid: &str, timeout: Duration) -> Attempt {
    let Ok(s) = TcpStream::connect_timeout(&addr, timeout) else {
        return Attempt::Down;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let Ok(w) = s.try_clone() else {
        return Attempt::Down;
    };
    let mut w = w;
    let mut r = BufReader::new(s);
    if expect(&mut r, "220").is_err() {
        return Attempt::Down;
    }
    fn step(
        w: &mut TcpStream,
        r: &mut BufReader<TcpStream>,
        cmd: String,
        code: &str,
    ) -> Result<(), ()> {
        w.write_all(cmd.as_bytes()).map_err(|_| ())?;
        expect(r, code)
    }
    let body = format!(
        "From: drill@client.lab.test\r\nTo: {to}\r\nSubject: drill\r\nMessage-ID: {msgid}\r\n\r\nmailha drill load\r\n.\r\n"
    );
    let ready = step(&mut w, &mut r, "EHLO client.lab.test\r\n".into(), "250")
        .and_then(|_| {
            step(
                &mut w,
                &mut r,
                "MAIL FROM:<drill@client.lab.test>\r\n".into(),
                "250",
            )
        })
        .and_then(|_| step(&mut w, &mut r, format!("RCPT TO:<{to}>\r\n"), "250"))
        .and_then(|_| step(&mut w, &mut r, "DATA\r\n".into(), "354"));
    if ready.is_err() {
        let _ = step(&mut w, &mut r, "QUIT\r\n".into(), "221");
        return Attempt::Greeted;
    }
    // The message is out once its final dot is written: from here a dead
    // connection leaves its fate unknown, and only an answer says.
    if w.write_all(body.as_bytes()).is_err() {
        return Attempt::Greeted;
    }
    let answer = final_answer(&mut r);
    let _ = step(&mut w, &mut r, "QUIT\r\n".into(), "221");
    match answer {
        Some(true) => Attempt::Accepted(msgid.to_string()),
        Some(false) => Attempt::Greeted,
        None => Attempt::Unknown(msgid.to_string()),
    }
}

/// The answer to a message's final dot: Some(true) for 250, Some(false)
/// for any other code, None when the connection died first.
fn final_answer(r: &mut impl BufRead) -> Option<bool> {
    loop {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if l.len() < 4 || !l.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            return None;
        }
        if l.as_bytes()[3] != b'-' {
            return Some(l.starts_with("250"));
        }
    }
}

/// One IMAP session: the greeting, LOGIN, LOGOUT. True when the login
/// was accepted (the mailbox store answers through Dovecot on the VIP).
pub fn imap_login(addr: SocketAddr, user: &str, password: &str, timeout: Duration) -> bool {
    let Ok(s) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let Ok(mut w) = s.try_clone() else {
        return false;
    };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() || !line.starts_with("* OK") {
        return false;
    }
    if w.write_all(format!("a LOGIN {user} {password}\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    // Untagged lines (capabilities) may come before the tagged answer.
    let ok = loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break false,
            Ok(_) if line.starts_with("a ") => break line.starts_with("a OK"),
            Ok(_) => {}
        }
    };
    let _ = w.write_all(b"b LOGOUT\r\n");
    ok
}

/// One IMAP session that reads what a mail client reads: LOGIN, SELECT
/// INBOX, then the Message-ID of every message whose UID is above
/// `after_uid` (`UID FETCH`), LOGOUT. None when any step failed (the
/// mailbox was not read).
pub fn imap_read(
    addr: SocketAddr,
    user: &str,
    password: &str,
    after_uid: u32,
    timeout: Duration,
) -> Option<MailboxRead> {
    let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("* OK") {
        return None;
    }
    // Each command's untagged lines, then its tagged answer: OK or None.
    fn command(
        w: &mut TcpStream,
        r: &mut BufReader<TcpStream>,
        tag: &str,
        cmd: &str,
        mut untagged: impl FnMut(&str, &mut BufReader<TcpStream>) -> Option<()>,
    ) -> Option<()> {
        w.write_all(format!("{tag} {cmd}\r\n").as_bytes()).ok()?;
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).ok()? == 0 {
                return None;
            }
            if let Some(rest) = l.strip_prefix(tag).and_then(|x| x.strip_prefix(' ')) {
                return rest.starts_with("OK").then_some(());
            }
            untagged(&l, r)?;
        }
    }
    command(
        &mut w,
        &mut r,
        "a",
        &format!("LOGIN {user} {password}"),
        |_, _| Some(()),
    )?;
    let (mut exists, mut validity) = (0u32, 0u32);
    command(&mut w, &mut r, "b", "SELECT INBOX", |l, _| {
        if let Some(n) = l
            .strip_prefix("* ")
            .and_then(|x| x.strip_suffix(" EXISTS\r\n"))
        {
            exists = n.parse().unwrap_or(0);
        }
        if let Some(v) = l
            .split_once("[UIDVALIDITY ")
            .and_then(|(_, rest)| rest.split(']').next())
        {
            validity = v.parse().unwrap_or(0);
        }
        Some(())
    })?;
    let mut out = Vec::new();
    if exists > 0 {
        command(
            &mut w,
            &mut r,
            "c",
            &format!(
                "UID FETCH {}:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
                after_uid.saturating_add(1)
            ),
            |l, r| {
                if let Some((uid, id)) = fetched(l, r)? {
                    out.push((uid, id));
                }
                Some(())
            },
        )?;
    }
    let _ = w.write_all(b"d LOGOUT\r\n");
    // `N:*` names the last message even when its UID is below N.
    out.retain(|(uid, _)| *uid > after_uid);
    Some(MailboxRead {
        validity,
        messages: out,
    })
}

/// What one IMAP read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRead {
    /// The mailbox's UIDVALIDITY: when it changes, UIDs start over and a
    /// reader must read everything again.
    pub validity: u32,
    /// (UID, Message-ID), in the server's order.
    pub messages: Vec<(u32, String)>,
}

/// One untagged FETCH answer (`* 7 FETCH (UID 42 BODY[...] {n}` and an
/// n-byte literal): its UID and the Message-ID in the literal; Ok(None)
/// for any other untagged line; None when the literal cannot be read.
fn fetched(line: &str, r: &mut impl BufRead) -> Option<Option<(u32, String)>> {
    if !line.starts_with("* ") || !line.contains(" FETCH (") {
        return Some(None);
    }
    let uid: u32 = line
        .split_once("UID ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())?;
    let n: usize = line
        .trim_end()
        .strip_suffix('}')
        .and_then(|x| x.rsplit_once('{'))
        .and_then(|(_, n)| n.parse().ok())?;
    // A header block is short; a longer literal is not ours to read.
    if n > 64 * 1024 {
        return None;
    }
    let mut literal = vec![0u8; n];
    r.read_exact(&mut literal).ok()?;
    // The rest of the answer (`)` and CRLF).
    let mut tail = String::new();
    r.read_line(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&literal);
    let id = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("message-id")
            .then(|| v.trim().to_string())
    });
    Some(id.map(|id| (uid, id)))
}

/// One IMAP log line: `<unix ms> imap ok [<message-id> ...]` (the ids
/// that read found new) | `<ms> imap down`.
pub fn parse_imap_line(l: &str) -> Option<(u128, bool)> {
    let mut it = l.split_whitespace();
    let ms = it.next()?.parse().ok()?;
    (it.next()? == "imap").then_some(())?;
    Some((ms, it.next()? == "ok"))
}

/// An IMAP log line with the ids its read found: (ms, ok, ids).
pub fn parse_imap_read(l: &str) -> Option<(u128, bool, Vec<String>)> {
    let mut it = l.split_whitespace();
    let ms = it.next()?.parse().ok()?;
    (it.next()? == "imap").then_some(())?;
    let ok = it.next()? == "ok";
    Some((ms, ok, it.map(str::to_string).collect()))
}

/// The IMAP side of the load: every `every`, a login (or, with
/// `read_ids`, a read of the new mail: login, select, the new messages'
/// ids) into `log`, until `stop` exists or `max`.
pub fn run_imap(
    addr: SocketAddr,
    log: &Path,
    stop: &Path,
    every: Duration,
    max: Duration,
    read_ids: bool,
) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let start = Instant::now();
    // The drills only ask whether the store answers: a login. The soak
    // reads the new mail's ids as well (SELECT and FETCH: more work for
    // Dovecot, which the drills' timings should not pay).
    if !read_ids {
        while !stop.exists() && start.elapsed() < max {
            let t = Instant::now();
            let ok = imap_login(addr, IMAP_USER, IMAP_PASSWORD, Duration::from_secs(2));
            f.write_all(
                format!("{} imap {}\n", now_ms(), if ok { "ok" } else { "down" }).as_bytes(),
            )?;
            f.flush()?;
            if let Some(rest) = every.checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        return Ok(());
    }
    // What the box held before the load is no part of it: read from its
    // newest message on.
    let mut seen = imap_read(addr, IMAP_USER, IMAP_PASSWORD, 0, Duration::from_secs(2)).map(|r| {
        (
            r.validity,
            r.messages.iter().map(|(u, _)| *u).max().unwrap_or(0),
        )
    });
    while !stop.exists() && start.elapsed() < max {
        let t = Instant::now();
        let after = seen.map_or(0, |(_, uid)| uid);
        let line = match imap_read(
            addr,
            IMAP_USER,
            IMAP_PASSWORD,
            after,
            Duration::from_secs(2),
        ) {
            // UIDs started over: everything is new again.
            Some(r) if seen.is_some_and(|(v, _)| v != r.validity) => {
                seen = Some((r.validity, 0));
                format!("{} imap ok\n", now_ms())
            }
            Some(r) => {
                let newest = r.messages.iter().map(|(u, _)| *u).max().unwrap_or(after);
                seen = Some((r.validity, newest.max(after)));
                let ids: Vec<&str> = r.messages.iter().map(|(_, id)| id.as_str()).collect();
                format!("{} imap ok {}\n", now_ms(), ids.join(" ")).replace(" \n", "\n")
            }
            None => format!("{} imap down\n", now_ms()),
        };
        f.write_all(line.as_bytes())?;
        f.flush()?;
        if let Some(rest) = every.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    Ok(())
}

/// The lab's test mailbox the IMAP load logs into (provision's Dovecot
/// users: lab-only credentials).
pub const IMAP_USER: &str = "user1@lab.test";
pub const IMAP_PASSWORD: &str = "secret1";

/// What the load does: SMTP from `run_id`'s messages to `to` every
/// `every`, until `stop` exists or `max`; its IMAP side reads ids with
/// `imap_ids`.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub addr: SocketAddr,
    pub to: &'a str,
    pub run_id: &'a str,
    pub log: &'a Path,
    pub stop: &'a Path,
    pub every: Duration,
    pub max: Duration,
    pub imap_ids: bool,
}

/// The loop: one session every `every`, until `stop` exists or `max`.
pub fn run(spec: &Spec) -> std::io::Result<()> {
    let Spec {
        addr,
        to,
        run_id,
        log,
        stop,
        every,
        max,
        imap_ids,
    } = *spec;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    // IMAP beside SMTP: a login every 500 ms into the log's sibling.
    let imap = {
        let (log, stop) = (imap_log(log), stop.to_path_buf());
        let imap_addr = SocketAddr::new(addr.ip(), 143);
        std::thread::spawn(move || {
            run_imap(
                imap_addr,
                &log,
                &stop,
                Duration::from_millis(500),
                max,
                imap_ids,
            )
        })
    };
    let start = Instant::now();
    let mut seq = 0u64;
    while !stop.exists() && start.elapsed() < max {
        let t = Instant::now();
        seq += 1;
        let msgid = format!("<drill-{run_id}-{seq}@client.lab.test>");
        let a = send_one(addr, to, &msgid, Duration::from_secs(2));
        f.write_all(format_line(now_ms(), &a).as_bytes())?;
        f.flush()?;
        if let Some(rest) = every.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let _ = imap.join();
    Ok(())
}

/// Where the IMAP logins of the load whose SMTP log is `smtp_log` go.
pub fn imap_log(smtp_log: &Path) -> std::path::PathBuf {
    smtp_log.with_file_name("imap.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IMAP server that answers each command line with the next of
    /// `answers` (the greeting first).
    fn imap_server(answers: Vec<&'static str>) -> std::net::SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut it = answers.into_iter();
            let _ = s.write_all(it.next().unwrap().as_bytes());
            for a in it {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let _ = s.write_all(a.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn an_imap_read_returns_the_new_messages_ids_as_a_client_fetches_them() {
        let box_with_two = imap_server(vec![
            "* OK ready\r\n",
            "* CAPABILITY IMAP4rev1\r\na OK Logged in\r\n",
            "* FLAGS ()\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 77] UIDs valid\r\nb OK [READ-WRITE] Select completed\r\n",
            "* 2 FETCH (UID 41 BODY[HEADER.FIELDS (MESSAGE-ID)] {28}\r\nMessage-ID: <m41@x.test>\r\n\r\n)\r\n\
             * 3 FETCH (UID 42 BODY[HEADER.FIELDS (MESSAGE-ID)] {28}\r\nMessage-Id: <m42@x.test>\r\n\r\n)\r\n\
             c OK Fetch completed\r\n",
        ]);
        let r = imap_read(box_with_two, "u", "p", 40, Duration::from_secs(2)).unwrap();
        assert_eq!(r.validity, 77);
        assert_eq!(
            r.messages,
            vec![(41, "<m41@x.test>".into()), (42, "<m42@x.test>".into())]
        );
        // Nothing new: `43:*` still names the last message, which is not new.
        let nothing_new = imap_server(vec![
            "* OK ready\r\n",
            "a OK\r\n",
            "* 3 EXISTS\r\n* OK [UIDVALIDITY 77] x\r\nb OK\r\n",
            "* 3 FETCH (UID 42 BODY[HEADER.FIELDS (MESSAGE-ID)] {28}\r\nMessage-Id: <m42@x.test>\r\n\r\n)\r\nc OK\r\n",
        ]);
        let r = imap_read(nothing_new, "u", "p", 42, Duration::from_secs(2)).unwrap();
        assert!(r.messages.is_empty(), "{r:?}");
        let refused = imap_server(vec![
            "* OK ready\r\n",
            "a NO [AUTHENTICATIONFAILED] bad\r\n",
        ]);
        assert_eq!(
            imap_read(refused, "u", "p", 0, Duration::from_secs(2)),
            None
        );
        assert_eq!(
            parse_imap_read("17 imap ok <a@x> <b@x>"),
            Some((17, true, vec!["<a@x>".into(), "<b@x>".into()]))
        );
        assert_eq!(parse_imap_line("17 imap ok <a@x>"), Some((17, true)));
        assert_eq!(parse_imap_line("18 imap down"), Some((18, false)));
        assert_eq!(parse_imap_line("19 accepted <x>"), None);
    }

    #[test]
    fn log_lines_round_trip() {
        for a in [
            Attempt::Accepted("<x@y>".into()),
            Attempt::Unknown("<z@y>".into()),
            Attempt::Greeted,
            Attempt::Down,
        ] {
            let l = format_line(42, &a);
            assert_eq!(parse_line(l.trim()), Some((42, a)));
        }
        assert_eq!(parse_line("junk"), None);
    }

    #[test]
    fn a_session_against_a_real_listener_that_rejects_is_only_greeted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"220 hi\r\n");
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = s.write_all(b"554 go away\r\n");
        });
        assert_eq!(
            send_one(addr, "u@lab.test", "<m@x>", Duration::from_secs(2)),
            Attempt::Greeted
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(
            send_one(closed, "u@lab.test", "<m@x>", Duration::from_millis(500)),
            Attempt::Down
        );
    }

    /// A server that takes a whole session and answers the message's dot
    /// with `after_dot` (nothing: it closes the connection).
    fn smtp_server(after_dot: &'static [u8]) -> std::net::SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = s.write_all(b"220 hi\r\n");
            let mut line = String::new();
            for answer in [
                &b"250 hi\r\n"[..],
                b"250 ok\r\n",
                b"250 ok\r\n",
                b"354 go\r\n",
            ] {
                line.clear();
                let _ = r.read_line(&mut line);
                let _ = s.write_all(answer);
            }
            while line.trim_end() != "." {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
            }
            let _ = s.write_all(after_dot);
        });
        addr
    }

    #[test]
    fn a_connection_that_dies_after_the_message_leaves_its_fate_unknown() {
        let t = Duration::from_secs(2);
        assert_eq!(
            send_one(smtp_server(b""), "u@lab.test", "<m@x>", t),
            Attempt::Unknown("<m@x>".into())
        );
        assert_eq!(
            send_one(
                smtp_server(b"250 2.0.0 queued\r\n"),
                "u@lab.test",
                "<m@x>",
                t
            ),
            Attempt::Accepted("<m@x>".into())
        );
        assert_eq!(
            send_one(
                smtp_server(b"451 4.3.0 try later\r\n"),
                "u@lab.test",
                "<m@x>",
                t
            ),
            Attempt::Greeted
        );
    }
}
