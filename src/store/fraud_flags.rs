//! The `fraud_flags` table: the detector's standing flags, one per rule,
//! scope, key and client (the rules' counts are in `fraud_counts`).

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::ClientId;

/// A standing flag, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FlagRow {
    /// What operators name it by (`fraud block --from-flag`).
    pub id: i64,
    #[sqlx(flatten)]
    pub flag: Flag,
    pub flagged_at: DateTime<Utc>,
}

/// A flag as a rule finds it: what raises, or brings up to date, a row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Flag {
    pub rule: String,
    pub scope: String,
    pub key: String,
    /// The client whose own traffic raised it: the only one it refuses.
    pub client_id: ClientId,
    pub client_name: String,
    /// The country of the flagged numbers (`unknown` when none, `several`
    /// for a network), for the metric.
    pub country: String,
    pub counted: i64,
    pub threshold: f64,
    /// When the rule's window would clear, were nothing more sent.
    pub until: DateTime<Utc>,
}

impl Flag {
    /// What tells one flag from another: a rule's finding on a key, for one client.
    pub fn identity(&self) -> (&str, &str, &str, ClientId) {
        (&self.rule, &self.scope, &self.key, self.client_id)
    }
}

statement!(
    CURRENT = "select f.id, f.rule, f.scope, f.key, f.client_id, c.name as client_name, f.country, f.counted,
                f.threshold, f.flagged_at, f.until
         from fraud_flags f join clients c on c.id = f.client_id
         order by f.flagged_at, f.rule, f.key, c.name",
);
/// Every standing flag, oldest first.
pub async fn current(db: impl PgExecutor<'_>) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(CURRENT).fetch_all(db).bounded().await
}

statement!(
    BY_ID = "select f.id, f.rule, f.scope, f.key, f.client_id, c.name as client_name, f.country, f.counted,
                f.threshold, f.flagged_at, f.until
         from fraud_flags f join clients c on c.id = f.client_id
         where f.id = $1",
);
/// The standing flag `id`, if it still stands.
pub async fn by_id(db: impl PgExecutor<'_>, id: i64) -> Result<Option<FlagRow>, sqlx::Error> {
    sqlx::query_as(BY_ID).bind(id).fetch_optional(db).bounded().await
}

statement!(
    RAISE = "insert into fraud_flags (rule, scope, key, client_id, counted, threshold, until, country)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (rule, scope, key, client_id) do nothing",
);
/// Raises a flag (told to every replica); `false` when another replica's
/// detector raised it first.
pub async fn raise(db: impl PgExecutor<'_>, flag: &Flag) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(RAISE)
        .bind(&flag.rule)
        .bind(&flag.scope)
        .bind(&flag.key)
        .bind(flag.client_id)
        .bind(flag.counted)
        .bind(flag.threshold)
        .bind(flag.until)
        .bind(&flag.country)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    UPDATE = "update fraud_flags set counted = $5, threshold = $6, until = $7
         where rule = $1 and scope = $2 and key = $3 and client_id = $4",
);
/// A standing flag's figures, brought up to date (told to no one).
pub async fn update(db: impl PgExecutor<'_>, flag: &Flag) -> Result<(), sqlx::Error> {
    sqlx::query(UPDATE)
        .bind(&flag.rule)
        .bind(&flag.scope)
        .bind(&flag.key)
        .bind(flag.client_id)
        .bind(flag.counted)
        .bind(flag.threshold)
        .bind(flag.until)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(CLEAR = "delete from fraud_flags where rule = $1 and scope = $2 and key = $3 and client_id = $4");
pub async fn clear(db: impl PgExecutor<'_>, flag: &Flag) -> Result<(), sqlx::Error> {
    sqlx::query(CLEAR)
        .bind(&flag.rule)
        .bind(&flag.scope)
        .bind(&flag.key)
        .bind(flag.client_id)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}
