//! `mailha setup`: bootstrap both nodes from mailha.toml.
//!
//! On the node where it runs: write corosync.conf and an authkey, hand the
//! peer what it needs over SSH, start corosync and Pacemaker on both, wait
//! for both nodes to be members, then apply the CIB. The peer's side is
//! `mailha setup --receive`, run over SSH with a constant command line:
//! the config and the key travel on stdin, never in argv, and the peer
//! validates the config itself before it writes anything.

use crate::config::{self, Config};
use crate::exec;
pub use crate::files::write_atomic;
pub use crate::host::{bound_addresses, hostname, local_node};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(
        "this machine is neither {0} nor {1}: set its hostname to one of them, or bind one of their addresses here"
    )]
    NotANode(String, String),
    #[error("{what} failed (exit {code:?}): {stderr}")]
    Step {
        what: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("the payload from the peer is not valid: {0}")]
    Payload(String),
    #[error("the received config is invalid, nothing was written:\n{0}")]
    Config(#[from] config::ConfigError),
    #[error(
        "the received config is not for this machine ({host}): its nodes are {0} and {1}, and neither is this hostname nor bound here; nothing was written",
        .nodes.0, .nodes.1
    )]
    NotForThisHost {
        host: String,
        nodes: (String, String),
    },
    #[error("both nodes were not members within {}: {last}", humantime::format_duration(*waited))]
    Membership { waited: Duration, last: String },
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where setup writes; a root prefix so tests run in a temp dir.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn system() -> Self {
        Paths {
            root: PathBuf::from("/"),
        }
    }
    fn at(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
    pub fn corosync_conf(&self) -> PathBuf {
        self.at("/etc/corosync/corosync.conf")
    }
    pub fn authkey(&self) -> PathBuf {
        self.at(crate::corosync::AUTHKEY_PATH)
    }
    pub fn mailha_toml(&self) -> PathBuf {
        self.at(config::DEFAULT_PATH)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the initiating node sends the peer on stdin.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub mailha_toml: String,
    pub authkey_hex: String,
    /// The files the config names (password file, CA files): a fresh
    /// peer needs them too, and they never go through the CIB.
    #[serde(default)]
    pub files: Vec<crate::configsync::FileBlob>,
}

/// A corosync authkey: 256 bytes from the kernel's CSPRNG (as
/// corosync-keygen makes it).
pub fn new_authkey() -> Result<Vec<u8>, SetupError> {
    let mut key = vec![0u8; 256];
    let p = Path::new("/dev/urandom");
    let mut f = std::fs::File::open(p).map_err(io(p))?;
    std::io::Read::read_exact(&mut f, &mut key).map_err(io(p))?;
    Ok(key)
}

/// How this machine starts daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    SysV,
}

pub fn init_system(root: &Path) -> InitSystem {
    if crate::agents::service::unit::systemd_running(root) {
        InitSystem::Systemd
    } else {
        InitSystem::SysV
    }
}

/// The commands that start (or stop) the cluster stack. With the lease
/// guard, its keeper starts first (and is enabled at boot on systemd,
/// where corosync is also made to require it); it is never stopped here:
/// a keeper stopped while holding leaves the watchdog armed.
pub fn stack_commands(init: InitSystem, start: bool, lease: bool) -> Vec<Vec<&'static str>> {
    let verb = if start { "start" } else { "stop" };
    let mut v: Vec<Vec<&'static str>> = Vec::new();
    if start && lease {
        match init {
            InitSystem::Systemd => {
                v.push(vec!["systemctl", "daemon-reload"]);
                v.push(vec!["systemctl", "enable", "mailha-lease"]);
                v.push(vec!["systemctl", "start", "mailha-lease"]);
            }
            InitSystem::SysV => v.push(vec!["service", "mailha-lease", "start"]),
        }
    }
    let order: &[&str] = if start {
        &["corosync", "pacemaker"]
    } else {
        &["pacemaker", "corosync"]
    };
    // On systemd the stack comes back at boot, as on any Debian server
    // (a node reset by its watchdog rejoins by itself); SysV leaves the
    // runlevel links to the administrator (docs/lease.md).
    if start && init == InitSystem::Systemd {
        v.push(vec!["systemctl", "enable", "corosync", "pacemaker"]);
    }
    v.extend(order.iter().map(|svc| match init {
        InitSystem::Systemd => vec!["systemctl", verb, svc],
        InitSystem::SysV => vec!["service", svc, verb],
    }));
    v
}

