//! One test per validation rule of mailha.toml: each breaks the base
//! config in one place and checks the error names the field, and where it
//! matters the line and column.

mod common;
use common::*;
use std::time::Duration;

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn the_base_config_is_valid() {
    let l = load(BASE).expect("valid");
    assert_eq!(l.config.cluster.nodes.len(), 2);
    assert_eq!(l.config.services.list.len(), 4);
}

// --- syntax and unknown keys -------------------------------------------

#[test]
fn broken_toml_is_located() {
    let d = &errors(&edit("prefix = 24", "prefix = = 24"))[0];
    assert_eq!(d.line, line_of(BASE, "prefix = 24"));
    assert!(d.message.contains("not valid TOML"), "{d}");
}

#[test]
fn an_unknown_key_is_rejected_with_a_suggestion() {
    let text = edit("nic = \"eth0\"", "nic = \"eth0\"\nlabell = \"x\"");
    let d = one_error(&text, "vip.labell", "unknown key");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"label\"?"));
    assert_eq!(d.line, line_of(&text, "labell"));
    assert_eq!(d.column, 1);
}

#[test]
fn an_unknown_top_level_table_is_rejected() {
    let d = one_error(
        &with("[polcy]\nmigration_threshold = 3\n"),
        "polcy",
        "unknown key",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean \"policy\"?"));
}

#[test]
fn a_mistyped_services_setting_is_not_taken_for_a_service() {
    let text = edit("profile = \"postfix\"", "profle = \"postfix\"");
    let d = one_error(&text, "services.profle", "not a setting");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"profile\"?"));
}

#[test]
fn a_wrong_type_names_the_field() {
    let d = &errors(&edit("prefix = 24", "prefix = \"24\""))[0];
    assert_eq!(d.field, "vip.prefix");
    assert_eq!(d.line, line_of(BASE, "prefix = 24"));
}

// --- cluster -------------------------------------------------------------

#[test]
fn the_cluster_name_is_required_and_restricted() {
    one_error(&edit("name = \"mail\"", ""), "cluster.name", "required");
    one_error(
        &edit("name = \"mail\"", "name = \"m a i l\""),
        "cluster.name",
        "not a valid cluster name",
    );
}

#[test]
fn exactly_two_nodes() {
    let text = edit(
        "[[cluster.nodes]]\nname = \"node2\"\naddresses = [\"203.0.113.12\", \"198.51.100.12\"]\n",
        "",
    );
    one_error(&text, "cluster.nodes", "exactly two nodes");
}

#[test]
fn node_names_are_unique_and_valid() {
    one_error(
        &edit("name = \"node2\"", "name = \"node1\""),
        "cluster.nodes[1].name",
        "duplicate",
    );
    one_error(
        &edit("name = \"node2\"", "name = \"no de\""),
        "cluster.nodes[1].name",
        "not a valid node name",
    );
}

#[test]
fn heartbeat_addresses_must_be_ip_addresses() {
    let text = edit("\"198.51.100.12\"]", "\"198.51.100.x\"]");
    let d = one_error(&text, "cluster.nodes[1].addresses[1]", "not an IP address");
    assert_eq!(d.line, line_of(&text, "198.51.100.x"));
}

#[test]
fn both_nodes_have_one_address_per_link() {
    one_error(
        &edit(
            "[\"203.0.113.12\", \"198.51.100.12\"]",
            "[\"203.0.113.12\"]",
        ),
        "cluster.nodes[1].addresses",
        "one address per link",
    );
}

#[test]
fn a_node_needs_at_least_one_address() {
    one_error(
        &edit("[\"203.0.113.12\", \"198.51.100.12\"]", "[]"),
        "cluster.nodes[1].addresses",
        "at least one",
    );
}

#[test]
fn an_address_is_used_once() {
    one_error(
        &edit(
            "[\"203.0.113.12\", \"198.51.100.12\"]",
            "[\"203.0.113.11\", \"198.51.100.12\"]",
        ),
        "cluster.nodes[1].addresses[0]",
        "used twice",
    );
}

#[test]
fn a_link_does_not_mix_address_families() {
    one_error(
        &edit(
            "[\"203.0.113.12\", \"198.51.100.12\"]",
            "[\"2001:db8::12\", \"198.51.100.12\"]",
        ),
        "cluster.nodes[1].addresses[0]",
        "mixes IPv4 and IPv6",
    );
}

#[test]
fn a_single_link_is_allowed_with_a_warning() {
    let text = edit(
        "[\"203.0.113.11\", \"198.51.100.11\"]",
        "[\"203.0.113.11\"]",
    )
    .replacen(
        "[\"203.0.113.12\", \"198.51.100.12\"]",
        "[\"203.0.113.12\"]",
        1,
    );
    let w = warnings(&text);
    assert!(
        w.iter()
            .any(|d| d.message.contains("second link is recommended"))
    );
}

#[test]
fn the_token_timeout_is_a_duration_in_range() {
    one_error(
        &edit("token_timeout = \"1s\"", "token_timeout = \"soon\""),
        "cluster.token_timeout",
        "not a duration",
    );
    one_error(
        &edit("token_timeout = \"1s\"", "token_timeout = \"5min\""),
        "cluster.token_timeout",
        "outside 200ms..60s",
    );
    one_error(
        &edit("token_timeout = \"1s\"", "token_timeout = \"0s\""),
        "cluster.token_timeout",
        "longer than zero",
    );
}

#[test]
fn the_ssh_port_is_not_zero() {
    one_error(
        &edit("token_timeout = \"1s\"", "ssh_port = 0"),
        "cluster.ssh_port",
        "not a port",
    );
}

// --- vip -------------------------------------------------------------------

#[test]
fn the_vip_is_not_a_node_address() {
    let text = edit(
        "address = \"198.51.100.100\"",
        "address = \"198.51.100.12\"",
    );
    let d = one_error(&text, "vip.address", "must float");
    assert_eq!(d.line, line_of(&text, "address = \"198.51.100.12\""));
}

