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

    /// The text carries the code, so it is a secret from here on.
    pub fn render(&self, locale: Locale, code: &OtpCode, lifetime: Duration) -> SecretString {
        let template = match locale {
            Locale::Es => &self.es,
            Locale::En => &self.en,
            Locale::Pt => &self.pt,
        };
        let minutes = lifetime.as_secs().div_ceil(60).to_string();
        template
            .replace("{minutes}", &minutes)
            .replace("{code}", code.expose())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::domain::CodeLength;

    #[test]
    fn spanish_default_is_exactly_the_spec_text() {
        let code = OtpCode::parse("004217", CodeLength::default()).unwrap();
        let text = Templates::default().render(Locale::Es, &code, Duration::from_secs(600));
        assert_eq!(
            text.expose_secret(),
            "Tu código de verificación es *004217*. Por tu seguridad, no lo compartas"
        );
    }

    #[test]
    fn custom_templates_fill_minutes() {
        let templates = Templates {
            en: "{code} valid {minutes} min".into(),
            ..Templates::default()
        };
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        let text = templates.render(Locale::En, &code, Duration::from_secs(300));
        assert_eq!(text.expose_secret(), "123456 valid 5 min");
    }
}
