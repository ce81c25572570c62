//! The keeper's state machine: pure, no I/O, no clock (tikv/raft-rs
//! style). The executor feeds it `Input`s stamped with the node's own
//! monotonic clock and carries out the `Action`s it returns: write our
//! slot, read the peer's, pet the watchdog, fence ourselves, report to
//! the agent or to fence_mailha.
//!
//! The protocol (docs/lease.md has the proof sketch):
//! - Every `renew` we write our slot with the counter bumped, then read
//!   the peer's. At most one I/O is outstanding; one that has not
//!   completed `io_timeout` after it was issued counts as failed. The
//!   executor runs I/Os one after the other (disk.rs), so an abandoned
//!   write can land late but never after a later one.
//! - The peer is alive while its slot keeps changing. It is dead when a
//!   read *issued* at least `host_dead` after the read that first showed
//!   the current content *completed* shows that same content: both ends
//!   of the interval are taken on our clock, on the side that makes it
//!   shortest (sanlock judges delta leases the same way; only the rate of
//!   the two clocks must agree, never their values).
//! - Acquire: when the peer is free (blank slot, or neither holding nor
//!   claiming) or dead, we write a claim, wait the collision window after
//!   it landed, and read again: free or dead -> we hold; holding -> we
//!   lost; claiming too -> the lower node id waits for the other to
//!   withdraw, the higher withdraws. Each node writes before it reads, so
//!   of two concurrent claimers at least one sees the other (Dekker's
//!   argument); the tie rule settles the case where both do.
//! - A holder whose renewals have all failed for `renew_fail` fences
//!   itself and stops petting the watchdog. A fence request for us in the
//!   peer's slot makes us fence ourselves too, and we ack it once fenced.

use super::format::{FenceRequest, Slot, SlotImage};
use super::timing::Timing;
use std::time::Duration;

pub type NodeId = u32;

/// A reading of this node's monotonic clock in milliseconds since an
/// arbitrary origin. Two nodes' readings are never compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub u64);

