//! Message texts carry codes, so the outbox keeps them sealed with an AEAD
//! cipher under a key derived from the service's pepper.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::Rng;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::pepper::{KEY_ID_LEN, KeyId, Peppers};
use crate::domain::{OtpCode, VerificationId};

const NONCE_LEN: usize = 12;
/// The first byte of a sealed text that names its pepper: `1 || key id || nonce
/// || ciphertext`. Texts sealed before that are `nonce || ciphertext`.
const WITH_KEY_ID: u8 = 1;

#[derive(Clone)]
pub struct Sealer {
    /// The current pepper's first, then the previous ones'.
    ciphers: Vec<(KeyId, ChaCha20Poly1305)>,
}

impl Sealer {
    /// A key of its own for the outbox from each pepper, derived so that a
    /// pepper itself is never a cipher key.
    pub fn new(peppers: &Peppers) -> Self {
        let ciphers = peppers
            .all()
            .iter()
            .map(|pepper| {
                let mut key = [0u8; 32];
                Hkdf::<Sha256>::new(Some(b"otp-service"), pepper.secret.expose_secret().as_bytes())
                    .expand(b"outbox message key v1", &mut key)
                    .expect("32 bytes is a valid HKDF-SHA256 output length");
                let cipher = ChaCha20Poly1305::new(&Key::from(key));
                key.fill(0);
                (pepper.id, cipher)
            })
            .collect();
        Self { ciphers }
    }

    /// `1 || key id || nonce || ciphertext`, with a fresh random nonce, under
    /// the current pepper. The phone number is bound in as associated data: a
    /// sealed text moved to another number's message no longer opens.
    pub fn seal(&self, text: &SecretString, phone_digits: &str) -> Vec<u8> {
        let (id, cipher) = &self.ciphers[0];
        let mut nonce = [0u8; NONCE_LEN];
        UnwrapErr(SysRng).fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: text.expose_secret().as_bytes(),
                    aad: phone_digits.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption does not fail for short texts");
        [&[WITH_KEY_ID], id.as_slice(), nonce.as_slice(), &sealed].concat()
    }

    /// What every text sealed under the current pepper starts with (`1 || key
    /// id`): a query tells by it what is sealed under another.
    pub fn current_prefix(&self) -> Vec<u8> {
        [&[WITH_KEY_ID], self.ciphers[0].0.as_slice()].concat()
    }

    /// Whether `sealed` was sealed under the current pepper.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.len() > 1 + KEY_ID_LEN + NONCE_LEN && sealed.starts_with(&self.current_prefix())
    }

    /// The same text sealed under the current pepper, if it is not already and
    /// a configured pepper opens it (`None` otherwise).
    pub fn reseal(&self, sealed: &[u8], phone_digits: &str) -> Option<Vec<u8>> {
        if self.is_current(sealed) {
            return Some(sealed.to_vec());
        }
        self.open(sealed, phone_digits)
            .map(|text| self.seal(&text, phone_digits))
    }

    /// A verification's code, sealed for a resend of that verification alone
    /// to open (`open_code`): bound to its id and to the hash stored with it,
    /// not to the phone, so a sealed code moved to another verification or
    /// into a message opens nowhere, and one whose hash was replaced without
    /// it (by a replica that predates kept codes) no longer opens.
    pub fn seal_code(&self, code: &OtpCode, verification: VerificationId, code_hash: &str) -> Vec<u8> {
        let text = SecretString::from(code.expose().to_owned());
        self.seal(&text, &code_binding(verification, code_hash))
    }

    /// The code `seal_code` sealed for `verification` and `code_hash`, or
    /// `None` if no configured pepper opens it for them (or it is not a code).
    pub fn open_code(&self, sealed: &[u8], verification: VerificationId, code_hash: &str) -> Option<OtpCode> {
        let text = self.open(sealed, &code_binding(verification, code_hash))?;
        OtpCode::parse_any_length(text.expose_secret())
    }

    /// The text, or `None` if it was sealed under a pepper no longer configured,
    /// or altered.
    pub fn open(&self, sealed: &[u8], phone_digits: &str) -> Option<SecretString> {
        let named = sealed
            .split_first()
            .filter(|(first, rest)| **first == WITH_KEY_ID && rest.len() >= KEY_ID_LEN + NONCE_LEN)
            .and_then(|(_, rest)| {
                let (id, body) = rest.split_at(KEY_ID_LEN);
                let (_, cipher) = self.ciphers.iter().find(|(known, _)| known == id)?;
                open_with(cipher, body, phone_digits)
            });
        // A text sealed before key ids (whose nonce may start with any byte) is
        // tried under each pepper.
        named.or_else(|| {
            self.ciphers
                .iter()
                .find_map(|(_, cipher)| open_with(cipher, sealed, phone_digits))
        })
    }
}

