//! Who else writes this node's slot: the keeper reads its own slot just
//! before each write, and anything there but an image it wrote itself
//! was written by someone else. Pure: images and the keeper's clock in,
//! a verdict out (the daemon in `keeper` acts on it).
//!
//! Our own images are the ones we wrote last, and any image of this
//! keeper's own boot: a write of ours the worker held up (a stalled disk)
//! lands after several newer ones were issued, and it is still ours. No
//! other machine carries this boot (the kernel's boot id with the start
//! of PID 1), and a second keeper of this machine cannot start (its
//! socket is taken). The one exception is a copy of this running machine,
//! memory included (a VM snapshot resumed elsewhere), which this check
//! cannot see (docs/lease.md, "Which slot").
//!
//! Two other writers look alike from here:
//! - a second machine with this node's name (a cloned VM, a wrong host
//!   name or `--node`): it renews as often as we do, so it shows at
//!   every write, for as long as it runs;
//! - this node's previous keeper: writes it issued before its node was
//!   reset (or its keeper restarted) can still be queued in the path to
//!   the disk (a loaded loop device, a SAN that holds an I/O until its
//!   command timeout) and land after the new keeper started. They carry
//!   the boot the new keeper found in the slot at its start, they are
//!   few (a keeper has one write in flight at a time: `disk`), and they
//!   stop: no one issues them any more.
//!
//! So an image of the boot found at start, with a counter at most
//! `LATE_AHEAD` past the one found, seen while this keeper claims and
//! holds nothing, within `LATE_WRITES_MAX` of its start, is taken for a
//! late write of its previous keeper; the keeper does not claim while
//! they still land (`claims_wait`): the slot is not yet reliably its own,
//! and the peer would read in it what the previous boot said. Any other
//! image, or any image while claiming or holding, is a second writer's
//! once two different ones show in a row (one could be a late write of
//! ours too). The same image found again is no new evidence: nobody
//! wrote the slot since, not even we (our write in between did not land,
//! as on a loaded disk), and a live writer bumps its counter at every
//! write.
//! A clone whose image was the one found at start bumps its counter at
//! every renewal, past `LATE_AHEAD` within a few.

use super::format::SlotImage;
use super::machine::Mono;
use std::collections::VecDeque;
use std::time::Duration;

/// How long after the keeper's start an image of the previous boot is
/// still taken for a late write. Linux gives a SCSI command 30 s before
/// it aborts it (`/sys/block/*/device/timeout`); an I/O the previous boot
/// issued just before its reset cannot be held longer than that, and the
/// reboot itself took part of it.
pub const LATE_WRITES_MAX: Duration = Duration::from_secs(60);

/// How far past the counter found at start a late write's counter may
/// be: writes the previous keeper issued after the one that landed last
/// (one in flight per keeper, and a keeper restarted in that boot may
/// have left one more), with room to spare. A live writer passes it
/// within a few renewals.
pub const LATE_AHEAD: u64 = 4;

/// The images of our slot we wrote last: what our slot may hold just
/// before our next write (a write may still be in flight).
const MINE: usize = 4;

/// What the slot held before one of our writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// One of our own images.
    Ours,
    /// A write of this node's previous keeper, landing late.
    LateWrite { boot: u64, counter: u64 },
    /// Someone else's image, not yet seen twice in a row.
    Foreign,
    /// Someone else writes our slot: what was found there.
    SecondWriter(String),
}

#[derive(Debug)]
pub struct OwnSlot {
    me: u32,
    cluster_id: u64,
    /// This keeper's boot, in every image it writes.
    boot: u64,
    mine: VecDeque<Vec<u8>>,
    /// Reads in a row that found someone else's image (each different).
    foreign: u8,
    /// The last image of someone else's that was found.
    last_foreign: Option<Vec<u8>>,
    /// The boot and counter of the image in the slot at our start: its
    /// writer is our previous keeper (a blank or invalid slot has none).
    previous: Option<(u64, u64)>,
    /// When the last late write was seen.
    last_late: Option<Mono>,
}

impl OwnSlot {
    /// `boot`: the one this keeper writes; `found`: the slot as read at
    /// the keeper's start.
    pub fn new(me: u32, cluster_id: u64, boot: u64, found: &[u8]) -> OwnSlot {
        let previous = match SlotImage::of(me, cluster_id, found) {
            SlotImage::Valid(s) => Some((s.boot, s.counter)),
            _ => None,
        };
        OwnSlot {
            me,
            cluster_id,
            boot,
            mine: VecDeque::from([found.to_vec()]),
            foreign: 0,
            last_foreign: None,
            previous,
            last_late: None,
        }
    }

    /// We are about to write `image` to our slot.
    pub fn wrote(&mut self, image: &[u8]) {
        self.mine.push_back(image.to_vec());
        if self.mine.len() > MINE {
            self.mine.pop_front();
        }
    }

