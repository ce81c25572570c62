//! `lab up`, the cluster part (pure pieces): the lab's mailha.toml
//! (`lab/*.toml`, embedded), the mail stack's files, the ssh trust between
//! the nodes, the pre-seeded CIB, the one-time data init, the `mailha
//! setup` command line and the "everything started" test. `up.rs` runs
//! them. The recipes are the measured ones of `notes-lab.md` (phase 1).

use super::LabError;
use super::cmd::Cmd;
use super::plan::{DATA_DEV, DATA_MOUNT};
use super::topology::{NODES, Net, Topology};
use mailha::cib::xml::El;
use mailha::config::{self, Config};
use std::path::{Path, PathBuf};

/// The lab's configs, one per profile (also in the repo as `lab/*.toml`).
pub const STOCK_TOML: &str = include_str!("../configs/stock.toml");
pub const POSTFIX_TOML: &str = include_str!("../configs/postfix.toml");
pub const EYOU_TOML: &str = include_str!("../configs/eyou.toml");

/// Which agents run the lab's mail stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The stock ClusterLabs agents (Filesystem, IPaddr2, mysql, lsb:memcached,
    /// postfix, dovecot): the baseline.
    Stock,
    /// mailha's own agents (ocf:mailha:*, fence_mailha).
    Postfix,
    /// mailha's `eyou` profile on the lab's eYou stand-in (an eYou-shaped
    /// tree driving the Debian daemons; `eyou_tree.rs`).
    Eyou,
}

impl Profile {
    pub fn toml(self) -> &'static str {
        match self {
            Profile::Stock => STOCK_TOML,
            Profile::Postfix => POSTFIX_TOML,
            Profile::Eyou => EYOU_TOML,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Stock => "stock",
            Profile::Postfix => "postfix",
            Profile::Eyou => "eyou",
        }
    }
}

/// The mailha.toml the lab installs in both nodes.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Where it came from: `lab/stock.toml (built in)` or a path.
    pub origin: String,
    pub text: String,
    pub config: Config,
}

/// Loads the lab's config (a file, or the profile's built-in one) and
/// checks it fits the lab: nodes `node1`/`node2` with lab addresses.
pub fn load_lab_config(
    profile: Profile,
    file: Option<&Path>,
    t: &Topology,
    release: super::release::Release,
) -> Result<LabConfig, LabError> {
    let (origin, text) = match file {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(LabError::io(p))?,
        ),
        None => (
            format!("lab/{}.toml (built in)", profile.as_str()),
            match profile {
                Profile::Postfix => for_release(profile.toml(), release),
                _ => profile.toml().to_string(),
            },
        ),
    };
    // The eYou stand-in is read from a copy on the host: the nodes' copies
    // are written later, and the host has none (the nodes must see the
    // config exactly as it will load there).
    let standin = match profile {
        Profile::Eyou => {
            let d = tempfile::tempdir().map_err(LabError::io(&std::env::temp_dir()))?;
            super::eyou_tree::write(d.path()).map_err(LabError::io(d.path()))?;
            Some(d)
        }
        _ => None,
    };
    let eyou_files = standin.as_ref().map(|d| d.path());
    let loaded = config::load_str_with(Path::new(&origin), &text, Some(0o600), eyou_files)
        .map_err(|e| LabError::Config(e.to_string()))?;
    fits_the_lab(&loaded.config, t).map_err(LabError::Config)?;
    Ok(LabConfig {
        origin,
        text,
        config: loaded.config,
    })
}

/// A built-in config as the nodes' release needs it: the `postfix`
/// profile's default unit for Postfix is Debian 12's, so on another
/// release the lab names the one that runs the master there (an
/// administrator on Debian 13 does the same: docs/config.md).
pub fn for_release(text: &str, release: super::release::Release) -> String {
    let unit = release.postfix_unit();
    if unit == super::release::Release::Bookworm.postfix_unit() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 40);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[services.postfix]" {
            out.push_str(&format!("unit = \"{unit}\"\n"));
        }
    }
    out
}

