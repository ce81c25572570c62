//! Cluster state for `mailha status`: parsed from
//! `crm_mon --output-as=xml` (pure), shown as an 80-column summary or as
//! JSON. The JSON is a stable contract (`SCHEMA_VERSION`, documented in
//! docs/status.md): fields are only ever added.

use quick_xml::events::{BytesStart, Event};
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeState {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub maintenance: bool,
    pub unclean: bool,
    /// What the metrics report besides (`crate::exporter`); not part of
    /// the JSON contract.
    #[serde(skip)]
    pub more: NodeMore,
}

/// crm_mon's other node flags, as ha_cluster_exporter reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMore {
    /// member, remote, ping
    pub kind: String,
    pub pending: bool,
    pub shutdown: bool,
    pub expected_up: bool,
    pub standby_onfail: bool,
    pub dc: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub id: String,
    pub agent: String,
    /// Pacemaker's role: Started, Stopped, ...; `FAILED` when failed.
    pub role: String,
    pub nodes: Vec<String>,
    pub failed: bool,
    pub managed: bool,
    /// The clone this instance belongs to, if any.
    pub clone: Option<String>,
    /// Failures recorded for it, on any node.
    pub fail_count: u32,
    /// For the metrics (`crate::exporter`); not part of the JSON contract.
    #[serde(skip)]
    pub more: ResourceMore,
}

/// crm_mon's other resource flags, as ha_cluster_exporter reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceMore {
    /// crm_mon's role even when failed (`Resource::role` says FAILED).
    pub role: String,
    /// The group it is in, if any (`clone` holds a group's id too).
    pub group: Option<String>,
    pub active: bool,
    pub orphaned: bool,
    pub blocked: bool,
    pub failure_ignored: bool,
}

pub use crate::ocf::TOLD_DEATH_TASK;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub resource: String,
    pub node: String,
    pub task: String,
    pub exit: String,
    pub reason: String,
}

/// A constraint left behind by `crm_resource --move/--ban`: it pins or
/// bans a resource until someone clears it, which silently defeats
/// failover later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeftoverMove {
    pub id: String,
    pub resource: String,
    pub node: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub schema: u32,
    pub quorate: bool,
    pub dc: Option<String>,
    pub stonith_enabled: bool,
    pub maintenance_mode: bool,
    /// Where the VIP, and so the mail, runs.
    pub active_node: Option<String>,
    pub nodes: Vec<NodeState>,
    pub resources: Vec<Resource>,
    pub failures: Vec<Failure>,
    pub leftover_moves: Vec<LeftoverMove>,
    /// This node's mailha.toml against what the cluster runs; null when
    /// the file could not be read.
    pub config: Option<ConfigState>,
    /// Services whose deep checks `mailha watch off` switched off.
    pub watch_off: Vec<String>,
    /// Resources in maintenance of their own (`mailha maintenance on
    /// SERVICE`: neither managed nor monitored), from the CIB.
    pub maintenance: Vec<String>,
    /// Both nodes' mailha.toml against the running config the CIB holds;
    /// null when the CIB could not be read.
    pub config_sync: Option<ConfigSync>,
    /// This node's lease keeper, asked over its socket; null when the
    /// config does not fence by lease (or could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keeper: Option<KeeperView>,
    /// Each resource's history on each node (`node_history`), for
    /// decisions about one node (`mailha switchover`); not part of the
    /// JSON contract.
    #[serde(skip)]
    pub history: Vec<NodeHistory>,
    /// When the CIB last changed, as crm_mon writes it (ctime form,
    /// e.g. `Sat Dec  5 20:17:41 2026`; empty from a saved CIB).
    #[serde(skip)]
    pub last_change: Option<String>,
}

/// `1234ms`, `2s` or a bare number (ms) as milliseconds.
fn millis(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(ms) = v.strip_suffix("ms") {
        ms.trim().parse().ok()
    } else if let Some(s) = v.strip_suffix('s') {
        s.trim().parse::<u64>().ok().map(|s| s * 1000)
    } else {
        v.parse().ok()
    }
}

