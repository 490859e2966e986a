use std::fmt;

use rand::rngs::SysRng;
use rand::{RngExt, rand_core::UnwrapErr};
use secrecy::{ExposeSecret, SecretString};

/// How many digits a code has: 4 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(u8);

impl CodeLength {
    pub fn new(digits: u8) -> Result<Self, String> {
        if (4..=10).contains(&digits) {
            Ok(Self(digits))
        } else {
            Err(format!("code length must be 4 to 10 digits, not {digits}"))
        }
    }

    pub fn digits(self) -> usize {
        self.0 as usize
    }
}

impl Default for CodeLength {
    fn default() -> Self {
        Self(6)
    }
}

/// A one-time code. Its Debug never shows the digits; reading them takes
/// `expose()`, which only the hasher and the message template call.
pub struct OtpCode(SecretString);

impl OtpCode {
    /// Draws from the operating system's CSPRNG, uniform over every digit
    /// string of the length (leading zeros included): `random_range` rejects
    /// samples instead of reducing them modulo 10^n, so there is no bias.
    pub fn generate(length: CodeLength) -> Self {
        let bound = 10u64.pow(length.0 as u32);
        let value = UnwrapErr(SysRng).random_range(0..bound);
        Self(format!("{value:0width$}", width = length.digits()).into())
    }

    /// A code typed back by a person: exactly `length` ASCII digits.
    pub fn parse(raw: &str, length: CodeLength) -> Option<Self> {
        (raw.len() == length.digits() && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(raw.to_owned().into()))
    }

    /// A code typed back whose length is not known here: 4 to 10 ASCII digits.
    pub fn parse_any_length(raw: &str) -> Option<Self> {
        CodeLength::new(u8::try_from(raw.len()).ok()?)
            .ok()
            .and_then(|length| Self::parse(raw, length))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_length_and_only_digits() {
        for digits in 4..=10 {
            let length = CodeLength::new(digits).unwrap();
            for _ in 0..50 {
                let code = OtpCode::generate(length);
                assert_eq!(code.expose().len(), digits as usize);
                assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn every_digit_appears_in_every_position() {
        // Leading zeros must be possible: a code is a digit string, not a number.
        let length = CodeLength::new(4).unwrap();
        let mut seen = [[false; 10]; 4];
        for _ in 0..2_000 {
            for (pos, b) in OtpCode::generate(length).expose().bytes().enumerate() {
                seen[pos][(b - b'0') as usize] = true;
            }
        }
        assert!(seen.iter().all(|row| row.iter().all(|s| *s)));
    }

    #[test]
    fn parse_takes_exactly_the_configured_digits() {
        let six = CodeLength::default();
        assert!(OtpCode::parse("012345", six).is_some());
        for bad in ["12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦"] {
            assert!(OtpCode::parse(bad, six).is_none(), "{bad}");
        }
        assert!(CodeLength::new(3).is_err() && CodeLength::new(11).is_err());
    }

    #[test]
    fn debug_hides_the_digits() {
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        assert!(!format!("{code:?}").contains("123456"));
    }
}
