//! The lease's on-disk format: a header block, then one 4 KiB block per
//! node id (block `n` belongs to node `n`). Every block is written whole
//! and only by its owner (the header once, at initialisation), so a slot
//! never has two writers and never needs a lock.
//!
//! All integers are little-endian; each record ends with a CRC-32C of the
//! bytes before it (the checksum sanlock uses for its leader records), so
//! a torn or foreign block is told apart from a valid one. The record
//! sits at the start of its block; the rest of the block is zero.
//!
//! Version 1 layout (offsets in bytes):
//!
//! header (block 0)                    slot (block n, 1 <= n <= 255)
//! ```text
//!   0  8  magic "MAILHALH"              0  8  magic "MAILHASL"
//!   8  4  version = 1                   8  4  version = 1
//!  12  4  block size = 4096            12  4  node id (= n)
//!  16  4  max node id = 255            16  8  counter (bumped at every write)
//!  20  4  reserved, 0                  24  4  flags: 1 holding, 2 claiming, 4 fenced
//!  24 64  cluster name, NUL padded     28  4  fence request: target node (0 none)
//!  88  8  io_timeout ms                32  8  fence request: id
//!  96  8  renew ms                     40  8  highest request id acked
//! 104  8  renew_fail ms                48  8  cluster id (hash of the name)
//! 112  8  watchdog ms                  56  4  CRC-32C of bytes 0..56
//! 120  8  host_dead ms
//! 128  4  CRC-32C of bytes 0..128
//! ```

use std::time::Duration;

/// One I/O unit: a multiple of every logical block size in use (512 and
/// 4096), so O_DIRECT accepts it on any device.
pub const BLOCK: usize = 4096;
pub const VERSION: u32 = 1;
/// Slots are found by node id, so the highest id bounds the lease's size:
/// 256 blocks, 1 MiB (the original kit's heartbeat region was 1 MiB too).
pub const MAX_NODE_ID: u32 = 255;
/// Bytes a lease device or file needs.
pub const LEASE_SIZE: u64 = BLOCK as u64 * (MAX_NODE_ID as u64 + 1);

const HEADER_MAGIC: &[u8; 8] = b"MAILHALH";
const SLOT_MAGIC: &[u8; 8] = b"MAILHASL";
const HEADER_LEN: usize = 128;
const SLOT_LEN: usize = 64;
const NAME_LEN: usize = 64;

pub const FLAG_HOLDING: u32 = 1;
pub const FLAG_CLAIMING: u32 = 2;
pub const FLAG_FENCED: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a mailha lease block (magic {0:02x?})")]
    Foreign([u8; 8]),
    #[error("lease format version {0}; this mailha reads version {VERSION}")]
    Version(u32),
    #[error(
        "checksum mismatch: stored {stored:08x}, computed {computed:08x} (torn or damaged block)"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("block size {0} in the header; this mailha uses {BLOCK}")]
    BlockSize(u32),
    #[error("slot {slot} carries node id {found}")]
    WrongNode { slot: u32, found: u32 },
    #[error("node id {0} is outside 1..={MAX_NODE_ID}: the lease has one slot per id")]
    NodeId(u32),
    #[error("cluster name {0:?} is empty or longer than {NAME_LEN} bytes")]
    ClusterName(String),
    #[error("a block is {BLOCK} bytes, got {0}")]
    Length(usize),
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bitwise: the
/// records are 60 to 132 bytes, a table would buy nothing.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The cluster id stamped in every slot: the first 8 bytes of SHA-256 of
/// the cluster name, so a slot left by another cluster's keeper on a
/// reused device is not taken for a live peer.
pub fn cluster_id(name: &str) -> u64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// Where node `id`'s slot starts.
pub fn slot_offset(id: u32) -> Result<u64, FormatError> {
    if id == 0 || id > MAX_NODE_ID {
        return Err(FormatError::NodeId(id));
    }
    Ok(id as u64 * BLOCK as u64)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub cluster: String,
    pub io_timeout: Duration,
    pub renew: Duration,
    pub renew_fail: Duration,
    pub watchdog: Duration,
    pub host_dead: Duration,
}

/// A fence request posted in the requester's slot: "node `target`, fence
/// yourself; this is request `id`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FenceRequest {
    pub target: u32,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub node: u32,
    /// Bumped at every write: the peer judges liveness by watching it
    /// change, on its own clock.
    pub counter: u64,
    /// This node holds the data lease (it may have the data mounted).
    pub holding: bool,
    /// This node is in its collision window, trying to acquire.
    pub claiming: bool,
    /// This node fenced itself and holds nothing until restarted.
    pub fenced: bool,
    pub request: Option<FenceRequest>,
    /// The highest fence request id addressed to this node that it has
    /// carried out (0: none).
    pub acked: u64,
    pub cluster_id: u64,
    /// Which boot of the machine wrote this: a keeper restarted in the
    /// same boot (the node was not reset) may still have the data
    /// mounted and must resume holding, one started after a reset must
    /// not.
    pub boot: u64,
}

