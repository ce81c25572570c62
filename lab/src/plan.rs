//! Pure planning: which commands build or remove the lab, and what is
//! left over after a teardown. No I/O here; `up`/`down` execute the plans.
//! The recipes are the measured ones of `notes-lab.md` (phase 1).

use super::cmd::Cmd;
use super::state::{HolderRec, State};
use super::topology::{Aux, LAN, NODES, Net, Topology};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Paths bind-mounted from the node's private tree (`{base}/nodeN/root`)
/// over the same path inside the node: directories, then files.
pub const PRIVATE_DIRS: &[&str] = &[
    "etc/corosync",
    "etc/postfix",
    "etc/dovecot",
    "etc/mysql",
    "etc/ssh",
    "etc/mailha",
    "var/lib/corosync",
    "var/lib/pacemaker",
    "var/log",
    "var/spool/postfix",
    "var/lib/postfix",
    "var/lib/dovecot",
    "var/lib/mysql",
    // mailha's alert spool: each node's own, as on real machines.
    "var/lib/mailha",
    "srv",
    "root",
    // The eYou stand-in's tree (`eyou_tree.rs`): /usr is the host's.
    "usr/local/eyou",
];
pub const PRIVATE_FILES: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/aliases",
    "etc/resolv.conf",
];

/// Host config trees copied into each node's private tree once.
pub const SEEDED_FROM_HOST: &[&str] = &[
    "etc/corosync",
    "etc/postfix",
    "etc/dovecot",
    "etc/mysql",
    "etc/ssh",
];

/// Where the shared data disk is mounted inside a node, and the node-private
/// device names that point at the node's OWN loop devices: the same path
/// on both nodes, different devices. They are mknod'ed in a tmpfs each node
/// mounts privately over `/dev/lab` (under /dev, so `mailha check` takes
/// them as block device paths; the host only has the empty directory).
pub const DATA_MOUNT: &str = "/srv/data";
pub const DEV_DIR: &str = "/dev/lab";
pub const DATA_DEV: &str = "/dev/lab/data";
pub const LEASE_DEV: &str = "/dev/lab/lease";

/// The mount point of the node-private `usr/local/eyou` (the host keeps
/// it empty).
pub const EYOU_MOUNT: &str = "/usr/local/eyou";

/// Bumped whenever the seeded tree changes shape: an older tree is
/// removed and seeded again.
pub const SEED_MARKER: &str = ".seeded-v4";

/// The upper layer of a node's pinned install dirs: `mailha install`
/// into this root (see `node_mount_script`).
pub fn pin_root(node_root: &Path) -> PathBuf {
    node_root.with_file_name("pin")
}

fn pin_work(node_root: &Path) -> PathBuf {
    node_root.with_file_name("pin-work")
}

/// One node's private tree on the host.
pub fn node_root(base: &Path, node: &str) -> PathBuf {
    base.join(node).join("root")
}

/// `/etc/hosts` of every node.
pub fn hosts_file(t: &Topology) -> String {
    let mut s = String::from("127.0.0.1 localhost\n");
    for n in NODES {
        let name = t.node_name(n);
        s.push_str(&format!(
            "{} {name}.lab.test {name}\n",
            t.node_addr(n, Net::Lan)
        ));
    }
    s.push_str(&format!("{} mail.lab.test mail\n", t.vip()));
    s
}

