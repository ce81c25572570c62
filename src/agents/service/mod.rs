//! `ocf:mailha:service`: one mail daemon (DESIGN section 6).
//!
//! - monitor: pid file -> live process -> identity (exe, or comm for the
//!   eYou suite) -> protocol probe with a deadline. No process is created
//!   on this path unless the probe is a `command`.
//! - start: the daemon's own start command (argv), retried (the original
//!   tried 5 times), done when monitor passes, within the op timeout.
//! - stop: the stop command, then TERM, then KILL of the daemon's
//!   processes found in /proc; success only when they are gone.
//!
//! Every parameter is hostile input (the agent runs as root): the table
//! below validates each one before anything is read or run.

pub mod probe;

use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use crate::procs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn check_name(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 40
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a service name"))
}

/// A path an agent may use: absolute, no `..`, no shell metacharacters,
/// and not in the kernel's pseudo filesystems.
fn check_path(v: &str) -> Result<(), String> {
    if let Some(c) = crate::config::validate::hostile_char(v) {
        return Err(format!("contains {c:?}"));
    }
    if v.chars().any(char::is_whitespace) {
        return Err(format!("{v:?} contains white space"));
    }
    if !v.starts_with('/') || v.split('/').any(|c| c == "..") {
        return Err(format!("{v:?} must be an absolute path without '..'"));
    }
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|r| v == *r || v.starts_with(&format!("{r}/")))
    {
        return Err(format!("{v:?} is in a kernel pseudo filesystem"));
    }
    Ok(())
}

/// A JSON argv array: a program by absolute path and plain arguments.
pub fn parse_argv(v: &str) -> Result<Vec<String>, String> {
    let argv: Vec<String> =
        serde_json::from_str(v).map_err(|_| format!("{v:?} is not a JSON array of strings"))?;
    let Some(prog) = argv.first() else {
        return Err("an empty argv runs nothing".into());
    };
    check_path(prog)?;
    for a in &argv[1..] {
        if let Some(c) = crate::config::validate::hostile_char(a) {
            return Err(format!("argument {a:?} contains {c:?}"));
        }
    }
    Ok(argv)
}

fn check_argv(v: &str) -> Result<(), String> {
    parse_argv(v).map(|_| ())
}

fn check_probe(v: &str) -> Result<(), String> {
    crate::config::ProbeKind::NAMES
        .contains(&v)
        .then_some(())
        .ok_or_else(|| {
            format!(
                "{v:?} is not one of {}",
                crate::config::ProbeKind::NAMES.join(", ")
            )
        })
}

fn check_host(v: &str) -> Result<(), String> {
    let ok = v.parse::<std::net::IpAddr>().is_ok()
        || (!v.is_empty()
            && v.len() <= 253
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a host"))
}

fn check_http_path(v: &str) -> Result<(), String> {
    let ok = v.starts_with('/')
        && v.chars().all(|c| c.is_ascii_graphic())
        && crate::config::validate::hostile_char(v).is_none();
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not an HTTP path"))
}

fn check_status(v: &str) -> Result<(), String> {
    match v.parse::<u16>() {
        Ok(s) if (100..=599).contains(&s) => Ok(()),
        _ => Err(format!("{v:?} is not an HTTP status")),
    }
}

fn check_duration(v: &str) -> Result<(), String> {
    match humantime::parse_duration(v) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(600) => Ok(()),
        _ => Err(format!("{v:?} is not a duration between 1ms and 10min")),
    }
}

fn check_process_name(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("{v:?} is not a process name (at most 15 letters, digits, -_.)"))
}

fn check_tries(v: &str) -> Result<(), String> {
    match v.parse::<u32>() {
        Ok(1..=20) => Ok(()),
        _ => Err(format!("{v:?} is not between 1 and 20")),
    }
}

use ParamType::{Boolean, Integer, String as Str};

