//! The abuse limits (docs/api.md): sends and failed codes per (client, phone),
//! requests per (client, end-user IP) and per client, and sends per phone
//! across all clients. The client's window is a GCRA row (`otp::rate`); each
//! of the others is a sliding window kept in PostgreSQL
//! (`limit_hits`, taken by `take_limit_slot`), so every replica shares it and
//! a slot is taken atomically: parallel requests can never get past it.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgExecutor;

use super::rate::RateWindow;
use crate::clients::Client;
use crate::domain::PhoneNumber;
use crate::error::{Error, Result, Window};
use crate::store::limits;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The longest window: what `limit_hits` must keep.
pub const LONGEST_WINDOW: Duration = DAY;

/// The configured size of each limit.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub phone_sends_per_hour: u32,
    /// Sends per phone per hour whatever the client: the person's and the gateway's protection.
    pub phone_sends_per_hour_all_clients: u32,
    pub phone_failures_per_hour: u32,
    pub phone_failures_per_day: u32,
    pub ip_requests_per_hour: u32,
    /// For clients without a limit of their own.
    pub client_requests_per_minute: u32,
}

/// One window: what is counted, how many fit, over how long.
pub struct Bucket {
    key: String,
    max_hits: u32,
    span: Duration,
    refusal: String,
    /// Filled by other clients too: its refusal says nothing precise about them.
    shared: bool,
}

impl LimitSettings {
    /// A client's own window on a phone: another client's sends do not count.
    pub fn phone_sends(&self, client: &Client, phone: &PhoneNumber) -> Bucket {
        Bucket::own(
            format!("phone-sends:{}:{}", client.id, phone.as_e164()),
            self.phone_sends_per_hour,
            HOUR,
            "too many codes have been sent to this phone number in the last hour",
        )
    }

    /// Every client's sends to a phone. Its refusal says only that there were
    /// too many, rounded to the minute, so one client cannot time another's.
    pub fn phone_sends_all_clients(&self, phone: &PhoneNumber) -> Bucket {
        Bucket {
            shared: true,
            ..Bucket::own(
                format!("phone-sends-all:{}", phone.as_e164()),
                self.phone_sends_per_hour_all_clients,
                HOUR,
                "too many codes have been sent to this phone number",
            )
        }
    }

    /// The hourly window and the daily cap (NIST SP 800-63B's bound on guesses
    /// across all of a phone's verifications), per (client, phone): two
    /// windows of one bucket, so a failure is one row that both count. The
    /// bucket is named by what comes before the phone: the statement that
    /// reserves an attempt appends the phone of the verification it reads.
    pub fn phone_failures_before_phone(&self, client: &Client) -> [Bucket; 2] {
        [
            Bucket::own(
                format!("wrong-codes:{}:", client.id),
                self.phone_failures_per_hour,
                HOUR,
                "too many wrong codes have been entered for this phone number in the last hour; \
                 no code is checked for it until then",
            ),
            Bucket::own(
                format!("wrong-codes:{}:", client.id),
                self.phone_failures_per_day,
                DAY,
                "too many wrong codes have been entered for this phone number today; \
                 no code is checked for it until then",
            ),
        ]
    }

    pub fn end_user_ip(&self, client: &Client, ip: IpAddr) -> Bucket {
        Bucket::own(
            format!("ip:{}:{}", client.id, network(ip)),
            self.ip_requests_per_hour,
            HOUR,
            &format!(
                "this end-user IP address has made the {} requests allowed in an hour",
                self.ip_requests_per_hour
            ),
        )
    }

    /// The client's own requests per minute: a GCRA window spent from memory
    /// (`otp::rate`), so a flood over it is refused without a statement each.
    pub fn client(&self, client: &Client) -> RateWindow {
        let max_hits = client
            .settings
            .requests_per_minute
            .unwrap_or(self.client_requests_per_minute);
        RateWindow {
            key: format!("client:{}", client.id),
            max_hits,
            span: MINUTE,
            refusal: format!("this client has made the {max_hits} requests allowed in a minute"),
        }
    }
}

/// Wrong admin keys from one source address: 10 a minute, then a wrong key
/// from there gets `429` instead of `401`. Only wrong keys are counted and
/// refused: the right one always passes (see `Access::admin`).
pub fn admin_failures(source: Option<IpAddr>) -> Bucket {
    Bucket::own(
        format!("admin-failures:{}", source.map_or("unknown".into(), network)),
        10,
        MINUTE,
        "too many wrong admin keys from this address; the right key is still accepted",
    )
}

