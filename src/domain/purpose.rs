/// What a code is for; a code for one purpose never verifies another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err("`purpose` must match [a-z0-9_.-]{1,64}".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Purpose {
    fn default() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_only() {
        assert!(Purpose::parse("signup").is_ok());
        assert!(Purpose::parse("login.2fa_v-1").is_ok());
        assert!(Purpose::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Signup", "sign up", "ñ", &"a".repeat(65)] {
            assert!(Purpose::parse(bad).is_err(), "{bad}");
        }
    }
}
