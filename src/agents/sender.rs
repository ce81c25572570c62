//! `ocf:mailha:sender`: the alert sender (`mailha alert run`) as a cloned
//! cluster resource, one instance on every node.
//!
//! Why a clone on every node: each node's alert agent writes to that
//! node's own spool, so each node needs its own sender; when a node dies,
//! the survivor's sender is already running and mails what the survivor
//! recorded (the node-lost and fencing events are recorded there, see
//! `alert::owner`), and Pacemaker restarts a sender that died (monitor).
//! A dead node's own spool is on its own disk: it is sent when that node
//! comes back, never by the other node (that would need the spool on
//! shared storage, which is exactly what a dead node may have taken with
//! it).
//!
//! Liveness = the pid file names a live process whose executable is this
//! binary and whose command line is `... alert run ...`: a recycled pid is
//! never taken for the sender, and stop never signals any other mailha
//! process (the CLI, the agents).

use crate::cib::xml::El;
use crate::config::model::{Alerts, Policy};
use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const RSC_ID: &str = "alert-sender";
pub const DEFAULT_PID_FILE: &str = "/run/mailha/alert-sender.pid";
pub const DEFAULT_LOG: &str = "/var/log/mailha/alert.log";

use ocf::check_plain_path as check_abs;

pub static PARAMS: &[Param] = &[
    Param::new(
        "config",
        ParamType::String,
        false,
        Some(crate::config::DEFAULT_PATH),
        "mailha.toml",
        "The config whose [alerts] section says where to send.",
        check_abs,
    ),
    Param::new(
        "spool",
        ParamType::String,
        false,
        Some(crate::alert::spool::DEFAULT_DIR),
        "spool directory",
        "The spool the alert agent writes on this node.",
        check_abs,
    ),
    Param::new(
        "pid_file",
        ParamType::String,
        false,
        Some(DEFAULT_PID_FILE),
        "pid file",
        "Where the sender writes its pid.",
        check_abs,
    ),
    Param::new(
        "log",
        ParamType::String,
        false,
        Some(DEFAULT_LOG),
        "log file",
        "The sender's log (what was sent, what failed; never a password).",
        check_abs,
    ),
];

pub static ACTIONS: &[Action] = &[
    Action::once("start", 20),
    Action::once("stop", 20),
    Action::monitor(10, 10, 0),
    Action::once("validate-all", 5),
    Action::once("meta-data", 5),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "sender",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "mailha's alert sender",
    longdesc: "Runs `mailha alert run` on this node: batches the events the alert agent spooled here into incidents and delivers them (SMTP, webhook, command) with retries. Clone it: every node sends its own spool.",
    params: PARAMS,
    actions: ACTIONS,
};

#[derive(Debug, Clone)]
pub struct Sender {
    pub exe: PathBuf,
    pub config: PathBuf,
    pub spool: PathBuf,
    pub pid_file: PathBuf,
    pub log: PathBuf,
}

impl Sender {
    pub fn from_params(p: &BTreeMap<&'static str, String>, exe: PathBuf) -> Sender {
        let get = |k: &str| PathBuf::from(p.get(k).cloned().unwrap_or_default());
        Sender {
            exe,
            config: get("config"),
            spool: get("spool"),
            pid_file: get("pid_file"),
            log: get("log"),
        }
    }

    /// The daemon's argv (no shell; every value a separate argument).
    pub fn argv(&self) -> Vec<String> {
        vec![
            self.exe.display().to_string(),
            "--config".into(),
            self.config.display().to_string(),
            "alert".into(),
            "run".into(),
            "--spool".into(),
            self.spool.display().to_string(),
            "--pid-file".into(),
            self.pid_file.display().to_string(),
            "--log".into(),
            self.log.display().to_string(),
        ]
    }

