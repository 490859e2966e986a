use super::*;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn parse(from: Option<&str>, to: Option<&str>, group_by: Option<&str>) -> Result<Question, FieldError> {
    Question::parse(from, to, group_by, false, day("2026-12-03"))
}

#[test]
fn the_median_is_the_middle_approval_or_the_mean_of_the_two_middle_ones() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[(12, 0)]), None);
    assert_eq!(median(&[(12, 1)]), Some(12.0));
    assert_eq!(median(&[(3, 1), (12, 1), (40, 1)]), Some(12.0));
    assert_eq!(median(&[(3, 1), (12, 1)]), Some(7.5));
    // 2 of 5 at 3 s, 3 at 660 s: the 3rd is at 660.
    assert_eq!(median(&[(3, 2), (660, 3)]), Some(660.0));
    // 2 and 2: between the buckets.
    assert_eq!(median(&[(3, 2), (660, 2)]), Some(331.5));
    assert_eq!(median(&[(0, 4), (86400, 1)]), Some(0.0));
}

#[test]
fn the_range_defaults_to_the_last_seven_days_and_is_inclusive() {
    let q = parse(None, None, None).unwrap();
    assert_eq!(
        (q.from, q.to, q.group_by),
        (day("2026-11-27"), day("2026-12-03"), None)
    );
    let q = parse(None, Some("2026-01-10"), Some("country")).unwrap();
    assert_eq!((q.from, q.to), (day("2026-01-04"), day("2026-01-10")));
    assert_eq!(q.group_by, Some(Grouping::Country));
    let q = parse(Some("2026-12-03"), Some("2026-12-03"), Some("day")).unwrap();
    assert_eq!(
        (q.from, q.to, q.group_by),
        (q.to, day("2026-12-03"), Some(Grouping::Day))
    );
    // In the future too: nothing there yet, which is an answer.
    assert!(parse(Some("2026-12-01"), Some("2027-01-01"), None).is_ok());
}

#[test]
fn a_range_backwards_or_over_366_days_is_refused_naming_from() {
    assert_eq!(parse(Some("2026-12-04"), None, None).unwrap_err().field, "from");
    assert!(parse(Some("2025-12-03"), Some("2026-12-03"), None).is_ok()); // 366 days
    assert_eq!(
        parse(Some("2025-12-02"), Some("2026-12-03"), None)
            .unwrap_err()
            .field,
        "from"
    );
}

#[test]
fn dates_are_exactly_yyyy_mm_dd() {
    for bad in [
        "2026-1-05",
        "2026-02-30",
        "03-12-2026",
        "2026-12-03T00:00:00Z",
        "",
        "yesterday",
    ] {
        assert_eq!(parse(Some(bad), None, None).unwrap_err().field, "from", "{bad}");
        assert_eq!(parse(None, Some(bad), None).unwrap_err().field, "to", "{bad}");
    }
}

#[test]
fn clients_group_by_country_or_day_and_operators_by_client_too() {
    assert_eq!(parse(None, None, Some("client")).unwrap_err().field, "group_by");
    assert_eq!(parse(None, None, Some("Country")).unwrap_err().field, "group_by");
    let admin = Question::parse(None, None, Some("client"), true, day("2026-12-03")).unwrap();
    assert_eq!(admin.group_by, Some(Grouping::Client));
    assert!(Question::parse(None, None, Some("phone"), true, day("2026-12-03")).is_err());
}

fn row(key: &str, requested: i64, sent: i64, approved: i64, rejected: i64) -> FigureRow {
    FigureRow {
        key: key.to_owned(),
        requested,
        sent,
        approved,
        expired: 0,
        locked: 1,
        failed_phone_rejected: rejected,
        failed_session_ended: 0,
        failed_unauthorized: 0,
        failed_expired_before_send: 0,
        failed_canceled: 0,
        failed_unreadable: 0,
    }
}

fn bucket(key: &str, bucket: i32, approvals: i64) -> BucketRow {
    BucketRow {
        key: key.to_owned(),
        bucket,
        approvals,
    }
}

#[test]
fn groups_add_up_to_the_total_and_each_has_its_own_median() {
    let question = parse(None, None, Some("country")).unwrap();
    let rows = [row("AR", 2, 0, 0, 2), row("BO", 4, 4, 3, 0)];
    let times = [bucket("BO", 1, 2), bucket("BO", 30, 1)];
    let report = report(question, &rows, &times);
    assert_eq!(report.groups.len(), 2);
    let ar = &report.groups[0].figures;
    assert_eq!(
        (ar.requested, ar.conversion_rate, ar.median_approval_seconds),
        (2, None, None)
    );
    assert_eq!(ar.delivery_failed.phone_rejected, 2);
    let bo = &report.groups[1].figures;
    assert_eq!(
        (bo.conversion_rate, bo.median_approval_seconds),
        (Some(0.75), Some(1.0))
    );
    let total = &report.total;
    assert_eq!(
        (total.requested, total.sent, total.approved, total.locked),
        (6, 4, 3, 2)
    );
    assert_eq!(total.delivery_failed.phone_rejected, 2);
    assert_eq!(total.conversion_rate, Some(0.75));
}

#[test]
fn ungrouped_is_one_total_and_no_groups() {
    let question = parse(None, None, None).unwrap();
    let report = report(question, &[row("", 1, 1, 1, 0)], &[bucket("", 5, 1)]);
    assert!(report.groups.is_empty());
    assert_eq!(report.total.median_approval_seconds, Some(5.0));
    let empty = super::report(question, &[], &[]);
    assert_eq!((empty.total.requested, empty.total.conversion_rate), (0, None));
}
