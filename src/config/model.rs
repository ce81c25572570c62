//! The validated configuration: what the rest of mailha works with. Every
//! value here has been checked; nothing downstream re-validates.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub cluster: Cluster,
    pub vip: Vip,
    pub network: Network,
    pub storage: Storage,
    pub services: Services,
    pub policy: Policy,
    pub fencing: Fencing,
    pub alerts: Option<Alerts>,
    pub exporter: Exporter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub token_timeout: Duration,
    pub ssh_port: u16,
    /// Always two; `nodes[i].id == i + 1`.
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: u32,
    pub name: String,
    /// One per heartbeat link, link 0 first.
    pub addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix: u8,
    pub nic: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub ping_targets: Vec<IpAddr>,
    pub dampen: Duration,
    pub interval: Duration,
    /// Failed ping checks in a row that move the mail: 2, the failed
    /// check and the ping instance's restart, whose start checks again;
    /// or 1, the first failed check (docs/config.md, `failed_checks`).
    pub failed_checks: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub lease: Option<Lease>,
    pub mounts: Vec<Mount>,
}

/// How a block device is named: udev is not assumed (the lab has none), so
/// UUID and LABEL are resolved by mailha itself at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockDev {
    Path(PathBuf),
    Uuid(String),
    Label(String),
}

impl BlockDev {
    /// The spelling used in the config and in agent parameters.
    pub fn spec(&self) -> String {
        match self {
            BlockDev::Path(p) => p.display().to_string(),
            BlockDev::Uuid(u) => format!("UUID={u}"),
            BlockDev::Label(l) => format!("LABEL={l}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsExport {
    pub host: String,
    pub export: PathBuf,
}

impl NfsExport {
    pub fn spec(&self) -> String {
        format!("{}:{}", self.host, self.export.display())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    Block { device: BlockDev, fstype: String },
    Nfs(NfsExport),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub name: String,
    pub source: MountSource,
    pub mount_point: PathBuf,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTarget {
    Block(BlockDev),
    NfsFile {
        export: NfsExport,
        file: String,
        options: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub target: LeaseTarget,
    pub io_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileName {
    Eyou,
    Postfix,
    Gateway,
}

impl ProfileName {
    pub const ALL: &'static [&'static str] = &["eyou", "postfix", "gateway", "none"];
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Eyou => "eyou",
            ProfileName::Postfix => "postfix",
            ProfileName::Gateway => "gateway",
        }
    }
}

/// What is made highly available, as the original's HA_SERVER said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Mail,
    Gateway,
    TwoInOne,
}

impl Mode {
    pub const ALL: &'static [&'static str] = &["mail", "gateway", "2in1"];
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mail => "mail",
            Mode::Gateway => "gateway",
            Mode::TwoInOne => "2in1",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Services {
    pub profile: Option<ProfileName>,
    pub mode: Mode,
    /// eYou version found in the installed tree, when the eyou profile
    /// discovered one.
    pub eyou_version: Option<String>,
    /// In dependency order: every service comes after what it depends on;
    /// ties broken by name, so the order is stable.
    pub list: Vec<Service>,
}

/// Which resource agent runs a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// `ocf:mailha:service`, driven by the fields of `Service`.
    Mailha,
    /// Any other agent, e.g. `ocf:heartbeat:postfix`, with its own params.
    Other {
        class: String,
        provider: Option<String>,
        kind: String,
    },
}

impl Agent {
    pub fn spec(&self) -> String {
        match self {
            Agent::Mailha => "ocf:mailha:service".into(),
            Agent::Other {
                class,
                provider: Some(p),
                kind,
            } => format!("{class}:{p}:{kind}"),
            Agent::Other {
                class,
                provider: None,
                kind,
            } => format!("{class}:{kind}"),
        }
    }
}

/// `policy.start_stall` when the file says nothing, and the agent's
/// default for its `start_stall` parameter.
pub const START_STALL_DEFAULT: &str = "5s";

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub agent: Agent,
    /// The systemd service unit that runs it (mailha's agent uses it
    /// where systemd runs; `start`/`stop` elsewhere).
    pub unit: Option<String>,
    /// Empty for a unit-only service.
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub pid_file: Option<PathBuf>,
    pub executable: Option<PathBuf>,
    pub probe: Option<Probe>,
    pub depends_on: Vec<String>,
    pub watch: bool,
    pub clone: bool,
    pub monitor_interval: Duration,
    /// How long a start waits for a daemon that is up, fails its probe and
    /// makes no progress (the agent's `start_stall`).
    pub start_stall: Duration,
    /// Lock files the daemon leaves on the shared data when its node dies,
    /// which it would otherwise wait out (Dovecot's dotlocks: 2 minutes);
    /// the storage agent removes them at a takeover under the lease.
    pub stale_locks: Vec<String>,
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    Smtp,
    Pop3,
    Imap,
    Mysql,
    Memcached,
    Http { path: String, expect: u16 },
    Command { argv: Vec<String> },
}

impl ProbeKind {
    pub const NAMES: &'static [&'static str] = &[
        "smtp",
        "pop3",
        "imap",
        "mysql",
        "memcached",
        "http",
        "command",
    ];
    pub fn name(&self) -> &'static str {
        match self {
            ProbeKind::Smtp => "smtp",
            ProbeKind::Pop3 => "pop3",
            ProbeKind::Imap => "imap",
            ProbeKind::Mysql => "mysql",
            ProbeKind::Memcached => "memcached",
            ProbeKind::Http { .. } => "http",
            ProbeKind::Command { .. } => "command",
        }
    }
}

