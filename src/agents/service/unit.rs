//! Unit mode of `ocf:mailha:service`: the daemon's own systemd unit
//! (Debian's, with its sandboxing), where systemd runs.
//!
//! - monitor: the processes of the unit's cgroup, read from cgroupfs and
//!   /proc (no process created, no D-Bus call) -> identity (the
//!   executable or process name, when given) -> the protocol probe, as in
//!   argv mode. What it says (`judge_cgroup`):
//!   - no cgroup: not running (7). systemd removes a unit's cgroup when
//!     the unit goes inactive or `failed` (its processes are gone by
//!     then), so a failed unit is as stopped as an inactive one; start
//!     resets it.
//!   - a cgroup without a live process: not running (7).
//!   - a cgroup whose processes do not include the daemon (its main
//!     process died and a helper or worker is left, e.g. under
//!     `KillMode=process`, or in the instant before systemd cleans up):
//!     failed (1), so Pacemaker stops it, which ends them, before it
//!     starts it here or elsewhere. (A unit being started looks the same
//!     until its ExecStart has exec'd the daemon, e.g. Debian's memcached
//!     wrapper script for some milliseconds: mailha's start waits that
//!     out; only a probe at that very moment would see it.)
//!   - the daemon in the cgroup: running, whoever started it. A unit
//!     started outside Pacemaker (`systemctl start` by hand, or enabled
//!     at boot) is reported running: Pacemaker's probe then knows, and if
//!     it runs on the peer too, Pacemaker's multiple-active recovery stops
//!     it and starts one. A 7 would hide a second writer of the shared
//!     data.
//! - start: the unit's `Restart=` is turned off by a drop-in (a crash
//!   must reach Pacemaker, which restarts the dependent services too; a
//!   daemon systemd restarts by itself hides it: Debian's memcached.service
//!   has `Restart=always`), then `systemctl reset-failed` and `systemctl
//!   start` (which returns when systemd's start job is done), again while
//!   nothing of the unit is alive, up to `start_tries`; done when the
//!   monitor passes (the probe answers), within the op timeout; given up
//!   sooner when the daemon is up, its probe failing, and its cgroup makes
//!   no progress for `start_stall` (`super::stall`).
//! - stop: `systemctl stop` (the unit's own ExecStop and KillSignal) for
//!   at most half the op timeout, then TERM and KILL to what is left in
//!   the cgroup: systemd's own stop timeout may be far longer than ours
//!   (MariaDB's unit: 900 s, and `SendSIGKILL=no`).
//!
//! Where the cgroup is, without asking systemd: a system service lives in
//! `system.slice/UNIT`, an instance of a template `T@I.service` in
//! `system.slice/system-T.slice/T@I.service` (T escaped as systemd does,
//! `-` as `\x2d`), under the hierarchy where systemd tracks its units
//! (`tree_root`):
//! - cgroup v2 (Debian 11 and later; a node booted by systemd-nspawn with
//!   `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1`): `/sys/fs/cgroup` itself;
//! - hybrid (v1 controllers, v2 for tracking; this lab host): the v2 tree
//!   at `/sys/fs/cgroup/unified`;
//! - legacy v1: the `name=systemd` tree at `/sys/fs/cgroup/systemd`.
//!
//! A unit placed elsewhere (its own `Slice=`) is refused at start, where
//! the agent compares the cgroup systemd reports (`ControlGroup`) with
//! this one: the monitor never watches the wrong cgroup in silence.

