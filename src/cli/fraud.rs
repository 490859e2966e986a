//! `otp-service fraud …`: number prefixes allowed or blocked by hand,
//! countries and end-user networks blocked, and the detector's flags (each
//! of one client) turned into blocks for every client, straight in the
//! database (every running replica hears of it at once).

use chrono::{DateTime, Utc};
use clap::Subcommand;
use sqlx::PgPool;

use crate::domain::{Prefix, PrefixAction};
use crate::fraud::{self, Subject};
use crate::store::fraud_flags::FlagRow;

#[derive(Debug, Subcommand)]
pub enum FraudCommand {
    /// Never refuse numbers of this prefix for suspected fraud (`+59177`).
    Allow { prefix: String },
    /// Refuse every new code to numbers of this prefix (or of a country, or
    /// from an end-user network; or what a flag flags), for every client, in
    /// every fraud mode.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["prefix", "country", "ip", "from_flag"])))]
    Block {
        /// A prefix (`+59177`).
        prefix: Option<String>,
        /// An ISO 3166 country (`BO`).
        #[arg(long)]
        country: Option<String>,
        /// An end user's address (`end_user_ip`): an IPv4 address, or any address of an IPv6 /64.
        #[arg(long)]
        ip: Option<String>,
        /// A flag's ID (`otp-service fraud flags`): block its prefix, country
        /// or network for every client, not only the client it names.
        #[arg(long, value_name = "ID")]
        from_flag: Option<i64>,
        /// Its last day (YYYY-MM-DD, UTC; or an RFC 3339 time); default: until removed.
        #[arg(long, value_parser = super::clients::until)]
        until: Option<DateTime<Utc>>,
    },
    /// Forget what was said of a prefix, or lift a country's or a network's block.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["prefix", "country", "ip"])))]
    Remove {
        prefix: Option<String>,
        #[arg(long)]
        country: Option<String>,
        #[arg(long)]
        ip: Option<String>,
    },
    /// The allowed and blocked prefixes, and the blocked countries and networks.
    List,
    /// The detector's standing flags, with their IDs and the client each refuses.
    Flags,
}

/// The one thing named by a prefix, `--country` or `--ip` (clap lets only one through).
fn subject(prefix: Option<String>, country: Option<String>, ip: Option<String>) -> anyhow::Result<Subject> {
    let (scope, raw) = match (prefix, country, ip) {
        (Some(raw), _, _) => ("prefix", raw),
        (_, Some(raw), _) => ("country", raw),
        (_, _, Some(raw)) => ("ip", raw),
        _ => anyhow::bail!("name a prefix, a --country or an --ip"),
    };
    Subject::parse(scope, &raw).map_err(anyhow::Error::msg)
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn blocked_until(until: Option<DateTime<Utc>>) -> String {
    until.map_or("until removed".into(), |until| format!("until {}", time(until)))
}

pub async fn run(pool: &PgPool, action: FraudCommand) -> anyhow::Result<()> {
    match action {
        FraudCommand::Allow { prefix: raw } => {
            let prefix = Prefix::parse(&raw).map_err(anyhow::Error::msg)?;
            fraud::set(pool, &prefix, PrefixAction::Allow).await?;
            println!("{prefix} allowed: never refused for suspected fraud");
        }
        FraudCommand::Block {
            from_flag: Some(id),
            until,
            ..
        } => {
            let Some((flag, block)) = fraud::flags::block_from_flag(pool, id, until).await? else {
                anyhow::bail!(
                    "no flag {id} stands (it may have cleared): `otp-service fraud flags` lists the standing ones"
                );
            };
            println!(
                "{} blocked for every client {} (flag {id}: {} of client {})",
                block.subject,
                blocked_until(block.until),
                flag.flag.rule,
                flag.flag.client_name
            );
        }
        FraudCommand::Block {
            prefix,
            country,
            ip,
            until,
            ..
        } => {
            let subject = subject(prefix, country, ip)?;
            let block = fraud::blocks::block(pool, &subject, until).await?;
            println!("{} blocked {}", block.subject, blocked_until(block.until));
        }
        FraudCommand::Remove { prefix, country, ip } => {
            let subject = subject(prefix, country, ip)?;
            anyhow::ensure!(
                fraud::blocks::unblock(pool, &subject).await?,
                "nothing was said of {subject}"
            );
            println!("{subject} removed");
        }
        FraudCommand::List => list(pool).await?,
        FraudCommand::Flags => {
            println!(
                "{:<6} {:<27} {:<8} {:<20} {:<16} {:>8} {:>9}  UNTIL",
                "ID", "RULE", "SCOPE", "KEY", "CLIENT", "COUNTED", "THRESHOLD"
            );
            for FlagRow { id, flag, .. } in fraud::flags::current(pool).await? {
                println!(
                    "{id:<6} {:<27} {:<8} {:<20} {:<16} {:>8} {:>9}  {}",
                    flag.rule,
                    flag.scope,
                    flag.key,
                    flag.client_name,
                    flag.counted,
                    flag.threshold,
                    time(flag.until)
                );
            }
        }
    }
    Ok(())
}

/// A block's UNTIL: one without an end holds until it is removed, and says
/// so (not "removed", which read as if it already was).
fn until_column(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match until {
        None => "no end (until removed)".to_owned(),
        Some(end) if end <= now => format!("{} (ended)", time(end)),
        Some(end) => time(end),
    }
}

async fn list(pool: &PgPool) -> anyhow::Result<()> {
    println!(
        "{:<28} {:<8} {:<25} SINCE",
        "BLOCKED OR ALLOWED", "ACTION", "UNTIL"
    );
    let now = Utc::now();
    let until = |until: Option<DateTime<Utc>>| until_column(until, now);
    for entry in fraud::list(pool).await? {
        let (action, until) = match entry.rule.action {
            PrefixAction::Allow => ("allow", "-".to_owned()),
            PrefixAction::Block { until: end } => ("block", until(end)),
        };
        println!(
            "{:<28} {action:<8} {until:<25} {}",
            entry.rule.prefix.to_string(),
            time(entry.created_at)
        );
    }
    for block in fraud::blocks::blocks(pool).await? {
        println!(
            "{:<28} {:<8} {:<25} {}",
            block.subject.to_string(),
            "block",
            until(block.until),
            time(block.created_at)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_block_is_never_listed_as_removed() {
        let now = Utc::now();
        let column = until_column(None, now);
        assert_eq!(column, "no end (until removed)");
        let later = now + chrono::Duration::hours(1);
        assert_eq!(until_column(Some(later), now), time(later));
        let earlier = now - chrono::Duration::hours(1);
        assert!(until_column(Some(earlier), now).ends_with("(ended)"));
    }
}