pub static PARAMS: &[Param] = &[
    Param {
        unique: true,
        ..Param::new(
            "name",
            Str,
            true,
            None,
            "service name",
            "The service's name in mailha.toml, for logs and exit reasons.",
            check_name,
        )
    },
    Param::new(
        "start",
        Str,
        true,
        None,
        "start command",
        "The command that starts the daemon, as a JSON array of strings (argv; never run through a shell). The program is an absolute path.",
        check_argv,
    ),
    Param::new(
        "stop",
        Str,
        false,
        None,
        "stop command",
        "The command that stops the daemon, as a JSON argv array. Without it, the daemon's processes are sent TERM, then KILL.",
        check_argv,
    ),
    Param::new(
        "pid_file",
        Str,
        false,
        None,
        "pid file",
        "Absolute path of the daemon's pid file.",
        check_path,
    ),
    Param::new(
        "executable",
        Str,
        false,
        None,
        "expected executable",
        "Absolute path of the daemon's binary: a pid whose /proc/PID/exe is another program is a recycled pid, not the daemon.",
        check_path,
    ),
    Param::new(
        "process_name",
        Str,
        false,
        None,
        "process name",
        "A string the daemon's process name (comm) contains, when the binary path is not known (the eYou suite).",
        check_process_name,
    ),
    Param::new(
        "probe",
        Str,
        false,
        None,
        "protocol probe",
        "smtp, pop3, imap, mysql, memcached, http or command.",
        check_probe,
    ),
    Param::new(
        "probe_host",
        Str,
        false,
        Some("127.0.0.1"),
        "probe host",
        "Address the probe connects to.",
        check_host,
    ),
    Param::new(
        "probe_port",
        Integer,
        false,
        None,
        "probe port",
        "TCP port the probe connects to.",
        ocf::check_port,
    ),
    Param::new(
        "probe_socket",
        Str,
        false,
        None,
        "probe socket",
        "Unix socket the probe connects to (mysql, memcached).",
        check_path,
    ),
    Param::new(
        "probe_path",
        Str,
        false,
        Some("/"),
        "HTTP path",
        "Path an http probe requests.",
        check_http_path,
    ),
    Param::new(
        "probe_expect",
        Integer,
        false,
        Some("200"),
        "HTTP status",
        "Status an http probe expects.",
        check_status,
    ),
    Param::new(
        "probe_argv",
        Str,
        false,
        None,
        "probe command",
        "For probe=command: a JSON argv array; exit 0 means healthy.",
        check_argv,
    ),
    Param::new(
        "probe_timeout",
        Str,
        false,
        Some("5s"),
        "probe deadline",
        "How long a probe may take (e.g. 2s).",
        check_duration,
    ),
    Param::new(
        "watch",
        Boolean,
        false,
        Some("true"),
        "deep checks",
        "false: only check the daemon is alive (the original's HA_WATCH).",
        ocf::no_check,
    ),
    Param::new(
        "start_tries",
        Integer,
        false,
        Some("5"),
        "start attempts",
        "How many times start runs the start command before giving up.",
        check_tries,
    ),
];

pub static ACTIONS: &[Action] = &[
    Action::once("start", 60),
    Action::once("stop", 60),
    Action::monitor(20, 2, 0),
    Action::once("validate-all", 5),
    Action::once("meta-data", 5),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "service",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "A mail daemon, deeply and cheaply checked",
    longdesc: "Starts, stops and monitors one mail daemon. The monitor reads the pid file and /proc and speaks the daemon's protocol in-process with a deadline: it creates no process (except for probe=command).",
    params: PARAMS,
    actions: ACTIONS,
};

/// The parameters, typed.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub start: Vec<String>,
    pub stop: Option<Vec<String>>,
    pub pid_file: Option<PathBuf>,
    pub executable: Option<PathBuf>,
    pub process_name: Option<String>,
    pub probe: Option<Probe>,
    pub watch: bool,
    pub start_tries: u32,
}

