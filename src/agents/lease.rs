//! `ocf:mailha:lease`: the head of the resource chain (lease -> mounts ->
//! VIP -> services). It holds nothing itself: it asks this node's lease
//! keeper (`mailha lease keeper`, started at boot like sbd) to take or
//! give back the data lease and reports what the keeper says. Only the
//! keeper writes the lease; a start returns only once the keeper has won
//! the lease on disk, a stop only once "holding" has been cleared on disk.

use crate::lease::client::{self, Status, check_socket};
use crate::ocf::{self, Action, AgentSpec, OcfError, OcfStatus, Param, ParamType};
use std::path::Path;
use std::time::{Duration, Instant};

fn check_device(v: &str) -> Result<(), String> {
    let mut errs = crate::config::validate::Ctx::default();
    crate::config::validate::block_dev(&mut errs, crate::config::FieldPath::root(), v)
        .map(|_| ())
        .ok_or_else(|| {
            errs.problems
                .first()
                .map(|p| p.message.clone())
                .unwrap_or_default()
        })
}

fn check_timeout(v: &str) -> Result<(), String> {
    match humantime::parse_duration(v) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(60) => Ok(()),
        _ => Err(format!("{v:?} is not a duration between 1ms and 1min")),
    }
}

use ParamType::String as Str;

pub static PARAMS: &[Param] = &[
    Param::new(
        "device",
        Str,
        false,
        None,
        "lease device",
        "The lease device as mailha.toml names it ([storage.lease] device). Checked against the keeper's when given as a path.",
        check_device,
    ),
    Param::new(
        "nfs",
        Str,
        false,
        None,
        "lease NFS export",
        "[storage.lease] nfs, for the record (the keeper reads mailha.toml).",
        ocf::no_check,
    ),
    Param::new(
        "file",
        Str,
        false,
        None,
        "lease file",
        "[storage.lease] file, for the record.",
        ocf::no_check,
    ),
    Param::new(
        "options",
        Str,
        false,
        None,
        "NFS options",
        "[storage.lease] options, for the record.",
        ocf::no_check,
    ),
    Param::new(
        "cluster",
        Str,
        false,
        None,
        "cluster name",
        "Must be the cluster the keeper serves: a keeper of another cluster is refused.",
        ocf::no_check,
    ),
    Param::new(
        "io_timeout",
        Str,
        false,
        Some("1s"),
        "lease I/O deadline",
        "[storage.lease] io_timeout, for the record (the keeper's timing comes from mailha.toml).",
        check_timeout,
    ),
    Param::new(
        "socket",
        Str,
        false,
        Some(client::DEFAULT_SOCKET),
        "keeper socket",
        "Abstract Unix socket name of this node's lease keeper.",
        check_socket,
    ),
];

pub static ACTIONS: &[Action] = &[
    // A start may wait for a dead peer's host_dead (15 s by default),
    // plus a renewal, the claim and the collision window.
    Action::once("start", 60),
    Action::once("stop", 30),
    Action::monitor(10, 5, 0),
    Action::once("validate-all", 5),
    Action::once("meta-data", 5),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "lease",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "The disk lease: nothing mounts the shared data without it",
    longdesc: "Takes and gives back the data lease through this node's lease keeper (mailha lease keeper), which renews it on the shared lease device, pets the watchdog and fences the node when it loses the lease. Put it first: lease -> mounts -> VIP -> services.",
    params: PARAMS,
    actions: ACTIONS,
};

/// How long one request to the keeper may take (it answers within one
/// loop turn, ~100 ms).
const ASK: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);
/// Kept from the action's timeout so the agent answers before Pacemaker
/// gives up on it.
const MARGIN: Duration = Duration::from_secs(2);

fn keeper_down(e: String) -> OcfError {
    OcfError::generic(format!("{e} (start it: mailha lease keeper)"))
}

/// The keeper serves the lease this resource names.
fn check_keeper(p: &ocf::Params, st: &Status) -> Result<(), OcfError> {
    if let Some(c) = p.get("cluster")
        && *c != st.cluster
    {
        return Err(OcfError::configured(format!(
            "the keeper serves cluster {:?}, this resource names {c:?}",
            st.cluster
        )));
    }
    if let Some(d) = p.get("device")
        && d.starts_with('/')
        && *d != st.device
    {
        return Err(OcfError::configured(format!(
            "the keeper runs on {}, this resource names {d}",
            st.device
        )));
    }
    Ok(())
}

