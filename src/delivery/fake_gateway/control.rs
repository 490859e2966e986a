//! What `serve --dev` lets a developer change in its built-in gateway
//! (`/dev/gateway`), to try the failure paths: a number not on WhatsApp, a
//! session that ended, an outage, a slow gateway.

use std::time::Duration;

use serde::Serialize;

use super::FakeGateway;

/// The fake's failure switches, as `/dev/gateway` shows them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Switches {
    /// Every send answers `503 Service Unavailable`.
    pub down: bool,
    /// Every send answers `400 Session has ended`, as when the phone behind
    /// the key logged out of WhatsApp.
    pub session_ended: bool,
    /// Every send it takes is answered this many milliseconds late.
    pub delay_ms: u64,
    /// Numbers (digits, E.164 without `+`) answered `400 Invalid phone
    /// number`, as a number not on WhatsApp is.
    pub rejected_numbers: Vec<String>,
}

impl FakeGateway {
    /// The gateway will send `number` (digits only) again.
    pub fn accept_number(&self, number: &str) {
        self.lock().rejected_numbers.remove(number);
    }

    /// Every send it takes is answered `delay` late (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The first key's session ended, or linked again.
    pub fn set_sessions_ended(&self, ended: bool) {
        for sender in 0..self.keys.len() {
            self.set_session_ended(sender, ended);
        }
    }

    pub fn switches(&self) -> Switches {
        let state = self.lock();
        let mut rejected_numbers: Vec<String> = state.rejected_numbers.iter().cloned().collect();
        rejected_numbers.sort();
        Switches {
            down: state.down,
            session_ended: !state.ended.is_empty(),
            delay_ms: state.delay.as_millis() as u64,
            rejected_numbers,
        }
    }

    /// Everything back to a gateway that delivers at once.
    pub fn reset_switches(&self) {
        let mut state = self.lock();
        state.down = false;
        state.ended.clear();
        state.delay = Duration::ZERO;
        state.rejected_numbers.clear();
    }
}