impl Mono {
    pub fn after(self, d: Duration) -> Mono {
        Mono(self.0.saturating_add(d.as_millis() as u64))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    /// Time passed; sent at least every few hundred milliseconds.
    Tick,
    /// The write issued as `seq` completed (`ok`) or failed.
    WriteDone { seq: u64, ok: bool },
    /// The read issued as `seq` returned the peer's slot, or failed.
    ReadDone { seq: u64, image: Option<SlotImage> },
    /// The agent's start: take the data lease.
    Acquire,
    /// The agent's stop (after every mount is gone): give it back.
    Release,
    /// fence_mailha: fence the peer; `id` is new and increasing.
    Fence { id: u64 },
    /// The executor finished fencing this node: `ok` means no process can
    /// write the shared data any more (users killed, unmounted, stack
    /// stopped).
    SelfFenceDone { ok: bool },
    /// Our slot held, just before our write, something we never wrote:
    /// another machine writes it (a clone, a wrong `--node`).
    SlotShared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceReason {
    /// The peer asked, with this request id.
    Request(u64),
    /// No renewal succeeded for renew_fail: our lease may be gone.
    RenewalsFailed,
    /// While we hold, the peer's slot kept changing and saying it holds
    /// too: an assumption broke (no working watchdog, a suspend, two
    /// machines writing one slot). Nothing can tell which of us is right.
    PeerHolds,
    /// Another machine writes our slot.
    SlotShared,
}

impl FenceReason {
    /// Our lease may be gone: nothing we write or pet may buy time, and
    /// the watchdog is the backstop.
    fn lease_in_doubt(self) -> bool {
        matches!(
            self,
            FenceReason::RenewalsFailed | FenceReason::PeerHolds | FenceReason::SlotShared
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceOutcome {
    /// The peer fenced itself and said so.
    Acked,
    /// The peer's counter stood still for host_dead.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    WriteSlot {
        seq: u64,
        slot: Slot,
    },
    ReadPeer {
        seq: u64,
    },
    PetWatchdog,
    SelfFence(FenceReason),
    /// The data lease is ours: the mounts may start.
    Acquired,
    /// Our slot says we hold nothing.
    Released,
    FenceDone {
        id: u64,
        outcome: FenceOutcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Idle,
    Claiming,
    Holding,
    SelfFencing(FenceReason),
    /// Done for this boot. `reset`: the watchdog is left to reset the
    /// node (we stopped petting it).
    Fenced {
        reset: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Write { claiming: bool, holding: bool },
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pending {
    seq: u64,
    op: Op,
    issued: Mono,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Observed {
    image: SlotImage,
    /// Completion of the read that first showed this image.
    first_seen: Mono,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keeper {
    me: NodeId,
    peer: NodeId,
    timing: Timing,
    role: Role,
    /// We may have the data mounted: from `Acquired` until a release or a
    /// clean self-fence. Our slot says `holding` exactly then.
    mounted: bool,
    want: bool,
    slot: Slot,
    started: Mono,
    last_ok_write: Option<Mono>,
    next_round: Mono,
    io: Option<Pending>,
    seq: u64,
    read_due: bool,
    claim_landed: Option<Mono>,
    observed: Option<Observed>,
    peer_dead: bool,
    release_pending: bool,
    /// New images of the peer's slot saying "holding" seen while we
    /// held: one can be a late write of a dead peer; more mean it lives.
    peer_holding_changes: u8,
}

impl Keeper {
    /// A keeper starting at `now`. `own` is what our slot held when we
    /// started (read once by the executor), `boot` identifies this boot of
    /// the machine. A slot that says we hold, written in this same boot,
    /// means the keeper restarted under mounted data: it resumes holding
    /// (the watchdog, not petted meanwhile, bounds how long that took).
    pub fn new(
        me: NodeId,
        peer: NodeId,
        cluster_id: u64,
        boot: u64,
        timing: Timing,
        own: &SlotImage,
        now: Mono,
    ) -> Keeper {
        let mut slot = Slot::new(me, cluster_id);
        slot.boot = boot;
        let mut role = Role::Idle;
        let mut want = false;
        let mut mounted = false;
        if let SlotImage::Valid(s) = own {
            slot.counter = s.counter;
            slot.acked = s.acked;
            if s.holding && s.boot == boot {
                role = Role::Holding;
                want = true;
                mounted = true;
            }
        }
        Keeper {
            me,
            peer,
            timing,
            role,
            mounted,
            want,
            slot,
            started: now,
            last_ok_write: None,
            next_round: now,
            io: None,
            seq: 0,
            read_due: false,
            claim_landed: None,
            observed: None,
            peer_dead: false,
            release_pending: false,
            peer_holding_changes: 0,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn me(&self) -> NodeId {
        self.me
    }
    pub fn peer_dead(&self) -> bool {
        self.peer_dead
    }
    /// The slot as it would be written now.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }
    /// May the data be mounted here? True from `Acquired` until a clean
    /// self-fence or a release.
    pub fn holds(&self) -> bool {
        self.mounted
    }

    /// Feeds one input at `now` (our monotonic clock, never decreasing).
    pub fn step(&mut self, now: Mono, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.expire(now);
        match input {
            Input::Tick => self.on_tick(now, &mut out),
            Input::WriteDone { seq, ok } => self.on_write(now, seq, ok, &mut out),
            Input::ReadDone { seq, image } => self.on_read(now, seq, image, &mut out),
            Input::Acquire => {
                if !matches!(self.role, Role::SelfFencing(_) | Role::Fenced { .. }) {
                    let fresh = !self.want;
                    self.want = true;
                    if self.role == Role::Holding {
                        out.push(Action::Acquired);
                    } else if self.role == Role::Idle && fresh {
                        // A round now, not up to one renew later: the
                        // mail waits for this acquire (as Release and
                        // Fence, an extra round only shortens one gap).
                        self.next_round = self.next_round.min(now);
                    }
                }
            }
            Input::Release => {
                self.want = false;
                match self.role {
                    Role::Holding => {
                        self.role = Role::Idle;
                        self.mounted = false;
                        self.release_pending = true;
                        self.next_round = now;
                    }
                    Role::Claiming => {
                        self.role = Role::Idle;
                        self.next_round = now;
                        out.push(Action::Released);
                    }
                    Role::Idle if !self.release_pending => out.push(Action::Released),
                    _ => {}
                }
            }
            Input::Fence { id } => {
                if self.slot.request.is_none_or(|r| r.id < id) {
                    self.slot.request = Some(FenceRequest {
                        target: self.peer,
                        id,
                    });
                    self.next_round = now;
                }
            }
            Input::SlotShared => {
                // Whatever our slot says is not ours alone: a holder lets
                // go as for failed renewals; anyone else takes nothing
                // for the rest of this boot.
                self.want = false;
                match self.role {
                    Role::Holding => {
                        self.role = Role::SelfFencing(FenceReason::SlotShared);
                        out.push(Action::SelfFence(FenceReason::SlotShared));
                    }
                    Role::Idle | Role::Claiming => {
                        self.role = Role::Fenced { reset: false };
                    }
                    Role::SelfFencing(_) | Role::Fenced { .. } => {}
                }
            }
            Input::SelfFenceDone { ok } => {
                if let Role::SelfFencing(reason) = self.role {
                    let reset = !ok || reason.lease_in_doubt();
                    self.role = Role::Fenced { reset };
                    self.want = false;
                    if ok {
                        self.mounted = false;
                        self.slot.fenced = true;
                        if let FenceReason::Request(id) = reason {
                            self.slot.acked = self.slot.acked.max(id);
                        }
                        // Tell the peer at once: it is waiting for the ack.
                        self.next_round = now;
                    }
                }
            }
        }
        self.schedule(now, &mut out);
        out
    }

    /// An I/O that has not completed `io_timeout` after it was issued has
    /// failed, whatever it does later.
    fn expire(&mut self, now: Mono) {
        if let Some(p) = self.io
            && now >= p.issued.after(self.timing.io_timeout)
        {
            self.io = None;
        }
    }

    fn on_tick(&mut self, now: Mono, out: &mut Vec<Action>) {
        if self.role == Role::Holding {
            let since = self.last_ok_write.unwrap_or(self.started);
            if now >= since.after(self.timing.renew_fail) {
                self.role = Role::SelfFencing(FenceReason::RenewalsFailed);
                out.push(Action::SelfFence(FenceReason::RenewalsFailed));
            }
        }
        let pet = match self.role {
            // Renewals failed: our lease may be the peer's by now. A write
            // that lands while we fence ourselves (a thawed node, a disk
            // back for a moment) must not buy time: the reset is the
            // backstop if the self-fence hangs.
            Role::SelfFencing(r) if r.lease_in_doubt() => false,
            Role::Fenced { reset: true } => false,
            // While we may have the data mounted, the watchdog is petted
            // only within renew_fail of the last renewal that landed: a
            // frozen or cut-off holder is reset by then + watchdog.
            _ if self.mounted => self
                .last_ok_write
                .is_some_and(|c| now < c.after(self.timing.renew_fail)),
            _ => true,
        };
        if pet {
            out.push(Action::PetWatchdog);
        }
    }

    fn on_write(&mut self, now: Mono, seq: u64, ok: bool, out: &mut Vec<Action>) {
        let Some(p) = self.io.filter(|p| p.seq == seq) else {
            return; // abandoned: its deadline passed
        };
        self.io = None;
        let Op::Write { claiming, holding } = p.op else {
            return;
        };
        if !ok {
            return;
        }
        self.last_ok_write = Some(now);
        if claiming && self.role == Role::Claiming && self.claim_landed.is_none() {
            self.claim_landed = Some(now);
        }
        if !holding && self.release_pending {
            self.release_pending = false;
            out.push(Action::Released);
        }
    }

    fn on_read(&mut self, now: Mono, seq: u64, image: Option<SlotImage>, out: &mut Vec<Action>) {
        let Some(p) = self.io.filter(|p| p.seq == seq && p.op == Op::Read) else {
            return;
        };
        self.io = None;
        let Some(image) = image else { return };
        let issued = p.issued;
        match &self.observed {
            Some(o) if o.image == image => {
                if issued >= o.first_seen.after(self.timing.host_dead) {
                    self.peer_dead = true;
                }
            }
            prev => {
                // A change, not the first sighting (a resumed holder has
                // seen nothing yet).
                let changed = prev.is_some();
                let holding = matches!(&image, SlotImage::Valid(s) if s.holding);
                self.peer_holding_changes = match (self.role, holding) {
                    (Role::Holding, true) if changed => self.peer_holding_changes.saturating_add(1),
                    (Role::Holding, true) => self.peer_holding_changes,
                    _ => 0,
                };
                self.observed = Some(Observed {
                    image: image.clone(),
                    first_seen: now,
                });
                self.peer_dead = false;
            }
        }
        let peer = match &image {
            SlotImage::Valid(s) => Some(s),
            _ => None,
        };

        // Two holders: the peer keeps renewing a lease we hold. Stop
        // writing and let go; the peer does the same when it sees us.
        if self.role == Role::Holding && self.peer_holding_changes >= 2 {
            self.role = Role::SelfFencing(FenceReason::PeerHolds);
            self.want = false;
            out.push(Action::SelfFence(FenceReason::PeerHolds));
            return;
        }

        // A fence request addressed to us that we have not carried out.
        if let Some(r) = peer.and_then(|s| s.request)
            && r.target == self.me
            && r.id > self.slot.acked
            && !matches!(self.role, Role::SelfFencing(_) | Role::Fenced { .. })
        {
            self.role = Role::SelfFencing(FenceReason::Request(r.id));
            self.want = false;
            out.push(Action::SelfFence(FenceReason::Request(r.id)));
            return;
        }

        // Our own fence request: done when acked or when the peer is dead.
        if let Some(r) = self.slot.request {
            let outcome = if peer.is_some_and(|s| s.acked >= r.id) {
                Some(FenceOutcome::Acked)
            } else if self.peer_dead {
                Some(FenceOutcome::Dead)
            } else {
                None
            };
            if let Some(outcome) = outcome {
                self.slot.request = None;
                self.next_round = now;
                out.push(Action::FenceDone { id: r.id, outcome });
            }
        }

        let free = match &image {
            SlotImage::Blank => true,
            SlotImage::Valid(s) => !s.holding && !s.claiming,
            SlotImage::Invalid(_) => false,
        };
        let claiming = peer.is_some_and(|s| s.claiming && !s.holding);
        match self.role {
            Role::Idle if self.want && !self.release_pending && (free || self.peer_dead) => {
                self.role = Role::Claiming;
                self.claim_landed = None;
                self.next_round = now;
            }
            Role::Claiming => {
                let Some(landed) = self.claim_landed else {
                    return;
                };
                if issued < landed.after(self.timing.collision_window()) {
                    return;
                }
                if free || self.peer_dead {
                    self.role = Role::Holding;
                    self.peer_holding_changes = 0;
                    self.mounted = true;
                    self.next_round = now;
                    out.push(Action::Acquired);
                } else if claiming && self.me < self.peer {
                    // Tie: the lower id stays and waits for the other to
                    // withdraw (or to be seen holding, if it never saw us).
                } else {
                    self.role = Role::Idle;
                    self.claim_landed = None;
                    self.next_round = now;
                }
            }
            _ => {}
        }
    }

    /// Issues the next I/O if none is outstanding.
    fn schedule(&mut self, now: Mono, out: &mut Vec<Action>) {
        if self.io.is_some() {
            return;
        }
        if now >= self.next_round {
            self.slot.counter += 1;
            self.slot.holding = self.mounted;
            self.slot.claiming = self.role == Role::Claiming;
            self.seq += 1;
            self.io = Some(Pending {
                seq: self.seq,
                op: Op::Write {
                    claiming: self.slot.claiming,
                    holding: self.slot.holding,
                },
                issued: now,
            });
            self.next_round = now.after(self.timing.renew);
            self.read_due = true;
            out.push(Action::WriteSlot {
                seq: self.seq,
                slot: self.slot.clone(),
            });
            return;
        }
        let window_passed = match self.role {
            Role::Claiming => self
                .claim_landed
                .is_some_and(|c| now >= c.after(self.timing.collision_window())),
            _ => true,
        };
        if self.read_due && window_passed {
            self.read_due = false;
            self.seq += 1;
            self.io = Some(Pending {
                seq: self.seq,
                op: Op::Read,
                issued: now,
            });
            out.push(Action::ReadPeer { seq: self.seq });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timing {
        Timing::standard(Duration::from_secs(1), Duration::from_secs(5)).unwrap()
    }

    fn own(holding: bool, boot: u64) -> SlotImage {
        let mut s = Slot::new(1, 7);
        s.counter = 40;
        s.holding = holding;
        s.acked = 3;
        s.boot = boot;
        SlotImage::Valid(s)
    }

    fn write_seq(a: &[Action]) -> u64 {
        a.iter()
            .find_map(|x| match x {
                Action::WriteSlot { seq, .. } => Some(*seq),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no write in {a:?}"))
    }

    fn read_seq(a: &[Action]) -> u64 {
        a.iter()
            .find_map(|x| match x {
                Action::ReadPeer { seq } => Some(*seq),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no read in {a:?}"))
    }

    #[test]
    fn a_keeper_restarted_in_the_same_boot_resumes_holding_but_not_after_a_reset() {
        let same = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        assert!(same.holds(), "the mounts may still be there");
        let rebooted = Keeper::new(1, 2, 7, 100, t(), &own(true, 99), Mono(0));
        assert!(!rebooted.holds(), "a reset left nothing mounted");
        // The counter and the acked request carry over either way, so the
        // peer sees a change and an old request is not carried out again.
        assert_eq!((rebooted.slot().counter, rebooted.slot().acked), (40, 3));
    }

    #[test]
    fn a_resumed_holder_does_not_pet_before_a_renewal_lands() {
        // Its last renewal was the previous instance's, of unknown age:
        // petting now could stretch the reset past the peer's host_dead.
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let a = k.step(Mono(0), Input::Tick);
        assert!(!a.contains(&Action::PetWatchdog));
        let seq = match a.iter().find(|x| matches!(x, Action::WriteSlot { .. })) {
            Some(Action::WriteSlot { seq, slot }) => {
                assert!(slot.holding && slot.counter == 41);
                *seq
            }
            _ => panic!("no renewal issued: {a:?}"),
        };
        k.step(Mono(300), Input::WriteDone { seq, ok: true });
        assert!(
            k.step(Mono(400), Input::Tick)
                .contains(&Action::PetWatchdog)
        );
    }

    #[test]
    fn a_completion_after_the_deadline_does_not_count_as_a_renewal() {
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let a = k.step(Mono(0), Input::Tick);
        let Some(Action::WriteSlot { seq, .. }) = a.first().cloned() else {
            panic!("{a:?}")
        };
        // io_timeout is 1s: at 1.2s the write has failed, whatever it says.
        k.step(Mono(1200), Input::WriteDone { seq, ok: true });
        assert!(
            !k.step(Mono(1300), Input::Tick)
                .contains(&Action::PetWatchdog)
        );
        // renew_fail (8s) after the start, with no renewal landed: fence.
        let a = k.step(Mono(8000), Input::Tick);
        assert!(
            a.contains(&Action::SelfFence(FenceReason::RenewalsFailed)),
            "{a:?}"
        );
    }

    #[test]
    fn a_holder_fencing_itself_for_failed_renewals_never_pets_again() {
        // Frozen past renew_fail, then thawed: the in-flight write is
        // stale, the tick starts the self-fence, and a fresh write that
        // lands while the self-fence runs must not resume the pets.
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let seq = write_seq(&k.step(Mono(0), Input::Tick));
        k.step(Mono(100), Input::WriteDone { seq, ok: true });
        assert!(
            k.step(Mono(200), Input::Tick)
                .contains(&Action::PetWatchdog)
        );
        // Thawed at 20 s.
        let a = k.step(Mono(20_000), Input::Tick);
        assert!(
            a.contains(&Action::SelfFence(FenceReason::RenewalsFailed)),
            "{a:?}"
        );
        let seq = write_seq(&a);
        k.step(Mono(20_050), Input::WriteDone { seq, ok: true });
        let a = k.step(Mono(20_100), Input::Tick);
        assert!(!a.contains(&Action::PetWatchdog), "{a:?}");
        k.step(Mono(20_200), Input::SelfFenceDone { ok: true });
        assert!(
            !k.step(Mono(20_300), Input::Tick)
                .contains(&Action::PetWatchdog)
        );
    }

    #[test]
    fn an_acquire_starts_a_round_at_once_not_a_renew_later() {
        // Idle standby, its round at 0 done (renew is 2 s): the agent's
        // start at 0.1 s writes now, and once the peer is seen free the
        // claim follows (the collision window still applies).
        let mut k = Keeper::new(1, 2, 7, 100, t(), &own(false, 99), Mono(0));
        let seq = write_seq(&k.step(Mono(0), Input::Tick));
        let seq = read_seq(&k.step(Mono(10), Input::WriteDone { seq, ok: true }));
        let free = Some(SlotImage::Valid(Slot::new(2, 7)));
        k.step(
            Mono(20),
            Input::ReadDone {
                seq,
                image: free.clone(),
            },
        );
        let seq = write_seq(&k.step(Mono(100), Input::Acquire));
        // A second acquire while that round runs asks for nothing more.
        assert!(k.step(Mono(105), Input::Acquire).is_empty());
        let seq = read_seq(&k.step(Mono(110), Input::WriteDone { seq, ok: true }));
        k.step(Mono(120), Input::ReadDone { seq, image: free });
        assert_eq!(k.role(), Role::Claiming);
    }

    #[test]
    fn an_old_fence_request_is_not_carried_out_twice() {
        let mut k = Keeper::new(1, 2, 7, 100, t(), &own(false, 99), Mono(0));
        let mut peer = Slot::new(2, 7);
        peer.request = Some(FenceRequest { target: 1, id: 3 });
        let seq = write_seq(&k.step(Mono(0), Input::Tick));
        let seq = read_seq(&k.step(Mono(10), Input::WriteDone { seq, ok: true }));
        let image = Some(SlotImage::Valid(peer.clone()));
        let a = k.step(Mono(20), Input::ReadDone { seq, image });
        assert!(
            !a.iter().any(|x| matches!(x, Action::SelfFence(_))),
            "{a:?}"
        );
        // Request 4 is new: carried out.
        peer.request = Some(FenceRequest { target: 1, id: 4 });
        let seq = write_seq(&k.step(Mono(2000), Input::Tick));
        let seq = read_seq(&k.step(Mono(2010), Input::WriteDone { seq, ok: true }));
        let image = Some(SlotImage::Valid(peer));
        let a = k.step(Mono(2020), Input::ReadDone { seq, image });
        assert!(
            a.contains(&Action::SelfFence(FenceReason::Request(4))),
            "{a:?}"
        );
    }

    /// Node 1 resumed holding; each round it renews, then reads `peer`.
    fn round(k: &mut Keeper, at: u64, peer: Slot) -> Vec<Action> {
        let seq = write_seq(&k.step(Mono(at), Input::Tick));
        let seq = read_seq(&k.step(Mono(at + 10), Input::WriteDone { seq, ok: true }));
        k.step(
            Mono(at + 20),
            Input::ReadDone {
                seq,
                image: Some(SlotImage::Valid(peer)),
            },
        )
    }

    #[test]
    fn a_holder_whose_peer_keeps_renewing_a_holding_slot_fences_itself() {
        // Only a broken assumption gets here (a watchdog that never
        // fired, a suspend, a cloned machine writing the peer's slot):
        // stop writing, stop petting, and let the watchdog back it up.
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let mut peer = Slot::new(2, 7);
        peer.holding = true;
        peer.counter = 10;
        round(&mut k, 0, peer.clone());
        peer.counter = 11;
        let a = round(&mut k, 2000, peer.clone());
        assert!(
            !a.iter().any(|x| matches!(x, Action::SelfFence(_))),
            "{a:?}"
        );
        peer.counter = 12;
        let a = round(&mut k, 4000, peer);
        assert!(
            a.contains(&Action::SelfFence(FenceReason::PeerHolds)),
            "{a:?}"
        );
        assert!(
            !k.step(Mono(4100), Input::Tick)
                .contains(&Action::PetWatchdog)
        );
        k.step(Mono(4200), Input::SelfFenceDone { ok: true });
        assert_eq!(k.role(), Role::Fenced { reset: true });
    }

    #[test]
    fn a_dead_peers_holding_slot_and_one_late_write_of_it_are_no_second_holder() {
        // We took over from a peer that died holding: its slot keeps
        // saying so, and one write it had in flight may land late.
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let mut peer = Slot::new(2, 7);
        peer.holding = true;
        peer.counter = 10;
        for at in [0, 2000, 4000] {
            round(&mut k, at, peer.clone());
        }
        peer.counter = 11;
        for at in [6000, 8000, 10_000] {
            let a = round(&mut k, at, peer.clone());
            assert!(
                !a.iter().any(|x| matches!(x, Action::SelfFence(_))),
                "{a:?}"
            );
        }
        assert_eq!(k.role(), Role::Holding);
    }

    #[test]
    fn a_slot_another_machine_writes_makes_a_holder_let_go_and_a_standby_take_nothing() {
        let mut k = Keeper::new(1, 2, 7, 99, t(), &own(true, 99), Mono(0));
        let a = k.step(Mono(0), Input::SlotShared);
        assert!(
            a.contains(&Action::SelfFence(FenceReason::SlotShared)),
            "{a:?}"
        );
        assert!(
            !k.step(Mono(100), Input::Tick)
                .contains(&Action::PetWatchdog)
        );

        let mut k = Keeper::new(1, 2, 7, 100, t(), &own(false, 99), Mono(0));
        k.step(Mono(0), Input::SlotShared);
        assert_eq!(k.role(), Role::Fenced { reset: false });
        k.step(Mono(10), Input::Acquire);
        assert_eq!(k.role(), Role::Fenced { reset: false });
        assert!(!k.holds());
    }
}
