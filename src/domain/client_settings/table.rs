//! The one declaration of every client setting. Each layer that names the
//! settings (the structs and their check here, the HTTP bodies and their
//! OpenAPI schema, the CLI's flags and printout) is generated from this table
//! by a macro of its own, so adding a setting is one entry here (plus its
//! column in the store, and its service-wide default in `Defaults` if it has one).
//!
//! An entry, in the order the API and `clients show` list them:
//! - doc: what the setting is, for the HTTP body and its schema;
//! - `name (Variant): Kind [raw] => [shown]`: the field, its `--unset` value,
//!   its kind (see `kinds`), the type a change gives and the type the API shows;
//! - `check`: `(field, raw, allow_weak) -> Result<value, FieldError>`;
//! - `fallback`: `(client name, defaults) -> value`, for what the client leaves unset;
//! - `schema`: the OpenAPI attributes of the body field besides its type;
//! - `view`: attributes of the field where the API shows it (own and effective);
//! - `effective`: further attributes of the effective field;
//! - `flag`: attributes of the CLI flag (its help).

/// Calls `$then! { [pass] entries }`, with the tokens given in `{ … }`
/// passed through first.
macro_rules! for_each_client_setting {
    ($then:ident $({ $($pass:tt)* })?) => {
        $then! {
            [$($($pass)*)?]

            /// What `{app}` stands for in the message; by default the client's name. 1 to 64 characters.
            display_name (DisplayName): Name [String] => [String] {
                check: |field, name, _| display_name(field, name),
                fallback: |name, _| name.to_owned(),
                schema: (example = "Tienda Sol"),
                view: (),
                effective: (),
                flag: (#[doc = " `{app}` in its messages (default: the client's name)."]),
            }
            /// Weight in the gateway's fair share between clients, 1 to 1000; by default 1.
            share (Share): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 1..=1000),
                fallback: |_, _| 1,
                schema: (minimum = 1, maximum = 1000, example = 2),
                view: (),
                effective: (),
                flag: (#[doc = " Weight in the gateway's fair share (1 to 1000; default 1)."]),
            }
            /// Messages the client may have waiting in the queue, 1 to 1000000.
            max_queued (MaxQueued): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 1..=1_000_000),
                fallback: |_, defaults| defaults.max_queued,
                schema: (minimum = 1, maximum = 1000000),
                view: (),
                effective: (),
                flag: (#[doc = " Messages it may have waiting for the gateway (default: OTP_CLIENT_MAX_QUEUED)."]),
            }
            /// Calls a minute under `/otp`, at least 1; by default `OTP_CLIENT_REQUESTS_PER_MINUTE`.
            requests_per_minute (RequestsPerMinute): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 1..=i32::MAX as i64),
                fallback: |_, defaults| defaults.requests_per_minute,
                schema: (minimum = 1, maximum = 2147483647, example = 600),
                view: (),
                effective: (),
                flag: (),
            }
            /// Digits of a code, 6 to 10 (4 and 5 too with `OTP_ALLOW_WEAK_CODES`).
            code_length (CodeLength): Digits [i64] => [u32] {
                check: |field, n, weak| code_length(field, n, weak),
                fallback: |_, defaults| defaults.code_length,
                schema: (example = 8),
                view: (),
                effective: (),
                flag: (),
            }
            /// Lifetime of a code, 30 to 600 s (up to 86400 with `OTP_ALLOW_WEAK_CODES`).
            ttl_seconds (TtlSeconds): Count [i64] => [u32] {
                check: ttl,
                fallback: |_, defaults| defaults.ttl_seconds,
                schema: (example = 300),
                view: (),
                effective: (),
                flag: (),
            }
            /// Wrong codes per verification, 1 to 100.
            max_attempts (MaxAttempts): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 1..=100),
                fallback: |_, defaults| defaults.max_attempts,
                schema: (minimum = 1, maximum = 100),
                view: (),
                effective: (),
                flag: (#[doc = " Wrong codes allowed per verification."]),
            }
            /// Seconds between two sends of a verification, 0 to 3600.
            resend_cooldown_seconds (ResendCooldownSeconds): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 0..=3600),
                fallback: |_, defaults| defaults.resend_cooldown_seconds,
                schema: (minimum = 0, maximum = 3600),
                view: (),
                effective: (),
                flag: (),
            }
            /// Sends per verification, 1 to 100.
            max_sends (MaxSends): Count [i64] => [u32] {
                check: |field, n, _| within(field, n, 1..=100),
                fallback: |_, defaults| defaults.max_sends,
                schema: (minimum = 1, maximum = 100),
                view: (),
                effective: (),
                flag: (#[doc = " Sends per verification."]),
            }
            /// ISO 3166-1 alpha-2 codes of the countries whose numbers it may ask
            /// codes for; an empty list is every country.
            allowed_countries (AllowedCountries): Countries [Vec<String>] => [Vec<String>] {
                check: |field, list, _| countries(field, list),
                fallback: |_, defaults| defaults.allowed_countries.clone(),
                schema: (example = json!(["BO", "PE"])),
                view: (#[doc = " Empty: every country."]),
                effective: (),
                flag: (
                    /// Comma-separated ISO 3166-1 codes; "" allows every country.
                    #[arg(value_delimiter = ',')]
                ),
            }
            /// `es`, `en` or `pt`, for requests that name no locale.
            default_locale (DefaultLocale): Lang [String] => [String] {
                check: |field, locale, _| language(field, locale),
                fallback: |_, defaults| defaults.default_locale,
                schema: (example = "es"),
                view: (),
                effective: (#[doc = " `es`, `en` or `pt`."]),
                flag: (),
            }
            /// The Spanish message: must contain `{code}`; may use `{minutes}` and `{app}`.
            template_es (TemplateEs): Template [String] => [String] {
                check: |field, text, _| template(field, text),
                fallback: |_, defaults| defaults.templates[0].clone(),
                schema: (example = "{app}: tu código es *{code}*"),
                view: (),
                // The API shows the effective templates together, as `templates`:
                // skipped (and unread) one by one.
                effective: (#[serde(skip)] #[allow(dead_code)]),
                flag: (#[doc = " Must contain {code}; may use {minutes} and {app}."]),
            }
            /// The English message, as `template_es`.
            template_en (TemplateEn): Template [String] => [String] {
                check: |field, text, _| template(field, text),
                fallback: |_, defaults| defaults.templates[1].clone(),
                schema: (),
                view: (),
                effective: (#[serde(skip)] #[allow(dead_code)]),
                flag: (),
            }
            /// The Portuguese message, as `template_es`.
            template_pt (TemplatePt): Template [String] => [String] {
                check: |field, text, _| template(field, text),
                fallback: |_, defaults| defaults.templates[2].clone(),
                schema: (),
                view: (),
                effective: (#[serde(skip)] #[allow(dead_code)]),
                flag: (),
            }
            /// Whether a request through `/twilio` for the `sms` channel is sent over
            /// WhatsApp (the only channel there is); by default false: it is refused.
            sms_as_whatsapp (SmsAsWhatsapp): Switch [bool] => [bool] {
                check: |_, on, _| Ok(on),
                fallback: |_, _| false,
                schema: (example = true),
                view: (),
                effective: (),
                flag: (#[doc = " Send the Twilio surface's `sms` requests over WhatsApp (true or false; default false)."]),
            }
        }
    };
}
pub(crate) use for_each_client_setting;
