//! What value parsers cannot check: lengths of secrets (whose parser errors
//! would print them), NIST's bounds on codes, the gateway's scheme, and what
//! production requires.

use secrecy::{ExposeSecret, SecretString};

use super::{MIN_SECRET_LEN, Settings};

impl Settings {
    /// Checks the secrets' lengths here rather than in their value parsers,
    /// whose error messages would print the rejected secret.
    pub fn check_secrets(&self) -> Result<(), String> {
        let long_enough = |name: &str, secret: &SecretString| {
            let len = secret.expose_secret().len();
            if len < MIN_SECRET_LEN {
                Err(format!(
                    "{name} must be at least {MIN_SECRET_LEN} bytes; it has {len}"
                ))
            } else {
                Ok(())
            }
        };
        if let Some(p) = &self.pepper {
            long_enough("OTP_PEPPER", p)?;
        }
        for p in self.previous_peppers.iter().flat_map(|l| &l.0) {
            long_enough("each of OTP_PREVIOUS_PEPPERS", p)?;
        }
        if let Some(k) = &self.admin_key {
            long_enough("OTP_ADMIN_KEY", k)?;
        }
        Ok(())
    }

    /// NIST SP 800-63B: at least 6 digits, and a code that lives at most 10
    /// minutes, unless the operator says otherwise. Returns the warning to log
    /// when weaker codes are allowed.
    pub fn check_code_strength(&self) -> Result<Option<String>, String> {
        let weak = self.policy.code_length.digits() < 6 || self.policy.ttl_seconds > 600;
        match (weak, self.policy.allow_weak_codes) {
            (false, _) => Ok(None),
            (true, true) => Ok(Some(format!(
                "OTP_ALLOW_WEAK_CODES: codes of {} digits living {} s are weaker than NIST SP 800-63B asks (at least 6 digits, at most 600 s)",
                self.policy.code_length.digits(),
                self.policy.ttl_seconds
            ))),
            (true, false) => Err(format!(
                "OTP_CODE_LENGTH must be at least 6 and OTP_TTL_SECONDS at most 600 (NIST SP 800-63B); they are {} and {}. Set OTP_ALLOW_WEAK_CODES=true to allow weaker codes",
                self.policy.code_length.digits(),
                self.policy.ttl_seconds
            )),
        }
    }

    /// The gateway gets keys and codes: only over HTTPS, but for a gateway on
    /// this machine (a fake one, or a local proxy).
    pub fn check_gateway_url(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.gateway.base_url)
            .map_err(|_| "WACONECTA_BASE_URL is not a valid URL".to_owned())?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => Ok(()),
            "http" if loopback => Ok(()),
            _ => Err("WACONECTA_BASE_URL must be an https:// URL (plain http only to this machine)".into()),
        }
    }

    /// Checks what a value parser cannot: settings required outside --dev.
    pub fn check_production(&self) -> Result<(), String> {
        if self.pepper.is_none() {
            return Err(
                "OTP_PEPPER is required (at least 32 bytes); only `serve --dev` runs without it".into(),
            );
        }
        self.check_secrets()?;
        self.check_gateway_url()?;
        let keys = self.gateway.api_keys.as_ref().map_or(0, |k| k.0.len());
        if keys == 0 {
            return Err("WACONECTA_API_KEYS is required: at least one gateway key; only `serve --dev` runs without it".into());
        }
        if let Some(tokens) = &self.gateway.container_tokens
            && tokens.0.len() != keys
        {
            return Err(format!(
                "WACONECTA_CONTAINER_TOKENS has {} tokens but WACONECTA_API_KEYS has {keys} keys; give one token per key, in the same order",
                tokens.0.len()
            ));
        }
        Ok(())
    }
}
