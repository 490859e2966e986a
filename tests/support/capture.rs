//! What the service logs, captured for the log tests. Each such test is a
//! binary of its own, since the log subscriber is global.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use otp_service::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the JSON subscriber at `filter`, writing here.
    pub fn install(filter: &str) -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        otp_service::telemetry::init_with_filter(LogFormat::Json, EnvFilter::new(filter), move || {
            writer.clone()
        });
        captured
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn text(&self) -> String {
        self.text_since(0)
    }

    /// What was written after `offset` bytes.
    pub fn text_since(&self, offset: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[offset..]).into_owned()
    }
}
