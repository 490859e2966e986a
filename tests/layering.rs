//! The layout's promises, read from the source: SQL only in `src/store/`,
//! each table named in SQL only there (and in the migrations), every
//! statement of the store a registered `statement!` (see tests/api/statements.rs),
//! and no file or function too long to read whole.

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

/// The layers, from the bottom. A module may name modules of its own layer
/// or of the layers below it, never above. `error`, `metrics` and `tasks`
/// sit just above `domain`: the hasher counts into the metrics, the store
/// returns the error type, and every layer above uses them. `telemetry`
/// sets up the logs, as the edges do when the service starts.
const LAYERS: [(&str, &[&str]); 7] = [
    ("domain", &["domain"]),
    ("support", &["error", "metrics", "tasks"]),
    ("crypto", &["crypto"]),
    ("store", &["store"]),
    (
        "services",
        &[
            "otp",
            "delivery",
            "webhooks",
            "clients",
            "fraud",
            "stats",
            "retention",
            "access",
            "operations",
            "dev_key",
        ],
    ),
    ("edges", &["http", "cli", "telemetry"]),
    ("wiring", &["startup"]),
];

/// `config` is a leaf: it owns the settings as they are spelled on the
/// command line and in the environment, and names only `domain` and `crypto`
/// (the types it parses into). The services, the edges and the wiring read
/// it; how a service turns its settings into its own types is the service's
/// business (`webhooks::egress`, `clients::defaults`). Below the services
/// nothing reads it: the store takes its limits as parameters.
const CONFIG: &str = "config";
const CONFIG_MAY_NAME: [&str; 2] = ["domain", "crypto"];
const CONFIG_READERS: [&str; 3] = ["services", "edges", "wiring"];

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&top))
        .map(|at| (at, LAYERS[at].0))
}

