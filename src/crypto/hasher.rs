//! Keyed argon2id hashes of codes, made on a fixed set of worker threads.
//!
//! Each worker owns one block buffer (`m` KiB) for its whole life: argon2 at
//! m = 19 MiB on the blocking pool's many threads kept a freed buffer in each
//! thread's allocator arena, and memory grew to a gigabyte under load. Here
//! it stays at workers × m. A caller that cannot get a worker within
//! `wait` is told the service is busy (503) rather than queued without end.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, ParamsBuilder, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::pepper::{Pepper, Peppers};
use super::settings::HashSettings;
use crate::domain::OtpCode;
use crate::metrics::Metrics;

const OUTPUT_LEN: usize = 32;
/// Names the hashing threads, so that they can be counted.
pub const THREAD_PREFIX: &str = "otp-hash-";

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker stayed busy for the whole wait.
    #[error("no hashing worker was free in time")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct CodeHasher {
    inner: Arc<Inner>,
}

struct Inner {
    peppers: Peppers,
    /// The current cost, with the current pepper's id as `keyid`.
    params: Params,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// One per worker: a job is handed over only with a permit, so none waits
    /// in the channel, and the wait for a worker can be bounded.
    permits: Arc<Semaphore>,
    wait: Duration,
    duration: prometheus::HistogramVec,
}

