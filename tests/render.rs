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
