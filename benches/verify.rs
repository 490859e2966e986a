//! Verify benchmark: `cargo bench --bench verify` (`cargo bench` runs it with
//! the delivery benchmark).
//!
//! Runs the service in-process with production argon2id parameters
//! (m = 19456 KiB, t = 2, p = 1) and prints, from one run, `POST /otp/verify`
//! requests per second:
//! 1. against locked verifications, which are refused without hashing;
//! 2. with wrong codes against pending verifications, each one argon2 check.
//!
//! The first is what a flood of guesses costs; the gap between the two is the
//! work cheap rejection saves. Beside them: argon2id on the service's own
//! hashing threads in the same process (the ceiling for 2), and the peak
//! resident memory after the loads (VmHWM: the service, its hashing buffers
//! and the load generator together).

mod common;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::config::HashSettings;
use serde_json::{Value, json};

const CONCURRENCY: usize = 32;
const PHASE: Duration = Duration::from_secs(10);
const VERIFICATIONS: usize = 8;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_database(run).await
}

async fn run(db: sqlx::postgres::PgConnectOptions) -> anyhow::Result<()> {
    let bench = common::start(db, &["bench-key"], 300, |settings| {
        settings.hashing = HashSettings {
            memory_kib: 19456,
            iterations: 2,
            ..settings.hashing.clone()
        };
        settings.policy.phone_failures_per_hour = i32::MAX as u32;
        settings.policy.phone_failures_per_day = i32::MAX as u32;
    })
    .await?;
    let mut ids = Vec::new();
    for n in 0..VERIFICATIONS {
        let response = bench
            .http
            .post(format!("{}/otp/request", bench.address))
            .header("X-Api-Key", &bench.key)
            .json(&json!({"phone": format!("+5917{n:07}")}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 202, "request answered {}", response.status());
        let id = response.json::<Value>().await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // A wrong code of the right shape, so that it is hashed, not refused as malformed.
        let sent = bench.fake.last_message_to(&format!("5917{n:07}"));
        let wrong = if sent.is_some_and(|m| m.message.contains("*000000*")) {
            "111111"
        } else {
            "000000"
        };
        ids.push((id, wrong));
    }

    // Pending, with attempts to spare: every wrong code is one argon2 check.
    sqlx::query("update verifications set max_attempts = 1000000000")
        .execute(&bench.pool)
        .await?;
    let hashing = throughput(&bench, &ids, 422).await?;
    // Locked: every attempt is refused before any hashing.
    sqlx::query("update verifications set failed_attempts = max_attempts")
        .execute(&bench.pool)
        .await?;
    let locked = throughput(&bench, &ids, 429).await?;

    let peak_rss = common::peak_rss_mib("self");
    let workers = otp_service::config::Settings::from_env()?.hashing.workers();
    let argon2 = common::argon2_reference(workers, PHASE).await?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "otp-service verify benchmark ({cores} cores, {CONCURRENCY} concurrent callers, {} s each)",
        PHASE.as_secs()
    );
    println!("  verify against locked verifications (no hashing): {locked:.0} req/s");
    println!("  verify with a wrong code, argon2id m=19456 t=2 p=1: {hashing:.0} req/s");
    println!(
        "  cheap rejection answers {:.0}x as many requests",
        locked / hashing
    );
    println!(
        "  reference: argon2id in process on {cores} hashing threads: {argon2:.0} hashes/s; verify with hashing runs at {:.2} of it",
        hashing / argon2
    );
    println!("  peak resident memory (VmHWM) after both loads: {peak_rss:.0} MiB");
    Ok(())
}

/// Requests per second over `PHASE` from `CONCURRENCY` callers sending wrong
/// codes round-robin to `ids`, each answer checked to be `expected`.
async fn throughput(bench: &common::Bench, ids: &[(String, &str)], expected: u16) -> anyhow::Result<f64> {
    let started = Instant::now();
    let callers = (0..CONCURRENCY).map(|caller| async move {
        let mut done = 0usize;
        while started.elapsed() < PHASE {
            let (id, wrong) = &ids[(caller + done) % ids.len()];
            let response = bench
                .http
                .post(format!("{}/otp/verify", bench.address))
                .header("X-Api-Key", &bench.key)
                .json(&json!({"id": id, "code": wrong}))
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == expected,
                "verify answered {}",
                response.status()
            );
            done += 1;
        }
        Ok(done)
    });
    let mut total = 0;
    for done in join_all(callers).await {
        total += done?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
