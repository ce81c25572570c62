//! The generated CIB `<configuration>` (DESIGN section 5).
//!
//! The resource chain is lease -> storage mounts -> VIP -> services, each
//! link a mandatory order plus an INFINITY colocation, so nothing mounts
//! without the lease and a restart of a service restarts its dependents in
//! order. Ids follow pcs (`{parent}-{suffix}`,
//! `order-{first}-{then}-mandatory`, `colocation-{rsc}-{with}-INFINITY`)
//! and the output is a pure function of the config: same input, same
//! bytes.

pub mod maintenance;
pub mod xml;

use crate::config::*;
use std::time::Duration;
use xml::El;

/// The schema the generated document declares (Pacemaker 2.1.5 ships up
/// to 3.9).
pub const VALIDATE_WITH: &str = "pacemaker-3.9";
/// Where the agents and the alert agent are installed (symlinks to the
/// mailha binary).
pub const ALERT_AGENT_PATH: &str = "/usr/lib/mailha/alert_mailha";

pub const LEASE_ID: &str = "lease";
pub const VIP_ID: &str = "vip";
pub const PING_ID: &str = "ping";
/// How long a node that reached no ping target stays out (its failed ping
/// instance is forgotten and retried after this). Short: a node whose
/// network is back must be a standby again at once (a soak's daemon
/// failure waited 21 s under 60 s); a retry while the network is still
/// gone costs one 1.2 s check and never moves the mail.
pub const PING_FAILURE_TIMEOUT: &str = "10s";

/// The ping primitive's meta attributes. A node whose network came back
/// is eligible again within about 12 s: its failed ping start is
/// forgotten then (the scheduler sets a recheck for the expiry) and tried
/// again, not after the services' failure_timeout. With one failed check
/// to move (`network.failed_checks = 1`), the failed monitor bans the
/// instance from the node at once (`migration-threshold=1`): the mail
/// moves in that same transition, instead of after a restart whose start
/// checks once more (about 1.5 s later).
fn ping_meta(failed_checks: u32) -> Vec<(&'static str, String)> {
    let mut meta = vec![("failure-timeout", PING_FAILURE_TIMEOUT.into())];
    if failed_checks == 1 {
        meta.push(("migration-threshold", "1".into()));
    }
    meta
}

pub fn mount_id(m: &Mount) -> String {
    format!("fs-{}", m.name)
}
pub fn service_id(s: &Service) -> String {
    format!("svc-{}", s.name)
}
/// The id constraints refer to: the clone for cloned services.
pub fn service_ref(s: &Service) -> String {
    if s.clone {
        format!("svc-{}-clone", s.name)
    } else {
        service_id(s)
    }
}

