//! The mark of a `serve --dev` database (V18), and what decides whether a
//! database without it may become one.

use sqlx::PgPool;

use crate::store::Bounded;

/// Whether `serve --dev` may use the database, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Marked as a `--dev` database (now, or before).
    Taken,
    /// Holds what `--dev` did not make: the clients it belongs to (every
    /// verification has one), the first of them by name, and how many.
    Refused {
        clients: Vec<String>,
        total_clients: i64,
    },
}

statement!(MARKED = "select exists (select 1 from dev_database)");
// A client is another's making when it was not marked at its creation, or
// when the real service made verifications for it.
statement!(
    NOT_MADE_BY_DEV = "select name, count(*) over () from clients c
         where not made_by_dev
            or exists (select 1 from verifications v where v.client_id = c.id and not v.made_by_dev)
         order by name limit 10"
);
statement!(MARK = "insert into dev_database default values on conflict do nothing");
statement!(UNMARK = "delete from dev_database");
statement!(DATABASE_EXISTS = "select exists (select 1 from pg_database where datname = $1)");

/// Takes the database for `serve --dev` when it is marked, or holds nothing
/// `--dev` did not make (then it marks it).
pub async fn claim(pool: &PgPool) -> Result<Claim, sqlx::Error> {
    let mut tx = pool.begin().bounded().await?;
    let marked: bool = sqlx::query_scalar(MARKED).fetch_one(&mut *tx).bounded().await?;
    if !marked {
        let others: Vec<(String, i64)> = sqlx::query_as(NOT_MADE_BY_DEV)
            .fetch_all(&mut *tx)
            .bounded()
            .await?;
        if let Some((_, total_clients)) = others.first() {
            return Ok(Claim::Refused {
                total_clients: *total_clients,
                clients: others.into_iter().map(|(name, _)| name).collect(),
            });
        }
        sqlx::query(MARK).execute(&mut *tx).bounded().await?;
    }
    tx.commit().bounded().await?;
    Ok(Claim::Taken)
}

/// Whether `serve --dev` has taken the database.
pub async fn is_marked(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(MARKED).fetch_one(pool).bounded().await
}

/// Takes the mark away (the real service starts on the database); whether
/// there was one.
pub async fn unmark(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(UNMARK).execute(pool).bounded().await?;
    Ok(done.rows_affected() > 0)
}

/// Whether the server the pool reaches has a database of this name.
pub async fn database_exists(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(DATABASE_EXISTS)
        .bind(name)
        .fetch_one(pool)
        .bounded()
        .await
}