use super::{Liveness, Roots, Service, identity_ok, procs};
use crate::exec;
use crate::ocf::{OcfError, OcfStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether systemd runs this machine: its own test (sd_booted), a
/// directory that exists only while it is PID 1.
pub fn systemd_running(root: &Path) -> bool {
    root.join("run/systemd/system").is_dir()
}

/// The unit's cgroup relative to the root of systemd's hierarchy: its
/// default slice, `system.slice`, or for a template's instance the
/// template's own slice in it, named as systemd names it
/// (`unit_name_escape`: of the characters a unit name here may hold, only
/// `-` is escaped).
pub fn cgroup_rel(unit: &str) -> String {
    match unit.split_once('@') {
        Some((template, _)) => format!(
            "system.slice/system-{}.slice/{unit}",
            template.replace('-', "\\x2d")
        ),
        None => format!("system.slice/{unit}"),
    }
}

/// Where systemd keeps its units' cgroups under `cgroup_root` (the mount
/// point of the cgroup file systems, `/sys/fs/cgroup`): the v2 tree (pure
/// v2, or a hybrid host's `unified`), else the v1 `name=systemd` tree.
pub fn tree_root(cgroup_root: &Path) -> Option<PathBuf> {
    [
        (cgroup_root.to_path_buf(), "cgroup.controllers"),
        (cgroup_root.join("unified"), "cgroup.controllers"),
        (cgroup_root.join("systemd"), "cgroup.procs"),
    ]
    .into_iter()
    .find(|(dir, marker)| dir.join(marker).exists())
    .map(|(dir, _)| dir)
}

/// The unit's cgroup directory on this machine.
pub fn cgroup_dir(unit: &str, roots: &Roots) -> Result<PathBuf, String> {
    tree_root(&roots.cgroup)
        .map(|t| t.join(cgroup_rel(unit)))
        .ok_or_else(|| {
            format!(
                "no cgroup hierarchy of systemd under {}",
                roots.cgroup.display()
            )
        })
}

/// How many cgroups under a unit's are read at most (a unit with
/// `Delegate=` may make some; mail daemons make none).
const MAX_SUBGROUPS: usize = 64;

/// The pids in the cgroup `dir` (with `deep`, and in its sub-cgroups),
/// as this PID namespace sees them; `None` when there is no such cgroup.
pub fn cgroup_pids(dir: &Path, deep: bool) -> Option<Vec<u32>> {
    let parse = |text: &str| -> Vec<u32> {
        text.lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|p| *p > 0)
            .collect()
    };
    let mut pids = parse(&std::fs::read_to_string(dir.join("cgroup.procs")).ok()?);
    if !deep {
        return Some(pids);
    }
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut stack = subdirs(dir);
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        seen += 1;
        if seen > MAX_SUBGROUPS {
            break;
        }
        if let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(parse(&text));
        }
        stack.extend(subdirs(&d));
    }
    Some(pids)
}

/// Unit-mode liveness over what was read: `pids`, the processes of the
/// unit's cgroup (`None`: it has none); `read`, a process's /proc entry.
/// Processes are read only until the daemon is found.
pub fn judge_cgroup(
    s: &Service,
    unit: &str,
    pids: Option<&[u32]>,
    read: impl Fn(u32) -> Option<procs::ProcInfo>,
) -> Liveness {
    let Some(pids) = pids else {
        return Liveness::NotRunning(format!("{unit} is not running (no cgroup)"));
    };
    let mut others = Vec::new();
    for &pid in pids {
        let Some(p) = read(pid).filter(|p| p.state != 'Z') else {
            continue;
        };
        if identity_ok(s, &p).is_ok() {
            return Liveness::Running(pid);
        }
        others.push(pid);
    }
    if others.is_empty() {
        return Liveness::NotRunning(format!("no process left in {unit}'s cgroup"));
    }
    let daemon = match (&s.executable, &s.process_name) {
        (Some(exe), _) => exe.display().to_string(),
        (None, Some(name)) => format!("a process named {name:?}"),
        (None, None) => unreachable!("without an identity every process is the daemon"),
    };
    others.truncate(8);
    Liveness::Leftovers(format!(
        "{unit}'s cgroup holds {others:?} but not {daemon}: its daemon died"
    ))
}

/// The daemon as its unit's cgroup shows it. Reads files only.
pub fn liveness(s: &Service, unit: &str, roots: &Roots) -> Liveness {
    let dir = match cgroup_dir(unit, roots) {
        Ok(d) => d,
        Err(e) => return Liveness::NotRunning(e),
    };
    let read = |pid| procs::read(&roots.proc, pid);
    // The daemon is in the unit's own cgroup (mail daemons make no
    // sub-cgroups): those are read only when it is not found there.
    let top = cgroup_pids(&dir, false);
    let live = judge_cgroup(s, unit, top.as_deref(), read);
    if matches!(live, Liveness::Running(_)) || top.is_none() {
        return live;
    }
    judge_cgroup(s, unit, cgroup_pids(&dir, true).as_deref(), read)
}

