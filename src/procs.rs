//! What /proc says about processes, read without creating any process.
//! The proc root is a parameter so tests use a fake tree.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The session: a daemon calls setsid(), so its workers (and workers
    /// it orphaned by dying) carry its pid here. Tells two instances of
    /// one binary apart.
    pub session: u32,
    pub state: char,
    pub comm: String,
    /// The executable; None when it cannot be read (kernel thread, gone).
    pub exe: Option<PathBuf>,
}

/// What /proc/PID/stat says: comm, state, ppid, session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub session: u32,
}

/// Parses /proc/PID/stat. The comm field may hold spaces and ')', so the
/// fields after it are counted from the last ')'.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let _pgrp = rest.next()?;
    let session = rest.next()?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        ppid,
        session,
    })
}

/// Field 22 (starttime) of /proc/PID/stat. The comm field (2) may hold
/// spaces and parentheses, so count from the last ')'.
pub fn start_time_of(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn read(proc_root: &Path, pid: u32) -> Option<ProcInfo> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let Stat {
        comm,
        state,
        ppid,
        session,
    } = parse_stat(&stat)?;
    let exe = std::fs::read_link(dir.join("exe")).ok();
    Some(ProcInfo {
        pid,
        ppid,
        session,
        state,
        comm,
        exe,
    })
}

/// Every pid in this PID namespace.
pub fn all(proc_root: &Path) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Whether `pid` shares each of `which` namespaces ("pid", "mnt") with
/// us. On a host running containers or lab nodes (each in namespaces of
/// its own, all visible in the host's /proc) it keeps a kill to our own
/// node.
pub fn same_namespaces(proc_root: &Path, pid: u32, which: &[&str]) -> bool {
    let ns =
        |p: &str, which: &str| std::fs::read_link(proc_root.join(p).join("ns").join(which)).ok();
    let pid_s = pid.to_string();
    which
        .iter()
        .all(|w| ns("self", w).is_some() && ns("self", w) == ns(&pid_s, w))
}

/// After an upgrade the running binary shows as "PATH (deleted)": still
/// the same daemon.
pub fn exe_matches(exe: &Path, expected: &Path) -> bool {
    let s = exe.to_string_lossy();
    let s = s.strip_suffix(" (deleted)").unwrap_or(&s);
    Path::new(s) == expected
}

/// The pid in a pid file: the first line, digits only. A pid file larger
/// than this is not a pid file.
pub fn read_pid_file(path: &Path) -> Result<Option<u32>, String> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut buf = [0u8; 64];
    let n = f
        .read(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return Ok(None);
    }
    match first.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!("{}: {first:?} is not a pid", path.display())),
        Ok(p) => Ok(Some(p)),
    }
}

/// Sends `sig` to each of `pids` (gone ones are ignored).
pub fn signal_all(pids: &[u32], sig: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), sig);
    }
}

/// `root` and every process descended from it.
pub fn descendants(procs: &[ProcInfo], root: u32) -> Vec<u32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for c in procs.iter().filter(|x| x.ppid == p) {
            if !out.contains(&c.pid) {
                out.push(c.pid);
            }
        }
        i += 1;
    }
    out
}

/// The kernel's unit for the times in /proc/PID/stat (`USER_HZ`): 100
/// on every architecture Debian and RHEL ship.
const TICKS_PER_SECOND: u64 = 100;

/// Fields 14-17 of /proc/PID/stat: utime + stime + cutime + cstime, the
/// CPU time of the process and of the children it reaped.
pub fn cpu_time_of(stat: &str) -> Option<std::time::Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); utime is field 14.
    let ticks = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse::<i64>().ok().map(|t| t.max(0) as u64))
        .collect::<Option<Vec<u64>>>()?;
    (ticks.len() == 4).then(|| {
        std::time::Duration::from_millis(ticks.iter().sum::<u64>() * 1000 / TICKS_PER_SECOND)
    })
}

/// `rchar` + `wchar` of /proc/PID/io: every byte the process read and
/// wrote (files, pipes, sockets).
pub fn io_chars_of(io: &str) -> Option<u64> {
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some(field("rchar:")?.saturating_add(field("wchar:")?))
}

/// The inodes of the listening sockets in /proc/net/{tcp,tcp6}
/// (`st` 0A) or /proc/net/unix (`__SO_ACCEPTCON` in the flags).
pub fn listening_inodes(tcp: &str, unix: &str) -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    for l in tcp.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(3) == Some(&"0A")
            && let Some(ino) = f.get(9).and_then(|i| i.parse().ok())
        {
            out.insert(ino);
        }
    }
    for l in unix.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let accepting = f
            .get(3)
            .and_then(|x| u32::from_str_radix(x, 16).ok())
            .is_some_and(|flags| flags & 0x0001_0000 != 0);
        if accepting && let Some(ino) = f.get(6).and_then(|i| i.parse().ok()) {
            out.insert(ino);
        }
    }
    out
}