/// What reading a slot block can show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotImage {
    /// All zero: no keeper ever wrote here (a freshly made lease).
    Blank,
    Valid(Slot),
    /// Unreadable content: torn, damaged, or another program's; kept as
    /// the checksum so a change of content still counts as a change.
    Invalid(u32),
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

fn check_block(b: &[u8]) -> Result<(), FormatError> {
    if b.len() != BLOCK {
        return Err(FormatError::Length(b.len()));
    }
    Ok(())
}

fn check_record(b: &[u8], magic: &[u8; 8], len: usize) -> Result<(), FormatError> {
    if &b[..8] != magic {
        return Err(FormatError::Foreign(b[..8].try_into().expect("8 bytes")));
    }
    let stored = u32_at(b, len);
    let computed = crc32c(&b[..len]);
    if stored != computed {
        return Err(FormatError::Checksum { stored, computed });
    }
    // The version is read after the checksum: a torn block must not be
    // reported as a version from the future.
    match u32_at(b, 8) {
        VERSION => Ok(()),
        v => Err(FormatError::Version(v)),
    }
}

impl Header {
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let name = self.cluster.as_bytes();
        if name.is_empty() || name.len() > NAME_LEN || name.contains(&0) {
            return Err(FormatError::ClusterName(self.cluster.clone()));
        }
        let mut b = vec![0u8; BLOCK];
        b[..8].copy_from_slice(HEADER_MAGIC);
        put_u32(&mut b, 8, VERSION);
        put_u32(&mut b, 12, BLOCK as u32);
        put_u32(&mut b, 16, MAX_NODE_ID);
        b[24..24 + name.len()].copy_from_slice(name);
        put_u64(&mut b, 88, ms(self.io_timeout));
        put_u64(&mut b, 96, ms(self.renew));
        put_u64(&mut b, 104, ms(self.renew_fail));
        put_u64(&mut b, 112, ms(self.watchdog));
        put_u64(&mut b, 120, ms(self.host_dead));
        let crc = crc32c(&b[..HEADER_LEN]);
        put_u32(&mut b, HEADER_LEN, crc);
        Ok(b)
    }

    /// `Ok(None)`: the block is all zero, the lease is not initialised.
    pub fn decode(b: &[u8]) -> Result<Option<Header>, FormatError> {
        check_block(b)?;
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        check_record(b, HEADER_MAGIC, HEADER_LEN)?;
        let bs = u32_at(b, 12);
        if bs != BLOCK as u32 {
            return Err(FormatError::BlockSize(bs));
        }
        let name = &b[24..24 + NAME_LEN];
        let end = name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        let cluster = String::from_utf8_lossy(&name[..end]).into_owned();
        let d = |at| Duration::from_millis(u64_at(b, at));
        Ok(Some(Header {
            cluster,
            io_timeout: d(88),
            renew: d(96),
            renew_fail: d(104),
            watchdog: d(112),
            host_dead: d(120),
        }))
    }
}

