//! Names and addresses of the lab (DESIGN section 9). Everything is
//! derived from one optional prefix so a second lab (tests, explorations)
//! never clashes with the real one.
//!
//! Never the host uplink subnet (`FORBIDDEN` below): the lab must not touch it.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub len: u8,
}

impl Subnet {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, len: u8) -> Self {
        Subnet {
            base: Ipv4Addr::new(a, b, c, d),
            len,
        }
    }

    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        }
    }

    /// Do the two subnets share at least one address?
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = Self::mask(self.len.min(other.len));
        (u32::from(self.base) & m) == (u32::from(other.base) & m)
    }

    /// `base` with its last octet replaced (the lab uses /24s only).
    pub fn host(&self, last: u8) -> Ipv4Addr {
        let o = self.base.octets();
        Ipv4Addr::new(o[0], o[1], o[2], last)
    }

    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok()?),
            None => (s, 32),
        };
        if l > 32 {
            return None;
        }
        Some(Subnet {
            base: a.parse().ok()?,
            len: l,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.len)
    }
}

/// The client-facing network: nodes, VIP, ping target, client, NFS.
pub const LAN: Subnet = Subnet::new(198, 51, 100, 0, 24);
/// The second heartbeat network.
pub const HB: Subnet = Subnet::new(203, 0, 113, 0, 24);
/// This host's uplink (documented here so a test can prove we avoid it).
pub const FORBIDDEN: Subnet = Subnet::new(192, 0, 2, 0, 24);

pub const VIP_HOST: u8 = 100;
pub const GW_HOST: u8 = 1;
pub const CLIENT_HOST: u8 = 50;
pub const NFS_HOST: u8 = 30;

/// The two lab networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Lan,
    Hb,
}

impl Net {
    pub const ALL: [Net; 2] = [Net::Lan, Net::Hb];

    pub fn subnet(self) -> Subnet {
        match self {
            Net::Lan => LAN,
            Net::Hb => HB,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Net::Lan => "lan",
            Net::Hb => "hb",
        }
    }

    /// The interface name inside a node.
    pub fn node_ifname(self) -> &'static str {
        match self {
            Net::Lan => "eth0",
            Net::Hb => "eth1",
        }
    }
}

/// The plain network namespaces beside the nodes (no PID 1 of their own: nothing
/// runs there but what we exec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aux {
    Gw,
    Client,
    /// The lab's NFS server (nfs-ganesha, `lab::nfs`).
    Nfs,
}

impl Aux {
    pub const ALL: [Aux; 3] = [Aux::Gw, Aux::Client, Aux::Nfs];

    pub fn as_str(self) -> &'static str {
        match self {
            Aux::Gw => "gw",
            Aux::Client => "client",
            Aux::Nfs => "nfs",
        }
    }

    pub fn addr(self) -> Ipv4Addr {
        LAN.host(match self {
            Aux::Gw => GW_HOST,
            Aux::Client => CLIENT_HOST,
            Aux::Nfs => NFS_HOST,
        })
    }
}

/// Node numbers are 1 and 2.
pub const NODES: [u8; 2] = [1, 2];

/// Every name the lab creates on the host, from one prefix ("" for the
/// real lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Topology {
            prefix: prefix.to_string(),
        }
    }

    pub fn node_name(&self, n: u8) -> String {
        format!("node{n}")
    }

    pub fn bridge(&self, net: Net) -> String {
        format!("{}{}", self.prefix, net.as_str())
    }

    /// Host end of a node's veth on `net`, e.g. `n1-lan`.
    pub fn node_veth(&self, n: u8, net: Net) -> String {
        format!("{}n{n}-{}", self.prefix, net.as_str())
    }

    /// Host end of an aux namespace's veth, e.g. `gw-lan`.
    pub fn aux_veth(&self, a: Aux) -> String {
        format!("{}{}-lan", self.prefix, a.as_str())
    }

    /// Name under /run/netns, e.g. `client` (or `mhx-client`).
    pub fn netns(&self, a: Aux) -> String {
        if self.prefix.is_empty() {
            a.as_str().to_string()
        } else {
            format!("{}-{}", self.prefix, a.as_str())
        }
    }

    pub fn node_addr(&self, n: u8, net: Net) -> Ipv4Addr {
        net.subnet().host(10 + n)
    }

    pub fn vip(&self) -> Ipv4Addr {
        LAN.host(VIP_HOST)
    }

    /// All links the lab creates on the host (bridges last, so deleting in
    /// this order never leaves a dangling port).
    pub fn host_links(&self) -> Vec<String> {
        let mut v = Vec::new();
        for n in NODES {
            for net in Net::ALL {
                v.push(self.node_veth(n, net));
            }
        }
        for a in Aux::ALL {
            v.push(self.aux_veth(a));
        }
        for net in Net::ALL {
            v.push(self.bridge(net));
        }
        v
    }
}