    /// The sender's pid, if the pid file names a live `mailha alert run`.
    pub fn running(&self, proc_root: &Path) -> Result<u32, String> {
        let pid = match crate::procs::read_pid_file(&self.pid_file)? {
            Some(p) => p,
            None => return Err(format!("no pid in {}", self.pid_file.display())),
        };
        let dir = proc_root.join(pid.to_string());
        let exe = std::fs::read_link(dir.join("exe")).map_err(|_| format!("pid {pid} is gone"))?;
        if !crate::procs::exe_matches(&exe, &self.exe) {
            return Err(format!("pid {pid} is {}, not the sender", exe.display()));
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let is_run = cmdline
            .split(|b| *b == 0)
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[0] == b"alert" && w[1] == b"run");
        if !is_run {
            return Err(format!("pid {pid} is mailha, but not `alert run`"));
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        if crate::procs::parse_stat(&stat).is_some_and(|st| st.state == 'Z') {
            return Err(format!("pid {pid} is a zombie"));
        }
        Ok(pid)
    }
}

pub fn monitor(s: &Sender, proc_root: &Path) -> Result<OcfStatus, OcfError> {
    s.running(proc_root)
        .map(|_| OcfStatus::Success)
        .map_err(OcfError::not_running)
}

/// Starts the daemon detached (own process group, no inherited pipes) and
/// waits until it has written its pid file, within 90% of the timeout.
pub fn start(s: &Sender, proc_root: &Path, timeout: Duration) -> Result<OcfStatus, OcfError> {
    if s.running(proc_root).is_ok() {
        return Ok(OcfStatus::Success);
    }
    let _ = std::fs::remove_file(&s.pid_file);
    let argv = s.argv();
    let mut child = crate::exec::spawn_detached(&argv).map_err(OcfError::generic)?;
    let deadline = Instant::now() + timeout.mul_f64(0.9);
    loop {
        if s.running(proc_root).is_ok() {
            return Ok(OcfStatus::Success);
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(OcfError::generic(format!(
                "mailha alert run exited with {st} (see {})",
                s.log.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(OcfError::generic("the sender did not write its pid file"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TERM, then KILL; always answers within the timeout.
pub fn stop(s: &Sender, proc_root: &Path, timeout: Duration) -> Result<OcfStatus, OcfError> {
    use nix::sys::signal::{Signal, kill};
    let t0 = Instant::now();
    let Ok(pid) = s.running(proc_root) else {
        let _ = std::fs::remove_file(&s.pid_file);
        return Ok(OcfStatus::Success);
    };
    let target = nix::unistd::Pid::from_raw(pid as i32);
    let gone = |until: Instant| {
        while Instant::now() < until {
            if s.running(proc_root).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        s.running(proc_root).is_err()
    };
    let _ = kill(target, Signal::SIGTERM);
    if !gone(t0 + timeout.mul_f64(0.5)) {
        let _ = kill(target, Signal::SIGKILL);
        if !gone(t0 + timeout.mul_f64(0.9)) {
            return Err(OcfError::generic(format!("pid {pid} survived KILL")));
        }
    }
    let _ = std::fs::remove_file(&s.pid_file);
    Ok(OcfStatus::Success)
}

/// The agent's entry point: `sender ACTION`.
pub fn main(
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
    proc_root: &Path,
) -> Result<OcfStatus, OcfError> {
    let (params, timeout) = match ocf::prepare(&SPEC, action, env) {
        Ok(p) => p,
        Err(done) => return done,
    };
    let exe = std::env::current_exe()
        .map_err(|e| OcfError::new(OcfStatus::ErrInstalled, format!("own executable: {e}")))?;
    let s = Sender::from_params(&params, exe);
    match action {
        "validate-all" => Ok(OcfStatus::Success),
        "start" => start(&s, proc_root, timeout),
        "stop" => stop(&s, proc_root, timeout),
        _ => monitor(&s, proc_root),
    }
}

/// The clone in the generated CIB: only when some channel is configured
/// (without one, events wait in the spool until a channel is added).
/// Not ordered or colocated with anything: it must run wherever a node
/// runs, mail or not.
pub fn clone_rsc(a: &Alerts, p: &Policy) -> Option<El> {
    if a.smtp.is_none() && a.webhook.is_none() && a.command.is_none() {
        return None;
    }
    let mut policy = p.clone();
    policy.start_timeout = Duration::from_secs(20);
    policy.stop_timeout = Duration::from_secs(20);
    policy.monitor_timeout = Duration::from_secs(10);
    let prim = crate::cib::primitive(
        RSC_ID,
        "ocf",
        Some("mailha"),
        "sender",
        vec![],
        vec![],
        crate::cib::operations(RSC_ID, &policy, Duration::from_secs(10)),
    );
    Some(
        El::new("clone")
            .attr("id", format!("{RSC_ID}-clone"))
            .child(prim),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(dir: &Path) -> Sender {
        Sender {
            exe: PathBuf::from("/usr/sbin/mailha"),
            config: dir.join("mailha.toml"),
            spool: dir.join("spool"),
            pid_file: dir.join("pid"),
            log: dir.join("log"),
        }
    }

    #[test]
    fn hostile_parameters_are_refused() {
        for v in ["relative/x", "/a/../etc/shadow", "/a b", "/a\n/b"] {
            assert!(check_abs(v).is_err(), "{v:?}");
        }
        check_abs("/etc/mailha/mailha.toml").unwrap();
    }

    #[test]
    fn a_pid_file_naming_another_program_is_not_the_sender() {
        let t = tempfile::tempdir().unwrap();
        let s = sender(t.path());
        assert!(s.running(Path::new("/proc")).is_err(), "no pid file");
        // Our own pid: a live process, but the test binary, not mailha.
        std::fs::write(&s.pid_file, format!("{}\n", std::process::id())).unwrap();
        let e = s.running(Path::new("/proc")).unwrap_err();
        assert!(e.contains("not the sender"), "{e}");
        assert_eq!(
            monitor(&s, Path::new("/proc")).unwrap_err().status,
            OcfStatus::NotRunning
        );
        // Stop of a sender that is not running succeeds and signals nobody.
        assert_eq!(
            stop(&s, Path::new("/proc"), Duration::from_secs(1)).unwrap(),
            OcfStatus::Success
        );
        assert!(!s.pid_file.exists());
    }

    #[test]
    fn the_daemon_argv_has_every_value_as_its_own_argument() {
        let s = sender(Path::new("/x y"));
        let a = s.argv();
        assert_eq!(a[3..5], ["alert".to_string(), "run".to_string()]);
        assert!(a.contains(&"/x y/spool".to_string()));
    }
}
