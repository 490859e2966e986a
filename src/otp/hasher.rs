//! Keyed argon2id hashes of codes. Hashing is CPU-bound, so it runs on the
//! blocking pool with a bound on how many run at once: a flood of wrong codes
//! queues here instead of starving the async workers.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::HashSettings;
use crate::domain::OtpCode;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct CodeHasher {
    inner: Arc<Inner>,
}

struct Inner {
    pepper: SecretString,
    params: Params,
    permits: Semaphore,
    duration: prometheus::HistogramVec,
}

impl CodeHasher {
    pub fn new(pepper: SecretString, settings: &HashSettings, metrics: &Metrics) -> Result<Self, String> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| {
            format!("OTP_ARGON2_MEMORY_KIB / OTP_ARGON2_ITERATIONS / OTP_ARGON2_PARALLELISM: {e}")
        })?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            inner: Arc::new(Inner {
                pepper,
                params,
                permits: Semaphore::new(cores),
                duration: metrics.hash_duration.clone(),
            }),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=...`) of the code, with a fresh salt.
    pub async fn hash(&self, code: &OtpCode) -> anyhow::Result<String> {
        let code = SecretString::from(code.expose().to_owned());
        self.run("hash", move |argon| {
            argon
                .hash_password(code.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
        })
        .await
    }

    /// Whether the code matches the stored PHC string (constant-time compare inside argon2).
    pub async fn verify(&self, code: &OtpCode, phc: String) -> anyhow::Result<bool> {
        let code = SecretString::from(code.expose().to_owned());
        self.run("verify", move |argon| {
            match argon.verify_password(code.expose_secret().as_bytes(), phc.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(anyhow::anyhow!("argon2 verify failed: {e}")),
            }
        })
        .await
    }

    async fn run<T, F>(&self, op: &str, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Argon2<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        // Timed from before the wait for a permit: the latency a caller sees.
        let _timer = self.inner.duration.with_label_values(&[op]).start_timer();
        let _permit = self.inner.permits.acquire().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let argon = Argon2::new_with_secret(
                inner.pepper.expose_secret().as_bytes(),
                Algorithm::Argon2id,
                Version::V0x13,
                inner.params.clone(),
            )
            .map_err(|e| anyhow::anyhow!("argon2 setup failed: {e}"))?;
            work(&argon)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    fn cheap() -> HashSettings {
        HashSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn code(s: &str) -> OtpCode {
        OtpCode::parse(s, CodeLength::default()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_only_with_the_same_code_and_pepper() {
        let hasher = CodeHasher::new("p".repeat(32).into(), &cheap(), &Metrics::new()).unwrap();
        let phc = hasher.hash(&code("012345")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!phc.contains("012345"));
        assert!(hasher.verify(&code("012345"), phc.clone()).await.unwrap());
        assert!(!hasher.verify(&code("012346"), phc.clone()).await.unwrap());

        let other_pepper = CodeHasher::new("q".repeat(32).into(), &cheap(), &Metrics::new()).unwrap();
        assert!(!other_pepper.verify(&code("012345"), phc).await.unwrap());
    }

    #[tokio::test]
    async fn each_hash_has_its_own_salt() {
        let hasher = CodeHasher::new("p".repeat(32).into(), &cheap(), &Metrics::new()).unwrap();
        let a = hasher.hash(&code("111111")).await.unwrap();
        let b = hasher.hash(&code("111111")).await.unwrap();
        assert_ne!(a, b);
    }
}