#[test]
fn the_vip_prefix_is_in_range() {
    one_error(
        &edit("prefix = 24", "prefix = 33"),
        "vip.prefix",
        "outside 1..32",
    );
    one_error(&edit("prefix = 24", "prefix = 0"), "vip.prefix", "outside");
    let v6 = edit(
        "address = \"198.51.100.100\"",
        "address = \"2001:db8::100\"",
    )
    .replacen("prefix = 24", "prefix = 64", 1);
    load(&v6).expect("a /64 IPv6 VIP is fine");
}

#[test]
fn the_vip_nic_is_an_interface_name() {
    let d = one_error(
        &edit("nic = \"eth0\"", "nic = \"eth0:0\""),
        "vip.nic",
        "not an interface name",
    );
    assert!(d.hint.unwrap().contains("label"));
}

#[test]
fn the_vip_label_fits_ifnamsiz() {
    one_error(
        &edit(
            "nic = \"eth0\"",
            "nic = \"eth0\"\nlabel = \"averyverylonglabel\"",
        ),
        "vip.label",
        "at most 15",
    );
}

#[test]
fn the_vip_is_required() {
    let text = BASE.replace(
        "[vip]\naddress = \"198.51.100.100\"\nprefix = 24\nnic = \"eth0\"\n",
        "",
    );
    one_error(&text, "vip", "required");
}

// --- network -----------------------------------------------------------------

#[test]
fn ping_targets_are_addresses_listed_once() {
    one_error(
        &edit("[\"198.51.100.1\"]", "[\"gateway\"]"),
        "network.ping_targets[0]",
        "not an IP address",
    );
    one_error(
        &edit("[\"198.51.100.1\"]", "[\"198.51.100.1\", \"198.51.100.1\"]"),
        "network.ping_targets[1]",
        "twice",
    );
}

#[test]
fn no_ping_target_is_a_warning() {
    let w = warnings(&edit(
        "ping_targets = [\"198.51.100.1\"]",
        "ping_targets = []",
    ));
    assert!(w.iter().any(|d| d.field == "network.ping_targets"));
}

#[test]
fn network_durations_are_checked() {
    one_error(
        &edit("ping_targets", "dampen = \"5 parsecs\"\nping_targets"),
        "network.dampen",
        "not a duration",
    );
}

#[test]
fn failed_checks_to_move_the_mail_are_one_or_two() {
    assert_eq!(load(BASE).unwrap().config.network.failed_checks, 2);
    for n in ["0", "3"] {
        one_error(
            &edit(
                "ping_targets",
                &format!("failed_checks = {n}\nping_targets"),
            ),
            "network.failed_checks",
            "is neither 2 (the failed check, then the check of the ping's restart) nor 1",
        );
    }
    let one = edit("ping_targets", "failed_checks = 1\nping_targets");
    assert_eq!(load(&one).unwrap().config.network.failed_checks, 1);
}

// --- storage -------------------------------------------------------------------

#[test]
fn a_mount_names_device_or_nfs_but_not_both() {
    one_error(
        &edit(
            "device = \"LABEL=maildata\"",
            "device = \"LABEL=maildata\"\nnfs = \"198.51.100.30:/export\"",
        ),
        "storage.mounts[0].nfs",
        "not both",
    );
    one_error(
        &edit("device = \"LABEL=maildata\"", ""),
        "storage.mounts[0]",
        "neither device nor nfs",
    );
}

#[test]
fn block_devices_are_paths_under_dev_uuids_or_labels() {
    one_error(
        &edit("LABEL=maildata", "srv/disk"),
        "storage.mounts[0].device",
        "not a device path",
    );
    load(&edit("LABEL=maildata", "/run/lab/data")).expect("a device node outside /dev");
    one_error(
        &edit("LABEL=maildata", "UUID=not-a-uuid!"),
        "storage.mounts[0].device",
        "not a filesystem UUID",
    );
    one_error(
        &edit("LABEL=maildata", "LABEL=way-too-long-for-ext4-label"),
        "storage.mounts[0].device",
        "not a usable label",
    );
    load(&edit(
        "LABEL=maildata",
        "UUID=74efe5c0-3b1a-4f7e-9a57-2c0c3e4f1a10",
    ))
    .expect("uuid");
    load(&edit("LABEL=maildata", "/dev/sdd2")).expect("path");
}

#[test]
fn hostile_device_strings_are_refused() {
    one_error(
        &edit("LABEL=maildata", "/dev/sdb;reboot"),
        "storage.mounts[0].device",
        "contains ';'",
    );
    one_error(
        &edit("LABEL=maildata", "/dev/$(reboot)"),
        "storage.mounts[0].device",
        "contains '$'",
    );
}

#[test]
fn nfs_sources_are_host_colon_export() {
    let nfs = |v: &str| edit("device = \"LABEL=maildata\"", &format!("nfs = \"{v}\""));
    one_error(
        &nfs("198.51.100.30/export"),
        "storage.mounts[0].nfs",
        "not an NFS export",
    );
    one_error(
        &nfs("bad host:/export"),
        "storage.mounts[0].nfs",
        "not a host name",
    );
    let l = load(&nfs("198.51.100.30:/export/mail")).expect("nfs");
    assert_eq!(
        l.config.storage.mounts[0].source,
        mailha::config::MountSource::Nfs(mailha::config::NfsExport {
            host: "198.51.100.30".into(),
            export: "/export/mail".into()
        })
    );
}

#[test]
fn a_block_fstype_is_a_filesystem_name() {
    one_error(
        &edit(
            "mount_point = \"/srv/mail\"",
            "mount_point = \"/srv/mail\"\nfstype = \"nfs\"",
        ),
        "storage.mounts[0].fstype",
        "not a block filesystem",
    );
}

/// A typo in the filesystem type passed `check` and failed only at the
/// mount, at failover time.
#[test]
fn an_unknown_block_filesystem_is_an_error_with_a_suggestion() {
    let d = one_error(
        &edit(
            "mount_point = \"/srv/mail\"",
            "mount_point = \"/srv/mail\"\nfstype = \"ext5\"",
        ),
        "storage.mounts[0].fstype",
        "unknown filesystem type \"ext5\"",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean \"ext4\"?"));
    let d = one_error(
        &edit(
            "mount_point = \"/srv/mail\"",
            "mount_point = \"/srv/mail\"\nfstype = \"zfs\"",
        ),
        "storage.mounts[0].fstype",
        "unknown filesystem type",
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("one of ext4, ext3, ext2, xfs, btrfs")
    );
    for ok in ["ext4", "xfs", "btrfs"] {
        let text = edit(
            "mount_point = \"/srv/mail\"",
            &format!("mount_point = \"/srv/mail\"\nfstype = \"{ok}\""),
        );
        assert!(load(&text).is_ok(), "{ok}");
    }
}

