//! When a waiting message should go out: the keys' slots as the dispatcher
//! hands them out, one after the other, from now. Each key sends at most
//! `rate` in any sliding `window` and `burst` in any `burst_window`
//! (`delivery::senders`), not at all while it rests after a gateway `429`;
//! every free slot is taken at once. Admission places a new message at its
//! place in the fair order (`fair::position`) and reads here when that
//! place's send comes: the figure it admits by is the one the answer shows.

use std::time::Instant;

use crate::delivery::senders::SenderStatus;
use crate::store::senders::KeyLimit;

/// One key in service, seen from now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyLoad {
    /// Seconds since each of its sends still in the window (any order).
    pub sent_ago: Vec<f64>,
    /// Seconds it still rests (0 when it does not).
    pub resting_for: f64,
}

impl KeyLoad {
    /// A key's sends and its rest as its status has them, seen from `now`.
    pub fn of(status: &SenderStatus, now: Instant) -> Self {
        Self {
            sent_ago: status
                .sent_at
                .iter()
                .map(|at| now.saturating_duration_since(*at).as_secs_f64())
                .collect(),
            resting_for: status
                .rests_until
                .map_or(0.0, |until| until.saturating_duration_since(now).as_secs_f64()),
        }
    }
}

/// Where the `nth` send from now falls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// At this many seconds from now.
    At(f64),
    /// Past the horizon, by which only `fitting` sends go out.
    Beyond { fitting: u64 },
}

/// One key during the reckoning: its sends as seconds from now (past ones
/// negative), in order, and when its rest ends.
struct Key {
    sends: Vec<f64>,
    rests_until: f64,
}

impl Key {
    fn of(load: &KeyLoad) -> Self {
        let mut sends: Vec<f64> = load.sent_ago.iter().map(|ago| -ago.max(0.0)).collect();
        sends.sort_by(f64::total_cmp);
        Self {
            sends,
            rests_until: load.resting_for.max(0.0),
        }
    }

    /// Sends still counted at `t` by a window of `span` seconds (those after
    /// `t - span`), and the first of them. Written as `s + span`, the very
    /// sum `next_free` waits until, so a send has left at that moment
    /// exactly, whatever the rounding of `t - span`.
    fn counted(&self, t: f64, span: f64) -> (usize, usize) {
        let first = self.sends.partition_point(|s| *s + span <= t);
        (self.sends.len() - first, first)
    }

    /// The first moment from `from` at which it may send, and how many it may
    /// send then. A full window frees when its oldest surplus send leaves it.
    fn next_free(&self, from: f64, limit: &KeyLimit) -> (f64, u32) {
        let (rate, burst) = (limit.rate as usize, limit.burst as usize);
        let (window, burst_window) = (limit.window.as_secs_f64(), limit.burst_window.as_secs_f64());
        let mut t = from.max(self.rests_until);
        loop {
            let (in_window, first) = self.counted(t, window);
            let (in_burst, first_burst) = self.counted(t, burst_window);
            let mut later = t;
            if in_window >= rate {
                later = later.max(self.sends[first + in_window - rate] + window);
            }
            if in_burst >= burst {
                later = later.max(self.sends[first_burst + in_burst - burst] + burst_window);
            }
            if later <= t {
                let room = (rate - in_window).min(burst - in_burst);
                return (t, u32::try_from(room).unwrap_or(u32::MAX));
            }
            t = later;
        }
    }
}

/// When the `nth` send from now (1: the next) can go out, every key sending
/// as soon as its windows and its rest allow, looking no further than
/// `horizon` seconds. Without keys (or with keys that may never send) every
/// send is beyond it.
pub fn nth_send(keys: &[KeyLoad], limit: KeyLimit, nth: u64, horizon: f64) -> Reach {
    let mut keys: Vec<Key> = keys.iter().map(Key::of).collect();
    if keys.is_empty() || limit.rate == 0 || limit.burst == 0 {
        return Reach::Beyond { fitting: 0 };
    }
    let nth = nth.max(1);
    let (mut sent, mut now) = (0_u64, 0.0_f64);
    loop {
        // The key that frees first takes every slot it has then.
        let (key, at, room) = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let (at, room) = key.next_free(now, &limit);
                (i, at, room)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least one key");
        if at > horizon {
            return Reach::Beyond { fitting: sent };
        }
        let taken = u64::from(room).min(nth - sent);
        sent += taken;
        if sent == nth {
            return Reach::At(at);
        }
        let sends = &mut keys[key].sends;
        sends.extend(std::iter::repeat_n(at, taken as usize));
        now = at;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let started = std::time::Instant::now();
        let reach = nth_send(&keys, limit(600, 150), 120_000, 600.0);
        assert_eq!(reach, Reach::At(589.5));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
