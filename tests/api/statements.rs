//! Every statement of the store is prepared against the migrated schema: a
//! query that no longer matches a table fails here, by name, whether or not
//! any other test happens to run it.

use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::*;

#[tokio::test]
async fn every_statement_of_the_store_prepares_against_the_schema() {
    let database = TestDatabase::create().await;
    otp_service::store::run_migrations(&database.options())
        .await
        .unwrap();
    let mut conn = PgConnection::connect_with(&database.options()).await.unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for statement in otp_service::store::statements() {
        count += 1;
        if let Err(e) = (&mut conn)
            .prepare(sqlx::SqlSafeStr::into_sql_str(statement.sql))
            .await
        {
            failures.push(format!("{}: {e}", statement.name));
        }
    }
    assert!(count >= 30, "only {count} statements registered");
    assert!(
        failures.is_empty(),
        "statements that do not prepare:\n{}",
        failures.join("\n")
    );
}

/// Which change yields which webhook event or stats outcome is decided in
/// Rust (`domain::transitions`) and written by the statement that makes the
/// change: the only triggers left on the tables whose changes tell something
/// are those that tell replicas (`NOTIFY`).
#[tokio::test]
async fn no_trigger_decides_an_event_or_an_outcome() {
    let database = TestDatabase::create().await;
    otp_service::store::run_migrations(&database.options())
        .await
        .unwrap();
    let mut conn = PgConnection::connect_with(&database.options()).await.unwrap();
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "select c.relname::text, t.tgname::text, p.proname::text
         from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_proc p on p.oid = t.tgfoid
         where not t.tgisinternal
           and c.relname in ('verifications', 'outbox_messages', 'webhook_events', 'stats_events')
         order by 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let deciding: Vec<_> = triggers
        .iter()
        .filter(|(_, _, function)| !function.starts_with("notify_"))
        .collect();
    assert!(deciding.is_empty(), "triggers that decide: {deciding:?}");
    assert!(
        triggers.iter().any(|(table, _, _)| table == "webhook_events"),
        "the webhook worker is still woken: {triggers:?}"
    );
}

/// A condition that both the store's statements and an SQL function need is
/// written once, as an SQL function of one expression that both call: no
/// statement and no function of the live schema spells it out again.
#[tokio::test]
async fn conditions_shared_with_sql_functions_are_written_once() {
    let database = TestDatabase::create().await;
    otp_service::store::run_migrations(&database.options())
        .await
        .unwrap();
    let mut conn = PgConnection::connect_with(&database.options()).await.unwrap();
    let bodies: Vec<(String, String)> = sqlx::query_as(
        "select proname::text, prosrc from pg_proc
         where pronamespace = 'public'::regnamespace and prokind = 'f'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let body = |name: &str| {
        bodies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("no function {name}"))
    };
    let spelled =
        |text: &str| text.contains("failed_attempts < max_attempts") || text.contains("expires_at > now()");
    assert!(body("reserve_attempt").contains("verification_attemptable("));
    assert!(body("waiting_by_client").contains("message_waiting("));
    let copies: Vec<&str> = bodies
        .iter()
        .filter(|(name, text)| {
            ![
                "verification_waiting",
                "verification_attemptable",
                "message_waiting",
            ]
            .contains(&name.as_str())
                && spelled(text)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        copies.is_empty(),
        "functions that spell a shared condition: {copies:?}"
    );
    let in_statements: Vec<&str> = otp_service::store::statements()
        .filter(|s| s.sql.contains("failed_attempts < max_attempts"))
        .map(|s| s.name)
        .collect();
    assert!(
        in_statements.is_empty(),
        "statements that spell it: {in_statements:?}"
    );
}
