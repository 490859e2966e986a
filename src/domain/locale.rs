use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    Es,
    En,
    Pt,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::Es, Locale::En, Locale::Pt];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Es => "es",
            Locale::En => "en",
            Locale::Pt => "pt",
        }
    }

    /// The locale of a language tag by its language alone (`es-419`, `en-US`,
    /// `pt_BR`, `ES`); `None` for a language the service has no text in.
    pub fn of_language_tag(tag: &str) -> Option<Self> {
        let language = tag.split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.as_str() == language)
    }
}

impl FromStr for Locale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| "`locale` must be one of es, en, pt".to_owned())
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Locale;

    #[test]
    fn a_language_tag_is_read_by_its_language() {
        let table = [
            ("es", Some(Locale::Es)),
            ("es-419", Some(Locale::Es)),
            ("es_MX", Some(Locale::Es)),
            ("en-US", Some(Locale::En)),
            ("EN-gb", Some(Locale::En)),
            ("pt-BR", Some(Locale::Pt)),
            ("pt", Some(Locale::Pt)),
            ("fr", None),
            ("zh-HK", None),
            ("", None),
            ("esp", None),
        ];
        for (tag, expected) in table {
            assert_eq!(Locale::of_language_tag(tag), expected, "{tag}");
        }
    }
}
