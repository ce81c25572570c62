//! NFS server health: an RPC NULL call (procedure 0 of program 100003)
//! over TCP with a deadline. Measured here: a frozen server still accepts
//! TCP connections (the kernel does that), so a connect proves nothing;
//! only an RPC reply shows the server process is working.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const NFS_PROGRAM: u32 = 100003;

/// The call, with TCP record marking (RFC 5531 section 11).
pub fn null_call(xid: u32, version: u32) -> Vec<u8> {
    let words = [
        xid,
        0, /* CALL */
        2, /* RPC v2 */
        NFS_PROGRAM,
        version,
        0, /* NULL */
        0,
        0,
        0,
        0,
    ];
    let mut body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut out = (0x8000_0000u32 | body.len() as u32).to_be_bytes().to_vec();
    out.append(&mut body);
    out
}

/// Any well-formed reply to our xid means the server answers; an accepted
/// reply may still say PROG_MISMATCH for a version, which is an answer too.
pub fn check_reply(xid: u32, reply: &[u8]) -> Result<(), String> {
    if reply.len() < 12 {
        return Err(format!("short RPC reply ({} bytes)", reply.len()));
    }
    let w = |i: usize| u32::from_be_bytes([reply[i], reply[i + 1], reply[i + 2], reply[i + 3]]);
    if w(4) != xid {
        return Err("RPC reply for another call".into());
    }
    if w(8) != 1 {
        return Err("not an RPC reply".into());
    }
    Ok(())
}

pub fn ping(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(format!("{addr}: no RPC reply within {timeout:?}"))
        } else {
            Ok(d)
        }
    };
    s.set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let xid = std::process::id() ^ 0x6d61_696c;
    s.write_all(&null_call(xid, 3))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 4];
    s.set_read_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    s.read_exact(&mut head)
        .map_err(|_| format!("{addr}: no RPC reply within {timeout:?}"))?;
    let len = (u32::from_be_bytes(head) & 0x7fff_ffff) as usize;
    if len > 4096 {
        return Err(format!("{addr}: RPC record of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    s.set_read_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    s.read_exact(&mut body)
        .map_err(|_| format!("{addr}: no RPC reply within {timeout:?}"))?;
    let mut full = head.to_vec();
    full.extend_from_slice(&body);
    check_reply(xid, &full[..]).map_err(|e| format!("{addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_call_is_a_record_marked_rpc_call() {
        let c = null_call(7, 3);
        assert_eq!(&c[0..4], &[0x80, 0, 0, 40]);
        assert_eq!(&c[4..8], &7u32.to_be_bytes());
        assert_eq!(&c[16..20], &100003u32.to_be_bytes());
    }

    #[test]
    fn a_reply_must_answer_our_call() {
        let mut r = vec![0x80, 0, 0, 24];
        r.extend(7u32.to_be_bytes());
        r.extend(1u32.to_be_bytes());
        r.extend([0u8; 16]);
        assert_eq!(check_reply(7, &r), Ok(()));
        assert!(check_reply(8, &r).is_err());
        assert!(check_reply(7, &r[..8]).is_err());
    }

    #[test]
    fn a_server_that_accepts_but_never_answers_fails_in_time() {
        // Like a SIGSTOPped ganesha: the kernel completes the connect.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let start = Instant::now();
        let e = ping("127.0.0.1", port, Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("no RPC reply"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
        drop(l);
    }
}
