//! The dashboard and the alerting rules shipped in `ops/` name only metrics
//! the service exports, and the dashboard shows every one it exports.
//! (`promtool check rules` and `promtool test rules` check the rules' PromQL
//! and what fires when: see `.ci/run`.)

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::webhook_receiver::Receiver;

const DASHBOARD: &str = "ops/grafana/otp-service.json";
const RULES: &str = "ops/prometheus/otp-service-rules.yml";

/// Metrics the dashboard and the rules may name before the service exports
/// them: none now.
const NOT_YET_EXPORTED: &[&str] = &[];

fn read(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every identifier starting `otp_` in a PromQL expression (metric names;
/// label values are quoted and sit after `=`, so none of them starts a word
/// with `otp_`).
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut rest = expr;
    let mut previous: Option<char> = None;
    while let Some(at) = rest.find("otp_") {
        let before = rest[..at].chars().next_back().or(previous);
        let end = rest[at..]
            .find(|c: char| !is_ident(c))
            .map_or(rest.len(), |n| at + n);
        let inside_a_word = before.is_some_and(is_ident);
        let quoted = before == Some('"');
        if !inside_a_word && !quoted {
            into.insert(rest[at..end].to_owned());
        }
        previous = rest[..end].chars().next_back();
        rest = &rest[end..];
    }
}

/// The panels, rows' panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner);
        }
    }
    all
}

/// The PromQL of every panel's targets and every query variable.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(
                target["expr"]
                    .as_str()
                    .expect("every target has an expr")
                    .to_owned(),
            );
        }
    }
    for variable in dashboard["templating"]["list"].as_array().expect("templating") {
        if variable["type"] == "query" {
            let query = &variable["query"];
            let text = query["query"]
                .as_str()
                .or(query.as_str())
                .expect("a variable's query");
            exprs.push(text.to_owned());
        }
    }
    exprs
}

/// The value of every `expr:` key of the rules file, plain or a block scalar
/// (`>-`, `|`) running over the lines indented deeper than the key.
fn rule_expressions(rules: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = rules.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with(['>', '|']) {
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .copied()
                .collect();
            exprs.push(block.join("\n"));
        } else {
            exprs.push(value.trim_matches(['"', '\'']).to_owned());
        }
    }
    exprs
}

/// The metric families `/metrics` names, with their types.
fn exported_families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

/// Whether `name` is an exported family, or a histogram's `_bucket`, `_sum`
/// or `_count` series.
fn is_exported(name: &str, families: &[(String, String)]) -> bool {
    families.iter().any(|(family, kind)| {
        family == name
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)))
    })
}

#[test]
fn metric_names_are_read_from_promql() {
    let mut names = BTreeSet::new();
    metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(otp_hash_duration_seconds_bucket[5m]))) / max(otp_outbox_depth{client="otp_x"}) and nototp_y"#,
        &mut names,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["otp_hash_duration_seconds_bucket", "otp_outbox_depth"]
    );
    let rules = "      - alert: A\n        expr: >-\n          sum(otp_a)\n          unless\n          otp_b\n        for: 1m\n      - alert: B\n        expr: otp_c > 0\n";
    assert_eq!(
        rule_expressions(rules),
        [
            "          sum(otp_a)\n          unless\n          otp_b",
            "otp_c > 0"
        ]
    );
}

#[test]
fn the_dashboard_is_importable_as_is() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    assert_eq!(dashboard["uid"], "otp-service");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("a variable {name}"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    assert_eq!(
        variable("client")["query"]["query"],
        "label_values(otp_verifications_total, client)"
    );
    assert_eq!(variable("rate_limit")["current"]["value"], "30");

    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: ids are unique"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title} fits the grid"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            ["timeseries", "stat"].contains(&panel["type"].as_str().unwrap()),
            "{title}"
        );
        assert_eq!(panel["datasource"], datasource, "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
            assert!(!target["expr"].as_str().unwrap().trim().is_empty(), "{title}");
        }
    }
}

#[test]
fn every_alert_has_a_duration_a_severity_and_words() {
    let rules = read(RULES);
    let alerts: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert!(alerts.len() >= 11, "the alerts docs/operations.md recommends");
    for alert in alerts {
        let name = alert.lines().next().unwrap();
        for key in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(alert.contains(key), "{name} has {key}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_and_the_rules_name_only_exported_metrics() {
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.fraud.check_seconds = 0.1;
    })
    .await;

    // Every labelled series shows only once it has a value: a webhook, a
    // request, a wrong and a right code, a refusal, a delivery, a fraud flag
    // (an end user asking for numbers of four countries).
    let receiver = Receiver::start(&[]);
    crate::webhooks::webhook_for(&app, "test-client", &receiver).await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap().to_owned();
    let code = app.last_code_to(PHONE_DIGITS);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(app.verify(json!({"id": id, "code": wrong})).await.status(), 422);
    assert_eq!(app.verify(json!({"id": id, "code": code})).await.status(), 200);
    let refused = app.request_code(json!({"phone": "not a phone"})).await;
    assert!(refused.status().is_client_error());
    for phone in ["+51987654321", "+5491123456789", "+34612345678", "+59169600001"] {
        let answer = app
            .request_code(json!({"phone": phone, "end_user_ip": "203.0.113.7"}))
            .await;
        assert_eq!(answer.status(), 202);
    }
    app.wait_for("a fraud flag counted", Duration::from_secs(10), || async {
        metric(&app, "otp_fraud_flags_total").await > 0.0
    })
    .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    app.wait_for("a webhook counted", Duration::from_secs(10), || async {
        metric(&app, "otp_webhook_deliveries_total").await > 0.0
    })
    .await;
    let families = exported_families(&metrics_text(&app).await);
    assert!(
        families
            .iter()
            .any(|(name, _)| name == "otp_request_refusals_total")
    );

    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut on_dashboard = BTreeSet::new();
    for expr in dashboard_expressions(&dashboard) {
        metric_names(&expr, &mut on_dashboard);
    }
    let mut in_rules = BTreeSet::new();
    for expr in rule_expressions(&read(RULES)) {
        metric_names(&expr, &mut in_rules);
    }
    assert!(in_rules.contains("otp_outbox_oldest_age_seconds") && in_rules.contains("otp_database_up"));

    for (source, names) in [(DASHBOARD, &on_dashboard), (RULES, &in_rules)] {
        let unknown: Vec<&String> = names
            .iter()
            .filter(|name| !is_exported(name, &families) && !NOT_YET_EXPORTED.contains(&name.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{source} names metrics /metrics does not export: {unknown:?}"
        );
    }
    for name in NOT_YET_EXPORTED {
        assert!(
            !is_exported(name, &families),
            "{name} is exported now: remove it from NOT_YET_EXPORTED"
        );
    }

    // And the other way: a metric the service exports has a panel.
    let missing: Vec<&String> = families
        .iter()
        .filter(|family| {
            let one = std::slice::from_ref(*family);
            !on_dashboard.iter().any(|name| is_exported(name, one))
        })
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("otp_"))
        .collect();
    assert!(missing.is_empty(), "{DASHBOARD} has no panel for {missing:?}");
}