/// Resolver of every node: nothing listens on 127.0.0.1:53, so a lookup
/// fails at once. With the host's resolver (unreachable from the lab)
/// every SMTP connection waited 10 s for smtpd's peer-name lookup.
pub const RESOLV_CONF: &str = "nameserver 127.0.0.1\n";

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script (run on the host) that creates a node's private tree once:
/// copies of the host's config trees, per-node identity files, state and
/// log dirs with the owners the daemons expect.
pub fn seed_script(root: &Path, t: &Topology, node: &str) -> String {
    let r = sh_quote(&root.display().to_string());
    let mut s = String::from("set -eu\n");
    s.push_str(&format!(
        "mkdir -p {r}/etc {r}/var/lib {r}/var/spool {r}/srv/data {r}/tmp {r}/root {r}/usr/local/eyou\n"
    ));
    s.push_str(&format!("chmod 1777 {r}/tmp; chmod 700 {r}/root\n"));
    for d in SEEDED_FROM_HOST {
        s.push_str(&format!("cp -a /{d} {r}/etc/\n"));
    }
    // Host keys are per node, never the host's (ssh-keygen -A: ~2 s, once).
    s.push_str(&format!("rm -f {r}/etc/ssh/ssh_host_*\n"));
    s.push_str(&format!("ssh-keygen -q -A -f {r}\n"));
    s.push_str(&format!("mkdir -p -m 0700 {r}/etc/mailha {r}/root/.ssh\n"));
    s.push_str(&format!(
        "if [ -e /etc/aliases ]; then cp -a /etc/aliases {r}/etc/aliases; else echo 'postmaster: root' > {r}/etc/aliases; fi\n"
    ));
    s.push_str(&format!("echo {node} > {r}/etc/hostname\n"));
    s.push_str(&format!(
        "printf '%s' {} > {r}/etc/resolv.conf\n",
        sh_quote(RESOLV_CONF)
    ));
    s.push_str(&format!(
        "printf '%s' {} > {r}/etc/hosts\n",
        sh_quote(&hosts_file(t))
    ));
    s.push_str(&format!("mkdir -p {r}/var/lib/corosync {r}/var/lib/pacemaker/cib {r}/var/lib/pacemaker/pengine {r}/var/lib/pacemaker/blackbox {r}/var/lib/pacemaker/cores\n"));
    s.push_str(&format!(
        "chown -R hacluster:haclient {r}/var/lib/pacemaker; chmod 750 {r}/var/lib/pacemaker/*\n"
    ));
    s.push_str(&format!(
        "mkdir -p {r}/var/log/corosync {r}/var/log/pacemaker/bundles {r}/var/log/mysql\n"
    ));
    s.push_str(&format!("chown -R hacluster:haclient {r}/var/log/pacemaker; chmod 770 {r}/var/log/pacemaker {r}/var/log/pacemaker/bundles\n"));
    s.push_str(&format!("chown mysql:adm {r}/var/log/mysql\n"));
    s.push_str(&format!(
        "cp -a /var/spool/postfix {r}/var/spool/; cp -a /var/lib/postfix {r}/var/lib/\n"
    ));
    s.push_str(&format!(
        "mkdir -p {r}/var/lib/dovecot {r}/var/lib/mysql; chown mysql:mysql {r}/var/lib/mysql\n"
    ));
    s.push_str(&format!("mkdir -p -m 0755 {r}/var/lib/mailha\n"));
    // The alert agent runs as hacluster: its spool exists before the
    // cluster's first event (see install.rs).
    s.push_str(&format!(
        "install -d -m 0700 -o hacluster -g haclient {r}/var/lib/mailha/spool {r}/var/lib/mailha/spool/pending\n"
    ));
    s
}

/// The script run once inside a fresh holder (`nsenter -p -m -n -u`):
/// private mounts, hostname, loopback. The node's /tmp is mounted last: it
/// would hide the base dir if that lies under /tmp.
pub fn node_mount_script(root: &Path, node: &str) -> String {
    let r = sh_quote(&root.display().to_string());
    let mut s = String::from("set -eu\n");
    // Our copy of /run/netns must not keep other namespaces alive.
    s.push_str("for m in $(awk '$5 ~ \"^/run/netns\" {print $5}' /proc/self/mountinfo | sort -r); do umount -l \"$m\"; done\n");
    for d in PRIVATE_DIRS.iter().chain(PRIVATE_FILES) {
        s.push_str(&format!("mount --bind {r}/{d} /{d}\n"));
    }
    s.push_str(&format!(
        "mount -t tmpfs -o mode=755,size=64m run-{node} /run\n"
    ));
    s.push_str("mkdir -p /run/lock /run/sshd /run/mysqld /run/memcached\n");
    s.push_str("chmod 1777 /run/lock\n");
    s.push_str("chown mysql:mysql /run/mysqld; chown memcache /run/memcached\n");
    // The node's own device names (see DATA_DEV).
    s.push_str(&format!(
        "mount -t tmpfs -o mode=755,size=64k dev-lab-{node} {DEV_DIR}\n"
    ));
    // A killed corosync leaves ~26 MB of libqb files: 512 MiB.
    s.push_str(&format!(
        "mount -t tmpfs -o mode=1777,size=512m shm-{node} /dev/shm\n"
    ));
    // The binary that brought this lab up, pinned: each install dir is an
    // overlay whose upper layer holds this lab's `mailha install`, so
    // another checkout installing its own binary on the host (a second
    // lab, a test run) never changes what this lab runs. (A bind mount on
    // the file would not do: the host's install renames over it, which
    // detaches such a mount in every namespace.)
    let pin = sh_quote(&pin_root(root).display().to_string());
    let work = sh_quote(&pin_work(root).display().to_string());
    for d in mailha::install::dirs() {
        let d = d.trim_start_matches('/');
        s.push_str(&format!("mkdir -p {work}/{d}\n"));
        s.push_str(&format!(
            "mount -t overlay pin-{node} -o lowerdir=/{d},upperdir={pin}/{d},workdir={work}/{d} /{d}\n"
        ));
    }
    s.push_str(&format!("mount --bind {r}/tmp /tmp\n"));
    s.push_str(&format!("hostname {node}\n"));
    s.push_str("ip link set lo up\n");
    s
}

