use serde_json::json;

use super::*;
use crate::domain::Change;

#[test]
fn a_patch_keeps_clears_and_sets() {
    let patch: SettingsPatch = serde_json::from_value(json!({
        "max_queued": 5, "ttl_seconds": null, "allowed_countries": ["BO"], "webhook_url": null
    }))
    .unwrap();
    assert_eq!(patch.webhook_url, Some(None));
    let change = patch.settings_change();
    assert_eq!(change.max_queued, Change::Set(5));
    assert_eq!(change.ttl_seconds, Change::Clear);
    assert_eq!(change.allowed_countries, Change::Set(vec!["BO".into()]));
    assert_eq!(change.template_pt, Change::Keep);
}

#[test]
fn a_body_refuses_what_is_no_setting() {
    assert!(serde_json::from_value::<SettingsPatch>(json!({"max_queue": 5})).is_err());
    assert!(serde_json::from_value::<NewClient>(json!({"name": "shop", "webhook_url": null})).is_err());
    let new: NewClient = serde_json::from_value(json!({"name": "shop", "share": 2})).unwrap();
    assert_eq!(new.settings_change().share, Change::Set(2));
}

#[test]
fn the_views_show_own_settings_and_effective_ones() {
    let own = ClientSettings {
        code_length: Some(CodeLength::new(8).unwrap()),
        allowed_countries: Some(vec![CountryId::BO]),
        ..Default::default()
    };
    let shown = serde_json::to_value(OwnSettings::new(&own)).unwrap();
    assert_eq!(shown, json!({"code_length": 8, "allowed_countries": ["BO"]}));
    let defaults = crate::domain::Defaults {
        max_queued: 100,
        requests_per_minute: 300,
        code_length: CodeLength::new(6).unwrap(),
        ttl_seconds: 300,
        max_attempts: 5,
        resend_cooldown_seconds: 30,
        max_sends: 5,
        allowed_countries: Vec::new(),
        default_locale: Locale::Es,
        templates: ["es {code}".into(), "en {code}".into(), "pt {code}".into()],
    };
    let effective = serde_json::to_value(EffectiveSettings::new(&own.effective("shop", &defaults))).unwrap();
    assert_eq!(
        effective,
        json!({
            "display_name": "shop", "share": 1, "max_queued": 100, "requests_per_minute": 300,
            "code_length": 8, "ttl_seconds": 300, "max_attempts": 5, "resend_cooldown_seconds": 30,
            "max_sends": 5, "allowed_countries": ["BO"], "default_locale": "es",
            "sms_as_whatsapp": false,
            "templates": {"es": "es {code}", "en": "en {code}", "pt": "pt {code}"}
        })
    );
}
