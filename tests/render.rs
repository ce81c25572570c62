//! The generated CIB and corosync.conf: golden files for every profile and
//! mode, determinism, and crm_verify acceptance (Pacemaker's own checker).

mod common;
use common::*;
use mailha::{cib, corosync};

/// The cases every render test walks through: (name, config text).
fn cases() -> Vec<(&'static str, String)> {
    let tree = eyou_tree().display().to_string();
    let ex = |f: &str| std::fs::read_to_string(repo().join("examples").join(f)).unwrap();
    vec![
        ("postfix-mail", ex("postfix.toml")),
        ("eyou-mail-builtin", ex("eyou.toml")),
        (
            "eyou-mail-discovered",
            ex("eyou.toml").replace("/usr/local/eyou/mail\"", &format!("{tree}\"")),
        ),
        (
            "eyou-gateway",
            ex("2in1.toml").replace("mode = \"2in1\"", "mode = \"gateway\""),
        ),
        ("eyou-2in1", ex("2in1.toml")),
        ("gateway-nfs", ex("gateway.toml")),
        (
            "custom-no-profile",
            BASE.replace("profile = \"postfix\"", "profile = \"none\"")
                + "[services.web]\nstart = [\"/usr/sbin/nginx\"]\nprobe = { type = \"http\", port = 80, path = \"/healthz\" }\n\
                   [services.queue]\nstart = [\"/usr/local/bin/queued\", \"--daemon\"]\nstop = [\"/usr/local/bin/queued\", \"--stop\"]\n\
                   pid_file = \"/run/queued.pid\"\nexecutable = \"/usr/local/bin/queued\"\ndepends_on = [\"web\"]\n\
                   probe = { type = \"command\", argv = [\"/usr/local/bin/queued\", \"--ping\"], timeout = \"3s\" }\n",
        ),
        (
            // A unit-only service of its own; the profile's memcached by
            // argv on every node.
            "units",
            BASE.to_string()
                + "[services.rspamd]\nunit = \"rspamd.service\"\nexecutable = \"/usr/bin/rspamd\"\n\
                   probe = { type = \"http\", port = 11334, path = \"/ping\" }\ndepends_on = [\"memcached\"]\n\
                   [services.memcached]\nunit = \"none\"\n",
        ),
        (
            "stock-agents-no-fencing",
            BASE.to_string()
                + "[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\nparams = { config_dir = \"/etc/postfix\" }\n\
                   [services.mysql]\nagent = \"ocf:heartbeat:mysql\"\nparams = { binary = \"/usr/sbin/mariadbd\" }\n\
                   [services.dovecot]\nagent = \"ocf:heartbeat:dovecot\"\n\
                   [fencing]\nmode = \"none\"\n",
        ),
        ("sbd", BASE.to_string() + "[fencing]\nmode = \"sbd\"\n"),
        (
            // The exporter kept running by Pacemaker on every node.
            "exporter-by-pacemaker",
            BASE.to_string() + "[exporter]\nrun_by = \"pacemaker\"\n",
        ),
    ]
}

fn redact_digest(xml: &str) -> String {
    let key = "name=\"mailha-config-digest\" value=\"";
    match xml.find(key) {
        Some(i) => {
            let start = i + key.len();
            let end = start + xml[start..].find('"').unwrap();
            format!("{}[DIGEST]{}", &xml[..start], &xml[end..])
        }
        None => xml.to_string(),
    }
}

fn loaded(text: &str) -> mailha::config::Config {
    load(text).unwrap_or_else(|e| panic!("{e}")).config
}

#[test]
fn every_case_renders_the_golden_cib_and_corosync_conf() {
    let tree = eyou_tree().display().to_string();
    for (name, text) in cases() {
        let cfg = loaded(&text);
        // The digest covers paths that differ between checkouts (the eYou
        // fixture tree): its determinism is tested on its own below.
        let xml = redact_digest(&cib::render_configuration(&cfg).replace(&tree, "[EYOU_ROOT]"));
        insta::assert_snapshot!(format!("cib-{name}"), xml);
        insta::assert_snapshot!(format!("corosync-{name}"), corosync::render(&cfg));
    }
}

#[test]
fn rendering_is_deterministic() {
    for (_, text) in cases() {
        let a = cib::render_full(&loaded(&text));
        let b = cib::render_full(&loaded(&text));
        assert_eq!(a, b);
    }
}

