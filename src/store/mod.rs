//! The database: the pool, creating the database under `--dev`, and migrations
//! (refinery's files, run through sqlx so the service has one driver).

mod migrations;
pub mod retention;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use migrations::run_migrations;

pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    url.parse()
}

/// A lazy pool: the service starts (and `/healthz` answers) while PostgreSQL is down.
pub fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options)
}

/// Creates the database named in the options when it does not exist yet.
pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<bool, sqlx::Error> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let statement = format!("create database \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    Ok(!exists)
}