/// Where a network probe connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    pub target: ProbeTarget,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub migration_threshold: u32,
    pub failure_timeout: Duration,
    pub resource_stickiness: u32,
    pub monitor_interval: Duration,
    pub storage_monitor_interval: Duration,
    pub vip_monitor_interval: Duration,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub monitor_timeout: Duration,
    /// Every service's `start_stall` unless it gives its own.
    pub start_stall: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencingMode {
    /// `fence_mailha` backed by the disk lease.
    Lease,
    /// sbd with a real watchdog, for sites that have one.
    Sbd,
    /// No guard at all: only for the lab's stock baseline.
    None,
}

impl FencingMode {
    pub const ALL: &'static [&'static str] = &["lease", "sbd", "none"];
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fencing {
    pub mode: FencingMode,
    pub priority_fencing_delay: Duration,
    pub watchdog: PathBuf,
    pub watchdog_timeout: Duration,
    /// `watchdog` is not a watchdog device but an emulation (the lab's
    /// FIFO read by a host-side supervisor): accepted only when the config
    /// says so, never silently.
    pub watchdog_emulated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    ZhCn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub customer: String,
    pub language: Language,
    pub subject: Option<String>,
    pub advice: Option<String>,
    pub batch_window: Duration,
    pub smtp: Option<Smtp>,
    pub webhook: Option<Webhook>,
    pub command: Option<AlertCommand>,
    pub diagnostics: Diagnostics,
}

/// The diagnostics bundle every channel gets with an incident
/// (`alert::diag`): what goes in and how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// false: no bundle at all (the mail says so, nothing is attached).
    pub enabled: bool,
    /// Journal lines of the cluster's own units (0: no logs).
    pub log_lines: u32,
    /// The whole bundle is cut after this many lines...
    pub max_lines: u32,
    /// ...or this many bytes, whichever comes first.
    pub max_bytes: u32,
    /// Mail addresses, user names and IP addresses other than `keep` are
    /// replaced by numbered stand-ins (`[mail-1]`, `[user-1]`, `[ip-1]`).
    /// Secrets are removed whatever this says.
    pub redact_personal: bool,
    /// The cluster's own addresses (nodes, VIP, ping targets): not
    /// personal, and needed to read the bundle. Filled in at load time.
    pub keep: Vec<IpAddr>,
}

impl Default for Diagnostics {
    fn default() -> Self {
        Diagnostics {
            enabled: true,
            log_lines: 100,
            max_lines: 600,
            max_bytes: 64 * 1024,
            redact_personal: true,
            keep: Vec::new(),
        }
    }
}

/// Where the relay password lives. It is never copied into the CIB or a
/// command line; the sender reads it when it sends.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    None,
    /// In mailha.toml itself (which must then be 0600).
    Inline(String),
    File(PathBuf),
}

/// Never the inline password itself, so a `{:?}` of the config in a log
/// or a panic holds no secret.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::None => f.write_str("None"),
            Secret::Inline(_) => f.write_str("Inline([redacted])"),
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub starttls: bool,
    /// PEM certificates trusted for the relay's STARTTLS, in addition to
    /// the system's roots (a private CA, as in the lab).
    pub ca_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Secret,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: Duration,
}

/// Debug shows the URL as `alert::send::redact_url` does: its path and
/// query often hold the webhook's token.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    /// PEM certificates trusted for an https URL besides the system's.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &crate::alert::send::redact_url(&self.url))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertCommand {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// Who runs `mailha exporter` on every node: the operator's systemd (the
/// package's unit, enabled by hand), or Pacemaker, as a clone of the
/// same unit in the generated CIB (restarted and shown like any other
/// resource, stopped with the stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExporterRunBy {
    #[default]
    Systemd,
    Pacemaker,
}

/// `mailha exporter`: where it listens and who may scrape it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exporter {
    /// Who keeps it running on every node.
    pub run_by: ExporterRunBy,
    pub listen: std::net::SocketAddr,
    /// How long a scrape waits for crm_mon before it answers stale.
    pub scrape_timeout: Duration,
    pub auth: Option<BasicAuth>,
    pub tls: Option<ExporterTls>,
}

/// HTTPS for the exporter: this node's own certificate (chain, PEM) and
/// key (PEM, 0600). Never synced to the peer: each node has its own name.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// HTTP basic auth: the password lives in a file (0600), never in the
/// TOML, so the config can be shown and synced without it.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    pub user: String,
    pub password_file: PathBuf,
}
