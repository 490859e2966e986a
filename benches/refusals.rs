//! Refusals benchmark: `cargo bench --bench refusals`.
//!
//! Starts the release binary as its own process against a fresh database and
//! the fake gateway (in this process, its rate out of the way), and drives
//! every phase with one load generator: `CONCURRENCY` callers on one HTTP
//! client for `PHASE` each. It prints each figure beside its reference from
//! the same run, and the ratio:
//! - the HTTP floor, `GET /healthz`, for refusals that need no hashing: a
//!   verify on a canceled, approved, expired or locked verification, and a
//!   request refused by the resend cooldown or by the client's window;
//! - argon2id at the production cost on all cores, in this process on the
//!   service's own hasher, for verifies that hash and requests that deliver;
//! - PostgreSQL: indexed single-row selects from this process, for scale.
//!
//! Every answer that is not the phase's expected one is counted by status
//! and problem `code` and printed, so none goes unexplained. Last, the
//! service's peak resident memory (VmHWM).

mod common;

use std::time::Duration;

use common::service::{Service, Tally};
use otp_service::clients;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

const CONCURRENCY: usize = 64;
const PHASE: Duration = Duration::from_secs(8);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_database(run).await
}

async fn run(db: PgConnectOptions) -> anyhow::Result<()> {
    let service = common::service::start(db, &[], CONCURRENCY, PHASE).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows: Vec<(String, Tally, &str)> = Vec::new();

    let healthz = service.floor().await;
    let postgres = service.postgres_reference().await?;

    let finished = [
        (
            "canceled",
            "update verifications set status = 'canceled' where id = any($1)",
            409,
        ),
        (
            "approved",
            "update verifications set status = 'approved', verified_at = now() where id = any($1)",
            409,
        ),
        (
            "expired",
            "update verifications set expires_at = now() - interval '1 second' where id = any($1)",
            410,
        ),
        (
            "locked",
            "update verifications set failed_attempts = max_attempts where id = any($1)",
            429,
        ),
    ];
    for (n, (state, sql, expected)) in finished.into_iter().enumerate() {
        let ids = verifications(&service, 100 + n as u32 * 10).await?;
        sqlx::query(sql).bind(&ids).execute(&service.pool).await?;
        let ids: Vec<String> = ids.iter().map(uuid::Uuid::to_string).collect();
        let tally = service
            .load(
                |caller, i| verify(&service, &ids[(caller + i) % ids.len()], "000000"),
                expected,
            )
            .await;
        rows.push((format!("verify on a {state} verification"), tally, "floor"));
    }

    // Pending, just sent: asking again is refused by the resend cooldown.
    let phones: Vec<String> = (0..8).map(|n| phone(200, n)).collect();
    for phone in &phones {
        request(&service, &service.key, phone)
            .send()
            .await?
            .error_for_status()?;
    }
    let tally = service
        .load(
            |c, i| request(&service, &service.key, &phones[(c + i) % phones.len()]),
            429,
        )
        .await;
    rows.push(("request refused by the resend cooldown".into(), tally, "floor"));

    // A client of 1 request a minute that has made it.
    let small = clients::add(&service.pool, "small", Some(1))
        .await?
        .expose_secret()
        .to_owned();
    request(&service, &small, &phone(300, 0)).send().await?;
    let tally = service
        .load(
            |c, i| request(&service, &small, &phone(301 + c as u32, i as u32)),
            429,
        )
        .await;
    rows.push(("request refused by the client's window".into(), tally, "floor"));

    let argon2_before = common::argon2_reference(cores, PHASE).await?;
    let ids = verifications(&service, 400).await?;
    sqlx::query("update verifications set max_attempts = 1000000000 where id = any($1)")
        .bind(&ids)
        .execute(&service.pool)
        .await?;
    let wrong = wrong_codes(&service, &ids, 400);
    let tally = service
        .load(
            |c, i| {
                let (id, code) = &wrong[(c + i) % wrong.len()];
                verify(&service, id, code)
            },
            422,
        )
        .await;
    rows.push(("verify with hashing (a wrong code)".into(), tally, "argon2"));
    let tally = service
        .load(
            |c, i| request(&service, &service.key, &phone(1000 + c as u32, i as u32)),
            202,
        )
        .await;
    rows.push(("request, delivered by the fake gateway".into(), tally, "argon2"));
    // Measured on both sides of the phases that hash, and the higher one
    // taken: this machine's share of its cores moves from minute to minute.
    let argon2_after = common::argon2_reference(cores, PHASE).await?;
    let argon2 = argon2_before.max(argon2_after);

    let peak = common::peak_rss_mib(&service.child.id().unwrap_or_default().to_string());
    println!(
        "otp-service refusals benchmark ({cores} cores, {CONCURRENCY} callers, {} s a phase, release service in its own process)",
        PHASE.as_secs()
    );
    println!(
        "  reference: GET /healthz (the HTTP floor) {:.0} req/s",
        healthz.per_second
    );
    println!(
        "  reference: argon2id m=19456 t=2 p=1 in process on {cores} threads {argon2:.0} hashes/s \
         (before the hashing phases {argon2_before:.0}, after {argon2_after:.0})"
    );
    println!("  reference: PostgreSQL indexed selects from {CONCURRENCY} callers {postgres:.0} /s");
    for (name, tally, against) in &rows {
        let (reference, target) = if *against == "floor" {
            (healthz.per_second, 0.20)
        } else {
            (argon2, if name.starts_with("verify") { 0.90 } else { 0.80 })
        };
        println!(
            "  {name:<42} {:>8.0} /s  {:.3} of the {against} (target {target:.2}){}",
            tally.per_second,
            tally.per_second / reference,
            common::service::explained(&tally.unexpected)
        );
        println!("  {:<42} {}", "", tally.cpu);
    }
    println!(
        "  unexpected answers while measuring the floor:{}",
        common::service::explained(&healthz.unexpected)
    );
    println!("  the service's peak resident memory (VmHWM): {peak:.0} MiB");
    service.stop().await
}

fn phone(group: u32, n: u32) -> String {
    format!("+5917{:03}{:04}", group % 1000, n % 10_000)
}

fn request(service: &Service, key: &str, phone: &str) -> reqwest::RequestBuilder {
    service
        .http
        .post(format!("{}/otp/request", service.address))
        .header("X-Api-Key", key)
        .json(&json!({"phone": phone}))
}

fn verify(service: &Service, id: &str, code: &str) -> reqwest::RequestBuilder {
    service
        .http
        .post(format!("{}/otp/verify", service.address))
        .header("X-Api-Key", &service.key)
        .json(&json!({"id": id, "code": code}))
}

/// Eight pending verifications (numbers from `group`), by id.
async fn verifications(service: &Service, group: u32) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::new();
    for n in 0..8 {
        let answer: Value = request(service, &service.key, &phone(group, n))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(answer["id"].as_str().unwrap_or_default().parse()?);
    }
    Ok(ids)
}

/// A wrong code for each of the eight verifications of `group` (in order),
/// of the right shape so that it is hashed, not refused as malformed.
fn wrong_codes(service: &Service, ids: &[uuid::Uuid], group: u32) -> Vec<(String, String)> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| {
            let sent = service.fake.last_message_to(&phone(group, n as u32)[1..]);
            let wrong = if sent.is_some_and(|m| m.message.contains("*000000*")) {
                "111111"
            } else {
                "000000"
            };
            (id.to_string(), wrong.to_owned())
        })
        .collect()
}
