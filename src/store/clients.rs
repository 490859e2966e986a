//! The `clients` table: calling applications, known by the SHA-256 of their
//! key, with the settings each has of its own (null: the service's default).

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::{ClientId, ClientSettings, CodeLength};

/// The settings columns, as stored; the table's checks keep them in range.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SettingsColumns {
    display_name: Option<String>,
    share: i32,
    max_queued: Option<i32>,
    requests_per_minute: Option<i32>,
    code_length: Option<i16>,
    ttl_seconds: Option<i32>,
    max_attempts: Option<i32>,
    resend_cooldown_seconds: Option<i32>,
    max_sends: Option<i32>,
    allowed_countries: Option<Vec<String>>,
    default_locale: Option<String>,
    template_es: Option<String>,
    template_en: Option<String>,
    template_pt: Option<String>,
    sms_as_whatsapp: Option<bool>,
}

macro_rules! settings_columns {
    () => {
        "display_name, share, max_queued, requests_per_minute, code_length, ttl_seconds, max_attempts,
         resend_cooldown_seconds, max_sends, allowed_countries, default_locale,
         template_es, template_en, template_pt, sms_as_whatsapp"
    };
}

impl SettingsColumns {
    pub fn settings(&self) -> ClientSettings {
        let n = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        ClientSettings {
            display_name: self.display_name.clone(),
            share: Some(self.share)
                .filter(|s| *s != 1)
                .and_then(|s| u32::try_from(s).ok()),
            max_queued: n(self.max_queued),
            requests_per_minute: n(self.requests_per_minute),
            code_length: self.code_length.and_then(|d| CodeLength::new(d as u8).ok()),
            ttl_seconds: n(self.ttl_seconds),
            max_attempts: n(self.max_attempts),
            resend_cooldown_seconds: n(self.resend_cooldown_seconds),
            max_sends: n(self.max_sends),
            allowed_countries: self.allowed_countries.as_ref().map(|list| {
                list.iter()
                    .filter_map(|c| crate::domain::parse_country(c).ok())
                    .collect()
            }),
            default_locale: self.default_locale.as_deref().and_then(|l| l.parse().ok()),
            template_es: self.template_es.clone(),
            template_en: self.template_en.clone(),
            template_pt: self.template_pt.clone(),
            sms_as_whatsapp: self.sms_as_whatsapp,
        }
    }
}

/// An active client, as authentication finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub sids: Sids,
    #[sqlx(flatten)]
    pub settings: SettingsColumns,
}

/// A client's Twilio SIDs, as stored (V20 checks their form).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Sids {
    pub twilio_account_sid: String,
    pub twilio_service_sid: String,
}

/// A client as operators see it (never its key).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRecord {
    pub id: ClientId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub sids: Sids,
    #[sqlx(flatten)]
    pub settings: SettingsColumns,
}

statement!(
    INSERT = concat!(
        "insert into clients (id, name, key_hash, made_by_dev, ",
        settings_columns!(),
        ") values ($1, $2, $3, exists (select 1 from dev_database),
                   $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         on conflict (name) do nothing"
    )
);
/// Inserts a client with its settings; `false` when the name is taken. In a
/// `serve --dev` database (V18), whoever makes it, it is marked as made by
/// `--dev`, so that the database stays one.
pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &str,
    key_hash: &[u8],
    settings: &ClientSettings,
) -> Result<bool, sqlx::Error> {
    let columns = SettingsColumns::from(settings);
    let query = sqlx::query(INSERT)
        .bind(ClientId::new())
        .bind(name)
        .bind(key_hash);
    let inserted = columns.bind(query).execute(db).bounded().await?;
    Ok(inserted.rows_affected() == 1)
}

