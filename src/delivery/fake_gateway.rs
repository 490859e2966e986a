//! A fake Waconecta gateway that follows docs/waconecta.md: the answer envelope,
//! `401 No autorizado`, `400 Invalid phone number`, `400 Session has ended`,
//! `429` past the per-key rate, and `503` on demand. It keeps what it accepted,
//! so development and tests can read the codes it "delivered".

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

mod control;
mod handlers;
mod qr;
pub use control::Switches;
pub use qr::{DEV_QR_TEXT, QrFormat, qr_png, qr_svg};

/// A message the fake accepted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FakeMessage {
    pub id: String,
    /// Which of the fake's keys sent it (0-based).
    pub sender: usize,
    pub number: String,
    pub message: String,
    pub received_at: DateTime<Utc>,
}

/// Every call, answered or not, for tests that look at timing and retries.
#[derive(Debug, Clone)]
pub struct FakeCall {
    pub sender: Option<usize>,
    pub number: String,
    pub status: u16,
    pub at: Instant,
}

/// An answer the fake gives to the next calls, in order, before anything else.
#[derive(Debug, Clone)]
pub enum Scripted {
    Unavailable,
    ServerError,
    TooManyRequests {
        retry_after: Option<u64>,
    },
    /// Answers normally, but only after this long.
    Delay(Duration),
    /// Any answer in the envelope (`403 Forbidden`, `400 Session has ended`...),
    /// given after `after`.
    Answer {
        status: u16,
        message: &'static str,
        after: Duration,
    },
}

#[derive(Clone)]
pub struct FakeGateway {
    keys: Arc<Vec<String>>,
    rate_per_minute: usize,
    state: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    accepted: Vec<FakeMessage>,
    calls: Vec<FakeCall>,
    sent_at: HashMap<usize, VecDeque<Instant>>,
    ended: HashSet<usize>,
    rejected_numbers: HashSet<String>,
    script: VecDeque<Scripted>,
    /// Answers every send with 503 while set, as during a gateway outage.
    down: bool,
    /// How late every answer comes (`/dev/gateway`'s slow gateway).
    delay: Duration,
    /// Sends that arrived, answered yet or not.
    received: usize,
    qr_format: QrFormat,
}

enum Verdict {
    /// An error answer, with the `Retry-After` seconds to send (429s only).
    Answer(StatusCode, &'static str, Option<u64>),
    DelayThenAccept(Duration),
    DelayThenAnswer(Duration, StatusCode, &'static str),
}

impl FakeState {
    /// The answer to a known key's send, in the order the gateway checks:
    /// its rate, an outage, the script, then the session and the number.
    fn verdict(&mut self, rate_per_minute: usize, sender: usize, number: &str, message: &str) -> Verdict {
        if let Some(wait) = self.rate_wait(rate_per_minute, sender) {
            return Verdict::Answer(StatusCode::TOO_MANY_REQUESTS, RATE_MESSAGE, Some(wait));
        }
        if self.down {
            return Verdict::Answer(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", None);
        }
        let verdict = match self.script.pop_front() {
            Some(Scripted::Unavailable) => {
                Verdict::Answer(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", None)
            }
            Some(Scripted::ServerError) => {
                Verdict::Answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", None)
            }
            Some(Scripted::TooManyRequests { retry_after }) => {
                Verdict::Answer(StatusCode::TOO_MANY_REQUESTS, RATE_MESSAGE, retry_after)
            }
            Some(Scripted::Delay(d)) => Verdict::DelayThenAccept(d),
            Some(Scripted::Answer {
                status,
                message,
                after,
            }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                return Verdict::DelayThenAnswer(after, status, message);
            }
            None => Verdict::DelayThenAccept(self.delay),
        };
        if let Verdict::Answer(..) = verdict {
            return verdict;
        }
        if self.ended.contains(&sender) {
            return Verdict::Answer(StatusCode::BAD_REQUEST, "Session has ended", None);
        }
        let plausible = (8..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
        if !plausible || self.rejected_numbers.contains(number) || message.is_empty() {
            return Verdict::Answer(StatusCode::BAD_REQUEST, "Invalid phone number", None);
        }
        verdict
    }

    /// The seconds until `sender` may send again, when its last minute is full.
    fn rate_wait(&mut self, rate_per_minute: usize, sender: usize) -> Option<u64> {
        let window = self.sent_at.entry(sender).or_default();
        while window
            .front()
            .is_some_and(|t| t.elapsed() >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        // Retry when the oldest message of the window leaves it.
        (window.len() >= rate_per_minute)
            .then(|| window.front().map_or(60, |t| 60 - t.elapsed().as_secs().min(59)))
    }
}

impl FakeGateway {
    pub fn new(keys: Vec<String>, rate_per_minute: u32) -> Self {
        Self {
            keys: Arc::new(keys),
            rate_per_minute: rate_per_minute as usize,
            state: Arc::new(Mutex::new(FakeState::default())),
        }
    }

    pub fn messages(&self) -> Vec<FakeMessage> {
        self.lock().accepted.clone()
    }

    /// How many sends have arrived, including those still waiting for their answer.
    pub fn received(&self) -> usize {
        self.lock().received
    }

    pub fn calls(&self) -> Vec<FakeCall> {
        self.lock().calls.clone()
    }

    /// The newest accepted message to `number` (digits only).
    pub fn last_message_to(&self, number: &str) -> Option<FakeMessage> {
        self.lock()
            .accepted
            .iter()
            .rev()
            .find(|m| m.number == number)
            .cloned()
    }

    pub fn set_session_ended(&self, sender: usize, ended: bool) {
        let mut state = self.lock();
        if ended {
            state.ended.insert(sender);
        } else {
            state.ended.remove(&sender);
        }
    }

    /// The gateway will answer `Invalid phone number` for this number.
    pub fn reject_number(&self, number: &str) {
        self.lock().rejected_numbers.insert(number.to_owned());
    }

    /// A gateway outage: every send gets `503` until it is over.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    pub fn set_qr_format(&self, format: QrFormat) {
        self.lock().qr_format = format;
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.lock().script.extend(answers);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake gateway state")
    }

    /// Which key called (`None`: an unknown one), the number, and the answer.
    fn judge(&self, key: Option<&str>, body: &Value) -> (Option<usize>, String, Verdict) {
        let number = match body.get("number") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let sender = key.and_then(|k| self.keys.iter().position(|known| known == k));
        let Some(sender) = sender else {
            return (
                None,
                number,
                Verdict::Answer(StatusCode::UNAUTHORIZED, "No autorizado", None),
            );
        };
        let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
        let verdict = self
            .lock()
            .verdict(self.rate_per_minute, sender, &number, message);
        (Some(sender), number, verdict)
    }

    fn accept(&self, sender: usize, number: String, message: String) -> Value {
        let mut state = self.lock();
        state.sent_at.entry(sender).or_default().push_back(Instant::now());
        let id = format!("FAKE{:012X}", state.accepted.len() + 1);
        let now = Utc::now();
        state.accepted.push(FakeMessage {
            id: id.clone(),
            sender,
            number: number.clone(),
            message: message.clone(),
            received_at: now,
        });
        json!({
            "key": { "remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": true, "id": id },
            "message": { "extendedTextMessage": { "text": message } },
            "messageTimestamp": now.timestamp().to_string(),
            "status": "PENDING"
        })
    }

    fn record(&self, sender: Option<usize>, number: String, status: StatusCode) {
        self.lock().calls.push(FakeCall {
            sender,
            number,
            status: status.as_u16(),
            at: Instant::now(),
        });
    }
}

const RATE_MESSAGE: &str = "You can only send 30 messages per minute";
