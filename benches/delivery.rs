//! Delivery benchmark: `cargo bench --bench delivery`.
//!
//! Runs the service in-process against the local PostgreSQL (a database of its
//! own, dropped afterwards) and the fake gateway, and prints, from one run:
//! 1. the time from `POST /otp/request` to the gateway's receipt (p50, p99)
//!    while under the per-key limit;
//! 2. with the queue filled while the gateway was down, the delivered rate per
//!    key as a fraction of the configured limit, and the gateway's 429 count;
//! 3. two clients on one key at 30/min with equal shares, one flooding and one
//!    steady (well under its share): each client's delivered messages per
//!    minute beside its share of the allowance and what it asked for, and the
//!    key's total beside 30/min.

mod common;

use std::time::{Duration, Instant};

use otp_service::config::HashSettings;

const KEYS: [&str; 2] = ["bench-key-1", "bench-key-2"];
/// Per key. High, so that three windows of backlog take about two minutes.
const RATE_PER_MINUTE: u32 = 300;
const LATENCY_SAMPLES: usize = 200;

fn phone(n: usize) -> String {
    format!("+5917{:07}", n)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_database(run).await?;
    common::with_database(fair_share).await
}

async fn run(db: sqlx::postgres::PgConnectOptions) -> anyhow::Result<()> {
    let bench = common::start(db, &KEYS, RATE_PER_MINUTE, |settings| {
        // Delivery is measured here, not hashing.
        settings.hashing = HashSettings {
            memory_kib: 64,
            iterations: 1,
            ..settings.hashing.clone()
        };
        settings.policy.ttl_seconds = 3600;
        // An hour-long code keeps the backlog sendable; it is weaker than NIST asks.
        settings.policy.allow_weak_codes = true;
        settings.policy.client_max_queued = 1_000_000;
    })
    .await?;
    let common::Bench {
        address, key, fake, ..
    } = bench;
    let http = reqwest::Client::new();
    let request = |n: usize| {
        http.post(format!("{address}/otp/request"))
            .header("X-Api-Key", &key)
            .json(&serde_json::json!({"phone": phone(n)}))
            .send()
    };

    // 1. Latency under the limit: one request at a time, well below the rate.
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        let wall = chrono::Utc::now();
        let response = request(n).await?;
        anyhow::ensure!(response.status() == 202, "request answered {}", response.status());
        let digits = phone(n)[1..].to_owned();
        let received = loop {
            if let Some(m) = fake.last_message_to(&digits) {
                break m.received_at;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let _ = started;
        latencies.push((received - wall).to_std().unwrap_or_default());
    }
    latencies.sort();
    // Let the window of phase 1 pass, so phase 2 starts with every key free.
    tokio::time::sleep(Duration::from_secs(61)).await;

    // 2. A full queue: three windows' worth per key, filled while the gateway is down.
    let before = fake.messages().len();
    let backlog = 3 * RATE_PER_MINUTE as usize * KEYS.len();
    fake.set_down(true);
    let mut pending = Vec::new();
    for n in 0..backlog {
        pending.push(request(LATENCY_SAMPLES + n));
        if pending.len() == 32 {
            for r in futures_util::future::join_all(pending.drain(..)).await {
                anyhow::ensure!(r?.status() == 202, "a backlog request was refused");
            }
        }
    }
    for r in futures_util::future::join_all(pending).await {
        anyhow::ensure!(r?.status() == 202, "a backlog request was refused");
    }
    fake.set_down(false);
    let drain_started = Instant::now();
    while fake.messages().len() < before + backlog {
        anyhow::ensure!(
            drain_started.elapsed() < Duration::from_secs(300),
            "the backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let messages = fake.messages().split_off(before);
    let too_many = fake.calls().iter().filter(|c| c.status == 429).count();
    println!(
        "otp-service delivery benchmark ({} keys, limit {RATE_PER_MINUTE}/min per key)",
        KEYS.len()
    );
    println!(
        "  request -> gateway receipt, under the limit ({LATENCY_SAMPLES} requests): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    for (sender, key) in KEYS.iter().enumerate() {
        let times: Vec<_> = messages
            .iter()
            .filter(|m| m.sender == sender)
            .map(|m| m.received_at)
            .collect();
        // The first burst goes out at once; the rate is what follows it:
        // messages after the first burst over the time they took.
        let first = *times.first().expect("messages on every key");
        let last = *times.last().unwrap();
        let span = (last - first).to_std().unwrap_or_default().as_secs_f64();
        let after_first_burst = times.len() - RATE_PER_MINUTE.div_ceil(4) as usize;
        let per_minute = after_first_burst as f64 / span * 60.0;
        println!(
            "  {key}: {} delivered, {:.1}/min over {:.1} s = {:.3} of the limit (target >= 0.98)",
            times.len(),
            per_minute,
            span,
            per_minute / f64::from(RATE_PER_MINUTE),
        );
    }
    println!("  gateway 429 answers: {too_many} (target 0)");
    Ok(())
}

/// Phase 3: one key at 30/min; `flooder` asks for far more than the key can
/// send, `steady` asks for 10 a minute. Measured over `FAIR_MINUTES`.
async fn fair_share(db: sqlx::postgres::PgConnectOptions) -> anyhow::Result<()> {
    const RATE: u32 = 30;
    const FAIR_MINUTES: u64 = 3;
    const STEADY_EVERY: Duration = Duration::from_secs(6);
    let bench = common::start(db, &KEYS[..1], RATE, |settings| {
        settings.hashing = HashSettings {
            memory_kib: 64,
            iterations: 1,
            ..settings.hashing.clone()
        };
        settings.policy.ttl_seconds = 600;
        settings.policy.client_max_queued = 1_000_000;
    })
    .await?;
    let flooder = otp_service::clients::add(&bench.pool, "flooder", Some(100_000_000)).await?;
    let steady = otp_service::clients::add(&bench.pool, "steady", Some(100_000_000)).await?;
    let http = bench.http.clone();
    let address = bench.address.clone();
    let ask = move |key: String, n: usize| {
        let http = http.clone();
        let address = address.clone();
        async move {
            http.post(format!("{address}/otp/request"))
                .header("X-Api-Key", key)
                .json(&serde_json::json!({"phone": phone(n)}))
                .send()
                .await
        }
    };
    let flooder_key = secrecy::ExposeSecret::expose_secret(&flooder).to_owned();
    let steady_key = secrecy::ExposeSecret::expose_secret(&steady).to_owned();
    let started = chrono::Utc::now();
    let clock = Instant::now();
    // The flood: what a code's life can carry, and more (the excess is refused).
    let flood = futures_util::future::join_all((0..400).map(|n| ask(flooder_key.clone(), n))).await;
    let flood_admitted = flood
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 202))
        .count();
    let mut steady_asked = 0usize;
    let mut n = 10_000;
    while clock.elapsed() < Duration::from_secs(FAIR_MINUTES * 60) {
        let response = ask(steady_key.clone(), n).await?;
        anyhow::ensure!(
            response.status() == 202,
            "the steady client was refused: {}",
            response.status()
        );
        steady_asked += 1;
        n += 1;
        tokio::time::sleep(STEADY_EVERY).await;
    }
    let minutes = clock.elapsed().as_secs_f64() / 60.0;
    let messages: Vec<_> = bench
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.received_at >= started)
        .collect();
    let steady_got = messages
        .iter()
        .filter(|m| m.number.parse::<u64>().is_ok_and(|d| d % 10_000_000 >= 10_000))
        .count();
    let flooder_got = messages.len() - steady_got;
    let too_many = bench.fake.calls().iter().filter(|c| c.status == 429).count();
    println!("\n  fair share: one key at {RATE}/min, equal shares, {minutes:.1} min");
    println!(
        "  flooder: asked 400 at once, {flood_admitted} admitted; delivered {:.1}/min (its share {:.1}/min, and what steady leaves)",
        flooder_got as f64 / minutes,
        f64::from(RATE) / 2.0,
    );
    println!(
        "  steady:  asked {:.1}/min; delivered {:.1}/min (its share {:.1}/min)",
        steady_asked as f64 / minutes,
        steady_got as f64 / minutes,
        f64::from(RATE) / 2.0,
    );
    println!(
        "  key total: {:.1}/min beside the limit {RATE}/min; gateway 429 answers: {too_many} (target 0)",
        messages.len() as f64 / minutes
    );
    Ok(())
}
