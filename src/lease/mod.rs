//! The disk lease (DESIGN section 7, docs/lease.md): the split-brain
//! guard under the data mounts and behind `fence_mailha`.
//!
//! - `format`: the bytes on the lease device (header + one slot per node).
//! - `timing`: the formula tying io_timeout, renew, renew_fail, watchdog
//!   and host_dead together, and its validation.
//! - `machine`: the keeper's state machine, pure: ticks and I/O results
//!   in, actions out.
//! - `boot`: the init script and systemd unit that start the keeper
//!   before the cluster stack.
//! - `disk`: aligned O_DIRECT I/O of one block, with a deadline, on a
//!   worker thread whose stall is detected.
//! - `nfs`: the lease as a file on NFS: the keeper's own mount of the
//!   export, with options that keep reads at the server and writes
//!   durable and in order.
//! - `own_slot`: who else writes this node's slot (a clone, or late
//!   writes of its previous keeper), from what each write found there.
//! - `latency`: the histogram of slot write times the keeper reports.
//! - `reset`: what follows a fence's ack (the node's addresses dropped
//!   before it, the reset after it).

pub mod boot;
pub mod client;
pub mod disk;
pub mod format;
pub mod keeper;
pub mod latency;
pub mod machine;
pub mod nfs;
pub mod own_slot;
pub mod reset;
pub mod sim;
pub mod timing;
