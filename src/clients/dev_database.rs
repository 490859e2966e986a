//! Whether `serve --dev` may use a database. It must never use a real one
//! (its pepper is published, its gateway fake, its `dev` key kept in a file),
//! and must never lock a newcomer out of their own: a database it has taken
//! stays its own, whoever adds clients to it (`--dev`, its admin API, the
//! command line), until the real service starts on it.

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use super::ClientError;
use crate::store::dev_database::{self as store, Claim};

/// Takes the database for `serve --dev`, or says why not and what to do.
pub async fn take(pool: &PgPool, options: &PgConnectOptions) -> Result<Option<String>, ClientError> {
    let Claim::Refused {
        clients,
        total_clients,
    } = store::claim(pool).await?
    else {
        return Ok(None);
    };
    let current = options.get_database().unwrap_or("postgres");
    let mut free = None;
    for name in other_databases(current) {
        if !store::database_exists(pool, &name).await? {
            free = Some(name);
            break;
        }
    }
    Ok(Some(refusal(
        &clients,
        total_clients,
        current,
        free.map(|name| url_of(options, &name)),
    )))
}

/// Whether `serve --dev` has taken the database (the command line then
/// knows its pepper).
pub async fn is_dev(pool: &PgPool) -> Result<bool, ClientError> {
    Ok(store::is_marked(pool).await?)
}

/// The real service starts on the database: it is a real one from now on,
/// which `--dev` refuses once it holds what the real service made.
pub async fn give_up(pool: &PgPool) -> Result<(), ClientError> {
    if store::unmark(pool).await? {
        tracing::warn!(
            "this database was a `serve --dev` database until now; the real service makes it a real one: \
             `serve --dev` will refuse it once it holds clients or verifications made from now on"
        );
    }
    Ok(())
}

/// Names for a database of `--dev`'s own beside `current`, best first.
fn other_databases(current: &str) -> Vec<String> {
    let base = if current.ends_with("_dev") {
        current.to_owned()
    } else {
        format!("{current}_dev")
    };
    std::iter::once(base.clone())
        .chain((2..10).map(|n| format!("{base}_{n}")))
        .filter(|name| name != current)
        .collect()
}

/// `DATABASE_URL` for database `name` on the same server, as the same user;
/// never with the password, which the user has.
fn url_of(options: &PgConnectOptions, name: &str) -> String {
    let (user, port) = (options.get_username(), options.get_port());
    match options.get_socket() {
        Some(dir) => format!(
            "postgres:///{name}?host={}&port={port}&user={user}",
            dir.display()
        ),
        None => format!("postgres://{user}@{}:{port}/{name}", options.get_host()),
    }
}

fn refusal(clients: &[String], total: i64, current: &str, free: Option<String>) -> String {
    let named = clients
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let more = if total > clients.len() as i64 {
        format!(" and {} more", total - clients.len() as i64)
    } else {
        String::new()
    };
    let elsewhere = match free {
        Some(url) => format!("DATABASE_URL={url} (serve --dev creates it)"),
        None => format!("a database of its own: DATABASE_URL naming a database other than `{current}`"),
    };
    let remove = clients
        .iter()
        .map(|c| format!("otp-service clients remove {c}"))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "serve --dev will not use the database `{current}`: clients {named}{more} (or verifications of \
         theirs) were made by the real service or before serve --dev took this database, so it may hold \
         real data. If it is a real database, give serve --dev another: {elsewhere}. If those clients are \
         only your own trials, remove them (their verifications, test numbers and webhook events go with \
         them) and start again: {remove}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_is_never_the_one_in_use() {
        assert_eq!(other_databases("otp_service")[0], "otp_service_dev");
        let beside_dev = other_databases("otp_service_dev");
        assert_eq!(beside_dev[0], "otp_service_dev_2");
        assert!(!beside_dev.contains(&"otp_service_dev".to_owned()));
        assert!(!other_databases("shop_dev_2").contains(&"shop_dev_2".to_owned()));
    }

    #[test]
    fn the_url_keeps_server_and_user_and_never_the_password() {
        let options: PgConnectOptions = "postgres://me:secret-pw@db.local:5433/shop".parse().unwrap();
        assert_eq!(
            url_of(&options, "shop_dev"),
            "postgres://me@db.local:5433/shop_dev"
        );
        let socket: PgConnectOptions = "postgres:///shop?host=/run/postgresql&user=me".parse().unwrap();
        let again: PgConnectOptions = url_of(&socket, "shop_dev").parse().unwrap();
        assert_eq!(again.get_socket(), socket.get_socket());
        assert_eq!(again.get_database(), Some("shop_dev"));
        assert_eq!(again.get_username(), "me");
    }

    #[test]
    fn the_refusal_names_the_clients_and_both_ways_out() {
        let said = refusal(
            &["shop".into(), "acme".into()],
            3,
            "otp_service",
            Some("postgres://postgres@127.0.0.1:5432/otp_service_dev".into()),
        );
        assert!(said.contains("`shop`, `acme` and 1 more"), "{said}");
        assert!(said.contains("DATABASE_URL=postgres://postgres@127.0.0.1:5432/otp_service_dev"));
        assert!(said.contains("otp-service clients remove shop; otp-service clients remove acme"));
    }
}
