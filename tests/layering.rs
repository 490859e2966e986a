//! The layout's promises, read from the source: SQL only in `src/store/`,
//! each table named in SQL only there (and in the migrations), and every
//! statement of the store a registered `statement!` (see tests/api/statements.rs).

use std::path::{Path, PathBuf};

const TABLES: [&str; 15] = [
    "verifications",
    "outbox_messages",
    "senders",
    "sender_sends",
    "limit_hits",
    "idempotency_keys",
    "clients",
    "stats_events",
    "verification_stats",
    "approval_time_stats",
    "webhook_events",
    "fraud_prefixes",
    "fraud_flags",
    "fraud_blocks",
    "webhook_url_policy",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Each file under src/ with its lines of code (comments left out).
fn code() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(str::to_owned)
                .collect();
            (path.strip_prefix(root).unwrap().display().to_string(), lines)
        })
        .collect()
}

fn in_store(file: &str) -> bool {
    file.starts_with("src/store/")
}

#[test]
fn no_sql_outside_the_store() {
    let mut found = Vec::new();
    for (file, lines) in code().iter().filter(|(f, _)| !in_store(f)) {
        for line in lines {
            let sql_call = ["sqlx::query", "sqlx::raw_sql", "query_as(", "query_scalar("]
                .iter()
                .any(|call| line.contains(call));
            let names_table = TABLES.iter().any(|table| {
                ["from", "into", "update", "join"]
                    .iter()
                    .any(|verb| line.to_lowercase().contains(&format!("{verb} {table}")))
            });
            if sql_call || names_table {
                found.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "SQL outside src/store/:\n{}", found.join("\n"));
}

#[test]
fn every_store_query_is_a_registered_statement() {
    let mut found = Vec::new();
    for (file, lines) in code().iter().filter(|(f, _)| in_store(f)) {
        let text = lines.join("\n");
        for call in ["sqlx::query(", "sqlx::query_as(", "sqlx::query_scalar("] {
            for (at, _) in text.match_indices(call) {
                let argument = text[at + call.len()..].trim_start();
                if argument.starts_with('"') || argument.starts_with("concat!") {
                    found.push(format!("{file}: {}", &text[at..(at + 60).min(text.len())]));
                }
            }
        }
        for line in lines {
            if line.trim_start().starts_with("const ") && line.contains(": &str = \"") {
                found.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "queries that are not statement! constants:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_http_layer_talks_to_services_only() {
    let mut found = Vec::new();
    for (file, lines) in code().iter().filter(|(f, _)| f.starts_with("src/http/")) {
        for line in lines {
            if ["PgPool", ".pool", "store::"].iter().any(|s| line.contains(s)) {
                found.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the HTTP layer reaches past the services:\n{}",
        found.join("\n")
    );
}

/// Every call of the store to the database gives up after the call timeout
/// (`Bounded`), so that a database gone silent is a 503, not a hang: the
/// call's `.bounded()` (or `.bounded_for(..)`, a long scan's) stands on its
/// line or the next. The migrations run
/// unbounded, on purpose: a long migration is not an outage.
#[test]
fn every_store_call_is_bounded() {
    let calls = [
        ".fetch_one(",
        ".fetch_all(",
        ".fetch_optional(",
        ".execute(",
        ".fetch(",
    ];
    let mut unbounded = Vec::new();
    for (file, lines) in code().iter().filter(|(f, _)| in_store(f)) {
        if file.ends_with("migrations.rs") || file.ends_with("timeouts.rs") {
            continue;
        }
        for (i, line) in lines.iter().enumerate() {
            if !calls.iter().any(|c| line.contains(c)) {
                continue;
            }
            let next = lines.get(i + 1).map(String::as_str).unwrap_or("");
            if !line.contains(".bounded") && !next.trim_start().starts_with(".bounded") {
                unbounded.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        unbounded.is_empty(),
        "store calls without .bounded():\n{}",
        unbounded.join("\n")
    );
}
