//! Lease I/O: one aligned 4 KiB block at a time, O_DIRECT (past the page
//! cache, which the original kit read through) and O_DSYNC (past the
//! device's write cache), on a worker thread, with a deadline the caller
//! enforces.
//!
//! Why a thread and not a child process per I/O (as `agents::storage::io`
//! does for probes): the lease's correctness needs the writes of one node
//! to land in the order they were issued (docs/lease.md, "Late writes").
//! A child killed at its deadline may leave its write queued in the
//! kernel, and the next child's write could overtake it. One worker
//! thread runs one I/O at a time, so a stuck write is always ahead of the
//! next one. A hung thread cannot be killed, but it does not have to be:
//! the keeper's decision loop never waits on it past the deadline
//! (`Worker::wait` returns `TimedOut`), it keeps ticking, fences the node
//! and stops petting the watchdog. A new request while the worker is stuck
//! replaces the one still waiting (never started, so never landed): the
//! queue never grows. And it costs no fork+exec every renewal.

use super::format::BLOCK;
use std::collections::VecDeque;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes; a lease needs at least {need}")]
    TooSmall { path: PathBuf, size: u64, need: u64 },
}

/// A 4 KiB buffer aligned for O_DIRECT.
pub struct Block(Box<Aligned>);

#[repr(C, align(4096))]
struct Aligned([u8; BLOCK]);

impl Block {
    pub fn zeroed() -> Block {
        Block(Box::new(Aligned([0; BLOCK])))
    }
    pub fn from_bytes(b: &[u8]) -> Block {
        let mut x = Block::zeroed();
        x.0.0[..b.len().min(BLOCK)].copy_from_slice(&b[..b.len().min(BLOCK)]);
        x
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0.0
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0.0
    }
}

/// Block I/O behind a trait so tests can put a device that hangs under
/// the worker.
pub trait BlockIo: Send + 'static {
    fn read_block(&mut self, offset: u64) -> std::io::Result<Block>;
    fn write_block(&mut self, offset: u64, data: &Block) -> std::io::Result<()>;
}

/// The lease device or file.
pub struct LeaseFile {
    file: std::fs::File,
    direct: bool,
}

impl LeaseFile {
    /// Opens `path` for O_DIRECT | O_DSYNC I/O. A file system without
    /// O_DIRECT (tmpfs) gets O_DSYNC alone and `direct()` says so: fine
    /// for tests, refused by the keeper on a real lease.
    pub fn open(path: &Path) -> Result<LeaseFile, DiskError> {
        let open = |flags| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
        };
        let (file, direct) = match open(libc_flags(true)) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => (
                open(libc_flags(false)).map_err(|source| DiskError::Open {
                    path: path.into(),
                    source,
                })?,
                false,
            ),
            Err(source) => {
                return Err(DiskError::Open {
                    path: path.into(),
                    source,
                });
            }
        };
        let size = size_of(&file).map_err(|source| DiskError::Open {
            path: path.into(),
            source,
        })?;
        let need = super::format::LEASE_SIZE;
        if size < need {
            return Err(DiskError::TooSmall {
                path: path.into(),
                size,
                need,
            });
        }
        Ok(LeaseFile { file, direct })
    }

    pub fn direct(&self) -> bool {
        self.direct
    }
}

fn libc_flags(direct: bool) -> i32 {
    let base = nix::libc::O_DSYNC;
    if direct {
        base | nix::libc::O_DIRECT
    } else {
        base
    }
}

/// Size of a regular file or a block device (whose metadata says 0).
fn size_of(f: &std::fs::File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = f.try_clone()?;
    f.seek(SeekFrom::End(0))
}

impl BlockIo for LeaseFile {
    fn read_block(&mut self, offset: u64) -> std::io::Result<Block> {
        let mut b = Block::zeroed();
        self.file.read_exact_at(&mut b.0.0, offset)?;
        Ok(b)
    }
    fn write_block(&mut self, offset: u64, data: &Block) -> std::io::Result<()> {
        self.file.write_all_at(data.bytes(), offset)
    }
}