#[test]
fn mount_points_are_absolute_and_not_system_directories() {
    one_error(
        &edit("mount_point = \"/srv/mail\"", "mount_point = \"srv/mail\""),
        "storage.mounts[0].mount_point",
        "absolute",
    );
    one_error(
        &edit("mount_point = \"/srv/mail\"", "mount_point = \"/\""),
        "storage.mounts[0].mount_point",
        "root directory",
    );
    one_error(
        &edit("mount_point = \"/srv/mail\"", "mount_point = \"/proc/x\""),
        "storage.mounts[0].mount_point",
        "under /proc",
    );
    one_error(
        &edit(
            "mount_point = \"/srv/mail\"",
            "mount_point = \"/srv/../etc\"",
        ),
        "storage.mounts[0].mount_point",
        "'..'",
    );
}

#[test]
fn duplicate_and_nested_mount_points_are_refused() {
    let second = |mp: &str| {
        with(&format!(
            "[[storage.mounts]]\nname = \"two\"\ndevice = \"LABEL=two\"\nmount_point = \"{mp}\"\n"
        ))
    };
    one_error(
        &second("/srv/mail/"),
        "storage.mounts[1].mount_point",
        "also mounts[0]",
    );
    let text = second("/srv/mail/queue");
    let d = one_error(&text, "storage.mounts[1].mount_point", "nested");
    assert_eq!(d.line, line_of(&text, "/srv/mail/queue"));
}

#[test]
fn mount_names_are_unique() {
    one_error(
        &with(
            "[[storage.mounts]]\nname = \"data\"\ndevice = \"LABEL=two\"\nmount_point = \"/srv/two\"\n",
        ),
        "storage.mounts[1].name",
        "duplicate mount name",
    );
}

#[test]
fn a_mount_without_a_name_is_named_after_its_mount_point() {
    let l = load(&edit("name = \"data\"\n", "")).unwrap();
    assert_eq!(l.config.storage.mounts[0].name, "srv-mail");
}

#[test]
fn mount_options_are_one_per_item() {
    one_error(
        &edit(
            "mount_point = \"/srv/mail\"",
            "mount_point = \"/srv/mail\"\noptions = [\"noatime,sync\"]",
        ),
        "storage.mounts[0].options[0]",
        "no commas",
    );
}

#[test]
fn the_lease_names_a_device_or_an_nfs_file() {
    one_error(
        &edit(
            "device = \"LABEL=mailha-lease\"",
            "device = \"LABEL=mailha-lease\"\nnfs = \"h:/e\"",
        ),
        "storage.lease.nfs",
        "not both",
    );
    one_error(
        &edit(
            "device = \"LABEL=mailha-lease\"",
            "nfs = \"198.51.100.30:/lease\"\nfile = \"../x\"",
        ),
        "storage.lease.file",
        "is a path",
    );
    one_error(
        &edit(
            "device = \"LABEL=mailha-lease\"",
            "nfs = \"198.51.100.30:/lease\"\nfile = \"..\"",
        ),
        "storage.lease.file",
        "plain file name",
    );
    one_error(
        &edit(
            "device = \"LABEL=mailha-lease\"",
            "device = \"LABEL=mailha-lease\"\nfile = \"x\"",
        ),
        "storage.lease.file",
        "goes with nfs",
    );
    load(&edit(
        "device = \"LABEL=mailha-lease\"",
        "nfs = \"198.51.100.30:/lease\"",
    ))
    .expect("nfs lease");
}

#[test]
fn a_lease_on_nfs_refuses_mount_options_that_break_it() {
    let with_opts = |opts: &str| {
        edit(
            "device = \"LABEL=mailha-lease\"",
            &format!("nfs = \"198.51.100.30:/lease\"\noptions = [{opts}]"),
        )
    };
    // soft gives up on a write the server may still apply: out of order.
    one_error(
        &with_opts("\"vers=4.1\", \"soft\""),
        "storage.lease.options[1]",
        "out of order",
    );
    one_error(
        &with_opts("\"async\""),
        "storage.lease.options[0]",
        "on the server",
    );
    one_error(&with_opts("\"ac\""), "storage.lease.options[0]", "noac");
    load(&with_opts("\"vers=4.2\", \"timeo=30\""))
        .expect("a version and a retransmission timeout are the operator's");
}

// --- fencing ---------------------------------------------------------------------

#[test]
fn lease_fencing_needs_a_lease() {
    let text = edit("[storage.lease]\ndevice = \"LABEL=mailha-lease\"\n", "");
    let d = one_error(&text, "fencing.mode", "needs a lease device");
    assert!(d.hint.unwrap().contains("[storage.lease]"));
}

#[test]
fn fencing_mode_is_known_and_none_warns() {
    one_error(
        &with("[fencing]\nmode = \"leas\"\n"),
        "fencing.mode",
        "did you mean \"lease\"",
    );
    let w = warnings(&with("[fencing]\nmode = \"none\"\n"));
    assert!(
        w.iter()
            .any(|d| d.field == "fencing.mode" && d.message.contains("both nodes could mount"))
    );
}

// --- services ----------------------------------------------------------------------

