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
//! Still to come: the runner (the schedule's faults injected through the
//! drills' fault code, healing left to the cluster, the history
//! recorded, everything for a replay in one folder), the traffic (SMTP
//! submissions with unique ids and IMAP readers from the client
//! namespace), and the report (an HTML page with the timeline and the
//! verdict).

pub mod checker;
pub mod history;
pub mod schedule;
