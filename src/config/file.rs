//! The optional TOML file, layered between the defaults and the environment.

/// Layers `--config FILE` (or `OTP_CONFIG_FILE`) between the defaults and the
/// environment: each key of the TOML file names a setting by its variable
/// (`OTP_TTL_SECONDS = 300`, in either case) and becomes that setting's flag
/// after the subcommand, unless the environment or the command line already
/// sets it. So flags win over the environment, the environment over the
/// file, the file over the defaults; nothing is written to the environment.
pub fn with_config_file(command: &clap::Command, args: Vec<String>) -> Result<Vec<String>, String> {
    let from_args = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_owned))
        });
    let Some(path) = from_args.or_else(|| std::env::var("OTP_CONFIG_FILE").ok()) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read config file {path}: {e}"))?;
    let table: toml::Table = text
        .parse()
        // The parser's message quotes the offending line, which may hold a secret: give only where.
        .map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(0, |span| text[..span.start].lines().count().max(1));
            format!("config file {path} is not valid TOML (line {line})")
        })?;
    // The settings belong to the subcommand: that is where their flags go.
    let Some((at, subcommand)) = args
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, a)| command.find_subcommand(a).map(|sub| (i, sub)))
    else {
        return Ok(args);
    };
    let mut flags = Vec::new();
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(format!(
                    "config file {path}: `{key}` must be a string, a number, a boolean or a list ({} given)",
                    other.type_str()
                ));
            }
        };
        let Some(long) = subcommand
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|env| env == name.as_str()))
            .and_then(|a| a.get_long())
        else {
            // A setting of another subcommand (or of none): not this one's business.
            continue;
        };
        let on_command_line = args[at..]
            .iter()
            .any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}=")));
        if std::env::var_os(&name).is_none() && !on_command_line {
            flags.push(format!("--{long}={value}"));
        }
    }
    let mut layered = args;
    layered.splice(at + 1..at + 1, flags);
    Ok(layered)
}
