//! The database: the pool, creating the database under `--dev`, and migrations
//! (refinery's files, run through sqlx so the service has one driver).

mod migrations;
pub mod retention;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use migrations::run_migrations;

/// The form a `DATABASE_URL` must have, for messages that say what to do.
pub const URL_FORM: &str = "postgres://user@host:5432/database";

/// Parses a PostgreSQL URL. Read by sqlx alone, a URL without its scheme
/// (`localhost:5432/otp_service`) turns into a login as the role "anonymous"
/// and an error about that role; here it is refused for what it is. No
/// message repeats the URL, which may hold a password.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let parsed = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("it must have the form {URL_FORM}, and is not a URL at all ({e})"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        anyhow::bail!("it must have the form {URL_FORM}; the postgres:// at its start is missing");
    }
    url.parse()
        .map_err(|e| anyhow::anyhow!("it must have the form {URL_FORM} ({e})"))
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
