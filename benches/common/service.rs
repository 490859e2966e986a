//! The release binary in a process of its own, and the one load generator
//! every phase of a benchmark that uses it runs: a fixed number of callers on
//! one HTTP client for a fixed time, each unexpected answer counted, the CPU
//! of the service, of PostgreSQL and of this process split per answer.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::clients;
use otp_service::delivery::fake_gateway::FakeGateway;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};

pub const PEPPER: &str = "bench-pepper-bench-pepper-bench-pepper";

pub struct Service {
    pub address: String,
    pub fake: FakeGateway,
    pub pool: PgPool,
    pub http: reqwest::Client,
    /// The API key of the client `bench`, whose requests per minute are out of the way.
    pub key: String,
    pub child: tokio::process::Child,
    /// Concurrent callers in each phase.
    pub callers: usize,
    pub phase: Duration,
}

/// What a phase measured: expected answers per second, every unexpected
/// answer, and where the CPU went per answer.
pub struct Tally {
    pub per_second: f64,
    pub unexpected: BTreeMap<String, usize>,
    pub cpu: super::CpuPerAnswer,
}

/// The release binary, serving against `db` and a fake gateway whose rate
/// is out of the way, with the limits that no phase is about raised, and
/// `env` over those, and the client `bench` added.
pub async fn start(
    db: PgConnectOptions,
    env: &[(&str, &str)],
    callers: usize,
    phase: Duration,
) -> anyhow::Result<Service> {
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
        .envs(env.iter().copied())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let address = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(callers)
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
        callers,
        phase,
    })
}

impl Service {
    /// `callers` callers sending what `make` builds for `phase`; answers
    /// other than `expected` are counted by status and `code` (the problem's,
    /// or Twilio's).
    pub async fn load<F>(&self, make: F, expected: u16) -> Tally
    where
        F: Fn(usize, usize) -> reqwest::RequestBuilder + Sync,
    {
        let pid = self.child.id().unwrap_or_default();
        statements::reset(&self.pool).await;
        let cpu_before = super::CpuSplit::now(pid);
        let started = Instant::now();
        let callers = (0..self.callers).map(|caller| {
            let make = &make;
            async move {
                let mut done = 0usize;
                let mut unexpected = BTreeMap::<String, usize>::new();
                while started.elapsed() < self.phase {
                    if let Some(answer) = unexpected_answer(make(caller, done), expected).await {
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
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = super::CpuSplit::now(pid).per_answer_since(&cpu_before, total as f64);
        statements::print_top(&self.pool).await;
        let expected_answers = total - unexpected.values().sum::<usize>();
        Tally {
            per_second: expected_answers as f64 / elapsed,
            unexpected,
            cpu,
        }
    }

    /// The HTTP floor: `GET /healthz` under the same load generator, the
    /// reference of every answer that needs no hashing.
    pub async fn floor(&self) -> Tally {
        self.load(|_, _| self.http.get(format!("{}/healthz", self.address)), 200)
            .await
    }

    /// Indexed single-row selects from as many callers, through a pool
    /// like the service's (20 connections): PostgreSQL's figure, for scale.
    pub async fn postgres_reference(&self) -> anyhow::Result<f64> {
        super::per_second(self.callers, self.phase, || async {
            sqlx::query("select status from verifications where id = $1")
                .bind(uuid::Uuid::now_v7())
                .fetch_optional(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// The answer to `request`, if it is not `expected`: its status and code.
async fn unexpected_answer(request: reqwest::RequestBuilder, expected: u16) -> Option<String> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            (status != expected).then(|| {
                let code = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .map(|b| b["code"].to_string().trim_matches('"').to_owned());
                format!("{status} {}", code.unwrap_or_default())
            })
        }
        Err(e) => Some(format!("transport error: {e}")),
    }
}

/// "; no other answer", or what the other answers were.
pub fn explained(unexpected: &BTreeMap<String, usize>) -> String {
    if unexpected.is_empty() {
        return "; no other answer".into();
    }
    let parts: Vec<String> = unexpected
        .iter()
        .map(|(answer, n)| format!("{n}× {answer}"))
        .collect();
    format!("; also {}", parts.join(", "))
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
