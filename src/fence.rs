//! `fence_mailha`: an RHCS-style fence agent (the interface of the
//! fence-agents project, which Pacemaker's fencer speaks) backed by the
//! disk lease. Fencing node X = this node's keeper posts "fence X" in its
//! own slot; X's keeper reads it within one renewal, fences itself (kills
//! the shared data's users, unmounts, stops the cluster stack) and acks in
//! its slot. If X cannot ack (dead, frozen, cut off from the disk), X's
//! counter standing still for `host_dead` on our clock is the answer: by
//! then X's watchdog has reset it (docs/lease.md, proof step 3).
//!
//! Input: `key=value` lines on stdin (Pacemaker's way), or the command
//! line (`-o ACTION`, `-n NODE`, `--socket NAME`). Actions: off, reboot
//! (both: fence), on, status, monitor, list, metadata, validate-all.
//! Exit codes: 0 done / on, 1 failed, 2 off (status).

use crate::lease::client::{self, Status};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const NAME: &str = "fence_mailha";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Keeper(String),
    #[error("fencing {target}: no ack and not found dead within {waited:?}")]
    TimedOut { target: String, waited: Duration },
}

/// Exit codes of the fence-agents interface.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_OFF: u8 = 2;

/// The request, from stdin or argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: String,
    pub plug: Option<String>,
    pub socket: String,
    /// How long to hold back a request against a live holder of the data
    /// lease when this node holds nothing (`holder_delay`).
    pub holder_delay: Duration,
}

/// Keys Pacemaker passes that we accept without using: the lease's own
/// parameters (the keeper reads mailha.toml) and the fencer's additions.
const IGNORED: &[&str] = &[
    "device",
    "nfs",
    "file",
    "options",
    "cluster",
    "io_timeout",
    "nodename",
    "timeout",
    "power_timeout",
    "shell_timeout",
    "login_timeout",
    "power_wait",
    "retry_on",
    "delay",
    "verbose",
    "debug",
];

