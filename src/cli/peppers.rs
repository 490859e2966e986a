//! `otp-service peppers status`: what each configured pepper still protects,
//! and which can be removed. A pepper is named by its place in the
//! configuration and its key id (a one-way digest of it), never printed.

use std::fmt::Write;

use crate::config::{DatabaseSettings, MIN_SECRET_LEN, PepperList};
use crate::crypto::Peppers;
use crate::crypto::pepper::{KeyId, Pepper};
use crate::otp::{PepperUses, Protected, pepper_uses};
use crate::store;
use anyhow::Context;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

/// The service's own OTP_PEPPER, given to a command that needs it (`why`).
pub(super) fn service_pepper(pepper: Option<SecretString>, why: &str) -> anyhow::Result<Peppers> {
    let pepper = pepper.with_context(|| format!("OTP_PEPPER (the service's own) is needed: {why}"))?;
    anyhow::ensure!(
        pepper.expose_secret().len() >= MIN_SECRET_LEN,
        "OTP_PEPPER must be at least {MIN_SECRET_LEN} bytes"
    );
    Ok(Peppers::new(pepper, Vec::new()))
}

#[derive(Debug, Subcommand)]
pub enum PeppersCommand {
    /// What each configured pepper still protects (codes of pending
    /// verifications, queued messages, test numbers, webhook secrets), and
    /// which can be removed. Never prints a pepper.
    Status,
}

pub async fn run(
    database: &DatabaseSettings,
    peppers: &PepperList,
    action: PeppersCommand,
) -> anyhow::Result<()> {
    match action {
        PeppersCommand::Status => {
            // Checked before the database is reached: a wrong setting is said first.
            let named = named(peppers)?;
            let options = store::connect_options(database.url())
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            store::run_migrations(&options)
                .await
                .context(super::DATABASE_HINT)?;
            let pool = store::pool(
                options,
                super::store_limits(database).map_err(anyhow::Error::msg)?,
            );
            let uses = pepper_uses(&pool).await;
            pool.close().await;
            print!("{}", status(&named, &uses?));
        }
    }
    Ok(())
}

/// A configured pepper, by the name an operator knows it by.
struct Named {
    name: String,
    pepper: Pepper,
}

fn named(list: &PepperList) -> anyhow::Result<Vec<Named>> {
    let current = list.pepper.clone().context(
        "OTP_PEPPER (the service's own) is needed, and OTP_PREVIOUS_PEPPERS if it has any: \
         each pepper is recognised by the key id it makes",
    )?;
    let previous = list.previous_peppers.iter().flat_map(|l| l.0.iter().cloned());
    std::iter::once(("OTP_PEPPER".to_owned(), current))
        .chain(
            previous
                .enumerate()
                .map(|(i, p)| (format!("OTP_PREVIOUS_PEPPERS #{}", i + 1), p)),
        )
        .map(|(name, secret)| {
            let len = secret.expose_secret().len();
            anyhow::ensure!(
                len >= MIN_SECRET_LEN,
                "{name} must be at least {MIN_SECRET_LEN} bytes, as the service's; it has {len}"
            );
            Ok(Named {
                name,
                pepper: Pepper::new(secret),
            })
        })
        .collect()
}

const ROW_NAME: usize = 24;

fn row(out: &mut String, name: &str, key_id: &str, p: &Protected) {
    let _ = writeln!(
        out,
        "{name:<ROW_NAME$} {key_id:<9} {:<14} {:<16} {:<13} {}",
        p.pending_codes, p.queued_messages, p.test_numbers, p.webhook_secrets
    );
}

/// The table, then what to do about each pepper that still protects something.
fn status(named: &[Named], uses: &PepperUses) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<ROW_NAME$} {:<9} {:<14} {:<16} {:<13} WEBHOOK SECRETS",
        "PEPPER", "KEY ID", "PENDING CODES", "QUEUED MESSAGES", "TEST NUMBERS"
    );
    for n in named {
        row(&mut out, &n.name, &n.pepper.id_b64(), &uses.of(&n.pepper.id));
    }
    let configured: Vec<KeyId> = named.iter().map(|n| n.pepper.id).collect();
    let unserved = uses.unserved(&configured);
    row(&mut out, "not configured", "-", &unserved);
    if !uses.before_key_ids().is_nothing() {
        row(&mut out, "before key ids (any)", "-", &uses.before_key_ids());
    }
    out.push('\n');
    for n in named.iter().skip(1) {
        let protected = uses.of(&n.pepper.id);
        if protected.is_nothing() {
            let _ = writeln!(
                out,
                "{} protects nothing any more: remove it from OTP_PREVIOUS_PEPPERS.",
                n.name
            );
        } else {
            let _ = writeln!(out, "{} is still needed for:", n.name);
            advise(&mut out, &protected, uses, |needs| needs.is(&n.pepper.id));
        }
    }
    if !unserved.is_nothing() {
        let _ = writeln!(
            out,
            "No configured pepper checks or opens these (put the pepper that made them back in \
             OTP_PREVIOUS_PEPPERS if you still have it):"
        );
        advise(&mut out, &unserved, uses, |needs| needs.unserved(&configured));
    }
    out
}

/// One line per kind a pepper protects, saying when it stops needing it.
fn advise(
    out: &mut String,
    p: &Protected,
    uses: &PepperUses,
    needs: impl Fn(&crate::otp::pepper_uses::Needs) -> bool,
) {
    let mut line = |n: i64, what: &str| {
        if n > 0 {
            let _ = writeln!(out, "  {n} {what}");
        }
    };
    line(
        p.pending_codes,
        "codes of pending verifications: they expire within their lifetime (OTP_TTL_SECONDS, or the client's own)",
    );
    line(
        p.queued_messages,
        "queued messages: sent, or given up, before their codes expire",
    );
    line(
        p.webhook_secrets,
        "webhook signing secrets: re-sealed under OTP_PEPPER when a replica starts with it and this pepper in OTP_PREVIOUS_PEPPERS",
    );
    line(
        p.test_numbers,
        "test numbers: add each again with its code under the current OTP_PEPPER (`otp-service clients test-numbers add CLIENT PHONE CODE`), or remove it:",
    );
    for number in uses.test_numbers.iter().filter(|n| needs(&n.needs)) {
        let _ = writeln!(out, "    {} {}", number.client, number.phone);
    }
}
