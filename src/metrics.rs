//! Prometheus metrics, one registry per application (tests run several apps in
//! one process). Labels are routes, statuses, error codes, answer classes,
//! client names (few, chosen by operators) and gateway key names: never a
//! phone number, a code or an id.
//!
//! Counters count what this replica did; the gauges read from PostgreSQL at
//! scrape time (outbox, keys), so every replica reports the shared truth.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub verifications: IntCounterVec,
    pub verify_outcomes: IntCounterVec,
    pub messages: IntCounterVec,
    pub request_refusals: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub fraud_flags: IntCounterVec,
    pub delivery_duration: HistogramVec,
    pub hash_duration: HistogramVec,
    pub client_cache_drops: IntCounter,
    pub client_cache_listening: IntGauge,
    pub scraped: Scraped,
}

/// The gauges `GET /metrics` sets as it answers: the outbox and the keys as
/// the database has them, and this replica's connections.
#[derive(Clone)]
pub struct Scraped {
    pub outbox_depth: IntGauge,
    pub client_queued: IntGaugeVec,
    pub outbox_oldest_age: Gauge,
    pub sender_state: IntGaugeVec,
    pub sender_sent_last_minute: IntGaugeVec,
    pub db_connections: IntGaugeVec,
    pub database_up: IntGauge,
}

/// Latency buckets from 1 ms to about 16 s.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 15).expect("valid buckets")
}

/// Makes metrics and registers each, once, in one registry.
struct Registrar(Registry);

impl Registrar {
    fn add<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let metric = metric.expect("a valid metric");
        self.0
            .register(Box::new(metric.clone()))
            .expect("a metric registered once");
        metric
    }

    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn histogram(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        self.add(HistogramVec::new(
            HistogramOpts::new(name, help).buckets(latency_buckets()),
            labels,
        ))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registrar(Registry::new());
        Self {
            http_requests: r.counter(
                "otp_http_requests_total",
                "HTTP requests answered, by route pattern, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: r.histogram(
                "otp_http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern and method.",
                &["route", "method"],
            ),
            verifications: r.counter(
                "otp_verifications_total",
                "Verification events by client: created, resent, approved, failed (undeliverable), expired, locked (max attempts), canceled.",
                &["client", "event"],
            ),
            verify_outcomes: r.counter(
                "otp_verify_outcomes_total",
                "Answers to POST /otp/verify by client and outcome: approved, or the error code.",
                &["client", "code"],
            ),
            messages: r.counter(
                "otp_messages_total",
                "Delivery attempts by client, result (sent, retried, given_up) and the gateway's answer class.",
                &["client", "result", "class"],
            ),
            request_refusals: r.counter(
                "otp_request_refusals_total",
                "POST /otp/request answered with an error, by client, error code and, for rate_limited, reason: suspected_fraud or the window (phone_sends, phone_sends_all_clients, end_user_ip, client_requests, verification_sends); empty for other codes.",
                &["client", "code", "reason"],
            ),
            webhook_deliveries: r.counter(
                "otp_webhook_deliveries_total",
                "Webhook delivery attempts by client and outcome: delivered, failed (tried again later), given_up, or disabled (the endpoint, after a day of failures).",
                &["client", "outcome"],
            ),
            fraud_flags: r.counter(
                "otp_fraud_flags_total",
                "Fraud flags raised by this replica's detector, by the client whose traffic raised it, rule (unverified_day, unverified_day_all_clients, low_conversion_hour, ip_countries) and country.",
                &["client", "rule", "country"],
            ),
            delivery_duration: r.add(HistogramVec::new(
                HistogramOpts::new(
                    "otp_delivery_duration_seconds",
                    "From a message queued (the request, or its resend) to the gateway's acceptance, by client.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
                &["client"],
            )),
            hash_duration: r.histogram(
                "otp_hash_duration_seconds",
                "argon2id work: hashing a new code, or checking one, including the wait for a hashing slot.",
                &["op"],
            ),
            client_cache_drops: r.add(IntCounter::new(
                "otp_client_cache_drops_total",
                "Times this replica forgot the clients it held in memory: a change told by PostgreSQL, or its listening connection lost or regained.",
            )),
            client_cache_listening: r.add(IntGauge::new(
                "otp_client_cache_listening",
                "1 while this replica hears of client changes and so authenticates from memory; 0 while it reads clients per request.",
            )),
            scraped: Scraped::new(&r),
            registry: r.0,
        }
    }

    pub fn verification(&self, client: &str, event: &str) {
        self.verifications.with_label_values(&[client, event]).inc();
    }

    pub fn verifications_by(&self, client: &str, event: &str, n: u64) {
        self.verifications.with_label_values(&[client, event]).inc_by(n);
    }

    pub fn message(&self, client: &str, result: &str, class: &str) {
        self.messages.with_label_values(&[client, result, class]).inc();
    }

    pub fn webhook(&self, client: &str, outcome: &str) {
        self.webhook_deliveries
            .with_label_values(&[client, outcome])
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("metrics encode");
        String::from_utf8(buffer).expect("metrics are UTF-8")
    }
}

impl Scraped {
    fn new(r: &Registrar) -> Self {
        Self {
            outbox_depth: r.add(IntGauge::new(
                "otp_outbox_depth",
                "Messages queued for delivery (due or not).",
            )),
            client_queued: r.gauges(
                "otp_client_queued_messages",
                "Messages queued for delivery by client, across replicas.",
                &["client"],
            ),
            outbox_oldest_age: r.add(Gauge::new(
                "otp_outbox_oldest_age_seconds",
                "Age of the oldest queued message; 0 when the queue is empty.",
            )),
            sender_state: r.gauges(
                "otp_sender_state",
                "1 for each gateway key's current state (ok, backing_off, session_ended, unauthorized).",
                &["sender", "state"],
            ),
            sender_sent_last_minute: r.gauges(
                "otp_sender_sent_last_minute",
                "Messages handed to each gateway key in the last minute, across replicas.",
                &["sender"],
            ),
            db_connections: r.gauges(
                "otp_db_pool_connections",
                "Database pool connections by state (in_use, idle, max).",
                &["state"],
            ),
            database_up: r.add(IntGauge::new(
                "otp_database_up",
                "1 when PostgreSQL answered this scrape's reads within 2 s, else 0.",
            )),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