/// The crate's modules (`delivery::plan`), each with its code, comments left
/// out. A file named by `#[path]` belongs to the module that declares it.
fn modules() -> Vec<(String, String)> {
    let named_by_path: Vec<(String, String)> = code()
        .iter()
        .flat_map(|(file, lines)| {
            let dir = Path::new(file).parent().unwrap().to_path_buf();
            let owner = module_name(file);
            lines
                .windows(2)
                .filter_map(|pair| {
                    let target = pair[0].trim().strip_prefix("#[path = \"")?.strip_suffix("\"]")?;
                    let name = pair[1].trim().trim_start_matches("pub ").strip_prefix("mod ")?;
                    let name = name.trim_end_matches(';');
                    Some((dir.join(target).display().to_string(), format!("{owner}::{name}")))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    code()
        .into_iter()
        .filter(|(file, _)| !file.ends_with("src/lib.rs") && !file.ends_with("src/main.rs"))
        .map(|(file, lines)| {
            let name = named_by_path
                .iter()
                .find(|(path, _)| *path == file)
                .map(|(_, module)| module.clone())
                .unwrap_or_else(|| module_name(&file));
            (name, lines.join("\n"))
        })
        .collect()
}

fn module_name(file: &str) -> String {
    let path = file.strip_prefix("src/").unwrap().strip_suffix(".rs").unwrap();
    let path = path.strip_suffix("/mod").unwrap_or(path);
    path.replace('/', "::")
}

/// Every path a `use` tree names, written out in full: `a::{b, c::{d, e}}`
/// gives `a::b`, `a::c::d`, `a::c::e`; an alias gives its name as well.
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<(String, Option<String>)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let base = join(prefix, head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let (mut depth, mut start) = (0, 0);
        for (at, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..at], &base, out);
                    start = at + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], &base, out);
    } else if !tree.is_empty() {
        let (path, alias) = match tree.split_once(" as ") {
            Some((path, alias)) => (path.trim(), Some(alias.trim().to_owned())),
            None => (tree, None),
        };
        let path = path.strip_suffix("::self").unwrap_or(path);
        let path = if path == "self" {
            prefix.to_owned()
        } else {
            join(prefix, path)
        };
        out.push((path, alias));
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// Each `use` of a module's code, with whether it re-exports (`pub use`),
/// and the code left once the `use` statements are taken out.
fn uses(text: &str) -> (Vec<(String, Option<String>, bool)>, String) {
    let mut found = Vec::new();
    let mut rest = String::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("use ") {
        let start = at + offset;
        let before = text[..start].trim_end();
        let statement_start = before.is_empty()
            || before.ends_with(';')
            || before.ends_with('{')
            || before.ends_with('}')
            || before.ends_with(']')
            || before.ends_with("pub")
            || before.ends_with(')');
        let word_start = start == 0 || !text[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let Some(end) = text[start..].find(';').map(|e| start + e) else {
            break;
        };
        if !(statement_start && word_start) {
            rest.push_str(&text[at..start + 4]);
            at = start + 4;
            continue;
        }
        let public = before.ends_with("pub") || before.ends_with("pub(crate)");
        let mut paths = Vec::new();
        expand_use(&text[start + 4..end], "", &mut paths);
        found.extend(paths.into_iter().map(|(path, alias)| (path, alias, public)));
        rest.push_str(&text[at..start]);
        at = end + 1;
    }
    rest.push_str(&text[at..]);
    (found, rest)
}

/// The paths outside `use` statements that start from the crate or from a
/// module around them: `crate::store::outbox::claim`, `super::gateway::X`.
fn inline_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for root in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(root) {
            let before = code[..at].chars().last().unwrap_or(' ');
            if before.is_alphanumeric() || before == '_' || before == ':' {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push((at, path.trim_end_matches(':').to_owned()));
        }
    }
    found
}

/// The module graph: which module names which, as read from the paths in
/// its code, with each path followed through the `pub use` that re-exports
/// it to the module that defines it.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let modules = modules();
    let names: BTreeSet<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    // The paths of each module, made absolute (from the crate root).
    let absolute = |module: &str, code: &str, path: &str, at: usize| -> Option<String> {
        // Code after an inline `mod x {` (the tests) sits one module deeper.
        let inner = code.find("mod ").and_then(|m| {
            let decl = &code[m..];
            let brace = decl.find(['{', ';'])?;
            (decl.as_bytes()[brace] == b'{' && m < at).then_some(())
        });
        let here = if inner.is_some() {
            format!("{module}::tests")
        } else {
            module.to_owned()
        };
        let mut segments: Vec<&str> = path.split("::").collect();
        let mut base: Vec<&str> = here.split("::").collect();
        match segments.first().copied() {
            Some("crate") | Some("$crate") => {
                segments.remove(0);
                base.clear();
            }
            Some("self") => {
                segments.remove(0);
            }
            Some("super") => {
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base.pop();
                }
            }
            Some(first) if names.contains(&join(&here, first)) || names.contains(&join(module, first)) => {
                if !names.contains(&join(&here, first)) {
                    base = module.split("::").collect();
                }
            }
            _ => return None,
        }
        Some(base.into_iter().chain(segments).collect::<Vec<_>>().join("::"))
    };
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut exports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (module, text) in &modules {
        let (used, rest) = uses(text);
        for (path, alias, public) in used {
            let at = text.find(&path).unwrap_or(0);
            let Some(full) = absolute(module, text, &path, at) else {
                continue;
            };
            if public {
                let name = alias.unwrap_or_else(|| full.rsplit("::").next().unwrap().to_owned());
                exports
                    .entry(module.clone())
                    .or_default()
                    .insert(name, full.clone());
            }
            paths.entry(module.clone()).or_default().push(full);
        }
        for (at, path) in inline_paths(&rest) {
            if let Some(full) = absolute(module, &rest, &path, at) {
                paths.entry(module.clone()).or_default().push(full);
            }
        }
    }
    // The module a path lands in: its longest prefix that is a module, or,
    // when the next name is re-exported there, where that name comes from.
    let resolve = |path: &str| -> Option<String> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            let segments: Vec<&str> = path.split("::").collect();
            let longest = (1..=segments.len())
                .rev()
                .find(|n| names.contains(&segments[..*n].join("::")))?;
            let module = segments[..longest].join("::");
            let next = segments.get(longest);
            match next.and_then(|name| exports.get(&module)?.get(*name)) {
                Some(source) if *source != path => {
                    path = std::iter::once(source.as_str())
                        .chain(segments[longest + 1..].iter().copied())
                        .collect::<Vec<_>>()
                        .join("::");
                }
                _ => return Some(module),
            }
        }
        None
    };
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (module, used) in &paths {
        for path in used {
            let Some(target) = resolve(path) else { continue };
            if target != *module && !module.starts_with(&format!("{target}::tests")) {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| path.clone());
            }
        }
    }
    graph
}