/// One resource's fail count on one node, and the threshold at which
/// Pacemaker bans it from there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeHistory {
    pub node: String,
    pub resource: String,
    pub fail_count: u32,
    /// None: Pacemaker's default (INFINITY: never banned).
    pub migration_threshold: Option<u32>,
    /// Its latest monitor there (for the metrics), if any is recorded.
    pub last_monitor: Option<MonitorRun>,
}

/// A monitor as Pacemaker recorded it in the node's operation history.
/// A recurring monitor is recorded again only when its result changes,
/// so its duration is that of the run that changed the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorRun {
    pub call: i64,
    /// The OCF exit code.
    pub rc: i32,
    /// Pacemaker's word for it (`ok`, `not running`, ...).
    pub rc_text: String,
    /// 0: a probe (the one-off "is it running here?").
    pub interval_ms: u64,
    /// None when crm_mon does not say.
    pub exec_ms: Option<u64>,
    /// When the result last changed, as crm_mon writes it (ctime form).
    pub last_rc_change: Option<String>,
}

impl MonitorRun {
    /// The answer Pacemaker wants: running (or promoted), or a probe's
    /// "not running here" on a node the resource is not meant to run on.
    pub fn ok(&self) -> bool {
        self.rc == 0 || self.rc == 8 || (self.rc == 7 && self.interval_ms == 0)
    }
}

/// Pacemaker's INFINITY as a count or score.
pub const INFINITY: u32 = 1_000_000;

/// A count or score as Pacemaker writes it: a number, or `INFINITY`
/// (a failed start: `start-failure-is-fatal`), capped at INFINITY.
pub fn score(v: &str) -> Option<u32> {
    match v.trim().trim_start_matches('+') {
        "INFINITY" => Some(INFINITY),
        n => n.parse::<u64>().ok().map(|n| n.min(INFINITY as u64) as u32),
    }
}

/// What this node's lease keeper says of itself. Pacemaker cannot see
/// it: a node whose keeper fenced itself, or does not answer, shows as
/// online and its resources as fine, yet it can take nothing over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeeperView {
    pub answering: bool,
    /// idle, claiming, holding, self-fencing, fenced (when answering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub holds: bool,
    /// Why it fenced itself, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_fenced: Option<String>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What follows an acked fence of this node (reboot, watchdog, none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
    /// The node the keeper serves (its own name for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Idle against its will: Pacemaker runs the `lease` resource on this
    /// node, yet the keeper holds nothing (restarted, or released by hand,
    /// behind the cluster's back): the mounts it guards would be refused.
    pub idle_against_its_will: bool,
}

impl KeeperView {
    pub fn of(asked: Result<&crate::lease::client::Status, &str>) -> KeeperView {
        match asked {
            Ok(s) => KeeperView {
                answering: true,
                role: Some(s.role.clone()),
                holds: s.holds,
                self_fenced: s.self_fenced.clone(),
                error: None,
                reset: (!s.reset.is_empty()).then(|| s.reset.clone()),
                node: Some(s.node.clone()),
                idle_against_its_will: false,
            },
            Err(e) => KeeperView {
                answering: false,
                error: Some(e.to_string()),
                ..KeeperView::default()
            },
        }
    }

    /// Sets `idle_against_its_will` from what Pacemaker runs: the lease
    /// resource started on the keeper's node while the keeper, not
    /// fenced (that has its own line), holds nothing.
    pub fn judge(&mut self, resources: &[Resource]) {
        let started_here = self.node.as_ref().is_some_and(|n| {
            resources
                .iter()
                .any(|r| r.id == crate::cib::LEASE_ID && r.role == "Started" && r.nodes.contains(n))
        });
        self.idle_against_its_will = self.answering
            && started_here
            && !self.holds
            && self.self_fenced.is_none()
            && !matches!(self.role.as_deref(), Some("fenced" | "self-fencing"));
    }

    /// The keeper cannot take the lease (so this node cannot take the
    /// mail over) until someone acts.
    pub fn needs_attention(&self) -> bool {
        self.idle_against_its_will
            || !self.answering
            || self.self_fenced.is_some()
            || matches!(self.role.as_deref(), Some("fenced" | "self-fencing"))
    }

