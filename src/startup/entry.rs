//! What `main` runs: the config file, the flags, then the command. Starting
//! the service (`serve`, `serve --dev`) is wired here; every other command is
//! the command line's (`cli::run`).

use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use secrecy::ExposeSecret;

use super::Application;
use crate::cli::{self, Cli, Command, DEV_GATEWAY_KEY, DEV_PEPPER};
use crate::config::{self, LogFormat, SecretList, Settings};
use crate::delivery::fake_gateway::FakeGateway;
use crate::{dev_key, store, telemetry};

/// What `main` runs: the config file, the flags, then the command.
pub fn main() -> ExitCode {
    let args = match config::with_config_file(&Cli::command(), std::env::args().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: many errors repeat their
/// source's text in their own ("Connection refused (os error 111)" twice).
fn describe(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in e.chain().map(ToString::to_string) {
        if !said.last().is_some_and(|previous| previous.contains(&cause)) {
            said.push(cause);
        }
    }
    said.join(": ")
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { dev: true, settings } => serve_dev(*settings).await,
        Command::Serve { dev: false, settings } => {
            settings.check_production().map_err(anyhow::Error::msg)?;
            telemetry::init(settings.log_format.unwrap_or(LogFormat::Json), std::io::stdout);
            let app = Application::build(*settings, None).await?;
            tracing::info!(
                port = app.port(),
                metrics_port = app.metrics_port(),
                "otp-service listening"
            );
            app.run_until_stopped().await
        }
        other => cli::run(other).await,
    }
}

async fn serve_dev(mut settings: Settings) -> anyhow::Result<()> {
    settings.check_secrets().map_err(anyhow::Error::msg)?;
    telemetry::init(settings.log_format.unwrap_or(LogFormat::Text), std::io::stdout);
    if settings.pepper.is_none() {
        tracing::warn!("--dev: using the fixed development pepper; never do this in production");
        settings.pepper = Some(DEV_PEPPER.to_owned().into());
    }
    // A laptop's webhook receiver listens on loopback (http://127.0.0.1:…).
    settings.webhooks.allow_private = true;
    let options = store::connect_options(settings.database.url())
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    if store::create_database_if_missing(&options)
        .await
        .context("cannot reach PostgreSQL (is it running, and DATABASE_URL right?)")?
    {
        tracing::info!(
            database = options.get_database().unwrap_or_default(),
            "created the database"
        );
    }

    store::run_migrations(&options)
        .await
        .context("could not apply the database migrations (is PostgreSQL running and DATABASE_URL right?)")?;
    let limits = cli::store_limits(&settings.database).map_err(anyhow::Error::msg)?;
    let pool = store::pool(options.clone(), limits);
    let refusal = crate::clients::dev_database::take(&pool, &options).await;
    pool.close().await;
    if let Some(refusal) = refusal? {
        anyhow::bail!(refusal);
    }

    let fake = FakeGateway::new(vec![DEV_GATEWAY_KEY.to_owned()], settings.gateway.rate_per_minute);
    let fake_listener = TcpListener::bind("127.0.0.1:0")?;
    settings.gateway.base_url = format!("http://{}", fake_listener.local_addr()?);
    settings.gateway.api_keys = Some(SecretList(vec![DEV_GATEWAY_KEY.to_owned().into()]));
    // The fake answers any container token, so the QR page works under --dev too.
    settings.gateway.container_tokens = Some(SecretList(vec!["dev-container-token".to_owned().into()]));
    tokio::spawn(fake.serve(fake_listener)?);

    let listen = settings.listen;
    let metrics_listen = settings.metrics_listen;
    let admin = settings.admin_key.is_some();
    let app = Application::build(settings, Some(fake)).await?;
    let key_file = dev_key::path(&options);
    let pool = store::pool(options, limits);
    let (key, origin) = dev_key::ensure(&pool, key_file).await?;
    let dev = crate::clients::show(&pool, dev_key::CLIENT).await?;
    pool.close().await;

    let base = format!("http://{}:{}", listen.ip(), app.port());
    let origin = match origin {
        dev_key::Origin::Kept(file) => format!("kept from the previous start ({})", file.display()),
        dev_key::Origin::New(file) => format!("new key, kept for the next starts in {}", file.display()),
        dev_key::Origin::NotKept(why) => format!("new key, not kept for the next start: {why}"),
    };
    let admin = if admin {
        format!("{base}/admin/senders/sender-1/qr (any user name; the password is OTP_ADMIN_KEY)")
    } else {
        "off; set OTP_ADMIN_KEY (32 bytes or more) to open them".to_owned()
    };
    let metrics = match (metrics_listen, app.metrics_port()) {
        (Some(at), Some(port)) => format!("http://{}:{port}/metrics (OTP_METRICS_LISTEN)", at.ip()),
        _ => format!("{base}/metrics (set OTP_METRICS_LISTEN to serve it on a port of its own)"),
    };
    let twilio = format!(
        "{base}/twilio, Account SID {}, Service SID {}, password the key (docs/twilio.md)",
        dev.twilio_account_sid, dev.twilio_service_sid
    );
    println!(
        "\notp-service (dev) on {base}\n  client `dev`: {origin}\n  key: {key}\n  codes sent: {base}/dev/messages\n  gateway failures: {base}/dev/gateway (docs/api.md, \"Trying the failures\")\n  docs: {base}/docs/\n  admin pages: {admin}\n  metrics: {metrics}\n  Twilio Verify: {twilio}\n\n  export OTP_KEY={key}\n",
        key = key.expose_secret()
    );
    app.run_until_stopped().await
}