#[test]
fn crm_verify_accepts_every_rendered_cib() {
    if !have_crm_verify() {
        return;
    }
    for (name, text) in cases() {
        let cfg = loaded(&text);
        let nodes: Vec<&str> = cfg.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        if let Err(e) = crm_verify(&cib::render_full(&cfg), &nodes) {
            panic!("crm_verify rejected case {name}: {e}");
        }
    }
}

/// Debian 13's Pacemaker 3.0 (a newer schema, options removed) accepts
/// the same CIBs, and is as strict: a dangling constraint is refused.
#[test]
fn pacemaker_30s_crm_verify_accepts_every_rendered_cib_too() {
    let Some(tree) = trixie_tree() else {
        return;
    };
    for (name, text) in cases() {
        let cfg = loaded(&text);
        let nodes: Vec<&str> = cfg.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        if let Err(e) = crm_verify_in(Some(&tree), &cib::render_full(&cfg), &nodes) {
            panic!("Pacemaker 3.0's crm_verify rejected case {name}: {e}");
        }
    }
    let cfg = loaded(&cases()[0].1);
    let broken = cib::render_full(&cfg).replace(
        "</constraints>",
        "<rsc_order id=\"dangling\" first=\"nothing-here\" then=\"vip\"/></constraints>",
    );
    assert!(
        crm_verify_in(Some(&tree), &broken, &["mail1", "mail2"]).is_err(),
        "Pacemaker 3.0's crm_verify accepted a dangling constraint"
    );
}

#[test]
fn crm_verify_is_strict_enough_to_catch_a_dangling_constraint() {
    // Validates the check above: a constraint naming a missing resource
    // must be refused, or the test proves nothing.
    if !have_crm_verify() {
        return;
    }
    let cfg = loaded(BASE);
    let broken = cib::render_full(&cfg).replacen("first=\"vip\"", "first=\"no-such-rsc\"", 1);
    assert!(crm_verify(&broken, &["node1", "node2"]).is_err());
}

#[test]
fn the_chain_is_lease_then_mounts_then_vip_then_services() {
    let xml = cib::render_configuration(&loaded(BASE));
    for id in [
        "order-lease-fs-data-mandatory",
        "colocation-fs-data-lease-INFINITY",
        "order-fs-data-vip-mandatory",
        "colocation-vip-fs-data-INFINITY",
        "order-vip-svc-mysql-mandatory",
        "order-svc-mysql-svc-postfix-mandatory",
        "colocation-svc-postfix-vip-INFINITY",
    ] {
        assert!(xml.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
}

#[test]
fn the_eyou_graph_matches_the_original() {
    let cfg = loaded(&cases()[1].1);
    let xml = cib::render_configuration(&cfg);
    for (then, firsts) in [
        ("smtp", &["mproxy"][..]),
        ("mproxy", &["mysql"]),
        ("mproxy_index", &["mysql_index"]),
        ("phpd", &["mysql_log", "gearman"]),
        (
            "bounce",
            &["mproxy", "memcache_fix", "memcache_session", "memcache_hot"],
        ),
    ] {
        for f in firsts {
            let id = format!("order-svc-{f}-svc-{then}-mandatory");
            assert!(xml.contains(&id), "missing {id}");
        }
    }
    assert!(xml.contains("<clone id=\"svc-filedrepd-clone\">"));
    assert!(
        !xml.contains("colocation-svc-filedrepd-clone-vip"),
        "the clone runs on both nodes"
    );
}

#[test]
fn discovery_reads_pid_files_services_and_version_from_the_tree() {
    let cfg = loaded(&cases()[2].1);
    assert_eq!(cfg.services.eyou_version.as_deref(), Some("8.1.0.4"));
    let smtp = cfg.services.list.iter().find(|s| s.name == "smtp").unwrap();
    assert_eq!(
        smtp.pid_file.as_deref(),
        Some(std::path::Path::new("/usr/local/eyou/mail/run/smtp.pid"))
    );
    // cron_etc is not in the tree's ARRAY_START: not run here.
    assert!(!cfg.services.list.iter().any(|s| s.name == "cron_etc"));
}

#[test]
fn fencing_is_on_with_a_fence_device_per_node_kept_off_its_target() {
    let xml = cib::render_configuration(&loaded(BASE));
    assert!(xml.contains("name=\"stonith-enabled\" value=\"true\""));
    // Under the lease the fence race is fence_mailha's (fence::hold), so a
    // node death does not wait for Pacemaker's priority-fencing-delay.
    assert!(!xml.contains("priority-fencing-delay"));
    assert!(xml.contains("name=\"holder_delay\" value=\"10s\""));
    assert!(xml.contains("name=\"lease_socket\" value=\"mailha-lease\""));
    assert!(xml.contains("id=\"location-fence-node1-avoids-node1\""));
    assert!(xml.contains("type=\"fence_mailha\""));
}

#[test]
fn argv_parameters_are_json_arrays_never_shell_strings() {
    let cfg = loaded(&cases()[6].1);
    let xml = cib::render_configuration(&cfg);
    assert!(
        xml.contains("value=\"[&quot;/usr/local/bin/queued&quot;,&quot;--daemon&quot;]\""),
        "{xml}"
    );
}

/// Runs crm_simulate with `args` on `cib` (a full CIB document), returning
/// its output; `out`, when given, receives the CIB after the simulated
/// transition.
fn crm_simulate(cib: &str, args: &[&str], out: Option<&std::path::Path>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.xml");
    std::fs::write(&f, cib).unwrap();
    let mut c = std::process::Command::new("crm_simulate");
    c.arg("-x").arg(&f).args(args);
    if let Some(o) = out {
        c.arg("-O").arg(o);
    }
    let o = run_with_deadline(&mut c, std::time::Duration::from_secs(60));
    assert!(o.status.success(), "crm_simulate {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The VIP's allocation score on `node` in crm_simulate's `-s` output.
fn vip_score(scores: &str, node: &str) -> String {
    scores
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "pcmk__primitive_assign: vip allocation score on {node}: "
            ))
        })
        .unwrap_or_else(|| panic!("no VIP score for {node} in:\n{scores}"))
        .trim()
        .to_string()
}

