//! Getting codes to phones: the dispatcher that drains the outbox (stored by
//! `store::outbox`), the gateway keys and their shared rate limit, the
//! Waconecta client, and a fake Waconecta for development and tests.

mod dispatcher;
pub mod estimate;
pub mod fair;
pub mod fake_gateway;
pub mod gateway;
pub mod plan;
mod recent;
pub mod senders;
mod templates;

pub use dispatcher::Delivery;
pub use senders::{Sender, SenderState, SenderStatus, Senders};
pub use templates::{Templates, render};