statement!(UPSERT_DEV = "insert into clients (id, name, key_hash, made_by_dev) values ($1, $2, $3, true)
         on conflict (name) do update set key_hash = excluded.key_hash, revoked_at = null, made_by_dev = true",);
/// The `--dev` client: made, or given this key and made active, and marked as
/// made by `--dev`.
pub async fn upsert_dev(db: impl PgExecutor<'_>, name: &str, key_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(UPSERT_DEV)
        .bind(ClientId::new())
        .bind(name)
        .bind(key_hash)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    LIST = concat!(
        "select id, name, created_at, revoked_at, twilio_account_sid, twilio_service_sid, ",
        settings_columns!(),
        " from clients order by name"
    )
);
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<ClientRecord>, sqlx::Error> {
    sqlx::query_as(LIST).fetch_all(db).bounded().await
}

statement!(
    BY_NAME = concat!(
        "select id, name, created_at, revoked_at, twilio_account_sid, twilio_service_sid, ",
        settings_columns!(),
        " from clients where name = $1"
    )
);
pub async fn by_name(db: impl PgExecutor<'_>, name: &str) -> Result<Option<ClientRecord>, sqlx::Error> {
    sqlx::query_as(BY_NAME)
        .bind(name)
        .fetch_optional(db)
        .bounded()
        .await
}

statement!(REVOKE = "update clients set revoked_at = coalesce(revoked_at, now()) where name = $1");
/// Revokes a client's key; `false` when there is no such client.
pub async fn revoke(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(REVOKE).bind(name).execute(db).bounded().await?;
    Ok(done.rows_affected() == 1)
}

statement!(ROTATE_KEY = "update clients set key_hash = $2, revoked_at = null where name = $1");
/// Gives a client a new key (the old one stops working) and makes it active.
pub async fn rotate_key(db: impl PgExecutor<'_>, name: &str, key_hash: &[u8]) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(ROTATE_KEY)
        .bind(name)
        .bind(key_hash)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    SETTINGS_FOR_UPDATE = concat!(
        "select id, name, created_at, revoked_at, twilio_account_sid, twilio_service_sid, ",
        settings_columns!(),
        " from clients where name = $1 for update"
    )
);
statement!(
    WRITE_SETTINGS = "update clients set display_name = $2, share = $3, max_queued = $4,
             requests_per_minute = $5, code_length = $6, ttl_seconds = $7, max_attempts = $8,
             resend_cooldown_seconds = $9, max_sends = $10, allowed_countries = $11, default_locale = $12,
             template_es = $13, template_en = $14, template_pt = $15, sms_as_whatsapp = $16
         where id = $1",
);
/// Changes a client's settings with `change`, which sees the stored ones and
/// returns the new ones (or refuses, and nothing is written). One statement
/// writes every field, under the row's lock: never half a change, and two
/// changes at once do not undo each other. `None` when there is no such client.
pub async fn change_settings<E>(
    pool: &PgPool,
    name: &str,
    change: impl FnOnce(&ClientSettings) -> Result<ClientSettings, E>,
) -> Result<Option<Result<ClientRecord, E>>, sqlx::Error> {
    let mut tx = pool.begin().bounded().await?;
    let Some(mut record): Option<ClientRecord> = sqlx::query_as(SETTINGS_FOR_UPDATE)
        .bind(name)
        .fetch_optional(&mut *tx)
        .bounded()
        .await?
    else {
        return Ok(None);
    };
    let next = match change(&record.settings.settings()) {
        Ok(next) => next,
        Err(e) => return Ok(Some(Err(e))),
    };
    let columns = SettingsColumns::from(&next);
    columns
        .bind(sqlx::query(WRITE_SETTINGS).bind(record.id))
        .execute(&mut *tx)
        .bounded()
        .await?;
    tx.commit().bounded().await?;
    record.settings = columns;
    Ok(Some(Ok(record)))
}

impl SettingsColumns {
    /// Binds every column, in the order of `settings_columns!()`.
    fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.display_name)
            .bind(self.share)
            .bind(self.max_queued)
            .bind(self.requests_per_minute)
            .bind(self.code_length)
            .bind(self.ttl_seconds)
            .bind(self.max_attempts)
            .bind(self.resend_cooldown_seconds)
            .bind(self.max_sends)
            .bind(&self.allowed_countries)
            .bind(&self.default_locale)
            .bind(&self.template_es)
            .bind(&self.template_en)
            .bind(&self.template_pt)
            .bind(self.sms_as_whatsapp)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl From<&ClientSettings> for SettingsColumns {
    fn from(s: &ClientSettings) -> Self {
        let int = |v: Option<u32>| v.map(|n| n.min(i32::MAX as u32) as i32);
        Self {
            display_name: s.display_name.clone(),
            share: int(s.share).unwrap_or(1),
            max_queued: int(s.max_queued),
            requests_per_minute: int(s.requests_per_minute),
            code_length: s.code_length.map(|l| l.digits() as i16),
            ttl_seconds: int(s.ttl_seconds),
            max_attempts: int(s.max_attempts),
            resend_cooldown_seconds: int(s.resend_cooldown_seconds),
            max_sends: int(s.max_sends),
            allowed_countries: s
                .allowed_countries
                .as_ref()
                .map(|list| list.iter().map(|c| c.as_ref().to_owned()).collect()),
            default_locale: s.default_locale.map(|l| l.as_str().to_owned()),
            template_es: s.template_es.clone(),
            template_en: s.template_en.clone(),
            template_pt: s.template_pt.clone(),
            sms_as_whatsapp: s.sms_as_whatsapp,
        }
    }
}

statement!(
    BY_KEY_HASH = concat!(
        "select id, name, created_at, twilio_account_sid, twilio_service_sid, ",
        settings_columns!(),
        " from clients where key_hash = $1 and revoked_at is null"
    )
);
/// The active client whose key has this hash.
pub async fn by_key_hash(db: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(BY_KEY_HASH)
        .bind(key_hash)
        .fetch_optional(db)
        .bounded()
        .await
}

statement!(
    BY_ID = concat!(
        "select id, name, created_at, twilio_account_sid, twilio_service_sid, ",
        settings_columns!(),
        " from clients where id = $1"
    )
);
/// The client with this id, revoked or not (what its events were made under).
pub async fn by_id(db: impl PgExecutor<'_>, id: ClientId) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(BY_ID).bind(id).fetch_optional(db).bounded().await
}
