//! ext4 multi-mount protection (MMP) at mount time, next to the lease.
//!
//! MMP guards an ext4 filesystem against a second mount: a mounted
//! filesystem's kernel thread (kmmpd) bumps a sequence number in the MMP
//! block every few seconds, and a mount that finds a sequence other than
//! "clean" waits twice the check interval, twice, to see whether it moves
//! (measured here: 44.6 s with the default 5 s update interval). A node
//! that was reset while it had the data mounted never marks the block
//! clean, so every failover after a real reset paid that wait
//! (freeze-node: 52.7 s).
//!
//! The lease already answers the question MMP asks, faster, in one case:
//! when this node holds the data lease and the peer's slot (a) last said
//! "holding" and (b) has not changed for host_dead, the peer's keeper
//! stopped renewing while the peer held the data, and by the lease's
//! formula its watchdog has reset it (docs/lease.md, "MMP after a
//! reset"). A reset machine runs no kmmpd: the sequence is stale, and the
//! storage agent marks it clean (`tune2fs -f -E clear_mmp`) instead of
//! letting the kernel wait. In every other case (the peer alive, the
//! peer dead but not holding, e.g. a keeper stopped by hand on a machine
//! where someone mounted the disk by hand) MMP keeps its say and the
//! kernel waits as it always did.
//!
//! Pure: parsing and the decision. The reads run in a child with a
//! deadline (`io::mmp`), the clear through `exec::run`.

use std::time::Duration;

/// `mmp_magic`.
const MMP_MAGIC: u32 = 0x004D_4D50;
/// `EXT4_MMP_SEQ_CLEAN`: unmounted cleanly (or cleared).
pub const SEQ_CLEAN: u32 = 0xFF4D_4D50;
/// `EXT4_MMP_SEQ_FSCK`: e2fsck has the filesystem open.
pub const SEQ_FSCK: u32 = 0xE24D_4D50;
/// `EXT4_MMP_MIN_CHECK_INTERVAL`.
const MIN_CHECK_INTERVAL: u64 = 5;

/// Where the MMP block is, from the first 4 KiB of the device: its byte
/// offset and the superblock's update interval (seconds). None: not ext4,
/// or no MMP.
pub fn locate(head: &[u8]) -> Option<(u64, u16)> {
    let id = crate::mounts::superblock::identify(head)?;
    if id.fstype != "ext4" || !id.mmp {
        return None;
    }
    let sb = head.get(1024..1024 + 0x170)?;
    let log_block = u32::from_le_bytes(sb[0x18..0x1c].try_into().expect("4 bytes"));
    if log_block > 6 {
        return None;
    }
    let block_size = 1024u64 << log_block;
    let update = u16::from_le_bytes([sb[0x166], sb[0x167]]);
    let block = u64::from_le_bytes(sb[0x168..0x170].try_into().expect("8 bytes"));
    if block == 0 {
        return None;
    }
    Some((block.checked_mul(block_size)?, update))
}

/// The MMP block, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mmp {
    pub seq: u32,
    /// Who wrote it last (the kernel's host name: in a lab of namespaces,
    /// the host's for every node, so never used to decide).
    pub nodename: String,
    /// Seconds, as the last writer's kmmpd set it.
    pub check_interval: u16,
    /// The superblock's update interval, seconds.
    pub update_interval: u16,
}

impl Mmp {
    /// Parses the block at the offset `locate` gave.
    pub fn parse(block: &[u8], update_interval: u16) -> Option<Mmp> {
        let b = block.get(..0x78)?;
        let le32 = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        if le32(0) != MMP_MAGIC {
            return None;
        }
        let name = &b[0x10..0x50];
        let end = name.iter().position(|c| *c == 0).unwrap_or(name.len());
        Some(Mmp {
            seq: le32(4),
            nodename: String::from_utf8_lossy(&name[..end]).into_owned(),
            check_interval: u16::from_le_bytes([b[0x70], b[0x71]]),
            update_interval,
        })
    }

    /// About how long a mount waits on this block: the kernel waits its
    /// check interval x 2 + 1 (at most + 60) before and again after
    /// writing its own sequence, unless the block is clean.
    pub fn kernel_wait(&self) -> Duration {
        if self.seq == SEQ_CLEAN {
            return Duration::ZERO;
        }
        let c = (u64::from(self.update_interval) * 2)
            .max(MIN_CHECK_INTERVAL)
            .max(u64::from(self.check_interval));
        Duration::from_secs(2 * (2 * c + 1).min(c + 60))
    }
}

/// What the lease keeper says, as far as MMP is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub holds: bool,
    pub peer: String,
    /// The peer's slot has not changed for host_dead.
    pub peer_dead: bool,
    /// The peer's slot, as last read, says it holds the data.
    pub peer_holding: bool,
}

impl From<&crate::lease::client::Status> for LeaseView {
    fn from(s: &crate::lease::client::Status) -> LeaseView {
        LeaseView {
            holds: s.holds,
            peer: s.peer.clone(),
            peer_dead: s.peer_dead,
            peer_holding: s.peer_holding,
        }
    }
}

