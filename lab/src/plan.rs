//! Pure planning: which commands build or remove the lab, and what is
//! left over after a teardown. No I/O here; `up`/`down` execute the plans.
//! The recipes are the measured ones of `notes-lab.md` (phase 1).

use super::cmd::Cmd;
use super::state::{NodeRec, State};
use super::topology::{Aux, LAN, NODES, Net, Topology};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the shared data disk is mounted inside a node, and the node's
/// device names that point at its OWN loop devices: the same path on both
/// nodes, different devices, bound into the node's /dev at each boot
/// (under /dev, so `mailha check` takes them as block device paths).
pub const DATA_MOUNT: &str = "/srv/data";
pub const DEV_DIR: &str = "/dev/lab";
pub const DATA_DEV: &str = "/dev/lab/data";
pub const LEASE_DEV: &str = "/dev/lab/lease";

/// One node's root on the host: its disk (`node.rs`), as the host reads
/// and writes it.
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

/// `nsenter` into all of a node's namespaces (those of its PID 1), clean
/// environment.
pub fn in_node(pid1: u32, argv: &[&str]) -> Cmd {
    Cmd::new("nsenter")
        .args(["-t", &pid1.to_string(), "-a", "--"])
        .args(argv.iter().copied())
        .clean_env()
}

/// A shell script inside a node.
pub fn in_node_sh(pid1: u32, script: &str) -> Cmd {
    in_node(pid1, &["/bin/sh", "-c", script])
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
    /// SIGKILL to the node's PID 1: every process of the node dies, its
    /// netns (and both veth ends), its mounts (and the disks mounted
    /// there) go with it; its nspawn supervisor exits.
    PowerOff(NodeRec),
    DelNetns(String),
    DelLink(String),
    DetachLoop(PathBuf),
    /// Before anything else: every hung fusedisk path answers (EIO), so
    /// no process of the lab stays in D state on it.
    ReleaseFusedisks,
    /// After the loops: the fusedisk daemon (and its private mount).
    StopFusedisk(super::state::FusediskRec),
    /// Once the node is off: its disk (the overlay, then its tmpfs).
    UnmountNode(String),
    /// Once the node is off: its cgroup in every hierarchy.
    RemoveCgroups(String),
    /// Last: the base dir's own shared mount (`node::base_mount_cmds`).
    UnmountBase,
}

/// Teardown plan for a recorded state, plus every name the topology could
/// have created (so a crash between creating and recording leaves nothing).
/// Holders not alive any more (or recycled PIDs) are skipped.
pub fn plan_down(state: &State, alive: impl Fn(&NodeRec) -> bool) -> Vec<DownStep> {
    let t = Topology::new(&state.prefix);
    let mut v: Vec<DownStep> = Vec::new();
    if !state.fusedisks.is_empty() {
        v.push(DownStep::ReleaseFusedisks);
    }
    v.extend(
        state
            .nodes
            .iter()
            .filter(|h| alive(h))
            .cloned()
            .map(DownStep::PowerOff),
    );
    // Every node the topology has, recorded or not (a crash between a
    // mount and its record leaves nothing).
    for n in NODES {
        v.push(DownStep::UnmountNode(t.node_name(n)));
        v.push(DownStep::RemoveCgroups(t.node_name(n)));
    }
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
    v.push(DownStep::UnmountBase);
    v
}

/// How long a node powered off may take to disappear before we report it
/// (a process in D state on a hung disk keeps the PID namespace alive).
pub const NODE_EXIT_DEADLINE: Duration = Duration::from_secs(5);

/// What is still there after a teardown, from `ip -o link show`,
/// `ip netns list`, `losetup -a`, the mount tables of all processes and
/// the nodes' cgroup directories that still exist.
pub fn leftovers(
    t: &Topology,
    base_dir: &Path,
    ip_link: &str,
    netns_list: &str,
    losetup: &str,
    mount_lines: &[String],
    cgroups: &[PathBuf],
) -> Vec<String> {
    let mut v: Vec<String> = cgroups
        .iter()
        .map(|c| format!("cgroup {}", c.display()))
        .collect();
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
    fn every_created_object_is_recorded_before_it_is_made() {
        let t = Topology::new("mhx");
        let mut steps = bridges(&t);
        steps.extend(aux_links(&t));
        // The nodes' veths are made by systemd-nspawn; `up` records their
        // host ends before each boot.
        let nodes = NODES
            .iter()
            .flat_map(|n| Net::ALL.iter().map(|net| t.node_veth(*n, *net)));
        let mut links: Vec<String> = nodes
            .chain(steps.iter().filter_map(|(c, _)| match c {
                Creates::Link(l) => Some(l.clone()),
                _ => None,
            }))
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
    fn teardown_powers_live_nodes_off_first_and_deletes_bridges_last() {
        let mut s = State::new("mhx", Path::new("/tmp/mhx/base"));
        s.nodes = vec![
            NodeRec {
                node: "node1".into(),
                pid: 10,
                start_time: 1,
            },
            NodeRec {
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
        assert_eq!(plan[0], DownStep::PowerOff(s.nodes[1].clone()));
        assert_eq!(plan[1], DownStep::UnmountNode("node1".into()));
        assert_eq!(plan[2], DownStep::RemoveCgroups("node1".into()));
        assert!(matches!(plan[5], DownStep::DelNetns(_)));
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
            plan[plan.len() - 2],
            DownStep::DetachLoop("/dev/loop7".into())
        );
        assert_eq!(plan.last().unwrap(), &DownStep::UnmountBase);
    }

    #[test]
    fn a_hung_disk_path_is_released_first_and_its_daemon_stopped_last() {
        let mut s = State::new("mhx", Path::new("/b"));
        s.nodes.push(NodeRec {
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
        assert!(matches!(plan[1], DownStep::PowerOff(_)));
        assert!(matches!(&plan[plan.len() - 2], DownStep::StopFusedisk(r) if r.pid == Some(11)));
        assert_eq!(plan.last().unwrap(), &DownStep::UnmountBase);
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
            &[],
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
        assert!(
            leftovers(
                &t,
                Path::new("/tmp/mhx/base"),
                "2: eth0: <>\n",
                "",
                "",
                &[],
                &[]
            )
            .is_empty()
        );
        let cg = [PathBuf::from("/sys/fs/cgroup/unified/mailha-lab-mhx-node1")];
        assert_eq!(
            leftovers(&t, Path::new("/b"), "", "", "", &[], &cg),
            ["cgroup /sys/fs/cgroup/unified/mailha-lab-mhx-node1"]
        );
    }

    #[test]
    fn hosts_file_names_both_nodes_and_the_vip() {
        let h = hosts_file(&Topology::new(""));
        assert!(h.contains("198.51.100.11 node1.lab.test node1\n"));
        assert!(h.contains("198.51.100.12 node2.lab.test node2\n"));
        assert!(h.contains("198.51.100.100 mail.lab.test mail\n"));
    }
}
