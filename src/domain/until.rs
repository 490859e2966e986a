//! When something given by hand ends (a test number, a fraud block): a day,
//! or an exact time, read alike by the command line and the HTTP API.

use chrono::{DateTime, NaiveDate, Utc};

/// `2027-03-01` (the whole of that UTC day: it ends at the next midnight) or
/// an RFC 3339 time (`2027-03-01T12:00:00Z`, `2027-03-01T08:00:00-04:00`).
pub fn parse_until(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let next = day.succ_opt().ok_or("the date is out of range")?;
        return Ok(next.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            "must be a date (YYYY-MM-DD, UTC: the whole of that day) or an RFC 3339 time \
             (2027-03-01T12:00:00Z)"
                .to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_the_whole_day_and_a_time_means_itself() {
        assert_eq!(
            parse_until("2027-03-01").unwrap().to_rfc3339(),
            "2027-03-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_until("2027-03-01T08:00:00-04:00").unwrap().to_rfc3339(),
            "2027-03-01T12:00:00+00:00"
        );
        for wrong in ["2027-02-30", "tomorrow", "2027-03-01 12:00", ""] {
            let refused = parse_until(wrong).unwrap_err();
            assert!(
                refused.contains("YYYY-MM-DD") || refused.contains("range"),
                "{wrong}: {refused}"
            );
        }
    }
}
