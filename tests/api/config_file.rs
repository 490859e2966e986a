//! `--config FILE`: between the defaults and the environment.

use std::process::Command;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");

fn write_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("otp-config-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

fn migrate(config: &std::path::Path, database_url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("the binary runs")
}

#[tokio::test]
async fn the_file_sets_what_the_environment_does_not() {
    let database = TestDatabase::create().await;
    let config = write_config(&format!("database_url = \"{}\"\n", database.url));
    let applied = migrate(&config, None);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(String::from_utf8_lossy(&applied.stdout).contains("migrations applied"));

    // The environment wins over the file.
    let elsewhere = migrate(&config, Some("postgres://postgres@127.0.0.1:1/nowhere"));
    assert!(!elsewhere.status.success(), "the environment's database was used");
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_broken_file_says_where_without_quoting_it() {
    let config = write_config("OTP_PEPPER = \"a-secret-never-to-be-printed\n");
    let output = migrate(&config, None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("not valid TOML (line 1)"), "{stderr}");
    assert!(!stderr.contains("a-secret"), "{stderr}");
    std::fs::remove_file(config).unwrap();
}
