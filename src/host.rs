//! This machine as the cluster sees it: its host name, the addresses
//! bound here, which configured node it is, and which boot of it this is.
//! Below both `setup` (which finds the node it runs on) and the lease
//! keeper (whose slot and "same boot" depend on it).

use crate::config::{self, Config};
use std::path::Path;
use std::time::Duration;

/// Which configured node this machine is: by hostname first, else by an
/// address bound here. Pure over what was observed.
pub fn local_node<'a>(
    cfg: &'a Config,
    hostname: &str,
    local_addrs: &[std::net::IpAddr],
) -> Option<&'a config::Node> {
    let short = hostname.split('.').next().unwrap_or(hostname);
    cfg.cluster
        .nodes
        .iter()
        .find(|n| n.name == hostname || n.name == short)
        .or_else(|| {
            cfg.cluster
                .nodes
                .iter()
                .find(|n| n.addresses.iter().any(|a| local_addrs.contains(a)))
        })
}

/// Addresses bound on this machine, from `ip -o addr`.
pub fn bound_addresses() -> Vec<std::net::IpAddr> {
    let Ok(o) = crate::exec::run(
        &["ip", "-o", "addr", "show"],
        &[],
        None,
        Duration::from_secs(5),
    ) else {
        return Vec::new();
    };
    parse_ip_addr(&o.stdout)
}

pub fn parse_ip_addr(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.find(|w| *w == "inet" || *w == "inet6")?;
            it.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A boot of this machine: the kernel's boot id and PID 1's start time.
/// On a real machine both change exactly at boot; in the lab a node's
/// PID 1 is its holder, started anew whenever the node is, so a node
/// killed by its emulated watchdog comes back as a new boot.
pub fn boot_id(proc_root: &Path) -> u64 {
    use sha2::Digest;
    let kernel =
        std::fs::read_to_string(proc_root.join("sys/kernel/random/boot_id")).unwrap_or_default();
    let init = std::fs::read_to_string(proc_root.join("1/stat"))
        .ok()
        .and_then(|s| crate::procs::start_time_of(&s))
        .unwrap_or(0);
    let h = sha2::Sha256::digest(format!("{}/{init}", kernel.trim()).as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// This node and the other one, or None when this machine is neither.
pub fn me_and_peer<'a>(
    cfg: &'a Config,
    hostname: &str,
    local_addrs: &[std::net::IpAddr],
) -> Option<(&'a config::Node, &'a config::Node)> {
    let me = local_node(cfg, hostname, local_addrs)?;
    let peer = cfg.cluster.nodes.iter().find(|n| n.id != me.id)?;
    Some((me, peer))
}

/// Whether the config describes this machine: one node entry is this
/// machine, and every address it lists is bound here (corosync binds
/// them; a wrong one breaks that heartbeat link). The problems name the
/// field, so the caller locates them in the file. Pure.
pub fn identity_problems(
    cfg: &Config,
    hostname: &str,
    local_addrs: &[std::net::IpAddr],
) -> Vec<config::Problem> {
    use config::FieldPath;
    let Some(me) = local_node(cfg, hostname, local_addrs) else {
        return vec![config::Problem::error(
            FieldPath::root().key("cluster").key("nodes"),
            format!(
                "this machine ({hostname}) is neither {} nor {}: no name is its hostname and no address is bound here",
                cfg.cluster.nodes[0].name, cfg.cluster.nodes[1].name
            ),
        )];
    };
    let i = cfg
        .cluster
        .nodes
        .iter()
        .position(|n| n.id == me.id)
        .unwrap_or(0);
    me.addresses
        .iter()
        .enumerate()
        .filter(|(_, a)| !local_addrs.contains(a))
        .map(|(j, a)| {
            config::Problem::error(
                FieldPath::root()
                    .key("cluster")
                    .key("nodes")
                    .index(i)
                    .key("addresses")
                    .index(j),
                format!("{a} is not an address of this machine ({hostname})"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        config::example("postfix.toml").config
    }

    #[test]
    fn the_local_node_is_found_by_hostname_then_by_address() {
        let c = cfg();
        assert_eq!(
            local_node(&c, "mail2.example.com", &[]).unwrap().name,
            "mail2"
        );
        let a: std::net::IpAddr = "198.51.100.11".parse().unwrap();
        assert_eq!(local_node(&c, "other", &[a]).unwrap().name, "mail1");
        assert!(local_node(&c, "other", &[]).is_none());
    }

    #[test]
    fn ip_addr_output_gives_the_bound_addresses() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n2: eth0    inet 198.51.100.11/24 brd 198.51.100.255 scope global eth0\n2: eth0    inet6 fe80::1/64 scope link\n";
        let v = parse_ip_addr(text);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].to_string(), "198.51.100.11");
    }

    #[test]
    fn a_boot_is_the_kernel_boot_and_pid_1s_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("sys/kernel/random")).unwrap();
        std::fs::create_dir_all(p.join("1")).unwrap();
        std::fs::write(p.join("sys/kernel/random/boot_id"), "abc\n").unwrap();
        let stat = |start: u64| {
            format!("1 (mailha-lab) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0")
        };
        std::fs::write(p.join("1/stat"), stat(500)).unwrap();
        let a = boot_id(p);
        assert_eq!(a, boot_id(p), "stable within a boot");
        std::fs::write(p.join("1/stat"), stat(900)).unwrap();
        assert_ne!(a, boot_id(p), "a node restarted is a new boot");
    }

    #[test]
    fn a_node_entry_with_an_address_not_bound_here_is_named_by_its_field() {
        let c = cfg();
        let addrs: Vec<std::net::IpAddr> = c.cluster.nodes[1].addresses.clone();
        assert!(identity_problems(&c, "mail2", &addrs).is_empty());
        let p = identity_problems(&c, "mail2", &addrs[..1]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path.to_string(), "cluster.nodes[1].addresses[1]");
        let p = identity_problems(&c, "elsewhere", &[]);
        assert!(p[0].message.contains("neither mail1 nor mail2"), "{p:?}");
    }
}