#[test]
fn two_services_found_by_the_same_binary_without_pid_files_warn() {
    let two = "[services.cache_a]\nstart = [\"/usr/bin/memcached\", \"-p\", \"11311\"]\nexecutable = \"/usr/bin/memcached\"\n\
               [services.cache_b]\nstart = [\"/usr/bin/memcached\", \"-p\", \"11411\"]\nexecutable = \"/usr/bin/memcached\"\n";
    let w = warnings(&with(two));
    let apart = |w: &[mailha::config::Diagnostic], field: &str| {
        w.iter()
            .any(|d| d.field == field && d.message.contains("cannot tell them apart"))
    };
    assert!(
        apart(&w, "services.cache_a") && apart(&w, "services.cache_b"),
        "{w:?}"
    );
    // cache_b with a pid file is told apart; cache_a, without one, still
    // takes every memcached for its own (its stop would end cache_b).
    let one_pid = two.replace(
        "\"11411\"]\n",
        "\"11411\"]\npid_file = \"/run/cache_b.pid\"\n",
    );
    let w = warnings(&with(&one_pid));
    assert!(
        apart(&w, "services.cache_a") && !apart(&w, "services.cache_b"),
        "{w:?}"
    );
    let both = one_pid.replace(
        "\"11311\"]\n",
        "\"11311\"]\npid_file = \"/run/cache_a.pid\"\n",
    );
    assert!(warnings(&with(&both)).is_empty());
}

#[test]
fn the_profile_and_mode_are_known_names() {
    one_error(
        &edit("profile = \"postfix\"", "profile = \"postfx\""),
        "services.profile",
        "did you mean \"postfix\"",
    );
    one_error(
        &edit(
            "profile = \"postfix\"",
            "profile = \"postfix\"\nmode = \"2-in-1\"",
        ),
        "services.mode",
        "unknown mode",
    );
    one_error(
        &edit(
            "profile = \"postfix\"",
            "profile = \"gateway\"\nmode = \"mail\"",
        ),
        "services.mode",
        "gateway only",
    );
}

#[test]
fn an_unknown_dependency_is_named_with_a_suggestion() {
    let text = with(
        "[services.smtpd]\nstart = [\"/usr/sbin/smtpd\"]\ndepends_on = [\"mysql\", \"postfx\"]\n",
    );
    let d = one_error(
        &text,
        "services.smtpd.depends_on[1]",
        "no service is named \"postfx\"",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean \"postfix\"?"));
    assert_eq!(d.line, line_of(&text, "postfx"));
}

#[test]
fn a_dependency_cycle_is_printed() {
    let text = with(
        "[services.a]\nstart = [\"/bin/a\"]\ndepends_on = [\"b\"]\n[services.b]\nstart = [\"/bin/b\"]\ndepends_on = [\"c\"]\n[services.c]\nstart = [\"/bin/c\"]\ndepends_on = [\"a\"]\n",
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|d| d.message == "dependency cycle: a -> b -> c -> a"),
        "{errs:?}"
    );
}

#[test]
fn a_service_cannot_depend_on_itself_or_twice_on_one() {
    one_error(
        &with("[services.a]\nstart = [\"/bin/a\"]\ndepends_on = [\"a\"]\n"),
        "services.a.depends_on[0]",
        "itself",
    );
    one_error(
        &with("[services.a]\nstart = [\"/bin/a\"]\ndepends_on = [\"mysql\", \"mysql\"]\n"),
        "services.a.depends_on[1]",
        "twice",
    );
}

#[test]
fn service_names_are_restricted() {
    one_error(
        &with("[services.\"a;b\"]\nstart = [\"/bin/a\"]\n"),
        "services.a;b",
        "not a valid service name",
    );
}

#[test]
fn commands_are_argv_arrays_with_an_absolute_program() {
    one_error(
        &with("[services.a]\nstart = [\"postfix\", \"start\"]\n"),
        "services.a.start[0]",
        "absolute",
    );
    one_error(
        &with("[services.a]\nstart = []\n"),
        "services.a.start",
        "empty argv",
    );
    one_error(
        &with("[services.a]\nstart = [\"/bin/a\", \"x\\ny\"]\n"),
        "services.a.start[1]",
        "line break",
    );
    let d = &errors(&with("[services.a]\nstart = \"/usr/sbin/postfix start\"\n"))[0];
    assert_eq!(
        d.field, "services.a.start",
        "a shell string is a type error: {d}"
    );
}

#[test]
fn mailhas_agent_needs_a_unit_or_a_start_command() {
    one_error(
        &with("[services.a]\nwatch = true\n"),
        "services.a.start",
        "needs the service's systemd unit or the command",
    );
    one_error(
        &with("[services.a]\nunit = \"none\"\n"),
        "services.a.start",
        "needs the service's systemd unit or the command",
    );
    let l = load(&with("[services.a]\nunit = \"rspamd.service\"\n")).unwrap();
    let a = service(&l, "a");
    assert_eq!(a.unit.as_deref(), Some("rspamd.service"));
    assert!(a.start.is_empty(), "a unit-only service");
}

fn service<'a>(l: &'a mailha::config::Loaded, name: &str) -> &'a mailha::config::Service {
    l.config
        .services
        .list
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn a_unit_is_a_systemd_service_unit_name_located_at_its_line() {
    for bad in [
        "mariadb",
        "mariadb.socket",
        "postfix@.service",
        "-h.service",
        "x;reboot.service",
        "../x.service",
    ] {
        let text = with(&format!("[services.a]\nunit = \"{bad}\"\n"));
        let d = one_error(&text, "services.a.unit", "not a systemd service unit name");
        assert_eq!(d.line, line_of(&text, "unit = "), "{bad}");
    }
}

#[test]
fn a_unit_belongs_to_mailhas_agent() {
    let text = with(
        "[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\nunit = \"postfix@-.service\"\n",
    );
    let d = one_error(&text, "services.postfix.unit", "unit is for mailha's agent");
    assert_eq!(d.line, line_of(&text, "unit = "));
    assert!(d.hint.as_deref().unwrap().contains("systemd:NAME"));
}

#[test]
fn the_postfix_profile_runs_debians_units_and_a_user_can_opt_out() {
    let l = load(BASE).unwrap();
    let unit = |l: &mailha::config::Loaded, n: &str| service(l, n).unit.clone();
    assert_eq!(unit(&l, "mysql").as_deref(), Some("mariadb.service"));
    assert_eq!(unit(&l, "memcached").as_deref(), Some("memcached.service"));
    // Debian's postfix.service only wraps the instance that runs the master.
    assert_eq!(unit(&l, "postfix").as_deref(), Some("postfix@-.service"));
    assert_eq!(unit(&l, "dovecot").as_deref(), Some("dovecot.service"));
    // The argv stays, for nodes without systemd.
    assert_eq!(service(&l, "postfix").start, ["/usr/sbin/postfix", "start"]);

    let l = load(&with(
        "[services.memcached]\nunit = \"none\"\n[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\n",
    ))
    .unwrap();
    assert_eq!(unit(&l, "memcached"), None, "\"none\": argv on every node");
    assert!(!service(&l, "memcached").start.is_empty());
    assert_eq!(
        unit(&l, "postfix"),
        None,
        "a stock agent does not inherit the profile's unit"
    );
}

