//! A two-node world for the keeper's state machine: one shared lease
//! disk, I/Os that land and complete at chosen moments (or fail, or hang
//! and land late), a watchdog per node, crashes and freezes. Nothing here
//! runs: every event is chosen by the caller, so the same world drives
//! unit scenarios, proptest (random events) and the stateright model
//! checker (every event), like raft-rs's simulated network.
//!
//! Time is one global clock in milliseconds; each node reads it with its
//! own offset, so nothing can work by comparing two nodes' readings.
//! Clock rates are equal; docs/lease.md says why that is sound (the
//! formula's margin covers drift).

use super::format::{Slot, SlotImage};
use super::machine::{Action, FenceOutcome, Input, Keeper, Mono};
use super::timing::Timing;

pub const CLUSTER: u64 = 0x6d61_696c;
const BOOT: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Write(Slot),
    /// A read, with the peer's image once it sampled the disk.
    Read(Option<SlotImage>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Io {
    pub seq: u64,
    pub op: Op,
    /// Global time the keeper issued it.
    pub issued: u64,
    /// Took effect at the disk (a write applied, a read sampled).
    pub landed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub keeper: Keeper,
    /// Not crashed and not reset by its watchdog.
    pub up: bool,
    pub frozen: bool,
    /// The truth the invariant is about: processes here may write the
    /// shared data. Set at `Acquired` (the mounts start at once), cleared
    /// only by a clean self-fence, a crash or a watchdog reset.
    pub mounted: bool,
    pub last_pet: u64,
    /// The I/O the keeper waits for.
    pub io: Option<Io>,
    /// An I/O the keeper gave up on that still sits in the worker: the
    /// next one cannot reach the disk before it does (or is dropped).
    pub stray: Option<Io>,
    pub fencing: bool,
    pub fence_result: Option<FenceOutcome>,
    pub offset: u64,
    /// The node lost its path to the lease disk: its I/O never lands nor
    /// completes from now on.
    pub cut: bool,
    /// The keeper exited for good (a start that could not fence the data
    /// it found mounted without the lease): no ticks, no pets, so the
    /// watchdog it left armed resets the node.
    pub halted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Global time advances by `step` ms; every running node gets a Tick.
    Tick,
    /// The node's current I/O takes effect at the disk, its completion
    /// still to come (a fault: by default an I/O lands as it completes).
    Land(usize),
    /// The node's current I/O completes with success (landing now if it
    /// had not yet).
    Complete(usize),
    /// The node's current I/O fails (it may have landed anyway).
    Fail(usize),
    /// The node loses its path to the lease disk for good.
    Cut(usize),
    /// An abandoned I/O lands late.
    StrayLand(usize),
    /// An abandoned I/O is dropped without landing.
    StrayDrop(usize),
    Crash(usize),
    Freeze(usize),
    Thaw(usize),
    SelfFenceDone(usize, bool),
    /// fence_mailha on this node fences the other.
    RequestFence(usize),
    Release(usize),
    Acquire(usize),
    /// The keeper process restarts in the same boot (an upgrade, a crash
    /// its unit restarts): the new one reads its own slot as the disk
    /// holds it now and resumes holding only from a slot that says so.
    /// `bool`: a fence at its start, if one is needed, succeeds.
    Restart(usize, bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct World {
    pub now: u64,
    pub step: u64,
    pub timing: Timing,
    pub disk: [SlotImage; 2],
    pub nodes: [Node; 2],
    pub crashed_at: Option<u64>,
    pub fence_ids: u64,
    /// Faults still allowed in this run (an I/O error, an I/O past its
    /// deadline, a lost stray, a failed self-fence each take one): the
    /// model checker explores every placement of a few faults rather
    /// than every fault everywhere, which would not fit in memory.
    pub budget: u8,
    /// Freezes still allowed.
    pub freezes: u8,
    /// Bit i: node i has held the lease at some point.
    pub holders: u8,
    /// Keeper restarts still allowed.
    pub restarts: u8,
    /// A keeper that starts without resuming fences the data it finds
    /// mounted (`keeper::fence_unleased_mounts`); off only to show that
    /// the model checker catches its absence.
    pub fence_at_start: bool,
}

impl World {
    /// Two fresh nodes (ids 1 and 2) on a blank lease, both asked to
    /// acquire (the most contended start). `offsets` are the nodes' clock
    /// origins.
    pub fn new(timing: Timing, step_ms: u64, offsets: [u64; 2], budget: u8, freezes: u8) -> World {
        let node = |i: usize| {
            let me = i as u32 + 1;
            let keeper = Keeper::new(
                me,
                3 - me,
                CLUSTER,
                BOOT,
                timing,
                &SlotImage::Blank,
                Mono(offsets[i]),
            );
            Node {
                keeper,
                up: true,
                frozen: false,
                mounted: false,
                last_pet: 0,
                io: None,
                stray: None,
                fencing: false,
                fence_result: None,
                offset: offsets[i],
                cut: false,
                halted: false,
            }
        };
        let mut w = World {
            now: 0,
            step: step_ms,
            timing,
            disk: [SlotImage::Blank, SlotImage::Blank],
            nodes: [node(0), node(1)],
            crashed_at: None,
            fence_ids: 0,
            budget,
            freezes,
            holders: 0,
            restarts: 0,
            fence_at_start: true,
        };
        for i in 0..2 {
            w.feed(i, Input::Acquire);
            w.feed(i, Input::Tick);
        }
        w
    }

    fn running(&self, i: usize) -> bool {
        self.nodes[i].up && !self.nodes[i].frozen && !self.nodes[i].halted
    }

    pub fn both_mounted(&self) -> bool {
        self.nodes[0].mounted && self.nodes[1].mounted
    }

    /// Steps node `i`'s keeper and carries out what it asks.
    fn feed(&mut self, i: usize, input: Input) {
        let now = Mono(self.now + self.nodes[i].offset);
        let actions = self.nodes[i].keeper.step(now, input);
        for a in actions {
            let n = &mut self.nodes[i];
            match a {
                Action::WriteSlot { seq, slot } => {
                    self.replace_io(i, seq, Op::Write(slot));
                }
                Action::ReadPeer { seq } => self.replace_io(i, seq, Op::Read(None)),
                Action::PetWatchdog => n.last_pet = self.now,
                Action::SelfFence(_) => n.fencing = true,
                Action::Acquired => {
                    n.mounted = true;
                    self.holders |= 1 << i;
                }
                Action::Released => {}
                Action::FenceDone { outcome, .. } => n.fence_result = Some(outcome),
            }
        }
    }

    /// A new I/O: one the keeper gave up on stays queued in front of it.
    fn replace_io(&mut self, i: usize, seq: u64, op: Op) {
        let n = &mut self.nodes[i];
        if let Some(old) = n.io.take()
            && !old.landed
            && n.stray.is_none()
        {
            n.stray = Some(old);
        }
        n.io = Some(Io {
            seq,
            op,
            issued: self.now,
            landed: false,
        });
    }

    fn apply(&mut self, i: usize, op: &mut Op) {
        match op {
            Op::Write(s) => self.disk[i] = SlotImage::Valid(s.clone()),
            Op::Read(img) => *img = Some(self.disk[1 - i].clone()),
        }
    }

    /// The events possible now; faults while the budget lasts, a crash
    /// if `crash`, freezes while they last.
    pub fn events(&self, crash: bool, horizon: u64) -> Vec<Event> {
        let faults = self.budget > 0;
        let mut v = Vec::new();
        if self.now + self.step <= horizon && (faults || self.io_can_wait()) {
            v.push(Event::Tick);
        }
        for i in 0..2 {
            let n = &self.nodes[i];
            if let Some(io) = &n.io {
                let deadline = io.issued + self.timing.io_timeout.as_millis() as u64;
                let can_land = !io.landed && n.stray.is_none() && n.up && !n.cut;
                if can_land && faults {
                    v.push(Event::Land(i));
                }
                if self.running(i) && self.now < deadline && !n.cut {
                    if io.landed || can_land {
                        v.push(Event::Complete(i));
                    }
                    if faults {
                        v.push(Event::Fail(i));
                    }
                }
            }
            if faults && n.up && !n.cut {
                v.push(Event::Cut(i));
            }
            if n.stray.is_some() && !n.cut {
                v.push(Event::StrayLand(i));
                if faults {
                    v.push(Event::StrayDrop(i));
                }
            }
            if self.running(i) && n.fencing {
                v.push(Event::SelfFenceDone(i, true));
                if faults {
                    v.push(Event::SelfFenceDone(i, false));
                }
            }
            if self.running(i) && self.restarts > 0 {
                v.push(Event::Restart(i, true));
                if faults {
                    v.push(Event::Restart(i, false));
                }
            }
            if n.up {
                if crash && self.crashed_at.is_none() {
                    v.push(Event::Crash(i));
                }
                if n.frozen {
                    v.push(Event::Thaw(i));
                } else if self.freezes > 0 {
                    v.push(Event::Freeze(i));
                }
            }
        }
        v
    }

    /// Without faults, time may not pass an outstanding I/O's deadline.
    fn io_can_wait(&self) -> bool {
        (0..2).all(|i| {
            let n = &self.nodes[i];
            !self.running(i)
                || n.cut
                || n.io.as_ref().is_none_or(|io| {
                    self.now + self.step < io.issued + self.timing.io_timeout.as_millis() as u64
                })
        })
    }

    pub fn apply_event(&mut self, e: Event) {
        let spend = match e {
            Event::Tick => !self.io_can_wait(),
            Event::Land(_)
            | Event::Cut(_)
            | Event::Fail(_)
            | Event::StrayDrop(_)
            | Event::SelfFenceDone(_, false)
            | Event::Restart(_, false) => true,
            _ => false,
        };
        if spend {
            self.budget = self.budget.saturating_sub(1);
        }
        match e {
            Event::Tick => {
                self.now += self.step;
                let wd = self.timing.watchdog.as_millis() as u64;
                for i in 0..2 {
                    // The watchdog does not wait for the keeper.
                    if self.nodes[i].up && self.now >= self.nodes[i].last_pet + wd {
                        self.reset(i);
                    }
                }
                for i in 0..2 {
                    if self.running(i) {
                        self.feed(i, Input::Tick);
                        let n = &mut self.nodes[i];
                        // The keeper has given up on an I/O past its
                        // deadline; in the worker it may still land.
                        if let Some(io) = &n.io
                            && self.now >= io.issued + self.timing.io_timeout.as_millis() as u64
                        {
                            let io = n.io.take().expect("checked");
                            if !io.landed && n.stray.is_none() {
                                n.stray = Some(io);
                            }
                        }
                    }
                }
            }
            Event::Land(i) => {
                let mut io = self.nodes[i].io.take().expect("an I/O");
                self.apply(i, &mut io.op);
                io.landed = true;
                self.nodes[i].io = Some(io);
            }
            Event::Complete(i) | Event::Fail(i) => {
                let mut io = self.nodes[i].io.take().expect("an I/O");
                if e == Event::Complete(i) && !io.landed {
                    self.apply(i, &mut io.op);
                }
                let ok = e == Event::Complete(i);
                let input = match io.op {
                    Op::Write(_) => Input::WriteDone { seq: io.seq, ok },
                    Op::Read(img) => Input::ReadDone {
                        seq: io.seq,
                        image: if ok { img } else { None },
                    },
                };
                self.feed(i, input);
            }
            Event::StrayLand(i) => {
                let mut io = self.nodes[i].stray.take().expect("a stray");
                self.apply(i, &mut io.op);
            }
            Event::StrayDrop(i) => self.nodes[i].stray = None,
            Event::Cut(i) => self.nodes[i].cut = true,
            Event::Crash(i) => {
                self.reset(i);
                self.crashed_at = Some(self.now);
            }
            Event::Freeze(i) => {
                self.nodes[i].frozen = true;
                self.freezes = self.freezes.saturating_sub(1);
            }
            Event::Thaw(i) => self.nodes[i].frozen = false,
            Event::SelfFenceDone(i, ok) => {
                self.nodes[i].fencing = false;
                if ok {
                    self.nodes[i].mounted = false;
                }
                self.feed(i, Input::SelfFenceDone { ok });
            }
            Event::RequestFence(i) => {
                self.fence_ids += 1;
                let id = self.fence_ids;
                self.feed(i, Input::Fence { id });
            }
            Event::Release(i) => {
                // The agent's stop runs after the mounts stopped.
                self.nodes[i].mounted = false;
                self.feed(i, Input::Release);
            }
            Event::Acquire(i) => self.feed(i, Input::Acquire),
            Event::Restart(i, fence_ok) => self.restart(i, fence_ok),
        }
    }

    /// A new keeper process on a running node. The old one's I/O stays
    /// in the kernel (it may still land, as a stray); its self-fence
    /// thread, if any, died with it; the mounts stay as they are.
    fn restart(&mut self, i: usize, fence_ok: bool) {
        self.restarts -= 1;
        let own = self.disk[i].clone();
        let now = Mono(self.now + self.nodes[i].offset);
        let n = &mut self.nodes[i];
        if let Some(io) = n.io.take()
            && !io.landed
            && n.stray.is_none()
        {
            n.stray = Some(io);
        }
        n.fencing = false;
        let me = n.keeper.me();
        n.keeper = Keeper::new(me, 3 - me, CLUSTER, BOOT, self.timing, &own, now);
        if n.keeper.holds() || !n.mounted || !self.fence_at_start {
            return;
        }
        if fence_ok {
            n.mounted = false;
        } else {
            n.halted = true;
        }
    }

    /// A power-off: processes and mounts are gone. An I/O already handed
    /// to the disk may still land (a SAN can do that), so while faults
    /// are allowed it is kept as a stray.
    fn reset(&mut self, i: usize) {
        let keep = self.budget > 0;
        let n = &mut self.nodes[i];
        n.up = false;
        n.mounted = false;
        n.fencing = false;
        if !keep {
            n.stray = None;
        }
        if let Some(io) = n.io.take()
            && keep
            && !io.landed
            && n.stray.is_none()
        {
            n.stray = Some(io);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::machine::Role;
    use std::time::Duration;

    fn timing() -> Timing {
        Timing::standard(Duration::from_secs(1), Duration::from_secs(5)).unwrap()
    }

    /// Runs until `until` (global ms) with every I/O succeeding at once,
    /// skipping nodes listed in `dead_disk` (their I/O fails).
    fn run(w: &mut World, until: u64, dead_disk: &[usize]) {
        while w.now < until {
            let evs = w.events(false, u64::MAX);
            let pick = evs
                .iter()
                .find(|e| match e {
                    Event::Complete(i) => !dead_disk.contains(i),
                    Event::Fail(i) => dead_disk.contains(i),
                    _ => false,
                })
                .copied()
                .unwrap_or(Event::Tick);
            w.apply_event(pick);
        }
    }

    #[test]
    fn two_nodes_starting_together_elect_one_holder() {
        let mut w = World::new(timing(), 100, [0, 5_000_000], 0, 0);
        run(&mut w, 10_000, &[]);
        let roles = [w.nodes[0].keeper.role(), w.nodes[1].keeper.role()];
        assert_eq!(
            roles,
            [Role::Holding, Role::Idle],
            "the lower id wins a simultaneous claim"
        );
        assert!(w.nodes[0].mounted && !w.nodes[1].mounted);
    }
}