/// The processes of the unit's cgroup that a stop may signal.
fn left(unit: &str, roots: &Roots) -> Vec<u32> {
    let me = std::process::id();
    cgroup_dir(unit, roots)
        .ok()
        .and_then(|d| cgroup_pids(&d, true))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p != 1 && *p != me)
        .collect()
}

/// `systemctl ARGS`, given the time until `until`.
fn systemctl(args: &[&str], until: Instant) -> Result<exec::Output, String> {
    // Whole milliseconds: the budget shows in messages.
    let left = until.saturating_duration_since(Instant::now());
    let budget = Duration::from_millis(left.as_millis() as u64);
    if budget.is_zero() {
        return Err(format!("systemctl {}: no time left", args.join(" ")));
    }
    let mut argv = vec!["systemctl"];
    argv.extend_from_slice(args);
    exec::run(&argv, &[], None, budget).map_err(|e| e.to_string())
}

/// What a failed systemctl said, on one line.
fn said(o: &exec::Output) -> String {
    let text = o.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        format!("exit {:?}", o.code)
    } else {
        text
    }
}

/// `systemctl show` output (`KEY=VALUE` lines, in systemd's own order).
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn show(unit: &str, props: &[&str], until: Instant) -> Result<BTreeMap<String, String>, String> {
    let props = format!("--property={}", props.join(","));
    let o = systemctl(&["show", &props, "--", unit], until)?;
    if !o.success() {
        return Err(format!("systemctl show {unit}: {}", said(&o)));
    }
    Ok(parse_show(&o.stdout))
}

/// Whether the unit can be started on this node at all, from its
/// `LoadState`: a unit that is not installed or masked here is
/// OCF_ERR_INSTALLED, and Pacemaker runs it elsewhere.
pub fn loadable(name: &str, unit: &str, show: &BTreeMap<String, String>) -> Result<(), OcfError> {
    match show.get("LoadState").map(String::as_str) {
        Some(state @ ("not-found" | "masked" | "bad-setting" | "error")) => Err(OcfError::new(
            OcfStatus::ErrInstalled,
            format!("{name}: {unit} cannot be started on this node: it is {state}"),
        )),
        _ => Ok(()),
    }
}

/// After `systemctl start` succeeded, `systemctl show` of `ActiveState`
/// and `ControlGroup`: Ok(true) when the unit is active in the cgroup the
/// monitor reads (`expected`, `/` + `cgroup_rel`), Ok(false) when it is no
/// longer active (it died at once: start it again), and
/// OCF_ERR_CONFIGURED when the monitor could never see it.
pub fn after_start(
    unit: &str,
    show: &BTreeMap<String, String>,
    expected: &str,
) -> Result<bool, OcfError> {
    let active = matches!(
        show.get("ActiveState").map(String::as_str),
        Some("active" | "reloading")
    );
    let cgroup = show.get("ControlGroup").map(String::as_str).unwrap_or("");
    if !active {
        return Ok(false);
    }
    if cgroup.is_empty() {
        return Err(OcfError::configured(format!(
            "{unit} is active but runs no process of its own (no cgroup): a wrapper unit, such as Debian's postfix.service (oneshot); give the unit that runs the daemon (for Postfix: postfix@-.service)"
        )));
    }
    if cgroup != expected {
        return Err(OcfError::configured(format!(
            "{unit} runs in the cgroup {cgroup}, not in {expected} where the monitor reads it: a unit with its own Slice= is not supported"
        )));
    }
    Ok(true)
}

/// The drop-in that hands a unit to Pacemaker: its file name.
pub const DROPIN_NAME: &str = "50-mailha.conf";

/// Where the drop-in of `unit` lives under `root`.
pub fn dropin_path(root: &Path, unit: &str) -> PathBuf {
    root.join("etc/systemd/system")
        .join(format!("{unit}.d"))
        .join(DROPIN_NAME)
}

