//! The server-side secrets: `OTP_PEPPER`, which makes every new hash and
//! sealed message, and `OTP_PREVIOUS_PEPPERS`, still accepted for what they
//! made before a rotation. Each has a short public id derived from it, which
//! hashes (argon2's PHC `keyid`) and sealed texts carry, so the right one is
//! picked without trying them all.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bytes of a pepper's id: enough to tell a handful of peppers apart, and
/// within the 8 bytes a PHC `keyid` may hold.
pub const KEY_ID_LEN: usize = 6;

pub type KeyId = [u8; KEY_ID_LEN];

#[derive(Clone)]
pub struct Pepper {
    pub id: KeyId,
    pub secret: SecretString,
}

impl Pepper {
    pub fn new(secret: SecretString) -> Self {
        // A one-way digest: the id says which pepper, never anything of it.
        let digest = Sha256::digest(
            [
                b"otp-service pepper id\0".as_slice(),
                secret.expose_secret().as_bytes(),
            ]
            .concat(),
        );
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self { id, secret }
    }

    /// The id as the PHC string writes it (base64 without padding), for queries
    /// over stored hashes.
    pub fn id_b64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.id)
    }
}

/// The current pepper first, then the previous ones, newest first.
#[derive(Clone)]
pub struct Peppers {
    all: Vec<Pepper>,
}

impl Peppers {
    pub fn new(current: SecretString, previous: Vec<SecretString>) -> Self {
        let mut all = vec![Pepper::new(current)];
        for secret in previous {
            let pepper = Pepper::new(secret);
            if all.iter().all(|p| p.id != pepper.id) {
                all.push(pepper);
            }
        }
        Self { all }
    }

    pub fn current(&self) -> &Pepper {
        &self.all[0]
    }

    pub fn all(&self) -> &[Pepper] {
        &self.all
    }

    pub fn by_id(&self, id: &[u8]) -> Option<&Pepper> {
        self.all.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_found() {
        let a = || SecretString::from("a".repeat(32));
        let b = || SecretString::from("b".repeat(32));
        assert_eq!(Pepper::new(a()).id, Pepper::new(a()).id);
        assert_ne!(Pepper::new(a()).id, Pepper::new(b()).id);
        let peppers = Peppers::new(b(), vec![a(), a()]);
        assert_eq!(peppers.all().len(), 2, "a repeated pepper counts once");
        assert_eq!(peppers.current().id, Pepper::new(b()).id);
        assert!(peppers.by_id(&Pepper::new(a()).id).is_some());
        assert!(peppers.by_id(&[0; KEY_ID_LEN]).is_none());
        assert_eq!(peppers.current().id_b64().len(), 8);
    }
}
