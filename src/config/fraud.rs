//! Fraud detection settings.

use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct FraudSettings {
    /// `off`, `record` (flag, log and count) or `enforce` (also refuse what a flag matches).
    #[arg(long = "fraud-mode", env = "OTP_FRAUD_MODE", value_name = "OTP_FRAUD_MODE", value_enum, default_value_t = FraudMode::Record)]
    pub mode: FraudMode,

    /// Seconds between two counts of the fraud rules (0.1 to 3600).
    #[arg(
        long = "fraud-check-seconds",
        env = "OTP_FRAUD_CHECK_SECONDS",
        value_name = "OTP_FRAUD_CHECK_SECONDS",
        default_value_t = 30.0
    )]
    pub check_seconds: f64,
}

/// What the detector's flags do (`OTP_FRAUD_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FraudMode {
    /// No detection (manual blocks still refuse).
    Off,
    /// Flags are raised, logged and counted; nothing is refused for them.
    #[default]
    Record,
    /// Also, a client's requests matching one of its own flags are refused.
    Enforce,
}

impl FraudSettings {
    pub fn every(&self) -> Duration {
        Duration::from_secs_f64(self.check_seconds.clamp(0.1, 3600.0))
    }
}