/// The lab has two nodes, `node1` and `node2`, each with one address per
/// lab network.
pub fn fits_the_lab(cfg: &Config, t: &Topology) -> Result<(), String> {
    for (i, n) in cfg.cluster.nodes.iter().enumerate() {
        let num = NODES[i];
        let want = t.node_name(num);
        if n.name != want {
            return Err(format!(
                "cluster.nodes[{i}].name is {:?}; the lab's nodes are node1 and node2",
                n.name
            ));
        }
        let ours: Vec<std::net::IpAddr> = Net::ALL
            .iter()
            .map(|net| t.node_addr(num, *net).into())
            .collect();
        if let Some(a) = n.addresses.iter().find(|a| !ours.contains(a)) {
            return Err(format!(
                "{want}'s address {a} is not one of the lab's ({} or {})",
                ours[0], ours[1]
            ));
        }
    }
    Ok(())
}

/// Postfix: virtual mailboxes for lab.test on the shared disk, queue on the
/// shared disk, no chroot (it would need copies of /etc in the queue),
/// its own log file (no syslog in the nodes), no /etc/mailname (absent on
/// the host): `myorigin` instead.
pub const POSTFIX_MAIN_CF: &str = "\
# written by `mailha lab up`
compatibility_level = 3.6
myhostname = mail.lab.test
mydomain = lab.test
myorigin = $mydomain
mydestination = localhost
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8 198.51.100.0/24
smtpd_banner = $myhostname ESMTP
biff = no
queue_directory = /srv/data/postfix
data_directory = /var/lib/postfix
maillog_file = /var/log/postfix.log
maillog_file_prefixes = /var/log, /dev/stdout
alias_maps =
alias_database =
virtual_mailbox_domains = lab.test
virtual_mailbox_base = /srv/data/vmail
virtual_mailbox_maps = texthash:/etc/postfix/vmailbox
virtual_alias_maps = texthash:/etc/postfix/virtual
virtual_uid_maps = static:8
virtual_gid_maps = static:8
virtual_minimum_uid = 8
";

pub const POSTFIX_VMAILBOX: &str = "\
user1@lab.test lab.test/user1/Maildir/
user2@lab.test lab.test/user2/Maildir/
";

/// A mail domain must accept mail for its postmaster (RFC 5321 section
/// 4.5.1) and, by custom (RFC 2142), abuse: both reach user1.
pub const POSTFIX_VIRTUAL: &str = "\
postmaster@lab.test user1@lab.test
abuse@lab.test user1@lab.test
";

/// Dovecot: the whole file (Debian's conf.d includes are not read).
pub const DOVECOT_CONF: &str = "\
# written by `mailha lab up`
protocols = imap pop3
listen = *
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = /var/log/dovecot.log
base_dir = /run/dovecot
mail_location = maildir:/srv/data/vmail/%d/%n/Maildir
first_valid_uid = 8
mail_uid = mail
mail_gid = mail
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u /etc/dovecot/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=/srv/data/vmail/%d/%n
}
";

/// The same for Dovecot 2.4 (Debian 13), whose configuration language
/// changed: a version line first, `mail_driver`/`mail_path` for
/// `mail_location`, `%{user|domain}` for `%d`, named passdb/userdb blocks.
pub const DOVECOT_24_CONF: &str = "\
# written by `mailha lab up` (Dovecot 2.4)
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
protocols = imap pop3
listen = *
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
log_path = /var/log/dovecot.log
base_dir = /run/dovecot
mail_driver = maildir
mail_path = /srv/data/vmail/%{user|domain}/%{user|username}/Maildir
mail_home = /srv/data/vmail/%{user|domain}/%{user|username}
first_valid_uid = 8
mail_uid = mail
mail_gid = mail
passdb passwd-file {
  passwd_file_path = /etc/dovecot/users
}
userdb static {
  fields {
    uid = mail
    gid = mail
    home = /srv/data/vmail/%{user|domain}/%{user|username}
  }
}
";

/// The lab's test mailboxes (root:dovecot 0640; lab-only passwords).
pub const DOVECOT_USERS: &str = "\
user1@lab.test:{PLAIN}secret1
user2@lab.test:{PLAIN}secret2
";

pub const MARIADB_CNF: &str = "\
# written by `mailha lab up`
[mysqld]
datadir = /srv/data/mysql
socket = /run/mysqld/mysqld.sock
pid-file = /run/mysqld/mysqld.pid
bind-address = 127.0.0.1
log_error = /var/log/mysql/error.log
";

