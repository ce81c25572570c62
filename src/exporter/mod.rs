//! `mailha exporter`: Prometheus metrics of the cluster and of mailha,
//! read-only. `metrics` renders an observation (pure); `Collector` makes
//! one per scrape (crm_mon under a deadline: the one process a scrape
//! spawns; the keeper's socket; a listing of the alert spool); `server`
//! is the bounded HTTP front.

pub mod metrics;
pub mod page;
pub mod server;
pub mod tls;

use crate::alert::spool::{self, Failed, Spool};
use crate::ops::history::{self, Entry, Kind};
use metrics::{LastFailover, Observed, SendFailures, SpoolDepth};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The systemd unit the package ships (`install::plan`); the package
/// enables and starts nothing: `systemctl enable --now mailha-exporter`.
pub const UNIT_PATH: &str = "/usr/lib/systemd/system/mailha-exporter.service";

/// Root, sandboxed: the lease keeper answers root only (SO_PEERCRED: a
/// squatter on its abstract name must not be believed, and the keeper
/// does not tell a reader from a writer), and the alert spool's
/// `pending/` is hacluster's 0700. crm_mon alone would work for group
/// haclient. Pacemaker's IPC (libqb: abstract sockets, /dev/shm) needs
/// the host's network namespace and /dev, so neither is made private.
///
/// `Restart=always`, as ClusterLabs' ha_cluster_exporter's unit has: a
/// read-only reporter comes back whatever ended it, short of `systemctl
/// stop`. `on-failure` restarts nothing after an end by SIGTERM or
/// SIGPIPE, which systemd counts as clean: the lab saw one exporter end
/// so and stay down through the failover it was to report (its cause, a
/// scraper gone before a late answer, is fixed in `cli::exporter`).
pub const UNIT: &str = "[Unit]
Description=mailha exporter: Prometheus metrics of the cluster and of mailha (read-only)
Documentation=man:mailha-exporter(8) file:/usr/share/doc/mailha/config.md
After=network.target pacemaker.service mailha-lease.service

[Service]
Type=simple
ExecStart=/usr/sbin/mailha exporter
Restart=always
RestartSec=5s
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictRealtime=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=multi-user.target
";

/// The keeper answers from memory; a keeper slower than this is itself
/// the news (`mailha_lease_keeper_up 0`).
const KEEPER_DEADLINE: Duration = Duration::from_secs(1);

/// Where a scrape looks.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The program run as crm_mon (argv[0]; found through PATH).
    pub crm_mon: String,
    pub crm_mon_deadline: Duration,
    /// The keeper's abstract socket, when the config fences by lease.
    pub keeper_socket: Option<String>,
    pub spool: PathBuf,
    /// This node's mailha.toml and Pacemaker's on-disk CIB, for drift;
    /// None: not reported.
    pub drift: Option<DriftSources>,
}

/// Where drift is read from: files only, no process. Pacemaker writes its
/// CIB to disk shortly after each change, so an apply shows within
/// seconds.
#[derive(Debug, Clone)]
pub struct DriftSources {
    pub config: PathBuf,
    pub cib_file: PathBuf,
}

#[derive(Default)]
struct Memory {
    last_success: Option<Instant>,
    /// When the last crm_mon run ended, and what it gave.
    last: Option<(Instant, Observed)>,
    /// The last observation in which crm_mon answered: what the status
    /// page shows, marked stale, while it does not.
    last_good: Option<Observed>,
    scrapes: u64,
    failures: u64,
    /// The config file's (mtime, length) and the digest of what it
    /// renders (None: it does not load): rendered again only when the
    /// file changes.
    local_digest: Option<((SystemTime, u64), Option<String>)>,
    /// The spool's `sent/`, each incident read once (it never changes
    /// there).
    sent: Sent,
    /// The last failover and what it was computed from (crm_mon's
    /// entries, the undelivered events', `sent/`'s generation): the same
    /// inputs give it without grouping the whole history again.
    failover: Option<(FailoverInputs, Option<LastFailover>)>,
}

type FailoverInputs = (Vec<Entry>, Vec<Entry>, u64);

/// One incident of `sent/`: its events as history entries, the channels
/// that delivered it, their failed attempts before, and whether it was
/// kept back as a repeat (mailed by no channel).
type SentIncident = (Vec<Entry>, Vec<String>, BTreeMap<String, Failed>, bool);

/// The incidents of the spool's `sent/`.
#[derive(Default)]
struct Sent {
    incidents: BTreeMap<String, SentIncident>,
    /// One more each time the set of incidents changes.
    generation: u64,
}

