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

/// How close a send must come to a window after the one `rate` before it
/// to count as held back by that window alone.
const TIGHT: f64 = 1e-9;

/// One key during the reckoning: its sends as seconds from now (past ones
/// negative), in order, and when its rest ends.
struct Key {
    sends: Vec<f64>,
    rests_until: f64,
    /// How many of its last sends each came a window after the send `rate`
    /// before it.
    tight: usize,
}

impl Key {
    fn of(load: &KeyLoad) -> Self {
        let mut sends: Vec<f64> = load.sent_ago.iter().map(|ago| -ago.max(0.0)).collect();
        sends.sort_by(f64::total_cmp);
        Self {
            sends,
            rests_until: load.resting_for.max(0.0),
            tight: 0,
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

    fn send(&mut self, at: f64, count: u64, limit: &KeyLimit) {
        let (rate, window) = (limit.rate as usize, limit.window.as_secs_f64());
        for _ in 0..count {
            let i = self.sends.len();
            // Within rounding: a burst that binds as tightly as the window
            // comes out an ulp apart.
            let tight = i >= rate && (self.sends[i - rate] + window - at).abs() < TIGHT;
            self.tight = if tight { self.tight + 1 } else { 0 };
            self.sends.push(at);
        }
    }

    /// Whether it now sends every round of `rate` a window after the round
    /// before, forever: when its last `rate` sends did, the next one waits
    /// for the one `rate` before it (its window), never longer: the send
    /// before it came a window after an earlier one, and a burst fits in a
    /// window (`burst_window <= window`) with the sends a window earlier
    /// having kept it. Its rest is behind it.
    fn settled(&self, limit: &KeyLimit) -> bool {
        self.tight >= limit.rate as usize
            && limit.burst_window <= limit.window
            && self.sends.last().is_some_and(|last| self.rests_until <= *last)
    }

    /// `rounds` rounds of a settled key later: the same sends, that many
    /// windows on. Only the last two rounds still bear on what follows.
    fn skip(&mut self, rounds: u64, limit: &KeyLimit) {
        let keep = 2 * limit.rate as usize;
        let shift = rounds as f64 * limit.window.as_secs_f64();
        self.sends.drain(..self.sends.len().saturating_sub(keep));
        self.sends.iter_mut().for_each(|s| *s += shift);
    }
}

/// When the `nth` send from now (1: the next) can go out, every key sending
/// as soon as its windows and its rest allow, looking no further than
/// `horizon` seconds. Without keys (or with keys that may never send) every
/// send is beyond it.
pub fn nth_send(keys: &[KeyLoad], limit: KeyLimit, nth: u64, horizon: f64) -> Reach {
    reckon(keys, &limit, nth, horizon).0
}

/// `nth_send`, and how many steps it took. Each step is one key's slots at
/// one moment; once every key sends round after round, a window apart, the
/// rest follows without steps: whole rounds skipped, then the last one read
/// off. A long queue costs a round or two of steps per key (one per send at
/// most, when past sends spread them), not one per send to the horizon.
fn reckon(keys: &[KeyLoad], limit: &KeyLimit, nth: u64, horizon: f64) -> (Reach, u64) {
    let mut keys: Vec<Key> = keys.iter().map(Key::of).collect();
    if keys.is_empty() || limit.rate == 0 || limit.burst == 0 {
        return (Reach::Beyond { fitting: 0 }, 0);
    }
    let nth = nth.max(1);
    let per_round = keys.len() as u64 * u64::from(limit.rate);
    let window = limit.window.as_secs_f64();
    let (mut sent, mut now, mut steps) = (0_u64, 0.0_f64, 0_u64);
    loop {
        steps += 1;
        // The key that frees first takes every slot it has then.
        let (key, at, room) = first_free(&keys, now, limit);
        if at > horizon {
            return (Reach::Beyond { fitting: sent }, steps);
        }
        let taken = u64::from(room).min(nth - sent);
        sent += taken;
        if sent == nth {
            return (Reach::At(at), steps);
        }
        keys[key].send(at, taken, limit);
        now = at;
        // Every key sends `rate` in each window from here on: whole rounds
        // that end before the `nth` send and the horizon need no steps.
        if !keys.iter().all(|key| key.settled(limit)) {
            continue;
        }
        let rounds = ((nth - sent - 1) / per_round).min(((horizon - now) / window).floor() as u64);
        keys.iter_mut().for_each(|key| key.skip(rounds, limit));
        sent += rounds * per_round;
        return (next_round(&keys, limit, nth - sent, horizon, sent), steps);
    }
}

/// The key (its index) that frees first from `now`, when, and how many it
/// may send then; `keys` is not empty.
fn first_free(keys: &[Key], now: f64, limit: &KeyLimit) -> (usize, f64, u32) {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let (at, room) = key.next_free(now, limit);
            (i, at, room)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("at least one key")
}

/// The `nth` send from here when every key is settled and it falls within
/// their next round (or the horizon does): each key's next round is its
/// last one a window on, so it is the `nth` of those, in time order.
fn next_round(keys: &[Key], limit: &KeyLimit, nth: u64, horizon: f64, sent: u64) -> Reach {
    let (rate, window) = (limit.rate as usize, limit.window.as_secs_f64());
    let mut round: Vec<f64> = keys
        .iter()
        .flat_map(|key| key.sends[key.sends.len() - rate..].iter().map(|s| *s + window))
        .collect();
    round.sort_by(f64::total_cmp);
    match round.get(nth as usize - 1) {
        Some(at) if *at <= horizon => Reach::At(*at),
        _ => Reach::Beyond {
            fitting: sent + round.partition_point(|at| *at <= horizon) as u64,
        },
    }
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
