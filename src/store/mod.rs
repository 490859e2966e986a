//! The database: the pool, creating the database under `--dev`, migrations
//! (refinery's files, run through sqlx so the service has one driver), and
//! the replica's one `LISTEN` connection (`notifications`).

/// A statement of the store: a `const` (its SQL), registered so that a test
/// can prepare every statement against the migrated schema before any test
/// runs it (`tests/api/statements.rs`). Every query of the store is one.
macro_rules! statement {
    ($(#[$meta:meta])* $name:ident = $sql:expr $(,)?) => {
        $(#[$meta])*
        const $name: &str = $sql;
        inventory::submit! {
            $crate::store::Statement {
                name: concat!(module_path!(), "::", stringify!($name)),
                sql: $name,
            }
        }
    };
}

/// The key id a sealed text names (`1 || key id || nonce || ciphertext`, see
/// `crypto::sealing`) as SQL, or null for a text sealed before key ids.
/// `substring`, not `get_byte`: an empty value is no error.
macro_rules! sealed_key_id {
    ($column:literal) => {
        concat!(
            "case when length(",
            $column,
            ") > 7 and substring(",
            $column,
            " from 1 for 1) = decode('01', 'hex') then substring(",
            $column,
            " from 2 for 6) end"
        )
    };
}

/// A registered statement (see `statement!`).
pub struct Statement {
    pub name: &'static str,
    pub sql: &'static str,
}

inventory::collect!(Statement);

/// Every statement of the store.
pub fn statements() -> impl Iterator<Item = &'static Statement> {
    inventory::iter::<Statement>.into_iter()
}

pub mod client_removal;
pub mod clients;
pub mod dev_database;
pub mod fraud_blocks;
pub mod fraud_counts;
pub mod fraud_flags;
pub mod fraud_prefixes;
pub mod idempotency;
pub mod limits;
mod migrations;
pub mod notifications;
pub mod outbox;
pub mod peppers_in_use;
pub mod rate_cells;
pub mod senders;
pub mod stats;
pub mod test_numbers;
mod timeouts;
mod transitions;
pub mod verifications;
pub mod webhook_events;
pub mod webhooks;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use migrations::run_migrations;
pub use timeouts::{Bounded, Limits, call_timeout, long_scan, scan_call, timed_out};

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

statement!(
    READ_COMMITTED_BY_DEFAULT = "select set_config('default_transaction_isolation', 'read committed', false)"
);
/// Every connection of the pools runs at READ COMMITTED, whatever the
/// server's `default_transaction_isolation` says: the statements that count a
/// window under a lock (`take_limit_slot`, `take_sender_slots`,
/// `reserve_attempt`, outside any transaction of ours) must see what others
/// committed while they waited; under REPEATABLE READ the whole statement
/// shares the snapshot taken before the wait.
///
/// A connection comes back to the pool owing an answer when a call gave up on
/// it (`Bounded`): it is closed if that answer does not come within the call
/// timeout, rather than kept (sqlx's own check on release would wait for it
/// forever, holding the pool's place). One that owes nothing costs no round
/// trip here.
fn configured(options: PgPoolOptions) -> PgPoolOptions {
    options
        .after_connect(|connection, _| {
            Box::pin(async move {
                sqlx::query(READ_COMMITTED_BY_DEFAULT)
                    .execute(connection)
                    .bounded()
                    .await?;
                Ok(())
            })
        })
        .after_release(|connection, _| {
            Box::pin(async move {
                // `flush` waits for the answers still owed, and only for them.
                match tokio::time::timeout(call_timeout(), connection.flush()).await {
                    Ok(Ok(())) => Ok(true),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Ok(false),
                }
            })
        })
}

/// A lazy pool: the service starts (and `/healthz` answers) while PostgreSQL
/// is down. `limits` bound every statement and every call (see `timeouts`).
pub fn pool(options: PgConnectOptions, limits: Limits) -> PgPool {
    timeouts::set_call_timeout(limits.call);
    configured(PgPoolOptions::new())
        .max_connections(20)
        // No ping before every use: it doubled the round trips of each
        // statement. A connection that died meanwhile fails its statement
        // (a `503`, like any outage) and is closed; the next one is new.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(limits.apply(options.application_name("otp-service")))
}

/// The pool of the unauthenticated endpoints (`/metrics`, `/readyz`): two
/// connections of their own, so that a flood of them waits on itself and
/// never takes a connection from the API.
pub fn ops_pool(options: PgConnectOptions, limits: Limits) -> PgPool {
    timeouts::set_call_timeout(limits.call);
    configured(PgPoolOptions::new())
        .max_connections(OPS_POOL_SIZE)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(limits.apply(options.application_name("otp-service-ops")))
}

pub const OPS_POOL_SIZE: u32 = 2;

statement!(CREATE_DATABASE_IF_MISSING = "select exists (select 1 from pg_database where datname = $1)");
/// Creates the database named in the options when it does not exist yet.
pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<bool, sqlx::Error> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar(CREATE_DATABASE_IF_MISSING)
        .bind(&name)
        .fetch_one(&mut admin)
        .bounded()
        .await?;
    if !exists {
        let statement = format!("create database \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .bounded()
            .await?;
    }
    admin.close().await?;
    Ok(!exists)
}

/// How many rows of some kind a pepper's key id stands in, as hashes write
/// it (base64, argon2's PHC `keyid`); `None` for hashes made before key ids.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HashKeyCount {
    pub key_id: Option<String>,
    pub count: i64,
}

/// The same for sealed texts, whose key ids are bytes (`sealed_key_id!`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealKeyCount {
    pub key_id: Option<Vec<u8>>,
    pub count: i64,
}

statement!(BEGIN_READ_COMMITTED = "begin isolation level read committed");
/// A transaction at READ COMMITTED, whatever the server's
/// `default_transaction_isolation` says: the limit windows count under a lock
/// by statements that must see what others committed while they waited.
pub async fn begin_read_committed(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    // In the BEGIN itself: a round trip less than setting it after.
    pool.begin_with(BEGIN_READ_COMMITTED).bounded().await
}

statement!(PING = "select 1");
/// One round trip: whether the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    ping_on(pool).await
}

/// The same on a connection of its own (a listening one, say).
pub async fn ping_on(db: impl sqlx::PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(PING).execute(db).bounded().await.map(|_| ())
}
