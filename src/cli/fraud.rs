//! `otp-service fraud …`: number prefixes allowed or blocked by hand,
//! straight in the database (every running replica hears of it at once).

use chrono::{DateTime, Utc};
use clap::Subcommand;
use sqlx::PgPool;

use crate::domain::{Prefix, PrefixAction};
use crate::fraud;

#[derive(Debug, Subcommand)]
pub enum FraudCommand {
    /// Never refuse numbers of this prefix for suspected fraud (`+59177`).
    Allow { prefix: String },
    /// Refuse every new code to numbers of this prefix, in every fraud mode.
    Block {
        prefix: String,
        /// Its last day (YYYY-MM-DD, UTC; or an RFC 3339 time); default: until removed.
        #[arg(long, value_parser = super::clients::until)]
        until: Option<DateTime<Utc>>,
    },
    /// Forget what was said of a prefix.
    Remove { prefix: String },
    /// The allowed and blocked prefixes.
    List,
}

fn prefix(raw: &str) -> anyhow::Result<Prefix> {
    Prefix::parse(raw).map_err(anyhow::Error::msg)
}

pub async fn run(pool: &PgPool, action: FraudCommand) -> anyhow::Result<()> {
    match action {
        FraudCommand::Allow { prefix: raw } => {
            let prefix = prefix(&raw)?;
            fraud::set(pool, &prefix, PrefixAction::Allow).await?;
            println!("{prefix} allowed: never refused for suspected fraud");
        }
        FraudCommand::Block { prefix: raw, until } => {
            let prefix = prefix(&raw)?;
            fraud::set(pool, &prefix, PrefixAction::Block { until }).await?;
            match until {
                Some(until) => println!("{prefix} blocked until {}", until.format("%Y-%m-%d %H:%M:%S UTC")),
                None => println!("{prefix} blocked until removed"),
            }
        }
        FraudCommand::Remove { prefix: raw } => {
            let prefix = prefix(&raw)?;
            anyhow::ensure!(
                fraud::remove(pool, &prefix).await?,
                "nothing was said of {prefix}"
            );
            println!("{prefix} removed");
        }
        FraudCommand::List => {
            println!("{:<18} {:<8} {:<25} SINCE", "PREFIX", "ACTION", "UNTIL");
            let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            for entry in fraud::list(pool).await? {
                let (action, until) = match entry.rule.action {
                    PrefixAction::Allow => ("allow", "-".to_owned()),
                    PrefixAction::Block { until } => {
                        ("block", until.map_or("(removed by hand)".into(), time))
                    }
                };
                println!(
                    "{:<18} {action:<8} {until:<25} {}",
                    entry.rule.prefix.to_string(),
                    time(entry.created_at)
                );
            }
        }
    }
    Ok(())
}
