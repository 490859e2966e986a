//! Conversion stats: what a client's verifications came to, by day or
//! country, from the rolled-up figures (never a scan of the verifications).
//! The range and grouping are checked here, and the median is read from the
//! approval-time histogram; the store adds the figures up.

use chrono::{Days, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::clients::Client;
use crate::domain::FieldError;
use crate::store::stats::{self as store, BucketRow, FigureRow};

/// The longest range one call may ask for, in days.
pub const MOST_DAYS: u64 = 366;
/// Days in the range when `from` is not given.
pub const DEFAULT_DAYS: u64 = 7;

/// What the figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// ISO 3166-1 alpha-2 of the phone number, `unknown` when it has none.
    Country,
    /// The UTC day the verification was requested, `YYYY-MM-DD`.
    Day,
    /// The client's name (`GET /admin/stats` only).
    Client,
}

impl Grouping {
    fn as_str(self) -> &'static str {
        match self {
            Grouping::Country => "country",
            Grouping::Day => "day",
            Grouping::Client => "client",
        }
    }
}

/// A checked question: the days (UTC, inclusive) and the grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: Option<Grouping>,
}

impl Question {
    /// Reads the query's values as given (`None`: left out); `today` is UTC's.
    /// `by_client` is allowed to the operators only.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        group_by: Option<&str>,
        by_client: bool,
        today: NaiveDate,
    ) -> Result<Self, FieldError> {
        let to = to.map(|raw| date("to", raw)).transpose()?.unwrap_or(today);
        let from = match from {
            Some(raw) => date("from", raw)?,
            None => to - Days::new(DEFAULT_DAYS - 1),
        };
        if from > to {
            return Err(refuse("from", "`from` must not be after `to`"));
        }
        if (to - from).num_days() >= MOST_DAYS as i64 {
            return Err(refuse(
                "from",
                format!("at most {MOST_DAYS} days can be asked for at once"),
            ));
        }
        let group_by = match group_by {
            None | Some("") => None,
            Some("country") => Some(Grouping::Country),
            Some("day") => Some(Grouping::Day),
            Some("client") if by_client => Some(Grouping::Client),
            Some(_) if by_client => return Err(refuse("group_by", "`group_by` is country, day or client")),
            Some(_) => return Err(refuse("group_by", "`group_by` is country or day")),
        };
        Ok(Self { from, to, group_by })
    }

    pub fn parse_today(
        from: Option<&str>,
        to: Option<&str>,
        group_by: Option<&str>,
        by_client: bool,
    ) -> Result<Self, FieldError> {
        Self::parse(from, to, group_by, by_client, Utc::now().date_naive())
    }
}

fn date(field: &'static str, raw: &str) -> Result<NaiveDate, FieldError> {
    // Exactly YYYY-MM-DD: chrono alone also reads `2026-1-5`.
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| refuse(field, format!("`{field}` must be a date, YYYY-MM-DD")))
}

fn refuse(field: &'static str, detail: impl Into<String>) -> FieldError {
    FieldError {
        field,
        detail: detail.into(),
    }
}

/// Messages given up, by reason (`delivery_error` of the verification).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryFailures {
    /// The gateway refused the number.
    pub phone_rejected: u64,
    /// The WhatsApp session of the key had ended.
    pub session_ended: u64,
    /// The gateway refused the key.
    pub unauthorized: u64,
    /// It could not reach the gateway before the code expired.
    pub expired_before_send: u64,
    /// The verification stopped waiting for it (canceled, locked) before it went out.
    pub canceled: u64,
    /// Sealed under a pepper no longer configured.
    pub unreadable: u64,
}

/// What a set of verifications came to. Each counts toward the UTC day it was requested.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    /// Verifications created (a resend is the same verification: not counted again).
    pub requested: u64,
    /// Verifications of which at least one message went out to the gateway (counted once).
    pub sent: u64,
    /// Messages given up, by reason.
    pub delivery_failed: DeliveryFailures,
    /// Verifications approved with the right code, once each: after a resend, with the code
    /// of whichever of its messages arrived first (a resend sends the same code).
    pub approved: u64,
    /// Verifications whose code expired while they still had attempts left.
    pub expired: u64,
    /// Verifications that ended without approval after their wrong codes were used up
    /// (counted when they end: at their code's expiry, or at the next request that replaces them).
    pub locked: u64,
    /// `approved / sent`, from 0 to 1; `null` when nothing was sent.
    pub conversion_rate: Option<f64>,
    /// Median time from the request to the approval, in seconds: whole seconds under
    /// 10 minutes, whole minutes under a day, 86400 for a day or more (the lower end of
    /// its histogram bucket). `null` when nothing was approved.
    pub median_approval_seconds: Option<f64>,
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Group {
    /// The country (`BO`, or `unknown`), the day (`2026-12-03`) or the client's name.
    pub key: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of a range of days, in total and by group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `null` when not grouped (`groups` is then empty).
    pub group_by: Option<Grouping>,
    pub total: Figures,
    /// By key; only groups with figures.
    pub groups: Vec<Group>,
}