#[derive(Debug)]
pub enum Request {
    Read {
        seq: u64,
        offset: u64,
    },
    /// `check`: read the block first and hand it back (`before`), so
    /// the keeper can tell whether anyone else wrote its slot since its
    /// last write.
    Write {
        seq: u64,
        offset: u64,
        data: Block,
        check: bool,
    },
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({:02x?}..)", &self.bytes()[..8])
    }
}

#[derive(Debug)]
pub enum Reply {
    Read {
        seq: u64,
        result: std::io::Result<Block>,
    },
    Written {
        seq: u64,
        result: std::io::Result<()>,
        /// The block as it was just before this write, when asked and
        /// readable.
        before: Option<Block>,
        /// The check read and the write together: what the keeper waits
        /// on, so what its renewal deadline is measured against.
        took: Duration,
    },
}

impl Reply {
    pub fn seq(&self) -> u64 {
        match self {
            Reply::Read { seq, .. } | Reply::Written { seq, .. } => *seq,
        }
    }
}

#[derive(Default)]
struct Shared {
    /// At most one request waiting: a newer one replaces it.
    next: Option<Request>,
    replies: VecDeque<Reply>,
    /// When the I/O in progress started, if one is.
    busy_since: Option<Instant>,
}

/// The I/O worker: one thread, one I/O at a time, in order.
pub struct Worker {
    shared: Arc<(Mutex<Shared>, Condvar)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    Done,
    TimedOut,
}

impl Worker {
    pub fn spawn(mut dev: impl BlockIo) -> Worker {
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("mailha-lease-io".into())
            .spawn(move || {
                loop {
                    let req = {
                        let (m, cv) = &*s;
                        let mut g = m.lock().expect("not poisoned");
                        loop {
                            if let Some(r) = g.next.take() {
                                g.busy_since = Some(Instant::now());
                                break r;
                            }
                            // The keeper is gone: nothing more to do.
                            if Arc::strong_count(&s) == 1 {
                                return;
                            }
                            g = cv
                                .wait_timeout(g, Duration::from_millis(200))
                                .expect("not poisoned")
                                .0;
                        }
                    };
                    let reply = match req {
                        Request::Read { seq, offset } => Reply::Read {
                            seq,
                            result: dev.read_block(offset),
                        },
                        Request::Write {
                            seq,
                            offset,
                            data,
                            check,
                        } => {
                            let started = Instant::now();
                            let before = if check {
                                dev.read_block(offset).ok()
                            } else {
                                None
                            };
                            let result = dev.write_block(offset, &data);
                            Reply::Written {
                                seq,
                                result,
                                before,
                                took: started.elapsed(),
                            }
                        }
                    };
                    let (m, cv) = &*s;
                    let mut g = m.lock().expect("not poisoned");
                    g.busy_since = None;
                    g.replies.push_back(reply);
                    cv.notify_all();
                }
            })
            .expect("spawn the lease I/O thread");
        Worker { shared }
    }

    /// Queues a request behind the one in progress, replacing any that
    /// has not started.
    pub fn submit(&self, r: Request) {
        let (m, cv) = &*self.shared;
        m.lock().expect("not poisoned").next = Some(r);
        cv.notify_all();
    }

