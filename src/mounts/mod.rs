//! This node's shared mounts, below both of their users: the storage
//! agent (which mounts and stops them) and the lease keeper (whose
//! self-fence clears them). One implementation of "who uses this mount",
//! "release it within a deadline" and "prove the filesystem let go of its
//! device", so a stop and a fence cannot disagree about what "released"
//! means.
//!
//! - `mountinfo`: "mounted?" from /proc/PID/mountinfo, never a stat().
//! - `users`: the processes using a mount, in any mount namespace of this
//!   PID namespace, found through /proc without touching the mount.
//! - `superblock`, `device`: a filesystem's identity from its superblock
//!   and the device node behind `UUID=`/`LABEL=` (no udev needed).
//! - `release`: end the users, unmount (plain, MNT_FORCE, MNT_DETACH, in
//!   every namespace that has it), prove the device free; each step in a
//!   child with a deadline.

pub mod device;
pub mod mountinfo;
pub mod release;
pub mod superblock;
pub mod users;
