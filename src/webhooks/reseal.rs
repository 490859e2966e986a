//! Webhook signing secrets are sealed under the pepper, and a client keeps
//! its secret for good: unlike a code, none of them expires by itself. So a
//! replica that starts with a new `OTP_PEPPER` re-seals them under it at once
//! (opening them with the pepper in `OTP_PREVIOUS_PEPPERS`), and the old
//! pepper can later be dropped without a webhook failing.
//!
//! Each client's row is replaced only if it still holds what was read: two
//! replicas starting together both seal the same secrets, the first write
//! wins and the second finds the row changed and leaves it; a secret an
//! operator set or rotated meanwhile is never overwritten with the old one.

use sqlx::PgPool;

use super::sealed_for;
use crate::crypto::Sealer;
use crate::store::webhooks as store;

/// What one pass did, by client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Clients whose secrets are now sealed under the current pepper.
    pub resealed: u64,
    /// Clients whose secrets changed between the read and the write: another
    /// replica re-sealed them, or an operator set new ones.
    pub changed_meanwhile: u64,
    /// Clients whose secret no configured pepper opens: left as it is.
    pub unopenable: u64,
}

/// Re-seals, under the current pepper, every client's secret (and the
/// previous one while it still signs, during the day after a rotation) that
/// is sealed under another configured pepper.
pub async fn reseal_secrets(pool: &PgPool, sealer: &Sealer) -> Result<Resealed, sqlx::Error> {
    let mut done = Resealed::default();
    for row in store::secrets_not_sealed_with(pool, &sealer.current_prefix()).await? {
        let bound = sealed_for(&row.name);
        let Some(current) = sealer.reseal(&row.current, &bound) else {
            done.unopenable += 1;
            continue;
        };
        // One that no longer signs is never opened again: left as it is, as
        // is one no configured pepper opens (it would not sign either).
        let previous = match &row.previous {
            Some(sealed) if row.previous_signs => sealer.reseal(sealed, &bound).or(Some(sealed.clone())),
            other => other.clone(),
        };
        let was = (row.current.as_slice(), row.previous.as_deref());
        if store::reseal(pool, row.id, was, (&current, previous.as_deref())).await? {
            done.resealed += 1;
        } else {
            done.changed_meanwhile += 1;
        }
    }
    Ok(done)
}