    /// One line for the human view.
    pub fn line(&self) -> String {
        match (&self.error, &self.self_fenced, self.role.as_deref()) {
            // The verdict first: a long reason is what an 80-column cut
            // takes away.
            (Some(e), _, _) => format!("lease keeper not answering, no takeover possible: {e}"),
            // A keeper that will not reset its node says so first: only
            // an operator brings that node back.
            (None, Some(why), _) if self.reset.as_deref() == Some("none") => {
                format!("lease keeper fenced itself, reset = none: restart this node ({why})")
            }
            (None, Some(why), _) => {
                format!("lease keeper fenced itself, no takeover until restarted: {why}")
            }
            (None, None, Some(r @ ("fenced" | "self-fencing"))) => {
                format!("lease keeper {r}, no takeover until restarted")
            }
            (None, None, Some(r)) if self.idle_against_its_will => {
                format!("lease keeper {r}: holds nothing, yet Pacemaker runs the lease here")
            }
            (None, None, role) => format!(
                "lease keeper: {}{}",
                role.unwrap_or("?"),
                if self.holds {
                    ", holds the data lease"
                } else {
                    ""
                }
            ),
        }
    }
}

/// One config on both nodes (`crate::configsync`): which side is behind,
/// who applied what when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigSync {
    /// This node's name.
    pub node: String,
    /// This node's file: `same`, `behind` (exactly an older generation:
    /// `mailha config pull`), `diverged` (edited from an older generation
    /// while the cluster moved on: applying it would revert),
    /// `ahead` (changes not applied yet: `mailha apply`), `missing`,
    /// `no_record` (the cluster holds no running config), `unknown` (the
    /// cluster key is unreadable here).
    pub state: String,
    /// The generation this file is, when it is one.
    pub generation: Option<u64>,
    /// The generation this node's file was last brought to.
    pub base_generation: Option<u64>,
    pub running_generation: Option<u64>,
    /// `user@node` that applied the running config, and when (RFC 3339,
    /// that node's clock).
    pub applied_by: Option<String>,
    pub applied_at: Option<String>,
    /// Files the config names (password file, CA files) that differ here
    /// from the applied ones.
    pub files_behind: Vec<String>,
    /// Every node's recorded generation.
    pub nodes: Vec<NodeConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeConfig {
    pub name: String,
    pub generation: Option<u64>,
    /// Its file is not (known to be) the running config.
    pub behind: bool,
}

