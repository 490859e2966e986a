//! Standard Webhooks signatures (standardwebhooks.com, as Svix and Supabase
//! sign): `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed
//! with the secret's decoded bytes. A secret is `whsec_` and the base64 of 32
//! random bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// A new signing secret, `whsec_<base64 of 32 random bytes>`.
pub fn generate_secret() -> SecretString {
    let mut bytes = [0u8; SECRET_BYTES];
    UnwrapErr(SysRng).fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", STANDARD.encode(bytes));
    bytes.fill(0);
    secret.into()
}

/// The key a secret stands for: the bytes its base64 part decodes to.
pub fn signing_key(secret: &SecretString) -> Option<SecretBox<Vec<u8>>> {
    let encoded = secret.expose_secret().strip_prefix(PREFIX)?;
    STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .map(|key| SecretBox::new(Box::new(key)))
}

/// The `webhook-signature` header: one `v1,<signature>` per key, separated by
/// spaces (two while a rotated secret still signs).
pub fn signature_header(keys: &[SecretBox<Vec<u8>>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| format!("v1,{}", sign(key.expose_secret(), id, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_specification_says() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = signing_key(&secret).unwrap();
        let header = signature_header(
            &[key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_32_random_bytes_behind_the_prefix() {
        let (a, b) = (generate_secret(), generate_secret());
        assert!(a.expose_secret().starts_with("whsec_"));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(signing_key(&a).unwrap().expose_secret().len(), 32);
        assert!(signing_key(&SecretString::from("no-prefix")).is_none());
    }

    #[test]
    fn two_keys_give_two_signatures() {
        let keys = [generate_secret(), generate_secret()].map(|s| signing_key(&s).unwrap());
        let header = signature_header(&keys, "msg_1", 1, "{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    }
}