fn wait_until(
    socket: &str,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Status) -> Result<bool, OcfError>,
) -> Result<OcfStatus, OcfError> {
    loop {
        let st = client::status(socket, ASK).map_err(keeper_down)?;
        if done(&st)? {
            return Ok(OcfStatus::Success);
        }
        if Instant::now() >= deadline {
            return Err(OcfError::generic(format!(
                "{what}: not done in time (role {}, peer holding {}, peer dead {})",
                st.role, st.peer_holding, st.peer_dead
            )));
        }
        std::thread::sleep(POLL);
    }
}

pub fn main(
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
    _proc_root: &Path,
) -> Result<OcfStatus, OcfError> {
    let (params, timeout) = match ocf::prepare(&SPEC, action, env) {
        Ok(p) => p,
        Err(done) => return done,
    };
    let socket = params.get("socket").expect("has a default").clone();
    let deadline = Instant::now() + timeout.saturating_sub(MARGIN).max(POLL);
    match action {
        "validate-all" => Ok(OcfStatus::Success),
        "start" => {
            let st = client::status(&socket, ASK).map_err(keeper_down)?;
            check_keeper(&params, &st)?;
            client::request(&socket, "acquire", ASK).map_err(OcfError::generic)?;
            let r = wait_until(&socket, deadline, "acquiring the lease", |st| {
                if matches!(st.role.as_str(), "self-fencing" | "fenced") {
                    return Err(OcfError::generic(format!(
                        "this node fenced itself ({}): it cannot hold the lease until restarted",
                        st.self_fenced.as_deref().unwrap_or("?")
                    )));
                }
                Ok(st.holds)
            });
            if r.is_err() {
                // A start that failed must not leave the request standing:
                // the keeper would take the lease whenever the peer dies,
                // for a node Pacemaker has given up on (the loser of
                // simul-start, or a node that stays cut off), and keep the
                // peer from taking it back after its reboot.
                match client::request(&socket, "release", ASK) {
                    Ok(_) => eprintln!("lease: start failed; the acquire request was withdrawn"),
                    Err(e) => eprintln!("lease: start failed; withdrawing the request: {e}"),
                }
            }
            r
        }
        "stop" => {
            match client::request(&socket, "release", ASK) {
                Ok(_) => {}
                // No keeper, nothing held by it: a holder's keeper that
                // died leaves its watchdog unpetted, so the node is reset
                // before the peer may take the lease.
                Err(e) if e.contains("not running") => {
                    eprintln!("lease: {e}; nothing is held here");
                    return Ok(OcfStatus::Success);
                }
                Err(e) => return Err(OcfError::generic(e)),
            }
            wait_until(&socket, deadline, "releasing the lease", |st| {
                Ok(!st.holds && (st.released || st.role == "fenced"))
            })
        }
        _ => match client::status(&socket, ASK) {
            Ok(st) => {
                check_keeper(&params, &st)?;
                if st.holds {
                    Ok(OcfStatus::Success)
                } else {
                    Ok(OcfStatus::NotRunning)
                }
            }
            Err(e) if ocf::is_probe(env) && e.contains("not running") => Ok(OcfStatus::NotRunning),
            Err(e) => Err(keeper_down(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn hostile_parameters_are_misconfiguration() {
        for (k, v) in [
            ("OCF_RESKEY_socket", "../x"),
            ("OCF_RESKEY_socket", "a b"),
            ("OCF_RESKEY_device", "/dev/x;reboot"),
            ("OCF_RESKEY_io_timeout", "forever"),
        ] {
            let e = main("monitor", &env_of(&[(k, v)]), Path::new("/proc")).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{k}={v}");
        }
    }

    #[test]
    fn a_probe_without_a_keeper_is_not_running_a_recurring_monitor_fails() {
        let socket = format!("mailha-lease-absent-{}", std::process::id());
        let probe = env_of(&[("OCF_RESKEY_socket", &socket)]);
        assert_eq!(
            main("monitor", &probe, Path::new("/proc")),
            Ok(OcfStatus::NotRunning)
        );
        let recurring = env_of(&[
            ("OCF_RESKEY_socket", &socket),
            ("OCF_RESKEY_CRM_meta_interval", "5000"),
        ]);
        let e = main("monitor", &recurring, Path::new("/proc")).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrGeneric);
        assert!(e.reason.contains("not running"), "{}", e.reason);
    }
}