/// The first host route (from `ip -o -4 route show`) that overlaps a lab
/// subnet. The default route is not an overlap: it is where the host sends
/// what it has no better route for, and the lab never routes to it.
pub fn overlapping_route(ip_route_output: &str) -> Option<String> {
    for line in ip_route_output.lines() {
        // `ip route show table all` prefixes some routes with their type.
        const TYPES: &[&str] = &[
            "unicast",
            "local",
            "broadcast",
            "multicast",
            "anycast",
            "blackhole",
            "unreachable",
            "prohibit",
            "throw",
            "nat",
        ];
        let mut words = line.split_whitespace().skip_while(|w| TYPES.contains(w));
        let Some(dest) = words.next() else {
            continue;
        };
        if dest == "default" {
            continue;
        }
        let Some(s) = Subnet::parse(dest) else {
            continue;
        };
        if s.overlaps(&LAN) || s.overlaps(&HB) {
            return Some(line.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_never_touches_the_uplink_subnet() {
        assert!(!LAN.overlaps(&FORBIDDEN));
        assert!(!HB.overlaps(&FORBIDDEN));
        let t = Topology::new("");
        for n in NODES {
            for net in Net::ALL {
                assert!(
                    !FORBIDDEN.overlaps(&Subnet::parse(&t.node_addr(n, net).to_string()).unwrap())
                );
            }
        }
    }

    #[test]
    fn addresses_follow_design_section_9() {
        let t = Topology::new("");
        assert_eq!(t.node_addr(1, Net::Lan).to_string(), "198.51.100.11");
        assert_eq!(t.node_addr(2, Net::Hb).to_string(), "203.0.113.12");
        assert_eq!(t.vip().to_string(), "198.51.100.100");
        assert_eq!(Aux::Gw.addr().to_string(), "198.51.100.1");
        assert_eq!(Aux::Client.addr().to_string(), "198.51.100.50");
        assert_eq!(Aux::Nfs.addr().to_string(), "198.51.100.30");
    }

    #[test]
    fn names_carry_the_prefix_and_fit_in_ifnamsiz() {
        let real = Topology::new("");
        assert_eq!(real.bridge(Net::Lan), "lan");
        assert_eq!(real.netns(Aux::Client), "client");
        assert_eq!(real.node_veth(1, Net::Hb), "n1-hb");
        let t = Topology::new("mhx");
        assert_eq!(t.bridge(Net::Hb), "mhxhb");
        assert_eq!(t.netns(Aux::Gw), "mhx-gw");
        for l in t.host_links() {
            assert!(l.starts_with("mhx"), "{l}");
            assert!(l.len() <= 15, "{l} is longer than IFNAMSIZ-1");
        }
        assert_eq!(t.host_links().last().unwrap(), "mhxhb");
    }

    #[test]
    fn a_host_route_into_a_lab_subnet_is_an_overlap_the_default_route_is_not() {
        let host = "default via 10.9.8.1 dev eth0\n10.9.8.0/24 dev eth0 proto kernel scope link src 10.9.8.2\n";
        assert_eq!(overlapping_route(host), None);
        let bad = format!("{host}198.51.0.0/16 via 10.9.8.9 dev eth0\n");
        assert_eq!(
            overlapping_route(&bad).as_deref(),
            Some("198.51.0.0/16 via 10.9.8.9 dev eth0")
        );
        assert!(overlapping_route("203.0.113.7 dev tun0 scope link\n").is_some());
        assert!(overlapping_route("10.0.0.0/8 dev x\n").is_none());
        assert!(overlapping_route("local 198.51.100.7 dev eth1 table local\n").is_some());
        assert!(overlapping_route("broadcast 10.9.8.255 dev eth0 table local\n").is_none());
    }

    #[test]
    fn subnet_parse_rejects_garbage() {
        assert_eq!(Subnet::parse("1.2.3.4/33"), None);
        assert_eq!(Subnet::parse("nope"), None);
        assert_eq!(Subnet::parse("1.2.3.4"), Some(Subnet::new(1, 2, 3, 4, 32)));
    }
}