    /// Waits until a reply is there or `deadline` passes; never longer.
    pub fn wait(&self, deadline: Instant) -> Wait {
        let (m, cv) = &*self.shared;
        let mut g = m.lock().expect("not poisoned");
        while g.replies.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wait::TimedOut;
            }
            g = cv.wait_timeout(g, left).expect("not poisoned").0;
        }
        Wait::Done
    }

    pub fn take_replies(&self) -> Vec<Reply> {
        let (m, _) = &*self.shared;
        m.lock().expect("not poisoned").replies.drain(..).collect()
    }

    /// How long the I/O in progress has been running: a stalled lease
    /// disk shows here (for status and logs), while the keeper goes on.
    pub fn stalled_for(&self) -> Option<Duration> {
        let (m, _) = &*self.shared;
        m.lock()
            .expect("not poisoned")
            .busy_since
            .map(|t| t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::format::{LEASE_SIZE, Slot, SlotImage, cluster_id, slot_offset};

    fn lease_file(dir: &Path) -> PathBuf {
        let p = dir.join("lease");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(LEASE_SIZE).unwrap();
        p
    }

    #[test]
    fn a_slot_written_through_o_direct_reads_back_from_a_plain_file() {
        // A lease file on NFS is a regular file: the same code path.
        let dir = tempfile::tempdir().unwrap();
        let mut f = LeaseFile::open(&lease_file(dir.path())).unwrap();
        let cid = cluster_id("mail");
        let mut s = Slot::new(2, cid);
        s.counter = 41;
        s.holding = true;
        let off = slot_offset(2).unwrap();
        f.write_block(off, &Block::from_bytes(&s.encode().unwrap()))
            .unwrap();
        let back = f.read_block(off).unwrap();
        assert_eq!(SlotImage::of(2, cid, back.bytes()), SlotImage::Valid(s));
        // Slot 1 was never written: blank, not an error.
        let other = f.read_block(slot_offset(1).unwrap()).unwrap();
        assert_eq!(SlotImage::of(1, cid, other.bytes()), SlotImage::Blank);
    }

    #[test]
    fn the_buffer_is_aligned_for_o_direct() {
        let b = Block::zeroed();
        assert_eq!(b.bytes().as_ptr() as usize % 4096, 0);
        assert_eq!(b.bytes().len(), 4096);
    }

    #[test]
    fn a_lease_smaller_than_the_slot_table_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("small");
        std::fs::File::create(&p).unwrap().set_len(4096).unwrap();
        assert!(matches!(
            LeaseFile::open(&p),
            Err(DiskError::TooSmall { size: 4096, .. })
        ));
    }

    /// A device whose writes block until released: a hung lease disk.
    struct Hung {
        gate: Arc<(Mutex<bool>, Condvar)>,
        log: Arc<Mutex<Vec<u64>>>,
    }

    impl BlockIo for Hung {
        fn read_block(&mut self, offset: u64) -> std::io::Result<Block> {
            self.log.lock().unwrap().push(offset);
            Ok(Block::zeroed())
        }
        fn write_block(&mut self, offset: u64, _: &Block) -> std::io::Result<()> {
            let (m, cv) = &*self.gate;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.log.lock().unwrap().push(offset);
            Ok(())
        }
    }

    #[test]
    fn a_hung_disk_never_holds_the_caller_past_its_deadline_and_keeps_order() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let w = Worker::spawn(Hung {
            gate: gate.clone(),
            log: log.clone(),
        });
        w.submit(Request::Write {
            seq: 1,
            offset: 4096,
            data: Block::zeroed(),
            check: false,
        });
        let t0 = Instant::now();
        assert_eq!(w.wait(t0 + Duration::from_millis(100)), Wait::TimedOut);
        assert!(t0.elapsed() < Duration::from_millis(1000));
        assert!(w.stalled_for().is_some(), "the stall is visible");
        // The keeper goes on issuing: each new request replaces the one
        // still waiting, none overtakes the stuck write.
        w.submit(Request::Read {
            seq: 2,
            offset: 8192,
        });
        w.submit(Request::Read {
            seq: 3,
            offset: 12288,
        });
        assert_eq!(
            w.wait(Instant::now() + Duration::from_millis(50)),
            Wait::TimedOut
        );
        // The disk comes back.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            assert_eq!(w.wait(Instant::now() + Duration::from_secs(5)), Wait::Done);
            seqs.extend(w.take_replies().iter().map(Reply::seq));
        }
        assert_eq!(
            seqs,
            vec![1, 3],
            "the stuck write first, the replaced read never ran"
        );
        assert_eq!(*log.lock().unwrap(), vec![4096, 12288]);
    }
}
