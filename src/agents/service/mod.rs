//! `ocf:mailha:service`: one mail daemon (DESIGN section 6).
//!
//! Two ways to run it, chosen on the node at every action (`control`):
//! - unit mode (`unit.rs`): the daemon's systemd unit, where systemd runs
//!   (`/run/systemd/system` exists): systemctl start/stop with deadlines,
//!   the daemon's processes read from the unit's cgroup;
//! - argv mode (`argv.rs`): its own start and stop commands and its pid
//!   file, for hosts without systemd and eYou's control script.
//!
//! - monitor: the daemon's processes (the unit's cgroup, or pid file ->
//!   live process) -> identity (exe, or comm for the eYou suite) ->
//!   protocol probe with a deadline. No process is created on this path
//!   unless the probe is a `command`.
//! - start: retried (the original tried 5 times) while nothing of the
//!   daemon is alive, done when the monitor passes, within the op timeout;
//!   given up sooner when the daemon's process is up, its probe failing,
//!   and it makes no progress for `start_stall` (`stall.rs`).
//! - stop: systemctl stop or the stop command, then TERM, then KILL;
//!   success only when the processes are gone, within the op timeout.
//!
//! Every parameter is hostile input (the agent runs as root): the table
//! below validates each one before anything is read or run.

pub mod argv;
pub mod ended;
pub mod probe;
pub mod stall;
pub mod unit;

use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use crate::procs;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        "unit",
        Str,
        false,
        None,
        "systemd unit",
        "The systemd service unit that runs the daemon (e.g. mariadb.service, postfix@-.service). Where systemd runs, start and stop go through systemctl and the monitor finds the daemon in the unit's cgroup; start and stop are then not used, and pid_file only as the unit's PIDFile= (below). When the unit ends of itself, Pacemaker is told at once (crm_resource --fail), not at the next monitor. Where it does not run, start and stop are (without start the service cannot run there).",
        crate::config::validate::check_unit_name,
    ),
    Param::new(
        "start",
        Str,
        false,
        None,
        "start command",
        "The command that starts the daemon, as a JSON array of strings (argv; never run through a shell). The program is an absolute path. Required unless unit is given; with a unit, used only where systemd does not run.",
        check_argv,
    ),
    Param::new(
        "stop",
        Str,
        false,
        None,
        "stop command",
        "The command that stops the daemon, as a JSON argv array. Without it, the daemon's processes are sent TERM, then KILL. With a unit, used only where systemd does not run.",
        check_argv,
    ),
    Param::new(
        "pid_file",
        Str,
        false,
        None,
        "pid file",
        "Absolute path of the daemon's pid file. In unit mode the unit's cgroup says which processes are the daemon's; the pid file is given to systemd (PIDFile= in mailha's drop-in) only for a forking unit that names none, so that systemd sees the daemon's death at once (Debian's postfix@.service).",
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
        "start_stall",
        Str,
        false,
        Some(crate::config::START_STALL_DEFAULT),
        "give up a start that makes no progress",
        "How long a start waits for a daemon whose process is up and whose probe fails while it makes no progress: no 50 ms of CPU, no 1 MiB read or written and no new listening socket by its processes since their last progress. Then the start fails (generic error, saying why), so that Pacemaker moves the service instead of waiting out the op timeout. A daemon that makes progress (MariaDB recovering InnoDB) is waited for up to the op timeout.",
        check_duration,
    ),
    Param::new(
        "start_tries",
        Integer,
        false,
        Some("5"),
        "start attempts",
        "How many times start runs the start command (or starts the unit) before giving up.",
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
    longdesc: "Starts, stops and monitors one mail daemon, through its systemd unit where systemd runs (unit) or its own commands (start, stop). The monitor reads /proc and the unit's cgroup (or the pid file) and speaks the daemon's protocol in-process with a deadline: it creates no process (except for probe=command).",
    params: PARAMS,
    actions: ACTIONS,
};

