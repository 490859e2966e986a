//! otp-service: one-time codes over WhatsApp, to prove a person controls a phone number.
//!
//! The modules, from the bottom up; each names only its own layer and those
//! below it, and no modules form a circle (`tests/layering.rs` checks both).

// Bottom layers: types without I/O, what every layer shares, and the secrets at work.
pub mod crypto;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod tasks;

// Settings, a leaf: parsed from flags, environment and file; read by the services and above.
pub mod config;

// Store: every table and statement, and the replica's one LISTEN connection; takes
// windows, timeouts and limits as parameters.
pub mod store;

// Services: the rules, and the background loops that serve them.
pub mod access;
pub mod clients;
pub mod delivery;
pub mod dev_key;
pub mod fraud;
pub mod operations;
pub mod otp;
pub mod retention;
pub mod stats;
pub mod webhooks;

// Edges: the HTTP API, the command line, and the logs they set up.
pub mod cli;
pub mod http;
pub mod telemetry;

// Wiring: builds the service from its settings and starts it.
pub mod startup;