/// The systemd units of the services mailha's agent runs (their unit
/// mode): Pacemaker owns them.
pub fn managed_units(cfg: &Config) -> Vec<String> {
    managed(cfg).map(|(unit, _)| unit.to_string()).collect()
}

/// The units mailha's agent runs, each with its service's `pid_file`.
fn managed(cfg: &Config) -> impl Iterator<Item = (&str, Option<&Path>)> {
    cfg.services
        .list
        .iter()
        .filter(|s| s.agent == config::Agent::Mailha)
        .filter_map(|s| Some((s.unit.as_deref()?, s.pid_file.as_deref())))
}

/// A managed unit and the services it is part of (its `PartOf=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedUnit {
    pub unit: String,
    pub part_of: Vec<String>,
}

/// A unit's `PartOf` as `systemctl show` gives it: the services among
/// the units named (a target a unit is part of is not the daemon's).
pub fn parse_part_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|u| config::validate::check_unit_name(u).is_ok())
        .map(str::to_string)
        .collect()
}

/// The commands that hand the managed units to Pacemaker on a systemd
/// node: each disabled at boot, with the services it is part of (Debian
/// starts Postfix at boot through postfix.service, which pulls
/// postfix@-.service in: disabling the instance alone would leave Postfix
/// starting outside the cluster), then a reload so systemd reads the
/// drop-ins written before (`unit::ensure_dropin`: Restart=no). Never
/// `--now` and never a stop: a unit running now (on a live cluster, where
/// setup is run again, Pacemaker's own resource) keeps running, and
/// Pacemaker's probe finds whatever runs. On SysV nothing changes.
pub fn unit_commands(init: InitSystem, units: &[OwnedUnit]) -> Vec<Vec<String>> {
    if init != InitSystem::Systemd || units.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = Vec::new();
    for u in units {
        for n in std::iter::once(&u.unit).chain(&u.part_of) {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let mut v: Vec<Vec<String>> = names
        .into_iter()
        .map(|n| {
            ["systemctl", "disable", "--no-reload", "--", n]
                .map(String::from)
                .to_vec()
        })
        .collect();
    v.push(vec!["systemctl".into(), "daemon-reload".into()]);
    v
}

/// Hands the config's managed units to Pacemaker on this node (systemd
/// only): the drop-ins, then `unit_commands`. Returns the units disabled.
pub fn own_units(paths: &Paths, cfg: &Config) -> Result<Vec<String>, SetupError> {
    let init = init_system(&paths.root);
    if init != InitSystem::Systemd || managed(cfg).next().is_none() {
        return Ok(Vec::new());
    }
    use crate::agents::service::unit;
    let mut owned = Vec::new();
    for (name, pid_file) in managed(cfg) {
        let mut props = vec!["PartOf"];
        props.extend(unit::MAIN_PID_PROPS);
        let shown = step(
            &[
                "systemctl",
                "show",
                &format!("--property={}", props.join(",")),
                "--",
                name,
            ],
            None,
            Duration::from_secs(20),
        )
        .map(|o| unit::parse_show(&o.stdout))
        .unwrap_or_default();
        let main_pid = unit::main_pid_file(&shown, pid_file);
        unit::ensure_dropin(&paths.root, name, main_pid.as_deref())
            .map_err(io(&unit::dropin_path(&paths.root, name)))?;
        let part_of = parse_part_of(shown.get("PartOf").map(String::as_str).unwrap_or(""));
        owned.push(OwnedUnit {
            unit: name.to_string(),
            part_of,
        });
    }
    let cmds = unit_commands(init, &owned);
    for c in &cmds {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        step(&argv, None, Duration::from_secs(30))?;
    }
    Ok(cmds
        .iter()
        .filter(|c| c.get(1).is_some_and(|v| v == "disable"))
        .filter_map(|c| c.last().cloned())
        .collect())
}

/// Whether `cfg` fences by lease, so a keeper must run under the stack.
pub fn lease_guard(cfg: &Config) -> bool {
    cfg.fencing.mode == config::model::FencingMode::Lease && cfg.storage.lease.is_some()
}

const STACK_DEADLINE: Duration = Duration::from_secs(90);

fn step(
    argv: &[&str],
    stdin: Option<&[u8]>,
    deadline: Duration,
) -> Result<exec::Output, SetupError> {
    let o = exec::run(argv, &[], stdin, deadline)?;
    if !o.success() {
        return Err(SetupError::Step {
            what: argv.join(" "),
            code: o.code,
            stderr: o.stderr.trim().to_string(),
        });
    }
    Ok(o)
}

/// Starts the stack; before it, hands the managed units to Pacemaker
/// (`own_units`). Returns the units disabled at boot.
pub fn start_stack(paths: &Paths, cfg: &Config) -> Result<Vec<String>, SetupError> {
    let owned = own_units(paths, cfg)?;
    let lease = lease_guard(cfg);
    for c in stack_commands(init_system(&paths.root), true, lease) {
        step(&c, None, STACK_DEADLINE)?;
        if c.contains(&"mailha-lease") && c.contains(&"start") {
            wait_for_keeper(Duration::from_secs(20))?;
        }
    }
    Ok(owned)
}

/// The keeper answers on its control socket (systemd's start returns as
/// soon as the process runs; the init script waits by itself).
fn wait_for_keeper(deadline: Duration) -> Result<(), SetupError> {
    let start = Instant::now();
    loop {
        match crate::lease::client::status(
            crate::lease::client::DEFAULT_SOCKET,
            Duration::from_secs(2),
        ) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() >= deadline => {
                return Err(SetupError::Step {
                    what: "waiting for the lease keeper".into(),
                    code: None,
                    stderr: e,
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Writes this node's files from a validated config and key.
pub fn install_files(
    paths: &Paths,
    cfg: &Config,
    toml_text: &str,
    key: &[u8],
) -> Result<(), SetupError> {
    write_atomic(&paths.mailha_toml(), toml_text.as_bytes(), 0o600)?;
    write_atomic(&paths.authkey(), key, 0o400)?;
    write_atomic(
        &paths.corosync_conf(),
        crate::corosync::render(cfg).as_bytes(),
        0o644,
    )?;
    if lease_guard(cfg) && init_system(&paths.root) == InitSystem::Systemd {
        write_atomic(
            &paths.at(crate::lease::boot::COROSYNC_DROPIN_PATH),
            crate::lease::boot::COROSYNC_DROPIN.as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// The peer's side: read the payload, validate, check that the config
/// names this machine (`hostname`, `addrs`: what it observes of itself),
/// write, start. A config for another cluster's node (a wrong host in
/// the sender's config, a mix-up of machines) writes nothing: its key and
/// corosync.conf would join this machine to a cluster it is not in.
pub fn receive(
    paths: &Paths,
    stdin: &[u8],
    start: bool,
    hostname: &str,
    addrs: &[std::net::IpAddr],
) -> Result<(), SetupError> {
    if stdin.len() > 1 << 20 {
        return Err(SetupError::Payload("larger than 1 MiB".into()));
    }
    let p: Payload =
        serde_json::from_slice(stdin).map_err(|e| SetupError::Payload(e.to_string()))?;
    let key = unhex(&p.authkey_hex)
        .filter(|k| k.len() >= 128)
        .ok_or_else(|| SetupError::Payload("authkey is not 128+ bytes of hex".into()))?;
    let loaded = config::load_str(&paths.mailha_toml(), &p.mailha_toml, Some(0o600))?;
    if local_node(&loaded.config, hostname, addrs).is_none() {
        let n = &loaded.config.cluster.nodes;
        return Err(SetupError::NotForThisHost {
            host: hostname.to_string(),
            nodes: (n[0].name.clone(), n[1].name.clone()),
        });
    }
    let files = crate::configsync::named_files(&loaded.config, &p.files)
        .map_err(|e| SetupError::Payload(e.to_string()))?;
    for (path, mode, content) in &files {
        write_atomic(&paths.at(&path.display().to_string()), content, *mode)?;
    }
    install_files(paths, &loaded.config, &p.mailha_toml, &key)?;
    if start {
        start_stack(paths, &loaded.config)?;
    }
    Ok(())
}

/// The SSH command that runs `mailha setup --receive` on the peer. The
/// remote command line is a constant: nothing from the config is in it.
pub fn ssh_argv(cfg: &Config, peer: &config::Node, ssh_extra: &[String]) -> Vec<String> {
    ssh_to(cfg, peer, ssh_extra, &["mailha", "setup", "--receive"])
}

/// The SSH command that runs the constant `remote` command on the peer
/// (the payload goes on stdin): host key checked, never a prompt.
pub fn ssh_to(
    cfg: &Config,
    peer: &config::Node,
    ssh_extra: &[String],
    remote: &[&str],
) -> Vec<String> {
    ssh_to_addr(
        cfg.cluster.ssh_port,
        &peer.addresses[0].to_string(),
        ssh_extra,
        remote,
    )
}

/// `ssh_to` by port and address (a pull reads them from the running
/// config when this node's own file is gone).
pub fn ssh_to_addr(port: u16, addr: &str, ssh_extra: &[String], remote: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "ssh".into(),
        "-p".into(),
        port.to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "ConnectTimeout=10".into(),
    ];
    v.extend(ssh_extra.iter().cloned());
    v.push(format!("root@{addr}"));
    v.push("--".into());
    v.extend(remote.iter().map(|s| s.to_string()));
    v
}

/// Polls crm_mon until both nodes are online members with a DC.
pub fn wait_for_membership(deadline: Duration) -> Result<(), SetupError> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < deadline {
        match exec::run(
            &[
                "crm_mon",
                "--one-shot",
                "--output-as=xml",
                "--include=summary,nodes",
            ],
            &[],
            None,
            Duration::from_secs(10),
        ) {
            Ok(o) => match crate::status::parse(&o.stdout) {
                Ok(st) => {
                    let online = st.nodes.iter().filter(|n| n.online).count();
                    if online == 2 && st.dc.is_some() {
                        return Ok(());
                    }
                    last = format!("{online} of 2 nodes online, DC {:?}", st.dc);
                }
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(SetupError::Membership {
        waited: deadline,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cfg() -> Config {
        config::example("postfix.toml").config
    }

    #[test]
    fn the_stack_starts_corosync_first_and_stops_it_last() {
        assert_eq!(
            stack_commands(InitSystem::SysV, true, false),
            vec![
                vec!["service", "corosync", "start"],
                vec!["service", "pacemaker", "start"]
            ]
        );
        assert_eq!(
            stack_commands(InitSystem::Systemd, false, true),
            vec![
                vec!["systemctl", "stop", "pacemaker"],
                vec!["systemctl", "stop", "corosync"]
            ]
        );
    }

    #[test]
    fn with_the_lease_guard_the_keeper_starts_before_the_stack_and_is_never_stopped_here() {
        assert_eq!(
            stack_commands(InitSystem::SysV, true, true),
            vec![
                vec!["service", "mailha-lease", "start"],
                vec!["service", "corosync", "start"],
                vec!["service", "pacemaker", "start"]
            ]
        );
        let systemd = stack_commands(InitSystem::Systemd, true, true);
        assert_eq!(systemd[1], vec!["systemctl", "enable", "mailha-lease"]);
        assert_eq!(systemd[2], vec!["systemctl", "start", "mailha-lease"]);
        assert_eq!(
            systemd[3],
            vec!["systemctl", "enable", "corosync", "pacemaker"]
        );
        assert_eq!(systemd[4], vec!["systemctl", "start", "corosync"]);
        assert!(
            !stack_commands(InitSystem::SysV, false, true)
                .concat()
                .contains(&"mailha-lease")
        );
    }

    #[test]
    fn on_systemd_setup_disables_the_managed_units_at_boot_and_stops_nothing() {
        let owned = [
            OwnedUnit {
                unit: "mariadb.service".into(),
                part_of: vec![],
            },
            OwnedUnit {
                unit: "postfix@-.service".into(),
                part_of: parse_part_of("postfix.service\n"),
            },
        ];
        let disable = |u: &str| {
            ["systemctl", "disable", "--no-reload", "--", u]
                .map(String::from)
                .to_vec()
        };
        assert_eq!(
            unit_commands(InitSystem::Systemd, &owned),
            vec![
                disable("mariadb.service"),
                disable("postfix@-.service"),
                disable("postfix.service"),
                vec!["systemctl".to_string(), "daemon-reload".to_string()],
            ]
        );
        let all = unit_commands(InitSystem::Systemd, &owned).concat();
        assert!(
            !all.iter()
                .any(|a| a == "--now" || a == "stop" || a == "mask"),
            "{all:?}"
        );
        assert!(unit_commands(InitSystem::SysV, &owned).is_empty());
        assert!(unit_commands(InitSystem::Systemd, &[]).is_empty());
    }

    #[test]
    fn the_managed_units_are_those_mailhas_agent_runs() {
        assert_eq!(
            managed_units(&cfg()),
            [
                "memcached.service",
                "mariadb.service",
                "dovecot.service",
                "php8.2-fpm.service",
                "nginx.service",
                "postfix@-.service"
            ]
        );
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/postfix.toml"
        ))
        .unwrap()
            + "\n[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\n[services.memcached]\nunit = \"none\"\n";
        let c = config::load_str(Path::new("m.toml"), &text, Some(0o600))
            .unwrap()
            .config;
        assert_eq!(
            managed_units(&c),
            [
                "mariadb.service",
                "dovecot.service",
                "php8.2-fpm.service",
                "nginx.service"
            ]
        );
        assert_eq!(
            parse_part_of("multi-user.target postfix.service"),
            ["postfix.service"]
        );
    }

    #[test]
    fn the_ssh_command_is_constant_argv_with_host_key_checking() {
        let c = cfg();
        let v = ssh_argv(&c, &c.cluster.nodes[1], &[]);
        assert!(
            v.windows(2)
                .any(|w| w == ["-o", "StrictHostKeyChecking=yes"])
        );
        assert!(v.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
        assert_eq!(
            &v[v.len() - 5..],
            ["root@203.0.113.12", "--", "mailha", "setup", "--receive"]
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let k = vec![0u8, 1, 254, 255];
        assert_eq!(unhex(&hex(&k)).unwrap(), k);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    /// The receiving machine of the tests: the gateway example's second
    /// node, by hostname.
    const PEER: &str = "gw2";

    /// An empty root to receive into, and the gateway example's text.
    fn receiving_machine() -> (tempfile::TempDir, Paths, String) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/gateway.toml"
        ))
        .unwrap();
        (dir, paths, text)
    }

    #[test]
    fn a_config_that_does_not_name_this_machine_is_refused_and_nothing_written() {
        let (_dir, paths, text) = receiving_machine();
        let payload = serde_json::to_vec(&Payload {
            mailha_toml: text.clone(),
            authkey_hex: hex(&[7u8; 256]),
            files: Vec::new(),
        })
        .unwrap();
        let other: Vec<std::net::IpAddr> = vec!["203.0.113.199".parse().unwrap()];
        let e = receive(&paths, &payload, false, "mx9.example.net", &other).unwrap_err();
        assert!(matches!(e, SetupError::NotForThisHost { .. }), "{e}");
        assert!(e.to_string().contains("mx9.example.net"), "{e}");
        assert!(!paths.authkey().exists(), "nothing written");
        assert!(!paths.mailha_toml().exists(), "nothing written");
        // The same machine found by an address bound here instead.
        let c = config::load_str(Path::new("m.toml"), &text, Some(0o600))
            .unwrap()
            .config;
        let mine = c.cluster.nodes[1].addresses.clone();
        receive(&paths, &payload, false, "localhost", &mine).unwrap();
        assert!(paths.authkey().exists());
    }

    #[test]
    fn receiving_writes_private_files_and_nothing_when_the_config_is_bad() {
        let (_dir, paths, text) = receiving_machine();
        let bad = Payload {
            mailha_toml: text.replace("prefix = 24", "prefix = 77"),
            authkey_hex: hex(&[7u8; 256]),
            files: Vec::new(),
        };
        assert!(matches!(
            receive(&paths, &serde_json::to_vec(&bad).unwrap(), false, PEER, &[]),
            Err(SetupError::Config(_))
        ));
        assert!(!paths.authkey().exists(), "a bad config writes nothing");

        let good = Payload {
            mailha_toml: text,
            authkey_hex: hex(&[7u8; 256]),
            files: Vec::new(),
        };
        receive(
            &paths,
            &serde_json::to_vec(&good).unwrap(),
            false,
            PEER,
            &[],
        )
        .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.authkey()), 0o400);
        assert_eq!(mode(&paths.mailha_toml()), 0o600);
        assert_eq!(std::fs::read(paths.authkey()).unwrap(), vec![7u8; 256]);
        assert!(
            std::fs::read_to_string(paths.corosync_conf())
                .unwrap()
                .contains("cluster_name: gateway")
        );
    }

    #[test]
    fn a_short_key_or_junk_payload_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        assert!(matches!(
            receive(&paths, b"{not json", false, PEER, &[]),
            Err(SetupError::Payload(_))
        ));
        let p = Payload {
            mailha_toml: String::new(),
            authkey_hex: hex(&[1u8; 16]),
            files: Vec::new(),
        };
        assert!(matches!(
            receive(&paths, &serde_json::to_vec(&p).unwrap(), false, PEER, &[]),
            Err(SetupError::Payload(_))
        ));
    }
}