impl Slot {
    /// A slot as its node writes it when it has nothing to say yet.
    pub fn new(node: u32, cluster_id: u64) -> Slot {
        Slot {
            node,
            counter: 0,
            holding: false,
            claiming: false,
            fenced: false,
            request: None,
            acked: 0,
            cluster_id,
            boot: 0,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        slot_offset(self.node)?;
        let mut b = vec![0u8; BLOCK];
        b[..8].copy_from_slice(SLOT_MAGIC);
        put_u32(&mut b, 8, VERSION);
        put_u32(&mut b, 12, self.node);
        put_u64(&mut b, 16, self.counter);
        let flags = (self.holding as u32 * FLAG_HOLDING)
            | (self.claiming as u32 * FLAG_CLAIMING)
            | (self.fenced as u32 * FLAG_FENCED);
        put_u32(&mut b, 24, flags);
        if let Some(r) = self.request {
            put_u32(&mut b, 28, r.target);
            put_u64(&mut b, 32, r.id);
        }
        put_u64(&mut b, 40, self.acked);
        put_u64(&mut b, 48, self.cluster_id);
        put_u64(&mut b, 56, self.boot);
        let crc = crc32c(&b[..SLOT_LEN]);
        put_u32(&mut b, SLOT_LEN, crc);
        Ok(b)
    }

    /// Decodes the block read at node `slot`'s offset.
    pub fn decode(slot: u32, b: &[u8]) -> Result<Option<Slot>, FormatError> {
        check_block(b)?;
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        check_record(b, SLOT_MAGIC, SLOT_LEN)?;
        let node = u32_at(b, 12);
        if node != slot {
            return Err(FormatError::WrongNode { slot, found: node });
        }
        let flags = u32_at(b, 24);
        let target = u32_at(b, 28);
        Ok(Some(Slot {
            node,
            counter: u64_at(b, 16),
            holding: flags & FLAG_HOLDING != 0,
            claiming: flags & FLAG_CLAIMING != 0,
            fenced: flags & FLAG_FENCED != 0,
            request: (target != 0).then(|| FenceRequest {
                target,
                id: u64_at(b, 32),
            }),
            acked: u64_at(b, 40),
            cluster_id: u64_at(b, 48),
            boot: u64_at(b, 56),
        }))
    }
}

impl SlotImage {
    /// What an observer makes of a block read at node `slot`'s offset. A
    /// slot stamped with another cluster's id is as good as unreadable.
    pub fn of(slot: u32, cluster_id: u64, b: &[u8]) -> SlotImage {
        match Slot::decode(slot, b) {
            Ok(None) => SlotImage::Blank,
            Ok(Some(s)) if s.cluster_id == cluster_id => SlotImage::Valid(s),
            _ => SlotImage::Invalid(crc32c(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_record(b: &[u8], len: usize) -> String {
        b[..len]
            .chunks(16)
            .enumerate()
            .map(|(i, c)| {
                let h: Vec<String> = c.iter().map(|x| format!("{x:02x}")).collect();
                format!("{:04x}: {}", i * 16, h.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn header() -> Header {
        Header {
            cluster: "mail".into(),
            io_timeout: Duration::from_secs(1),
            renew: Duration::from_secs(2),
            renew_fail: Duration::from_secs(8),
            watchdog: Duration::from_secs(5),
            host_dead: Duration::from_secs(15),
        }
    }

    fn slot() -> Slot {
        Slot {
            node: 2,
            counter: 0x0102_0304_0506_0708,
            holding: true,
            claiming: false,
            fenced: false,
            request: Some(FenceRequest { target: 1, id: 7 }),
            acked: 3,
            cluster_id: cluster_id("mail"),
            boot: 0x1122_3344_5566_7788,
        }
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // RFC 3720 (iSCSI) appendix B.4 and every CRC catalogue: the
        // CRC-32C of "123456789" is e3069283.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn golden_header_bytes() {
        let b = header().encode().unwrap();
        assert_eq!(b.len(), BLOCK);
        assert!(b[HEADER_LEN + 4..].iter().all(|&x| x == 0));
        insta::assert_snapshot!(hex_record(&b, HEADER_LEN + 4));
    }

    #[test]
    fn golden_slot_bytes() {
        let b = slot().encode().unwrap();
        assert!(b[SLOT_LEN + 4..].iter().all(|&x| x == 0));
        insta::assert_snapshot!(hex_record(&b, SLOT_LEN + 4));
    }

    #[test]
    fn header_and_slot_round_trip() {
        assert_eq!(
            Header::decode(&header().encode().unwrap()).unwrap(),
            Some(header())
        );
        assert_eq!(
            Slot::decode(2, &slot().encode().unwrap()).unwrap(),
            Some(slot())
        );
    }

    #[test]
    fn a_zeroed_block_is_blank_not_an_error() {
        assert_eq!(Header::decode(&[0; BLOCK]).unwrap(), None);
        assert_eq!(Slot::decode(1, &[0; BLOCK]).unwrap(), None);
        assert_eq!(SlotImage::of(1, 9, &[0; BLOCK]), SlotImage::Blank);
    }

    #[test]
    fn a_torn_write_is_caught_by_the_checksum() {
        // Half old, half new: what a non-atomic write interrupted by a
        // power cut can leave (sanlock checks its records the same way).
        let mut b = slot().encode().unwrap();
        let newer = Slot {
            counter: 99,
            ..slot()
        }
        .encode()
        .unwrap();
        b[16..20].copy_from_slice(&newer[16..20]);
        assert!(matches!(
            Slot::decode(2, &b),
            Err(FormatError::Checksum { .. })
        ));
        assert!(matches!(
            SlotImage::of(2, cluster_id("mail"), &b),
            SlotImage::Invalid(_)
        ));
    }

    #[test]
    fn a_slot_read_at_the_wrong_offset_or_from_another_cluster_is_not_trusted() {
        let b = slot().encode().unwrap();
        assert_eq!(
            Slot::decode(1, &b),
            Err(FormatError::WrongNode { slot: 1, found: 2 })
        );
        assert!(matches!(
            SlotImage::of(2, cluster_id("other"), &b),
            SlotImage::Invalid(_)
        ));
    }

    #[test]
    fn foreign_and_future_blocks_are_refused() {
        let mut b = vec![0u8; BLOCK];
        b[..4].copy_from_slice(b"\x7fELF");
        assert!(matches!(Header::decode(&b), Err(FormatError::Foreign(_))));
        let mut b = header().encode().unwrap();
        put_u32(&mut b, 8, 2);
        let crc = crc32c(&b[..HEADER_LEN]);
        put_u32(&mut b, HEADER_LEN, crc);
        assert_eq!(Header::decode(&b), Err(FormatError::Version(2)));
    }

    #[test]
    fn node_ids_outside_the_slot_table_are_refused() {
        assert_eq!(slot_offset(0), Err(FormatError::NodeId(0)));
        assert_eq!(slot_offset(256), Err(FormatError::NodeId(256)));
        assert_eq!(slot_offset(255).unwrap() + BLOCK as u64, LEASE_SIZE);
        assert!(Slot::new(300, 0).encode().is_err());
    }

    #[test]
    fn cluster_names_that_do_not_fit_are_refused() {
        let long = Header {
            cluster: "x".repeat(65),
            ..header()
        };
        assert!(matches!(long.encode(), Err(FormatError::ClusterName(_))));
    }
}