/// The socket inodes among `pid`'s open files (`socket:[INODE]`).
pub fn socket_inodes(proc_root: &Path, pid: u32) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let target = std::fs::read_link(e.ok()?.path()).ok()?;
        target
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// What `pids` have done so far, summed: CPU time, bytes read and
/// written, and the listening sockets they hold (counted once each, in
/// the network namespace of the first). Reads files only; a process that
/// is gone adds nothing.
pub fn work_of(proc_root: &Path, pids: &[u32]) -> crate::agents::service::stall::Work {
    let mut w = crate::agents::service::stall::Work::default();
    let dir = |pid: u32| proc_root.join(pid.to_string());
    for &pid in pids {
        if let Some(cpu) = std::fs::read_to_string(dir(pid).join("stat"))
            .ok()
            .and_then(|s| cpu_time_of(&s))
        {
            w.cpu += cpu;
        }
        if let Some(io) = std::fs::read_to_string(dir(pid).join("io"))
            .ok()
            .and_then(|s| io_chars_of(&s))
        {
            w.io = w.io.saturating_add(io);
        }
    }
    if let Some(&first) = pids.first() {
        let net =
            |f: &str| std::fs::read_to_string(dir(first).join("net").join(f)).unwrap_or_default();
        let tcp = net("tcp") + &net("tcp6");
        let listening = listening_inodes(&tcp, &net("unix"));
        let mut held: Vec<u64> = pids
            .iter()
            .flat_map(|&p| socket_inodes(proc_root, p))
            .filter(|i| listening.contains(i))
            .collect();
        held.sort_unstable();
        held.dedup();
        w.listeners = held.len() as u32;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_a_comm_with_spaces_and_parens() {
        let stat =
            "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(start_time_of(stat), Some(987654));
        assert_eq!(start_time_of("garbage"), None);
    }

    #[test]
    fn stat_with_a_tricky_comm_is_parsed() {
        let s = "1234 (my (weird) daemon) S 1 1234 1234 0 -1 4194560 100 0 0 0";
        assert_eq!(
            parse_stat(s),
            Some(Stat {
                comm: "my (weird) daemon".into(),
                state: 'S',
                ppid: 1,
                session: 1234,
            })
        );
    }

    #[test]
    fn a_deleted_binary_still_matches() {
        assert!(exe_matches(
            Path::new("/usr/sbin/dovecot (deleted)"),
            Path::new("/usr/sbin/dovecot")
        ));
        assert!(!exe_matches(
            Path::new("/usr/bin/perl"),
            Path::new("/usr/sbin/dovecot")
        ));
    }

    #[test]
    fn pid_files_are_read_strictly() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.pid");
        assert_eq!(read_pid_file(&f), Ok(None));
        std::fs::write(&f, "4242\n").unwrap();
        assert_eq!(read_pid_file(&f), Ok(Some(4242)));
        std::fs::write(&f, "$(reboot)\n").unwrap();
        assert!(read_pid_file(&f).is_err());
        std::fs::write(&f, "").unwrap();
        assert_eq!(read_pid_file(&f), Ok(None));
    }

    #[test]
    fn descendants_follow_ppid() {
        let p = |pid, ppid| ProcInfo {
            pid,
            ppid,
            session: 1,
            state: 'S',
            comm: String::new(),
            exe: None,
        };
        let procs = vec![p(10, 1), p(11, 10), p(12, 11), p(13, 1)];
        assert_eq!(descendants(&procs, 10), vec![10, 11, 12]);
    }

    #[test]
    fn this_process_is_visible_in_proc() {
        let me = read(Path::new("/proc"), std::process::id()).unwrap();
        assert_ne!(me.state, 'Z');
        assert!(me.exe.is_some());
        assert!(all(Path::new("/proc")).contains(&std::process::id()));
    }

    #[test]
    fn cpu_time_and_io_are_read_from_stat_and_io() {
        // utime 150, stime 50, cutime 30, cstime 20 ticks: 2.5 s.
        let stat = "77 (my (x) d) S 1 77 77 0 -1 4194560 100 0 0 0 150 50 30 20 20 0 1 0 987654";
        assert_eq!(
            cpu_time_of(stat),
            Some(std::time::Duration::from_millis(2500))
        );
        assert_eq!(cpu_time_of("77 (x) S 1 77"), None);
        let io = "rchar: 6976\nwchar: 100\nsyscr: 10\nread_bytes: 0\n";
        assert_eq!(io_chars_of(io), Some(7076));
        assert_eq!(io_chars_of("syscr: 1\n"), None);
    }

    #[test]
    fn listening_sockets_are_told_from_connections() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1128 1 0 100 0 0 10 0\n\
   1: 0100007F:0019 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1129 1 0 100 0 0 10 0\n";
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
00000000a0e46b3d: 00000002 00000000 00010000 0001 01 2001 /run/mysqld/mysqld.sock\n\
0000000005553e11: 00000003 00000000 00000000 0001 03 2002\n";
        assert_eq!(
            listening_inodes(tcp, unix).into_iter().collect::<Vec<_>>(),
            vec![1128, 2001]
        );
    }

    #[test]
    fn the_work_of_a_real_process_is_read_from_proc() {
        use std::io::Read;
        let me = [std::process::id()];
        let proc_root = Path::new("/proc");
        let before = work_of(proc_root, &me);
        // A TCP and a Unix listener more; connections are not listeners.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _conn = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let _unix = std::os::unix::net::UnixListener::bind(d.path().join("s")).unwrap();
        // 2 MiB written and read back.
        let f = d.path().join("f");
        std::fs::write(&f, vec![0u8; 2 << 20]).unwrap();
        let mut buf = Vec::new();
        std::fs::File::open(&f)
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
        // CPU until the kernel counts a tick more (no clock asserted).
        let mut x = 0u64;
        let after = loop {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            let w = work_of(proc_root, &me);
            if w.cpu > before.cpu {
                break w;
            }
        };
        assert_eq!(
            after.listeners,
            before.listeners + 2,
            "{before:?} {after:?}"
        );
        assert!(after.io >= before.io + (4 << 20), "{before:?} {after:?}");
        assert_eq!(work_of(proc_root, &[]), Default::default());
    }
}
