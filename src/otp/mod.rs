//! The verification rules: request (and resend), verify, cancel.

mod checked;
mod codes;
pub mod cooldowns;
mod end;
mod enqueue;
pub mod idempotency;
pub mod limits;
pub mod pepper_uses;
pub mod peppers_in_use;
pub mod rate;
mod request;
mod rules;
mod service;
mod terminal;
mod verification;
mod verify;

pub use checked::{Checked, WrongCode};
pub use limits::LimitSettings;
pub use pepper_uses::{PepperUses, Protected, pepper_uses};
pub use request::NewVerification;
pub use service::{OtpService, Policy, Sends, VerifyTarget};
pub use verification::Verification;