#[test]
fn a_unit_and_an_argv_in_one_table_are_unit_where_systemd_runs_and_argv_elsewhere() {
    let l = load(&with(
        "[services.a]\nunit = \"a.service\"\nstart = [\"/usr/sbin/a\"]\nstop = [\"/usr/sbin/a\", \"-s\"]\n",
    ))
    .unwrap();
    let a = service(&l, "a");
    assert_eq!(a.unit.as_deref(), Some("a.service"));
    assert_eq!(a.start, ["/usr/sbin/a"]);
    assert_eq!(a.stop, ["/usr/sbin/a", "-s"]);
}

#[test]
fn pid_files_and_executables_are_absolute_paths() {
    one_error(
        &with("[services.a]\nstart = [\"/bin/a\"]\npid_file = \"run/a.pid\"\n"),
        "services.a.pid_file",
        "absolute",
    );
    one_error(
        &with("[services.a]\nstart = [\"/bin/a\"]\nexecutable = \"/bin/$(x)\"\n"),
        "services.a.executable",
        "contains '$'",
    );
}

#[test]
fn probes_are_checked_per_type() {
    let svc = |probe: &str| {
        with(&format!(
            "[services.a]\nstart = [\"/bin/a\"]\nprobe = {probe}\n"
        ))
    };
    one_error(
        &svc("{ type = \"smtpp\" }"),
        "services.a.probe.type",
        "did you mean \"smtp\"",
    );
    one_error(&svc("{ port = 25 }"), "services.a.probe.type", "required");
    one_error(
        &svc("{ type = \"command\" }"),
        "services.a.probe.argv",
        "required",
    );
    one_error(
        &svc("{ type = \"command\", argv = [\"/bin/true\"], port = 1 }"),
        "services.a.probe.port",
        "no port",
    );
    one_error(
        &svc("{ type = \"smtp\", argv = [\"/bin/true\"] }"),
        "services.a.probe.argv",
        "command probe",
    );
    one_error(
        &svc("{ type = \"http\", path = \"index\" }"),
        "services.a.probe.path",
        "not an HTTP path",
    );
    one_error(
        &svc("{ type = \"http\", expect = 42 }"),
        "services.a.probe.expect",
        "not an HTTP status",
    );
    one_error(
        &svc("{ type = \"smtp\", port = 0 }"),
        "services.a.probe.port",
        "not a port",
    );
    one_error(
        &svc("{ type = \"smtp\", socket = \"/run/x.sock\" }"),
        "services.a.probe.socket",
        "only mysql and memcached",
    );
    one_error(
        &svc("{ type = \"mysql\", socket = \"/run/x.sock\", port = 3306 }"),
        "services.a.probe.socket",
        "not both",
    );
    one_error(
        &svc("{ type = \"smtp\", host = \"a b\" }"),
        "services.a.probe.host",
        "not a host",
    );
}

#[test]
fn an_agent_is_mailha_or_a_well_formed_stock_agent() {
    one_error(
        &with("[services.postfix]\nagent = \"ocf:heartbeat\"\n"),
        "services.postfix.agent",
        "not an agent",
    );
    let l = load(&with("[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\nparams = { config_dir = \"/etc/postfix\" }\n")).unwrap();
    let p = l
        .config
        .services
        .list
        .iter()
        .find(|s| s.name == "postfix")
        .unwrap();
    assert_eq!(p.agent.spec(), "ocf:heartbeat:postfix");
}

#[test]
fn parameter_names_and_values_are_checked() {
    one_error(
        &with("[services.postfix]\nparams = { \"a b\" = \"x\" }\n"),
        "services.postfix.params.a b",
        "not a parameter name",
    );
    one_error(
        &with("[services.postfix]\nparams = { x = \"a\\nb\" }\n"),
        "services.postfix.params.x",
        "control characters",
    );
}

#[test]
fn user_tables_override_profile_services_field_by_field() {
    let l = load(&with("[services.dovecot]\nwatch = false\n")).unwrap();
    let d = l
        .config
        .services
        .list
        .iter()
        .find(|s| s.name == "dovecot")
        .unwrap();
    assert!(!d.watch);
    assert_eq!(
        d.start,
        vec!["/usr/sbin/dovecot".to_string()],
        "the profile's start stays"
    );
}

#[test]
fn a_disabled_dependency_is_bridged_to_what_it_depended_on() {
    // nginx depends on php-fpm (off by default), which depends on mysql
    // and memcached: enabling nginx alone orders it after those.
    let l = load(&with("[services.nginx]\nenabled = true\n")).unwrap();
    let n = l
        .config
        .services
        .list
        .iter()
        .find(|s| s.name == "nginx")
        .unwrap();
    assert_eq!(
        n.depends_on,
        vec!["mysql".to_string(), "memcached".to_string()]
    );
}

#[test]
fn services_come_in_dependency_order() {
    let l = load(BASE).unwrap();
    let names: Vec<&str> = l
        .config
        .services
        .list
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("mysql") < pos("postfix"));
    assert!(pos("memcached") < pos("postfix"));
    assert!(pos("mysql") < pos("dovecot"));
}

// --- policy -------------------------------------------------------------------------

#[test]
fn policy_defaults_keep_the_seeds_promise_of_ten_failures() {
    assert_eq!(load(BASE).unwrap().config.policy.migration_threshold, 10);
}

#[test]
fn policy_values_are_checked() {
    one_error(
        &with("[policy]\nmigration_threshold = 0\n"),
        "policy.migration_threshold",
        "at least 1",
    );
    one_error(
        &with("[policy]\nfailure_timeout = \"-1s\"\n"),
        "policy.failure_timeout",
        "not a duration",
    );
    one_error(
        &with("[policy]\nmonitor_interval = \"0s\"\n"),
        "policy.monitor_interval",
        "longer than zero",
    );
}