/// Issue 19, defect 3 (seen in Pacemaker's CTS ComponentFail): a
/// controller that restarts has its node's transient attributes erased by
/// the new DC, and Pacemaker 2.1.5's attrd does not write an unchanged
/// pingd back. The VIP must not depend on that attribute: with the ping
/// instance running and pingd gone from the CIB, the node keeps it. (That
/// a node where no ping target answers cannot run it: `tests/network.rs`,
/// with the other cases, and the lab's cut-ping drill.)
#[test]
fn a_lost_pingd_attribute_does_not_ban_the_vip() {
    if !have_crm_verify() {
        return;
    }
    let text = std::fs::read_to_string(repo().join("examples/postfix.toml")).unwrap();
    let cib = cib::render_full(&loaded(&text));
    let states: String = (1..=2)
        .map(|i| {
            format!(
                "<node_state id=\"{i}\" uname=\"mail{i}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">\
                 <transient_attributes id=\"{i}\"><instance_attributes id=\"status-{i}\">\
                 <nvpair id=\"status-{i}-pingd\" name=\"pingd\" value=\"1000\"/>\
                 </instance_attributes></transient_attributes></node_state>"
            )
        })
        .collect();
    let online = cib
        .replacen("<cib ", "<cib have-quorum=\"1\" dc-uuid=\"1\" ", 1)
        .replace("<status/>", &format!("<status>{states}</status>"));
    // Everything started (wherever Pacemaker puts it).
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.xml");
    crm_simulate(&online, &["-S"], Some(&healthy));
    let healthy = std::fs::read_to_string(&healthy).unwrap();
    assert!(healthy.contains("ping_start_0"), "the ping clone started");

    // pingd erased from the CIB on both nodes, the ping instances running.
    let erased = regex_lite_remove(&healthy, "<transient_attributes", "</transient_attributes>");
    assert!(!erased.contains("name=\"pingd\""));
    let scores = crm_simulate(&erased, &["-s"], None);
    let runs_on = |scores: &str| {
        ["mail1", "mail2"]
            .into_iter()
            .filter(|n| vip_score(scores, n) != "-INFINITY")
            .collect::<Vec<_>>()
    };
    assert_eq!(
        runs_on(&crm_simulate(&healthy, &["-s"], None)),
        ["mail1"],
        "the VIP runs on mail1 (with the data)"
    );
    assert_eq!(runs_on(&scores), ["mail1"], "a missing pingd bans the VIP");
    let plan = crm_simulate(&erased, &["-S"], None);
    assert!(
        !plan
            .lines()
            .any(|l| l.contains(" vip ") && (l.contains("Stop") || l.contains("Move"))),
        "the VIP stays where it is:\n{plan}"
    );
}

/// `text` without every span from `open` to the next `close` (inclusive).
fn regex_lite_remove(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        match rest[i..].find(close) {
            Some(j) => rest = &rest[i + j + close.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}
