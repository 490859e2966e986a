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