fn service_named<'a>(c: &'a mailha::config::Config, name: &str) -> &'a mailha::config::Service {
    c.services
        .list
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn start_stall_defaults_to_the_policys_and_a_service_may_give_its_own() {
    let l = load(&with(
        "[services.mysql]\nstart_stall = \"20s\"\n[policy]\nstart_stall = \"3s\"\n",
    ))
    .unwrap();
    let of = |n: &str| service_named(&l.config, n).start_stall;
    assert_eq!(l.config.policy.start_stall, Duration::from_secs(3));
    assert_eq!(of("postfix"), Duration::from_secs(3));
    assert_eq!(of("mysql"), Duration::from_secs(20));
    let l = load(BASE).unwrap();
    assert_eq!(l.config.policy.start_stall, Duration::from_secs(5));
}

#[test]
fn start_stall_is_a_duration_of_at_least_a_second_below_the_start_timeout() {
    let text = with("[policy]\nstart_stall = \"soon\"\n");
    let d = one_error(&text, "policy.start_stall", "not a duration");
    assert_eq!(d.line, line_of(&text, "start_stall = \"soon\""));
    one_error(
        &with("[policy]\nstart_stall = \"500ms\"\n"),
        "policy.start_stall",
        "too short",
    );
    let text = with("[services.postfix]\nstart_stall = \"90s\"\n");
    let d = one_error(
        &text,
        "services.postfix.start_stall",
        "not shorter than policy.start_timeout (1m)",
    );
    assert_eq!(d.line, line_of(&text, "start_stall = \"90s\""));
    one_error(
        &with("[policy]\nstart_timeout = \"10s\"\nstart_stall = \"10s\"\n"),
        "policy.start_stall",
        "the op timeout would end the start first",
    );
    one_error(
        &with("[services.postfix]\nagent = \"ocf:heartbeat:postfix\"\nstart_stall = \"3s\"\n"),
        "services.postfix.start_stall",
        "for mailha's agent",
    );
}

#[test]
fn dovecots_locks_are_the_postfix_profiles_stale_locks_and_a_service_may_name_its_own() {
    let l = load(&with(
        "[services.mysql]\nstale_locks = [\"aria_log_control.lock\"]\n",
    ))
    .unwrap();
    let of = |n: &str| service_named(&l.config, n).stale_locks.clone();
    assert_eq!(
        of("dovecot"),
        [
            "dovecot-uidlist.lock",
            "dovecot-keywords.lock",
            "subscriptions.lock"
        ]
    );
    assert_eq!(of("mysql"), ["aria_log_control.lock"]);
    assert!(of("postfix").is_empty());
    let l = load(&with("[services.dovecot]\nstale_locks = []\n")).unwrap();
    assert!(
        l.config
            .services
            .list
            .iter()
            .all(|s| s.stale_locks.is_empty())
    );
}

#[test]
fn a_stale_lock_is_one_files_name_never_a_path_or_a_pattern() {
    let text = with("[services.dovecot]\nstale_locks = [\"../../etc/shadow\"]\n");
    let d = one_error(&text, "services.dovecot.stale_locks[0]", "is a path");
    assert_eq!(d.line, line_of(&text, "stale_locks = "));
    one_error(
        &with("[services.dovecot]\nstale_locks = [\"a.lock\", \"..\"]\n"),
        "services.dovecot.stale_locks[1]",
        "must be a plain file name",
    );
    one_error(
        &with("[services.dovecot]\nstale_locks = [\"*.lock\"]\n"),
        "services.dovecot.stale_locks[0]",
        "must be a plain file name",
    );
    one_error(
        &with("[services.dovecot]\nstale_locks = [\"my lock\"]\n"),
        "services.dovecot.stale_locks[0]",
        "must be a plain file name",
    );
    one_error(
        &with("[services.dovecot]\nstale_locks = [\"a.lock\", \"a.lock\"]\n"),
        "services.dovecot.stale_locks[1]",
        "listed twice",
    );
}

// --- alerts ---------------------------------------------------------------------------

const SMTP: &str = "[alerts]\ncustomer = \"ACME\"\n[alerts.smtp]\nrelay = \"198.51.100.1:587\"\nfrom = \"ha@example.com\"\nto = [\"ops@example.com\"]\n";

#[test]
fn alert_addresses_and_relay_are_checked() {
    one_error(
        &with(&SMTP.replace("ha@example.com", "ha")),
        "alerts.smtp.from",
        "not a mail address",
    );
    one_error(
        &with(&SMTP.replace("[\"ops@example.com\"]", "[\"ops@example.com\", \"a b@c\"]")),
        "alerts.smtp.to[1]",
        "not a mail address",
    );
    one_error(
        &with(&SMTP.replace(":587", ":smtp")),
        "alerts.smtp.relay",
        "not a port",
    );
    one_error(
        &with(&SMTP.replace("[\"ops@example.com\"]", "[]")),
        "alerts.smtp.to",
        "at least one",
    );
    load(&with(SMTP)).expect("valid alerts");
}

#[test]
fn alert_language_is_en_or_zh_cn() {
    one_error(
        &with(&SMTP.replace("customer", "language = \"fr\"\ncustomer")),
        "alerts.language",
        "unknown language",
    );
    load(&with(
        &SMTP.replace("customer", "language = \"zh-CN\"\ncustomer"),
    ))
    .expect("zh-CN");
}

#[test]
fn a_password_and_a_password_file_exclude_each_other() {
    let t = SMTP.replace(
        "to =",
        "user = \"u\"\npassword = \"p\"\npassword_file = \"/etc/p\"\nto =",
    );
    one_error(&with(&t), "alerts.smtp.password_file", "not both");
}

#[test]
fn an_inline_password_needs_a_private_config_file() {
    let t = with(&SMTP.replace("to =", "user = \"u\"\npassword = \"secret\"\nto ="));
    let e =
        mailha::config::load_str(std::path::Path::new("mailha.toml"), &t, Some(0o644)).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("alerts.smtp.password") && s.contains("mode 0644"),
        "{s}"
    );
    assert!(
        !s.contains("secret"),
        "the password itself is never printed: {s}"
    );
    load(&t).expect("fine when 0600");
}