/// The parameters, typed.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// The systemd unit (unit mode where systemd runs).
    pub unit: Option<String>,
    /// The start command (argv mode); `None` for a unit-only service.
    pub start: Option<Vec<String>>,
    pub stop: Option<Vec<String>>,
    pub pid_file: Option<PathBuf>,
    pub executable: Option<PathBuf>,
    pub process_name: Option<String>,
    pub probe: Option<Probe>,
    pub watch: bool,
    pub start_tries: u32,
    /// How long a start waits for a daemon that is up, fails its probe
    /// and makes no progress (`stall.rs`).
    pub start_stall: Duration,
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
        unit: get("unit"),
        start: get("start").map(|v| parse_argv(&v).expect("checked")),
        stop: get("stop").map(|v| parse_argv(&v).expect("checked")),
        pid_file: get("pid_file").map(PathBuf::from),
        executable: get("executable").map(PathBuf::from),
        process_name: get("process_name"),
        probe,
        watch: ocf::parse_bool(&p["watch"]).expect("checked"),
        start_tries: p["start_tries"].parse().expect("checked"),
        start_stall: humantime::parse_duration(&p["start_stall"]).expect("checked"),
    };
    if s.unit.is_none() && s.start.is_none() {
        return Err(OcfError::configured(
            "nothing runs the daemon: give unit or start",
        ));
    }
    // A unit's cgroup is always something to monitor.
    if s.unit.is_none()
        && s.pid_file.is_none()
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

/// Where the agent reads and writes the system. Parameters, so tests run
/// against temporary trees.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/proc`.
    pub proc: PathBuf,
    /// Where the cgroup hierarchies are mounted: `/sys/fs/cgroup`.
    pub cgroup: PathBuf,
    /// The file system root: `/run/systemd/system` (is systemd running?)
    /// and `/etc/systemd/system` (the unit drop-ins) are found under it.
    pub root: PathBuf,
}

impl Roots {
    pub fn system(proc_root: &Path) -> Roots {
        Roots {
            proc: proc_root.to_path_buf(),
            cgroup: PathBuf::from("/sys/fs/cgroup"),
            root: PathBuf::from("/"),
        }
    }
}

/// How this node runs the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control<'a> {
    /// Through its systemd unit.
    Unit(&'a str),
    /// Through its own start command.
    Argv(&'a [String]),
}

/// Unit mode where the service has a unit and systemd runs on this node;
/// else argv mode. A unit-only service on a node without systemd cannot
/// run here: OCF_ERR_INSTALLED, so Pacemaker keeps it off this node.
pub fn control<'a>(s: &'a Service, roots: &Roots) -> Result<Control<'a>, OcfError> {
    match (&s.unit, &s.start) {
        (Some(u), _) if unit::systemd_running(&roots.root) => Ok(Control::Unit(u)),
        (_, Some(argv)) => Ok(Control::Argv(argv)),
        (Some(u), None) => Err(OcfError::new(
            OcfStatus::ErrInstalled,
            format!(
                "{}: {u} needs systemd, which does not run on this node (no /run/systemd/system); give start (and stop) for nodes without it",
                s.name
            ),
        )),
        (None, None) => unreachable!("from_params refuses a service with neither"),
    }
}

/// Is the daemon's process there, and is it really the daemon?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Running(u32),
    NotRunning(String),
    /// Processes of the daemon's unit are left, but not the daemon itself
    /// (its main process died): it must be stopped before it can start.
    Leftovers(String),
    /// Only a probe can tell (no pid file, binary or name given).
    Unknown,
}

