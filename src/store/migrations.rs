//! refinery has no sqlx driver; this adapter runs its embedded migrations over
//! a sqlx connection, each batch in one transaction.

use refinery_core::Migration;
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any constant will do: it only has to be the same for every replica.
const MIGRATION_LOCK: i64 = 0x006f_7470_5f6d_6967;

statement!(RUN_MIGRATIONS = "select pg_advisory_lock($1)");
statement!(RUN_MIGRATIONS_2 = "select pg_advisory_unlock($1)");
/// Applies the pending migrations; a second run is a no-op. Replicas that start
/// together wait on an advisory lock instead of racing each other.
pub async fn run_migrations(options: &PgConnectOptions) -> anyhow::Result<usize> {
    let conn = PgConnection::connect_with(options).await?;
    let mut adapter = SqlxMigrator(conn);
    sqlx::query(RUN_MIGRATIONS)
        .bind(MIGRATION_LOCK)
        .execute(&mut adapter.0)
        .await?;
    let report = embedded::migrations::runner()
        .set_grouped(false)
        .run_async(&mut adapter)
        .await;
    sqlx::query(RUN_MIGRATIONS_2)
        .bind(MIGRATION_LOCK)
        .execute(&mut adapter.0)
        .await?;
    let applied = report?.applied_migrations().len();
    adapter.0.close().await?;
    Ok(applied)
}

struct SqlxMigrator(PgConnection);

impl AsyncTransaction for SqlxMigrator {
    type Error = sqlx::Error;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut tx = self.0.begin().await?;
        let mut count = 0;
        for query in queries {
            sqlx::raw_sql(sqlx::AssertSqlSafe(query.to_owned()))
                .execute(&mut *tx)
                .await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for SqlxMigrator {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_all(&mut self.0)
            .await?;
        rows.iter()
            .map(|row| {
                let applied_on: String = row.try_get(2)?;
                let checksum: String = row.try_get(3)?;
                let decode = |e: String| sqlx::Error::Decode(e.into());
                Ok(Migration::applied(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|e| decode(e.to_string()))?,
                    checksum
                        .parse()
                        .map_err(|_| decode(format!("bad checksum {checksum}")))?,
                ))
            })
            .collect()
    }
}

impl AsyncMigrate for SqlxMigrator {}