impl CodeHasher {
    pub fn new(peppers: Peppers, settings: &HashSettings, metrics: &Metrics) -> Result<Self, String> {
        let params = ParamsBuilder::new()
            .m_cost(settings.memory_kib)
            .t_cost(settings.iterations)
            .p_cost(settings.parallelism)
            .output_len(OUTPUT_LEN)
            .keyid(argon2::KeyId::new(&peppers.current().id).map_err(|e| format!("argon2 key id: {e}"))?)
            .build()
            .map_err(|e| {
                format!("OTP_ARGON2_MEMORY_KIB / OTP_ARGON2_ITERATIONS / OTP_ARGON2_PARALLELISM: {e}")
            })?;
        let workers = settings.workers();
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("{THREAD_PREFIX}{i}"))
                .spawn(move || {
                    let mut buffer = vec![Block::default(); blocks];
                    // Ends when the hasher is dropped and the channel closes.
                    loop {
                        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(&mut buffer),
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                peppers,
                params,
                jobs: Mutex::new(sender),
                permits: Arc::new(Semaphore::new(workers)),
                wait: settings.wait(),
                duration: metrics.hash_duration.clone(),
            }),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=...,keyid=...$salt$hash`) of the code,
    /// with a fresh salt, under the current pepper.
    pub async fn hash(&self, code: &OtpCode) -> Result<String, HashError> {
        let code = SecretString::from(code.expose().to_owned());
        let inner = Arc::clone(&self.inner);
        self.run("hash", move |blocks| {
            let salt = argon2::password_hash::generate_salt();
            let pepper = inner.peppers.current();
            let out = compute(pepper, &inner.params, &code, &salt, OUTPUT_LEN, blocks)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&inner.params).map_err(failed)?,
                salt: Some(Salt::new(&salt).map_err(failed)?),
                hash: Some(Output::new(&out).map_err(failed)?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether the code matches the stored PHC string, under the pepper its
    /// `keyid` names; a hash without one (made before peppers had ids) is
    /// tried under each pepper. The comparison is constant-time (`Output`'s).
    pub async fn verify(&self, code: &OtpCode, phc: String) -> Result<bool, HashError> {
        let code = SecretString::from(code.expose().to_owned());
        let inner = Arc::clone(&self.inner);
        self.run("verify", move |blocks| {
            let stored = PasswordHash::new(&phc).map_err(failed)?;
            let params = Params::try_from(&stored).map_err(failed)?;
            let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
                return Err(HashError::Failed("the stored hash has no salt or output".into()));
            };
            let candidates: Vec<&Pepper> = if params.keyid().is_empty() {
                inner.peppers.all().iter().collect()
            } else {
                // A pepper no longer configured: the code cannot be checked, so it is wrong.
                inner.peppers.by_id(params.keyid()).into_iter().collect()
            };
            for pepper in candidates {
                let out = compute(pepper, &params, &code, salt, expected.len(), blocks)?;
                if Output::new(&out).map_err(failed)? == *expected {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn run<T, F>(&self, op: &str, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    {
        // Timed from before the wait for a worker: the latency a caller sees.
        let _timer = self.inner.duration.with_label_values(&[op]).start_timer();
        let permit: OwnedSemaphorePermit =
            tokio::time::timeout(self.inner.wait, Arc::clone(&self.inner.permits).acquire_owned())
                .await
                .map_err(|_| HashError::Busy)?
                .map_err(|_| HashError::Failed("the hasher is closed".into()))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |blocks| {
            let result = work(blocks);
            drop(permit);
            let _ = reply.send(result);
        });
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| HashError::Failed("the hashing workers stopped".into()))?;
        answer
            .await
            .map_err(|_| HashError::Failed("a hashing worker stopped".into()))?
    }
}

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError::Failed(format!("argon2: {e}"))
}

/// argon2id of the code under `pepper`, in the worker's own buffer (grown if a
/// stored hash asks for more memory than the current cost).
fn compute(
    pepper: &Pepper,
    params: &Params,
    code: &SecretString,
    salt: &[u8],
    output_len: usize,
    blocks: &mut Vec<Block>,
) -> Result<Vec<u8>, HashError> {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    let params = ParamsBuilder::new()
        .m_cost(params.m_cost())
        .t_cost(params.t_cost())
        .p_cost(params.p_cost())
        .output_len(output_len)
        .build()
        .map_err(failed)?;
    let argon = Argon2::new_with_secret(
        pepper.secret.expose_secret().as_bytes(),
        Algorithm::Argon2id,
        Version::V0x13,
        params,
    )
    .map_err(failed)?;
    let mut out = vec![0u8; output_len];
    argon
        .hash_password_into_with_memory(
            code.expose_secret().as_bytes(),
            salt,
            &mut out,
            &mut blocks[..needed],
        )
        .map_err(failed)?;
    Ok(out)
}

// The service's answer to a hash that could not be made.
impl From<HashError> for crate::error::Error {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => {
                tracing::warn!("every hashing worker stayed busy for the whole wait; answering 503");
                crate::error::Error::Unavailable { retry_after: 2 }
            }
            HashError::Failed(message) => crate::error::Error::Internal(anyhow::anyhow!(message)),
        }
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
            workers: 2,
            wait_ms: 5000,
        }
    }

    fn code(s: &str) -> OtpCode {
        OtpCode::parse(s, CodeLength::default()).unwrap()
    }

    fn peppers(current: &str, previous: &[&str]) -> Peppers {
        Peppers::new(
            current.repeat(32).into(),
            previous.iter().map(|p| p.repeat(32).into()).collect(),
        )
    }

    fn hasher(p: Peppers) -> CodeHasher {
        CodeHasher::new(p, &cheap(), &Metrics::new()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_only_with_the_same_code_and_pepper() {
        let hasher = hasher(peppers("p", &[]));
        let phc = hasher.hash(&code("012345")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1,keyid="), "{phc}");
        assert!(!phc.contains("012345"));
        assert!(hasher.verify(&code("012345"), phc.clone()).await.unwrap());
        assert!(!hasher.verify(&code("012346"), phc.clone()).await.unwrap());

        let other_pepper = self::hasher(peppers("q", &[]));
        assert!(!other_pepper.verify(&code("012345"), phc).await.unwrap());
    }

    #[tokio::test]
    async fn a_previous_pepper_still_verifies_what_it_made() {
        let before = hasher(peppers("p", &[]));
        let phc = before.hash(&code("012345")).await.unwrap();
        let rotated = hasher(peppers("q", &["p"]));
        assert!(rotated.verify(&code("012345"), phc.clone()).await.unwrap());
        assert!(!rotated.verify(&code("999999"), phc.clone()).await.unwrap());
        let new = rotated.hash(&code("012345")).await.unwrap();
        assert!(!before.verify(&code("012345"), new).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_before_key_ids_verify_under_any_configured_pepper() {
        // The PHC string argon2's own hasher made before peppers had ids.
        use argon2::password_hash::PasswordHasher;
        let legacy = Argon2::new_with_secret(
            "p".repeat(32).as_bytes(),
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .unwrap()
        .hash_password(b"012345")
        .unwrap()
        .to_string();
        assert!(!legacy.contains("keyid"));
        let rotated = hasher(peppers("q", &["p"]));
        assert!(rotated.verify(&code("012345"), legacy.clone()).await.unwrap());
        assert!(!rotated.verify(&code("012346"), legacy).await.unwrap());
    }

    #[tokio::test]
    async fn each_hash_has_its_own_salt() {
        let hasher = hasher(peppers("p", &[]));
        let a = hasher.hash(&code("111111")).await.unwrap();
        let b = hasher.hash(&code("111111")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_caller_that_finds_no_free_worker_in_time_is_told_so() {
        let settings = HashSettings {
            memory_kib: 65536,
            iterations: 4,
            workers: 1,
            wait_ms: 1,
            ..cheap()
        };
        let hasher = CodeHasher::new(peppers("p", &[]), &settings, &Metrics::new()).unwrap();
        let c = code("111111");
        let (a, b) = tokio::join!(hasher.hash(&c), hasher.hash(&c));
        assert!(
            matches!(
                (&a, &b),
                (Ok(_), Err(HashError::Busy)) | (Err(HashError::Busy), Ok(_))
            ),
            "{a:?} {b:?}"
        );
    }
}