/// Makes observations. Scrapes that arrive while crm_mon runs wait for
/// that run and share its answer: however many scrapers, at most one
/// crm_mon at a time, and a scrape spawns at most one.
pub struct Collector {
    sources: Sources,
    memory: Mutex<Memory>,
}

impl Collector {
    pub fn new(sources: Sources) -> Collector {
        Collector {
            sources,
            memory: Mutex::new(Memory::default()),
        }
    }

    pub fn observe(&self) -> Observed {
        let asked = Instant::now();
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        m.scrapes += 1;
        let shared = m
            .last
            .as_ref()
            .filter(|(ended, _)| *ended >= asked)
            .map(|(_, o)| o.clone());
        let mut o = match shared {
            Some(o) => o,
            None => {
                let mut o = self.look(&mut m);
                if let Some(d) = &self.sources.drift {
                    let cib = on_disk_cib(&d.cib_file);
                    o.config_drift = cib.as_ref().and_then(|c| drift(d, c, &mut m));
                    o.cib = cib.as_ref().map(metrics::CibView::of);
                }
                let now = Instant::now();
                if o.cluster.is_some() {
                    m.last_success = Some(now);
                    m.last_good = Some(o.clone());
                } else {
                    m.failures += 1;
                }
                m.last = Some((now, o.clone()));
                o
            }
        };
        o.scrapes_total = m.scrapes;
        o.scrape_failures_total = m.failures;
        o.last_success_age_s = m.last_success.map(|t| t.elapsed().as_secs_f64());
        o
    }

    fn look(&self, m: &mut Memory) -> Observed {
        let s = &self.sources;
        let started = Instant::now();
        let out = crate::exec::run(
            &[
                s.crm_mon.as_str(),
                "--one-shot",
                "--output-as=xml",
                "--include=all",
            ],
            &[],
            None,
            s.crm_mon_deadline,
        );
        let mut crm_history = Vec::new();
        let cluster = match out {
            Ok(o) if !o.stdout.trim().is_empty() => match crate::status::parse(&o.stdout) {
                Ok(st) => {
                    crm_history = history::from_crm_mon(&o.stdout).unwrap_or_default();
                    Some(st)
                }
                Err(e) => {
                    eprintln!("mailha exporter: {e}");
                    None
                }
            },
            Ok(o) => {
                eprintln!(
                    "mailha exporter: crm_mon failed ({:?}): {}",
                    o.code,
                    o.stderr.trim()
                );
                None
            }
            Err(e) => {
                eprintln!("mailha exporter: {e}");
                None
            }
        };
        let duration_s = started.elapsed().as_secs_f64();
        let last_change_unix = cluster
            .as_ref()
            .and_then(|st| st.last_change.as_deref())
            .and_then(metrics::parse_ctime);
        let records = spool_records(&s.spool, &mut m.sent);
        let last_failover = cluster.as_ref().and_then(|_| {
            let fresh = records
                .as_ref()
                .map(|r| r.fresh.clone())
                .unwrap_or_default();
            let inputs = (crm_history.clone(), fresh, m.sent.generation);
            match &m.failover {
                Some((seen, f)) if *seen == inputs => f.clone(),
                _ => {
                    let mut spool = inputs.1.clone();
                    spool.extend(
                        m.sent
                            .incidents
                            .values()
                            .flat_map(|(e, _, _, _)| e.iter().cloned()),
                    );
                    let f = last_failover(inputs.0.clone(), spool);
                    m.failover = Some((inputs, f.clone()));
                    f
                }
            }
        });
        Observed {
            cluster,
            keeper: s
                .keeper_socket
                .as_deref()
                .map(|sock| crate::lease::client::status(sock, KEEPER_DEADLINE)),
            spool: spool_depth(&s.spool, SystemTime::now()),
            duration_s,
            last_change_unix,
            crm_history: crm_history.into(),
            alert_send_failures: records.as_ref().map(|r| r.failed.clone()),
            alert_quieted: records.as_ref().map(|r| r.quieted),
            alert_delivered: records.map(|r| r.delivered),
            last_failover,
            ..Observed::default()
        }
    }