    /// `before` was in our slot just before one of our writes, at `now`
    /// (the keeper's clock, from its start); `idle`: this keeper neither
    /// claims nor holds.
    pub fn seen(&mut self, now: Mono, before: &[u8], idle: bool) -> Seen {
        if self.mine.iter().any(|m| m == before) {
            self.foreign = 0;
            return Seen::Ours;
        }
        let image = SlotImage::of(self.me, self.cluster_id, before);
        if matches!(&image, SlotImage::Valid(s) if s.boot == self.boot) {
            self.foreign = 0;
            return Seen::Ours;
        }
        if let SlotImage::Valid(s) = &image
            && idle
            && self
                .previous
                .is_some_and(|(boot, counter)| s.boot == boot && s.counter <= counter + LATE_AHEAD)
            && now <= Mono(0).after(LATE_WRITES_MAX)
        {
            self.foreign = 0;
            self.last_late = Some(now);
            return Seen::LateWrite {
                boot: s.boot,
                counter: s.counter,
            };
        }
        if self.last_foreign.as_deref() == Some(before) {
            return Seen::Foreign;
        }
        self.last_foreign = Some(before.to_vec());
        self.foreign = self.foreign.saturating_add(1);
        if self.foreign < 2 {
            return Seen::Foreign;
        }
        Seen::SecondWriter(match image {
            SlotImage::Valid(o) => format!(
                "boot {:x}, counter {}, {}",
                o.boot,
                o.counter,
                if o.holding { "holding" } else { "not holding" }
            ),
            other => format!("{other:?}"),
        })
    }

