//! `mailha-lab soak` (issue 17): random, sometimes overlapping faults
//! thrown at the lab under continuous mail traffic, and a checker that
//! proves from the recorded history alone that no acknowledged mail was
//! lost or duplicated and the data was never mounted twice (the model of
//! Jepsen's set-full checker).
//!
//! Built so far, all pure (no lab I/O):
//!
//! - `schedule`: the nemesis: a deterministic schedule of faults drawn
//!   from a seed (the drills' vocabulary plus `apply`), with overlapping
//!   pairs, the safety rules every schedule keeps (`schedule::check`,
//!   `schedule::may_overlap`), and its JSON file for replays;
//!   `mailha-lab soak plan` prints it.
//! - `history`: the JSONL history the runner records, one event per line
//!   (SMTP outcomes, IMAP reads, mount samples, fault start/end, fences,
//!   lease holder samples), its writer and its crash-tolerant reader.
//! - `checker`: the verdict over a history and its schedule: lost,
//!   vanished (seen by a reader, then gone), duplicates, unexpected,
//!   unknown (recovered or not), refused, double mounts,
//!   each fault's SMTP and IMAP outage against its kind's bound, spurious
//!   fences.
//!
//! - `run`: the runner on the lab that is up (`mailha-lab soak run`):
//!   the steps injected through the drills' fault code and healed at
//!   their times, the drills' mail load as the traffic (its IMAP side
//!   reading the new messages' ids), mounts and node resets sampled every
//!   100 ms, the final read over IMAP, the verdict; everything for a
//!   replay in one folder.
//!
//! - `report`: the soak's page (`report.html`, written by `soak run` and
//!   again by `soak check`): the verdict and its counts, a timeline of
//!   the faults, the mounts, the fences and the clients' outcomes (inline
//!   SVG), the worst outages against their bounds. Pure, self-contained,
//!   every string from the soak's files escaped.
//!
//! nfs-hang is drawn only for a store on NFS, which the lab's mail cannot
//! have on these hosts (no NFS client in the kernel): the runner refuses
//! it by name.

pub mod checker;
pub mod history;
pub mod report;
pub mod run;
pub mod schedule;
