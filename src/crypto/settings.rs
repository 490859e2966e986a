//! How hard the hasher works: argon2id's parameters and its threads, read
//! from the command line and the environment by `config`.

use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct HashSettings {
    /// argon2id memory, KiB (8 to 1048576).
    #[arg(
        long = "argon2-memory-kib",
        env = "OTP_ARGON2_MEMORY_KIB",
        value_name = "OTP_ARGON2_MEMORY_KIB",
        default_value_t = 19_456,
        value_parser = clap::value_parser!(u32).range(8..=1_048_576)
    )]
    pub memory_kib: u32,
    /// argon2id iterations (1 to 20).
    #[arg(
        long = "argon2-iterations",
        env = "OTP_ARGON2_ITERATIONS",
        value_name = "OTP_ARGON2_ITERATIONS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub iterations: u32,
    /// argon2id lanes (1 to 16).
    #[arg(
        long = "argon2-parallelism",
        env = "OTP_ARGON2_PARALLELISM",
        value_name = "OTP_ARGON2_PARALLELISM",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=16)
    )]
    pub parallelism: u32,
    /// Hashing threads, each with one argon2 buffer of its own; 0: one per core.
    #[arg(
        long = "hash-workers",
        env = "OTP_HASH_WORKERS",
        value_name = "OTP_HASH_WORKERS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=256)
    )]
    pub workers: u32,
    /// How long a request waits for a free hashing thread before `503 unavailable`, in ms.
    #[arg(
        long = "hash-wait-ms",
        env = "OTP_HASH_WAIT_MS",
        value_name = "OTP_HASH_WAIT_MS",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub wait_ms: u64,
}

impl HashSettings {
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        }
    }

    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }
}