/// The nft commands (argv) of a fault: table `table` with an input and an
/// output chain, dropping what `in_match` and `out_match` select. Removed
/// as a whole with `nft delete table inet TABLE`.
pub fn nft_drop(
    table: &'static str,
    in_match: &[&'static str],
    out_match: &[&'static str],
) -> Vec<Vec<&'static str>> {
    let chain = |name, hook| vec!["nft", "add", "chain", "inet", table, name, hook];
    let rule = |name, m: &[&'static str]| {
        let mut v = vec!["nft", "add", "rule", "inet", table, name];
        v.extend_from_slice(m);
        v.push("drop");
        v
    };
    vec![
        vec!["nft", "add", "table", "inet", table],
        chain("in", "{ type filter hook input priority -10 ; }"),
        chain("out", "{ type filter hook output priority -10 ; }"),
        rule("in", in_match),
        rule("out", out_match),
    ]
}

/// `nsenter` into all of a node's namespaces, clean environment.
pub fn in_node(holder_pid: u32, argv: &[&str]) -> Cmd {
    Cmd::new("nsenter")
        .args(["-t", &holder_pid.to_string(), "-p", "-m", "-n", "-u", "--"])
        .args(argv.iter().copied())
        .clean_env()
}

/// A shell script inside a node.
pub fn in_node_sh(holder_pid: u32, script: &str) -> Cmd {
    in_node(holder_pid, &["/bin/sh", "-c", script])
}

fn ip(args: &[&str]) -> Cmd {
    Cmd::new("ip").args(args.iter().copied())
}

fn no_ipv6(link: &str) -> Cmd {
    Cmd::new("sysctl").args(["-q", "-w", &format!("net.ipv6.conf.{link}.disable_ipv6=1")])
}

/// What a network step creates on the host (recorded before it runs, so a
/// failure half-way is still torn down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creates {
    Nothing,
    Link(String),
    Netns(String),
}

/// The bridges: no address on the host side, so the host has no route
/// into the lab; no IPv6 on them either.
pub fn bridges(t: &Topology) -> Vec<(Creates, Cmd)> {
    let mut v = Vec::new();
    for net in Net::ALL {
        let br = t.bridge(net);
        v.push((
            Creates::Link(br.clone()),
            ip(&["link", "add", &br, "type", "bridge"]),
        ));
        v.push((Creates::Nothing, no_ipv6(&br)));
        v.push((Creates::Nothing, ip(&["link", "set", &br, "up"])));
    }
    v
}

/// One node on both bridges: the veth's inner end is created directly in
/// the holder's netns (by PID) as eth0 (lan) / eth1 (hb).
pub fn node_links(t: &Topology, n: u8, holder_pid: u32) -> Vec<(Creates, Cmd)> {
    let pid = holder_pid.to_string();
    let mut v = Vec::new();
    let mut inner = String::from("set -e\nip link set lo up\n");
    for net in Net::ALL {
        let host = t.node_veth(n, net);
        let ifn = net.node_ifname();
        v.push((
            Creates::Link(host.clone()),
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", ifn, "netns", &pid,
            ]),
        ));
        v.push((Creates::Nothing, no_ipv6(&host)));
        v.push((
            Creates::Nothing,
            ip(&["link", "set", &host, "master", &t.bridge(net), "up"]),
        ));
        inner.push_str(&format!(
            "ip addr add {}/{} dev {ifn}\nip link set {ifn} up\n",
            t.node_addr(n, net),
            net.subnet().len
        ));
    }
    inner.push_str(&format!("ip route add default via {}\n", Aux::Gw.addr()));
    let set = Cmd::new("nsenter").args(["-t", &pid, "-n", "--", "/bin/sh", "-c", &inner]);
    v.push((Creates::Nothing, set));
    v
}