/// The drop-in's text. `main_pid_file`, as the function of that name
/// chooses it: where a forking unit that names none finds its daemon's
/// pid.
pub fn dropin_text(unit: &str, main_pid_file: Option<&Path>) -> String {
    let pid = main_pid_file.map_or(String::new(), |p| {
        format!(
            "# systemd knows the daemon's death only by its pid: Debian's unit\n\
             # gives none, so its end came only when the last worker exited.\n\
             PIDFile={}\n",
            p.display()
        )
    });
    format!(
        "# Written by mailha: Pacemaker runs {unit} (ocf:mailha:service).\n\
         # systemd must not restart it by itself: a crash has to reach\n\
         # Pacemaker, which then restarts the services that depend on it too.\n\
         # When it ends of itself, mailha tells Pacemaker at once instead of\n\
         # at the next monitor (full privileges: the unit's sandbox would\n\
         # keep it from the cluster; a failure of it changes nothing).\n\
         # Remove this file once the cluster no longer runs {unit}.\n\
         [Service]\n\
         Restart=no\n\
         ExecStopPost=-+{bin} {verb} %n\n\
         {pid}",
        bin = crate::faces::BIN_PATH,
        verb = super::ended::VERB,
    )
}

/// The properties `main_pid_file` reads, for `systemctl show`.
pub const MAIN_PID_PROPS: [&str; 2] = ["Type", "PIDFile"];

/// The pid file the drop-in gives a unit: the service's `pid_file`, for a
/// forking unit without one of its own (Debian's postfix@.service:
/// `Type=forking`, `GuessMainPID=no`). Without it systemd has no main
/// process: a killed Postfix master left the unit active until its last
/// worker noticed (1 to over 4 s in the lab), so neither the unit's end
/// nor its report (`ended`) came sooner. With it the master's death ends
/// the unit at once. Any other unit type knows its main process already;
/// a pid file of the unit's own is kept. The drop-in's own value, read
/// back once it is in force, is kept too. A path systemd would read
/// differently (`%` specifiers, white space) is not given.
pub fn main_pid_file(show: &BTreeMap<String, String>, pid_file: Option<&Path>) -> Option<PathBuf> {
    let ours = pid_file?;
    let text = ours.to_str()?;
    if !ours.is_absolute() || text.contains(['%', '\\']) || text.chars().any(char::is_whitespace) {
        return None;
    }
    if show.get("Type").map(String::as_str) != Some("forking") {
        return None;
    }
    match show.get("PIDFile").map(String::as_str).unwrap_or("") {
        "" => Some(ours.to_path_buf()),
        theirs if Path::new(theirs) == ours => Some(ours.to_path_buf()),
        _ => None,
    }
}

/// Writes the drop-in of `unit` unless it is there already; true when it
/// was written (systemd reads it at its next daemon-reload). `mailha
/// setup` writes it ahead for every unit of the config; a start writes it
/// for a unit added later, or when this text changed.
pub fn ensure_dropin(
    root: &Path,
    unit: &str,
    main_pid_file: Option<&Path>,
) -> std::io::Result<bool> {
    let path = dropin_path(root, unit);
    let text = dropin_text(unit, main_pid_file);
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(false);
    }
    let dir = path.parent().expect("a drop-in has a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{DROPIN_NAME}.{}", std::process::id()));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// Starts the unit (not running yet) and waits until its monitor passes,
