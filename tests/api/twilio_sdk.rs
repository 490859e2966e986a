//! The official Twilio SDKs drive `/twilio` as an app using Twilio Verify
//! would, after changing only its credentials and base URL: twilio-python
//! (tests/twilio_sdk/flow.py) and twilio-node (flow.mjs) run the whole flow
//! against the service and its fake gateway, as child processes. The SDKs are
//! installed under the build directory by `.ci/twilio-sdk-setup`, which these
//! tests run themselves (quick once installed). When it cannot install them
//! (no python3-venv, no node, no registry), they say `skipped` and pass on a
//! laptop, but fail under CI (`CI` set, as `.ci/run` sets it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, admin_app, json_of};
use crate::helpers::*;

/// Small, so that the flow reaches the limits in a few calls.
const MAX_ATTEMPTS: u32 = 3;
const MAX_SENDS: u32 = 2;

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    Node,
}

impl Sdk {
    fn part(self) -> &'static str {
        match self {
            Sdk::Python => "python",
            Sdk::Node => "node",
        }
    }

    /// The command that runs this SDK's flow.
    fn command(self, installed: &Path) -> tokio::process::Command {
        let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twilio_sdk");
        match self {
            Sdk::Python => {
                let mut command = tokio::process::Command::new(installed.join("python/bin/python"));
                command.arg(flows.join("flow.py"));
                command
            }
            Sdk::Node => {
                let mut command = tokio::process::Command::new("node");
                command
                    .arg(flows.join("flow.mjs"))
                    .env("SDK_FLOW_NODE_DIR", installed.join("node"));
                command
            }
        }
    }
}

/// Where `.ci/twilio-sdk-setup` installs: `twilio-sdk/` in the directory
/// cargo builds into (the binary's profile directory's parent).
fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_otp-service"));
    binary.parent().and_then(Path::parent).unwrap().to_owned()
}

/// Installs the SDK if it is missing; `Err` with what the setup said when it could not.
async fn install(sdk: Sdk) -> Result<PathBuf, String> {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/twilio-sdk-setup");
    let run = tokio::process::Command::new("bash")
        .arg(setup)
        .arg(sdk.part())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(300), run).await {
        Ok(Ok(out)) if out.status.success() => Ok(target_dir().join("twilio-sdk")),
        Ok(Ok(out)) => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(Err(e)) => Err(format!("could not run bash: {e}")),
        Err(_) => Err("it took over 300 s".to_owned()),
    }
}

/// What to do when the setup failed: skip (`Ok(None)`), or, under CI, fail.
fn decide(installed: Result<PathBuf, String>, sdk: Sdk, ci: bool) -> Result<Option<PathBuf>, String> {
    match installed {
        Ok(dir) => Ok(Some(dir)),
        Err(why) if ci => Err(format!(
            "the {} Twilio SDK could not be installed, and CI is set: this test cannot \
             pass without it. `.ci/twilio-sdk-setup {}` said:\n{why}",
            sdk.part(),
            sdk.part()
        )),
        Err(_) => Ok(None),
    }
}

#[test]
fn without_the_sdk_a_ci_run_fails_instead_of_skipping() {
    let dir = PathBuf::from("target/twilio-sdk");
    assert!(
        decide(Err("no npm".into()), Sdk::Node, true)
            .unwrap_err()
            .contains("no npm")
    );
    assert_eq!(decide(Err("no npm".into()), Sdk::Node, false), Ok(None));
    assert_eq!(decide(Ok(dir.clone()), Sdk::Python, true), Ok(Some(dir.clone())));
    assert_eq!(decide(Ok(dir.clone()), Sdk::Python, false), Ok(Some(dir)));
}

/// The two clients' SIDs and keys, A set up for the flow's limits and `sms`.
async fn two_clients(app: &TestApp) -> Vec<(String, String)> {
    let changed = admin(app, Method::PATCH, "/clients/test-client")
        .json(&json!({
            "max_attempts": MAX_ATTEMPTS,
            "max_sends": MAX_SENDS,
            "resend_cooldown_seconds": 0,
            "sms_as_whatsapp": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());
    let created = json_of(
        admin(app, Method::POST, "/clients").json(&json!({"name": "other"})),
        201,
    )
    .await;
    let mut vars = Vec::new();
    for (letter, name, key) in [
        ("A", "test-client", app.api_key.as_str()),
        ("B", "other", created["key"].as_str().unwrap()),
    ] {
        let shown: Value = json_of(admin(app, Method::GET, &format!("/clients/{name}")), 200).await;
        for (var, field) in [
            ("ACCOUNT_SID", "twilio_account_sid"),
            ("SERVICE_SID", "twilio_service_sid"),
        ] {
            let sid = shown[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} of {name}: {shown}"));
            vars.push((format!("SDK_FLOW_{letter}_{var}"), sid.to_owned()));
        }
        vars.push((format!("SDK_FLOW_{letter}_KEY"), key.to_owned()));
    }
    vars
}

async fn run_flow(sdk: Sdk) {
    let installed = decide(install(sdk).await, sdk, in_ci()).unwrap_or_else(|refusal| panic!("{refusal}"));
    let Some(installed) = installed else {
        eprintln!(
            "skipped: the {} Twilio SDK could not be installed by .ci/twilio-sdk-setup \
             (under CI this test fails instead)",
            sdk.part()
        );
        return;
    };
    let app = admin_app().await;
    let mut command = sdk.command(&installed);
    // Only the base URL decides where the SDK goes: no region, edge or proxy.
    for (name, _) in std::env::vars() {
        if name.starts_with("TWILIO_") || name.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(name);
        }
    }
    command
        .envs(two_clients(&app).await)
        .env("SDK_FLOW_BASE_URL", format!("{}/twilio", app.address))
        .env(
            "SDK_FLOW_INBOX_URL",
            format!("{}/fake/messages", app.settings.gateway.base_url),
        )
        .env("SDK_FLOW_PHONE_PREFIX", "+591696000")
        .env("SDK_FLOW_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string())
        .env("SDK_FLOW_MAX_SENDS", MAX_SENDS.to_string())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .unwrap_or_else(|_| panic!("the {} flow took over 180 s", sdk.part()))
        .unwrap_or_else(|e| panic!("the {} flow did not start: {e}", sdk.part()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("the whole flow passed"),
        "the {} flow failed ({}):\n{stdout}\n{stderr}",
        sdk.part(),
        out.status
    );
    println!("{stdout}");
}

#[tokio::test]
async fn twilio_python_runs_the_whole_flow() {
    run_flow(Sdk::Python).await;
}

#[tokio::test]
async fn twilio_node_runs_the_whole_flow() {
    run_flow(Sdk::Node).await;
}
