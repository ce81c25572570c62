//! What one scrape observed, rendered in the Prometheus text exposition
//! format (version 0.0.4). Pure: the same observation gives the same
//! bytes, so the output is golden-tested.
//!
//! The cluster's metrics carry ha_cluster_exporter's names and labels
//! (its `collector/pacemaker/pacemaker.go`, `collector/corosync`), so the
//! dashboards and alert rules written for it work unchanged; mailha's own
//! are under `mailha_`.

use crate::lease::client::Status as Keeper;
use crate::status::{INFINITY, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The alert spool as a directory listing shows it (no event is read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpoolDepth {
    /// Events recorded and not yet claimed by the sender.
    pub pending: u64,
    /// Incidents claimed and not yet delivered on every channel.
    pub outbox: u64,
    /// Age of the oldest pending event, from its id.
    pub oldest_pending_age_s: Option<f64>,
    /// Age of the oldest incident in the outbox (its id is its first
    /// event's): an incident some channel keeps failing to deliver.
    pub oldest_outbox_age_s: Option<f64>,
}

/// The last failover `mailha history` would show: an incident with a
/// cause (not a planned move) in which the VIP started again.
#[derive(Debug, Clone, PartialEq)]
pub struct LastFailover {
    pub start_unix: f64,
    /// From its cause to the last start on the node the mail went to
    /// (the node that was lost booting and rejoining is not counted);
    /// None when this node's records do not show the cause before that
    /// start (a node that was itself lost knows the loss only from the
    /// fence's completion): no duration rather than a wrong one.
    pub seconds: Option<f64>,
    /// What began it, as a class (`ops::history::Kind` of the cause):
    /// `resource_failure`, `fencing`, `node_lost`.
    pub cause: &'static str,
    /// Where the mail ran after it.
    pub mail_on: String,
}

/// One alert channel's failed attempts over the incidents the spool
/// still holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendFailures {
    pub attempts: u64,
    /// The newest one's unix time.
    pub last_unix: f64,
}

/// What `mailha status` takes from the CIB's configuration besides
/// crm_mon's state (the status page's warnings and verdict; no metric).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CibView {
    /// `cli-*` constraints, the `cli-prefer-*` that crm_mon does not list
    /// among them (`switchover::leftovers`).
    pub leftovers: Vec<crate::status::LeftoverMove>,
    /// Resources in maintenance of their own.
    pub maintenance: Vec<String>,
    /// Services whose deep checks are off (`mailha watch off`).
    pub watch_off: Vec<String>,
}

impl CibView {
    pub fn of(cib: &crate::cib::xml::El) -> CibView {
        use crate::ops::maintenance::{Scope, is_on};
        CibView {
            leftovers: crate::switchover::leftovers(cib),
            maintenance: crate::ops::resource_ids(cib)
                .into_iter()
                .filter(|id| is_on(cib, &Scope::Resource(id.clone())))
                .collect(),
            watch_off: crate::watch::off_list(cib),
        }
    }
}

/// Everything one scrape saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// crm_mon's state, or why there is none this time (timed out,
    /// failed, unreadable): then no cluster metric is served, and
    /// `mailha_scrape_ok` says 0.
    pub cluster: Option<Status>,
    /// The keeper's answer; None when the config does not fence by lease.
    pub keeper: Option<Result<Keeper, String>>,
    /// None when the spool cannot be read.
    pub spool: Option<SpoolDepth>,
    /// How long crm_mon and the parse took.
    pub duration_s: f64,
    /// Since crm_mon last answered; None if it never did.
    pub last_success_age_s: Option<f64>,
    pub scrapes_total: u64,
    pub scrape_failures_total: u64,
    /// The unix time the CIB last changed, parsed from crm_mon.
    pub last_change_unix: Option<i64>,
    /// This node's mailha.toml differs from the config the cluster runs;
    /// None when unknown.
    pub config_drift: Option<bool>,
    /// What `mailha status` reads from the CIB's configuration, from
    /// Pacemaker's on-disk copy; None when it could not be read.
    pub cib: Option<CibView>,
    /// crm_mon's histories as `ops::history` entries, parsed once per
    /// crm_mon run: the last failover and the status page's last 24
    /// hours both read them.
    pub crm_history: std::sync::Arc<Vec<crate::ops::history::Entry>>,
    /// Incidents each alert channel delivered, from the spool's
    /// `done-<channel>` marks; None when the spool cannot be read.
    pub alert_delivered: Option<BTreeMap<String, u64>>,
    /// Incidents of the spool's `sent/` kept back as repeats; None when
    /// the spool cannot be read.
    pub alert_quieted: Option<u64>,
    /// Failed send attempts per alert channel, from the spool's
    /// `failed-<channel>` records; None when the spool cannot be read.
    pub alert_send_failures: Option<BTreeMap<String, SendFailures>>,
    /// None: no failover in what crm_mon and the spool still show.
    pub last_failover: Option<LastFailover>,
}