#[derive(Debug, Clone)]
pub enum Probe {
    Net {
        kind: probe::Kind,
        target: probe::Target,
        timeout: Duration,
    },
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

/// Builds the typed service from checked parameters, with the checks that
/// span several parameters.
pub fn from_params(p: &BTreeMap<&'static str, String>) -> Result<Service, OcfError> {
    let get = |k: &str| p.get(k).cloned();
    let timeout = humantime::parse_duration(&p["probe_timeout"]).expect("checked");
    let probe = match get("probe").as_deref() {
        None => None,
        Some("command") => {
            let argv = get("probe_argv")
                .ok_or_else(|| OcfError::configured("probe=command needs probe_argv"))?;
            Some(Probe::Command {
                argv: parse_argv(&argv).expect("checked"),
                timeout,
            })
        }
        Some(k) => {
            let kind = match k {
                "smtp" => probe::Kind::Smtp,
                "pop3" => probe::Kind::Pop3,
                "imap" => probe::Kind::Imap,
                "mysql" => probe::Kind::Mysql,
                "memcached" => probe::Kind::Memcached,
                _ => probe::Kind::Http {
                    path: p["probe_path"].clone(),
                    expect: p["probe_expect"].parse().expect("checked"),
                },
            };
            let target = match (get("probe_socket"), get("probe_port")) {
                (Some(s), _) => probe::Target::Unix(PathBuf::from(s)),
                (None, Some(port)) => probe::Target::Tcp {
                    host: p["probe_host"].clone(),
                    port: port.parse().expect("checked"),
                },
                (None, None) => {
                    return Err(OcfError::configured(format!(
                        "probe={k} needs probe_port or probe_socket"
                    )));
                }
            };
            Some(Probe::Net {
                kind,
                target,
                timeout,
            })
        }
    };
    let s = Service {
        name: p["name"].clone(),
        start: parse_argv(&p["start"]).expect("checked"),
        stop: get("stop").map(|v| parse_argv(&v).expect("checked")),
        pid_file: get("pid_file").map(PathBuf::from),
        executable: get("executable").map(PathBuf::from),
        process_name: get("process_name"),
        probe,
        watch: ocf::parse_bool(&p["watch"]).expect("checked"),
        start_tries: p["start_tries"].parse().expect("checked"),
    };
    if s.pid_file.is_none()
        && s.executable.is_none()
        && s.process_name.is_none()
        && s.probe.is_none()
    {
        return Err(OcfError::configured(
            "nothing to monitor: give pid_file, executable, process_name or probe",
        ));
    }
    Ok(s)
}

/// Is the daemon's process there, and is it really the daemon?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Running(u32),
    NotRunning(String),
    /// Only a probe can tell (no pid file, binary or name given).
    Unknown,
}

fn identity_ok(s: &Service, p: &procs::ProcInfo) -> Result<(), String> {
    if let Some(exe) = &s.executable {
        return match &p.exe {
            Some(e) if procs::exe_matches(e, exe) => Ok(()),
            Some(e) => Err(format!(
                "pid {} is {}, not {}",
                p.pid,
                e.display(),
                exe.display()
            )),
            None => Err(format!("pid {} has no readable executable", p.pid)),
        };
    }
    if let Some(name) = &s.process_name
        && !p.comm.contains(name.as_str())
    {
        return Err(format!("pid {} is {:?}, not {name}", p.pid, p.comm));
    }
    Ok(())
}

/// Finds the daemon: through its pid file when it has one, else by
/// scanning /proc for its binary or name. Reads files only.
pub fn liveness(s: &Service, proc_root: &Path) -> Liveness {
    let pid = s.pid_file.as_deref().map(procs::read_pid_file);
    liveness_from(s, proc_root, pid)
}

/// `liveness` with the pid file already read (`None`: the service has
/// none).
fn liveness_from(
    s: &Service,
    proc_root: &Path,
    pid_file: Option<Result<Option<u32>, String>>,
) -> Liveness {
    if let (Some(pf), Some(read)) = (&s.pid_file, pid_file) {
        let pid = match read {
            Ok(Some(pid)) => pid,
            Ok(None) => return Liveness::NotRunning(format!("no pid in {}", pf.display())),
            Err(e) => return Liveness::NotRunning(e),
        };
        return match procs::read(proc_root, pid) {
            None => Liveness::NotRunning(format!("pid {pid} from {} is gone", pf.display())),
            Some(p) if p.state == 'Z' => Liveness::NotRunning(format!("pid {pid} is a zombie")),
            Some(p) => match identity_ok(s, &p) {
                Ok(()) => Liveness::Running(pid),
                // A recycled pid: the daemon died and another process got
                // its number.
                Err(e) => Liveness::NotRunning(e),
            },
        };
    }
    if s.executable.is_none() && s.process_name.is_none() {
        return Liveness::Unknown;
    }
    for pid in procs::all(proc_root) {
        if let Some(p) = procs::read(proc_root, pid)
            && p.state != 'Z'
            && identity_ok(s, &p).is_ok()
        {
            return Liveness::Running(pid);
        }
    }
    Liveness::NotRunning("no process of the service".into())
}

