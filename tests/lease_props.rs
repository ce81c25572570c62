//! Property tests of the keeper state machine in the simulated world
//! (`mailha::lease::sim`) with the standard numbers (io_timeout 1s,
//! watchdog 5s: renew 2s, renew_fail 8s, host_dead 15s) and 100 ms
//! steps: random schedules with random I/O errors, delays, hangs, late
//! landings, cuts, freezes and crashes. The model checker
//! (tests/lease_model.rs) covers every interleaving at a coarse
//! granularity; these cover long, fine-grained runs.

use mailha::lease::machine::Role;
use mailha::lease::sim::{Event, World};
use mailha::lease::timing::Timing;
use proptest::prelude::*;
use std::time::Duration;

fn timing() -> Timing {
    Timing::standard(Duration::from_secs(1), Duration::from_secs(5)).unwrap()
}

/// Plays `choices` as picks among the events possible at each point;
/// every `bias`-th pick prefers a successful completion so runs make
/// progress. Checks the invariant after every event.
fn play(w: &mut World, choices: &[u16], crash: bool) -> Result<(), TestCaseError> {
    for (k, &c) in choices.iter().enumerate() {
        let evs = w.events(crash, u64::MAX);
        if evs.is_empty() {
            break;
        }
        let pick = if c % 4 != 0 {
            // Mostly let things run: complete I/O, else let time pass.
            evs.iter()
                .copied()
                .find(|e| matches!(e, Event::Complete(_)))
                .unwrap_or(Event::Tick)
        } else {
            evs[c as usize / 4 % evs.len()]
        };
        w.apply_event(pick);
        prop_assert!(
            !w.both_mounted(),
            "two holders after event {k} ({pick:?}) at {} ms: {w:#?}",
            w.now
        );
    }
    Ok(())
}

/// Lets the world run with every I/O succeeding at once.
fn settle(w: &mut World, for_ms: u64) {
    let end = w.now + for_ms;
    while w.now < end {
        let evs = w.events(false, u64::MAX);
        let e = evs
            .iter()
            .copied()
            .find(|e| matches!(e, Event::Complete(_) | Event::StrayLand(_)))
            .unwrap_or(Event::Tick);
        w.apply_event(e);
        assert!(!w.both_mounted());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_faults_never_give_two_holders(
        choices in prop::collection::vec(any::<u16>(), 200..1500),
        budget in 0u8..6,
        freezes in 0u8..2,
        off in 0u64..1_000_000,
    ) {
        let mut w = World::new(timing(), 100, [off, 0], budget, freezes);
        play(&mut w, &choices, true)?;
    }

    #[test]
    fn after_a_crash_the_survivor_holds_within_the_bound(
        before in prop::collection::vec(any::<u16>(), 50..400),
        victim in 0usize..2,
    ) {
        // No faults: the survivor's disk works. Whoever held, once one
        // node is gone the other holds within host_dead + 2 renew + 4 io.
        let t = timing();
        let mut w = World::new(t, 100, [0, 3_000_000], 0, 0);
        play(&mut w, &before, false)?;
        settle(&mut w, 1_000);
        w.apply_event(Event::Crash(victim));
        let bound = (t.host_dead + t.renew * 2 + t.io_timeout * 4).as_millis() as u64;
        settle(&mut w, bound + 100);
        let s = &w.nodes[1 - victim];
        prop_assert!(
            s.mounted || matches!(s.keeper.role(), Role::Fenced { .. }),
            "survivor {:?} not holding {} ms after the crash",
            s.keeper.role(),
            bound
        );
    }
}

#[test]
fn a_holder_cut_from_the_lease_disk_fences_itself_before_the_peer_takes_over() {
    // DESIGN 7, "active loses storage": renewals fail for renew_fail ->
    // self-fence; the peer waits host_dead; no instant with two holders.
    let mut w = World::new(timing(), 100, [0, 0], 1, 0);
    settle(&mut w, 5_000);
    let holder = (0..2).find(|&i| w.nodes[i].mounted).expect("a holder");
    w.apply_event(Event::Cut(holder));
    let mut fenced_at = None;
    let mut taken_at = None;
    while w.now < 40_000 {
        let evs = w.events(false, u64::MAX);
        let e = evs
            .iter()
            .copied()
            .find(|e| matches!(e, Event::Complete(_)))
            .unwrap_or(Event::Tick);
        w.apply_event(e);
        if fenced_at.is_none() && w.nodes[holder].fencing {
            fenced_at = Some(w.now);
            // The self-fence works: users killed, unmounted.
            w.apply_event(Event::SelfFenceDone(holder, true));
        }
        if taken_at.is_none() && w.nodes[1 - holder].mounted {
            taken_at = Some(w.now);
        }
        assert!(!w.both_mounted());
    }
    let (f, t) = (
        fenced_at.expect("self-fenced"),
        taken_at.expect("taken over"),
    );
    assert!(f < t, "fenced at {f} ms, peer took over at {t} ms");
    assert!(t - 5_000 >= 15_000, "the peer waited host_dead: {t}");
}

#[test]
fn a_fence_request_is_acked_and_the_requester_may_take_over_without_waiting() {
    // DESIGN 7, "heartbeat cut, storage fine": the active node fences
    // the standby through the lease; the standby acks within a few
    // renewals, far sooner than host_dead.
    let mut w = World::new(timing(), 100, [0, 0], 0, 0);
    settle(&mut w, 5_000);
    let holder = (0..2).find(|&i| w.nodes[i].mounted).expect("a holder");
    let standby = 1 - holder;
    w.apply_event(Event::RequestFence(holder));
    let start = w.now;
    while w.nodes[holder].fence_result.is_none() && w.now < start + 20_000 {
        if w.nodes[standby].fencing {
            w.apply_event(Event::SelfFenceDone(standby, true));
        }
        settle(&mut w, 100);
    }
    assert_eq!(
        w.nodes[holder].fence_result,
        Some(mailha::lease::machine::FenceOutcome::Acked)
    );
    assert!(w.now - start <= 6_000, "acked after {} ms", w.now - start);
    assert!(w.nodes[holder].mounted, "the active node kept the mail");
    assert_eq!(
        w.nodes[standby].keeper.role(),
        Role::Fenced { reset: false }
    );
}
