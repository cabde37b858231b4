//! What admins ask of an upload: its status as JSON, and download links to its reports.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::storage::{Storage, StorageError};

/// An upload as `roster status` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadStatus {
    pub upload_id: i64,
    pub status: String,
    pub template: String,
    pub attempts: i32,
    pub rows_total: Option<i32>,
    pub rows_valid: Option<i32>,
    pub rows_with_errors: Option<i32>,
    pub rows_with_warnings: Option<i32>,
    pub timings: Option<serde_json::Value>,
    pub report_prefix: Option<String>,
    pub report_keys: Vec<String>,
    /// The file-level verdict of a rejected file.
    pub file_error: Option<serde_json::Value>,
    /// Why a failed upload failed.
    pub failure: Option<String>,
}

type Row = (
    String,
    String,
    i32,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
);

/// The upload with this id, if any.
pub async fn status(pool: &PgPool, upload_id: i64) -> Result<Option<UploadStatus>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, template, attempts, rows_total, rows_valid, rows_with_errors,
             rows_with_warnings, timings::text, report_prefix, report_keys, file_error::text,
             failure
         FROM uploads WHERE id = $1",
    )
    .bind(upload_id)
    .fetch_optional(pool)
    .await?;
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    Ok(row.map(|r| UploadStatus {
        upload_id,
        status: r.0,
        template: r.1,
        attempts: r.2,
        rows_total: r.3,
        rows_valid: r.4,
        rows_with_errors: r.5,
        rows_with_warnings: r.6,
        timings: json(r.7),
        report_prefix: r.8,
        report_keys: r.9.unwrap_or_default(),
        file_error: json(r.10),
        failure: r.11,
    }))
}

/// One report and a link to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLink {
    pub key: String,
    pub url: String,
}

/// Presigned links to every report of an upload, valid for `expires`.
pub async fn report_links(
    storage: &Storage,
    status: &UploadStatus,
    expires: Duration,
) -> Result<Vec<ReportLink>, StorageError> {
    let mut links = Vec::with_capacity(status.report_keys.len());
    for key in &status.report_keys {
        links.push(ReportLink {
            key: key.clone(),
            url: storage.presign_get(key, expires).await?,
        });
    }
    Ok(links)
}