/// Every process that belongs to the daemon: its main pid and descendants,
/// plus the processes of its binary that a dead master left behind.
fn processes_from(s: &Service, proc_root: &Path, pid_file: PidRead) -> Vec<u32> {
    let all: Vec<procs::ProcInfo> = procs::all(proc_root)
        .into_iter()
        .filter_map(|pid| procs::read(proc_root, pid))
        .filter(|p| p.state != 'Z')
        // Stop signals only our node's processes, never a container's
        // daemon of the same binary. The PID namespace only: a daemon
        // that systemd runs with PrivateTmp has a mount namespace of its
        // own and is still ours.
        .filter(|p| procs::same_namespaces(proc_root, p.pid, &["pid"]))
        .collect();
    let main = match liveness_from(s, proc_root, pid_file.clone()) {
        Liveness::Running(pid) => Some(pid),
        _ => None,
    };
    instance_processes(s, &all, main, &pid_file, std::process::id())
}

/// Which processes are this instance's. A host may run several instances
/// of one binary (eYou runs three memcached), so a process of the binary
/// is swept only when it can be told to be ours:
/// - the service has no pid file: its binary (or name) is what it is;
/// - the pid file could not be read (a hung shared disk): nothing tells
///   instances apart, and every instance on that disk is going anyway;
/// - the pid file names a pid, alive or dead: the processes in that pid's
///   session (a daemon calls setsid; its orphaned workers keep the id);
/// - the pid file is empty or gone: only orphans, processes whose session
///   leader is not a live process of the binary (another daemonized
///   instance leads its own session and is left alone).
fn instance_processes(
    s: &Service,
    all: &[procs::ProcInfo],
    main: Option<u32>,
    pid_file: &PidRead,
    me: u32,
) -> Vec<u32> {
    let of_binary = |p: &procs::ProcInfo| match (&s.executable, &s.process_name) {
        (Some(exe), _) => p.exe.as_deref().is_some_and(|e| procs::exe_matches(e, exe)),
        (None, Some(n)) => p.comm.contains(n.as_str()),
        _ => false,
    };
    let leads_an_instance = |sid: u32| all.iter().any(|q| q.pid == sid && of_binary(q));
    let ours = |p: &procs::ProcInfo| match pid_file {
        None | Some(Err(_)) => true,
        Some(Ok(Some(pid))) => p.session == *pid,
        Some(Ok(None)) => !leads_an_instance(p.session),
    };
    let mut out = main.map(|m| procs::descendants(all, m)).unwrap_or_default();
    for p in all {
        if of_binary(p) && ours(p) && !out.contains(&p.pid) {
            out.push(p.pid);
        }
    }
    out.retain(|p| *p != me && *p != 1);
    out
}

fn run_probe(pr: &Probe) -> Result<(), String> {
    match pr {
        Probe::Net {
            kind,
            target,
            timeout,
        } => probe::run(kind, target, *timeout),
        Probe::Command { argv, timeout } => {
            let o = crate::exec::run(argv, &[], None, *timeout).map_err(|e| e.to_string())?;
            if o.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} exited {:?}: {}",
                    argv[0],
                    o.code,
                    o.stderr.trim()
                ))
            }
        }
    }
}

/// The monitor decision, from what was observed.
pub fn judge(
    s: &Service,
    live: &Liveness,
    probe: Option<Result<(), String>>,
) -> Result<OcfStatus, OcfError> {
    match live {
        Liveness::NotRunning(why) => {
            return Err(OcfError::not_running(format!("{}: {why}", s.name)));
        }
        Liveness::Running(_) if !s.watch => return Ok(OcfStatus::Success),
        _ => {}
    }
    match probe {
        Some(Ok(())) => Ok(OcfStatus::Success),
        // Only a probe could tell, and it failed: nothing answers, so the
        // daemon is not running (Pacemaker then need not stop it first).
        Some(Err(e)) if *live == Liveness::Unknown => {
            Err(OcfError::not_running(format!("{}: {e}", s.name)))
        }
        Some(Err(e)) => Err(OcfError::generic(format!("{} probe: {e}", s.name))),
        None => Ok(OcfStatus::Success),
    }
}