/// What a sealed code is bound to; no phone's digits look like it.
fn code_binding(verification: VerificationId, code_hash: &str) -> String {
    format!("code:{verification}:{code_hash}")
}

fn open_with(cipher: &ChaCha20Poly1305, sealed: &[u8], phone_digits: &str) -> Option<SecretString> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let plain = cipher
        .decrypt(
            &Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?),
            Payload {
                msg: ciphertext,
                aad: phone_digits.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok().map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer_of(current: &str, previous: &[&str]) -> Sealer {
        Sealer::new(&Peppers::new(
            current.repeat(32).into(),
            previous.iter().map(|p| p.repeat(32).into()).collect(),
        ))
    }

    #[test]
    fn seals_and_opens_only_under_the_same_pepper() {
        let sealer = sealer_of("a", &[]);
        let text = SecretString::from("Tu código de verificación es *123456*".to_owned());
        let sealed = sealer.seal(&text, "59169657008");
        assert!(!String::from_utf8_lossy(&sealed).contains("123456"));
        assert_ne!(
            sealed,
            sealer.seal(&text, "59169657008"),
            "a fresh nonce every time"
        );
        assert_eq!(
            sealer.open(&sealed, "59169657008").unwrap().expose_secret(),
            text.expose_secret()
        );

        assert!(
            sealer.open(&sealed, "59170000000").is_none(),
            "bound to its phone"
        );
        let other = sealer_of("b", &[]);
        assert!(other.open(&sealed, "59169657008").is_none());
        let rotated = sealer_of("b", &["a"]);
        assert_eq!(
            rotated.open(&sealed, "59169657008").unwrap().expose_secret(),
            text.expose_secret(),
            "a previous pepper still opens what it sealed"
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&altered, "59169657008").is_none());
    }

    #[test]
    fn a_code_opens_for_its_own_verification_only_and_while_its_pepper_is_held() {
        let sealer = sealer_of("a", &[]);
        let (id, other) = (VerificationId::new(), VerificationId::new());
        let code = OtpCode::parse_any_length("012345").unwrap();
        let sealed = sealer.seal_code(&code, id, "hash");
        assert!(!String::from_utf8_lossy(&sealed).contains("012345"));
        assert_eq!(sealer.open_code(&sealed, id, "hash").unwrap().expose(), "012345");
        assert!(
            sealer.open_code(&sealed, other, "hash").is_none(),
            "bound to its verification"
        );
        assert!(
            sealer.open_code(&sealed, id, "another hash").is_none(),
            "bound to the hash it was sealed with"
        );
        assert!(
            sealer.open(&sealed, "59169657008").is_none(),
            "not a message's text"
        );
        assert_eq!(
            sealer_of("b", &["a"])
                .open_code(&sealed, id, "hash")
                .unwrap()
                .expose(),
            "012345"
        );
        assert!(
            sealer_of("b", &[]).open_code(&sealed, id, "hash").is_none(),
            "its pepper rotated away"
        );
        let text = sealer.seal(&SecretString::from("hola".to_owned()), &code_binding(id, "hash"));
        assert!(sealer.open_code(&text, id, "hash").is_none(), "not a code");
    }

    #[test]
    fn a_text_sealed_under_a_previous_pepper_is_resealed_under_the_current_one() {
        let text = SecretString::from("whsec_c2VjcmV0".to_owned());
        let old = sealer_of("a", &[]);
        let sealed = old.seal(&text, "webhook:shop");
        assert!(old.is_current(&sealed));
        let rotated = sealer_of("b", &["a"]);
        assert!(!rotated.is_current(&sealed));
        assert!(sealed.starts_with(&old.current_prefix()));

        let resealed = rotated.reseal(&sealed, "webhook:shop").unwrap();
        assert!(rotated.is_current(&resealed));
        assert_eq!(
            rotated.reseal(&resealed, "webhook:shop").unwrap(),
            resealed,
            "kept as is"
        );
        let dropped = sealer_of("b", &[]);
        assert_eq!(
            dropped.open(&resealed, "webhook:shop").unwrap().expose_secret(),
            text.expose_secret(),
            "opens once the old pepper is gone"
        );
        assert!(
            dropped.reseal(&sealed, "webhook:shop").is_none(),
            "no pepper opens it"
        );
        assert!(
            rotated.reseal(&sealed, "webhook:other").is_none(),
            "bound to its owner"
        );
    }
}
