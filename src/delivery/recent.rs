//! A value read from the database and used for a short while after: what
//! admission looks at before the hash. Every decision that must be exact reads
//! the database again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long admission trusts what it read: about what a request takes, so a
/// flood of requests costs one read of each per `FRESH`, not one each.
pub const FRESH: Duration = Duration::from_millis(250);

pub struct Recent<T> {
    kept: Mutex<Kept<T>>,
}

struct Kept<T> {
    read: Option<(Instant, T)>,
    /// When this replica last changed what it was read from: a read that
    /// began before then is older news than the change, and is not kept.
    changed: Option<Instant>,
}

impl<T: Clone> Recent<T> {
    pub fn new() -> Self {
        Self {
            kept: Mutex::new(Kept {
                read: None,
                changed: None,
            }),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept<T>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was read less than `FRESH` ago, if anything was.
    pub fn get(&self) -> Option<T> {
        self.kept()
            .read
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value`, read at `at` (taken before the read began), unless a
    /// newer read is kept or this replica changed it since `at`.
    pub fn put(&self, at: Instant, value: T) {
        let mut kept = self.kept();
        let newer_read = kept.read.as_ref().is_some_and(|(read_at, _)| *read_at > at);
        let changed_since = kept.changed.is_some_and(|changed| changed >= at);
        if !newer_read && !changed_since {
            kept.read = Some((at, value));
        }
    }

    /// Changes what is kept as this replica changed what it was read from.
    pub fn amend(&self, change: impl FnOnce(&mut T)) {
        let mut kept = self.kept();
        kept.changed = Some(Instant::now());
        if let Some((_, value)) = kept.read.as_mut() {
            change(value);
        }
    }

    /// Forgets it: this replica just changed what it was read from.
    pub fn forget(&self) {
        let mut kept = self.kept();
        kept.changed = Some(Instant::now());
        kept.read = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_served_while_fresh_and_not_after_being_forgotten() {
        let recent = Recent::new();
        assert_eq!(recent.get(), None::<u32>);
        recent.put(Instant::now(), 1);
        assert_eq!(recent.get(), Some(1));
        recent.forget();
        assert_eq!(recent.get(), None);
    }

    #[test]
    fn an_amended_value_is_served_amended() {
        let recent = Recent::new();
        recent.amend(|v: &mut u32| *v += 1);
        assert_eq!(recent.get(), None);
        recent.put(Instant::now(), 1);
        recent.amend(|v| *v += 1);
        assert_eq!(recent.get(), Some(2));
    }

    #[test]
    fn an_older_read_does_not_replace_a_newer_one() {
        let recent = Recent::new();
        let before = Instant::now();
        recent.put(Instant::now(), 2);
        recent.put(before, 1);
        assert_eq!(recent.get(), Some(2));
    }

    #[test]
    fn a_read_begun_before_a_change_is_not_kept() {
        let recent = Recent::new();
        let began = Instant::now();
        recent.forget();
        recent.put(began, 1);
        assert_eq!(recent.get(), None);
        // A read that begins after the change is kept (later by a millisecond,
        // as instants taken in a row may be equal).
        let later = || Instant::now() + Duration::from_millis(1);
        recent.put(later(), 2);
        let began = Instant::now();
        recent.amend(|v| *v += 1);
        recent.put(began, 10);
        assert_eq!(recent.get(), Some(3));
        recent.put(later() + Duration::from_millis(1), 4);
        assert_eq!(recent.get(), Some(4));
    }

    #[test]
    fn a_stale_value_is_not_served() {
        let recent = Recent::new();
        recent.put(Instant::now() - FRESH, 1);
        assert_eq!(recent.get(), None);
    }
}