/// The median of a histogram of (bucket, count), buckets ascending: the
/// middle approval's bucket, or the mean of the two middle ones.
pub fn median(buckets: &[(i32, i64)]) -> Option<f64> {
    let total: i64 = buckets.iter().map(|(_, n)| n).sum();
    if total <= 0 {
        return None;
    }
    // The k-th approval (from 1), in bucket order.
    let nth = |k: i64| {
        let mut seen = 0;
        buckets.iter().find_map(|&(bucket, n)| {
            seen += n;
            (seen >= k).then_some(f64::from(bucket))
        })
    };
    let (low, high) = (nth((total + 1) / 2)?, nth(total / 2 + 1)?);
    Some(if total % 2 == 1 { low } else { (low + high) / 2.0 })
}

fn figures(rows: &[&FigureRow], buckets: &[(i32, i64)]) -> Figures {
    let sum = |f: fn(&FigureRow) -> i64| rows.iter().map(|r| f(r).max(0) as u64).sum::<u64>();
    let sent = sum(|r| r.sent);
    let approved = sum(|r| r.approved);
    Figures {
        requested: sum(|r| r.requested),
        sent,
        delivery_failed: DeliveryFailures {
            phone_rejected: sum(|r| r.failed_phone_rejected),
            session_ended: sum(|r| r.failed_session_ended),
            unauthorized: sum(|r| r.failed_unauthorized),
            expired_before_send: sum(|r| r.failed_expired_before_send),
            canceled: sum(|r| r.failed_canceled),
            unreadable: sum(|r| r.failed_unreadable),
        },
        approved,
        expired: sum(|r| r.expired),
        locked: sum(|r| r.locked),
        conversion_rate: (sent > 0).then(|| approved as f64 / sent as f64),
        median_approval_seconds: median(buckets),
    }
}

/// The report of `question` from the summed rows, by group and in total.
pub fn report(question: Question, rows: &[FigureRow], times: &[BucketRow]) -> Report {
    let buckets_of = |key: Option<&str>| {
        let mut merged = std::collections::BTreeMap::<i32, i64>::new();
        for t in times.iter().filter(|t| key.is_none_or(|k| t.key == k)) {
            *merged.entry(t.bucket).or_default() += t.approvals;
        }
        merged.into_iter().collect::<Vec<_>>()
    };
    let groups = match question.group_by {
        None => Vec::new(),
        Some(_) => rows
            .iter()
            .map(|row| Group {
                key: row.key.clone(),
                figures: figures(&[row], &buckets_of(Some(&row.key))),
            })
            .collect(),
    };
    Report {
        from: question.from,
        to: question.to,
        group_by: question.group_by,
        total: figures(&rows.iter().collect::<Vec<_>>(), &buckets_of(None)),
        groups,
    }
}

/// The stats service, over the store's rolled-up figures.
#[derive(Clone)]
pub struct Stats {
    pool: PgPool,
}

impl Stats {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The calling client's own figures.
    pub async fn of_client(&self, client: &Client, question: Question) -> Result<Report, sqlx::Error> {
        let (rows, times) = store::of_client(&self.pool, client.id, range(&question)).await?;
        Ok(report(question, &rows, &times))
    }

    /// Every client's figures together.
    pub async fn of_all(&self, question: Question) -> Result<Report, sqlx::Error> {
        let (rows, times) = store::of_all(&self.pool, range(&question)).await?;
        Ok(report(question, &rows, &times))
    }
}

fn range(question: &Question) -> store::Range<'static> {
    store::Range {
        from: question.from,
        to: question.to,
        group: question.group_by.map_or("", Grouping::as_str),
    }
}

#[cfg(test)]
mod tests;
