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
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// Writes `data` to `path` atomically with `mode`: a temp file in the same
/// directory (created with the mode, so the content is never readable by
/// others even for an instant), fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), SetupError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Our own temporary name: two writers at once must not share one.
    let tmp = dir.join(format!(
        ".{}.mailha-tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
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
    // systemd's own test: this directory exists only while it runs as PID 1.
    if root.join("run/systemd/system").is_dir() {
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
    v.extend(order.iter().map(|svc| match init {
        InitSystem::Systemd => vec!["systemctl", verb, svc],
        InitSystem::SysV => vec!["service", svc, verb],
    }));
    v
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

pub fn start_stack(paths: &Paths, cfg: &Config) -> Result<(), SetupError> {
    let lease = lease_guard(cfg);
    for c in stack_commands(init_system(&paths.root), true, lease) {
        step(&c, None, STACK_DEADLINE)?;
        if c.contains(&"mailha-lease") && c.contains(&"start") {
            wait_for_keeper(Duration::from_secs(20))?;
        }
    }
    Ok(())
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

/// The peer's side: read the payload, validate, write, start.
pub fn receive(paths: &Paths, stdin: &[u8], start: bool) -> Result<(), SetupError> {
    if stdin.len() > 1 << 20 {
        return Err(SetupError::Payload("larger than 1 MiB".into()));
    }
    let p: Payload =
        serde_json::from_slice(stdin).map_err(|e| SetupError::Payload(e.to_string()))?;
    let key = unhex(&p.authkey_hex)
        .filter(|k| k.len() >= 128)
        .ok_or_else(|| SetupError::Payload("authkey is not 128+ bytes of hex".into()))?;
    let loaded = config::load_str(&paths.mailha_toml(), &p.mailha_toml, Some(0o600))?;
    install_files(paths, &loaded.config, &p.mailha_toml, &key)?;
    if start {
        start_stack(paths, &loaded.config)?;
    }
    Ok(())
}

/// The SSH command that runs `mailha setup --receive` on the peer. The
/// remote command line is a constant: nothing from the config is in it.
pub fn ssh_argv(cfg: &Config, peer: &config::Node, ssh_extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "ssh".into(),
        "-p".into(),
        cfg.cluster.ssh_port.to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "ConnectTimeout=10".into(),
    ];
    v.extend(ssh_extra.iter().cloned());
    v.push(format!("root@{}", peer.addresses[0]));
    v.push("--".into());
    v.push("mailha".into());
    v.push("setup".into());
    v.push("--receive".into());
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

    fn cfg() -> Config {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/postfix.toml"
        ))
        .unwrap();
        config::load_str(Path::new("m.toml"), &text, Some(0o600))
            .unwrap()
            .config
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
        assert_eq!(systemd[3], vec!["systemctl", "start", "corosync"]);
        assert!(
            !stack_commands(InitSystem::SysV, false, true)
                .concat()
                .contains(&"mailha-lease")
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

    #[test]
    fn receiving_writes_private_files_and_nothing_when_the_config_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/gateway.toml"
        ))
        .unwrap();
        let bad = Payload {
            mailha_toml: text.replace("prefix = 24", "prefix = 77"),
            authkey_hex: hex(&[7u8; 256]),
        };
        assert!(matches!(
            receive(&paths, &serde_json::to_vec(&bad).unwrap(), false),
            Err(SetupError::Config(_))
        ));
        assert!(!paths.authkey().exists(), "a bad config writes nothing");

        let good = Payload {
            mailha_toml: text,
            authkey_hex: hex(&[7u8; 256]),
        };
        receive(&paths, &serde_json::to_vec(&good).unwrap(), false).unwrap();
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
            receive(&paths, b"{not json", false),
            Err(SetupError::Payload(_))
        ));
        let p = Payload {
            mailha_toml: String::new(),
            authkey_hex: hex(&[1u8; 16]),
        };
        assert!(matches!(
            receive(&paths, &serde_json::to_vec(&p).unwrap(), false),
            Err(SetupError::Payload(_))
        ));
    }
}