#[test]
fn a_password_file_readable_by_others_is_refused_naming_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "secret").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let t = with(&SMTP.replace(
        "to =",
        &format!("user = \"u\"\npassword_file = \"{}\"\nto =", f.display()),
    ));
    one_error(&t, "alerts.smtp.password_file", "mode 0640");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    load(&t).expect("0600 is fine");
}

#[test]
fn a_user_and_a_password_come_together() {
    one_error(
        &with(&SMTP.replace("to =", "user = \"u\"\nto =")),
        "alerts.smtp.user",
        "needs a password",
    );
    one_error(
        &with(&SMTP.replace("to =", "password = \"p\"\nto =")),
        "alerts.smtp.user",
        "needs a user",
    );
}

#[test]
fn webhook_and_command_channels_are_checked() {
    let d = one_error(
        &with("[alerts]\n[alerts.webhook]\nurl = \"ftp://x/s3cr3tT0ken\"\n"),
        "alerts.webhook.url",
        "not an http:// or https:// URL",
    );
    assert!(
        !d.to_string().contains("s3cr3tT0ken"),
        "a URL may hold its token: {d}"
    );
    one_error(
        &with("[alerts]\n[alerts.command]\nargv = [\"notify-ops\"]\n"),
        "alerts.command.argv[0]",
        "absolute",
    );
    one_error(
        &with("[alerts]\nsubject = \"a\\nBcc: x@y\"\n"),
        "alerts.subject",
        "one line",
    );
}

#[test]
fn the_diagnostics_bundle_is_bounded_within_ranges() {
    let text = with("[alerts]\n[alerts.diagnostics]\nlog_lines = 5000\n");
    let d = one_error(&text, "alerts.diagnostics.log_lines", "outside 0..=1000");
    assert_eq!(d.line, line_of(&text, "log_lines = 5000"));
    one_error(
        &with("[alerts]\n[alerts.diagnostics]\nmax_bytes = 100\n"),
        "alerts.diagnostics.max_bytes",
        "outside 4096..=1048576",
    );
    one_error(
        &with("[alerts]\n[alerts.diagnostics]\nmax_lines = 0\n"),
        "alerts.diagnostics.max_lines",
        "outside 20..=10000",
    );
    one_error(
        &with("[alerts]\n[alerts.diagnostics]\nredact = false\n"),
        "alerts.diagnostics.redact",
        "unknown",
    );
    let l = load(&with(
        "[alerts]\n[alerts.diagnostics]\nenabled = false\nlog_lines = 0\nredact_personal = false\n",
    ))
    .unwrap();
    let d = &l.config.alerts.unwrap().diagnostics;
    assert!(!d.enabled && d.log_lines == 0 && !d.redact_personal);
    // Defaults, and the cluster's own addresses kept in the bundle.
    let d = load(&with("[alerts]\n"))
        .unwrap()
        .config
        .alerts
        .unwrap()
        .diagnostics;
    assert!(d.enabled && d.redact_personal);
    assert_eq!((d.log_lines, d.max_lines, d.max_bytes), (100, 600, 65536));
    for a in [
        "203.0.113.11",
        "198.51.100.12",
        "198.51.100.100",
        "198.51.100.1",
    ] {
        assert!(d.keep.contains(&a.parse().unwrap()), "{a}: {:?}", d.keep);
    }
}

#[test]
fn every_error_is_reported_in_one_run() {
    let text = edit("prefix = 24", "prefix = 99").replacen("nic = \"eth0\"", "nic = \"eth 0\"", 1);
    let errs = errors(&text);
    assert!(errs.iter().any(|d| d.field == "vip.prefix"));
    assert!(errs.iter().any(|d| d.field == "vip.nic"));
}

#[test]
fn sbd_needs_a_shared_block_device() {
    let nfs_lease = edit(
        "device = \"LABEL=mailha-lease\"",
        "nfs = \"198.51.100.30:/lease\"",
    );
    let text = format!("{nfs_lease}\n[fencing]\nmode = \"sbd\"\n");
    one_error(&text, "fencing.mode", "sbd needs a shared block device");
    load(&with("[fencing]\nmode = \"sbd\"\n")).expect("sbd on the lease disk");
}

#[test]
fn a_relay_ca_file_is_absolute_and_needs_starttls() {
    one_error(
        &with(&SMTP.replace("to =", "ca_file = \"lab-ca.pem\"\nto =")),
        "alerts.smtp.ca_file",
        "absolute",
    );
    one_error(
        &with(&SMTP.replace(
            "to =",
            "starttls = false\nca_file = \"/etc/mailha/lab-ca.pem\"\nto =",
        )),
        "alerts.smtp.ca_file",
        "without STARTTLS",
    );
    let ok = load(&with(
        &SMTP.replace("to =", "ca_file = \"/etc/mailha/lab-ca.pem\"\nto ="),
    ))
    .expect("an absolute CA file");
    let smtp = ok.config.alerts.unwrap().smtp.unwrap();
    assert_eq!(
        smtp.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/mailha/lab-ca.pem"))
    );
}

#[test]
fn a_webhook_ca_file_needs_an_https_url() {
    let hook = |url: &str| {
        format!(
            "{SMTP}\n[alerts.webhook]\nurl = \"{url}\"\nca_file = \"/etc/mailha/hook-ca.pem\"\n"
        )
    };
    one_error(
        &with(&hook("http://hooks.example.com/x")),
        "alerts.webhook.ca_file",
        "only used with an https URL",
    );
    load(&with(&hook("https://hooks.example.com/x"))).expect("https + CA file");
}

/// The helper every test above relies on: it holds a test to exactly one
/// error, so a rule that also sets off another one (a cascade) shows.
#[test]
fn one_error_refuses_a_second_error() {
    let two = BASE
        .replace("prefix = 24", "prefix = 77")
        .replace("nic = \"eth0\"", "nic = \"eth 0\"");
    let r = std::panic::catch_unwind(|| one_error(&two, "vip.prefix", "outside"));
    assert!(r.is_err(), "one_error accepted two errors");
    one_error(
        &BASE.replace("prefix = 24", "prefix = 77"),
        "vip.prefix",
        "outside",
    );
}

// --- [exporter] --------------------------------------------------------

