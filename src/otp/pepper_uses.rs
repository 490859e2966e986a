//! What each pepper still protects, by the key id each hash and sealed text
//! names: codes of pending verifications, messages waiting to be sent, the
//! fixed codes of test numbers in use, and webhook signing secrets. It
//! decides whether a start may go on, and is what `otp-service peppers
//! status` shows; a pepper that protects nothing can be dropped.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::crypto::KeyId;
use crate::store::test_numbers::{self, TestNumberKey};
use crate::store::{HashKeyCount, SealKeyCount, outbox, verifications, webhooks};

/// How many things of each kind one pepper (or none) protects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Protected {
    /// Pending verifications: their codes are checked with it.
    pub pending_codes: i64,
    /// Messages waiting to be sent: their texts are sealed under it.
    pub queued_messages: i64,
    /// Test numbers in use: their fixed codes are checked with it, and no
    /// hash can be made again without the code.
    pub test_numbers: i64,
    /// Webhook signing secrets (a client's, and a previous one still
    /// signing): sealed under it until a replica re-seals them.
    pub webhook_secrets: i64,
}

impl Protected {
    pub fn is_nothing(&self) -> bool {
        *self == Self::default()
    }

    fn plus(self, other: Self) -> Self {
        Self {
            pending_codes: self.pending_codes + other.pending_codes,
            queued_messages: self.queued_messages + other.queued_messages,
            test_numbers: self.test_numbers + other.test_numbers,
            webhook_secrets: self.webhook_secrets + other.webhook_secrets,
        }
    }
}

/// Which pepper something needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Needs {
    /// The one with this key id. A key id that does not even decode is kept
    /// as its text: it is no configured pepper's either.
    Key(Vec<u8>),
    /// Made before key ids: tried under every configured pepper.
    Any,
}

impl Needs {
    fn of_hash(key_id: Option<&str>) -> Self {
        use base64::Engine;
        match key_id {
            None => Self::Any,
            Some(text) => Self::Key(
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text)
                    .unwrap_or_else(|_| text.as_bytes().to_vec()),
            ),
        }
    }

    fn of_seal(key_id: Option<Vec<u8>>) -> Self {
        key_id.map_or(Self::Any, Self::Key)
    }

    /// Whether it needs the pepper with this key id.
    pub fn is(&self, id: &KeyId) -> bool {
        matches!(self, Self::Key(key) if key.as_slice() == id.as_slice())
    }

    /// Whether none of the `configured` peppers can serve it.
    pub fn unserved(&self, configured: &[KeyId]) -> bool {
        match self {
            Self::Key(_) => !configured.iter().any(|known| self.is(known)),
            Self::Any => false,
        }
    }
}

/// A test number in use, and the pepper its fixed code needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNumberUse {
    pub client: String,
    /// E.164.
    pub phone: String,
    pub needs: Needs,
}

/// Everything the peppers protect, by the pepper each needs.
#[derive(Debug, Default, Clone)]
pub struct PepperUses {
    by_key: HashMap<Needs, Protected>,
    pub test_numbers: Vec<TestNumberUse>,
}

impl PepperUses {
    /// Adds up what the store counted, by pepper.
    pub fn tally(
        pending: Vec<HashKeyCount>,
        queued: Vec<SealKeyCount>,
        numbers: Vec<TestNumberKey>,
        secrets: Vec<SealKeyCount>,
    ) -> Self {
        let mut uses = Self::default();
        let mut add = |needs: Needs, counted: Protected| {
            let entry = uses.by_key.entry(needs).or_default();
            *entry = entry.plus(counted);
        };
        for row in pending {
            let counted = Protected {
                pending_codes: row.count,
                ..Protected::default()
            };
            add(Needs::of_hash(row.key_id.as_deref()), counted);
        }
        for row in queued {
            let counted = Protected {
                queued_messages: row.count,
                ..Protected::default()
            };
            add(Needs::of_seal(row.key_id), counted);
        }
        for row in secrets {
            let counted = Protected {
                webhook_secrets: row.count,
                ..Protected::default()
            };
            add(Needs::of_seal(row.key_id), counted);
        }
        let numbers: Vec<TestNumberUse> = numbers
            .into_iter()
            .map(|row| TestNumberUse {
                needs: Needs::of_hash(row.key_id.as_deref()),
                client: row.client,
                phone: row.phone,
            })
            .collect();
        for number in &numbers {
            let counted = Protected {
                test_numbers: 1,
                ..Protected::default()
            };
            add(number.needs.clone(), counted);
        }
        uses.test_numbers = numbers;
        uses
    }

    /// What the pepper with this key id protects.
    pub fn of(&self, id: &KeyId) -> Protected {
        self.by_key
            .get(&Needs::Key(id.to_vec()))
            .copied()
            .unwrap_or_default()
    }

    /// What was made before key ids, and is tried under every pepper.
    pub fn before_key_ids(&self) -> Protected {
        self.by_key.get(&Needs::Any).copied().unwrap_or_default()
    }

    /// What none of the `configured` peppers can check or open.
    pub fn unserved(&self, configured: &[KeyId]) -> Protected {
        self.by_key
            .iter()
            .filter(|(needs, _)| needs.unserved(configured))
            .fold(Protected::default(), |sum, (_, counted)| sum.plus(*counted))
    }