    /// The status page in `language`: this request's observation (shared
    /// with any scrape in flight, so no crm_mon of its own), the last
    /// answered one when crm_mon failed, and the last 24 hours from
    /// crm_mon's histories and this node's alert spool.
    pub fn page(&self, language: crate::config::model::Language, host: &str) -> String {
        let o = self.observe();
        let last_good = match o.cluster {
            Some(_) => None,
            None => self
                .memory
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_good
                .clone(),
        };
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let since = now_ms.saturating_sub(DAY.as_millis() as u64);
        let pcmk = last_good.as_ref().unwrap_or(&o).crm_history.to_vec();
        let events = crate::alert::spool::Spool::events_since(&self.sources.spool, since);
        let entries = history::merge(pcmk, history::from_events(&events), since);
        let incidents = history::incidents(&entries, history::GAP);
        page::render(&page::Page {
            observed: &o,
            last_good: last_good.as_ref(),
            incidents: &incidents,
            language,
            now_ms,
            host,
        })
    }
}

/// How far back the status page looks.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// What the spool says beyond its depth.
struct Records {
    /// The undelivered events (`pending/`, `outbox/`) as history entries.
    fresh: Vec<Entry>,
    /// Incidents each channel delivered.
    delivered: BTreeMap<String, u64>,
    /// Failed attempts per channel.
    failed: BTreeMap<String, SendFailures>,
    /// Incidents kept back as repeats (`alert::repeat`), mailed by none.
    quieted: u64,
}

/// The spool's events as history entries and the incidents each channel
/// delivered; None when the spool cannot be read. Only `pending/` and
/// `outbox/` are read each time: they hold what is not delivered yet.
fn spool_records(root: &Path, sent: &mut Sent) -> Option<Records> {
    let list = |d: &Path| -> Option<BTreeSet<String>> {
        Some(
            std::fs::read_dir(d)
                .ok()?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
        )
    };
    // outbox/ before sent/: an incident only ever moves from the one to
    // the other, so one that moves in between is in both listings and is
    // counted once, from sent/. A counter that dipped or doubled for one
    // scrape would look like a reset to `increase()` and page.
    let outbox = list(&root.join("outbox"))?;
    let now_sent = list(&root.join("sent"))?;
    let before = sent.incidents.len();
    sent.incidents.retain(|id, _| now_sent.contains(id));
    let mut changed = sent.incidents.len() != before;
    for id in now_sent {
        if let std::collections::btree_map::Entry::Vacant(v) = sent.incidents.entry(id) {
            let dir = root.join("sent").join(v.key());
            let (events, done) = Spool::read_incident(&dir);
            let failed = Spool::read_failures(&dir);
            let quieted = Spool::is_quieted(&dir);
            v.insert((history::from_events(&events), done, failed, quieted));
            changed = true;
        }
    }
    if changed {
        sent.generation += 1;
    }
    let (mut events, _) = Spool::read_incident(&root.join("pending"));
    let mut delivered: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures: BTreeMap<String, SendFailures> = BTreeMap::new();
    // The records are ours (a root-only spool); still, a label value
    // stays a channel's short name.
    let mut count = |done: &[String], failed: &BTreeMap<String, Failed>| {
        for ch in done.iter().filter(|c| spool::channel_name_ok(c)) {
            *delivered.entry(ch.clone()).or_default() += 1;
        }
        for (ch, f) in failed.iter().filter(|(c, _)| spool::channel_name_ok(c)) {
            let n = failures.entry(ch.clone()).or_default();
            n.attempts += f.attempts;
            n.last_unix = n.last_unix.max(f.last_ms as f64 / 1000.0);
        }
    };
    for id in outbox {
        if sent.incidents.contains_key(&id) {
            continue;
        }
        let dir = root.join("outbox").join(&id);
        let (ev, done) = Spool::read_incident(&dir);
        let failed = Spool::read_failures(&dir);
        if dir.is_dir() {
            events.extend(ev);
            count(&done, &failed);
            continue;
        }
        // Delivered and moved to sent/ while being read (the rename is
        // atomic: what was read may be partial, sent/ has it whole).
        let dir = root.join("sent").join(&id);
        if dir.is_dir() {
            let (ev, done) = Spool::read_incident(&dir);
            let failed = Spool::read_failures(&dir);
            let quieted = Spool::is_quieted(&dir);
            sent.incidents
                .insert(id, (history::from_events(&ev), done, failed, quieted));
            sent.generation += 1;
        }
    }
    for (_, done, failed, _) in sent.incidents.values() {
        count(done, failed);
    }
    // A repeat is marked quieted before it moves to sent/, so only sent/
    // holds finished ones: an outbox incident is not decided yet.
    let quieted = sent
        .incidents
        .values()
        .filter(|(_, _, _, quieted)| *quieted)
        .count() as u64;
    Some(Records {
        fresh: history::from_events(&events),
        delivered,
        failed: failures,
        quieted,
    })
}

