//! The `otp-service` command line.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{DatabaseSettings, LogFormat, PepperList, PolicySettings, Settings, WebhookSettings};
use crate::delivery::fake_gateway::FakeGateway;
use crate::{http, store, telemetry};

mod clients;
mod fraud;
mod peppers;
mod webhooks;

pub use clients::{ClientsCommand, TestNumbersCommand};

/// The key the fake gateway accepts when none is given (and `serve --dev`'s).
pub const DEV_GATEWAY_KEY: &str = "dev-gateway-key";
/// Only for `serve --dev`: a fixed pepper, so codes survive restarts on a
/// laptop; the command line uses it against a `--dev` database.
pub const DEV_PEPPER: &str = "development-pepper-never-use-in-production";

#[derive(Debug, Parser)]
#[command(
    name = "otp-service",
    version,
    about = "One-time codes over WhatsApp, to prove a person controls a phone number"
)]
pub struct Cli {
    /// A TOML file that sets the same variables as the environment (`OTP_TTL_SECONDS = 300`).
    #[arg(long, global = true, env = "OTP_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (migrations first).
    Serve {
        /// For a laptop: creates the database, uses a built-in fake gateway, a fixed
        /// development pepper and a `dev` client whose key it prints.
        #[arg(long)]
        dev: bool,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Manage calling applications: their keys, settings and test numbers.
    Clients {
        #[command(flatten)]
        database: DatabaseSettings,
        /// What a client gets for what it leaves unset (`clients show`), and
        /// OTP_ALLOW_WEAK_CODES (`clients set`, `clients test-numbers add`).
        #[command(flatten, next_help_heading = "Service defaults")]
        policy: Box<PolicySettings>,
        /// Which webhook URLs `clients set --webhook-url` accepts.
        #[command(flatten, next_help_heading = "Webhooks")]
        webhooks: WebhookSettings,
        #[command(subcommand)]
        action: ClientsCommand,
    },
    /// Allow or block number prefixes, block countries and networks, turn fraud flags into blocks.
    Fraud {
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(subcommand)]
        action: fraud::FraudCommand,
    },
    /// What each configured pepper still protects, before one is removed
    /// (see "Rotating the pepper").
    Peppers {
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        peppers: PepperList,
        #[command(subcommand)]
        action: peppers::PeppersCommand,
    },
    /// Print the OpenAPI document (the source of openapi/openapi.json).
    Openapi {
        /// The Twilio Verify compatible surface's document instead (the source
        /// of openapi/twilio-verify.json).
        #[arg(long)]
        twilio: bool,
    },
    /// Run the fake Waconecta gateway alone, for local work and tests.
    FakeGateway {
        #[arg(long, env = "FAKE_GATEWAY_LISTEN", default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// Comma-separated keys the fake accepts.
        #[arg(long, env = "FAKE_GATEWAY_KEYS", default_value = DEV_GATEWAY_KEY)]
        keys: String,
        /// Messages per minute accepted on each key.
        #[arg(long, env = "FAKE_GATEWAY_RATE_PER_MINUTE", default_value_t = 30)]
        rate_per_minute: u32,
    },
}

/// The database's time limits, once `check_limits` accepted them.
pub fn store_limits(database: &DatabaseSettings) -> Result<store::Limits, String> {
    database.check_limits()?;
    Ok(store::Limits {
        statement: Duration::from_millis(database.statement_timeout_ms),
        call: Duration::from_millis(database.call_timeout_ms),
        keepalive: Duration::from_secs(database.keepalive_seconds),
    })
}

/// What to check when the database cannot be reached or used.
const DATABASE_HINT: &str =
    "could not apply the database migrations (is PostgreSQL running and DATABASE_URL right?)";

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        // Starting the service is the wiring's: `startup::main` runs it.
        Command::Serve { .. } => {
            anyhow::bail!("`serve` is run by startup::main, not by the command line's runner")
        }
        Command::Migrate { database } => {
            let options = store::connect_options(database.url())
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            let applied = store::run_migrations(&options).await.context(DATABASE_HINT)?;
            println!("migrations applied: {applied}");
            Ok(())
        }
        Command::Clients {
            database,
            policy,
            webhooks,
            action,
        } => manage_clients(&database, &policy, &webhooks, action).await,
        Command::Fraud { database, action } => {
            let options = store::connect_options(database.url())
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            store::run_migrations(&options).await.context(DATABASE_HINT)?;
            let pool = store::pool(options, store_limits(&database).map_err(anyhow::Error::msg)?);
            let result = fraud::run(&pool, action).await;
            pool.close().await;
            result
        }
        Command::Peppers {
            database,
            peppers: list,
            action,
        } => peppers::run(&database, &list, action).await,
        Command::Openapi { twilio } => {
            let document = if twilio {
                http::twilio::openapi::document()
            } else {
                http::openapi::document()
            };
            print!("{}", http::openapi::to_json(&document));
            Ok(())
        }
        Command::FakeGateway {
            listen,
            keys,
            rate_per_minute,
        } => {
            telemetry::init(LogFormat::Text, std::io::stdout);
            let keys: Vec<String> = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
            let fake = FakeGateway::new(keys, rate_per_minute);
            let listener = TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
            println!("fake Waconecta gateway on http://{listen} (inbox: GET /fake/messages)");
            fake.serve(listener)?.await?;
            Ok(())
        }
    }
}

async fn manage_clients(
    database: &DatabaseSettings,
    policy: &PolicySettings,
    webhooks: &WebhookSettings,
    action: ClientsCommand,
) -> anyhow::Result<()> {
    let options =
        store::connect_options(database.url()).context("DATABASE_URL is not a valid PostgreSQL URL")?;
    store::run_migrations(&options).await.context(DATABASE_HINT)?;
    let pool = store::pool(options, store_limits(database).map_err(anyhow::Error::msg)?);
    let result = clients::run(&pool, policy, webhooks, action).await;
    pool.close().await;
    result
}