/// The gw (ping target) and client namespaces on the lan bridge.
pub fn aux_links(t: &Topology) -> Vec<(Creates, Cmd)> {
    let mut v = Vec::new();
    for a in Aux::ALL {
        let ns = t.netns(a);
        let host = t.aux_veth(a);
        v.push((Creates::Netns(ns.clone()), ip(&["netns", "add", &ns])));
        v.push((
            Creates::Link(host.clone()),
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]),
        ));
        v.push((Creates::Nothing, no_ipv6(&host)));
        v.push((
            Creates::Nothing,
            ip(&["link", "set", &host, "master", &t.bridge(Net::Lan), "up"]),
        ));
        v.push((
            Creates::Nothing,
            ip(&["-n", &ns, "link", "set", "lo", "up"]),
        ));
        v.push((
            Creates::Nothing,
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/{}", a.addr(), LAN.len),
                "dev",
                "eth0",
            ]),
        ));
        v.push((
            Creates::Nothing,
            ip(&["-n", &ns, "link", "set", "eth0", "up"]),
        ));
    }
    v
}

/// One step of a teardown, in the order they must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownStep {
    /// SIGKILL the holder: every process of the node dies, its netns (and
    /// both veth ends), mount ns (and the disks mounted there), /run and
    /// /dev/shm go with it.
    KillHolder(HolderRec),
    DelNetns(String),
    DelLink(String),
    DetachLoop(PathBuf),
    /// Before anything else: every hung fusedisk path answers (EIO), so
    /// no process of the lab stays in D state on it.
    ReleaseFusedisks,
    /// After the loops: the fusedisk daemon (and its private mount).
    StopFusedisk(super::state::FusediskRec),
}

/// Teardown plan for a recorded state, plus every name the topology could
/// have created (so a crash between creating and recording leaves nothing).
/// Holders not alive any more (or recycled PIDs) are skipped.
pub fn plan_down(state: &State, alive: impl Fn(&HolderRec) -> bool) -> Vec<DownStep> {
    let t = Topology::new(&state.prefix);
    let mut v: Vec<DownStep> = Vec::new();
    if !state.fusedisks.is_empty() {
        v.push(DownStep::ReleaseFusedisks);
    }
    v.extend(
        state
            .holders
            .iter()
            .filter(|h| alive(h))
            .cloned()
            .map(DownStep::KillHolder),
    );
    let mut netns = state.netns.clone();
    for a in Aux::ALL {
        if !netns.contains(&t.netns(a)) {
            netns.push(t.netns(a));
        }
    }
    v.extend(netns.into_iter().map(DownStep::DelNetns));
    let mut links = state.links.clone();
    for l in t.host_links() {
        if !links.contains(&l) {
            links.push(l);
        }
    }
    // veths first, bridges last
    let bridges: Vec<String> = Net::ALL.iter().map(|n| t.bridge(*n)).collect();
    links.sort_by_key(|l| bridges.contains(l));
    v.extend(links.into_iter().map(DownStep::DelLink));
    v.extend(
        state
            .loops
            .iter()
            .map(|l| DownStep::DetachLoop(l.device.clone())),
    );
    v.extend(state.fusedisks.iter().cloned().map(DownStep::StopFusedisk));
    v
}

/// How long a killed holder may take to disappear before we report it
/// (a process in D state on a hung disk keeps the PID namespace alive).
pub const HOLDER_EXIT_DEADLINE: Duration = Duration::from_secs(5);