/// The last failover in crm_mon's history and the spool's events (as
/// history entries), as `mailha history` groups them: the latest
/// incident with a cause in which the VIP started.
pub fn last_failover(crm_mon: Vec<Entry>, spool: Vec<Entry>) -> Option<LastFailover> {
    let all = history::merge(crm_mon, spool, 0);
    history::incidents(&all, history::GAP)
        .into_iter()
        .rev()
        .find_map(|i| {
            let mail_on = i.mail_on?;
            let mut vip_starts = i
                .entries
                .iter()
                .filter(|e| {
                    e.kind == Kind::Started && e.resource.as_deref() == Some(crate::cib::VIP_ID)
                })
                .map(|e| e.at_ms);
            let vip_up = vip_starts.next_back()?;
            // An incident is whatever came without a 30 s pause: a boot,
            // a switchover and a power cut may all be one. This failover
            // is what moved the VIP the last time, so its cause came
            // after the VIP's start before (the mail was up then).
            let after = vip_starts.next_back();
            // A resource that failed after the VIP's last start did not
            // move the mail (a rebooted node's first probes, say). A loss
            // or fence may show only after it: the rebooted node learns
            // its own fence from the fencer's history, stamped late.
            let (at, cause) = i
                .entries
                .iter()
                .filter(|e| e.is_cause() && after.is_none_or(|a| e.at_ms > a))
                .find_map(|e| match e.kind {
                    Kind::Failure if e.at_ms <= vip_up => Some((e.at_ms, "resource_failure")),
                    Kind::Fence => Some((e.at_ms, "fencing")),
                    Kind::Node => Some((e.at_ms, "node_lost")),
                    Kind::Failure | Kind::Started | Kind::Stopped => None,
                })?;
            // Up to the last start on the node the mail went to: the
            // incident itself goes on while the lost node boots and
            // rejoins (tens of seconds of its own events), which is no
            // part of the mail's outage.
            let done = i
                .entries
                .iter()
                .filter(|e| e.kind == Kind::Started && e.node.as_deref() == Some(mail_on.as_str()))
                .map(|e| e.at_ms)
                .max()
                .unwrap_or(i.end_ms);
            Some(LastFailover {
                start_unix: at as f64 / 1000.0,
                seconds: (done > at).then(|| (done - at) as f64 / 1000.0),
                cause,
                mail_on,
            })
        })
}

/// Whether this node's mailha.toml renders other than what `mailha
/// apply` stored in the CIB (`mailha status`'s drift); None when either
/// side cannot be read.
fn drift(d: &DriftSources, cib: &crate::cib::xml::El, m: &mut Memory) -> Option<bool> {
    let meta = std::fs::metadata(&d.config).ok()?;
    let key = (meta.modified().ok()?, meta.len());
    if m.local_digest.as_ref().map(|(k, _)| *k) != Some(key) {
        let local = crate::config::load(&d.config)
            .ok()
            .map(|l| crate::cib::digest(&crate::cib::render(&l.config)));
        m.local_digest = Some((key, local));
    }
    let local = m.local_digest.as_ref()?.1.clone()?;
    Some(crate::cluster::stored_digest(cib).as_deref() != Some(local.as_str()))
}

/// Pacemaker's on-disk CIB, read as a file (no process); None when it
/// cannot be read.
fn on_disk_cib(path: &Path) -> Option<crate::cib::xml::El> {
    crate::cib::xml::El::parse(&std::fs::read_to_string(path).ok()?).ok()
}

/// The basic-auth password in `[exporter] password_file`'s text: its
/// first line (a trailing newline is no part of it).
pub fn password_of(text: &str) -> Option<&str> {
    text.lines().next().filter(|p| !p.is_empty())
}

/// The spool's depth from its listing alone: an event's id starts with
/// its time in microseconds (`alert::spool`), so no event is opened.
pub fn spool_depth(root: &Path, now: SystemTime) -> Option<SpoolDepth> {
    let pending: Vec<String> = std::fs::read_dir(root.join("pending"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let outbox: Vec<String> = std::fs::read_dir(root.join("outbox"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let now_us = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_micros() as f64;
    let oldest = |names: &[String]| {
        names
            .iter()
            .filter_map(|n| n.get(..17)?.parse::<u64>().ok())
            .min()
            .map(|us| ((now_us - us as f64) / 1e6).max(0.0))
    };
    Some(SpoolDepth {
        pending: pending.len() as u64,
        outbox: outbox.len() as u64,
        oldest_pending_age_s: oldest(&pending),
        oldest_outbox_age_s: oldest(&outbox),
    })
}

#[cfg(test)]
mod tests;
