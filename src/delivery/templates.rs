use std::time::Duration;

use secrecy::SecretString;

use crate::config::PolicySettings;
use crate::domain::{Locale, OtpCode};

pub const DEFAULT_ES: &str = "Tu código de verificación es *{code}*. Por tu seguridad, no lo compartas";
pub const DEFAULT_EN: &str = "Your verification code is *{code}*. For your security, do not share it";
pub const DEFAULT_PT: &str = "Seu código de verificação é *{code}*. Por sua segurança, não o compartilhe";

/// The message text per locale; each contains `{code}` and may use `{minutes}`.
#[derive(Debug, Clone)]
pub struct Templates {
    es: String,
    en: String,
    pt: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            es: DEFAULT_ES.to_owned(),
            en: DEFAULT_EN.to_owned(),
            pt: DEFAULT_PT.to_owned(),
        }
    }
}

impl Templates {
    pub fn from_settings(policy: &PolicySettings) -> Self {
        let defaults = Self::default();
        Self {
            es: policy.template_es.clone().unwrap_or(defaults.es),
            en: policy.template_en.clone().unwrap_or(defaults.en),
            pt: policy.template_pt.clone().unwrap_or(defaults.pt),
        }
    }

    pub fn get(&self, locale: Locale) -> &str {
        match locale {
            Locale::Es => &self.es,
            Locale::En => &self.en,
            Locale::Pt => &self.pt,
        }
    }
}

/// The message: `template` filled in. The text carries the code, so it is a
/// secret from here on. The code goes in last, so a display name that says
/// `{code}` stays just text.
pub fn render(template: &str, code: &OtpCode, lifetime: Duration, app: &str) -> SecretString {
    let minutes = lifetime.as_secs().div_ceil(60).to_string();
    let mut text = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, len) = if after.starts_with("{code}") {
            (code.expose(), 6)
        } else if after.starts_with("{minutes}") {
            (minutes.as_str(), 9)
        } else if after.starts_with("{app}") {
            (app, 5)
        } else {
            ("{", 1)
        };
        text.push_str(value);
        rest = &after[len..];
    }
    text.push_str(rest);
    text.into()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::domain::CodeLength;

    #[test]
    fn spanish_default_is_exactly_the_spec_text() {
        let code = OtpCode::parse("004217", CodeLength::default()).unwrap();
        let text = render(
            Templates::default().get(Locale::Es),
            &code,
            Duration::from_secs(600),
            "app",
        );
        assert_eq!(
            text.expose_secret(),
            "Tu código de verificación es *004217*. Por tu seguridad, no lo compartas"
        );
    }

    #[test]
    fn custom_templates_fill_minutes_and_the_app() {
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        let text = render(
            "{app}: {code} valid {minutes} min",
            &code,
            Duration::from_secs(300),
            "Mi Tienda",
        );
        assert_eq!(text.expose_secret(), "Mi Tienda: 123456 valid 5 min");
    }

    #[test]
    fn a_display_name_is_never_read_as_a_placeholder() {
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        let text = render("{app} {code}", &code, Duration::from_secs(60), "{code}{minutes}");
        assert_eq!(text.expose_secret(), "{code}{minutes} 123456");
    }
}