/// A file the lab writes into a node's tree: path relative to the node's
/// root, content, mode, and owner:group when not root.
pub type NodeFile = (
    &'static str,
    &'static str,
    u32,
    Option<(&'static str, &'static str)>,
);

/// Files of the mail stack, as the nodes' release reads them.
pub fn mail_files(release: super::release::Release) -> Vec<NodeFile> {
    let dovecot = if release.dovecot_24() {
        DOVECOT_24_CONF
    } else {
        DOVECOT_CONF
    };
    vec![
        ("etc/postfix/main.cf", POSTFIX_MAIN_CF, 0o644, None),
        ("etc/postfix/vmailbox", POSTFIX_VMAILBOX, 0o644, None),
        ("etc/postfix/virtual", POSTFIX_VIRTUAL, 0o644, None),
        ("etc/dovecot/dovecot.conf", dovecot, 0o644, None),
        (
            "etc/dovecot/users",
            DOVECOT_USERS,
            0o640,
            Some(("root", "dovecot")),
        ),
        (
            "etc/mysql/mariadb.conf.d/90-lab.cnf",
            MARIADB_CNF,
            0o644,
            None,
        ),
    ]
}

/// Run once per `up` inside node1: a fresh data disk gets the postfix
/// queue, the mailbox tree and an initialized MariaDB, then is unmounted
/// again for the cluster to mount. Static: nothing from a config in it.
pub fn data_init_script() -> String {
    format!(
        "set -eu
mount -t ext4 {DATA_DEV} {DATA_MOUNT}
trap 'umount {DATA_MOUNT}' EXIT
mkdir -p {DATA_MOUNT}/postfix {DATA_MOUNT}/vmail
chown mail:mail {DATA_MOUNT}/vmail
postfix check
mariadb-install-db --user=mysql --datadir={DATA_MOUNT}/mysql --skip-test-db --auth-root-authentication-method=socket >/dev/null
"
    )
}

/// Where the lab's ssh identity lives inside every node.
pub const NODE_KEY: &str = "/root/.ssh/lab_ed25519";
pub const NODE_KNOWN_HOSTS: &str = "/root/.ssh/lab_known_hosts";

/// `known_hosts` lines for both nodes (name and both addresses), from
/// each node's ed25519 host public key file content.
pub fn known_hosts(t: &Topology, host_keys: &[(u8, String)]) -> String {
    let mut s = String::new();
    for (n, pubkey) in host_keys {
        let key: Vec<&str> = pubkey.split_whitespace().take(2).collect();
        let names = [
            t.node_name(*n),
            t.node_addr(*n, Net::Hb).to_string(),
            t.node_addr(*n, Net::Lan).to_string(),
        ];
        s.push_str(&format!("{} {}\n", names.join(","), key.join(" ")));
    }
    s
}

/// root's ssh client config in each node: the lab's key and known_hosts,
/// so `mailha apply` and `mailha config pull` in a node reach the peer as
/// on machines whose root keys an administrator set up.
pub fn ssh_client_config() -> String {
    format!("IdentityFile {NODE_KEY}\nUserKnownHostsFile {NODE_KNOWN_HOSTS}\n")
}