    /// Why a service with only the `configured` peppers must not start, if it
    /// must not: a test number whose code none of them can check would answer
    /// every code with `422 invalid_code`, and its hash cannot be made again
    /// without the code. (Codes of pending verifications expire, messages are
    /// given up, webhook secrets can be rotated: those are only warned of.)
    pub fn start_refusal(&self, configured: &[KeyId]) -> Option<String> {
        let lost: Vec<&TestNumberUse> = self
            .test_numbers
            .iter()
            .filter(|n| n.needs.unserved(configured))
            .collect();
        if lost.is_empty() {
            return None;
        }
        let mut clients: Vec<&str> = lost.iter().map(|n| n.client.as_str()).collect();
        clients.sort_unstable();
        clients.dedup();
        let clients = clients
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (numbers, have) = match lost.len() {
            1 => ("1 test number in use".to_owned(), "has its fixed code"),
            n => (format!("{n} test numbers in use"), "have fixed codes"),
        };
        Some(format!(
            "{numbers} (of {clients}) {have} hashed with a pepper that is neither OTP_PEPPER nor in \
             OTP_PREVIOUS_PEPPERS: every code typed for them would be refused with 422 invalid_code. \
             Put that pepper back in OTP_PREVIOUS_PEPPERS, or add each of them again with its code \
             under the new OTP_PEPPER (`otp-service clients test-numbers add CLIENT PHONE CODE`), or \
             remove them (`otp-service clients test-numbers remove CLIENT PHONE`); `otp-service \
             peppers status` lists them"
        ))
    }
}

/// Counts, in the database, what each pepper protects.
pub async fn pepper_uses(pool: &PgPool) -> Result<PepperUses, sqlx::Error> {
    Ok(PepperUses::tally(
        verifications::pending_by_pepper(pool).await?,
        outbox::waiting_by_pepper(pool).await?,
        test_numbers::in_use_by_pepper(pool).await?,
        webhooks::secrets_by_pepper(pool).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: KeyId = [1, 2, 3, 4, 5, 6];
    const NEW: KeyId = [9, 9, 9, 9, 9, 9];

    fn b64(id: &KeyId) -> Option<String> {
        use base64::Engine;
        Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(id))
    }

    fn hashes(key_id: Option<String>, count: i64) -> HashKeyCount {
        HashKeyCount { key_id, count }
    }

    fn seals(key_id: Option<&KeyId>, count: i64) -> SealKeyCount {
        SealKeyCount {
            key_id: key_id.map(|id| id.to_vec()),
            count,
        }
    }

    fn number(client: &str, phone: &str, key_id: Option<String>) -> TestNumberKey {
        TestNumberKey {
            client: client.into(),
            phone: phone.into(),
            key_id,
        }
    }

    fn example() -> PepperUses {
        PepperUses::tally(
            vec![hashes(b64(&OLD), 3), hashes(b64(&NEW), 2), hashes(None, 1)],
            vec![seals(Some(&OLD), 1)],
            vec![
                number("app", "+59170000001", b64(&OLD)),
                number("shop", "+59170000002", b64(&OLD)),
                number("shop", "+59170000003", b64(&NEW)),
            ],
            vec![seals(Some(&OLD), 2), seals(Some(&NEW), 1)],
        )
    }

    #[test]
    fn hashes_and_sealed_texts_add_up_by_the_pepper_they_name() {
        let uses = example();
        let old = Protected {
            pending_codes: 3,
            queued_messages: 1,
            test_numbers: 2,
            webhook_secrets: 2,
        };
        assert_eq!(uses.of(&OLD), old);
        assert_eq!(uses.of(&NEW).pending_codes, 2);
        assert_eq!(uses.of(&NEW).test_numbers, 1);
        assert_eq!(uses.before_key_ids().pending_codes, 1);
        assert!(uses.of(&[0; 6]).is_nothing());
        assert_eq!(uses.unserved(&[NEW]), old, "only what the dropped pepper made");
        assert!(uses.unserved(&[NEW, OLD]).is_nothing());
    }

    #[test]
    fn a_start_is_refused_only_while_a_test_number_needs_a_pepper_not_configured() {
        let uses = example();
        assert_eq!(uses.start_refusal(&[NEW, OLD]), None);
        let refusal = uses.start_refusal(&[NEW]).unwrap();
        assert!(refusal.starts_with("2 test numbers in use"), "{refusal}");
        assert!(refusal.contains("`app`, `shop`"), "{refusal}");
        assert!(refusal.contains("OTP_PREVIOUS_PEPPERS") && refusal.contains("test-numbers add"));
        assert!(!refusal.contains("+5917"), "no phone number in a log line");
        // Codes, messages and secrets alone never refuse a start.
        let no_numbers = PepperUses::tally(
            vec![hashes(b64(&OLD), 3)],
            vec![],
            vec![],
            vec![seals(Some(&OLD), 1)],
        );
        assert_eq!(no_numbers.start_refusal(&[NEW]), None);
        // A hash made before key ids is tried under every pepper.
        let unnamed = PepperUses::tally(vec![], vec![], vec![number("shop", "+59170000004", None)], vec![]);
        assert_eq!(unnamed.start_refusal(&[NEW]), None);
        let garbled = PepperUses::tally(
            vec![],
            vec![],
            vec![number("shop", "+59170000005", Some("!".into()))],
            vec![],
        );
        assert!(garbled.start_refusal(&[NEW]).is_some());
    }
}