/// Where the agent reads the cluster-wide watch switch (`mailha watch`).
pub fn cib_file() -> std::path::PathBuf {
    std::env::var_os("MAILHA_CIB_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::watch::CIB_FILE))
}

/// The `watch` parameter, unless `mailha watch off` switched it off for
/// the whole cluster. An unreadable CIB file leaves the parameter in force.
pub fn effective_watch(s: &Service, cib: &Path) -> bool {
    s.watch
        && !std::fs::read_to_string(cib)
            .map(|x| crate::watch::is_off(&x, &s.name))
            .unwrap_or(false)
}

pub fn monitor(s: &Service, proc_root: &Path) -> Result<OcfStatus, OcfError> {
    let mut s = s.clone();
    s.watch = effective_watch(&s, &cib_file());
    let s = &s;
    let live = liveness(s, proc_root);
    let probe = match (&live, &s.probe) {
        (Liveness::NotRunning(_), _) => None,
        (Liveness::Running(_), _) if !s.watch => None,
        (_, Some(pr)) => Some(run_probe(pr)),
        (_, None) => None,
    };
    judge(s, &live, probe)
}

/// Starts a command detached from the agent (its own process group, no
/// inherited pipes), so a daemon that stays in the foreground is not tied
/// to this operation. Returns the child to poll.
fn spawn_detached(argv: &[String]) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))
}

/// Starts the daemon and waits until its monitor passes, within the op
/// timeout. The start command is run again (up to `start_tries` times, as
/// the original did) only while no process of the daemon is alive: a
/// daemon that is up but still warming up (MariaDB recovering InnoDB) is
/// given the whole timeout, never killed and restarted.
pub fn start(s: &Service, proc_root: &Path, timeout: Duration) -> Result<OcfStatus, OcfError> {
    // Answer before Pacemaker's own timeout kills us: a timed-out start is
    // recorded with no reason at all.
    let deadline = Instant::now() + timeout.mul_f64(0.9);
    if monitor(s, proc_root).is_ok() {
        return Ok(OcfStatus::Success);
    }
    let mut last = String::from("not attempted");
    let mut attempts = 0;
    let mut child: Option<std::process::Child> = None;
    // When the start command last ended well: a daemon it launched in the
    // background may take a moment to write its pid file.
    let mut ended_ok: Option<Instant> = None;
    while Instant::now() < deadline {
        match monitor(s, proc_root) {
            Ok(_) => {
                eprintln!("{}: started (attempt {attempts})", s.name);
                return Ok(OcfStatus::Success);
            }
            Err(e) => last = e.reason,
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            child = None;
            if st.success() {
                ended_ok = Some(Instant::now());
            } else {
                last = format!("{} exited with {st}", s.start[0]);
                eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
            }
        }
        // "Alive" is this daemon (its pid file, or its start command still
        // running), not any process of the same binary: a host may run
        // other instances.
        let alive = child.is_some() || matches!(liveness(s, proc_root), Liveness::Running(_));
        let settling = ended_ok.is_some_and(|t| t.elapsed() < START_SETTLE);
        if !alive && !settling {
            if attempts >= s.start_tries {
                break;
            }
            attempts += 1;
            ended_ok = None;
            match spawn_detached(&s.start) {
                Ok(c) => child = Some(c),
                Err(e) => {
                    last = e;
                    eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
                }
            }
        }
        // Every step of the chain waits for this start to return, so the
        // poll's latency adds up along it (four levels in the mail
        // stack); a monitor costs no process and well under 1 ms.
        std::thread::sleep(START_POLL);
    }
    Err(OcfError::generic(format!(
        "{}: not started ({attempts} attempts): {last}",
        s.name
    )))
}

/// How often a start looks whether the daemon answers yet.
const START_POLL: Duration = Duration::from_millis(50);