/// until `deadline`. The unit is started again (up to `start_tries` times) only
/// while nothing of it is alive: a daemon that is up but still warming
/// up (MariaDB recovering InnoDB) is given the whole timeout while it
/// makes progress; one that is up, fails its probe and makes none for
/// `start_stall` is given up (`super::stall`).
pub fn start(
    s: &Service,
    unit: &str,
    roots: &Roots,
    deadline: Instant,
) -> Result<OcfStatus, OcfError> {
    let mut props = vec!["LoadState"];
    props.extend(MAIN_PID_PROPS);
    let main_pid = match show(unit, &props, deadline) {
        Ok(m) => {
            loadable(&s.name, unit, &m)?;
            main_pid_file(&m, s.pid_file.as_deref())
        }
        // systemctl start will say what is wrong.
        Err(e) => {
            eprintln!("{}: {e}", s.name);
            None
        }
    };
    match ensure_dropin(&roots.root, unit, main_pid.as_deref()) {
        Ok(false) => {}
        Ok(true) => match systemctl(&["daemon-reload"], deadline) {
            Ok(o) if o.success() => {}
            Ok(o) => eprintln!("{}: systemctl daemon-reload: {}", s.name, said(&o)),
            Err(e) => eprintln!("{}: {e}", s.name),
        },
        // The daemon can still run; only a crash would go unseen.
        Err(e) => eprintln!(
            "{}: {}: {e}",
            s.name,
            dropin_path(&roots.root, unit).display()
        ),
    }
    let expected = format!("/{}", cgroup_rel(unit));
    let mut last = String::from("not attempted");
    let mut attempts = 0;
    let mut watch = super::StartWatch::new(s);
    while Instant::now() < deadline {
        let (live, verdict) = super::observe(s, roots)?;
        match verdict {
            Ok(_) => {
                eprintln!("{}: {unit} started (attempt {attempts})", s.name);
                return Ok(OcfStatus::Success);
            }
            Err(e) => last = e.reason,
        }
        // Up, its probe failing: given up when it makes no progress.
        if let Some(e) = watch.look(s, &live, &last, &roots.proc, |_| left(unit, roots)) {
            return Err(e);
        }
        if left(unit, roots).is_empty() {
            if attempts >= s.start_tries {
                break;
            }
            attempts += 1;
            // A failed unit (or one that hit its start rate limit) starts
            // again only once reset.
            let _ = systemctl(&["reset-failed", "--", unit], deadline);
            match systemctl(&["start", "--", unit], deadline) {
                Ok(o) if o.success() => {
                    match show(unit, &["ActiveState", "ControlGroup"], deadline) {
                        Ok(m) if !after_start(unit, &m, &expected)? => {
                            last = format!("{unit} stopped right after it started");
                            eprintln!("{}: start attempt {attempts}: {last}", s.name);
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("{}: {e}", s.name),
                    }
                }
                Ok(o) => {
                    last = format!("systemctl start {unit}: {}", said(&o));
                    eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
                }
                Err(e) => {
                    last = e;
                    eprintln!("{}: start attempt {attempts} failed: {last}", s.name);
                }
            }
            continue;
        }
        std::thread::sleep(super::START_POLL);
    }
    Err(OcfError::generic(format!(
        "{}: not started ({attempts} attempts): {last}",
        s.name
    )))
}

/// Waits until nothing is left in the unit's cgroup or `until`; KILL is
/// sent again at every look (a process may fork while it is killed).
fn wait_gone(unit: &str, roots: &Roots, until: Instant, kill: bool) -> Vec<u32> {
    loop {
        let pids = left(unit, roots);
        if pids.is_empty() || Instant::now() >= until {
            return pids;
        }
        if kill {
            procs::signal_all(&pids, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the unit: systemd's own way first, then TERM and KILL to what is
/// left in its cgroup; success only when the cgroup is empty, always
/// within the op timeout.
pub fn stop(
    s: &Service,
    unit: &str,
    roots: &Roots,
    timeout: Duration,
) -> Result<OcfStatus, OcfError> {
    use nix::sys::signal::Signal;
    let t0 = Instant::now();
    // Keep a margin so the agent always answers before Pacemaker's own
    // timeout fires.
    let phase = |share: u32| t0 + timeout.mul_f64(share as f64 / 10.0);
    // Also when nothing runs: a start job systemd has queued is cancelled.
    match systemctl(&["stop", "--", unit], phase(5)) {
        Ok(o) if o.success() => {}
        // A unit that is not installed here has nothing running either.
        Ok(o) => eprintln!("{}: systemctl stop {unit}: {}", s.name, said(&o)),
        Err(e) => eprintln!("{}: {e}", s.name),
    }
    let pids = left(unit, roots);
    if pids.is_empty() {
        return Ok(OcfStatus::Success);
    }
    eprintln!("{}: {unit}: sending TERM to {pids:?}", s.name);
    procs::signal_all(&pids, Signal::SIGTERM);
    if wait_gone(unit, roots, phase(8), false).is_empty() {
        return Ok(OcfStatus::Success);
    }
    let pids = left(unit, roots);
    eprintln!("{}: {unit}: sending KILL to {pids:?}", s.name);
    // cgroup v2 kills the whole cgroup at once, forks included.
    if let Ok(dir) = cgroup_dir(unit, roots) {
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    }
    procs::signal_all(&pids, Signal::SIGKILL);
    let pids = wait_gone(unit, roots, phase(9), true);
    if pids.is_empty() {
        return Ok(OcfStatus::Success);
    }
    Err(OcfError::generic(format!(
        "{}: {unit}: processes {pids:?} survived KILL (stuck in the kernel?)",
        s.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::service::tests::params;

    use crate::config::validate::check_unit_name;

    #[test]
    fn service_unit_names_are_checked_against_systemds_grammar() {
        for ok in [
            "mariadb.service",
            "postfix@-.service",
            "php8.2-fpm.service",
            "getty@tty1.service",
            "a:b_c.service",
        ] {
            assert_eq!(check_unit_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "mariadb",
            "mariadb.socket",
            "postfix@.service",
            "@x.service",
            ".service",
            "-h.service",
            "--help.service",
            "x y.service",
            "x;reboot.service",
            "x$(id).service",
            "a/b.service",
            "../x.service",
            "x\\x2d.service",
            "a@b@c.service",
            "",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_unit_name(&format!("{}.service", "a".repeat(247))).is_ok());
        assert!(check_unit_name(&format!("{}.service", "a".repeat(248))).is_err());
    }

    #[test]
    fn a_unit_lives_in_its_default_slice_and_an_instance_in_its_templates() {
        assert_eq!(
            cgroup_rel("mariadb.service"),
            "system.slice/mariadb.service"
        );
        assert_eq!(
            cgroup_rel("postfix@-.service"),
            "system.slice/system-postfix.slice/postfix@-.service"
        );
        // Measured in a booted container: serial-getty@ttyS0.service runs
        // in system.slice/system-serial\x2dgetty.slice.
        assert_eq!(
            cgroup_rel("serial-getty@ttyS0.service"),
            "system.slice/system-serial\\x2dgetty.slice/serial-getty@ttyS0.service"
        );
    }

    /// A cgroup mount point laid out as one of the three hierarchies.
    fn cgroup_fs(layout: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in layout {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        d
    }

    #[test]
    fn systemds_tree_is_found_on_v2_hybrid_and_legacy_hosts() {
        let v2 = cgroup_fs(&["cgroup.controllers", "cgroup.procs"]);
        assert_eq!(tree_root(v2.path()), Some(v2.path().to_path_buf()));
        // This host: v1 controllers, name=systemd, and v2 at unified.
        let hybrid = cgroup_fs(&[
            "cpu/cgroup.procs",
            "systemd/cgroup.procs",
            "unified/cgroup.controllers",
        ]);
        assert_eq!(
            tree_root(hybrid.path()),
            Some(hybrid.path().join("unified"))
        );
        let legacy = cgroup_fs(&["cpu/cgroup.procs", "systemd/cgroup.procs"]);
        assert_eq!(
            tree_root(legacy.path()),
            Some(legacy.path().join("systemd"))
        );
        let none = cgroup_fs(&[]);
        assert_eq!(tree_root(none.path()), None);
    }

    #[test]
    fn a_units_processes_include_its_sub_cgroups() {
        let d = tempfile::tempdir().unwrap();
        let unit = d.path().join("system.slice/x.service");
        std::fs::create_dir_all(unit.join("payload")).unwrap();
        std::fs::write(unit.join("cgroup.procs"), "12\n13\n").unwrap();
        std::fs::write(unit.join("payload/cgroup.procs"), "40\n0\n").unwrap();
        let mut pids = cgroup_pids(&unit, true).unwrap();
        pids.sort();
        assert_eq!(
            pids,
            vec![12, 13, 40],
            "0 (not in our PID namespace) is no pid"
        );
        assert_eq!(cgroup_pids(&unit, false).unwrap(), vec![12, 13]);
        assert_eq!(
            cgroup_pids(&d.path().join("system.slice/y.service"), true),
            None
        );
    }

    fn proc_info(pid: u32, exe: &str, state: char) -> procs::ProcInfo {
        procs::ProcInfo {
            pid,
            ppid: 1,
            session: pid,
            state,
            comm: exe.rsplit('/').next().unwrap().chars().take(15).collect(),
            exe: Some(exe.into()),
        }
    }

    fn memcached() -> Service {
        params(&[
            ("name", "memcached"),
            ("unit", "memcached.service"),
            ("executable", "/usr/bin/memcached"),
        ])
        .unwrap()
    }

    /// `judge_cgroup` over a cgroup holding `procs`.
    fn judged(s: &Service, procs: Option<Vec<procs::ProcInfo>>) -> Liveness {
        let pids: Option<Vec<u32>> = procs.as_ref().map(|v| v.iter().map(|p| p.pid).collect());
        let table = procs.unwrap_or_default();
        judge_cgroup(s, "memcached.service", pids.as_deref(), |pid| {
            table.iter().find(|p| p.pid == pid).cloned()
        })
    }

    #[test]
    fn an_inactive_or_failed_unit_has_no_cgroup_and_is_not_running() {
        match judged(&memcached(), None) {
            Liveness::NotRunning(why) => assert!(why.contains("no cgroup"), "{why}"),
            l => panic!("{l:?}"),
        }
        assert!(matches!(
            judged(&memcached(), Some(vec![])),
            Liveness::NotRunning(_)
        ));
        // A zombie is no daemon; neither is a pid gone since cgroup.procs
        // was read.
        assert!(matches!(
            judged(
                &memcached(),
                Some(vec![proc_info(7, "/usr/bin/memcached", 'Z')])
            ),
            Liveness::NotRunning(_)
        ));
    }

    #[test]
    fn the_daemon_in_its_units_cgroup_is_running_whoever_started_it() {
        let l = judged(
            &memcached(),
            Some(vec![
                proc_info(5, "/usr/bin/perl", 'S'),
                proc_info(9, "/usr/bin/memcached", 'S'),
            ]),
        );
        assert_eq!(l, Liveness::Running(9));
        // Without an identity, any live process of the unit is it.
        let mut anyone = memcached();
        anyone.executable = None;
        assert_eq!(
            judged(&anyone, Some(vec![proc_info(5, "/usr/bin/perl", 'S')])),
            Liveness::Running(5)
        );
    }

    #[test]
    fn a_unit_whose_main_process_died_with_workers_left_is_failed() {
        let mut postfix = memcached();
        postfix.name = "postfix".into();
        postfix.executable = Some("/usr/lib/postfix/sbin/master".into());
        let l = judged(
            &postfix,
            Some(vec![
                proc_info(30, "/usr/lib/postfix/sbin/pickup", 'S'),
                proc_info(31, "/usr/lib/postfix/sbin/qmgr", 'S'),
            ]),
        );
        let Liveness::Leftovers(why) = &l else {
            panic!("{l:?}")
        };
        assert!(why.contains("[30, 31]") && why.contains("master"), "{why}");
        let e = super::super::judge(&postfix, &l, None).unwrap_err();
        assert_eq!(
            e.status,
            OcfStatus::ErrGeneric,
            "Pacemaker must stop it (ending the workers) before a start"
        );
    }

    #[test]
    fn systemctl_show_is_read_as_properties() {
        let m = parse_show("ControlGroup=/system.slice/memcached.service\nActiveState=active\n");
        assert_eq!(m["ActiveState"], "active");
        assert_eq!(m["ControlGroup"], "/system.slice/memcached.service");
    }

    #[test]
    fn after_a_start_the_unit_must_be_where_the_monitor_looks() {
        let show = |active: &str, cg: &str| {
            parse_show(&format!("ActiveState={active}\nControlGroup={cg}\n"))
        };
        let exp = "/system.slice/memcached.service";
        assert_eq!(
            after_start("memcached.service", &show("active", exp), exp),
            Ok(true)
        );
        assert_eq!(
            after_start("memcached.service", &show("failed", ""), exp),
            Ok(false),
            "died at once: started again"
        );
        // Measured: a oneshot wrapper (Debian's postfix.service) is active
        // with ControlGroup empty.
        let e = after_start(
            "postfix.service",
            &show("active", ""),
            "/system.slice/postfix.service",
        )
        .unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert!(e.reason.contains("postfix@-.service"), "{}", e.reason);
        let e = after_start(
            "memcached.service",
            &show("active", "/mail.slice/memcached.service"),
            exp,
        )
        .unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert!(e.reason.contains("Slice="), "{}", e.reason);
    }

    #[test]
    fn a_unit_not_installed_or_masked_here_is_not_installed() {
        for state in ["not-found", "masked"] {
            let e = loadable(
                "mysql",
                "mariadb.service",
                &parse_show(&format!("LoadState={state}\n")),
            )
            .unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrInstalled);
            assert!(e.reason.contains(state));
        }
        assert_eq!(
            loadable(
                "mysql",
                "mariadb.service",
                &parse_show("LoadState=loaded\n")
            ),
            Ok(())
        );
    }

    #[test]
    fn the_dropin_is_written_once_and_turns_restart_off() {
        let root = tempfile::tempdir().unwrap();
        assert!(ensure_dropin(root.path(), "memcached.service", None).unwrap());
        let path = root
            .path()
            .join("etc/systemd/system/memcached.service.d/50-mailha.conf");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[Service]\nRestart=no\n"), "{text}");
        // Its end, when of itself, reported at once (`ended`), whatever
        // the unit's sandbox and whether or not the report succeeds.
        assert!(
            text.contains("\nExecStopPost=-+/usr/sbin/mailha unit-ended %n\n"),
            "{text}"
        );
        assert!(
            !ensure_dropin(root.path(), "memcached.service", None).unwrap(),
            "unchanged: no daemon-reload needed"
        );
        std::fs::write(&path, "[Service]\nRestart=always\n").unwrap();
        assert!(ensure_dropin(root.path(), "memcached.service", None).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_forking_unit_without_a_pid_of_its_own_is_given_the_services_pid_file() {
        let pid = Path::new("/srv/data/postfix/pid/master.pid");
        let shown = |t: &str, p: &str| parse_show(&format!("Type={t}\nPIDFile={p}\n"));
        // Debian's postfix@.service.
        assert_eq!(
            main_pid_file(&shown("forking", ""), Some(pid)).as_deref(),
            Some(pid)
        );
        // Once the drop-in is in force, systemd shows our own value: kept,
        // so a start does not rewrite the drop-in back and forth.
        assert_eq!(
            main_pid_file(
                &shown("forking", "/srv/data/postfix/pid/master.pid"),
                Some(pid)
            )
            .as_deref(),
            Some(pid)
        );
        // A unit that names its own pid file, or knows its main process
        // by its type, is left as its package made it.
        assert_eq!(
            main_pid_file(&shown("forking", "/run/postfix.pid"), Some(pid)),
            None
        );
        for t in ["notify", "simple", "exec", ""] {
            assert_eq!(main_pid_file(&shown(t, ""), Some(pid)), None, "{t}");
        }
        assert_eq!(main_pid_file(&shown("forking", ""), None), None);
        // What systemd would expand or split is not handed to it.
        for p in ["/run/%i.pid", "relative.pid", "/run/a b.pid"] {
            assert_eq!(
                main_pid_file(&shown("forking", ""), Some(Path::new(p))),
                None,
                "{p}"
            );
        }
    }

    #[test]
    fn the_dropin_of_a_forking_unit_names_its_pid_file() {
        let root = tempfile::tempdir().unwrap();
        let pid = Path::new("/srv/data/postfix/pid/master.pid");
        assert!(ensure_dropin(root.path(), "postfix@-.service", Some(pid)).unwrap());
        let text = std::fs::read_to_string(dropin_path(root.path(), "postfix@-.service")).unwrap();
        assert!(
            text.ends_with("\nPIDFile=/srv/data/postfix/pid/master.pid\n"),
            "{text}"
        );
        assert!(!ensure_dropin(root.path(), "postfix@-.service", Some(pid)).unwrap());
        // Without it, the text changes: written again, then reloaded.
        assert!(ensure_dropin(root.path(), "postfix@-.service", None).unwrap());
    }

    #[test]
    fn systemd_runs_where_its_runtime_directory_is() {
        let root = tempfile::tempdir().unwrap();
        assert!(!systemd_running(root.path()));
        std::fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
        assert!(systemd_running(root.path()));
    }
}
