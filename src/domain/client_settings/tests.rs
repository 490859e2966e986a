use super::*;

#[test]
fn a_change_sets_clears_and_keeps() {
    let current = ClientSettings {
        ttl_seconds: Some(300),
        max_sends: Some(3),
        ..Default::default()
    };
    let change = SettingsChange {
        ttl_seconds: Change::Clear,
        code_length: Change::Set(8),
        allowed_countries: Change::Set(vec!["bo".into(), "PE".into()]),
        ..Default::default()
    };
    let next = change.apply(&current, false).unwrap();
    assert_eq!(next.ttl_seconds, None);
    assert_eq!(next.max_sends, Some(3));
    assert_eq!(next.code_length, Some(CodeLength::new(8).unwrap()));
    assert_eq!(next.allowed_countries, Some(vec![CountryId::BO, CountryId::PE]));
}

#[test]
fn a_bad_field_is_named() {
    let refused = |change: SettingsChange| change.apply(&ClientSettings::default(), false).unwrap_err().field;
    let share = SettingsChange {
        share: Change::Set(0),
        ..Default::default()
    };
    assert_eq!(refused(share), "share");
    let countries = SettingsChange {
        allowed_countries: Change::Set(vec!["BO".into(), "XX".into()]),
        ..Default::default()
    };
    assert_eq!(refused(countries), "allowed_countries");
    let locale = SettingsChange {
        default_locale: Change::Set("fr".into()),
        ..Default::default()
    };
    assert_eq!(refused(locale), "default_locale");
    let name = SettingsChange {
        display_name: Change::Set(" ".into()),
        ..Default::default()
    };
    assert_eq!(refused(name), "display_name");
}

#[test]
fn weak_codes_need_the_operators_consent() {
    let short = || SettingsChange {
        code_length: Change::Set(4),
        ..Default::default()
    };
    let refused = short().apply(&ClientSettings::default(), false).unwrap_err();
    assert_eq!(refused.field, "code_length");
    assert!(
        refused.detail.contains("not 4") && refused.detail.contains("OTP_ALLOW_WEAK_CODES=true"),
        "the refusal names the way out: {refused}"
    );
    assert!(short().apply(&ClientSettings::default(), true).is_ok());
    let long = || SettingsChange {
        ttl_seconds: Change::Set(900),
        ..Default::default()
    };
    let refused = long().apply(&ClientSettings::default(), false).unwrap_err();
    assert_eq!(refused.field, "ttl_seconds");
    assert!(refused.detail.contains("OTP_ALLOW_WEAK_CODES=true"), "{refused}");
    assert!(long().apply(&ClientSettings::default(), true).is_ok());
}

#[test]
fn templates_carry_the_code_and_only_known_placeholders() {
    assert!(template("template_es", "{app}: {code} ({minutes} min)".into()).is_ok());
    assert!(template("template_es", "no code here".into()).is_err());
    let typo = template("template_es", "{code} vale {minutos} min".into()).unwrap_err();
    assert!(typo.detail.contains("{minutos}"), "{}", typo.detail);
    assert!(template("template_es", format!("{{code}}{}", "x".repeat(1000))).is_err());
    assert!(template("template_es", "{code}\n\nbye".into()).is_ok());
    assert!(template("template_es", "{code}\0".into()).is_err());
}

fn defaults() -> Defaults {
    Defaults {
        max_queued: 100,
        requests_per_minute: 300,
        code_length: CodeLength::new(6).unwrap(),
        ttl_seconds: 300,
        max_attempts: 5,
        resend_cooldown_seconds: 30,
        max_sends: 5,
        allowed_countries: vec![CountryId::BO],
        default_locale: Locale::Es,
        templates: ["es {code}".into(), "en {code}".into(), "pt {code}".into()],
    }
}

#[test]
fn what_a_client_leaves_unset_is_the_services() {
    let effective = ClientSettings::default().effective("shop", &defaults());
    assert_eq!(effective.display_name, "shop");
    assert_eq!(effective.share, 1);
    assert_eq!(effective.max_queued, 100);
    assert_eq!(effective.allowed_countries, vec![CountryId::BO]);
    assert_eq!(effective.template(Locale::En), "en {code}");
    let own = ClientSettings {
        max_queued: Some(7),
        allowed_countries: Some(Vec::new()),
        template_pt: Some("{code}!".into()),
        ..Default::default()
    };
    let effective = own.effective("shop", &defaults());
    assert_eq!(effective.max_queued, 7);
    assert_eq!(effective.allowed_countries, Vec::new());
    assert_eq!(effective.template(Locale::Pt), "{code}!");
    assert_eq!(effective.template(Locale::Es), "es {code}");
}

#[test]
fn each_number_is_checked_against_its_own_range() {
    let set = |change: SettingsChange| change.apply(&ClientSettings::default(), false);
    let queued = |n| SettingsChange {
        max_queued: Change::Set(n),
        ..Default::default()
    };
    assert_eq!(set(queued(1_000_000)).unwrap().max_queued, Some(1_000_000));
    let refused = set(queued(0)).unwrap_err();
    assert_eq!(refused.field, "max_queued");
    assert_eq!(refused.detail, "must be 1 to 1000000, not 0");
    let cooldown = SettingsChange {
        resend_cooldown_seconds: Change::Set(0),
        ..Default::default()
    };
    assert_eq!(set(cooldown).unwrap().resend_cooldown_seconds, Some(0));
}
