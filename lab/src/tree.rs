//! A node's disk, made once per `lab up` on top of the host's packages (the
//! overlay of `node.rs`): what a Debian 12 server has that the host's tree
//! does not (its identity, its network, its own ssh host keys, only the
//! services a mail cluster node runs at boot) and mailha installed. Pure
//! plan (`plan`), then `Lab::make_tree` writes it.

use super::cmd::Cmd;
use super::plan::{RESOLV_CONF, hosts_file};
use super::topology::{Aux, Net, Topology};
use super::{Lab, LabError};
use std::path::Path;

/// One thing the tree gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A file: path under the root, text, mode, owner (user, group).
    File(
        &'static str,
        String,
        u32,
        Option<(&'static str, &'static str)>,
    ),
    /// A directory: path, mode, owner.
    Dir(&'static str, u32, Option<(&'static str, &'static str)>),
    /// Everything inside each `*.wants` directory under this path goes:
    /// the host's enabled services are the host's, not the node's.
    ClearWants(&'static str),
    /// A command run on the host with the root as its last argument.
    Run(Vec<&'static str>),
}

/// The units a node starts at boot before `mailha setup` (which enables
/// the lease keeper, corosync and Pacemaker): sshd (setup reaches the peer
/// over ssh) and its network. The mail daemons' own units stay disabled:
/// Pacemaker starts them.
pub const BOOT_UNITS: &[&str] = &["ssh.service", "systemd-networkd.service"];

/// The node's network as systemd-networkd reads it: eth0 on the lan with
/// the default route to the gw, eth1 on the heartbeat network; no IPv6.
pub fn network_file(t: &Topology, n: u8, net: Net) -> String {
    let mut s = format!(
        "[Match]\nName={}\n\n[Network]\nAddress={}/{}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        net.node_ifname(),
        t.node_addr(n, net),
        net.subnet().len
    );
    if net == Net::Lan {
        s.push_str(&format!("Gateway={}\n", Aux::Gw.addr()));
    }
    s
}

/// What node `n`'s tree gets, in order. `machine_id`: 32 hex digits, new
/// for every tree (two machines never share one).
pub fn plan(t: &Topology, n: u8, machine_id: &str) -> Vec<Step> {
    let hacluster = Some(("hacluster", "haclient"));
    vec![
        Step::File("etc/hostname", format!("{}\n", t.node_name(n)), 0o644, None),
        Step::File("etc/hosts", hosts_file(t), 0o644, None),
        Step::File("etc/resolv.conf", RESOLV_CONF.into(), 0o644, None),
        Step::File("etc/machine-id", format!("{machine_id}\n"), 0o444, None),
        Step::File(
            "etc/systemd/network/10-lab-eth0.network",
            network_file(t, n, Net::Lan),
            0o644,
            None,
        ),
        Step::File(
            "etc/systemd/network/10-lab-eth1.network",
            network_file(t, n, Net::Hb),
            0o644,
            None,
        ),
        Step::ClearWants("etc/systemd/system"),
        Step::Run(
            ["systemctl", "enable", "--quiet"]
                .into_iter()
                .chain(BOOT_UNITS.iter().copied())
                .chain(["--root"])
                .collect(),
        ),
        // Needs a kernel NFS client this host lacks: it would fail the boot.
        Step::Run(vec![
            "systemctl",
            "mask",
            "--quiet",
            "run-rpc_pipefs.mount",
            "--root",
        ]),
        // Host keys are the node's own, never the host's.
        Step::Run(vec!["sh", "-c", "rm -f \"$1\"/etc/ssh/ssh_host_*", "sh"]),
        Step::Run(vec!["ssh-keygen", "-q", "-A", "-f"]),
        Step::Dir("etc/mailha", 0o700, None),
        Step::Dir("root/.ssh", 0o700, None),
        Step::Dir(DATA_MOUNT_REL, 0o755, None),
        Step::Dir("var/log/mysql", 0o2750, Some(("mysql", "adm"))),
        Step::Dir("var/log/pacemaker/bundles", 0o770, hacluster),
        Step::Dir("var/lib/mailha", 0o755, None),
        // The alert agent runs as hacluster: its spool exists before the
        // cluster's first event (pending/ its own, the spool root's with
        // its group let through, as `Spool::share_with_pacemaker` does).
        Step::Dir("var/lib/mailha/spool", 0o710, Some(("root", "haclient"))),
        Step::Dir("var/lib/mailha/spool/pending", 0o700, hacluster),
    ]
}

/// `DATA_MOUNT` under the root (a test keeps the two in step).
const DATA_MOUNT_REL: &str = "srv/data";

/// A new machine id: 128 random bits as systemd writes them.
pub fn new_machine_id() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        // Unique enough for two nodes on one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Lab<'_> {
    /// Writes node `n`'s tree under `root` (its mounted overlay) and
    /// installs mailha in it, or, given its package, stages that for
    /// `dpkg -i` once the node runs (returns where the node finds it).
    pub fn make_tree(
        &self,
        n: u8,
        root: &Path,
        package: Option<&Path>,
    ) -> Result<Option<String>, LabError> {
        for step in plan(&self.topo, n, &new_machine_id()) {
            match step {
                Step::File(rel, text, mode, owner) => super::up::put(
                    &root.join(rel),
                    &text,
                    mode,
                    owner.map(|(u, g)| (root, u, g)),
                )?,
                Step::Dir(rel, mode, owner) => make_dir(root, &root.join(rel), mode, owner)?,
                Step::ClearWants(rel) => {
                    let dir = root.join(rel);
                    for e in std::fs::read_dir(&dir)
                        .map_err(LabError::io(&dir))?
                        .flatten()
                    {
                        let p = e.path();
                        if p.extension().is_some_and(|x| x == "wants") && p.is_dir() {
                            std::fs::remove_dir_all(&p).map_err(LabError::io(&p))?;
                        }
                    }
                }
                Step::Run(argv) => {
                    self.runner.run_ok(
                        &Cmd::new(argv[0])
                            .args(argv[1..].iter().copied())
                            .arg(root.display().to_string()),
                    )?;
                }
            }
        }
        if let Some(deb) = package {
            return self.stage_package(deb, root).map(Some);
        }
        mailha::install::install(root, &self.mailha).map_err(|e| LabError::Io {
            path: root.join(mailha::install::BIN_PATH.trim_start_matches('/')),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(None)
    }
}

fn make_dir(
    root: &Path,
    p: &Path,
    mode: u32,
    owner: Option<(&'static str, &'static str)>,
) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p).map_err(LabError::io(p))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(LabError::io(p))?;
    if let Some((user, group)) = owner {
        super::up::chown(root, p, user, group)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_network_is_its_lan_address_with_the_gw_route_and_its_hb_address() {
        let t = Topology::new("mhx");
        let lan = network_file(&t, 2, Net::Lan);
        assert!(lan.contains("Name=eth0\n"));
        assert!(lan.contains("Address=198.51.100.12/24\n"));
        assert!(lan.contains("Gateway=198.51.100.1\n"));
        let hb = network_file(&t, 2, Net::Hb);
        assert!(hb.contains("Name=eth1\n") && hb.contains("Address=203.0.113.12/24\n"));
        assert!(!hb.contains("Gateway"));
    }

    #[test]
    fn a_tree_clears_the_hosts_services_before_enabling_its_own_and_gets_fresh_host_keys() {
        let p = plan(&Topology::new(""), 1, "0123456789abcdef0123456789abcdef");
        let at = |f: &dyn Fn(&Step) -> bool| p.iter().position(f).unwrap();
        let clear = at(&|s| matches!(s, Step::ClearWants(_)));
        let enable = at(&|s| matches!(s, Step::Run(a) if a[1] == "enable"));
        assert!(clear < enable);
        let Step::Run(a) = &p[enable] else {
            unreachable!()
        };
        assert!(a.contains(&"ssh.service") && a.contains(&"systemd-networkd.service"));
        assert!(
            !a.iter()
                .any(|u| u.contains("corosync") || u.contains("postfix"))
        );
        let rm = at(&|s| matches!(s, Step::Run(a) if a[0] == "sh"));
        let keygen = at(&|s| matches!(s, Step::Run(a) if a[0] == "ssh-keygen"));
        assert!(rm < keygen);
        assert!(p.contains(&Step::File(
            "etc/machine-id",
            "0123456789abcdef0123456789abcdef\n".into(),
            0o444,
            None
        )));
        assert!(p.contains(&Step::Dir("srv/data", 0o755, None)));
        assert_eq!(format!("/{DATA_MOUNT_REL}"), crate::plan::DATA_MOUNT);
    }

    #[test]
    fn machine_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (new_machine_id(), new_machine_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
