//! A value read from the database and used for a short while after: what
//! admission looks at before the hash. Every decision that must be exact reads
//! the database again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long admission trusts what it read: about what a request takes, so a
/// flood of requests costs one read of each per `FRESH`, not one each.
pub const FRESH: Duration = Duration::from_millis(250);

pub struct Recent<T> {
    read: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> Recent<T> {
    pub fn new() -> Self {
        Self {
            read: Mutex::new(None),
        }
    }

    /// What was read less than `FRESH` ago, if anything was.
    pub fn get(&self) -> Option<T> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value`, read at `at` (taken before the read began).
    pub fn put(&self, at: Instant, value: T) {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if read.as_ref().is_none_or(|(kept, _)| *kept <= at) {
            *read = Some((at, value));
        }
    }

    /// Changes what is kept as this replica changed what it was read from.
    pub fn amend(&self, change: impl FnOnce(&mut T)) {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, value)) = read.as_mut() {
            change(value);
        }
    }

    /// Forgets it: this replica just changed what it was read from.
    pub fn forget(&self) {
        *self.read.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
    fn a_stale_value_is_not_served() {
        let recent = Recent::new();
        recent.put(Instant::now() - FRESH, 1);
        assert_eq!(recent.get(), None);
    }
}