/// One metric family being written: HELP and TYPE first, then samples.
struct Out {
    text: String,
    /// Series written so far: Prometheus refuses a scrape with a
    /// duplicate, and two stopped instances of a clone look alike.
    seen: BTreeSet<String>,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let mut series = name.to_string();
        if !labels.is_empty() {
            series.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    series.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(series, "{k}=\"{v}\"");
            }
            series.push('}');
        }
        if self.seen.insert(series.clone()) {
            let _ = writeln!(self.text, "{series} {}", number(value));
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

fn bit(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A count Pacemaker caps at INFINITY, as ha_cluster_exporter shows it.
fn count(n: u32) -> f64 {
    if n >= INFINITY {
        f64::INFINITY
    } else {
        n as f64
    }
}

/// The keeper's roles (`lease::client::Status::role`).
const LEASE_ROLES: [&str; 5] = ["idle", "claiming", "holding", "self-fencing", "fenced"];

pub fn render(o: &Observed) -> String {
    let mut out = Out {
        text: String::new(),
        seen: BTreeSet::new(),
    };
    scrape(&mut out, o);
    if let Some(st) = &o.cluster {
        cluster(&mut out, st, o.last_change_unix);
    }
    if let Some(k) = &o.keeper {
        lease(&mut out, k);
    }
    spool(&mut out, o.spool.as_ref());
    if let Some(d) = &o.alert_delivered {
        out.family(
            "mailha_alert_delivered_incidents_total",
            "counter",
            "Incidents this node's sender delivered, per channel (smtp, webhook, command), from the spool's records",
        );
        for (ch, n) in d {
            out.sample(
                "mailha_alert_delivered_incidents_total",
                &[("channel", ch)],
                *n as f64,
            );
        }
    }
    if let Some(n) = o.alert_quieted {
        out.family(
            "mailha_alert_quieted_incidents_total",
            "counter",
            "Incidents this node's sender kept back as repeats of one mailed less than 30 minutes before (mailed by no channel; the next mail counts them), from the spool's records",
        );
        out.sample("mailha_alert_quieted_incidents_total", &[], n as f64);
    }
    if let Some(f) = &o.alert_send_failures {
        out.family(
            "mailha_alert_send_failures_total",
            "counter",
            "Failed attempts of this node's sender, per channel, over the incidents its spool holds (outbox/ and sent/)",
        );
        for (ch, n) in f {
            out.sample(
                "mailha_alert_send_failures_total",
                &[("channel", ch)],
                n.attempts as f64,
            );
        }
        out.family(
            "mailha_alert_last_send_failure_timestamp_seconds",
            "gauge",
            "When a channel's last attempt failed (unix time); the error is in the sender's log",
        );
        for (ch, n) in f {
            out.sample(
                "mailha_alert_last_send_failure_timestamp_seconds",
                &[("channel", ch)],
                n.last_unix,
            );
        }
    }
    if o.cluster.is_some() {
        failover(&mut out, o.last_failover.as_ref());
    }
    if let Some(d) = o.config_drift {
        out.gauge(
            "mailha_config_drift",
            "1 if this node's mailha.toml renders other than the config the cluster runs (mailha apply, or fix the file); from Pacemaker's on-disk CIB",
            bit(d),
        );
    }
    out.text
}

fn scrape(out: &mut Out, o: &Observed) {
    let ok = o.cluster.is_some();
    out.gauge(
        "mailha_scrape_ok",
        "1 if crm_mon answered in time and its state is served; 0: the cluster metrics are absent (stale)",
        bit(ok),
    );
    out.gauge(
        "mailha_scrape_duration_seconds",
        "How long this scrape's crm_mon took, parse included",
        o.duration_s,
    );
    out.gauge(
        "mailha_scrape_last_success_age_seconds",
        "Seconds since crm_mon last answered in time (+Inf: never since the exporter started)",
        o.last_success_age_s.unwrap_or(f64::INFINITY),
    );
    out.family(
        "mailha_scrapes_total",
        "counter",
        "Scrapes served since the exporter started",
    );
    out.sample("mailha_scrapes_total", &[], o.scrapes_total as f64);
    out.family(
        "mailha_scrape_failures_total",
        "counter",
        "Scrapes whose crm_mon failed, timed out or was not understood",
    );
    out.sample(
        "mailha_scrape_failures_total",
        &[],
        o.scrape_failures_total as f64,
    );
    // ha_cluster_exporter's own health metrics, for its dashboards.
    out.gauge_with(
        "ha_cluster_scrape_success",
        "Whether a collector succeeded.",
        &[("collector", "pacemaker")],
        bit(ok),
    );
    out.gauge_with(
        "ha_cluster_scrape_duration_seconds",
        "Duration of a collector scrape.",
        &[("collector", "pacemaker")],
        o.duration_s,
    );
}

impl Out {
    fn gauge_with(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }
}

fn cluster(out: &mut Out, st: &Status, last_change: Option<i64>) {
    out.family(
        "ha_cluster_pacemaker_nodes",
        "gauge",
        "The status of each node in the cluster; 1 means the node is in that status, 0 otherwise",
    );
    for n in &st.nodes {
        let m = &n.more;
        for (status, on) in [
            ("online", n.online),
            ("standby", n.standby),
            ("standby_onfail", m.standby_onfail),
            ("maintenance", n.maintenance),
            ("pending", m.pending),
            ("unclean", n.unclean),
            ("shutdown", m.shutdown),
            ("expected_up", m.expected_up),
            ("dc", m.dc),
        ] {
            out.sample(
                "ha_cluster_pacemaker_nodes",
                &[("node", &n.name), ("type", &m.kind), ("status", status)],
                bit(on),
            );
        }
    }
    out.family(
        "ha_cluster_pacemaker_resources",
        "gauge",
        "The status of each resource in the cluster; 1 means the resource is in that status, 0 otherwise",
    );
    for r in &st.resources {
        let m = &r.more;
        let node = r.nodes.first().map(String::as_str).unwrap_or("");
        let role = m.role.to_lowercase();
        let managed = r.managed.to_string();
        let group = m.group.as_deref().unwrap_or("");
        // `Resource::clone` names a group too; a group is not a clone.
        let clone = r
            .clone
            .as_deref()
            .filter(|c| Some(*c) != m.group.as_deref())
            .unwrap_or("");
        for (status, on) in [
            ("active", m.active),
            ("orphaned", m.orphaned),
            ("blocked", m.blocked),
            ("failed", r.failed),
            ("failure_ignored", m.failure_ignored),
        ] {
            out.sample(
                "ha_cluster_pacemaker_resources",
                &[
                    ("node", node),
                    ("resource", &r.id),
                    ("role", &role),
                    ("managed", &managed),
                    ("status", status),
                    ("agent", &r.agent),
                    ("group", group),
                    ("clone", clone),
                ],
                bit(on),
            );
        }
    }
    out.family(
        "ha_cluster_pacemaker_fail_count",
        "gauge",
        "The Fail count number per node and resource id",
    );
    for h in &st.history {
        out.sample(
            "ha_cluster_pacemaker_fail_count",
            &[("node", &h.node), ("resource", &h.resource)],
            count(h.fail_count),
        );
    }
    out.family(
        "ha_cluster_pacemaker_migration_threshold",
        "gauge",
        "The migration_threshold number per node and resource id",
    );
    for h in &st.history {
        if let Some(t) = h.migration_threshold {
            out.sample(
                "ha_cluster_pacemaker_migration_threshold",
                &[("node", &h.node), ("resource", &h.resource)],
                t as f64,
            );
        }
    }
    out.gauge(
        "ha_cluster_pacemaker_stonith_enabled",
        "Whether or not stonith is enabled",
        bit(st.stonith_enabled),
    );
    out.gauge(
        "ha_cluster_pacemaker_maintenance_mode_enabled",
        "Whether or not cluster wide maintenance-mode is enabled",
        bit(st.maintenance_mode),
    );
    if let Some(t) = last_change {
        // ha_cluster_exporter types it a counter; it is a timestamp.
        out.gauge(
            "ha_cluster_pacemaker_config_last_change",
            "The timestamp of the last change of the cluster configuration",
            t as f64,
        );
    }
    out.gauge(
        "ha_cluster_corosync_quorate",
        "Whether or not the cluster is quorate",
        bit(st.quorate),
    );
    out.gauge(
        "mailha_mail_running",
        "1 if the VIP, and so the mail, runs on some node",
        bit(st.active_node.is_some()),
    );
    out.family(
        "mailha_active_node",
        "gauge",
        "The node the VIP, and so the mail, runs on (1); absent when it runs nowhere",
    );
    if let Some(n) = &st.active_node {
        out.sample("mailha_active_node", &[("node", n)], 1.0);
    }
    probes(out, st);
    out.gauge(
        "mailha_leftover_constraints",
        "cli-ban-*/cli-prefer-* constraints crm_resource --move/--ban left (that crm_mon lists): they defeat failover until cleared (mailha switchover --clear)",
        st.leftover_moves.len() as f64,
    );
    out.family(
        "mailha_leftover_constraint",
        "gauge",
        "Each leftover cli-* constraint crm_mon lists; always 1",
    );
    for l in &st.leftover_moves {
        out.sample(
            "mailha_leftover_constraint",
            &[
                ("constraint", &l.id),
                ("resource", &l.resource),
                ("node", &l.node),
            ],
            1.0,
        );
    }
}

/// Each resource's latest monitor on each node, from Pacemaker's
/// operation history in the same crm_mon answer (no process, no probe
/// of our own). The storage resources' monitors are the storage probe.
fn probes(out: &mut Out, st: &Status) {
    let runs: Vec<_> = st
        .history
        .iter()
        .filter_map(|h| Some((h, h.last_monitor.as_ref()?)))
        .collect();
    let mut each =
        |name: &str, help: &str, value: &dyn Fn(&crate::status::MonitorRun) -> Option<f64>| {
            out.family(name, "gauge", help);
            for (h, m) in &runs {
                if let Some(v) = value(m) {
                    out.sample(name, &[("resource", &h.resource), ("node", &h.node)], v);
                }
            }
        };
    each(
        "mailha_probe_ok",
        "1 if the resource's latest monitor on the node gave the answer Pacemaker wants (running; a probe's not running where it does not run)",
        &|m| Some(bit(m.ok())),
    );
    each(
        "mailha_probe_exit_code",
        "The OCF exit code of the resource's latest monitor on the node (0 running, 7 not running, 1 error, ...)",
        &|m| Some(m.rc as f64),
    );
    each(
        "mailha_probe_duration_seconds",
        "How long the resource's latest recorded monitor took on the node (Pacemaker records a recurring monitor when its result changes)",
        &|m| m.exec_ms.map(|ms| ms as f64 / 1000.0),
    );
    each(
        "mailha_probe_last_change_timestamp_seconds",
        "When the result of the resource's monitor on the node last changed (unix time, crm_mon's local time read as UTC)",
        &|m| {
            m.last_rc_change
                .as_deref()
                .and_then(parse_ctime)
                .map(|t| t as f64)
        },
    );
}

fn failover(out: &mut Out, f: Option<&LastFailover>) {
    let Some(f) = f else { return };
    out.gauge(
        "mailha_last_failover_timestamp_seconds",
        "When the last failover began (unix time): an incident with a cause in which the VIP started again",
        f.start_unix,
    );
    if let Some(s) = f.seconds {
        out.gauge(
            "mailha_last_failover_duration_seconds",
            "How long the last failover took, from its cause to the last start on the node the mail went to",
            s,
        );
    }
    out.gauge_with(
        "mailha_last_failover_info",
        "The last failover's cause (resource_failure, fencing, node_lost) and where the mail ran after it; always 1",
        &[("cause", f.cause), ("node", &f.mail_on)],
        1.0,
    );
}

fn lease(out: &mut Out, k: &Result<Keeper, String>) {
    out.gauge(
        "mailha_lease_keeper_up",
        "1 if this node's lease keeper answered on its socket",
        bit(k.is_ok()),
    );
    let Ok(k) = k else { return };
    out.family(
        "mailha_lease_info",
        "gauge",
        "The keeper's node, its peer, the lease device and what follows an acked fence; always 1",
    );
    out.sample(
        "mailha_lease_info",
        &[
            ("node", &k.node),
            ("peer", &k.peer),
            ("device", &k.device),
            ("reset", &k.reset),
        ],
        1.0,
    );
    out.family(
        "mailha_lease_role",
        "gauge",
        "The keeper's role; 1 for the current one",
    );
    for r in LEASE_ROLES {
        out.sample("mailha_lease_role", &[("role", r)], bit(k.role == r));
    }
    out.family(
        "mailha_lease_holder",
        "gauge",
        "The node holding the data lease as this keeper sees it (1); absent when none does",
    );
    if k.holds {
        out.sample("mailha_lease_holder", &[("node", &k.node)], 1.0);
    }
    if k.peer_holding {
        out.sample("mailha_lease_holder", &[("node", &k.peer)], 1.0);
    }
    out.gauge(
        "mailha_lease_holds",
        "1 if this node holds the data lease (the data may be mounted here)",
        bit(k.holds),
    );
    out.gauge(
        "mailha_lease_self_fenced",
        "1 if the keeper fenced this node itself: no takeover until it is restarted",
        bit(k.self_fenced.is_some()),
    );
    out.gauge(
        "mailha_lease_peer_dead",
        "1 if the peer's slot stood still for host_dead",
        bit(k.peer_dead),
    );
    out.gauge(
        "mailha_lease_fence_pending",
        "1 while a fence request of ours waits for the peer",
        bit(k.fence_pending.is_some()),
    );
    out.family(
        "mailha_lease_slot_writes_total",
        "counter",
        "The counter in this node's lease slot: one more per write (renewals), kept across restarts",
    );
    out.sample("mailha_lease_slot_writes_total", &[], k.counter as f64);
    if let Some(h) = &k.renewal_latency
        && let Some(buckets) = h.cumulative()
    {
        let name = "mailha_lease_renewal_duration_seconds";
        out.family(
            name,
            "histogram",
            "How long this keeper's lease writes that landed took (the check read and the write), since it started",
        );
        for (le, n) in buckets {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            out.sample(&format!("{name}_bucket"), &[("le", &le)], n as f64);
        }
        out.sample(&format!("{name}_sum"), &[], h.sum_s);
        out.sample(&format!("{name}_count"), &[], h.count as f64);
    }
    out.family(
        "mailha_lease_write_failures_total",
        "counter",
        "Lease writes of this keeper that failed since it started",
    );
    out.sample(
        "mailha_lease_write_failures_total",
        &[],
        k.write_failures as f64,
    );
    if let Some(ms) = k.renewal_age_ms {
        out.gauge(
            "mailha_lease_renewal_age_seconds",
            "Seconds since this node's last lease write landed",
            ms as f64 / 1000.0,
        );
    }
    out.gauge(
        "mailha_lease_io_stalled_seconds",
        "How long the lease I/O in progress has run (0: none)",
        k.io_stalled_ms.unwrap_or(0) as f64 / 1000.0,
    );
    if let Some(ms) = k.peer_unchanged_ms {
        out.gauge(
            "mailha_lease_peer_unchanged_seconds",
            "Seconds since the peer's slot last changed, as this keeper read it",
            ms as f64 / 1000.0,
        );
    }
    out.gauge(
        "mailha_lease_renew_interval_seconds",
        "How often a live keeper writes its slot",
        k.renew_ms as f64 / 1000.0,
    );
    out.gauge(
        "mailha_lease_host_dead_seconds",
        "How long a peer's slot must stand still before it counts as dead",
        k.host_dead_ms as f64 / 1000.0,
    );
}

fn spool(out: &mut Out, s: Option<&SpoolDepth>) {
    out.gauge(
        "mailha_alert_spool_up",
        "1 if the alert spool could be read",
        bit(s.is_some()),
    );
    let Some(s) = s else { return };
    out.gauge(
        "mailha_alert_spool_pending_events",
        "Alert events recorded and not yet taken by the sender",
        s.pending as f64,
    );
    out.gauge(
        "mailha_alert_spool_outbox_incidents",
        "Incidents taken by the sender and not yet delivered on every channel",
        s.outbox as f64,
    );
    if let Some(a) = s.oldest_pending_age_s {
        out.gauge(
            "mailha_alert_spool_oldest_pending_age_seconds",
            "Age of the oldest event waiting for the sender (a stuck spool grows it)",
            a,
        );
    }
    if let Some(a) = s.oldest_outbox_age_s {
        out.gauge(
            "mailha_alert_spool_oldest_outbox_age_seconds",
            "Age of the oldest incident not yet delivered on every channel (a failing channel grows it)",
            a,
        );
    }
}

/// crm_mon's `last_change time` (C's asctime form, `Sat Dec  5 20:17:41
/// 2026`) as unix seconds, read as UTC as ha_cluster_exporter reads it
/// (Pacemaker writes the node's local time; cluster nodes mostly run UTC).
pub fn parse_ctime(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, mon, day, hms, year] = f.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = t.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&d) || *h > 23 || *mi > 59 || *se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}
