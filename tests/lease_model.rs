//! The lease protocol, model-checked with stateright over the real
//! keeper state machine (`mailha::lease::machine`) in the simulated world
//! of `mailha::lease::sim`: every interleaving of ticks, I/O landing and
//! completing, I/O errors, hung I/O landing late, crashes, freezes,
//! watchdog resets and self-fences that fail, up to a time horizon.
//!
//! How time is modelled (docs/lease.md, "Time in the model"): one global
//! clock advancing in steps; each node reads it with its own offset, so
//! the keeper cannot compare two clocks; an I/O can only succeed before
//! its deadline; a watchdog resets its node exactly `watchdog` after the
//! last pet. A frozen node gets no ticks and no completions, but its I/O
//! may still land.
//!
//! Properties (DESIGN section 7):
//! A keeper may also be restarted at any moment (same boot): the new one
//! resumes only from a slot that says it holds, and fences data it finds
//! mounted otherwise.
//!
//! - safety: never two nodes with the data mounted (a frozen or
//!   cut-off holder still counts as mounted until reset or fenced);
//! - liveness: when one node crashes and the survivor's disk works, the
//!   survivor holds within host_dead + 2 renew + 4 io_timeout.

use mailha::lease::machine::{FenceOutcome, Role};
use mailha::lease::sim::{Event, World};
use mailha::lease::timing::Timing;
use stateright::{Checker, Model, Property};
use std::time::Duration;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[derive(Clone)]
struct Lease {
    timing: Timing,
    step: u64,
    horizon: u64,
    offsets: [u64; 2],
    /// How many I/O errors, hangs, lost strays, failed self-fences.
    faults: u8,
    /// One crash may happen.
    crash: bool,
    /// How many freezes.
    freezes: u8,
    /// fence_mailha may fence the peer (once per run).
    fencing: bool,
    /// The nodes may release and acquire again.
    churn: bool,
    /// How many keeper restarts (same boot).
    restarts: u8,
    /// The restarted keeper fences data it finds mounted without the
    /// lease (off only to show that the checker catches its absence).
    fence_at_start: bool,
    /// Refuse timing that breaks the formula (off only to show that the
    /// checker catches it).
    check_timing: bool,
}

impl Lease {
    /// The smallest numbers the formula allows with io_timeout 1s and a
    /// 2s watchdog: renew 1s, renew_fail 2s, host_dead 6s; the clock
    /// moves in steps of 1s (the keeper ticks once per step, so the
    /// watchdog must be longer than one step).
    fn small() -> Lease {
        Lease {
            timing: Timing {
                io_timeout: MS(1000),
                renew: MS(1000),
                renew_fail: MS(2000),
                watchdog: MS(2000),
                host_dead: MS(6000),
            },
            step: 1000,
            horizon: 10_000,
            offsets: [0, 7_000_000],
            faults: 2,
            crash: true,
            freezes: 1,
            fencing: false,
            churn: false,
            restarts: 0,
            fence_at_start: true,
            check_timing: true,
        }
    }
    fn liveness_bound(&self) -> u64 {
        let t = &self.timing;
        (t.host_dead + t.renew * 2 + t.io_timeout * 4).as_millis() as u64 + self.step
    }
}

impl Model for Lease {
    type State = World;
    type Action = Event;

    fn init_states(&self) -> Vec<World> {
        if self.check_timing {
            self.timing.check().expect("the model runs valid timing");
        }
        let mut w = World::new(
            self.timing,
            self.step,
            self.offsets,
            self.faults,
            self.freezes,
        );
        w.restarts = self.restarts;
        w.fence_at_start = self.fence_at_start;
        vec![w]
    }

    fn actions(&self, w: &World, out: &mut Vec<Event>) {
        out.extend(w.events(self.crash, self.horizon));
        for i in 0..2 {
            if !w.nodes[i].up {
                continue;
            }
            if self.fencing && w.fence_ids == 0 {
                out.push(Event::RequestFence(i));
            }
            if self.churn && w.nodes[i].keeper.holds() && !w.nodes[i].fencing {
                out.push(Event::Release(i));
            }
            if self.churn && w.nodes[i].keeper.role() == Role::Idle && !w.nodes[i].mounted {
                out.push(Event::Acquire(i));
            }
        }
    }

    fn next_state(&self, w: &World, e: Event) -> Option<World> {
        let mut w = w.clone();
        w.apply_event(e);
        Some(w)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut v = vec![
            Property::always("never two holders", |_, w: &World| !w.both_mounted()),
            Property::always(
                "a survivor with a working disk holds in bounded time",
                |m: &Lease, w: &World| {
                    if m.faults > 0 || m.freezes > 0 {
                        return true;
                    }
                    let Some(at) = w.crashed_at else { return true };
                    // A node that fenced itself holds nothing until it is
                    // restarted: it is not a survivor.
                    let survivor = (0..2).find(|&i| {
                        w.nodes[i].up && !matches!(w.nodes[i].keeper.role(), Role::Fenced { .. })
                    });
                    match survivor {
                        Some(s) if w.now >= at + m.liveness_bound() => w.nodes[s].mounted,
                        _ => true,
                    }
                },
            ),
            Property::sometimes("someone holds", |_, w: &World| {
                w.nodes.iter().any(|n| n.mounted)
            }),
        ];
        // Where a holder can be lost, the model must also show it replaced.
        if self.crash || self.freezes > 0 || self.fencing {
            v.push(Property::sometimes(
                "a holder is replaced",
                |_, w: &World| w.holders == 3,
            ));
        }
        if self.fencing {
            v.push(Property::sometimes(
                "a fence request is acked",
                |_, w: &World| {
                    w.nodes
                        .iter()
                        .any(|n| n.fence_result == Some(FenceOutcome::Acked))
                },
            ));
        }
        v
    }
}

