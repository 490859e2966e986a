//! When a failed webhook delivery is tried again, and when an endpoint has
//! failed long enough to be disabled: decisions, no I/O.

use std::time::Duration;

/// Svix's schedule: after the first attempt, tries again 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h and 10 h later (a day and 3 hours in all), then gives up.
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
];

/// An endpoint that has failed every delivery for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `Retry-After` honoured: a receiver cannot park events for weeks.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    RetryIn(Duration),
    GiveUp,
}

/// After the `attempts`-th failed attempt (1 for the first): the schedule's
/// next wait, spread by ±10 % (`jitter` in [0, 1)) so that a receiver that
/// comes back is not hit by every replica's retries at once, or the
/// receiver's `Retry-After` when it asks for longer.
pub fn after_failure(
    attempts: u32,
    schedule: &[Duration],
    retry_after: Option<Duration>,
    jitter: f64,
) -> NextStep {
    let Some(wait) = schedule.get(attempts.saturating_sub(1) as usize) else {
        return NextStep::GiveUp;
    };
    let spread = wait.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0));
    let asked = retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER));
    NextStep::RetryIn(spread.max(asked))
}

/// Whether an endpoint failing since `failing_for` ago is to be disabled.
pub fn disable(failing_for: Duration) -> bool {
    failing_for >= DISABLE_AFTER
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: a
/// receiver's clock is not ours).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let s = &DEFAULT_SCHEDULE;
        assert_eq!(
            after_failure(1, s, None, 0.5),
            NextStep::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            after_failure(2, s, None, 0.5),
            NextStep::RetryIn(Duration::from_secs(300))
        );
        assert_eq!(
            after_failure(7, s, None, 0.5),
            NextStep::RetryIn(Duration::from_secs(36_000))
        );
        assert_eq!(after_failure(8, s, None, 0.5), NextStep::GiveUp);
        let total: Duration = s.iter().sum();
        assert!(total > Duration::from_secs(24 * 3600) && total < Duration::from_secs(28 * 3600));
    }

    #[test]
    fn jitter_spreads_by_a_tenth() {
        let s = &DEFAULT_SCHEDULE;
        assert_eq!(
            after_failure(2, s, None, 0.0),
            NextStep::RetryIn(Duration::from_secs(270))
        );
        assert_eq!(
            after_failure(2, s, None, 1.0),
            NextStep::RetryIn(Duration::from_secs(330))
        );
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_bounded() {
        let s = &DEFAULT_SCHEDULE;
        let asked = Some(Duration::from_secs(60));
        assert_eq!(
            after_failure(1, s, asked, 0.5),
            NextStep::RetryIn(Duration::from_secs(60))
        );
        assert_eq!(
            after_failure(2, s, asked, 0.5),
            NextStep::RetryIn(Duration::from_secs(300))
        );
        let weeks = Some(Duration::from_secs(30 * 24 * 3600));
        assert_eq!(
            after_failure(1, s, weeks, 0.5),
            NextStep::RetryIn(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn a_day_of_failures_disables() {
        assert!(!disable(Duration::from_secs(23 * 3600)));
        assert!(disable(DISABLE_AFTER));
    }
}
