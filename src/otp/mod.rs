//! The verification rules: request (and resend), verify, cancel.

mod hasher;
pub mod idempotency;
pub mod limits;
mod service;
mod verification;

pub use hasher::CodeHasher;
pub use limits::LimitSettings;
pub use service::{NewVerification, OtpService, Policy, VerifyTarget};
pub use verification::Verification;
