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

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::clients;
use otp_service::delivery::fake_gateway::FakeGateway;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};

const CONCURRENCY: usize = 64;
const PHASE: Duration = Duration::from_secs(8);
const PEPPER: &str = "bench-pepper-bench-pepper-bench-pepper";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_database(run).await
}

struct Service {
    address: String,
    fake: FakeGateway,
    pool: PgPool,
    http: reqwest::Client,
    key: String,
    child: tokio::process::Child,
}

/// What a phase measured: answers per second, and every unexpected answer.
struct Tally {
    per_second: f64,
    unexpected: BTreeMap<String, usize>,
    /// Where the phase's CPU went, per answer.
    cpu: String,
}

async fn run(db: PgConnectOptions) -> anyhow::Result<()> {
    let service = start(db).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows: Vec<(String, Tally, &str)> = Vec::new();

    let healthz = load(
        &service,
        |_, _| service.http.get(format!("{}/healthz", service.address)),
        200,
    )
    .await;
    let postgres = postgres_reference(&service).await?;

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
        let tally = load(
            &service,
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
    let tally = load(
        &service,
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
    let tally = load(
        &service,
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
    let tally = load(
        &service,
        |c, i| {
            let (id, code) = &wrong[(c + i) % wrong.len()];
            verify(&service, id, code)
        },
        422,
    )
    .await;
    rows.push(("verify with hashing (a wrong code)".into(), tally, "argon2"));
    let tally = load(
        &service,
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
            explained(&tally.unexpected)
        );
        println!("  {:<42} {}", "", tally.cpu);
    }
    println!(
        "  unexpected answers while measuring the floor:{}",
        explained(&healthz.unexpected)
    );
    println!("  the service's peak resident memory (VmHWM): {peak:.0} MiB");
    let mut child = service.child;
    child.kill().await?;
    Ok(())
}

fn explained(unexpected: &BTreeMap<String, usize>) -> String {
    if unexpected.is_empty() {
        return "; no other answer".into();
    }
    let parts: Vec<String> = unexpected
        .iter()
        .map(|(answer, n)| format!("{n}× {answer}"))
        .collect();
    format!("; also {}", parts.join(", "))
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

/// `CONCURRENCY` callers sending what `make` builds for `PHASE`; answers
/// other than `expected` are counted by status and problem code.
async fn load<F>(service: &Service, make: F, expected: u16) -> Tally
where
    F: Fn(usize, usize) -> reqwest::RequestBuilder + Sync,
{
    let pid = service.child.id().unwrap_or_default();
    statements::reset(&service.pool).await;
    let cpu_before = common::CpuSplit::now(pid);
    let started = Instant::now();
    let callers = (0..CONCURRENCY).map(|caller| {
        let make = &make;
        async move {
            let mut done = 0usize;
            let mut unexpected = BTreeMap::<String, usize>::new();
            while started.elapsed() < PHASE {
                let answer = match make(caller, done).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await.unwrap_or_default();
                        (status != expected).then(|| {
                            let code = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|b| b["code"].as_str().map(str::to_owned));
                            format!("{status} {}", code.unwrap_or_default())
                        })
                    }
                    Err(e) => Some(format!("transport error: {e}")),
                };
                if let Some(answer) = answer {
                    *unexpected.entry(answer).or_default() += 1;
                }
                done += 1;
            }
            (done, unexpected)
        }
    });
    let mut total = 0;
    let mut unexpected = BTreeMap::new();
    for (done, theirs) in join_all(callers).await {
        total += done;
        for (answer, n) in theirs {
            *unexpected.entry(answer).or_default() += n;
        }
    }
    let cpu = common::CpuSplit::now(pid).per_answer_since(&cpu_before, total as f64);
    statements::print_top(&service.pool).await;
    let expected_answers = total - unexpected.values().sum::<usize>();
    Tally {
        per_second: expected_answers as f64 / started.elapsed().as_secs_f64(),
        unexpected,
        cpu,
    }
}

/// Indexed single-row selects from `CONCURRENCY` callers through a pool like
/// the service's (20 connections).
async fn postgres_reference(service: &Service) -> anyhow::Result<f64> {
    common::per_second(CONCURRENCY, PHASE, || async {
        sqlx::query("select status from verifications where id = $1")
            .bind(uuid::Uuid::now_v7())
            .fetch_optional(&service.pool)
            .await?;
        Ok(())
    })
    .await
}

/// The release binary, serving against `db` and a fake gateway whose rate is
/// out of the way, with the limits that no phase is about raised.
async fn start(db: PgConnectOptions) -> anyhow::Result<Service> {
    let fake = FakeGateway::new(vec!["bench-key".into()], 10_000_000);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let gateway = format!("http://{}", listener.local_addr()?);
    tokio::spawn(fake.serve(listener)?);
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = db.to_url_lossy().to_string();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("OTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("OTP_PEPPER", PEPPER)
        .env("WACONECTA_API_KEYS", "bench-key")
        .env("WACONECTA_BASE_URL", &gateway)
        .env("WACONECTA_RATE_PER_MINUTE", "10000000")
        .env("WACONECTA_BURST", "10000000")
        .env("OTP_CLIENT_MAX_QUEUED", "1000000")
        .env("OTP_PHONE_FAILURES_PER_HOUR", "2000000000")
        .env("OTP_PHONE_FAILURES_PER_DAY", "2000000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let address = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let started = Instant::now();
    while !http
        .get(format!("{address}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the service did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect_with(db)
        .await?;
    let key = clients::add(&pool, "bench", Some(1_000_000_000))
        .await?
        .expose_secret()
        .to_owned();
    Ok(Service {
        address,
        fake,
        pool,
        http,
        key,
        child,
    })
}

/// With `BENCH_PG_STATEMENTS=1` (and `pg_stat_statements` in PostgreSQL's
/// `shared_preload_libraries`), each phase prints its costliest statements.
mod statements {
    use sqlx::PgPool;

    fn enabled() -> bool {
        std::env::var("BENCH_PG_STATEMENTS").is_ok_and(|v| v == "1")
    }

    pub async fn reset(pool: &PgPool) {
        if enabled() {
            let _ = sqlx::query("create extension if not exists pg_stat_statements")
                .execute(pool)
                .await;
            let _ = sqlx::query("select pg_stat_statements_reset()")
                .execute(pool)
                .await;
        }
    }

    pub async fn print_top(pool: &PgPool) {
        if !enabled() {
            return;
        }
        let top: Vec<(i64, f64, String)> = sqlx::query_as(
            "select calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 150)
             from pg_stat_statements order by total_exec_time desc limit 14",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        for (calls, total_ms, query) in top {
            println!("    {calls:>7} calls {total_ms:>9.0} ms  {query}");
        }
    }
}
