use super::*;
use crate::delivery::senders::{BURST_WINDOW, WINDOW};

fn limit(rate: u32, burst: u32) -> KeyLimit {
    KeyLimit {
        rate,
        burst,
        window: WINDOW,
        burst_window: BURST_WINDOW,
    }
}

fn idle() -> KeyLoad {
    KeyLoad::default()
}

fn at(reach: Reach) -> f64 {
    match reach {
        Reach::At(t) => t,
        beyond => panic!("{beyond:?}"),
    }
}

#[test]
fn an_idle_key_sends_its_burst_now_then_a_burst_each_burst_window() {
    // 30 a minute, 8 in any 15 s: 8 now, at 15, at 30, then the 6 left of
    // the minute at 45; the next go when the first 8 leave the window.
    let key = [idle()];
    let nth = |n| at(nth_send(&key, limit(30, 8), n, 600.0));
    assert_eq!(nth(1), 0.0);
    assert_eq!(nth(8), 0.0);
    assert_eq!(nth(9), 15.0);
    assert_eq!(nth(24), 30.0);
    assert_eq!(nth(25), 45.0);
    assert_eq!(nth(30), 45.0);
    assert_eq!(nth(31), 60.5);
    assert_eq!(nth(38), 60.5);
    // The 6 sent at 45 left the burst window by 60.5: the burst is whole.
    assert_eq!(nth(39), 75.5);
    assert_eq!(nth(40), 75.5);
}

#[test]
fn a_full_window_frees_as_its_oldest_sends_leave_it() {
    // The whole minute sent, the oldest 10 s ago: the next in 50.5 s.
    let key = [KeyLoad {
        sent_ago: vec![10.0; 30],
        resting_for: 0.0,
    }];
    assert_eq!(at(nth_send(&key, limit(30, u32::MAX), 1, 600.0)), 50.5);
    assert_eq!(at(nth_send(&key, limit(30, u32::MAX), 30, 600.0)), 50.5);
    assert_eq!(at(nth_send(&key, limit(30, u32::MAX), 31, 600.0)), 111.0);
    // Sends of different ages free one by one.
    let key = [KeyLoad {
        sent_ago: vec![50.0, 40.0, 30.0],
        resting_for: 0.0,
    }];
    let nth = |n| at(nth_send(&key, limit(3, 3), n, 600.0));
    assert_eq!(nth(1), 10.5);
    assert_eq!(nth(2), 20.5);
    assert_eq!(nth(3), 30.5);
}

#[test]
fn a_send_leaves_its_window_at_the_moment_reckoned_whatever_the_rounding() {
    // -0.3 + 60.5 - 60.5 is not -0.3 in floating point.
    let key = [KeyLoad {
        sent_ago: vec![0.3],
        resting_for: 0.0,
    }];
    assert_eq!(at(nth_send(&key, limit(1, 1), 1, 600.0)), -0.3 + 60.5);
    assert_eq!(at(nth_send(&key, limit(1, 1), 2, 600.0)), -0.3 + 60.5 + 60.5);
}

#[test]
fn a_resting_key_sends_nothing_until_its_rest_is_over() {
    let key = [KeyLoad {
        sent_ago: vec![],
        resting_for: 12.0,
    }];
    assert_eq!(at(nth_send(&key, limit(30, 8), 1, 600.0)), 12.0);
    assert_eq!(at(nth_send(&key, limit(30, 8), 9, 600.0)), 27.0);
}

#[test]
fn keys_add_up_and_the_first_free_one_goes_first() {
    let busy = KeyLoad {
        sent_ago: vec![0.0; 8],
        resting_for: 0.0,
    };
    let keys = [busy, idle()];
    let nth = |n| at(nth_send(&keys, limit(30, 8), n, 600.0));
    assert_eq!(nth(8), 0.0, "the idle key's burst");
    assert_eq!(nth(9), 15.0);
    assert_eq!(nth(24), 15.0, "both keys' bursts at 15 s");
    assert_eq!(nth(25), 30.0);
}

