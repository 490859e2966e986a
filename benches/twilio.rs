//! Twilio surface benchmark: `cargo bench --bench twilio`.
//!
//! Runs the service in-process and prints, from one run, requests per second
//! of the same two calls through each API, and the ratio:
//! 1. starting a verification for a new number (`POST /otp/request` beside
//!    `POST /twilio/v2/Services/{VA}/Verifications`, a form and Basic
//!    credentials);
//! 2. checking a wrong code (`POST /otp/verify` beside `POST …/VerificationCheck`,
//!    which answers `200` with the verification read again).
//!
//! argon2id runs at a token cost (m = 64 KiB, t = 1) here: at the production
//! cost each call is one hash and the two APIs tie within the noise (see the
//! `verify` benchmark for the hash's own figures); what is left is what the
//! surface adds: its parsing, its extra read, its answer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use otp_service::config::HashSettings;
use serde_json::{Value, json};

const CONCURRENCY: usize = 16;
const PHASE: Duration = Duration::from_secs(5);
const VERIFICATIONS: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_database(run).await
}

/// The two APIs' ways of making the same call.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    Native = 0,
    Twilio = 1,
}

/// Each API twice, in an order that gives neither the warmer or fuller
/// database: each figure is the mean of its two phases.
const ORDER: [Api; 4] = [Api::Native, Api::Twilio, Api::Twilio, Api::Native];

struct Twilio {
    account: String,
    service: String,
}

async fn run(db: sqlx::postgres::PgConnectOptions) -> anyhow::Result<()> {
    let bench = common::start(db, &["bench-key"], 1_000_000, |settings| {
        settings.hashing = HashSettings {
            memory_kib: 64,
            iterations: 1,
            ..settings.hashing.clone()
        };
        settings.gateway.burst = Some(u32::MAX);
        settings.policy.client_max_queued = 1_000_000;
        settings.policy.phone_failures_per_hour = i32::MAX as u32;
        settings.policy.phone_failures_per_day = i32::MAX as u32;
    })
    .await?;
    let record = otp_service::clients::show(&bench.pool, "bench").await?;
    let twilio = Twilio {
        account: record.twilio_account_sid,
        service: record.twilio_service_sid,
    };
    let numbers = AtomicUsize::new(0);
    let mut created = [0.0; 2];
    for api in ORDER {
        created[api as usize] += common::per_second(CONCURRENCY, PHASE, || async {
            let phone = format!("+5917{:07}", numbers.fetch_add(1, Ordering::Relaxed));
            start(&bench, &twilio, api, &phone).await.map(drop)
        })
        .await?
            / 2.0;
    }

    // Pending, with attempts to spare: every wrong code is counted and answered.
    let mut targets = Vec::new();
    for n in 0..VERIFICATIONS {
        let phone = format!("+5916{n:07}");
        let id = start(&bench, &twilio, Api::Native, &phone).await?;
        let sent = bench.fake.last_message_to(&phone[1..]);
        let wrong = if sent.is_some_and(|m| m.message.contains("*000000*")) {
            "111111"
        } else {
            "000000"
        };
        targets.push((id, wrong));
    }
    sqlx::query("update verifications set max_attempts = 1000000000")
        .execute(&bench.pool)
        .await?;
    let mut checked = [0.0; 2];
    for api in ORDER {
        let turn = AtomicUsize::new(0);
        checked[api as usize] += common::per_second(CONCURRENCY, PHASE, || async {
            let (id, wrong) = &targets[turn.fetch_add(1, Ordering::Relaxed) % targets.len()];
            check(&bench, &twilio, api, id, wrong).await
        })
        .await?
            / 2.0;
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "otp-service Twilio surface benchmark ({cores} cores, {CONCURRENCY} concurrent callers, 2 x {} s each, argon2id m=64 t=1)",
        PHASE.as_secs()
    );
    for (what, [native, twilio]) in [("start a verification", created), ("check a wrong code", checked)] {
        println!(
            "  {what}: /otp {native:.0} req/s, /twilio {twilio:.0} req/s ({:.2} of /otp)",
            twilio / native
        );
    }
    Ok(())
}

/// Starts a verification for `phone`; returns its id under `/otp`.
async fn start(bench: &common::Bench, twilio: &Twilio, api: Api, phone: &str) -> anyhow::Result<String> {
    let response = match api {
        Api::Native => {
            bench
                .http
                .post(format!("{}/otp/request", bench.address))
                .header("X-Api-Key", &bench.key)
                .json(&json!({"phone": phone}))
                .send()
                .await?
        }
        Api::Twilio => {
            twilio_post(
                bench,
                twilio,
                "Verifications",
                &[("To", phone), ("Channel", "whatsapp")],
            )
            .await?
        }
    };
    let expected = if api == Api::Native { 202 } else { 201 };
    anyhow::ensure!(
        response.status() == expected,
        "start answered {}",
        response.status()
    );
    let body: Value = response.json().await?;
    Ok(match api {
        Api::Native => body["id"].as_str().unwrap_or_default().to_owned(),
        Api::Twilio => uuid::Uuid::parse_str(&body["sid"].as_str().unwrap_or_default()[2..])?.to_string(),
    })
}

async fn check(bench: &common::Bench, twilio: &Twilio, api: Api, id: &str, code: &str) -> anyhow::Result<()> {
    let response = match api {
        Api::Native => {
            bench
                .http
                .post(format!("{}/otp/verify", bench.address))
                .header("X-Api-Key", &bench.key)
                .json(&json!({"id": id, "code": code}))
                .send()
                .await?
        }
        Api::Twilio => {
            let sid = format!("VE{}", uuid::Uuid::parse_str(id)?.simple());
            let fields = [("VerificationSid", sid.as_str()), ("Code", code)];
            twilio_post(bench, twilio, "VerificationCheck", &fields).await?
        }
    };
    let expected = if api == Api::Native { 422 } else { 200 };
    anyhow::ensure!(
        response.status() == expected,
        "check answered {}",
        response.status()
    );
    Ok(())
}

async fn twilio_post(
    bench: &common::Bench,
    twilio: &Twilio,
    resource: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<reqwest::Response> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Ok(bench
        .http
        .post(format!(
            "{}/twilio/v2/Services/{}/{resource}",
            bench.address, twilio.service
        ))
        .basic_auth(&twilio.account, Some(&bench.key))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?)
}