/// Every name from a module to another runs down the layers (or stays in
/// its layer), and `config` stays a leaf.
#[test]
fn imports_point_down_the_layers() {
    let mut wrong = Vec::new();
    for (module, targets) in module_graph() {
        for (target, path) in targets {
            let from_top = module.split("::").next().unwrap().to_owned();
            let to_top = target.split("::").next().unwrap();
            if from_top == to_top {
                continue;
            }
            let problem = match (layer_of(&module), layer_of(&target)) {
                _ if from_top == CONFIG && !CONFIG_MAY_NAME.contains(&to_top) => {
                    Some("config is a leaf: it names only domain and crypto".to_owned())
                }
                (Some((_, from)), _) if to_top == CONFIG && !CONFIG_READERS.contains(&from) => Some(format!(
                    "only {CONFIG_READERS:?} read config, not the {from} layer"
                )),
                (None, _) if from_top != CONFIG => Some(format!("`{from_top}` has no layer in LAYERS")),
                (_, None) if to_top != CONFIG => Some(format!("`{to_top}` has no layer in LAYERS")),
                (Some((low, lower)), Some((high, higher))) if high > low => {
                    Some(format!("the {lower} layer names the {higher} layer"))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                wrong.push(format!("{module} -> {target} ({path}): {problem}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// No two modules name each other, directly or through others. A module and
/// its own submodules are one unit split over files: a submodule naming its
/// parent (`super::Delivery`) is not a circle, any other way back is.
#[test]
fn no_module_names_itself_through_others() {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    let mut graph = module_graph();
    for (module, targets) in graph.iter_mut() {
        targets.retain(|target, _| !module.starts_with(&format!("{target}::")));
    }
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(module) = todo.pop() {
            for next in graph.get(&module).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut circles = Vec::new();
    let mut placed = BTreeSet::new();
    for (module, reached) in &reaches {
        if !reached.contains(*module) || placed.contains(*module) {
            continue;
        }
        let members: BTreeSet<&String> = reached
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*module)))
            .collect();
        placed.extend(members.iter().map(|m| (*m).clone()));
        // The shortest way from the module back to itself, to show one circle.
        let mut way_back: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = VecDeque::from([(*module).clone()]);
        'search: while let Some(at) = queue.pop_front() {
            for next in graph.get(&at).into_iter().flat_map(|t| t.keys()) {
                if next == *module {
                    let mut circle = vec![at.clone()];
                    while let Some(previous) = way_back.get(circle.last().unwrap()) {
                        circle.push(previous.clone());
                    }
                    circle.reverse();
                    if circle.first() != Some(*module) {
                        circle.insert(0, (*module).clone());
                    }
                    circle.push((*module).clone());
                    let names: Vec<String> = circle
                        .windows(2)
                        .map(|pair| format!("{} --({})-->", pair[0], graph[&pair[0]][&pair[1]]))
                        .collect();
                    circles.push(format!(
                        "{} modules in a circle, e.g. {} {module}",
                        members.len(),
                        names.join(" ")
                    ));
                    break 'search;
                }
                if !way_back.contains_key(next) && next != *module {
                    way_back.insert(next.clone(), at.clone());
                    queue.push_back(next.clone());
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that name themselves through others:\n{}",
        circles.join("\n")
    );
}

/// The store keeps the tables and nothing else: it names only the types and
/// secrets it stores, the error it returns and the metrics it counts into.
#[test]
fn the_store_names_only_what_it_stores() {
    let allowed = ["store", "domain", "crypto", "error", "metrics"];
    let wrong: Vec<String> = module_graph()
        .into_iter()
        .filter(|(module, _)| module.starts_with("store"))
        .flat_map(|(module, targets)| {
            targets
                .into_iter()
                .filter(|(target, _)| !allowed.contains(&target.split("::").next().unwrap()))
                .map(move |(target, path)| format!("{module} -> {target} ({path})"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the store names more than {allowed:?}:\n{}",
        wrong.join("\n")
    );
}

/// Past this many lines a file is split by meaning (what it holds, not
/// where its middle falls).
const MAX_FILE_LINES: usize = 350;
/// Past this many lines of code (comments left out) a function is split.
const MAX_FUNCTION_LINES: usize = 80;

#[test]
fn no_file_is_too_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|path| (path, std::fs::read_to_string(path).unwrap().lines().count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(path, lines)| format!("{}: {lines} lines", path.strip_prefix(root).unwrap().display()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_is_too_long() {
    let mut long = Vec::new();
    for (file, lines) in code() {
        for (name, length) in functions(&lines) {
            if length > MAX_FUNCTION_LINES {
                long.push(format!("{file}: fn {name}, {length} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Each function with a body of its own lines (as rustfmt lays it out: from
/// its `fn` to the `}` at the same indentation), by name and length.
fn functions(lines: &[String]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let Some(name) = fn_name(line.trim_start()) else {
            continue;
        };
        let Some(open) = (start..lines.len()).find(|&i| {
            let l = lines[i].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        if !lines[open].trim_end().ends_with('{') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&i| lines[i].trim_end() == close) {
            found.push((name, end - start + 1));
        }
    }
    found
}

/// The name of the function a line declares, if it declares one.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line;
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn functions_are_measured_from_fn_to_their_closing_brace() {
    let source = "impl A {\n    pub async fn long(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n\n    fn short() -> u8 { 1 }\n    fn declared();\n}\nfn free() {\n}";
    let lines: Vec<String> = source.lines().map(str::to_owned).collect();
    assert_eq!(
        functions(&lines),
        [("long".to_owned(), 5), ("free".to_owned(), 2)]
    );
}