/// Runs the checker to the end; returns the unique state count.
fn check(m: Lease) -> usize {
    let start = std::time::Instant::now();
    let c = m.checker().threads(2).spawn_bfs().join();
    eprintln!(
        "{} unique states, {} visited, depth {}, in {:?}",
        c.unique_state_count(),
        c.state_count(),
        c.max_depth(),
        start.elapsed()
    );
    // Every `always` holds on every state, every `sometimes` was seen.
    c.assert_properties();
    c.unique_state_count()
}

#[test]
fn two_nodes_starting_together_elect_exactly_one_holder() {
    // Both keepers want the lease from the first instant, in every
    // interleaving of their writes and reads (the original kit's disk
    // heartbeat let both mount when they started together: seed "Weak
    // points").
    let m = Lease {
        faults: 0,
        freezes: 0,
        crash: false,
        horizon: 14_000,
        ..Lease::small()
    };
    let (mut m1, mut m2) = (m.clone(), m);
    m1.offsets = [0, 0];
    m2.offsets = [9_000_000, 0];
    assert!(check(m1) > 1000);
    assert!(check(m2) > 1000);
}

#[test]
fn io_errors_hangs_and_late_landings_never_give_two_holders() {
    // Two faults placed anywhere: an I/O error, an I/O past its deadline
    // that lands late or never, a write that lands long before it
    // completes, a self-fence that fails.
    let m = Lease {
        faults: 2,
        freezes: 0,
        crash: false,
        horizon: 10_000,
        ..Lease::small()
    };
    assert!(check(m) > 10_000);
}

#[test]
fn a_frozen_holder_is_reset_by_its_watchdog_before_the_peer_takes_over() {
    // DESIGN 7, "node frozen": one node may freeze at any moment (and
    // thaw at any later one); its in-flight I/O may still land.
    let m = Lease {
        faults: 0,
        freezes: 1,
        crash: false,
        horizon: 14_000,
        ..Lease::small()
    };
    assert!(check(m) > 10_000);
}

#[test]
fn a_crashed_holder_is_replaced_within_the_bound() {
    // DESIGN 7, "node dies": the survivor's disk works, so it must hold
    // within host_dead + 2 renew + 4 io_timeout of the crash.
    let m = Lease {
        faults: 0,
        freezes: 0,
        crash: true,
        horizon: 16_000,
        ..Lease::small()
    };
    assert!(check(m) > 10_000);
}

#[test]
fn a_fence_request_at_any_moment_keeps_the_invariant() {
    // fence_mailha on either node at any moment: an ack must mean the
    // acker holds nothing, and the requester may then acquire.
    let m = Lease {
        faults: 0,
        freezes: 0,
        crash: false,
        fencing: true,
        horizon: 10_000,
        ..Lease::small()
    };
    assert!(check(m) > 10_000);
}

#[test]
fn releases_and_reacquires_keep_the_invariant() {
    // The agent's stop and start again, on either node at any moment.
    let m = Lease {
        faults: 0,
        freezes: 0,
        crash: false,
        churn: true,
        horizon: 8_000,
        ..Lease::small()
    };
    assert!(check(m) > 1_000);
}

#[test]
fn a_renew_fail_that_outlasts_host_dead_is_caught() {
    // The checker can fail: a holder cut off from the lease disk that
    // keeps its mounts and pets its watchdog for renew_fail = 8s while
    // its peer declares it dead after host_dead = 6s breaks the formula
    // (host_dead >= renew_fail + watchdog + 2 io_timeout), and the
    // checker must find the double mount. `init_states` refuses invalid
    // timing, so the keepers get it behind its back.
    let mut m = Lease {
        faults: 1,
        freezes: 0,
        crash: false,
        horizon: 16_000,
        ..Lease::small()
    };
    m.timing.renew_fail = MS(8000);
    m.check_timing = false;
    let c = m.checker().threads(2).spawn_bfs().join();
    let path = c.discovery("never two holders");
    assert!(
        path.is_some(),
        "no double mount found with renew_fail > host_dead"
    );
    eprintln!("counterexample: {:?}", path.unwrap().into_actions());
}

#[test]
fn a_keeper_restarted_at_any_moment_keeps_the_invariant() {
    // An upgrade or a crash its unit restarts, at any moment of the
    // protocol, with an I/O fault placed anywhere (a write in flight that
    // lands after the new keeper read its slot, a fence at start that
    // fails): the new keeper either resumes a lease its slot proves, or
    // holds nothing with nothing mounted.
    let m = Lease {
        faults: 1,
        freezes: 0,
        crash: false,
        restarts: 1,
        horizon: 10_000,
        ..Lease::small()
    };
    assert!(check(m) > 10_000);
}

#[test]
fn a_restarted_keeper_that_ignores_mounted_data_is_caught() {
    // The checker can fail: a keeper restarted between its Acquired and
    // the landing of its "holding" write finds a slot that does not say
    // it holds; without the fence at start it idles (and pets) with the
    // data still mounted, and the peer takes the lease.
    let m = Lease {
        faults: 1,
        freezes: 0,
        crash: false,
        restarts: 1,
        fence_at_start: false,
        horizon: 10_000,
        ..Lease::small()
    };
    let c = m.checker().threads(2).spawn_bfs().join();
    let path = c.discovery("never two holders");
    assert!(
        path.is_some(),
        "no double mount found without the fence at start"
    );
    eprintln!("counterexample: {:?}", path.unwrap().into_actions());
}