    /// Whether a claim must wait: a late write landed less than `quiet`
    /// ago (the keeper passes its host_dead: the peer's own judgment of
    /// "this writer has stopped").
    pub fn claims_wait(&self, now: Mono, quiet: Duration) -> bool {
        self.last_late
            .is_some_and(|t| now < t.after(quiet) && now <= Mono(0).after(LATE_WRITES_MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::format::Slot;

    const ME: u32 = 1;
    const CID: u64 = 0x5eed;
    const PREVIOUS_BOOT: u64 = 0x27ca;
    const THIS_BOOT: u64 = 0x91ab;
    const QUIET: Duration = Duration::from_secs(2);

    fn image(boot: u64, counter: u64, holding: bool) -> Vec<u8> {
        let mut s = Slot::new(ME, CID);
        s.boot = boot;
        s.counter = counter;
        s.holding = holding;
        s.encode().unwrap()
    }

    fn at(s: f64) -> Mono {
        Mono((s * 1000.0) as u64)
    }

    /// A keeper started after a reset, its previous boot's last image in
    /// the slot, and writing its own images every 200 ms.
    fn after_a_reset() -> (OwnSlot, u64) {
        let found = image(PREVIOUS_BOOT, 1400, false);
        (OwnSlot::new(ME, CID, THIS_BOOT, &found), 0)
    }

    fn write(w: &mut OwnSlot, counter: &mut u64) -> Vec<u8> {
        *counter += 1;
        let i = image(THIS_BOOT, *counter, false);
        w.wrote(&i);
        i
    }

    #[test]
    fn what_we_wrote_and_what_we_found_at_start_are_ours() {
        let (mut w, mut c) = after_a_reset();
        let found = image(PREVIOUS_BOOT, 1400, false);
        assert_eq!(w.seen(at(0.1), &found, true), Seen::Ours);
        let mine = write(&mut w, &mut c);
        assert_eq!(w.seen(at(0.3), &mine, true), Seen::Ours);
        assert!(!w.claims_wait(at(0.3), QUIET));
    }

    #[test]
    fn a_write_of_ours_held_up_while_newer_ones_were_issued_is_ours() {
        // The lab's fast-timing run: the worker sat on one write while
        // the keeper issued more (each replacing the one not yet
        // started); it landed after it had left the last few we keep, and
        // so did the next. Both carry our boot.
        let (mut w, mut c) = after_a_reset();
        let held_up = write(&mut w, &mut c);
        for _ in 0..6 {
            write(&mut w, &mut c);
        }
        assert_eq!(w.seen(at(1.4), &held_up, false), Seen::Ours);
        let next_held_up = write(&mut w, &mut c);
        for _ in 0..6 {
            write(&mut w, &mut c);
        }
        assert_eq!(w.seen(at(2.8), &next_held_up, false), Seen::Ours);
    }

    #[test]
    fn the_previous_boots_writes_landing_late_are_not_a_clone_and_hold_claims_back() {
        // The lab's case: a reset node's keeper found counter 1400 of its
        // previous boot; two older writes of that boot landed after it.
        let (mut w, mut c) = after_a_reset();
        let mut t = 0.0;
        for late in [1359, 1359, 1361] {
            write(&mut w, &mut c);
            t += 0.2;
            assert_eq!(
                w.seen(at(t), &image(PREVIOUS_BOOT, late, false), true),
                Seen::LateWrite {
                    boot: PREVIOUS_BOOT,
                    counter: late
                }
            );
            assert!(w.claims_wait(at(t), QUIET));
        }
        // Then only our own images: a claim may go once host_dead passed
        // without a late write.
        let last_late = t;
        while t < last_late + 3.0 {
            let mine = write(&mut w, &mut c);
            t += 0.2;
            assert_eq!(w.seen(at(t), &mine, true), Seen::Ours);
            assert_eq!(w.claims_wait(at(t), QUIET), t < last_late + 2.0, "at {t}");
        }
    }

    #[test]
    fn a_writer_of_the_found_image_that_goes_on_renewing_is_a_second_writer() {
        // A clone whose image was the one found at start renews: its
        // counter passes what a late write could carry within a few
        // writes, and no claim went meanwhile.
        let (mut w, mut c) = after_a_reset();
        let mut t = 0.0;
        let mut clone_counter = 1400;
        let verdict = loop {
            write(&mut w, &mut c);
            t += 0.2;
            clone_counter += 1;
            match w.seen(at(t), &image(PREVIOUS_BOOT, clone_counter, true), true) {
                Seen::LateWrite { .. } => {
                    assert!(w.claims_wait(at(t), QUIET), "a claim went at {t}")
                }
                Seen::Foreign => {}
                v => break v,
            }
        };
        assert_eq!(
            verdict,
            Seen::SecondWriter(format!(
                "boot {PREVIOUS_BOOT:x}, counter {}, holding",
                1400 + LATE_AHEAD + 2
            ))
        );
    }

    #[test]
    fn late_writes_are_excused_only_for_a_while_after_the_start() {
        let (mut w, mut c) = after_a_reset();
        let t = LATE_WRITES_MAX.as_secs_f64() + 1.0;
        write(&mut w, &mut c);
        assert_eq!(
            w.seen(at(t), &image(PREVIOUS_BOOT, 1401, false), true),
            Seen::Foreign
        );
        write(&mut w, &mut c);
        assert!(matches!(
            w.seen(at(t + 0.2), &image(PREVIOUS_BOOT, 1402, false), true),
            Seen::SecondWriter(_)
        ));
        assert!(!w.claims_wait(at(t + 0.2), QUIET));
    }

    #[test]
    fn while_claiming_or_holding_any_image_but_ours_counts() {
        // Once this keeper claims, the slot must be its own: even images
        // of the previous boot are a second writer's when two show in a
        // row.
        let (mut w, mut c) = after_a_reset();
        write(&mut w, &mut c);
        let old = image(PREVIOUS_BOOT, 1359, false);
        assert_eq!(w.seen(at(0.2), &old, false), Seen::Foreign);
        write(&mut w, &mut c);
        assert_eq!(
            w.seen(at(0.4), &image(PREVIOUS_BOOT, 1361, false), false),
            Seen::SecondWriter(format!("boot {PREVIOUS_BOOT:x}, counter 1361, not holding"))
        );
    }

    #[test]
    fn one_late_write_found_again_because_our_write_did_not_land_is_no_second_writer() {
        // The lab's case while claiming: a late write landed, our next
        // write failed on the loaded disk, and the read before the one
        // after found the same image again. Nobody wrote since.
        let (mut w, mut c) = after_a_reset();
        let late = image(PREVIOUS_BOOT, 1359, false);
        for t in [0.2, 0.4, 0.6] {
            write(&mut w, &mut c);
            assert_eq!(w.seen(at(t), &late, false), Seen::Foreign, "at {t}");
        }
        // A live writer's next image differs: that is the second one.
        write(&mut w, &mut c);
        assert!(matches!(
            w.seen(at(0.8), &image(PREVIOUS_BOOT, 1360, true), false),
            Seen::SecondWriter(_)
        ));
    }

    #[test]
    fn an_image_of_another_boot_is_a_second_writers_even_while_idle() {
        let (mut w, mut c) = after_a_reset();
        let stranger = |counter| image(0xbeef, counter, true);
        write(&mut w, &mut c);
        assert_eq!(w.seen(at(0.2), &stranger(7), true), Seen::Foreign);
        let mine = write(&mut w, &mut c);
        // Our own image in between starts the count again.
        assert_eq!(w.seen(at(0.4), &mine, true), Seen::Ours);
        write(&mut w, &mut c);
        assert_eq!(w.seen(at(0.6), &stranger(8), true), Seen::Foreign);
        write(&mut w, &mut c);
        assert!(matches!(
            w.seen(at(0.8), &stranger(9), true),
            Seen::SecondWriter(_)
        ));
        assert!(!w.claims_wait(at(0.8), QUIET));
    }

    #[test]
    fn a_fresh_slot_has_no_previous_keeper_to_excuse() {
        let mut w = OwnSlot::new(ME, CID, THIS_BOOT, &vec![0u8; crate::lease::format::BLOCK]);
        let mut c = 0;
        write(&mut w, &mut c);
        assert_eq!(
            w.seen(at(0.2), &image(PREVIOUS_BOOT, 3, false), true),
            Seen::Foreign
        );
        write(&mut w, &mut c);
        assert!(matches!(
            w.seen(at(0.4), &image(PREVIOUS_BOOT, 4, false), true),
            Seen::SecondWriter(_)
        ));
    }
}