/// Whether process `p` is the daemon: its binary, or for the eYou suite
/// its process name. Without either, any process is.
pub fn identity_ok(s: &Service, p: &procs::ProcInfo) -> Result<(), String> {
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
        // Something of it runs: "failed", so Pacemaker stops it (which
        // ends the leftovers) before it starts it anywhere.
        Liveness::Leftovers(why) => {
            return Err(OcfError::generic(format!("{}: {why}", s.name)));
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
        && !std::fs::File::open(cib)
            .and_then(|f| crate::watch::mentions(f, &s.name))
            .is_ok_and(|named| named && read_is_off(cib, &s.name))
}

/// The switch named in the file: only then is the whole CIB read and
/// parsed (rare: `mailha watch off` was used on this service).
fn read_is_off(cib: &Path, service: &str) -> bool {
    std::fs::read_to_string(cib).is_ok_and(|x| crate::watch::is_off(&x, service))
}

pub fn monitor(s: &Service, roots: &Roots) -> Result<OcfStatus, OcfError> {
    observe(s, roots)?.1
}

/// The monitor, with the liveness it judged.
#[allow(clippy::type_complexity)]
pub fn observe(
    s: &Service,
    roots: &Roots,
) -> Result<(Liveness, Result<OcfStatus, OcfError>), OcfError> {
    let mut s = s.clone();
    s.watch = effective_watch(&s, &cib_file());
    let s = &s;
    let live = match control(s, roots)? {
        Control::Unit(u) => unit::liveness(s, u, roots),
        Control::Argv(_) => argv::liveness(s, &roots.proc),
    };
    let probe = match (&live, &s.probe) {
        (Liveness::NotRunning(_) | Liveness::Leftovers(_), _) => None,
        (Liveness::Running(_), _) if !s.watch => None,
        (_, Some(pr)) => Some(run_probe(pr)),
        (_, None) => None,
    };
    let verdict = judge(s, &live, probe);
    Ok((live, verdict))
}

/// A start's watch over the daemon it waits for (`stall.rs`): the clock
/// and /proc around the pure `Stall`.
pub struct StartWatch {
    stall: stall::Stall,
    began: std::time::Instant,
    sampled: Option<std::time::Instant>,
}

/// How often a start reads the daemon's work from /proc while its probe
/// fails (a scan of its processes; the probe itself is tried every poll).
const WORK_EVERY: Duration = Duration::from_millis(250);

impl StartWatch {
    pub fn new(s: &Service) -> StartWatch {
        StartWatch {
            stall: stall::Stall::new(s.start_stall),
            began: std::time::Instant::now(),
            sampled: None,
        }
    }

    /// One look at a daemon that did not pass its monitor (`failure`,
    /// what the monitor said). When its process is up (so the probe is
    /// what failed), `pids` names its processes. The error to give up with,
    /// when it made no progress for `start_stall`.
    pub fn look(
        &mut self,
        s: &Service,
        live: &Liveness,
        failure: &str,
        proc_root: &Path,
        pids: impl FnOnce(u32) -> Vec<u32>,
    ) -> Option<OcfError> {
        let now = std::time::Instant::now();
        let work = match live {
            Liveness::Running(pid) => {
                if self
                    .sampled
                    .is_some_and(|t| now.duration_since(t) < WORK_EVERY)
                {
                    return None;
                }
                self.sampled = Some(now);
                Some(procs::work_of(proc_root, &pids(*pid)))
            }
            _ => {
                self.sampled = None;
                None
            }
        };
        let stalled = self.stall.look(now.duration_since(self.began), work)?;
        // Pacemaker keeps the exit reason's first 128 characters: the
        // numbers go to the log.
        let failure = failure
            .strip_prefix(&format!("{}: ", s.name))
            .unwrap_or(failure);
        eprintln!("{}", stalled.detail(&s.name, failure, s.start_stall));
        Some(OcfError::generic(stalled.reason(&s.name, failure)))
    }
}

/// How often a start looks whether the daemon answers yet. Every step of
/// the chain waits for its start to return, so the poll's latency adds up
/// along it (four levels in the mail stack); a monitor costs no process
/// and well under 1 ms.
const START_POLL: Duration = Duration::from_millis(50);

pub fn start(s: &Service, roots: &Roots, timeout: Duration) -> Result<OcfStatus, OcfError> {
    let how = control(s, roots)?;
    // Answer before Pacemaker's own timeout kills us: a timed-out start is
    // recorded with no reason at all.
    let deadline = std::time::Instant::now() + timeout.mul_f64(0.9);
    if monitor(s, roots).is_ok() {
        return Ok(OcfStatus::Success);
    }
    match how {
        Control::Unit(u) => unit::start(s, u, roots, deadline),
        Control::Argv(argv) => argv::start(s, argv, roots, deadline),
    }
}

pub fn stop(s: &Service, roots: &Roots, timeout: Duration) -> Result<OcfStatus, OcfError> {
    match control(s, roots) {
        Ok(Control::Unit(u)) => unit::stop(s, u, roots, timeout),
        Ok(Control::Argv(_)) => argv::stop(s, &roots.proc, timeout),
        // A unit that cannot run on this node is not running on it: a
        // failed stop would get this node fenced for nothing.
        Err(e) => {
            eprintln!("{}", e.reason);
            Ok(OcfStatus::Success)
        }
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
    let roots = Roots::system(proc_root);
    // Unit mode: systemd reports the daemon's end (`ended`); the agent
    // arms and disarms that report.
    let unit = match control(&s, &roots) {
        Ok(Control::Unit(u)) => Some(u),
        _ => None,
    };
    let arm = || {
        let Some(u) = unit else { return };
        let armed = ended::Armed::new(
            env("OCF_RESOURCE_INSTANCE").as_deref().unwrap_or(""),
            env("OCF_RESKEY_CRM_meta_on_node").as_deref().unwrap_or(""),
            &s.name,
        );
        // Not armed, the monitor still finds a crash at its next run.
        if let Err(e) = armed.and_then(|a| ended::arm(&roots.root, u, &a)) {
            eprintln!("{}: {u}: its end will not be reported at once: {e}", s.name);
        }
    };
    match action {
        "validate-all" => control(&s, &roots).map(|_| OcfStatus::Success),
        "start" => {
            if let Some(u) = unit {
                ended::take(&roots.root, u);
            }
            let r = start(&s, &roots, timeout);
            if r.is_ok() {
                arm();
            }
            r
        }
        "stop" => {
            if let Some(u) = &s.unit {
                ended::take(&roots.root, u);
            }
            stop(&s, &roots, timeout)
        }
        _ => {
            let r = monitor(&s, &roots);
            // Two stats when armed and nothing reported (the usual case).
            if let Some(u) = unit
                && r.is_ok()
                && !ocf::is_probe(env)
            {
                if !ended::is_armed(&roots.root, u) {
                    arm();
                }
                if ended::has_reports(&roots.root, u) {
                    ended::settle_failcount(&roots.root, u);
                }
            }
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn params(pairs: &[(&str, &str)]) -> Result<Service, OcfError> {
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
            ("unit", "mariadb.service;reboot"),
            ("unit", "--help.service"),
            ("unit", "../../x.service"),
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

    pub(crate) fn svc() -> Service {
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

    #[test]
    fn a_service_is_run_by_a_unit_or_a_start_command() {
        let e = params(&[
            ("name", "mysql"),
            ("probe", "mysql"),
            ("probe_port", "3306"),
        ])
        .unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert!(e.reason.contains("give unit or start"), "{}", e.reason);
        // A unit's cgroup is enough to monitor.
        let s = params(&[("name", "mysql"), ("unit", "mariadb.service")]).unwrap();
        assert_eq!(s.unit.as_deref(), Some("mariadb.service"));
        assert_eq!(s.start, None);
    }

    /// A root where systemd runs, or not.
    fn node(systemd: bool) -> (tempfile::TempDir, Roots) {
        let d = tempfile::tempdir().unwrap();
        if systemd {
            std::fs::create_dir_all(d.path().join("run/systemd/system")).unwrap();
        }
        let roots = Roots {
            proc: PathBuf::from("/proc"),
            cgroup: d.path().join("sys/fs/cgroup"),
            root: d.path().to_path_buf(),
        };
        (d, roots)
    }

    #[test]
    fn the_unit_is_used_where_systemd_runs_and_the_argv_elsewhere() {
        let both = params(&with(&[
            ("unit", "postfix@-.service"),
            ("pid_file", "/run/p.pid"),
        ]))
        .unwrap();
        let (_d, systemd) = node(true);
        let (_e, sysv) = node(false);
        assert_eq!(
            control(&both, &systemd),
            Ok(Control::Unit("postfix@-.service"))
        );
        assert_eq!(
            control(&both, &sysv),
            Ok(Control::Argv(
                &["/usr/sbin/postfix".to_string(), "start".to_string()][..]
            ))
        );
        let unit_only = params(&[("name", "mysql"), ("unit", "mariadb.service")]).unwrap();
        assert_eq!(
            control(&unit_only, &systemd),
            Ok(Control::Unit("mariadb.service"))
        );
        let e = control(&unit_only, &sysv).unwrap_err();
        assert_eq!(
            e.status,
            OcfStatus::ErrInstalled,
            "Pacemaker keeps it off a node without systemd"
        );
        assert!(e.reason.contains("needs systemd"), "{}", e.reason);
        assert_eq!(
            stop(&unit_only, &sysv, Duration::from_secs(1)),
            Ok(OcfStatus::Success),
            "what cannot run here is stopped here"
        );
    }

    #[test]
    fn unknown_actions_are_unimplemented() {
        let e = main("promote", &|_| None, Path::new("/proc")).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrUnimplemented);
    }
}
