//! `clients set`'s flags and `clients show`'s printout, one of each per
//! setting of the table in `domain::client_settings`.

use clap::{Args, ValueEnum};
use phonenumber::country::Id as CountryId;
use secrecy::SecretString;

use crate::clients::ClientRecord;
use crate::config::PolicySettings;
use crate::domain::setting_kinds::{self as kinds, Kind};
use crate::domain::{Change, CodeLength, Locale, SettingsChange, for_each_client_setting};

macro_rules! settings_flags {
    (
        []
        $(
            $(#[doc = $doc:literal])*
            $field:ident ($variant:ident): $kind:ident [$($raw:tt)+] => [$($shown:tt)+] {
                check: $check:expr,
                fallback: $fallback:expr,
                schema: ($($schema:tt)*),
                view: ($($view:tt)*),
                effective: ($($effective:tt)*),
                flag: ($($flag:tt)*),
            }
        )*
    ) => {
        #[derive(Debug, Args)]
        pub struct SetArgs {
            pub(super) name: String,
            $(
                $($flag)*
                #[arg(long)]
                $field: Option<$($raw)+>,
            )*
            /// Where the client's webhooks go (https; see OTP_WEBHOOK_ALLOW_*). Its
            /// first signing secret is printed once. `--unset webhook-url` stops them.
            /// A new URL, or none, gives up the events still waiting for the old one.
            #[arg(long)]
            pub(super) webhook_url: Option<String>,
            /// A setting to give back to the service's default (repeatable).
            #[arg(long, value_enum)]
            pub(super) unset: Vec<Field>,
            /// The service's OTP_PEPPER: needed with --webhook-url, to seal the signing secret
            /// (not against a `serve --dev` database); another pepper is refused.
            #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", hide_env_values = true)]
            pub(super) pepper: Option<SecretString>,
        }

        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub(super) enum Field {
            $($variant,)*
            WebhookUrl,
        }

        impl SetArgs {
            /// The settings part of the flags, not yet checked.
            pub(super) fn change(self) -> SettingsChange {
                SettingsChange {
                    $($field: pick(
                        &self.unset,
                        Field::$variant,
                        self.$field.map(<kinds::$kind as Flag>::from_flag),
                    ),)*
                }
            }
        }

        /// Every setting the client gets, and whether it is its own or the default.
        pub(super) fn print_settings(record: &ClientRecord, policy: &PolicySettings) {
            let own = &record.settings;
            let effective = own.effective(&record.name, &crate::clients::defaults(policy));
            let state = match record.revoked_at {
                Some(t) => format!("revoked {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                None => "active".into(),
            };
            println!("client `{}` ({state})", record.name);
            // What a Twilio SDK is given under /twilio: user name and service.
            println!("  {:<24} {}", "twilio_account_sid", record.twilio_account_sid);
            println!("  {:<24} {}", "twilio_service_sid", record.twilio_service_sid);
            $(println!(
                "{}",
                line(
                    stringify!($field),
                    <kinds::$kind as Flag>::printed(&effective.$field),
                    own.$field.is_some(),
                )
            );)*
        }
    };
}

for_each_client_setting!(settings_flags);

/// A flag given is set, a flag named by `--unset` is cleared, the rest kept.
fn pick<T>(unset: &[Field], field: Field, value: Option<T>) -> Change<T> {
    match value {
        Some(v) => Change::Set(v),
        None if unset.contains(&field) => Change::Clear,
        None => Change::Keep,
    }
}

/// A line of `clients show`.
fn line(field: &str, value: String, own: bool) -> String {
    format!("  {field:<24} {value}{}", if own { "" } else { "  (default)" })
}

/// How the command line reads and prints a setting of each kind.
trait Flag: Kind {
    fn from_flag(raw: Self::Raw) -> Self::Raw {
        raw
    }
    fn printed(value: &Self::Value) -> String;
}

impl Flag for kinds::Count {
    fn printed(value: &u32) -> String {
        value.to_string()
    }
}

impl Flag for kinds::Digits {
    fn printed(value: &CodeLength) -> String {
        value.digits().to_string()
    }
}

impl Flag for kinds::Name {
    fn printed(value: &String) -> String {
        value.clone()
    }
}

impl Flag for kinds::Template {
    /// Quoted, so that line breaks show.
    fn printed(value: &String) -> String {
        format!("{value:?}")
    }
}

impl Flag for kinds::Countries {
    /// `--allowed-countries ""` is the empty list: every country.
    fn from_flag(raw: Vec<String>) -> Vec<String> {
        raw.into_iter().filter(|c| !c.trim().is_empty()).collect()
    }
    fn printed(value: &Vec<CountryId>) -> String {
        match value.as_slice() {
            [] => "every country".to_owned(),
            list => list.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(","),
        }
    }
}

impl Flag for kinds::Switch {
    fn printed(value: &bool) -> String {
        value.to_string()
    }
}

impl Flag for kinds::Lang {
    fn printed(value: &Locale) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Set {
        #[command(flatten)]
        args: SetArgs,
    }

    fn flags(args: &[&str]) -> SettingsChange {
        let all = ["set", "shop"].iter().chain(args);
        Set::try_parse_from(all).unwrap().args.change()
    }

    #[test]
    fn flags_set_unset_and_keep() {
        let change = flags(&[
            "--max-queued",
            "5",
            "--unset",
            "ttl-seconds",
            "--template-en",
            "{code}",
            "--allowed-countries",
            "bo,PE",
        ]);
        assert_eq!(change.max_queued, Change::Set(5));
        assert_eq!(change.ttl_seconds, Change::Clear);
        assert_eq!(change.template_en, Change::Set("{code}".into()));
        assert_eq!(
            change.allowed_countries,
            Change::Set(vec!["bo".into(), "PE".into()])
        );
        assert_eq!(change.share, Change::Keep);
        assert_eq!(change.display_name, Change::Keep);
    }

    #[test]
    fn sms_as_whatsapp_takes_true_or_false() {
        assert_eq!(
            flags(&["--sms-as-whatsapp", "true"]).sms_as_whatsapp,
            Change::Set(true)
        );
        assert_eq!(
            flags(&["--sms-as-whatsapp", "false"]).sms_as_whatsapp,
            Change::Set(false)
        );
        assert_eq!(
            flags(&["--unset", "sms-as-whatsapp"]).sms_as_whatsapp,
            Change::Clear
        );
        assert!(Set::try_parse_from(["set", "shop", "--sms-as-whatsapp", "yes please"]).is_err());
    }

    #[test]
    fn an_empty_country_list_is_every_country() {
        assert_eq!(
            flags(&["--allowed-countries", ""]).allowed_countries,
            Change::Set(Vec::new())
        );
    }

    #[test]
    fn a_flag_that_is_no_setting_is_refused() {
        assert!(Set::try_parse_from(["set", "shop", "--unset", "colour"]).is_err());
        assert!(Set::try_parse_from(["set", "shop", "--max-queued", "many"]).is_err());
    }

    #[test]
    fn the_printout_says_what_is_default() {
        assert_eq!(
            line("resend_cooldown_seconds", "30".into(), false),
            "  resend_cooldown_seconds  30  (default)"
        );
        assert_eq!(line("share", "2".into(), true), "  share                    2");
        assert_eq!(kinds::Countries::printed(&Vec::new()), "every country");
        assert_eq!(
            kinds::Countries::printed(&vec![CountryId::BO, CountryId::PE]),
            "BO,PE"
        );
        assert_eq!(
            kinds::Template::printed(&"{code}\nbye".into()),
            r#""{code}\nbye""#
        );
        assert_eq!(kinds::Digits::printed(&CodeLength::new(8).unwrap()), "8");
        assert_eq!(kinds::Lang::printed(&Locale::Pt), "pt");
    }
}
