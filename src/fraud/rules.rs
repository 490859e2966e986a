//! The pumping rules, decided over each client's counts (`store::fraud_counts`).
//! Each client is judged by its own traffic, so one client's requests can
//! never raise a flag that refuses another's; the one rule that looks at the
//! gateway as a whole flags only clients whose own traffic is dirty.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::store::fraud_counts::{ConversionCounts, NetworkCounts, UnverifiedCounts};
use crate::store::fraud_flags::Flag;

/// How long each of the detector's counts may run: they scan a day, or two
/// weeks, of verifications, far more than a request's statement reads, and
/// run in the background where waiting harms no one.
pub const SCAN_LIMIT: Duration = Duration::from_secs(60);
pub const DAY: Duration = Duration::from_secs(24 * 3600);
pub const HOUR: Duration = Duration::from_secs(3600);
/// The days whose best verified day sets the bound of `unverified_day`.
pub const BASELINE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Codes sent and not verified in a day that always pass for normal.
pub const UNVERIFIED_FLOOR: i64 = 20;
/// ... or this share of the best verified day of the baseline, if larger.
pub const BEST_DAY_SHARE: f64 = 0.2;
/// The conversion under which an hour's sends to a prefix are suspect.
pub const LOW_CONVERSION: f64 = 0.1;
/// ... once there are at least this many.
pub const LOW_CONVERSION_MIN_SENDS: i64 = 20;
/// Countries one end-user network may ask numbers of in a day.
pub const MAX_COUNTRIES: i64 = 3;
/// Unverified codes from which a client's traffic on a prefix counts towards
/// the gateway's (`unverified_day_all_clients`), when it also converts under
/// `LOW_CONVERSION`: below, or converting, its traffic is clean.
pub const CONTRIBUTOR_FLOOR: i64 = 5;

/// The bound of `unverified_day` for a key whose best verified day was `best_day`.
fn day_bound(best_day: i64) -> f64 {
    (UNVERIFIED_FLOOR as f64).max(BEST_DAY_SHARE * best_day as f64)
}

/// `unverified_day`, by `scope` (`country` or `prefix`): a client's codes
/// sent and not verified in the day above max(20, 0.2 × its own best
/// verified day on the key in the baseline).
pub fn unverified_day(scope: &str, counts: &[UnverifiedCounts]) -> Vec<Flag> {
    counts
        .iter()
        .filter(|c| c.unverified as f64 > day_bound(c.own_best_day))
        .map(|c| Flag {
            rule: "unverified_day".into(),
            scope: scope.into(),
            key: c.key.clone(),
            client_id: c.client_id,
            client_name: c.client_name.clone(),
            country: c.country.clone(),
            counted: c.unverified,
            threshold: day_bound(c.own_best_day),
            until: c.oldest + DAY,
        })
        .collect()
}

/// A client's traffic on a key that is not clean: enough codes not verified,
/// and few verified.
fn contributes(c: &UnverifiedCounts) -> bool {
    c.unverified >= CONTRIBUTOR_FLOOR && (c.approved as f64) < LOW_CONVERSION * c.requested as f64
}

/// `unverified_day_all_clients`, by prefix: several clients pumped together.
/// The unverified codes of the clients whose own traffic is not clean add
/// up above max(20, 0.2 × the best day all clients verified on the prefix):
/// each of them is flagged (with the sum as `counted`), never a clean one.
pub fn unverified_day_all_clients(counts: &[UnverifiedCounts]) -> Vec<Flag> {
    let mut by_key: BTreeMap<&str, Vec<&UnverifiedCounts>> = BTreeMap::new();
    for c in counts.iter().filter(|c| contributes(c)) {
        by_key.entry(&c.key).or_default().push(c);
    }
    let mut flags = Vec::new();
    for dirty in by_key.into_values().filter(|dirty| dirty.len() >= 2) {
        let total: i64 = dirty.iter().map(|c| c.unverified).sum();
        let bound = day_bound(dirty[0].all_best_day);
        if total as f64 <= bound {
            continue;
        }
        flags.extend(dirty.into_iter().map(|c| Flag {
            rule: "unverified_day_all_clients".into(),
            scope: "prefix".into(),
            key: c.key.clone(),
            client_id: c.client_id,
            client_name: c.client_name.clone(),
            country: c.country.clone(),
            counted: total,
            threshold: bound,
            until: c.oldest + DAY,
        }));
    }
    flags
}