/// `mailha setup` as node1 runs it: the lab's key and known_hosts; the
/// peer's side is the constant `mailha setup --receive` over ssh.
pub fn setup_argv() -> Vec<String> {
    [
        "/usr/sbin/mailha",
        "--config",
        config::DEFAULT_PATH,
        "setup",
        "--ssh-option=-i",
        &format!("--ssh-option={NODE_KEY}"),
        "--ssh-option=-o",
        &format!("--ssh-option=UserKnownHostsFile={NODE_KNOWN_HOSTS}"),
        "--wait",
        "120s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The commands that make the pre-seeded CIB at `file`: generated by
/// Pacemaker's own tools (a hand-written feature set newer than the
/// installed Pacemaker makes it refuse every update). `dc-deadtime=5s`
/// cuts "both online" from ~22 s to ~8 s.
pub fn cib_seed_cmds(file: &Path, cluster_name: &str) -> Vec<Cmd> {
    let f = file.display().to_string();
    let mut v = vec![Cmd::new("cibadmin").arg("--empty")];
    for (name, value) in [
        ("dc-deadtime", "5s"),
        ("stonith-enabled", "false"),
        ("cluster-name", cluster_name),
    ] {
        v.push(Cmd::new("env").arg(format!("CIB_file={f}")).args([
            "crm_attribute",
            "--type",
            "crm_config",
            "--name",
            name,
            "--update",
            value,
        ]));
    }
    v
}

/// How many resource instances the configuration runs on two nodes
/// (a clone runs one per node).
pub fn expected_instances(conf: &El) -> usize {
    conf.find("resources")
        .map(|r| {
            r.children
                .iter()
                .map(|c| match c.name.as_str() {
                    "clone" => 2,
                    "group" => c.children.iter().filter(|x| x.name == "primitive").count(),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Every agent the configuration names, with the file Pacemaker runs.
pub fn required_agents(conf: &El) -> Vec<(String, PathBuf)> {
    fn walk(e: &El, out: &mut Vec<(String, PathBuf)>) {
        if e.name == "primitive" {
            let class = e.get("class").unwrap_or_default();
            let kind = e.get("type").unwrap_or_default();
            let (spec, path) = match (class, e.get("provider")) {
                ("ocf", Some(p)) => (
                    format!("ocf:{p}:{kind}"),
                    PathBuf::from(format!("/usr/lib/ocf/resource.d/{p}/{kind}")),
                ),
                ("lsb", _) => (
                    format!("lsb:{kind}"),
                    PathBuf::from(format!("/etc/init.d/{kind}")),
                ),
                ("stonith", _) => (
                    format!("stonith:{kind}"),
                    PathBuf::from(format!("/usr/sbin/{kind}")),
                ),
                (c, _) => (format!("{c}:{kind}"), PathBuf::new()),
            };
            if !out.iter().any(|(s, _)| *s == spec) {
                out.push((spec, path));
            }
        }
        for c in &e.children {
            walk(c, out);
        }
    }
    let mut v = Vec::new();
    walk(conf, &mut v);
    v
}

/// Ok when both nodes are online and `expected` resource instances are
/// started and none failed; else what is still missing.
pub fn all_started(st: &mailha::status::Status, expected: usize) -> Result<(), String> {
    let online = st.nodes.iter().filter(|n| n.online).count();
    if online < 2 {
        return Err(format!("{online} of 2 nodes online"));
    }
    let started = st
        .resources
        .iter()
        .filter(|r| r.role == "Started" && !r.failed)
        .count();
    let failed: Vec<&str> = st
        .resources
        .iter()
        .filter(|r| r.failed)
        .map(|r| r.id.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(format!("failed: {}", failed.join(", ")));
    }
    if started < expected {
        let waiting: Vec<String> = st
            .resources
            .iter()
            .filter(|r| r.role != "Started")
            .map(|r| format!("{} {}", r.id, r.role))
            .collect();
        return Err(format!(
            "{started} of {expected} resources started; not yet: {}",
            waiting.join(", ")
        ));
    }
    Ok(())
}

/// Programs `lab up` needs on the host (the nodes share its /usr).
pub const PREREQUISITES: &[&str] = &[
    // The nodes boot systemd in containers (Debian's systemd-container).
    "systemd-nspawn",
    "systemctl",
    "nsenter",
    "ip",
    "losetup",
    "mkfs.ext4",
    "sysctl",
    "ssh",
    "sshd",
    "ssh-keygen",
    "corosync",
    "pacemakerd",
    "crm_mon",
    "cibadmin",
    "crm_attribute",
    "postfix",
    "postconf",
    "dovecot",
    "mariadbd",
    "mariadb-install-db",
    "memcached",
    // The stock Filesystem agent refuses to run without it (kmod).
    "modprobe",
];

/// The programs of `names` found in none of `dirs`.
pub fn missing_programs(names: &[&str], dirs: &[&Path]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !dirs.iter().any(|d| d.join(n).is_file()))
        .map(|n| n.to_string())
        .collect()
}

/// What is missing on this host for `lab up` (empty: nothing).
pub fn missing_prerequisites() -> Vec<String> {
    let dirs: Vec<&Path> = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(Path::new)
    .collect();
    missing_programs(PREREQUISITES, &dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock() -> Config {
        load_lab_config(Profile::Stock, None, &Topology::new(""), Default::default())
            .unwrap()
            .config
    }

    #[test]
    fn both_built_in_configs_load_and_fit_the_lab() {
        let t = Topology::new("");
        for p in [Profile::Stock, Profile::Postfix, Profile::Eyou] {
            let c = load_lab_config(p, None, &t, Default::default()).unwrap();
            assert_eq!(c.config.cluster.name, "lab");
            assert_eq!(
                c.config.cluster.token_timeout,
                std::time::Duration::from_secs(1)
            );
            assert_eq!(c.config.vip.address.to_string(), t.vip().to_string());
        }
    }

    #[test]
    fn the_eyou_profile_discovers_exactly_the_stand_ins_services_under_the_eyou_root() {
        use super::super::eyou_tree;
        let c = load_lab_config(Profile::Eyou, None, &Topology::new(""), Default::default())
            .unwrap()
            .config;
        assert_eq!(c.services.eyou_version.as_deref(), Some(eyou_tree::VERSION));
        let mut names: Vec<&str> = c.services.list.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        let mut want: Vec<&str> = eyou_tree::SERVICES.iter().map(|s| s.name).collect();
        want.sort();
        assert_eq!(names, want);
        let control = format!(
            "{}/{}",
            eyou_tree::ROOT,
            mailha::profiles::eyou::CONTROL_SCRIPT
        );
        for s in &c.services.list {
            let standin = eyou_tree::SERVICES
                .iter()
                .find(|x| x.name == s.name)
                .unwrap();
            // Read from a copy on the host, named as the nodes see it.
            assert_eq!(s.start, [control.as_str(), "start", s.name.as_str()]);
            assert_eq!(s.stop, [control.as_str(), "stop", s.name.as_str()]);
            assert_eq!(s.pid_file.as_deref(), Some(Path::new(standin.pid_file)));
            assert!(s.executable.is_some(), "{}: the Debian binary", s.name);
        }
        // smtp needs mproxy, which the stand-in lacks: ordered after mysql.
        let smtp = c.services.list.iter().find(|s| s.name == "smtp").unwrap();
        assert_eq!(smtp.depends_on, ["mysql"]);
    }

    #[test]
    fn a_config_for_other_nodes_is_refused() {
        let t = Topology::new("");
        let mut c = stock();
        c.cluster.nodes[1].name = "mail2".into();
        assert!(
            fits_the_lab(&c, &t)
                .unwrap_err()
                .contains("node1 and node2")
        );
        let mut c = stock();
        c.cluster.nodes[0].addresses[0] = "198.51.100.99".parse().unwrap();
        assert!(
            fits_the_lab(&c, &t)
                .unwrap_err()
                .contains("198.51.100.99 is not one of the lab's")
        );
    }

    #[test]
    fn the_stock_profile_uses_stock_agents_only() {
        let conf = mailha::cib::render(&stock());
        let agents: Vec<String> = required_agents(&conf).into_iter().map(|(s, _)| s).collect();
        // The mail on stock agents only; the config sync (which never
        // touches the mail) is mailha's on every profile.
        for a in agents.iter().filter(|a| *a != "ocf:mailha:config") {
            assert!(
                !a.contains("mailha"),
                "stock profile names mailha's agent {a}"
            );
        }
        for want in [
            "ocf:heartbeat:Filesystem",
            "ocf:heartbeat:IPaddr2",
            "ocf:heartbeat:mysql",
            "lsb:memcached",
            "ocf:heartbeat:postfix",
            "ocf:heartbeat:dovecot",
        ] {
            assert!(agents.iter().any(|a| a == want), "{want} in {agents:?}");
        }
        // vip + data + mysql + memcached + postfix + dovecot + ping and
        // the config sync on both nodes
        assert_eq!(expected_instances(&conf), 10);
        let (_, path) = required_agents(&conf)
            .into_iter()
            .find(|(s, _)| s == "lsb:memcached")
            .unwrap();
        assert_eq!(path, Path::new("/etc/init.d/memcached"));
    }

    #[test]
    fn the_postfix_profile_needs_mailhas_agents() {
        let c = load_lab_config(
            Profile::Postfix,
            None,
            &Topology::new(""),
            Default::default(),
        )
        .unwrap()
        .config;
        let agents: Vec<String> = required_agents(&mailha::cib::render(&c))
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert!(agents.contains(&"ocf:mailha:service".to_string()));
        assert!(agents.contains(&"ocf:mailha:storage".to_string()));
    }

    #[test]
    fn known_hosts_name_each_node_by_name_and_both_addresses() {
        let t = Topology::new("");
        let kh = known_hosts(
            &t,
            &[
                (1, "ssh-ed25519 AAAA1 root@x\n".into()),
                (2, "ssh-ed25519 AAAA2".into()),
            ],
        );
        assert_eq!(
            kh,
            "node1,203.0.113.11,198.51.100.11 ssh-ed25519 AAAA1\nnode2,203.0.113.12,198.51.100.12 ssh-ed25519 AAAA2\n"
        );
    }

    #[test]
    fn the_setup_command_passes_the_lab_key_and_known_hosts_as_argv() {
        let v = setup_argv();
        assert_eq!(v[0], "/usr/sbin/mailha");
        assert!(v.contains(&"--ssh-option=-i".to_string()));
        assert!(v.contains(&format!(
            "--ssh-option=UserKnownHostsFile={NODE_KNOWN_HOSTS}"
        )));
    }

    #[test]
    fn the_cib_seed_is_generated_by_pacemakers_tools() {
        let v: Vec<String> = cib_seed_cmds(Path::new("/b/seed.xml"), "lab")
            .iter()
            .map(Cmd::display)
            .collect();
        assert_eq!(v[0], "cibadmin --empty");
        assert_eq!(
            v[1],
            "env CIB_file=/b/seed.xml crm_attribute --type crm_config --name dc-deadtime --update 5s"
        );
        assert!(v[3].ends_with("--name cluster-name --update lab"));
    }

    #[test]
    fn started_means_both_online_and_every_instance_started() {
        use mailha::status::{NodeState, Resource, Status};
        let node = |n: &str, online| NodeState {
            name: n.into(),
            online,
            ..Default::default()
        };
        let rsc = |id: &str, role: &str| Resource {
            id: id.into(),
            role: role.into(),
            ..Default::default()
        };
        let mut st = Status {
            nodes: vec![node("node1", true), node("node2", false)],
            resources: vec![rsc("vip", "Started"), rsc("svc-data", "Stopped")],
            ..Default::default()
        };
        assert!(all_started(&st, 2).unwrap_err().contains("1 of 2 nodes"));
        st.nodes[1].online = true;
        let e = all_started(&st, 2).unwrap_err();
        assert!(e.contains("svc-data Stopped"), "{e}");
        st.resources[1].role = "Started".into();
        all_started(&st, 2).unwrap();
        assert!(all_started(&st, 3).is_err(), "a resource not yet listed");
    }

    #[test]
    fn missing_programs_are_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("here"), "").unwrap();
        assert_eq!(
            missing_programs(&["here", "gone"], &[d.path()]),
            vec!["gone".to_string()]
        );
    }

    #[test]
    fn node_scripts_hold_no_config_values() {
        let s = data_init_script();
        assert!(s.contains("mount -t ext4 /dev/lab/data /srv/data"));
        assert!(s.contains("mariadb-install-db --user=mysql --datadir=/srv/data/mysql"));
    }

    #[test]
    fn on_trixie_nodes_the_postfix_profile_names_the_unit_that_runs_the_master() {
        use crate::release::Release;
        let t = Topology::new("");
        let unit = |r| {
            let c = load_lab_config(Profile::Postfix, None, &t, r)
                .unwrap()
                .config;
            let s = c
                .services
                .list
                .iter()
                .find(|s| s.name == "postfix")
                .unwrap();
            s.unit.clone()
        };
        assert_eq!(
            unit(Release::Bookworm).as_deref(),
            Some("postfix@-.service")
        );
        assert_eq!(unit(Release::Trixie).as_deref(), Some("postfix.service"));
        assert_eq!(for_release(STOCK_TOML, Release::Bookworm), STOCK_TOML);
    }
}
