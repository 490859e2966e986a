//! Getting codes to phones: the outbox, the dispatcher that drains it, the
//! Waconecta client, and a fake Waconecta for development and tests.

mod dispatcher;
pub mod fake_gateway;
pub mod gateway;
pub mod outbox;
mod templates;

pub use dispatcher::{Delivery, Sender, SenderState, backoff};
pub use templates::Templates;
