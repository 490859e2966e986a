//! At start, before serving: what the configured peppers mean for what the
//! database holds.

use anyhow::{Context, bail};
use sqlx::PgPool;

use crate::crypto::Peppers;
use crate::crypto::Sealer;
use crate::crypto::pepper::KeyId;
use crate::otp::{Protected, pepper_uses};
use crate::webhooks::reseal::reseal_secrets;

/// Refuses a start without a pepper that a test number in use needs; then
/// re-seals the webhook secrets under the current pepper, and warns of
/// what no configured pepper can check or open. Returns the latter.
pub async fn check(pool: &PgPool, peppers: &Peppers, sealer: &Sealer) -> anyhow::Result<Protected> {
    let configured: Vec<KeyId> = peppers.all().iter().map(|p| p.id).collect();
    // A start that cannot count could not refuse for a test number whose
    // pepper is gone either: it stops instead (the database has just
    // answered the migrations, so this is no outage to ride out).
    let uses = pepper_uses(pool)
        .await
        .context("could not count what each configured pepper protects")?;
    if let Some(refusal) = uses.start_refusal(&configured) {
        bail!(refusal);
    }
    let unserved = uses.unserved(&configured);
    match reseal_secrets(pool, sealer).await {
        Ok(done) if done.resealed > 0 || done.changed_meanwhile > 0 => tracing::info!(
            clients = done.resealed,
            changed_meanwhile = done.changed_meanwhile,
            "re-sealed webhook signing secrets under OTP_PEPPER"
        ),
        Ok(_) => {}
        // Nothing is lost: the secrets still open under the pepper they are
        // sealed with, and the next start tries again.
        Err(e) => tracing::warn!(error = %e, "could not re-seal webhook signing secrets under OTP_PEPPER"),
    }
    warn_of(&unserved);
    Ok(unserved)
}

fn warn_of(unserved: &Protected) {
    if unserved.pending_codes > 0 || unserved.queued_messages > 0 {
        tracing::warn!(
            pending_verifications = unserved.pending_codes,
            queued_messages = unserved.queued_messages,
            "{} pending verifications and {} queued messages were made with a pepper that is neither \
             OTP_PEPPER nor in OTP_PREVIOUS_PEPPERS: their codes cannot be verified and their messages \
             cannot be sent. Put the old pepper back in OTP_PREVIOUS_PEPPERS until they expire",
            unserved.pending_codes,
            unserved.queued_messages,
        );
    }
    if unserved.webhook_secrets > 0 {
        tracing::warn!(
            webhook_secrets = unserved.webhook_secrets,
            "{} webhook signing secrets are sealed under a pepper that is neither OTP_PEPPER nor in \
             OTP_PREVIOUS_PEPPERS: their webhooks cannot be signed, and are disabled after a day of \
             failures. Put the old pepper back in OTP_PREVIOUS_PEPPERS (a start re-seals them under \
             OTP_PEPPER), or give each client a new secret (`otp-service clients rotate-webhook-secret`)",
            unserved.webhook_secrets,
        );
    }
}