/// How long a daemon launched by a start command that ended well may take
/// to show up (pid file written) before the command is run again.
const START_SETTLE: Duration = Duration::from_secs(5);

fn signal_all(pids: &[u32], sig: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), sig);
    }
}

fn wait_gone(s: &Service, proc_root: &Path, pid: &PidRead, until: Instant) -> Vec<u32> {
    loop {
        let left = processes_from(s, proc_root, pid.clone());
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid file as read once for a stop (`None`: the service has none).
type PidRead = Option<Result<Option<u32>, String>>;

/// Reads the pid file where a hung disk cannot hold the stop: in a
/// `mailha io` child with a deadline (the pid file may live on the shared
/// disk whose failure is why we are stopping). A read that does not come
/// back is no pid: the daemon's processes are still found by executable.
fn pid_file_bounded(s: &Service, deadline: Duration) -> (PidRead, bool) {
    let Some(pf) = &s.pid_file else {
        return (None, true);
    };
    let Some(path) = pf.to_str() else {
        return (Some(Err(format!("{}: not UTF-8", pf.display()))), true);
    };
    match crate::exec::io_child(&["pidfile", path], deadline) {
        Ok(out) => (
            Some(Ok(out.trim().parse::<u32>().ok().filter(|p| *p > 0))),
            true,
        ),
        Err(e) => {
            eprintln!(
                "{}: pid file: {e}; finding its processes by executable",
                s.name
            );
            (Some(Err(e)), false)
        }
    }
}

pub fn stop(s: &Service, proc_root: &Path, timeout: Duration) -> Result<OcfStatus, OcfError> {
    use nix::sys::signal::Signal;
    let start = Instant::now();
    let deadline = start + timeout;
    // Keep a margin so the agent itself always answers before Pacemaker's
    // own timeout fires.
    let phase = |share: u32| start + timeout.mul_f64(share as f64 / 10.0);
    let (pid, answered) = pid_file_bounded(s, timeout.mul_f64(0.1).min(Duration::from_secs(5)));
    // A pid file that did not answer is not touched again (removing it
    // would hang the same way).
    let cleanup = |s: &Service| {
        if answered {
            cleanup_pid_file(s, proc_root)
        }
    };
    if processes_from(s, proc_root, pid.clone()).is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    if let Some(argv) = &s.stop {
        let budget = phase(4).saturating_duration_since(Instant::now());
        match crate::exec::run(argv, &[], None, budget) {
            Ok(o) if !o.success() => eprintln!("{}: {} exited {:?}", s.name, argv[0], o.code),
            Err(e) => eprintln!("{}: {e}", s.name),
            Ok(_) => {}
        }
        if wait_gone(s, proc_root, &pid, phase(5)).is_empty() {
            cleanup(s);
            return Ok(OcfStatus::Success);
        }
    }
    let left = processes_from(s, proc_root, pid.clone());
    eprintln!("{}: sending TERM to {left:?}", s.name);
    signal_all(&left, Signal::SIGTERM);
    if wait_gone(s, proc_root, &pid, phase(8)).is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    let left = processes_from(s, proc_root, pid.clone());
    eprintln!("{}: sending KILL to {left:?}", s.name);
    signal_all(&left, Signal::SIGKILL);
    let left = wait_gone(s, proc_root, &pid, phase(9).min(deadline));
    if left.is_empty() {
        cleanup(s);
        return Ok(OcfStatus::Success);
    }
    Err(OcfError::generic(format!(
        "{}: processes {left:?} survived KILL (stuck in the kernel?)",
        s.name
    )))
}

/// A pid file naming a dead process is removed: the next start must not
/// mistake a recycled pid for the daemon.
fn cleanup_pid_file(s: &Service, proc_root: &Path) {
    if let Some(pf) = &s.pid_file
        && matches!(liveness(s, proc_root), Liveness::NotRunning(_))
        && pf.exists()
    {
        let _ = std::fs::remove_file(pf);
    }
}

/// The agent's entry point: `service ACTION`.
pub fn main(
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
    proc_root: &Path,
) -> Result<OcfStatus, OcfError> {
    let (params, timeout) = match ocf::prepare(&SPEC, action, env) {
        Ok(p) => p,
        Err(done) => return done,
    };
    let s = from_params(&params)?;
    match action {
        "validate-all" => Ok(OcfStatus::Success),
        "start" => start(&s, proc_root, timeout),
        "stop" => stop(&s, proc_root, timeout),
        _ => {
            let r = monitor(&s, proc_root);
            // A recurring monitor's failure is what makes Pacemaker
            // restart the service (or move it): tell the operator why, in
            // the agent's own words. A probe's answer is only a question.
            if let Err(e) = &r
                && !ocf::is_probe(env)
            {
                crate::alert::spool::note(
                    crate::alert::event::Kind::ServiceRestarted,
                    env("OCF_RESOURCE_INSTANCE").as_deref(),
                    &format!("{}: {}", s.name, e.reason),
                );
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<Service, OcfError> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string()))
            .collect();
        let p = ocf::read_params(&SPEC, &|k| m.get(k).cloned())?;
        from_params(&p)
    }

    const BASE: &[(&str, &str)] = &[
        ("name", "postfix"),
        ("start", r#"["/usr/sbin/postfix","start"]"#),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn hostile_parameters_are_refused_as_misconfiguration() {
        for (k, v) in [
            ("start", r#"["/usr/sbin/postfix; reboot"]"#),
            ("start", r#"["/usr/sbin/postfix","$(reboot)"]"#),
            ("start", "/usr/sbin/postfix start"),
            ("start", r#"["postfix"]"#),
            ("stop", r#"["/usr/sbin/postfix","stop`id`"]"#),
            ("pid_file", "run/postfix.pid"),
            ("pid_file", "/proc/1/environ"),
            ("pid_file", "/var/run/../../etc/shadow"),
            ("executable", "/usr/lib/postfix/sbin/master\n/bin/sh"),
            ("name", "postfix;id"),
            ("probe", "smtp;id"),
            ("probe_host", "$(hostname)"),
            ("probe_port", "25; reboot"),
            ("probe_path", "/ok$(id)"),
            ("probe_timeout", "forever"),
            ("process_name", "a|b"),
        ] {
            let e = params(&with(&[(k, v)])).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{k}={v:?} was accepted");
        }
    }

    #[test]
    fn a_network_probe_needs_a_port_or_socket() {
        let e = params(&with(&[("probe", "smtp")])).unwrap_err();
        assert!(e.reason.contains("probe_port"));
        let s = params(&with(&[("probe", "smtp"), ("probe_port", "25")])).unwrap();
        assert!(matches!(s.probe, Some(Probe::Net { .. })));
    }

    #[test]
    fn something_must_be_monitorable() {
        assert!(
            params(BASE)
                .unwrap_err()
                .reason
                .contains("nothing to monitor")
        );
    }

    fn svc() -> Service {
        params(&with(&[
            ("pid_file", "/run/x.pid"),
            ("probe", "smtp"),
            ("probe_port", "25"),
        ]))
        .unwrap()
    }

    #[test]
    fn judging_a_monitor() {
        let s = svc();
        assert_eq!(
            judge(&s, &Liveness::NotRunning("gone".into()), None)
                .unwrap_err()
                .status,
            OcfStatus::NotRunning
        );
        assert_eq!(
            judge(&s, &Liveness::Running(5), Some(Ok(()))),
            Ok(OcfStatus::Success)
        );
        let e = judge(
            &s,
            &Liveness::Running(5),
            Some(Err("greeting is not 220".into())),
        )
        .unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrGeneric);
        assert!(e.reason.contains("postfix probe: greeting is not 220"));
        let mut lazy = s.clone();
        lazy.watch = false;
        assert_eq!(
            judge(&lazy, &Liveness::Running(5), None),
            Ok(OcfStatus::Success),
            "watch off: liveness only"
        );
        assert_eq!(
            judge(&s, &Liveness::Unknown, Some(Err("connect refused".into())))
                .unwrap_err()
                .status,
            OcfStatus::NotRunning
        );
    }

    /// A fake /proc with one process.
    fn fake_proc(pid: u32, comm: &str, exe: &str, state: char) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(pid.to_string());
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) {state} 1 {pid} {pid} 0"),
        )
        .unwrap();
        std::os::unix::fs::symlink(exe, p.join("exe")).unwrap();
        d
    }

    #[test]
    fn a_recycled_pid_is_caught_by_the_executable() {
        let proc_root = fake_proc(4242, "perl", "/usr/bin/perl", 'S');
        let run = tempfile::tempdir().unwrap();
        let pf = run.path().join("master.pid");
        std::fs::write(&pf, "4242\n").unwrap();
        let mut s = svc();
        s.pid_file = Some(pf.clone());
        s.executable = Some("/usr/lib/postfix/sbin/master".into());
        match liveness(&s, proc_root.path()) {
            Liveness::NotRunning(why) => assert!(why.contains("is /usr/bin/perl"), "{why}"),
            l => panic!("{l:?}"),
        }
        s.executable = Some("/usr/bin/perl".into());
        assert_eq!(liveness(&s, proc_root.path()), Liveness::Running(4242));
    }

    #[test]
    fn a_zombie_or_a_missing_pid_is_not_running() {
        let proc_root = fake_proc(77, "master", "/usr/lib/postfix/sbin/master", 'Z');
        let run = tempfile::tempdir().unwrap();
        let pf = run.path().join("master.pid");
        std::fs::write(&pf, "77\n").unwrap();
        let mut s = svc();
        s.pid_file = Some(pf.clone());
        assert!(
            matches!(liveness(&s, proc_root.path()), Liveness::NotRunning(w) if w.contains("zombie"))
        );
        std::fs::write(&pf, "78\n").unwrap();
        assert!(
            matches!(liveness(&s, proc_root.path()), Liveness::NotRunning(w) if w.contains("gone"))
        );
    }

    #[test]
    fn the_eyou_rule_matches_by_process_name() {
        let proc_root = fake_proc(9, "mproxyd", "/usr/local/eyou/mail/bin/mproxyd", 'S');
        let s = params(&[
            ("name", "mproxy"),
            (
                "start",
                r#"["/usr/local/eyou/mail/opt/bin/eyou_mail","start","mproxy"]"#,
            ),
            ("process_name", "proxy"),
        ])
        .unwrap();
        assert_eq!(liveness(&s, proc_root.path()), Liveness::Running(9));
    }

    /// Two memcached instances, each a daemon leading its own session, and
    /// a worker orphaned by a third instance's master that died.
    fn two_memcached() -> (Service, Vec<procs::ProcInfo>) {
        let mut s = svc();
        s.executable = Some("/usr/bin/memcached".into());
        let p = |pid, session| procs::ProcInfo {
            pid,
            ppid: 1,
            session,
            state: 'S',
            comm: "memcached".into(),
            exe: Some("/usr/bin/memcached".into()),
        };
        (s, vec![p(100, 100), p(200, 200), p(301, 300)])
    }

    #[test]
    fn stopping_one_instance_spares_another_of_the_same_binary() {
        let (s, all) = two_memcached();
        // Ours is 100, alive.
        let mine = instance_processes(&s, &all, Some(100), &Some(Ok(Some(100))), 1);
        assert_eq!(mine, vec![100]);
        // Ours was 300, killed -9: its orphaned worker is ours, 100 and 200
        // are someone else's.
        let mine = instance_processes(&s, &all, None, &Some(Ok(Some(300))), 1);
        assert_eq!(mine, vec![301]);
        // The pid file is gone: only orphans, never a live instance.
        let mine = instance_processes(&s, &all, None, &Some(Ok(None)), 1);
        assert_eq!(mine, vec![301]);
    }

    #[test]
    fn without_a_readable_pid_file_the_binary_is_the_service() {
        let (mut s, all) = two_memcached();
        let hung = Some(Err("timed out".to_string()));
        assert_eq!(
            instance_processes(&s, &all, None, &hung, 1),
            vec![100, 200, 301]
        );
        s.pid_file = None;
        assert_eq!(
            instance_processes(&s, &all, None, &None, 200),
            vec![100, 301],
            "never the agent itself"
        );
    }

    #[test]
    fn unknown_actions_are_unimplemented() {
        let e = main("promote", &|_| None, Path::new("/proc")).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrUnimplemented);
    }
}
