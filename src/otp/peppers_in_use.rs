//! The peppers the service holds, recorded by key id at every start, so that
//! a command that hashes or seals with a pepper (a test number's code, a
//! webhook's signing secret) refuses one the service does not hold, instead
//! of storing what no replica can check (`422 invalid_code` ever after) or
//! open (every webhook delivery failing). The last start's peppers are the
//! record: replicas share one configuration, and during a rotation the last
//! one started is the new one.

use sqlx::PgPool;

use crate::crypto::{Pepper, Peppers};
use crate::store::peppers_in_use::{self as store, PepperInUse};

/// Records the peppers of this start in place of the previous start's.
pub async fn record(pool: &PgPool, peppers: &Peppers) -> Result<(), sqlx::Error> {
    let previous: Vec<Vec<u8>> = peppers.all()[1..].iter().map(|p| p.id.to_vec()).collect();
    store::record(pool, &peppers.current().id, &previous).await
}

/// Whether `given` may hash or seal for the service: `Ok(None)` when it is
/// the service's current pepper, `Ok(Some(note))` when no start has recorded
/// one yet, and otherwise why not (`Err`).
pub async fn check(pool: &PgPool, given: &Pepper) -> Result<Result<Option<String>, String>, sqlx::Error> {
    Ok(judge(given, &store::read(pool).await?))
}

fn id_text(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(id)
}

/// The rule, on the record as read.
fn judge(given: &Pepper, held: &[PepperInUse]) -> Result<Option<String>, String> {
    let Some(current) = held.iter().find(|p| p.current) else {
        return Ok(Some(
            "no service has started on this database yet, so the pepper could not be checked against \
             its own; its first start refuses a test number whose code it cannot check"
                .to_owned(),
        ));
    };
    if current.key_id == given.id {
        return Ok(None);
    }
    let given_id = given.id_b64();
    let current_id = id_text(&current.key_id);
    let since = current.since.format("%Y-%m-%d %H:%M:%S UTC");
    if held.iter().any(|p| !p.current && p.key_id == given.id) {
        return Err(format!(
            "the pepper given (key id {given_id}) is one of the service's OTP_PREVIOUS_PEPPERS, not its \
             OTP_PEPPER (key id {current_id}, since the start at {since}): what it hashes or seals would \
             stop working when the old pepper is removed. Give the service's current OTP_PEPPER"
        ));
    }
    Err(format!(
        "the pepper given (key id {given_id}) is not the service's: the service that started last on this \
         database, at {since}, holds OTP_PEPPER with key id {current_id}. A code hashed with another pepper \
         never verifies, and a webhook secret sealed with it cannot sign. Give the service's own OTP_PEPPER \
         (against a `serve --dev` database started without one, leave OTP_PEPPER unset)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn pepper(c: char) -> Pepper {
        Pepper::new(SecretString::from(c.to_string().repeat(32)))
    }

    fn held(p: &Pepper, current: bool) -> PepperInUse {
        PepperInUse {
            key_id: p.id.to_vec(),
            current,
            since: chrono::Utc::now(),
        }
    }

    #[test]
    fn only_the_current_pepper_passes_and_a_refusal_names_both_key_ids() {
        let (a, b, c) = (pepper('a'), pepper('b'), pepper('c'));
        let record = [held(&a, true), held(&b, false)];
        assert_eq!(judge(&a, &record), Ok(None));
        let previous = judge(&b, &record).unwrap_err();
        assert!(previous.contains("OTP_PREVIOUS_PEPPERS"), "{previous}");
        let other = judge(&c, &record).unwrap_err();
        assert!(
            other.contains(&c.id_b64()) && other.contains(&a.id_b64()) && other.contains("not the service's"),
            "{other}"
        );
        for said in [previous, other] {
            assert!(!said.contains(&"a".repeat(32)) && !said.contains(&"c".repeat(32)));
        }
    }

    #[test]
    fn with_no_record_it_passes_with_a_note() {
        assert!(judge(&pepper('a'), &[]).unwrap().is_some());
    }
}