/// Parses `key=value` lines (comments and blank lines skipped). Unknown
/// keys are refused, as the fence-agents library does: a typo must not
/// silently fence the wrong node.
pub fn parse_stdin(text: &str) -> Result<Request, FenceError> {
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| FenceError::Usage(format!("not key=value: {line:?}")))?;
        kv.insert(k.trim().to_string(), v.trim().to_string());
    }
    let mut req = Request {
        action: "reboot".into(),
        plug: None,
        socket: client::DEFAULT_SOCKET.into(),
        holder_delay: Duration::ZERO,
    };
    for (k, v) in kv {
        match k.as_str() {
            "action" | "option" => req.action = v,
            "plug" | "port" => req.plug = Some(v),
            "socket" => req.socket = v,
            "holder_delay" => req.holder_delay = delay(&v)?,
            k if IGNORED.contains(&k) || k.starts_with("pcmk_") => {}
            other => return Err(FenceError::Usage(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(req)
}

/// A holder delay: a duration up to a minute (Pacemaker's own fencing
/// timeout must still cover it, plus host_dead).
fn delay(v: &str) -> Result<Duration, FenceError> {
    match humantime::parse_duration(v) {
        Ok(d) if d <= Duration::from_secs(60) => Ok(d),
        _ => Err(FenceError::Usage(format!(
            "holder_delay {v:?} is not a duration of at most 1min"
        ))),
    }
}

/// Parses the command line (argv without the program name).
pub fn parse_args(args: &[String]) -> Result<Request, FenceError> {
    let mut req = Request {
        action: "reboot".into(),
        plug: None,
        socket: client::DEFAULT_SOCKET.into(),
        holder_delay: Duration::ZERO,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| FenceError::Usage(format!("{name} needs a value")))
        };
        match a.as_str() {
            "-o" | "--action" => req.action = val(a)?,
            "-n" | "--plug" | "--port" => req.plug = Some(val(a)?),
            "--socket" => req.socket = val(a)?,
            "--holder-delay" => req.holder_delay = delay(&val(a)?)?,
            "-h" | "--help" => req.action = "help".into(),
            other => return Err(FenceError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(req)
}

pub fn metadata() -> String {
    format!(
        r#"<?xml version="1.0" ?>
<resource-agent name="{NAME}" shortdesc="Fences a node through mailha's disk lease">
<longdesc>Fences node X by posting a request in this node's lease slot (through this node's lease keeper) and waiting until X's keeper acks it, having fenced itself (users of the shared data killed, mounts gone, cluster stack stopped), or until X's lease counter has stood still for host_dead, by which time X's watchdog has reset it.</longdesc>
<vendor-url>https://github.com/mailha</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="1" obsoletes="port">
		<getopt mixed="-n, --plug=[node]" />
		<content type="string" />
		<shortdesc lang="en">The node to fence</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="0" deprecated="1">
		<getopt mixed="-n, --plug=[node]" />
		<content type="string" />
		<shortdesc lang="en">The node to fence</shortdesc>
	</parameter>
	<parameter name="socket" unique="0" required="0">
		<getopt mixed="--socket=[name]" />
		<content type="string" default="{socket}" />
		<shortdesc lang="en">Abstract socket name of this node's lease keeper</shortdesc>
	</parameter>
	<parameter name="holder_delay" unique="0" required="0">
		<getopt mixed="--holder-delay=[duration]" />
		<content type="string" default="0" />
		<shortdesc lang="en">When this node holds nothing and the target holds the data lease and still renews it, wait this long before asking it to fence itself (the holder wins a fence race); skipped as soon as the target misses renewals</shortdesc>
	</parameter>
	<parameter name="device" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">The lease device (for the record: the keeper reads mailha.toml)</shortdesc>
	</parameter>
	<parameter name="nfs" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">The lease's NFS export (for the record)</shortdesc>
	</parameter>
	<parameter name="file" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">The lease file on NFS (for the record)</shortdesc>
	</parameter>
	<parameter name="options" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">NFS options of the lease (for the record)</shortdesc>
	</parameter>
	<parameter name="cluster" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">The cluster name (for the record)</shortdesc>
	</parameter>
	<parameter name="io_timeout" unique="0" required="0">
		<content type="string" />
		<shortdesc lang="en">The lease I/O deadline (for the record)</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0" />
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
"#,
        socket = client::DEFAULT_SOCKET
    )
}

const ASK: Duration = Duration::from_secs(2);

fn status(socket: &str) -> Result<Status, FenceError> {
    client::status(socket, ASK).map_err(FenceError::Keeper)
}

/// The peer is on: its slot changed within host_dead and it has not
/// fenced itself.
fn peer_on(st: &Status) -> bool {
    !st.peer_dead && !st.peer_fenced && st.peer_unchanged_ms.is_some_and(|ms| ms < st.host_dead_ms)
}

/// Carries out a request; prints what the action prints; the exit code.
pub fn run(req: &Request) -> Result<u8, FenceError> {
    match req.action.as_str() {
        "metadata" => {
            print!("{}", metadata());
            Ok(EXIT_OK)
        }
        "help" => {
            println!(
                "usage: {NAME} -o off|reboot|on|status|monitor|list|metadata -n NODE [--socket NAME]\n       or key=value lines on stdin"
            );
            Ok(EXIT_OK)
        }
        "monitor" | "validate-all" => status(&req.socket).map(|_| EXIT_OK),
        "list" | "list-status" => {
            let st = status(&req.socket)?;
            if req.action == "list" {
                println!("{},", st.peer);
            } else {
                println!("{},,{}", st.peer, if peer_on(&st) { "on" } else { "off" });
            }
            Ok(EXIT_OK)
        }
        "status" | "on" => {
            let st = status(&req.socket)?;
            let plug = plug(req)?;
            let on = plug == st.node || (plug == st.peer && peer_on(&st));
            if plug != st.node && plug != st.peer {
                return Err(FenceError::Usage(format!("unknown node {plug:?}")));
            }
            Ok(if on {
                EXIT_OK
            } else if req.action == "status" {
                EXIT_OFF
            } else {
                // "on": we cannot power a node on; it comes back when it
                // is restarted.
                eprintln!("{NAME}: {plug} is off; fence_mailha cannot power it on");
                EXIT_FAIL
            })
        }
        "off" | "reboot" => fence(&req.socket, plug(req)?, req.holder_delay).map(|_| EXIT_OK),
        other => Err(FenceError::Usage(format!("unknown action {other:?}"))),
    }
}

fn plug(req: &Request) -> Result<&str, FenceError> {
    req.plug
        .as_deref()
        .ok_or_else(|| FenceError::Usage("no node given (plug=NODE or -n NODE)".into()))
}

/// Whether to post the fence request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    Go,
    Wait,
    Abort(String),
}

/// The fence race, decided by the lease instead of Pacemaker's
/// priority-fencing-delay. When the heartbeat is cut both nodes ask to
/// fence the other; the node that holds the data (runs the mail) must
/// win, so a node that holds nothing holds its request back for `delay`
/// while the target still renews: the holder's request arrives first,
/// and this node fences itself. A target that has missed renewals
/// (3 x renew unchanged: dead, frozen, or cut off from the disk) gains
/// nothing from the delay, and a node death no longer waits for it.
pub fn hold(st: &Status, waited: Duration, delay: Duration) -> Hold {
    if matches!(st.role.as_str(), "self-fencing" | "fenced") {
        return Hold::Abort("this node fenced itself: it fences nobody".into());
    }
    if st.holds || !st.peer_holding || waited >= delay {
        return Hold::Go;
    }
    let stale_after = st.renew_ms.max(1) * 3;
    match st.peer_unchanged_ms {
        Some(ms) if ms < stale_after => Hold::Wait,
        _ => Hold::Go,
    }
}

/// Posts the request (after the holder delay, see `hold`) and waits for
/// its outcome.
pub fn fence(socket: &str, target: &str, delay: Duration) -> Result<&'static str, FenceError> {
    let t_hold = Instant::now();
    let mut held = false;
    loop {
        match hold(&status(socket)?, t_hold.elapsed(), delay) {
            Hold::Go => break,
            Hold::Abort(why) => return Err(FenceError::Keeper(why)),
            Hold::Wait => {
                held = true;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    if held {
        eprintln!(
            "{NAME}: held the request for {target} back {:?} (it holds the data lease)",
            t_hold.elapsed()
        );
    }
    let v = client::request(socket, &format!("fence {target}"), ASK).map_err(FenceError::Keeper)?;
    let id = v["id"]
        .as_u64()
        .ok_or_else(|| FenceError::Keeper(format!("no request id in {v}")))?;
    let st = status(socket)?;
    // host_dead after our first read of the peer at the latest, plus a
    // renewal or two: our own bound, under Pacemaker's (stonith-timeout).
    let limit = Duration::from_millis(st.host_dead_ms * 2) + Duration::from_secs(10);
    let t0 = Instant::now();
    eprintln!("{NAME}: fence request {id} for {target} posted");
    loop {
        let st = status(socket)?;
        if let Some((_, outcome)) = st.fences.iter().find(|(i, _)| *i == id) {
            eprintln!(
                "{NAME}: {target} fenced ({outcome}) after {:?}",
                t0.elapsed()
            );
            return Ok(if outcome == "acked" { "acked" } else { "dead" });
        }
        if t0.elapsed() > limit {
            return Err(FenceError::TimedOut {
                target: target.into(),
                waited: limit,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `fence_mailha` face: argv when given, else stdin.
pub fn agent_main() -> std::process::ExitCode {
    use std::io::Read;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let req = if args.is_empty() {
        let mut text = String::new();
        // Pacemaker writes a few hundred bytes and closes stdin.
        if let Err(e) = std::io::stdin().take(64 * 1024).read_to_string(&mut text) {
            eprintln!("{NAME}: reading stdin: {e}");
            return std::process::ExitCode::from(EXIT_FAIL);
        }
        parse_stdin(&text)
    } else {
        parse_args(&args)
    };
    let code = match req.and_then(|r| run(&r)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            EXIT_FAIL
        }
    };
    std::process::ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacemakers_stdin_is_read_and_unknown_keys_are_refused() {
        let r = parse_stdin(
            "action=off\nport=node2\nnodename=node1\ndevice=/dev/lab/lease\ncluster=lab\npcmk_host_list=node2\n",
        )
        .unwrap();
        assert_eq!(
            (r.action.as_str(), r.plug.as_deref(), r.socket.as_str()),
            ("off", Some("node2"), client::DEFAULT_SOCKET)
        );
        assert!(parse_stdin("action=off\nplgu=node2\n").is_err());
        assert!(parse_stdin("garbage\n").is_err());
    }

    #[test]
    fn the_command_line_takes_the_rhcs_options() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let r = a(&["-o", "status", "-n", "node1", "--socket", "s"]).unwrap();
        assert_eq!(
            (r.action.as_str(), r.plug.as_deref(), r.socket.as_str()),
            ("status", Some("node1"), "s")
        );
        assert!(a(&["-o"]).is_err());
        assert!(a(&["--bogus"]).is_err());
    }

    fn status(holds: bool, peer_holding: bool, peer_unchanged_ms: Option<u64>) -> Status {
        Status {
            pid: 1,
            node: "node2".into(),
            node_id: 2,
            peer: "node1".into(),
            peer_id: 1,
            cluster: "lab".into(),
            device: "/dev/lab/lease".into(),
            role: if holds { "holding" } else { "idle" }.into(),
            holds,
            wanted: holds,
            released: !holds,
            counter: 10,
            renewal_age_ms: Some(100),
            io_stalled_ms: None,
            peer_unchanged_ms,
            peer_dead: false,
            peer_holding,
            peer_fenced: false,
            host_dead_ms: 4500,
            renew_ms: 500,
            fence_pending: None,
            fences: vec![],
            self_fenced: None,
            reset: "reboot".into(),
            renewal_latency: None,
            write_failures: 0,
        }
    }

    #[test]
    fn the_standby_holds_back_its_request_against_a_live_holder_until_the_delay_ends() {
        let d = Duration::from_secs(2);
        let st = status(false, true, Some(300));
        assert_eq!(hold(&st, Duration::ZERO, d), Hold::Wait);
        assert_eq!(hold(&st, Duration::from_millis(1999), d), Hold::Wait);
        assert_eq!(hold(&st, d, d), Hold::Go);
    }

    #[test]
    fn a_holder_that_missed_renewals_is_fenced_without_delay() {
        // kill-node: by the time Pacemaker asks, the dead holder's slot
        // has stood still for seconds.
        let d = Duration::from_secs(2);
        assert_eq!(
            hold(&status(false, true, Some(2100)), Duration::ZERO, d),
            Hold::Go
        );
        assert_eq!(
            hold(&status(false, true, Some(1500)), Duration::ZERO, d),
            Hold::Go
        );
        assert_eq!(
            hold(&status(false, true, Some(1499)), Duration::ZERO, d),
            Hold::Wait
        );
        // Never read yet: nothing says it is alive.
        assert_eq!(
            hold(&status(false, true, None), Duration::ZERO, d),
            Hold::Go
        );
    }

    #[test]
    fn the_holder_and_a_race_over_nothing_never_wait() {
        let d = Duration::from_secs(2);
        assert_eq!(
            hold(&status(true, false, Some(100)), Duration::ZERO, d),
            Hold::Go
        );
        assert_eq!(
            hold(&status(false, false, Some(100)), Duration::ZERO, d),
            Hold::Go
        );
    }

    #[test]
    fn a_node_that_fenced_itself_stops_waiting_and_fences_nobody() {
        let mut st = status(false, true, Some(100));
        st.role = "fenced".into();
        assert!(matches!(
            hold(&st, Duration::ZERO, Duration::from_secs(2)),
            Hold::Abort(_)
        ));
    }

    #[test]
    fn the_holder_delay_is_a_bounded_duration() {
        let r = parse_stdin("action=off\nport=node1\nholder_delay=2s\n").unwrap();
        assert_eq!(r.holder_delay, Duration::from_secs(2));
        assert!(parse_stdin("action=off\nport=node1\nholder_delay=2h\n").is_err());
        assert!(parse_stdin("action=off\nport=node1\nholder_delay=soon\n").is_err());
    }

    #[test]
    fn metadata_is_xml_naming_every_action() {
        let m = metadata();
        let mut r = quick_xml::Reader::from_str(&m);
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not XML: {e}"),
            }
        }
        for a in [
            "on", "off", "reboot", "status", "list", "monitor", "metadata",
        ] {
            assert!(m.contains(&format!("<action name=\"{a}\"")), "{a}");
        }
        assert!(m.contains("name=\"plug\""));
    }

    #[test]
    fn without_a_keeper_every_action_but_metadata_fails() {
        let socket = format!("mailha-fence-absent-{}", std::process::id());
        for action in ["off", "status", "monitor", "list"] {
            let r = Request {
                action: action.into(),
                plug: Some("node2".into()),
                socket: socket.clone(),
                holder_delay: Duration::ZERO,
            };
            assert!(matches!(run(&r), Err(FenceError::Keeper(_))), "{action}");
        }
    }
}