impl ConfigSync {
    /// Something an operator should act on.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self.state.as_str(),
            "behind" | "diverged" | "missing" | "ahead"
        ) || !self.files_behind.is_empty()
            || self.nodes.iter().any(|n| n.behind)
    }

    /// The line saying what runs: generation, who, when.
    pub fn running_line(&self) -> Option<String> {
        Some(format!(
            "config: generation {} by {} at {}",
            self.running_generation?,
            self.applied_by.as_deref()?,
            self.applied_at.as_deref()?
        ))
    }

    /// The attention lines, advice included (each fits 80 columns with
    /// short node names).
    pub fn advice(&self, online: &dyn Fn(&str) -> bool) -> Vec<String> {
        let Some(run) = self.running_generation else {
            return Vec::new();
        };
        let mut v = Vec::new();
        match (self.state.as_str(), self.generation, self.base_generation) {
            ("behind", Some(g), _) => v.push(format!(
                "mailha.toml here is generation {g}, behind {run}: mailha config pull"
            )),
            ("diverged", _, Some(b)) => v.push(format!(
                "mailha.toml here is an edit of generation {b} ({run} runs): mailha config pull"
            )),
            ("missing", _, _) => v.push(format!(
                "no mailha.toml here (generation {run} runs): mailha config pull"
            )),
            ("ahead", _, _) => {
                v.push("mailha.toml here has changes not applied: mailha apply".to_string())
            }
            _ => {}
        }
        if !self.files_behind.is_empty() {
            v.push(format!(
                "{} not as applied: mailha config pull",
                self.files_behind.join(", ")
            ));
        }
        for n in self
            .nodes
            .iter()
            .filter(|n| n.behind && n.name != self.node)
        {
            v.push(if online(&n.name) {
                format!(
                    "{}'s mailha.toml is behind ({run} runs): mailha config pull there",
                    n.name
                )
            } else {
                format!(
                    "{}'s mailha.toml is behind ({run} runs): synced when it rejoins",
                    n.name
                )
            });
        }
        v
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigState {
    /// Digest of what this node's mailha.toml renders.
    pub local_digest: String,
    /// Digest `mailha apply` stored in the CIB, if any.
    pub running_digest: Option<String>,
    /// The file here would change the cluster: run `mailha apply` (or fix
    /// the file).
    pub drift: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("crm_mon output is not XML mailha understands: {0}")]
    Xml(String),
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

fn flag(e: &BytesStart, name: &str) -> bool {
    attr(e, name).as_deref() == Some("true")
}

/// Parses `crm_mon --output-as=xml --include=all`.
pub fn parse(xml: &str) -> Result<Status, StatusError> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut st = Status {
        schema: SCHEMA_VERSION,
        ..Default::default()
    };
    // Where we are: the element names from the root down.
    let mut stack: Vec<String> = Vec::new();
    let mut clone: Option<String> = None;
    let mut group: Option<String> = None;
    let mut history_node: Option<String> = None;
    let mut saw_root = false;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| StatusError::Xml(e.to_string()))?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(e) => {
                let name = e.name().0.to_string();
                if name == "clone" || name == "group" {
                    clone = None;
                }
                if name == "group" {
                    group = None;
                }
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = e.name().0.to_string();
        let parent = stack.last().map(|s| s.as_str()).unwrap_or("");
        match (parent, name.as_str()) {
            ("", "pacemaker-result") => saw_root = true,
            ("summary", "current_dc") => {
                if flag(&e, "present") {
                    st.dc = attr(&e, "name");
                }
                st.quorate = flag(&e, "with_quorum");
            }
            ("summary", "cluster_options") => {
                st.stonith_enabled = flag(&e, "stonith-enabled");
                st.maintenance_mode = flag(&e, "maintenance-mode");
            }
            ("nodes", "node") => st.nodes.push(NodeState {
                name: attr(&e, "name").unwrap_or_default(),
                online: flag(&e, "online"),
                standby: flag(&e, "standby"),
                maintenance: flag(&e, "maintenance"),
                unclean: flag(&e, "unclean"),
                more: NodeMore {
                    kind: attr(&e, "type").unwrap_or_default(),
                    pending: flag(&e, "pending"),
                    shutdown: flag(&e, "shutdown"),
                    expected_up: flag(&e, "expected_up"),
                    standby_onfail: flag(&e, "standby_onfail"),
                    dc: flag(&e, "is_dc"),
                },
            }),
            ("summary", "last_change") => st.last_change = attr(&e, "time"),
            ("resources", "clone") | ("resources", "group") => {
                clone = attr(&e, "id");
                if name == "group" {
                    group = attr(&e, "id");
                }
            }
            ("clone", "group") => group = attr(&e, "id"),
            ("resources" | "clone" | "group", "resource") => {
                let failed = flag(&e, "failed");
                st.resources.push(Resource {
                    id: attr(&e, "id").unwrap_or_default(),
                    agent: attr(&e, "resource_agent").unwrap_or_default(),
                    role: if failed {
                        "FAILED".into()
                    } else {
                        attr(&e, "role").unwrap_or_default()
                    },
                    nodes: Vec::new(),
                    failed,
                    managed: flag(&e, "managed"),
                    clone: clone.clone(),
                    fail_count: 0,
                    more: ResourceMore {
                        role: attr(&e, "role").unwrap_or_default(),
                        group: group.clone(),
                        active: flag(&e, "active"),
                        orphaned: flag(&e, "orphaned"),
                        blocked: flag(&e, "blocked"),
                        failure_ignored: flag(&e, "failure_ignored"),
                    },
                });
            }
            ("resource", "node") => {
                if let (Some(r), Some(n)) = (st.resources.last_mut(), attr(&e, "name")) {
                    r.nodes.push(n);
                }
            }
            ("node_history", "node") => history_node = attr(&e, "name"),
            ("node", "resource_history") if history_node.is_some() => {
                let id = attr(&e, "id").unwrap_or_default();
                let n: u32 = attr(&e, "fail-count").and_then(|v| score(&v)).unwrap_or(0);
                if let Some(node) = &history_node {
                    st.history.push(NodeHistory {
                        node: node.clone(),
                        resource: id.clone(),
                        fail_count: n,
                        migration_threshold: attr(&e, "migration-threshold")
                            .and_then(|v| score(&v)),
                        last_monitor: None,
                    });
                }
                for r in st.resources.iter_mut().filter(|r| r.id == id) {
                    r.fail_count = r.fail_count.max(n);
                }
            }
            ("resource_history", "operation_history")
                if history_node.is_some() && attr(&e, "task").as_deref() == Some("monitor") =>
            {
                let run = MonitorRun {
                    call: attr(&e, "call").and_then(|c| c.parse().ok()).unwrap_or(-1),
                    rc: attr(&e, "rc").and_then(|c| c.parse().ok()).unwrap_or(-1),
                    rc_text: attr(&e, "rc_text").unwrap_or_default(),
                    interval_ms: attr(&e, "interval").and_then(|v| millis(&v)).unwrap_or(0),
                    exec_ms: attr(&e, "exec-time").and_then(|v| millis(&v)),
                    last_rc_change: attr(&e, "last-rc-change").filter(|t| !t.is_empty()),
                };
                if let Some(h) = st.history.last_mut()
                    && h.last_monitor.as_ref().is_none_or(|m| m.call <= run.call)
                {
                    h.last_monitor = Some(run);
                }
            }
            ("failures", "failure") => {
                let op_key = attr(&e, "op_key").unwrap_or_default();
                let task = attr(&e, "task").unwrap_or_default();
                // op_key is "{rsc}_{task}_{interval}"; resource ids may
                // contain '_', so cut the known suffix off.
                let resource = op_key
                    .rsplit_once(&format!("_{task}_"))
                    .map(|(r, _)| r.to_string())
                    .unwrap_or(op_key);
                st.failures.push(Failure {
                    resource,
                    node: attr(&e, "node").unwrap_or_default(),
                    task,
                    exit: attr(&e, "exitstatus").unwrap_or_default(),
                    reason: attr(&e, "exitreason").unwrap_or_default(),
                });
            }
            ("bans", "ban") => {
                let id = attr(&e, "id").unwrap_or_default();
                if id.starts_with("cli-ban-") || id.starts_with("cli-prefer-") {
                    st.leftover_moves.push(LeftoverMove {
                        id,
                        resource: attr(&e, "resource").unwrap_or_default(),
                        node: attr(&e, "node").unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
    }
    if !saw_root {
        return Err(StatusError::Xml("no <pacemaker-result> element".into()));
    }
    // A failure not yet reflected in a fail-count attribute still counts.
    for f in &st.failures {
        let recorded = st
            .failures
            .iter()
            .filter(|g| g.resource == f.resource)
            .count() as u32;
        for r in st.resources.iter_mut().filter(|r| r.id == f.resource) {
            r.fail_count = r.fail_count.max(recorded);
        }
    }
    st.active_node = st
        .resources
        .iter()
        .find(|r| r.id == crate::cib::VIP_ID && !r.failed)
        .and_then(|r| r.nodes.first().cloned());
    Ok(st)
}

/// How the cluster is, in one word.
pub fn health(st: &Status) -> &'static str {
    let all_online = st.nodes.iter().all(|n| n.online && !n.unclean);
    let running = st.active_node.is_some();
    let failed = st.resources.iter().any(|r| r.failed)
        || !st.failures.is_empty()
        || st.config.as_ref().is_some_and(|c| c.drift)
        || st.config_sync.as_ref().is_some_and(|c| c.needs_attention())
        || st.keeper.as_ref().is_some_and(|k| k.needs_attention())
        // Nothing (or not everything) is protected in maintenance.
        || st.maintenance_mode
        || st.resources.iter().any(|r| !r.managed);
    match (
        running,
        all_online && !failed && st.leftover_moves.is_empty(),
    ) {
        (false, _) => "DOWN",
        (true, true) => "OK",
        (true, false) => "DEGRADED",
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// What in crm_mon's state needs someone, worst first: one list that
/// `mailha status` says in English and the exporter's page says in the
/// reader's language (each adds what only it reads: the keeper, the config
/// sync, the spool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention<'a> {
    NoQuorum,
    /// The whole cluster is in maintenance.
    MaintenanceAll,
    /// One resource in maintenance (`mailha maintenance on RSC`).
    MaintenanceOf(&'a str),
    /// Unmanaged by other means (`is-managed=false`).
    Unmanaged(&'a str),
    FencingOff,
    Failed(&'a Failure),
    /// A `cli-ban-*` (ban) or `cli-prefer-*` left behind.
    Leftover {
        ban: bool,
        resource: &'a str,
        node: &'a str,
    },
    /// A service watched for liveness only.
    WatchOff(&'a str),
}

impl Attention<'_> {
    /// The command that ends it, when there is one.
    pub fn fix(&self) -> Option<String> {
        match self {
            Attention::MaintenanceAll => Some("mailha maintenance off".into()),
            Attention::MaintenanceOf(r) => Some(format!("mailha maintenance off {r}")),
            Attention::Leftover { resource, .. } => {
                Some(format!("crm_resource --clear -r {resource}"))
            }
            Attention::WatchOff(s) => Some(format!("mailha watch on {s}")),
            _ => None,
        }
    }
}

/// The cluster-wide items of [`Attention`], in the order both views show.
pub fn attention(st: &Status) -> Vec<Attention<'_>> {
    let mut v = Vec::new();
    if !st.quorate {
        v.push(Attention::NoQuorum);
    }
    if st.maintenance_mode {
        v.push(Attention::MaintenanceAll);
    } else {
        let mut seen: Vec<&str> = Vec::new();
        for r in st.resources.iter().filter(|r| !r.managed) {
            if seen.contains(&r.id.as_str()) {
                continue;
            }
            seen.push(&r.id);
            v.push(if st.maintenance.contains(&r.id) {
                Attention::MaintenanceOf(&r.id)
            } else {
                Attention::Unmanaged(&r.id)
            });
        }
    }
    if !st.stonith_enabled {
        v.push(Attention::FencingOff);
    }
    v.extend(st.failures.iter().map(Attention::Failed));
    v.extend(st.leftover_moves.iter().map(|m| Attention::Leftover {
        ban: m.id.starts_with("cli-ban-"),
        resource: &m.resource,
        node: &m.node,
    }));
    v.extend(st.watch_off.iter().map(|w| Attention::WatchOff(w)));
    v
}

/// One [`Attention`] as `mailha status` says it, its fix included.
fn attention_line(a: &Attention) -> String {
    match a {
        Attention::NoQuorum => "no quorum".into(),
        Attention::MaintenanceAll => {
            "MAINTENANCE: the cluster starts, stops and monitors nothing: mailha maintenance off"
                .into()
        }
        Attention::MaintenanceOf(r) => {
            format!("MAINTENANCE: {r} is neither managed nor monitored: mailha maintenance off {r}")
        }
        Attention::Unmanaged(r) => {
            format!("{r} is unmanaged: Pacemaker neither starts nor stops it")
        }
        Attention::FencingOff => "fencing is off: no split-brain guard".into(),
        Attention::Failed(f) if f.task == TOLD_DEATH_TASK => format!(
            "{} failed on {}: its daemon's unit ended of itself, told at once by crm_resource --fail (journalctl -u UNIT says how)",
            f.resource, f.node
        ),
        Attention::Failed(f) => {
            let reason = if f.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.reason)
            };
            format!(
                "{} {} failed on {}: {}{reason}",
                f.resource, f.task, f.node, f.exit
            )
        }
        Attention::Leftover {
            ban,
            resource,
            node,
        } => format!(
            "leftover {} of {resource} on {node}: crm_resource --clear -r {resource}",
            if *ban { "ban" } else { "preference" }
        ),
        Attention::WatchOff(w) => format!("{w}: watch off (liveness only): mailha watch on {w}"),
    }
}

/// The human view: fits 80 columns, worst news first.
pub fn render_human(st: &Status, vip: Option<&str>) -> String {
    let mut o = String::new();
    let where_ = match &st.active_node {
        Some(n) => format!("mail runs on {n}"),
        None => "mail is NOT running".into(),
    };
    let vip = vip.map(|v| format!(" (VIP {v})")).unwrap_or_default();
    o.push_str(&cut(&format!("{}: {where_}{vip}", health(st)), 80));
    o.push('\n');
    let nodes: Vec<String> = st
        .nodes
        .iter()
        .map(|n| {
            let s = if n.unclean {
                "UNCLEAN"
            } else if !n.online {
                "OFFLINE"
            } else if n.maintenance {
                "maintenance"
            } else if n.standby {
                "standby"
            } else {
                "online"
            };
            format!("{} {s}", n.name)
        })
        .collect();
    o.push_str(&cut(&format!("nodes: {}", nodes.join(", ")), 80));
    o.push('\n');
    if let Some(k) = st.keeper.as_ref().filter(|k| !k.needs_attention()) {
        o.push_str(&cut(&k.line(), 80));
        o.push('\n');
    }
    if let Some(l) = st.config_sync.as_ref().and_then(|c| c.running_line()) {
        o.push_str(&cut(&l, 80));
        o.push('\n');
    }
    let mut attention: Vec<String> = self::attention(st).iter().map(attention_line).collect();
    if let Some(k) = st.keeper.as_ref().filter(|k| k.needs_attention()) {
        attention.push(k.line());
    }
    let sync = st
        .config_sync
        .as_ref()
        .filter(|c| !matches!(c.state.as_str(), "no_record" | "unknown"));
    if let Some(c) = sync {
        let online = |n: &str| st.nodes.iter().any(|x| x.name == n && x.online);
        attention.extend(c.advice(&online));
    }
    if let Some(c) = &st.config
        && c.drift
    {
        match (&c.running_digest, sync.map(|s| s.state.as_str())) {
            (None, _) => attention.push("the cluster was not configured by mailha apply".into()),
            // The file is what was applied, yet the CIB renders otherwise.
            (Some(_), Some("same")) => attention.push(
                "the CIB differs from what mailha.toml renders (changed by hand?): mailha apply"
                    .into(),
            ),
            (Some(_), None) => attention
                .push("this node's mailha.toml differs from what runs: mailha apply".into()),
            // The sync's own line says which side is behind.
            (Some(_), Some(_)) => {}
        }
    }
    o.push_str("resources:\n");
    // One line per resource; clone instances folded into one line.
    let mut seen_clones = Vec::new();
    for r in &st.resources {
        let (id, nodes, role) = match &r.clone {
            Some(c) => {
                if seen_clones.contains(c) {
                    continue;
                }
                seen_clones.push(c.clone());
                let inst: Vec<&Resource> = st
                    .resources
                    .iter()
                    .filter(|x| x.clone.as_ref() == Some(c))
                    .collect();
                let mut nodes: Vec<String> = inst.iter().flat_map(|x| x.nodes.clone()).collect();
                nodes.sort();
                let role = if inst.iter().any(|x| x.failed) {
                    "FAILED"
                } else if nodes.is_empty() {
                    "Stopped"
                } else {
                    "Started"
                };
                (c.clone(), nodes, role.to_string())
            }
            None => (r.id.clone(), r.nodes.clone(), r.role.clone()),
        };
        let fails = st
            .resources
            .iter()
            .filter(|x| x.id == r.id)
            .map(|x| x.fail_count)
            .max()
            .unwrap_or(0);
        let fails = if fails > 0 {
            format!("  fails {fails}")
        } else {
            String::new()
        };
        let line = format!(
            "  {:<24} {:<8} {}{fails}",
            cut(&id, 24),
            cut(&role, 8),
            nodes.join(",")
        );
        o.push_str(cut(&line, 80).trim_end());
        o.push('\n');
    }
    if !attention.is_empty() {
        o.push_str("attention:\n");
        for a in attention {
            o.push_str(&cut(&format!("  ! {a}"), 80));
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cluster_wide_worry_is_listed_once_worst_first_with_its_fix() {
        let unmanaged = |id: &str| Resource {
            id: id.into(),
            managed: false,
            ..Resource::default()
        };
        let st = Status {
            quorate: false,
            stonith_enabled: false,
            resources: vec![
                unmanaged("svc-mysql"),
                unmanaged("svc-mysql"),
                unmanaged("vip"),
            ],
            maintenance: vec!["svc-mysql".into()],
            failures: vec![Failure {
                resource: "svc-postfix".into(),
                node: "mail1".into(),
                task: "monitor".into(),
                exit: "not running".into(),
                reason: String::new(),
            }],
            leftover_moves: vec![LeftoverMove {
                id: "cli-ban-vip-on-mail1".into(),
                resource: "vip".into(),
                node: "mail1".into(),
            }],
            watch_off: vec!["dovecot".into()],
            ..Status::default()
        };
        let a = attention(&st);
        assert_eq!(
            a,
            vec![
                Attention::NoQuorum,
                Attention::MaintenanceOf("svc-mysql"),
                Attention::Unmanaged("vip"),
                Attention::FencingOff,
                Attention::Failed(&st.failures[0]),
                Attention::Leftover {
                    ban: true,
                    resource: "vip",
                    node: "mail1"
                },
                Attention::WatchOff("dovecot"),
            ]
        );
        let fixes: Vec<Option<String>> = a.iter().map(Attention::fix).collect();
        assert_eq!(
            fixes[1].as_deref(),
            Some("mailha maintenance off svc-mysql")
        );
        assert_eq!(fixes[5].as_deref(), Some("crm_resource --clear -r vip"));
        assert_eq!(fixes[6].as_deref(), Some("mailha watch on dovecot"));
        // `mailha status` says each, in that order, fix included.
        let human = render_human(&st, None);
        let listed: Vec<&str> = human
            .lines()
            .skip_while(|l| *l != "attention:")
            .skip(1)
            .collect();
        assert_eq!(listed.len(), 7, "{human}");
        assert!(listed[5].contains("crm_resource --clear -r vip"), "{human}");
        // A death systemd told: no "Simulated failure".
        let told = Failure {
            task: "asyncmon".into(),
            exit: "error".into(),
            reason: "Simulated failure".into(),
            ..st.failures[0].clone()
        };
        let line = attention_line(&Attention::Failed(&told));
        assert!(
            line.starts_with("svc-postfix failed on mail1: its daemon's unit ended of itself"),
            "{line}"
        );
        assert!(!line.contains("Simulated"), "{line}");
        // A whole cluster in maintenance is one line, not one per resource.
        let all = Status {
            maintenance_mode: true,
            ..st.clone()
        };
        assert_eq!(attention(&all)[1], Attention::MaintenanceAll);
        assert!(!attention(&all).contains(&Attention::Unmanaged("vip")));
    }

    #[test]
    fn long_names_are_cut_to_keep_80_columns() {
        assert_eq!(cut("abcdef", 4), "abc~");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn each_resource_s_last_monitor_per_node_is_read_from_the_history() {
        let xml = r#"<pacemaker-result><node_history><node name="mail1">
          <resource_history id="svc-postfix">
            <operation_history call="3" task="monitor" rc="7" rc_text="not running" interval="0ms" exec-time="3ms" last-rc-change="Wed Nov 25 16:00:00 2026"/>
            <operation_history call="9" task="monitor" rc="0" rc_text="ok" interval="2000ms" exec-time="41ms" last-rc-change="Wed Nov 25 16:03:28 2026"/>
            <operation_history call="8" task="start" rc="0" rc_text="ok" exec-time="900ms"/>
          </resource_history>
          <resource_history id="vip">
            <operation_history call="4" task="monitor" rc="0" rc_text="ok" interval="10000ms"/>
          </resource_history>
        </node></node_history></pacemaker-result>"#;
        let st = parse(xml).unwrap();
        let last = |rsc: &str| {
            st.history
                .iter()
                .find(|h| h.resource == rsc && h.node == "mail1")
                .and_then(|h| h.last_monitor.clone())
                .unwrap_or_else(|| panic!("{rsc}: {:#?}", st.history))
        };
        let p = last("svc-postfix");
        assert_eq!((p.rc, p.rc_text.as_str()), (0, "ok"), "the latest call");
        assert_eq!((p.exec_ms, p.interval_ms), (Some(41), 2000));
        assert_eq!(
            p.last_rc_change.as_deref(),
            Some("Wed Nov 25 16:03:28 2026")
        );
        assert_eq!(last("vip").last_rc_change, None);
    }

    #[test]
    fn text_that_is_not_crm_mon_xml_is_an_error() {
        assert!(parse("<html/>").is_err());
        assert!(parse("not xml <").is_err());
    }
}
