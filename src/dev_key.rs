//! The key of client `dev` under `serve --dev`, kept from one start to the
//! next, so that a shell's `export OTP_KEY=...` goes on working.
//!
//! The database holds only the key's hash, so the key itself is kept in a
//! file of the user's own (`$XDG_DATA_HOME/otp-service/`, mode 0600), one per
//! database. It is random, made on the first start: a fixed, published key
//! would be a way into every database `--dev` was ever pointed at.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::clients;

pub const CLIENT: &str = "dev";

/// Where the key came from, for the banner.
pub enum Origin {
    /// Read back, and still the dev client's key in this database.
    Kept(PathBuf),
    /// Made at this start, and kept in this file for the next ones.
    New(PathBuf),
    /// Made at this start, and not kept (why).
    NotKept(String),
}

/// The file for the database `options` names: `dev-key-HOST-PORT-DATABASE`
/// under `$XDG_DATA_HOME/otp-service` (by default `~/.local/share`).
pub fn path(options: &PgConnectOptions) -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            let home = PathBuf::from(std::env::var_os("HOME")?);
            home.is_absolute().then(|| home.join(".local/share"))
        })?;
    let name = format!(
        "dev-key-{}-{}-{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    );
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(data.join("otp-service").join(name))
}

/// The dev client's key: the kept one while it still opens this database,
/// otherwise a new one, set as the client's key and kept for the next start.
pub async fn ensure(pool: &PgPool, file: Option<PathBuf>) -> anyhow::Result<(SecretString, Origin)> {
    if let Some(file) = &file
        && let Some(kept) = read(file)
        && clients::authenticate(pool, kept.expose_secret())
            .await?
            .is_some_and(|client| client.name == CLIENT)
    {
        return Ok((kept, Origin::Kept(file.clone())));
    }
    let key = clients::generate_key();
    clients::ensure_with_key(pool, CLIENT, &key).await?;
    let origin = match file {
        None => Origin::NotKept("neither XDG_DATA_HOME nor HOME is set".into()),
        Some(file) => match write(&file, &key) {
            Ok(()) => Origin::New(file),
            Err(e) => Origin::NotKept(format!("cannot write {}: {e}", file.display())),
        },
    };
    Ok((key, origin))
}

fn read(file: &Path) -> Option<SecretString> {
    let text = std::fs::read_to_string(file).ok()?;
    let key = text.trim();
    key.starts_with("otpk_").then(|| key.to_owned().into())
}

/// Written whole or not at all (a new file renamed over the old one), readable
/// by the user alone.
fn write(file: &Path, key: &SecretString) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().expect("the file is in a directory");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        builder.mode(0o700);
        options.mode(0o600);
    }
    builder.create(dir)?;
    let partial = file.with_extension("partial");
    let mut out = options.open(&partial)?;
    writeln!(out, "{}", key.expose_secret())?;
    out.sync_all()?;
    std::fs::rename(&partial, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_server_and_database_with_a_plain_name() {
        let options: PgConnectOptions = "postgres://me@db.local:5433/shop?sslmode=disable"
            .parse()
            .unwrap();
        let file = path(&options).expect("HOME is set where tests run");
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "dev-key-db.local-5433-shop");
        assert_eq!(file.parent().unwrap().file_name().unwrap(), "otp-service");
        let socket: PgConnectOptions = "postgres:///shop?host=/run/postgresql".parse().unwrap();
        let name = path(&socket)
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!name.contains('/'), "{name}");
    }
}