#[test]
fn every_example_s_commented_exporter_table_loads_once_uncommented() {
    for f in ["postfix.toml", "eyou.toml", "gateway.toml", "2in1.toml"] {
        let text = std::fs::read_to_string(repo().join("examples").join(f)).unwrap();
        let block: String = text
            .lines()
            .skip_while(|l| *l != "# [exporter]")
            .map_while(|l| l.strip_prefix("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            block.starts_with("[exporter]\n"),
            "{f}: no commented [exporter]"
        );
        let c = load(&with(&block))
            .unwrap_or_else(|e| panic!("{f}: {e:?}"))
            .config;
        assert_eq!(c.exporter.listen.to_string(), "127.0.0.1:9664", "{f}");
        assert_eq!(c.exporter.scrape_timeout, Duration::from_secs(5), "{f}");
        assert!(c.exporter.auth.is_some(), "{f}");
    }
}

#[test]
fn the_exporter_listens_on_localhost_9664_without_auth_by_default() {
    let c = load(BASE).unwrap().config;
    assert_eq!(c.exporter.listen.to_string(), "127.0.0.1:9664");
    assert_eq!(c.exporter.scrape_timeout, Duration::from_secs(5));
    assert!(c.exporter.auth.is_none());
}

#[test]
fn an_exporter_address_that_is_not_an_address_and_port_is_located() {
    let text = with("[exporter]\nlisten = \"localhost:9664\"\n");
    let d = one_error(&text, "exporter.listen", "not an address and port");
    assert_eq!(d.line, line_of(&text, "listen = "));
    one_error(
        &with("[exporter]\nlisten = \"127.0.0.1:0\"\n"),
        "exporter.listen",
        "port 0",
    );
}

#[test]
fn an_exporter_reachable_from_other_hosts_without_auth_is_warned_about() {
    let w = warnings(&with("[exporter]\nlisten = \"0.0.0.0:9664\"\n"));
    assert!(
        w.iter()
            .any(|d| d.field == "exporter.listen" && d.message.contains("reachable")),
        "{w:?}"
    );
}

#[test]
fn who_runs_the_exporter_is_systemd_or_pacemaker_and_nothing_else() {
    use mailha::config::model::ExporterRunBy;
    assert_eq!(
        load(BASE).unwrap().config.exporter.run_by,
        ExporterRunBy::Systemd
    );
    let c = load(&with("[exporter]\nrun_by = \"pacemaker\"\n"))
        .unwrap()
        .config;
    assert_eq!(c.exporter.run_by, ExporterRunBy::Pacemaker);
    let text = with("[exporter]\nrun_by = \"cron\"\n");
    let d = one_error(&text, "exporter.run_by", "neither");
    assert_eq!(d.line, line_of(&text, "run_by = "));
}

#[test]
fn a_scrape_timeout_outside_1s_to_60s_is_refused() {
    one_error(
        &with("[exporter]\nscrape_timeout = \"500ms\"\n"),
        "exporter.scrape_timeout",
        "out of range",
    );
    one_error(
        &with("[exporter]\nscrape_timeout = \"2min\"\n"),
        "exporter.scrape_timeout",
        "out of range",
    );
}

#[test]
fn exporter_basic_auth_needs_a_user_and_a_private_password_file() {
    use std::os::unix::fs::PermissionsExt;
    one_error(
        &with("[exporter]\nuser = \"prometheus\"\n"),
        "exporter.user",
        "needs a password_file",
    );
    one_error(
        &with("[exporter]\npassword_file = \"/etc/mailha/exporter.pw\"\n"),
        "exporter.password_file",
        "needs a user",
    );
    one_error(
        &with("[exporter]\nuser = \"a:b\"\npassword_file = \"/etc/mailha/exporter.pw\"\n"),
        "exporter.user",
        "colon",
    );
    one_error(
        &with("[exporter]\nuser = \"p\"\npassword_file = \"exporter.pw\"\n"),
        "exporter.password_file",
        "absolute",
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let t = with(&format!(
        "[exporter]\nuser = \"prometheus\"\npassword_file = \"{}\"\n",
        f.display()
    ));
    one_error(&t, "exporter.password_file", "mode 0644");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let auth = load(&t)
        .expect("0600 is fine")
        .config
        .exporter
        .auth
        .unwrap();
    assert_eq!(auth.user, "prometheus");
    assert_eq!(auth.password_file, f);
}

#[test]
fn exporter_tls_needs_a_certificate_and_a_private_key_both_absolute() {
    use std::os::unix::fs::PermissionsExt;
    one_error(
        &with("[exporter]\ntls_cert_file = \"/etc/mailha/exporter.crt\"\n"),
        "exporter.tls_cert_file",
        "needs a tls_key_file",
    );
    one_error(
        &with("[exporter]\ntls_key_file = \"/etc/mailha/exporter.key\"\n"),
        "exporter.tls_key_file",
        "needs a tls_cert_file",
    );
    one_error(
        &with("[exporter]\ntls_cert_file = \"exporter.crt\"\ntls_key_file = \"/etc/k\"\n"),
        "exporter.tls_cert_file",
        "absolute",
    );
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("crt"), dir.path().join("key"));
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let t = with(&format!(
        "[exporter]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let d = one_error(&t, "exporter.tls_key_file", "mode 0640");
    assert_eq!(d.line, line_of(&t, "tls_key_file"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tls = load(&t).expect("0600 is fine").config.exporter.tls.unwrap();
    assert_eq!((tls.cert_file, tls.key_file), (cert, key));
}

#[test]
fn a_password_sent_in_clear_to_other_hosts_is_warned_about() {
    let t = with(
        "[exporter]\nlisten = \"0.0.0.0:9664\"\nuser = \"p\"\npassword_file = \"/etc/mailha/exporter.pw\"\n",
    );
    assert!(
        warnings(&t)
            .iter()
            .any(|w| w.field == "exporter.listen" && w.message.contains("in clear")),
        "{:?}",
        warnings(&t)
    );
}

#[test]
fn the_exporter_password_never_goes_inline() {
    let d = one_error(
        &with("[exporter]\nuser = \"p\"\npassword = \"s3cret\"\n"),
        "exporter.password",
        "unknown key",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean \"password_file\"?"));
}
