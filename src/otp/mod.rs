//! The verification rules: request (and resend), verify, cancel.

mod hasher;
mod service;
mod verification;

pub use hasher::CodeHasher;
pub use service::{NewVerification, OtpService, Policy, VerifyTarget};
pub use verification::Verification;