/// `low_conversion_hour`, by prefix: a client's sends in the hour, at least
/// 20 of them, under 10 % verified.
pub fn low_conversion_hour(counts: &[ConversionCounts]) -> Vec<Flag> {
    counts
        .iter()
        .filter(|c| {
            c.sends >= LOW_CONVERSION_MIN_SENDS && (c.approved as f64) < LOW_CONVERSION * c.sends as f64
        })
        .map(|c| Flag {
            rule: "low_conversion_hour".into(),
            scope: "prefix".into(),
            key: c.key.clone(),
            client_id: c.client_id,
            client_name: c.client_name.clone(),
            country: c.country.clone(),
            counted: c.sends,
            threshold: LOW_CONVERSION,
            until: c.oldest + HOUR,
        })
        .collect()
}

/// `ip_countries`: one end-user network, as a client states it, asking that
/// client for numbers of more than three countries in a day.
pub fn ip_countries(counts: &[NetworkCounts]) -> Vec<Flag> {
    counts
        .iter()
        .filter(|c| c.countries > MAX_COUNTRIES)
        .map(|c| Flag {
            rule: "ip_countries".into(),
            scope: "ip".into(),
            key: c.key.clone(),
            client_id: c.client_id,
            client_name: c.client_name.clone(),
            country: "several".into(),
            counted: c.countries,
            threshold: MAX_COUNTRIES as f64,
            until: c.oldest + DAY,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::ClientId;

    fn day(client: ClientId, key: &str, requested: i64, approved: i64, unverified: i64) -> UnverifiedCounts {
        UnverifiedCounts {
            key: key.into(),
            client_id: client,
            client_name: "c".into(),
            country: "BO".into(),
            requested,
            approved,
            unverified,
            oldest: Utc::now(),
            own_best_day: 0,
            all_best_day: 0,
        }
    }

    #[test]
    fn a_day_flags_only_the_client_over_its_own_bound() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let mut busy = day(b, "591777", 200, 150, 25);
        busy.own_best_day = 150;
        let counts = [day(a, "591777", 21, 0, 21), day(b, "591696", 20, 0, 20), busy];
        let flags = unverified_day("prefix", &counts);
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!((flags[0].client_id, flags[0].counted), (a, 21));
        assert_eq!(flags[0].threshold, 20.0);
    }

    #[test]
    fn clients_pumping_a_prefix_together_are_flagged_each_but_never_a_clean_one() {
        let (a, b, clean, small) = (ClientId::new(), ClientId::new(), ClientId::new(), ClientId::new());
        let counts = [
            day(a, "591777", 12, 0, 12),
            day(b, "591777", 10, 0, 10),
            // Many codes not verified, but most of its traffic converts.
            day(clean, "591777", 400, 360, 40),
            // Dirty, but under the floor.
            day(small, "591777", 4, 0, 4),
            // Alone on its prefix: the rule of one client's own day decides.
            day(a, "591696", 19, 0, 19),
        ];
        let flags = unverified_day_all_clients(&counts);
        let flagged: Vec<_> = flags.iter().map(|f| f.client_id).collect();
        assert_eq!(flagged, [a, b]);
        assert!(flags.iter().all(|f| f.counted == 22 && f.threshold == 20.0));

        let mut busy_prefix = counts[..2].to_vec();
        busy_prefix.iter_mut().for_each(|c| c.all_best_day = 200);
        assert!(
            unverified_day_all_clients(&busy_prefix).is_empty(),
            "22 is under 0.2 × 200"
        );
    }

    #[test]
    fn an_hour_flags_a_client_converting_under_a_tenth_of_twenty_sends_or_more() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let hour = |client, sends, approved| ConversionCounts {
            key: "591777".into(),
            client_id: client,
            client_name: "c".into(),
            country: "BO".into(),
            sends,
            approved,
            oldest: Utc::now(),
        };
        let flags = low_conversion_hour(&[hour(a, 20, 1), hour(b, 20, 2), hour(b, 19, 0)]);
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].client_id, a);
    }

    #[test]
    fn a_network_flags_the_client_it_asked_for_a_fourth_country() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let network = |client, countries| NetworkCounts {
            key: "203.0.113.7".into(),
            client_id: client,
            client_name: "c".into(),
            countries,
            oldest: Utc::now(),
        };
        let flags = ip_countries(&[network(a, 4), network(b, 3)]);
        assert_eq!(flags.len(), 1);
        assert_eq!((flags[0].client_id, flags[0].counted), (a, 4));
    }
}
