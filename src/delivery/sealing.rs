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

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// A key of its own for the outbox, derived so that the pepper itself is never a cipher key.
    pub fn from_pepper(pepper: &SecretString) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"otp-service"), pepper.expose_secret().as_bytes())
            .expand(b"outbox message key v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let cipher = ChaCha20Poly1305::new(&Key::from(key));
        key.fill(0);
        Self { cipher }
    }

    /// `nonce || ciphertext`, with a fresh random nonce.
    /// The phone number is bound in as associated data: a sealed text moved to
    /// another number's message no longer opens.
    pub fn seal(&self, text: &SecretString, phone_digits: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        UnwrapErr(SysRng).fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: text.expose_secret().as_bytes(),
                    aad: phone_digits.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption does not fail for short texts");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The text, or `None` if it was sealed under another key or altered.
    pub fn open(&self, sealed: &[u8], phone_digits: &str) -> Option<SecretString> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_under_the_same_pepper() {
        let sealer = Sealer::from_pepper(&"a".repeat(32).into());
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
        let other = Sealer::from_pepper(&"b".repeat(32).into());
        assert!(other.open(&sealed, "59169657008").is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&altered, "59169657008").is_none());
    }
}