/// What is still there after a teardown, from `ip -o link show`,
/// `ip netns list`, `losetup -a` and the mount tables of all processes.
pub fn leftovers(
    t: &Topology,
    base_dir: &Path,
    ip_link: &str,
    netns_list: &str,
    losetup: &str,
    mount_lines: &[String],
) -> Vec<String> {
    let mut v = Vec::new();
    let ours = t.host_links();
    for line in ip_link.lines() {
        // "12: mhxlan: <BROADCAST..." or "13: n1-lan@if2: ..."
        if let Some(name) = line.split(": ").nth(1) {
            let name = name.split('@').next().unwrap_or(name);
            if ours.iter().any(|l| l == name) {
                v.push(format!("link {name}"));
            }
        }
    }
    let ns: Vec<String> = Aux::ALL.iter().map(|a| t.netns(*a)).collect();
    for line in netns_list.lines() {
        if let Some(name) = line.split_whitespace().next()
            && ns.iter().any(|n| n == name)
        {
            v.push(format!("netns {name}"));
        }
    }
    let base = base_dir.display().to_string();
    for line in losetup.lines() {
        if mentions_dir(line, &base) {
            v.push(format!(
                "loop device {}",
                line.split(':').next().unwrap_or(line)
            ));
        }
    }
    for m in mount_lines {
        if mentions_dir(m, &base) {
            v.push(format!("mount {m}"));
        }
    }
    v
}

