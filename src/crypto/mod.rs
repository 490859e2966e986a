//! The service's secrets at work: the peppers, the argon2id hasher of codes
//! and test numbers, and the sealing of secrets kept in the database. Below
//! the store, which keeps what they produce, and the services, which use them.

pub mod hasher;
pub mod pepper;
mod sealing;
mod settings;

pub use hasher::{CodeHasher, HashError, THREAD_PREFIX as HASH_THREAD_PREFIX};
pub use pepper::{KeyId, Pepper, Peppers};
pub use sealing::Sealer;
pub use settings::HashSettings;
