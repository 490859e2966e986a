//! Twilio surface benchmark: `cargo bench --bench twilio`.
//!
//! Does a call through `/twilio` cost more than the same call through `/otp`?
//! Starts the release binary in a process of its own, twice, each against a
//! fresh database and the fake gateway (in this process):
//! - at a token argon2id cost (m = 8 KiB, t = 1), where what the surface
//!   adds (its form, its Basic credentials, its answer) is not hidden by
//!   the hash;
//! - at the production cost, what a deployment sees.
//!
//! Each pass measures two calls through each API, each API twice, 5 s a
//! phase, in the order native, Twilio, Twilio, native (each figure the mean
//! of its two phases, so neither API gets the warmer or the fuller
//! database): starting a verification for a new number (`POST /otp/request`
//! beside `POST …/Verifications`), and checking a wrong code by id
//! (`POST /otp/verify` beside `POST …/VerificationCheck` with
//! `VerificationSid`). It prints answers per second and the CPU each answer
//! cost the service and PostgreSQL (read from `/proc`), the Twilio figure
//! over the native one, and the target: at most 5 % more CPU per answer.
//! The CPU figure is the one to judge by: on a machine shared with other
//! work, throughput moves with the neighbours, the CPU an answer costs much
//! less. Beside them, the references measured in the same run: the HTTP
//! floor (`GET /healthz` under the same load generator), PostgreSQL's indexed
//! selects, and argon2id at the production cost in process on all cores.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::CpuPerAnswer;
use common::service::{Service, Tally, explained};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

const CALLERS: usize = 16;
const PHASE: Duration = Duration::from_secs(5);
const VERIFICATIONS: usize = 256;
/// Twilio's CPU per answer over the native API's, at most.
const TARGET: f64 = 1.05;

/// The argon2id settings of each pass, as the service reads them.
const PASSES: [(&str, &[(&str, &str)]); 2] = [
    (
        "token argon2id cost (m=8 t=1): what the surface adds",
        &[("OTP_ARGON2_MEMORY_KIB", "8"), ("OTP_ARGON2_ITERATIONS", "1")],
    ),
    (
        "production argon2id cost (m=19456 t=2): what a deployment sees",
        &[],
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "otp-service Twilio surface benchmark ({cores} cores, {CALLERS} callers, each API 2 x {} s a call, release service in its own process)",
        PHASE.as_secs()
    );
    let argon2 = common::argon2_reference(cores, PHASE).await?;
    println!("  reference: argon2id m=19456 t=2 p=1 in process on {cores} threads {argon2:.0} hashes/s");
    for (name, env) in PASSES {
        println!("{name}");
        common::with_database(|db| pass(db, env)).await?;
    }
    Ok(())
}

/// The two APIs' ways of making the same call.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    Native = 0,
    Twilio = 1,
}

/// Each API twice, in an order that gives neither the warmer or fuller
/// database.
const ORDER: [Api; 4] = [Api::Native, Api::Twilio, Api::Twilio, Api::Native];

struct Twilio {
    account: String,
    service: String,
}

async fn pass(db: PgConnectOptions, env: &[(&str, &str)]) -> anyhow::Result<()> {
    // The detector flags this traffic (thousands of codes, none approved):
    // expected, and not what is measured.
    let quiet = [("RUST_LOG", "warn,otp_service::fraud=error")];
    let env: Vec<_> = env.iter().chain(&quiet).copied().collect();
    let service = common::service::start(db, &env, CALLERS, PHASE).await?;
    let record = otp_service::clients::show(&service.pool, "bench").await?;
    let twilio = Twilio {
        account: record.twilio_account_sid,
        service: record.twilio_service_sid,
    };
    let floor = service.floor().await;
    let postgres = service.postgres_reference().await?;
    println!(
        "  reference: GET /healthz (the HTTP floor) {:.0} req/s ({:.3} ms CPU an answer); PostgreSQL indexed selects {postgres:.0} /s",
        floor.per_second,
        floor.cpu.served()
    );

    let numbers = AtomicUsize::new(0);
    let started = compare(&service, [202, 201], |api| {
        let phone = format!("+5917{:07}", numbers.fetch_add(1, Ordering::Relaxed));
        start(&service, &twilio, api, &phone)
    })
    .await;
    report("start a verification", &started);

    let targets = pending_with_wrong_codes(&service).await?;
    let turn = AtomicUsize::new(0);
    let checked = compare(&service, [422, 200], |api| {
        let (id, wrong) = &targets[turn.fetch_add(1, Ordering::Relaxed) % targets.len()];
        check(&service, &twilio, api, id, wrong)
    })
    .await;
    report("check a wrong code", &checked);
    service.stop().await
}