pub use crate::domain::network;

pub use crate::store::limits::HitId as Hit;

impl Bucket {
    fn own(key: String, max_hits: u32, span: Duration, refusal: &str) -> Self {
        Self {
            key,
            max_hits,
            span,
            refusal: refusal.to_owned(),
            shared: false,
        }
    }

    /// Takes a slot, or answers `429 rate_limited` with the seconds until one frees.
    /// In a transaction, the slot counts only if the transaction commits.
    #[tracing::instrument(skip_all, fields(bucket = self.kind()))]
    pub async fn take(&self, db: impl PgExecutor<'_>) -> Result<Hit> {
        limits::take(db, &self.key, self.max_hits, self.span)
            .await?
            .map_err(|seconds| self.refused(seconds))
    }

    /// A slot of each of `buckets`, in one statement, or the refusal of the
    /// first that is full. Slots taken before it stay taken: in a transaction
    /// that the refusal rolls back.
    pub async fn take_each(db: impl PgExecutor<'_>, buckets: &[&Bucket]) -> Result<Vec<Hit>> {
        let windows: Vec<_> = buckets.iter().map(|b| b.window()).collect();
        limits::take_each(db, &windows)
            .await?
            .map_err(|(n, seconds)| buckets[n].refused(seconds))
    }

    /// The window as the store takes it.
    pub fn window(&self) -> limits::Window<'_> {
        limits::Window {
            bucket: &self.key,
            max_hits: self.max_hits,
            span: self.span,
        }
    }

    /// The refusal of a full window that frees in `seconds`.
    pub fn refused(&self, seconds: f64) -> Error {
        Error::RateLimited {
            detail: format!("{}; try again later", self.refusal),
            retry_after: retry_after(seconds, self.shared),
            window: self.name(),
        }
    }

    /// The window, as `otp_request_refusals_total` names it: told by the
    /// bucket's kind, the start of its key.
    fn name(&self) -> Window {
        match self.kind() {
            "phone-sends" => Window::PhoneSends,
            "phone-sends-all" => Window::PhoneSendsAllClients,
            "ip" => Window::EndUserIp,
            "wrong-codes" => Window::WrongCodes,
            "admin-failures" => Window::AdminFailures,
            other => unreachable!("a bucket of an unnamed kind: {other}"),
        }
    }

    /// The kind of limit, for logs: never the phone or the IP.
    fn kind(&self) -> &str {
        self.key.split(':').next().unwrap_or_default()
    }
}

/// Rounded up, so a caller that waits exactly this long is let in; to the
/// minute for a window other clients fill.
fn retry_after(seconds: f64, shared: bool) -> u64 {
    let seconds = seconds.ceil().max(1.0) as u64;
    if shared {
        seconds.div_ceil(60) * 60
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_names_its_window() {
        let settings = LimitSettings {
            phone_sends_per_hour: 1,
            phone_sends_per_hour_all_clients: 1,
            phone_failures_per_hour: 1,
            phone_failures_per_day: 1,
            ip_requests_per_hour: 1,
            client_requests_per_minute: 1,
        };
        let client = Client {
            id: crate::domain::ClientId::new(),
            name: "shop".into(),
            created_at: chrono::Utc::now(),
            twilio: None,
            settings: Default::default(),
        };
        let phone = PhoneNumber::parse("+59169657008", None).unwrap();
        let ip = "203.0.113.7".parse().unwrap();
        let [hour, day] = settings.phone_failures_before_phone(&client);
        for (bucket, window) in [
            (settings.phone_sends(&client, &phone), Window::PhoneSends),
            (
                settings.phone_sends_all_clients(&phone),
                Window::PhoneSendsAllClients,
            ),
            (settings.end_user_ip(&client, ip), Window::EndUserIp),
            (hour, Window::WrongCodes),
            (day, Window::WrongCodes),
            (admin_failures(Some(ip)), Window::AdminFailures),
        ] {
            let refused = bucket.refused(1.0);
            assert!(
                matches!(refused, Error::RateLimited { window: w, .. } if w == window),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_shared_window_tells_the_wait_to_the_minute_only() {
        assert_eq!(retry_after(0.2, false), 1);
        assert_eq!(retry_after(61.5, false), 62);
        assert_eq!(retry_after(0.2, true), 60);
        assert_eq!(retry_after(60.0, true), 60);
        assert_eq!(retry_after(61.5, true), 120);
    }
}
