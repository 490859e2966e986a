//! docs/configuration.md against `otp-service serve --help`: every variable
//! the service reads is on the page, and the page (like the README and the
//! other docs) names no variable the service does not read. A setting added,
//! renamed or removed without its documentation fails here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Variables the docs may name that are not the service's settings: read by
/// libraries or the shell, never by `serve`'s flags.
const NOT_SETTINGS: [&str; 6] = [
    "RUST_LOG",      // tracing's filter (OTP_LOG_FORMAT's row says so)
    "HTTP_PROXY",    // what webhooks ignore on purpose
    "HTTPS_PROXY",   //
    "ALL_PROXY",     //
    "XDG_DATA_HOME", // where `serve --dev` keeps its key
    "OTP_KEY",       // the shell variable `serve --dev` prints for curl
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The variables `serve --help` shows, from its `[env: NAME=…]` marks.
fn help_variables() -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(["serve", "--help"])
        .env_remove("OTP_CONFIG_FILE")
        .output()
        .expect("run otp-service serve --help");
    assert!(output.status.success(), "serve --help failed: {output:?}");
    let help = String::from_utf8(output.stdout).unwrap();
    let found: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    assert!(found.len() > 30, "--help's format changed? found only {found:?}");
    found
}

/// Words that look like environment variables: capitals and digits with at
/// least one underscore inside (`OTP_TTL_SECONDS`, `DATABASE_URL`).
fn variable_like(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.contains('_')
                && !w.ends_with('_')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The variables the page documents: the first cell of each table row.
fn documented(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(variable_like)
        .collect()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

#[test]
fn every_variable_of_serve_help_has_its_row_in_configuration_md() {
    let page = read("docs/configuration.md");
    let rows = documented(&page);
    let missing: Vec<_> = help_variables()
        .into_iter()
        .filter(|v| !rows.contains(v))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no row for {missing:?}, which `otp-service serve --help` lists: \
         add a row (variable, default, meaning) to the table of its group"
    );
}

#[test]
fn configuration_md_documents_no_variable_that_serve_help_lacks() {
    let help = help_variables();
    let page = read("docs/configuration.md");
    let unknown: Vec<_> = variable_like(&page)
        .into_iter()
        .filter(|v| !help.contains(v) && !NOT_SETTINGS.contains(&v.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md names {unknown:?}, which `otp-service serve --help` does not list: \
         remove them or fix their spelling"
    );
}

#[test]
fn the_readme_and_docs_name_only_variables_the_service_reads() {
    let help = help_variables();
    let mut pages = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    for page in pages {
        let unknown: Vec<_> = variable_like(&read(&page))
            .into_iter()
            .filter(|v| (v.starts_with("OTP_") || v.starts_with("WACONECTA_")) && !help.contains(v))
            .filter(|v| !NOT_SETTINGS.contains(&v.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{page} names {unknown:?}, which `otp-service serve --help` does not list: \
             a setting renamed or removed? Fix the page"
        );
    }
}