#[test]
fn past_the_horizon_it_says_how_many_fit() {
    let key = [idle()];
    assert_eq!(
        nth_send(&key, limit(30, 8), 40, 50.0),
        Reach::Beyond { fitting: 30 }
    );
    assert_eq!(nth_send(&[], limit(30, 8), 1, 50.0), Reach::Beyond { fitting: 0 });
    assert_eq!(nth_send(&key, limit(0, 8), 1, 50.0), Reach::Beyond { fitting: 0 });
}

#[test]
fn a_long_queue_is_reckoned_in_bursts_not_one_by_one() {
    // 20 keys at 600 a minute, 10 minutes of them: 120,000 sends, the
    // last of them at 589.5 s, in 800 bursts.
    let keys = vec![idle(); 20];
    let (reach, steps) = reckon(&keys, &limit(600, 150), 120_000, 600.0);
    assert_eq!(reach, Reach::At(589.5));
    // Two rounds of four bursts a key, then the rest is skipped.
    assert!(steps <= 8 * 20, "{steps} steps");
}

/// The reckoning one step after the other to the end, as it was before it
/// skipped rounds: what the skipping must agree with.
fn stepwise(keys: &[KeyLoad], limit: &KeyLimit, nth: u64, horizon: f64) -> Reach {
    let mut keys: Vec<Key> = keys.iter().map(Key::of).collect();
    let (mut sent, mut now) = (0_u64, 0.0_f64);
    loop {
        let (key, at, room) = first_free(&keys, now, limit);
        if at > horizon {
            return Reach::Beyond { fitting: sent };
        }
        let taken = u64::from(room).min(nth - sent);
        sent += taken;
        if sent == nth {
            return Reach::At(at);
        }
        keys[key].send(at, taken, limit);
        now = at;
    }
}

/// A key that sent `count` evenly over the last minute, the newest `newest`
/// seconds ago.
fn spread(count: usize, newest: f64) -> KeyLoad {
    KeyLoad {
        sent_ago: (0..count)
            .map(|i| newest + 60.0 * i as f64 / count as f64)
            .collect(),
        resting_for: 0.0,
    }
}

fn same(a: Reach, b: Reach) -> bool {
    match (a, b) {
        (Reach::At(a), Reach::At(b)) => (a - b).abs() < 1e-9,
        (a, b) => a == b,
    }
}

#[test]
fn skipping_rounds_finds_what_stepping_finds() {
    let resting = KeyLoad {
        sent_ago: vec![3.0; 5],
        resting_for: 70.0,
    };
    let cases = [
        (vec![idle(), spread(30, 0.2)], limit(30, 8)),
        (vec![spread(7, 1.0), spread(30, 0.0), resting], limit(30, 8)),
        (vec![spread(20, 0.5); 3], limit(20, 40)),
        (vec![idle(), spread(5, 2.0)], limit(6, 2)),
    ];
    for (keys, limit) in cases {
        for horizon in [50.0, 200.0, 540.0] {
            for nth in (1..700).step_by(7) {
                let (fast, slow) = (
                    reckon(&keys, &limit, nth, horizon).0,
                    stepwise(&keys, &limit, nth, horizon),
                );
                assert!(
                    same(fast, slow),
                    "{limit:?} horizon {horizon} nth {nth}: {fast:?} against {slow:?}"
                );
            }
        }
    }
}

#[test]
fn a_backlog_to_the_horizon_costs_a_round_of_steps_not_one_per_send() {
    // Every key sent its minute one by one: its sends free one by one, so
    // the first round takes a step a send; the eight after it are skipped,
    // whether the last send falls before the horizon or the queue runs past it.
    let keys = vec![spread(600, 0.05); 20];
    for nth in [107_000, 108_001, 1_000_000] {
        let (reach, steps) = reckon(&keys, &limit(600, 150), nth, 540.0);
        assert_eq!(reach, stepwise(&keys, &limit(600, 150), nth.min(108_001), 540.0));
        assert!(steps <= 600 * 20 + 20, "{nth}: {steps} steps");
    }
}