/// Pacemaker durations are written in whole seconds where possible, else
/// milliseconds, so ids stay readable (`vip-monitor-interval-10s`).
pub fn dur(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn nvpair(parent: &str, name: &str, value: impl Into<String>) -> El {
    El::new("nvpair")
        .attr("id", format!("{parent}-{name}"))
        .attr("name", name)
        .attr("value", value)
}

fn instance_attrs(rsc: &str, pairs: Vec<(&str, String)>) -> Option<El> {
    if pairs.is_empty() {
        return None;
    }
    let id = format!("{rsc}-instance_attributes");
    Some(
        El::new("instance_attributes")
            .attr("id", id.clone())
            .children(pairs.into_iter().map(|(k, v)| nvpair(&id, k, v))),
    )
}

fn meta_attrs(rsc: &str, pairs: Vec<(&str, String)>) -> Option<El> {
    if pairs.is_empty() {
        return None;
    }
    let id = format!("{rsc}-meta_attributes");
    Some(
        El::new("meta_attributes")
            .attr("id", id.clone())
            .children(pairs.into_iter().map(|(k, v)| nvpair(&id, k, v))),
    )
}

fn op(rsc: &str, name: &str, interval: Duration, timeout: Duration) -> El {
    let iv = if interval.is_zero() {
        "0s".to_string()
    } else {
        dur(interval)
    };
    El::new("op")
        .attr("id", format!("{rsc}-{name}-interval-{iv}"))
        .attr("name", name)
        .attr("interval", iv)
        .attr("timeout", dur(timeout))
}

pub(crate) fn operations(rsc: &str, p: &Policy, monitor: Duration) -> El {
    El::new("operations")
        .attr("id", format!("{rsc}-operations"))
        .child(op(rsc, "start", Duration::ZERO, p.start_timeout))
        .child(op(rsc, "stop", Duration::ZERO, p.stop_timeout))
        .child(op(rsc, "monitor", monitor, p.monitor_timeout))
}

/// A mount's operations: the monitor runs at depth 20 (a marker written,
/// synced and read back in a child with a deadline): measured in the lab,
/// a disk that returns EIO or hangs leaves the mount in mountinfo, so a
/// depth-0 monitor never notices a dead data path.
fn storage_operations(rsc: &str, p: &Policy, monitor: Duration) -> El {
    let iv = dur(monitor);
    let attrs_id = format!("{rsc}-monitor-interval-{iv}-instance_attributes");
    let check = El::new("instance_attributes").attr("id", &attrs_id).child(
        El::new("nvpair")
            .attr("id", format!("{attrs_id}-OCF_CHECK_LEVEL"))
            .attr("name", "OCF_CHECK_LEVEL")
            .attr("value", "20"),
    );
    El::new("operations")
        .attr("id", format!("{rsc}-operations"))
        .child(op(rsc, "start", Duration::ZERO, p.start_timeout))
        .child(op(rsc, "stop", Duration::ZERO, p.stop_timeout))
        .child(op(rsc, "monitor", monitor, p.monitor_timeout).child(check))
}

pub(crate) fn primitive(
    id: &str,
    class: &str,
    provider: Option<&str>,
    kind: &str,
    params: Vec<(&str, String)>,
    meta: Vec<(&str, String)>,
    ops: El,
) -> El {
    let mut e = El::new("primitive").attr("id", id).attr("class", class);
    if let Some(p) = provider {
        e = e.attr("provider", p);
    }
    e = e.attr("type", kind);
    if let Some(ia) = instance_attrs(id, params) {
        e = e.child(ia);
    }
    if let Some(ma) = meta_attrs(id, meta) {
        e = e.child(ma);
    }
    e.child(ops)
}

fn json_argv(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

fn lease_params(l: &Lease, cfg: &Config) -> Vec<(&'static str, String)> {
    let mut v = match &l.target {
        LeaseTarget::Block(d) => vec![("device", d.spec())],
        LeaseTarget::NfsFile {
            export,
            file,
            options,
        } => {
            let mut v = vec![("nfs", export.spec()), ("file", file.clone())];
            if !options.is_empty() {
                v.push(("options", options.join(",")));
            }
            v
        }
    };
    v.push(("cluster", cfg.cluster.name.clone()));
    v.push(("io_timeout", dur(l.io_timeout)));
    v
}

fn mount_params(m: &Mount, lease: bool, stale_locks: &[&str]) -> Vec<(&'static str, String)> {
    let mut v = match &m.source {
        MountSource::Block { device, fstype } => {
            vec![("device", device.spec()), ("fstype", fstype.clone())]
        }
        MountSource::Nfs(n) => vec![("nfs", n.spec()), ("fstype", "nfs".to_string())],
    };
    v.push(("directory", m.mount_point.display().to_string()));
    if !m.options.is_empty() {
        v.push(("options", m.options.join(",")));
    }
    if lease {
        // The agent checks the lease itself before it mounts, and uses it
        // to skip a stale MMP wait (agents::storage::mmp).
        v.push((
            "lease_socket",
            crate::lease::client::DEFAULT_SOCKET.to_string(),
        ));
        // Only under the lease: holding it is what proves that no process
        // of the peer can still own those locks (docs/lease.md).
        if !stale_locks.is_empty() {
            v.push(("stale_locks", stale_locks.join(" ")));
        }
    }
    v
}

/// Every service's `stale_locks`, each name once, sorted.
fn stale_locks(cfg: &Config) -> Vec<&str> {
    let names: std::collections::BTreeSet<&str> = cfg
        .services
        .list
        .iter()
        .flat_map(|s| s.stale_locks.iter().map(String::as_str))
        .collect();
    names.into_iter().collect()
}

fn service_params(s: &Service) -> Vec<(&str, String)> {
    if s.agent != Agent::Mailha {
        return s
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
    }
    let mut v: Vec<(&str, String)> = vec![("name", s.name.clone())];
    if let Some(u) = &s.unit {
        v.push(("unit", u.clone()));
    }
    if !s.start.is_empty() {
        v.push(("start", json_argv(&s.start)));
    }
    if !s.stop.is_empty() {
        v.push(("stop", json_argv(&s.stop)));
    }
    if let Some(p) = &s.pid_file {
        v.push(("pid_file", p.display().to_string()));
    }
    if let Some(e) = &s.executable {
        v.push(("executable", e.display().to_string()));
    }
    if let Some(p) = &s.probe {
        v.push(("probe", p.kind.name().to_string()));
        match &p.target {
            ProbeTarget::Tcp { host, port } => {
                v.push(("probe_host", host.clone()));
                v.push(("probe_port", port.to_string()));
            }
            ProbeTarget::Unix(path) => v.push(("probe_socket", path.display().to_string())),
            ProbeTarget::None => {}
        }
        match &p.kind {
            ProbeKind::Http { path, expect } => {
                v.push(("probe_path", path.clone()));
                v.push(("probe_expect", expect.to_string()));
            }
            ProbeKind::Command { argv } => v.push(("probe_argv", json_argv(argv))),
            _ => {}
        }
        v.push(("probe_timeout", dur(p.timeout)));
    }
    v.push(("watch", if s.watch { "true" } else { "false" }.to_string()));
    v.push(("start_stall", dur(s.start_stall)));
    for (k, val) in &s.params {
        v.push((k.as_str(), val.clone()));
    }
    v
}

fn service_rsc(s: &Service, p: &Policy) -> El {
    let id = service_id(s);
    let (class, provider, kind) = match &s.agent {
        Agent::Mailha => (
            "ocf".to_string(),
            Some("mailha".to_string()),
            "service".to_string(),
        ),
        Agent::Other {
            class,
            provider,
            kind,
        } => (class.clone(), provider.clone(), kind.clone()),
    };
    let prim = primitive(
        &id,
        &class,
        provider.as_deref(),
        &kind,
        service_params(s),
        vec![],
        operations(&id, p, s.monitor_interval),
    );
    if s.clone {
        let cid = service_ref(s);
        El::new("clone")
            .attr("id", cid.clone())
            .children(meta_attrs(&cid, vec![("interleave", "true".into())]))
            .child(prim)
    } else {
        prim
    }
}

fn order(first: &str, then: &str) -> El {
    El::new("rsc_order")
        .attr("id", format!("order-{first}-{then}-mandatory"))
        .attr("first", first)
        .attr("first-action", "start")
        .attr("then", then)
        .attr("then-action", "start")
        .attr("kind", "Mandatory")
}

fn colocation(rsc: &str, with: &str) -> El {
    El::new("rsc_colocation")
        .attr("id", format!("colocation-{rsc}-{with}-INFINITY"))
        .attr("rsc", rsc)
        .attr("with-rsc", with)
        .attr("score", "INFINITY")
}

/// Everything a resource needs to have started before it, and to run with.
fn chain(first: &str, then: &str, out: &mut Vec<El>) {
    out.push(order(first, then));
    out.push(colocation(then, first));
}

fn fencing_resources(cfg: &Config) -> Vec<El> {
    let p = &cfg.policy;
    match cfg.fencing.mode {
        FencingMode::None => vec![],
        FencingMode::Lease => {
            let Some(lease) = &cfg.storage.lease else {
                return vec![];
            };
            cfg.cluster
                .nodes
                .iter()
                .map(|n| {
                    let id = format!("fence-{}", n.name);
                    let mut params = vec![
                        ("pcmk_host_list", n.name.clone()),
                        ("holder_delay", dur(cfg.fencing.priority_fencing_delay)),
                    ];
                    params.extend(lease_params(lease, cfg));
                    primitive(
                        &id,
                        "stonith",
                        None,
                        "fence_mailha",
                        params,
                        vec![],
                        El::new("operations")
                            .attr("id", format!("{id}-operations"))
                            .child(op(
                                &id,
                                "monitor",
                                Duration::from_secs(60),
                                p.monitor_timeout,
                            )),
                    )
                })
                .collect()
        }
        FencingMode::Sbd => {
            let dev = match cfg.storage.lease.as_ref().map(|l| &l.target) {
                Some(LeaseTarget::Block(d)) => d.spec(),
                _ => return vec![],
            };
            let id = "fence-sbd";
            vec![primitive(
                id,
                "stonith",
                None,
                "fence_sbd",
                vec![("devices", dev)],
                vec![],
                El::new("operations")
                    .attr("id", format!("{id}-operations"))
                    .child(op(
                        id,
                        "monitor",
                        Duration::from_secs(60),
                        p.monitor_timeout,
                    )),
            )]
        }
    }
}

/// The `<configuration>` element.
pub fn render(cfg: &Config) -> El {
    let p = &cfg.policy;
    let fencing_on = cfg.fencing.mode != FencingMode::None;

    let props = "cib-bootstrap-options";
    let mut crm = vec![
        nvpair(props, "cluster-name", cfg.cluster.name.clone()),
        nvpair(props, "stonith-enabled", fencing_on.to_string()),
        nvpair(props, "no-quorum-policy", "stop"),
        // failure-timeout expiry is only noticed at a recheck.
        nvpair(props, "cluster-recheck-interval", "1min"),
        // No load-based throttling: when any node's load average is
        // "high", Pacemaker lets the whole cluster run one action at a
        // time (batch limit nodes/2 = 1), so a busy mail node would stop
        // and start its daemons one by one exactly when the mail is down
        // (seen in the lab: memcached and MariaDB, then Dovecot and
        // Postfix, started in series). 0% turns the CPU-load part off;
        // the CIB daemon's own CPU check stays.
        nvpair(props, "load-threshold", "0%"),
    ];
    if fencing_on && cfg.fencing.mode != FencingMode::Lease {
        // The node that runs the mail (whose resources carry priority)
        // waits this long before being fenced, so it wins a fence race.
        // Under the lease, fence_mailha holds the request back itself
        // (`holder_delay`), and only while the target still renews: a dead
        // node is fenced without the delay (fence::hold).
        crm.push(nvpair(
            props,
            "priority-fencing-delay",
            dur(cfg.fencing.priority_fencing_delay),
        ));
    }
    if cfg.fencing.mode == FencingMode::Lease {
        // Startup fencing guards against an unseen node that might run
        // resources. Under the lease every resource needs the lease first,
        // and the lease is only granted when the peer holds nothing or is
        // dead by its counter: the lease is that guard. Fencing unseen
        // nodes instead makes two nodes that boot cut off from each other
        // (corosync's wait_for_all is off, see corosync::render) fence each
        // other at once, or one booting alone fence a healthy holder.
        crm.push(nvpair(props, "startup-fencing", "false"));
    }
    let crm_config = El::new("crm_config").child(
        El::new("cluster_property_set")
            .attr("id", props)
            .children(crm),
    );

    let nodes = El::new("nodes").children(cfg.cluster.nodes.iter().map(|n| {
        El::new("node")
            .attr("id", n.id.to_string())
            .attr("uname", n.name.clone())
    }));

    let mut resources = Vec::new();
    let mut constraints = Vec::new();

    resources.extend(fencing_resources(cfg));
    if fencing_on && cfg.fencing.mode == FencingMode::Lease {
        for n in &cfg.cluster.nodes {
            let id = format!("fence-{}", n.name);
            constraints.push(
                El::new("rsc_location")
                    .attr("id", format!("location-{id}-avoids-{}", n.name))
                    .attr("rsc", id)
                    .attr("node", n.name.clone())
                    .attr("score", "-INFINITY"),
            );
        }
    }

    // The chain's head: the lease, then the mounts, then the VIP.
    let mut heads: Vec<String> = Vec::new();
    if let Some(l) = &cfg.storage.lease {
        resources.push(primitive(
            LEASE_ID,
            "ocf",
            Some("mailha"),
            "lease",
            lease_params(l, cfg),
            vec![],
            operations(LEASE_ID, p, p.storage_monitor_interval),
        ));
        heads.push(LEASE_ID.to_string());
    }
    for m in &cfg.storage.mounts {
        let id = mount_id(m);
        resources.push(primitive(
            &id,
            "ocf",
            Some("mailha"),
            "storage",
            mount_params(m, cfg.storage.lease.is_some(), &stale_locks(cfg)),
            vec![],
            storage_operations(&id, p, p.storage_monitor_interval),
        ));
        if let Some(l) = &cfg.storage.lease.as_ref().map(|_| LEASE_ID) {
            chain(l, &id, &mut constraints);
        }
    }

    let mut vip_params = vec![
        ("ip", cfg.vip.address.to_string()),
        ("cidr_netmask", cfg.vip.prefix.to_string()),
        ("nic", cfg.vip.nic.clone()),
    ];
    if let Some(l) = &cfg.vip.label {
        vip_params.push(("iflabel", l.clone()));
    }
    resources.push(primitive(
        VIP_ID,
        "ocf",
        Some("heartbeat"),
        "IPaddr2",
        vip_params,
        vec![("priority", "10".into())],
        operations(VIP_ID, p, p.vip_monitor_interval),
    ));
    if cfg.storage.mounts.is_empty() {
        for h in &heads {
            chain(h, VIP_ID, &mut constraints);
        }
    } else {
        for m in &cfg.storage.mounts {
            chain(&mount_id(m), VIP_ID, &mut constraints);
        }
    }

    if !cfg.network.ping_targets.is_empty() {
        let host_list = cfg
            .network
            .ping_targets
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let ping = primitive(
            PING_ID,
            "ocf",
            Some("pacemaker"),
            "ping",
            vec![
                ("host_list", host_list),
                ("multiplier", "1000".into()),
                ("dampen", dur(cfg.network.dampen)),
                // One check: two echo requests 200 ms apart, then 1 s
                // for a late reply (`ping -c 2 -i 0.2 -W 1`): one lost
                // packet never fails it, a dead path fails it in 1.2 s
                // (the agent's default spacing of 1 s and a 2 s wait took
                // 3 s). The agent's timeout is whole seconds, 1 the least.
                ("timeout", "1".into()),
                ("attempts", "2".into()),
                ("options", "-i 0.2".into()),
                // fping takes other options (its -i is per target, in
                // ms): always the ping the numbers were measured with.
                ("use_fping", "0".into()),
                // No target reachable (score 0 < 1): the check itself
                // fails, start and monitor alike, so the instance cannot
                // run on a node without network, and the VIP, which runs
                // only with it, cannot either. The network verdict lives
                // in the resource's state, not in the pingd attribute: a
                // controller that restarts erases the node's transient
                // attributes, and Pacemaker 2.1.5's attrd does not write
                // an unchanged value back; a rule on the attribute then
                // banned the VIP from a healthy node for good (issue 19).
                // The resource's state is resent by the node's controller
                // whenever it joins. tests/network.rs runs the cases
                // through crm_simulate; docs/config.md says why.
                ("failure_score", "1".into()),
            ],
            ping_meta(cfg.network.failed_checks),
            operations(PING_ID, p, cfg.network.interval),
        );
        let cid = format!("{PING_ID}-clone");
        resources.push(El::new("clone").attr("id", cid.clone()).child(ping));
        // No network here -> the VIP (and so everything after it) must not
        // run here: the VIP runs only where the ping instance runs, and that
        // instance fails where no target answers. Ordered (optionally: a
        // ping instance that restarts on the other node must not restart
        // the VIP) so a first start checks the network before the VIP.
        constraints.push(colocation(VIP_ID, &cid));
        constraints.push(
            El::new("rsc_order")
                .attr("id", format!("order-{cid}-{VIP_ID}-optional"))
                .attr("first", cid.as_str())
                .attr("first-action", "start")
                .attr("then", VIP_ID)
                .attr("then-action", "start")
                .attr("kind", "Optional"),
        );
    }

    for s in &cfg.services.list {
        resources.push(service_rsc(s, p));
        let me = service_ref(s);
        if !s.clone {
            if s.depends_on.is_empty() {
                constraints.push(order(VIP_ID, &me));
            }
            constraints.push(colocation(&me, VIP_ID));
        }
        for d in &s.depends_on {
            let dep = cfg
                .services
                .list
                .iter()
                .find(|x| &x.name == d)
                .expect("dependencies are resolved to listed services");
            constraints.push(order(&service_ref(dep), &me));
        }
    }

    let rsc_defaults = El::new("rsc_defaults").child(
        El::new("meta_attributes")
            .attr("id", "rsc-options")
            .child(nvpair(
                "rsc-options",
                "resource-stickiness",
                p.resource_stickiness.to_string(),
            ))
            .child(nvpair(
                "rsc-options",
                "migration-threshold",
                p.migration_threshold.to_string(),
            ))
            .child(nvpair(
                "rsc-options",
                "failure-timeout",
                dur(p.failure_timeout),
            )),
    );
    let op_defaults = El::new("op_defaults").child(
        El::new("meta_attributes")
            .attr("id", "op-options")
            .child(nvpair("op-options", "timeout", dur(p.start_timeout))),
    );

    if let Some(a) = &cfg.alerts {
        resources.extend(crate::agents::sender::clone_rsc(a, p));
    }
    // Every node brings its mailha.toml to the running config when it
    // joins (configsync); nothing waits for it.
    resources.push(config_sync_clone(p));
    if cfg.exporter.run_by == crate::config::model::ExporterRunBy::Pacemaker {
        resources.push(exporter_clone(p));
    }
    let mut conf = El::new("configuration")
        .child(crm_config)
        .child(nodes)
        .child(El::new("resources").children(resources))
        .child(El::new("constraints").children(constraints))
        .child(rsc_defaults)
        .child(op_defaults);
    if cfg.alerts.is_some() {
        let id = "alert-mailha";
        conf = conf.child(
            El::new("alerts").child(
                El::new("alert")
                    .attr("id", id)
                    .attr("path", ALERT_AGENT_PATH)
                    // No attribute alerts: attrd fires them on its writer
                    // node, about any node, so a drill's fail-count would
                    // become a second mail from the other node; the
                    // resource event already says what failed.
                    .child(
                        El::new("select")
                            .child(El::new("select_fencing"))
                            .child(El::new("select_nodes"))
                            .child(El::new("select_resources")),
                    )
                    .child(
                        El::new("meta_attributes")
                            .attr("id", format!("{id}-meta_attributes"))
                            .child(nvpair(&format!("{id}-meta_attributes"), "timeout", "10s"))
                            .child(nvpair(
                                &format!("{id}-meta_attributes"),
                                "timestamp-format",
                                "%Y-%m-%dT%H:%M:%S.%06NZ",
                            )),
                    ),
            ),
        );
    }
    conf
}

pub const CONFIG_SYNC_ID: &str = "config-sync";

/// `ocf:mailha:config` cloned on every node (agents::config): a joining
/// node brings its mailha.toml to the running config. Ordered with
/// nothing: the mail never waits for it.
fn config_sync_clone(p: &Policy) -> El {
    let mut policy = p.clone();
    policy.start_timeout = Duration::from_secs(30);
    policy.stop_timeout = Duration::from_secs(10);
    policy.monitor_timeout = Duration::from_secs(10);
    El::new("clone")
        .attr("id", format!("{CONFIG_SYNC_ID}-clone"))
        .child(primitive(
            CONFIG_SYNC_ID,
            "ocf",
            Some("mailha"),
            "config",
            vec![],
            vec![],
            operations(CONFIG_SYNC_ID, &policy, Duration::from_secs(60)),
        ))
}

pub const EXPORTER_ID: &str = "exporter";

/// The package's `mailha-exporter.service` as a clone on every node
/// (`[exporter] run_by = "pacemaker"`): Pacemaker restarts it and shows
/// it, and it stops with the stack. Ordered with nothing: it only reads.
fn exporter_clone(p: &Policy) -> El {
    let mut policy = p.clone();
    policy.start_timeout = Duration::from_secs(30);
    policy.stop_timeout = Duration::from_secs(30);
    policy.monitor_timeout = Duration::from_secs(20);
    El::new("clone")
        .attr("id", format!("{EXPORTER_ID}-clone"))
        .child(primitive(
            EXPORTER_ID,
            "systemd",
            None,
            "mailha-exporter",
            vec![],
            vec![],
            operations(EXPORTER_ID, &policy, Duration::from_secs(30)),
        ))
}

/// The id of mailha's own property set in crm_config, and its digest key.
pub const MAILHA_SET_ID: &str = "mailha";
pub const DIGEST_NAME: &str = "mailha-config-digest";

/// SHA-256 of the configuration mailha renders, without the digest itself.
/// Stored in the CIB by `apply`; a node whose mailha.toml renders another
/// digest has drifted from what runs.
pub fn digest(conf_without_digest: &El) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(conf_without_digest.to_xml().as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `<configuration>` with mailha's digest in its own property set.
pub fn render_with_digest(cfg: &Config) -> El {
    let mut conf = render(cfg);
    let d = digest(&conf);
    if let Some(crm) = conf.find_mut("crm_config") {
        crm.children.push(
            El::new("cluster_property_set")
                .attr("id", MAILHA_SET_ID)
                .child(nvpair(MAILHA_SET_ID, DIGEST_NAME, d)),
        );
    }
    conf
}

/// The `<configuration>` as text.
pub fn render_configuration(cfg: &Config) -> String {
    render_with_digest(cfg).to_xml()
}

/// A whole `<cib>` around the configuration, as `crm_verify --xml-file`
/// and a fresh cluster's pre-seeded CIB want it.
pub fn render_full(cfg: &Config) -> String {
    let cib = El::new("cib")
        .attr("validate-with", VALIDATE_WITH)
        .attr("admin_epoch", "0")
        .attr("epoch", "1")
        .attr("num_updates", "0")
        .child(render_with_digest(cfg))
        .child(El::new("status"));
    cib.to_xml()
}