/// What one API measured over its two phases.
#[derive(Default)]
struct Measured {
    per_second: f64,
    cpu: CpuPerAnswer,
    unexpected: BTreeMap<String, usize>,
}

/// Each API's phases in `ORDER`; `expected` is each API's answer.
async fn compare<F>(service: &Service, expected: [u16; 2], make: F) -> [Measured; 2]
where
    F: Fn(Api) -> reqwest::RequestBuilder + Sync,
{
    let mut measured = [Measured::default(), Measured::default()];
    for api in ORDER {
        let Tally {
            per_second,
            unexpected,
            cpu,
        } = service.load(|_, _| make(api), expected[api as usize]).await;
        let m = &mut measured[api as usize];
        m.per_second += per_second / 2.0;
        m.cpu.service += cpu.service / 2.0;
        m.cpu.postgres += cpu.postgres / 2.0;
        m.cpu.bench += cpu.bench / 2.0;
        for (answer, n) in unexpected {
            *m.unexpected.entry(answer).or_default() += n;
        }
    }
    measured
}

fn report(call: &str, [native, twilio]: &[Measured; 2]) {
    println!("  {call}");
    for (api, m) in [("/otp   ", native), ("/twilio", twilio)] {
        println!(
            "    {api} {:>7.0} /s  {:.3} ms CPU an answer (service {:.3}, PostgreSQL {:.3}){}",
            m.per_second,
            m.cpu.served(),
            m.cpu.service,
            m.cpu.postgres,
            explained(&m.unexpected)
        );
    }
    let cpu = twilio.cpu.served() / native.cpu.served();
    println!(
        "    /twilio over /otp: CPU an answer {cpu:.3} (target at most {TARGET:.2}: {}; the service's alone {:.3}), answers per second {:.3}",
        if cpu <= TARGET { "met" } else { "NOT met" },
        twilio.cpu.service / native.cpu.service,
        twilio.per_second / native.per_second
    );
}

/// Pending verifications with attempts to spare, each with a wrong code of
/// the right shape (so that it is hashed): every check is counted and
/// answered. Many of them, so that the phone's failure window each check
/// counts stays short, as a real number's does.
async fn pending_with_wrong_codes(service: &Service) -> anyhow::Result<Vec<(String, &'static str)>> {
    let mut targets = Vec::new();
    for n in 0..VERIFICATIONS {
        let phone = format!("+5916{n:07}");
        let answer: Value = service
            .http
            .post(format!("{}/otp/request", service.address))
            .header("X-Api-Key", &service.key)
            .json(&json!({"phone": phone}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let sent = service.fake.last_message_to(&phone[1..]);
        let wrong = match sent.is_some_and(|m| m.message.contains("*000000*")) {
            true => "111111",
            false => "000000",
        };
        targets.push((answer["id"].as_str().unwrap_or_default().to_owned(), wrong));
    }
    sqlx::query("update verifications set max_attempts = 1000000000")
        .execute(&service.pool)
        .await?;
    Ok(targets)
}

fn start(service: &Service, twilio: &Twilio, api: Api, phone: &str) -> reqwest::RequestBuilder {
    match api {
        Api::Native => service
            .http
            .post(format!("{}/otp/request", service.address))
            .header("X-Api-Key", &service.key)
            .json(&json!({"phone": phone})),
        Api::Twilio => twilio_post(
            service,
            twilio,
            "Verifications",
            &[("To", phone), ("Channel", "whatsapp")],
        ),
    }
}

fn check(service: &Service, twilio: &Twilio, api: Api, id: &str, code: &str) -> reqwest::RequestBuilder {
    match api {
        Api::Native => service
            .http
            .post(format!("{}/otp/verify", service.address))
            .header("X-Api-Key", &service.key)
            .json(&json!({"id": id, "code": code})),
        Api::Twilio => {
            let sid = format!("VE{}", id.replace('-', ""));
            twilio_post(
                service,
                twilio,
                "VerificationCheck",
                &[("VerificationSid", &sid), ("Code", code)],
            )
        }
    }
}

fn twilio_post(
    service: &Service,
    twilio: &Twilio,
    resource: &str,
    fields: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    service
        .http
        .post(format!(
            "{}/twilio/v2/Services/{}/{resource}",
            service.address, twilio.service
        ))
        .basic_auth(&twilio.account, Some(&service.key))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
}
