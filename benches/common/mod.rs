//! What both benchmarks need: a database of their own on the local PostgreSQL
//! (dropped afterwards), the fake gateway, and the service in-process.
#![allow(dead_code)]

pub mod service;

use std::net::TcpListener;

use otp_service::clients;
use otp_service::config::{SecretList, Settings};
use otp_service::delivery::fake_gateway::FakeGateway;
use otp_service::startup::Application;
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};

pub struct Bench {
    pub address: String,
    pub key: String,
    pub pool: PgPool,
    pub fake: FakeGateway,
    pub http: reqwest::Client,
}

/// Runs `body` against a fresh database, dropped whatever the outcome.
pub async fn with_database<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let base: PgConnectOptions = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| otp_service::config::DEFAULT_DATABASE_URL.into())
        .parse()?;
    let admin = base.clone().database("postgres");
    let name = format!("otp_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await?;
    let result = body(base.database(&name)).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop database {name} with (force)")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    result
}

/// Starts the fake gateway with `keys` and the service on `db`, with
/// `tweak` applied to the settings, and adds a client whose limit is out of the way.
pub async fn start(
    db: PgConnectOptions,
    keys: &[&str],
    rate_per_minute: u32,
    tweak: impl FnOnce(&mut Settings),
) -> anyhow::Result<Bench> {
    let fake = FakeGateway::new(keys.iter().map(|k| k.to_string()).collect(), rate_per_minute);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let gateway_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(fake.serve(listener)?);

    let mut settings = Settings::from_env()?;
    settings.database.url = db.to_url_lossy().to_string().into();
    settings.listen = "127.0.0.1:0".parse()?;
    settings.pepper = Some("bench-pepper-bench-pepper-bench-pepper".to_owned().into());
    settings.gateway.base_url = gateway_url;
    settings.gateway.api_keys = Some(SecretList(keys.iter().map(|k| k.to_string().into()).collect()));
    settings.gateway.rate_per_minute = rate_per_minute;
    tweak(&mut settings);
    let app = Application::build(settings, None).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let pool = PgPool::connect_with(db).await?;
    let key = clients::add(&pool, "bench", Some(100_000_000))
        .await?
        .expose_secret()
        .to_owned();
    Ok(Bench {
        address,
        key,
        pool,
        fake,
        http: reqwest::Client::new(),
    })
}

/// Calls per second of `call` from `callers` concurrent callers over `phase`.
pub async fn per_second<F, Fut>(callers: usize, phase: std::time::Duration, call: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = std::time::Instant::now();
    let loops = (0..callers).map(|_| async {
        let mut done = 0usize;
        while started.elapsed() < phase {
            call().await?;
            done += 1;
        }
        anyhow::Ok(done)
    });
    let mut total = 0;
    for done in futures_util::future::join_all(loops).await {
        total += done?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Hashes per second at the production cost on the service's own hasher with
/// `workers` threads and twice as many callers: the ceiling for everything
/// that hashes.
pub async fn argon2_reference(workers: usize, phase: std::time::Duration) -> anyhow::Result<f64> {
    use otp_service::domain::{CodeLength, OtpCode};
    let mut settings = Settings::from_env()?.hashing;
    settings.workers = workers as u32;
    let peppers =
        otp_service::crypto::Peppers::new("bench-pepper-bench-pepper-bench-pepper".to_owned().into(), vec![]);
    let hasher =
        otp_service::crypto::CodeHasher::new(peppers, &settings, &otp_service::metrics::Metrics::new())
            .map_err(anyhow::Error::msg)?;
    let code = OtpCode::generate(CodeLength::default());
    per_second(2 * workers, phase, || async {
        hasher.hash(&code).await?;
        Ok(())
    })
    .await
}

/// A process's peak resident memory in MiB, from `/proc/<pid>/status`
/// (`pid` may be `self`).
pub fn peak_rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU seconds (user and system) used so far by the service (`service`),
/// every PostgreSQL process, and this benchmark process: where a phase's CPU
/// went, read from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
pub struct CpuSplit {
    pub service: f64,
    pub postgres: f64,
    pub bench: f64,
}

#[allow(dead_code)]
impl CpuSplit {
    pub fn now(service: u32) -> Self {
        let mut postgres = 0.0;
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                if pid.bytes().all(|b| b.is_ascii_digit())
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == "postgres")
                {
                    postgres += cpu_seconds(&pid);
                }
            }
        }
        Self {
            service: cpu_seconds(&service.to_string()),
            postgres,
            bench: cpu_seconds("self"),
        }
    }

    /// Milliseconds of CPU per answer since `before`, for `answers` answers.
    pub fn per_answer_since(&self, before: &Self, answers: f64) -> CpuPerAnswer {
        let ms = |a: f64, b: f64| (a - b) * 1000.0 / answers.max(1.0);
        CpuPerAnswer {
            service: ms(self.service, before.service),
            postgres: ms(self.postgres, before.postgres),
            bench: ms(self.bench, before.bench),
        }
    }
}

/// Milliseconds of CPU an answer cost, by where it went.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPerAnswer {
    pub service: f64,
    pub postgres: f64,
    /// The load generator and the fake gateway (this process).
    pub bench: f64,
}

impl CpuPerAnswer {
    /// What the answer cost the service and its database: the cost a
    /// deployment pays (the load generator is the callers' side).
    pub fn served(&self) -> f64 {
        self.service + self.postgres
    }
}

impl std::fmt::Display for CpuPerAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU per answer: service {:.3} ms, PostgreSQL {:.3} ms, load generator and fake gateway {:.3} ms",
            self.service, self.postgres, self.bench
        )
    }
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields are counted after its `)`.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // After `)`: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}
