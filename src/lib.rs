//! otp-service: one-time codes over WhatsApp, to prove a person controls a phone number.

pub mod access;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod dev_key;
pub mod domain;
pub mod error;
pub mod fraud;
pub mod http;
pub mod metrics;
pub mod operations;
pub mod otp;
pub mod retention;
pub mod startup;
pub mod stats;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod webhooks;