/// What a start logs when it cleared the block, and when it left the
/// wait to the kernel (the lab's freeze-node drill reads the node's log
/// for them: the lab crate's `drill::mmp_note`).
pub const LOG_CLEARED: &str = "MMP block marked clean";
pub const LOG_KERNEL_WAITS: &str = "the kernel's MMP check";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Clean (or no MMP): the mount goes ahead at once.
    Mount,
    /// Stale for certain: mark it clean, then mount.
    Clear(String),
    /// The lease cannot vouch for it: the kernel's own wait decides.
    Wait(String),
    /// e2fsck is running somewhere: never mount.
    Refuse(String),
}

pub fn plan(mmp: &Mmp, lease: &LeaseView) -> Plan {
    if mmp.seq == SEQ_CLEAN {
        return Plan::Mount;
    }
    if mmp.seq == SEQ_FSCK {
        return Plan::Refuse(format!(
            "the MMP block says e2fsck has the filesystem open (on {:?}): not mounting under a running fsck",
            mmp.nodename
        ));
    }
    let last = format!(
        "the MMP block was last written by {:?} (sequence {:#x})",
        mmp.nodename, mmp.seq
    );
    let wait = mmp.kernel_wait().as_secs();
    if !lease.holds {
        return Plan::Wait(format!(
            "{last}; this node does not hold the lease, so {LOG_KERNEL_WAITS} (~{wait} s) decides"
        ));
    }
    match (lease.peer_dead, lease.peer_holding) {
        (true, true) => Plan::Clear(format!(
            "{last}; {} held the data lease and its lease counter has stood still for host_dead, so its watchdog has reset it and nothing there writes the block: marking it clean instead of waiting ~{wait} s",
            lease.peer
        )),
        (true, false) => Plan::Wait(format!(
            "{last}; {} stopped renewing its lease without holding the data (a keeper stopped by hand?), so the lease cannot rule out a mount there: {LOG_KERNEL_WAITS} (~{wait} s) decides",
            lease.peer
        )),
        (false, _) => Plan::Wait(format!(
            "{last}; {} is alive by its lease counter, so {LOG_KERNEL_WAITS} (~{wait} s) decides (a mount by hand there would be refused)",
            lease.peer
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::superblock::tests::ext4_image;

    fn mmp(seq: u32) -> Mmp {
        Mmp {
            seq,
            nodename: "node1".into(),
            check_interval: 10,
            update_interval: 5,
        }
    }

    fn lease(holds: bool, peer_dead: bool, peer_holding: bool) -> LeaseView {
        LeaseView {
            holds,
            peer: "node1".into(),
            peer_dead,
            peer_holding,
        }
    }

    /// The plan's kind, for tables of cases.
    fn kind(p: Plan) -> &'static str {
        match p {
            Plan::Mount => "mount",
            Plan::Clear(_) => "clear",
            Plan::Wait(_) => "wait",
            Plan::Refuse(_) => "refuse",
        }
    }

    #[test]
    fn the_lease_clears_only_a_block_left_by_a_peer_that_died_holding_it() {
        // (MMP sequence, we hold, peer dead, peer held) -> plan
        let cases = [
            // Clean: the mount goes ahead, whatever the lease says.
            ((SEQ_CLEAN, true, true, true), "mount"),
            ((SEQ_CLEAN, false, false, false), "mount"),
            // The one case the lease proves: the peer held the data and
            // stood still for host_dead, so its watchdog reset it.
            ((7, true, true, true), "clear"),
            // The peer alive: a mount by hand there must still be refused.
            ((7, true, false, true), "wait"),
            ((7, true, false, false), "wait"),
            // Dead but not holding: its keeper may have been stopped by
            // hand, its watchdog disarmed, the disk mounted by hand.
            ((7, true, true, false), "wait"),
            // Without the lease nothing is cleared.
            ((7, false, true, true), "wait"),
            // A running fsck is never mounted under.
            ((SEQ_FSCK, true, true, true), "refuse"),
        ];
        for ((seq, h, d, p), want) in cases {
            assert_eq!(
                kind(plan(&mmp(seq), &lease(h, d, p))),
                want,
                "{seq:#x} {h} {d} {p}"
            );
        }
    }

    #[test]
    fn the_kernel_wait_follows_the_check_interval() {
        // Update 5 s, check 10 s: 2 x (2 x 10 + 1) = 42 s (measured 44.6 s).
        assert_eq!(mmp(7).kernel_wait(), Duration::from_secs(42));
        assert_eq!(mmp(SEQ_CLEAN).kernel_wait(), Duration::ZERO);
    }

    #[test]
    fn a_real_mmp_block_is_found_and_read() {
        let Some((_dir, img)) = ext4_image(&["-O", "mmp"]) else {
            return;
        };
        let data = std::fs::read(&img).unwrap();
        let (off, update) = locate(&data[..4096]).expect("MMP is on");
        assert_eq!(update, 5, "mkfs's default update interval");
        let m = Mmp::parse(&data[off as usize..off as usize + 1024], update).expect("MMP magic");
        assert_eq!(m.seq, SEQ_CLEAN, "a new filesystem is clean");
    }

    #[test]
    fn no_mmp_feature_no_block() {
        let Some((_dir, img)) = ext4_image(&[]) else {
            return;
        };
        let data = std::fs::read(&img).unwrap();
        assert_eq!(locate(&data[..4096]), None);
        assert_eq!(locate(&[0u8; 4096]), None);
        assert_eq!(Mmp::parse(&[0u8; 1024], 5), None);
    }
}