/// Whether `line` names directory `dir` or a path under it, not merely a
/// path that starts with the same letters: another lab's base
/// `/var/lib/mailha-lab-test` is not under `/var/lib/mailha-lab`.
pub fn mentions_dir(line: &str, dir: &str) -> bool {
    line.match_indices(dir).any(|(i, _)| {
        matches!(
            line[i + dir.len()..].chars().next(),
            None | Some('/' | ' ' | ')' | '\t' | '\n')
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::LoopRec;

    #[test]
    fn another_labs_base_sharing_our_prefix_is_not_ours() {
        let ours = "/var/lib/mailha-lab";
        assert!(mentions_dir(
            "165 105 0:65 / /var/lib/mailha-lab/node2/pin rw",
            ours
        ));
        assert!(mentions_dir(
            "/dev/loop3: []: (/var/lib/mailha-lab/data.img)",
            ours
        ));
        assert!(mentions_dir("tmpfs /var/lib/mailha-lab rw", ours));
        assert!(!mentions_dir(
            "166 105 254:0 /var/lib/mailha-lab-test/node2/root/tmp /tmp rw",
            ours
        ));
    }

    #[test]
    fn mount_script_binds_every_private_path_and_mounts_tmp_last() {
        let s = node_mount_script(Path::new("/var/lib/mailha-lab/node1/root"), "node1");
        for d in PRIVATE_DIRS.iter().chain(PRIVATE_FILES) {
            assert!(
                s.contains(&format!(
                    "mount --bind '/var/lib/mailha-lab/node1/root'/{d} /{d}\n"
                )),
                "{d}"
            );
        }
        assert!(s.contains("size=512m shm-node1 /dev/shm"));
        let tmp = s.find("/tmp /tmp").unwrap();
        assert!(
            s.rfind("mount ").unwrap() <= tmp,
            "the /tmp bind must be the last mount"
        );
        assert!(s.starts_with("set -eu\n"));
    }

    #[test]
    fn node_links_put_eth0_on_lan_and_eth1_on_hb_inside_the_holder() {
        let t = Topology::new("mhx");
        let lines: Vec<String> = node_links(&t, 2, 4242)
            .iter()
            .map(|(_, c)| c.display())
            .collect();
        assert_eq!(
            lines[0],
            "ip link add mhxn2-lan type veth peer name eth0 netns 4242"
        );
        assert_eq!(lines[2], "ip link set mhxn2-lan master mhxlan up");
        assert_eq!(
            lines[3],
            "ip link add mhxn2-hb type veth peer name eth1 netns 4242"
        );
        let last = lines.last().unwrap();
        assert!(last.starts_with("nsenter -t 4242 -n -- /bin/sh -c"));
        assert!(last.contains("ip addr add 198.51.100.12/24 dev eth0"));
        assert!(last.contains("ip addr add 203.0.113.12/24 dev eth1"));
        assert!(last.contains("ip route add default via 198.51.100.1"));
    }

    #[test]
    fn every_created_object_is_recorded_before_it_is_made() {
        let t = Topology::new("mhx");
        let mut steps = bridges(&t);
        steps.extend(node_links(&t, 1, 1));
        steps.extend(node_links(&t, 2, 2));
        steps.extend(aux_links(&t));
        let mut links: Vec<String> = steps
            .iter()
            .filter_map(|(c, _)| match c {
                Creates::Link(l) => Some(l.clone()),
                _ => None,
            })
            .collect();
        let mut all = t.host_links();
        links.sort();
        all.sort();
        assert_eq!(links, all);
        for (c, cmd) in &steps {
            if cmd.args.get(1).map(String::as_str) == Some("add") && cmd.args[0] == "link" {
                assert!(matches!(c, Creates::Link(_)), "{}", cmd.display());
            }
        }
    }

    #[test]
    fn teardown_kills_live_holders_first_and_deletes_bridges_last() {
        let mut s = State::new("mhx", Path::new("/tmp/mhx/base"));
        s.holders = vec![
            HolderRec {
                node: "node1".into(),
                pid: 10,
                start_time: 1,
            },
            HolderRec {
                node: "node2".into(),
                pid: 20,
                start_time: 2,
            },
        ];
        s.links = vec!["mhxlan".into(), "mhxn1-lan".into()];
        s.loops = vec![LoopRec {
            node: "node1".into(),
            device: "/dev/loop7".into(),
            image: "/x".into(),
        }];
        let plan = plan_down(&s, |h| h.pid == 20);
        assert_eq!(plan[0], DownStep::KillHolder(s.holders[1].clone()));
        assert!(matches!(plan[1], DownStep::DelNetns(_)));
        let links: Vec<&str> = plan
            .iter()
            .filter_map(|p| match p {
                DownStep::DelLink(l) => Some(l.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(links.len(), 9);
        assert_eq!(&links[7..], ["mhxlan", "mhxhb"]);
        assert_eq!(
            plan.last().unwrap(),
            &DownStep::DetachLoop("/dev/loop7".into())
        );
    }

    #[test]
    fn a_hung_disk_path_is_released_first_and_its_daemon_stopped_last() {
        let mut s = State::new("mhx", Path::new("/b"));
        s.holders.push(HolderRec {
            node: "node1".into(),
            pid: 10,
            start_time: 1,
        });
        s.fusedisks.push(crate::state::FusediskRec {
            node: "node1".into(),
            mount: "/b/fusedisk/node1".into(),
            pid: Some(11),
            start_time: Some(2),
        });
        let plan = plan_down(&s, |_| true);
        assert_eq!(plan[0], DownStep::ReleaseFusedisks);
        assert!(matches!(plan[1], DownStep::KillHolder(_)));
        assert!(matches!(plan.last(), Some(DownStep::StopFusedisk(r)) if r.pid == Some(11)));
    }

    #[test]
    fn leftovers_name_only_our_objects() {
        let t = Topology::new("mhx");
        let ip_link = "1: lo: <LOOPBACK,UP>\n2: eth0: <BROADCAST>\n9: mhxn1-lan@if2: <BROADCAST>\n10: mhxlan: <BROADCAST>\n";
        let netns = "mhx-client (id: 3)\nother\n";
        let losetup =
            "/dev/loop0: [65024]:1 (/tmp/mhx/base/data.img)\n/dev/loop5: [1]:2 (/srv/other.img)\n";
        let mounts = vec!["42 1 7:0 / /srv/data rw - ext4 /tmp/mhx/base/x rw".to_string()];
        let v = leftovers(
            &t,
            Path::new("/tmp/mhx/base"),
            ip_link,
            netns,
            losetup,
            &mounts,
        );
        assert_eq!(
            v[..4],
            [
                "link mhxn1-lan",
                "link mhxlan",
                "netns mhx-client",
                "loop device /dev/loop0"
            ]
        );
        assert_eq!(v.len(), 5);
        assert!(leftovers(&t, Path::new("/tmp/mhx/base"), "2: eth0: <>\n", "", "", &[]).is_empty());
    }

    #[test]
    fn hosts_file_names_both_nodes_and_the_vip() {
        let h = hosts_file(&Topology::new(""));
        assert!(h.contains("198.51.100.11 node1.lab.test node1\n"));
        assert!(h.contains("198.51.100.12 node2.lab.test node2\n"));
        assert!(h.contains("198.51.100.100 mail.lab.test mail\n"));
    }
}
