//! The audit trail (SPEC §12.2): every login (and refusal), upload and download, with
//! who, what, when and from where. Details never carry an ID or phone number.

use serde::Serialize;
use sqlx::postgres::PgPool;

use crate::RegistryError;

/// One audited event.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The admin, when known (a refused login of an unknown account has none).
    pub admin_id: Option<i64>,
    /// `login`, `login_refused`, `logout`, `password`, `register`, `upload`, `download`,
    /// `regenerate_code`, `export`.
    pub action: &'a str,
    pub upload_id: Option<i64>,
    /// What was acted on: a report's name, an organisation's full name.
    pub detail: Option<&'a str>,
    /// The client's address.
    pub client: Option<&'a str>,
}

/// Records an event.
pub async fn record(pool: &PgPool, e: Event<'_>) -> Result<(), RegistryError> {
    sqlx::query(
        "INSERT INTO audit (admin_id, action, upload_id, detail, client)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(e.admin_id)
    .bind(e.action)
    .bind(e.upload_id)
    .bind(e.detail)
    .bind(e.client)
    .execute(pool)
    .await?;
    Ok(())
}

/// An audit row as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub admin_id: Option<i64>,
    pub action: String,
    pub upload_id: Option<i64>,
    pub detail: Option<String>,
    pub client: Option<String>,
}

/// The latest `limit` events, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<AuditRow>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT admin_id, action, upload_id, detail, client FROM audit
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
