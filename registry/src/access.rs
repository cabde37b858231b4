//! Who sees what (SPEC §12.2), decided in one place over the organisation tree: "below
//! V" is `V = ANY(path)`. The service asks [`authorize`] before it touches any resource,
//! and answers what is not granted exactly as what does not exist.

use chrono::{DateTime, Utc};
use pipeline::text::normalise_org;
use serde::Serialize;
use sqlx::postgres::PgPool;

use crate::RegistryError;

/// Something a viewer may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// An upload's status, counts and timings: its uploader is below the viewer, or one
    /// of its reports belongs to an organisation below the viewer.
    Upload(i64),
    /// One report of an upload: its organisation is below the viewer (the uploader's,
    /// for summary.xlsx, summary.json and escalations.xlsx).
    Report { upload_id: i64, name: &'a str },
    /// An organisation's statistics and exports: it is below the viewer.
    Org(&'a str),
    /// A direct child's registration code: its parent is the viewer.
    ChildOrg(&'a str),
}

/// What a granted request may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Upload,
    /// A report: the object holding it and, for an entry of the upload's workbook
    /// bundle, the bytes of it that are the report (`(offset, length)`).
    Report {
        object_key: String,
        kind: String,
        range: Option<(i64, i64)>,
    },
    Org {
        id: i64,
        full_name: String,
    },
}

/// The one access check: `Some` when an admin of `viewer_org` may see `resource`, `None`
/// when it is not visible, whether or not it exists.
pub async fn authorize(
    pool: &PgPool,
    viewer_org: i64,
    resource: Resource<'_>,
) -> Result<Option<Grant>, RegistryError> {
    Ok(match resource {
        Resource::Upload(id) => sqlx::query_scalar::<_, i64>(
            "SELECT u.id FROM uploads u JOIN orgs o ON o.id = u.uploader_org_id
             WHERE u.id = $1 AND ($2 = ANY(o.path) OR EXISTS (
                 SELECT 1 FROM upload_reports r JOIN orgs b ON b.id = r.org_id
                 WHERE r.upload_id = u.id AND $2 = ANY(b.path)))",
        )
        .bind(id)
        .bind(viewer_org)
        .fetch_optional(pool)
        .await?
        .map(|_| Grant::Upload),
        Resource::Report { upload_id, name } => {
            sqlx::query_as::<_, (String, String, Option<i64>, Option<i64>)>(
                "SELECT r.object_key, r.kind, r.byte_offset, r.byte_length
                 FROM upload_reports r JOIN orgs b ON b.id = r.org_id
                 WHERE r.upload_id = $1 AND r.name = $2 AND $3 = ANY(b.path)",
            )
            .bind(upload_id)
            .bind(name)
            .bind(viewer_org)
            .fetch_optional(pool)
            .await?
            .map(|(object_key, kind, offset, length)| Grant::Report {
                object_key,
                kind,
                range: offset.zip(length),
            })
        }
        Resource::Org(name) => sqlx::query_as(
            "SELECT o.id, o.full_name FROM orgs o WHERE o.name_key = $1 AND $2 = ANY(o.path)",
        )
        .bind(normalise_org(name))
        .bind(viewer_org)
        .fetch_optional(pool)
        .await?
        .map(org_grant),
        Resource::ChildOrg(name) => sqlx::query_as(
            "SELECT o.id, o.full_name FROM orgs o WHERE o.name_key = $1 AND o.parent_id = $2",
        )
        .bind(normalise_org(name))
        .bind(viewer_org)
        .fetch_optional(pool)
        .await?
        .map(org_grant),
    })
}

fn org_grant((id, full_name): (i64, String)) -> Grant {
    Grant::Org { id, full_name }
}

/// An upload as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadRow {
    pub id: i64,
    pub uploader: String,
    pub template: String,
    pub status: String,
    pub stage: Option<String>,
    pub rows_done: Option<i64>,
    pub rows_total: Option<i32>,
    pub rows_valid: Option<i32>,
    pub rows_with_errors: Option<i32>,
    pub rows_with_warnings: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Uploads on one page of a list.
pub const PAGE_SIZE: i64 = 50;

/// The uploads visible to an admin of `viewer_org`, newest first: page `page` (from 1),
/// optionally of one status.
pub async fn visible_uploads(
    pool: &PgPool,
    viewer_org: i64,
    page: i64,
    status: Option<&str>,
) -> Result<Vec<UploadRow>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT u.id, o.full_name AS uploader, u.template, u.status, u.stage, u.rows_done,
                u.rows_total, u.rows_valid, u.rows_with_errors, u.rows_with_warnings,
                u.created_at, u.finished_at
         FROM uploads u JOIN orgs o ON o.id = u.uploader_org_id
         WHERE ($1 = ANY(o.path) OR EXISTS (
                  SELECT 1 FROM upload_reports r JOIN orgs b ON b.id = r.org_id
                  WHERE r.upload_id = u.id AND $1 = ANY(b.path)))
           AND ($2::text IS NULL OR u.status = $2)
         ORDER BY u.created_at DESC, u.id DESC
         LIMIT $3 OFFSET $4",
    )
    .bind(viewer_org)
    .bind(status)
    .bind(PAGE_SIZE)
    .bind((page.max(1) - 1) * PAGE_SIZE)
    .fetch_all(pool)
    .await?)
}

/// One report an admin may download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRow {
    pub name: String,
    /// The organisation it belongs to.
    pub org: String,
    /// `summary`, `summary_json`, `escalations` or `organisation`.
    pub kind: String,
}

/// The reports of an upload that an admin of `viewer_org` may download: the uploader's
/// own first, then the organisation workbooks by name.
pub async fn visible_reports(
    pool: &PgPool,
    viewer_org: i64,
    upload_id: i64,
) -> Result<Vec<ReportRow>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT r.name, b.full_name AS org, r.kind
         FROM upload_reports r JOIN orgs b ON b.id = r.org_id
         WHERE r.upload_id = $1 AND $2 = ANY(b.path)
         ORDER BY r.kind = 'organisation', r.kind, r.name",
    )
    .bind(upload_id)
    .bind(viewer_org)
    .fetch_all(pool)
    .await?)
}

/// Findings of an upload counted by code (the counts of 上传详情).
pub async fn counts_by_code(
    pool: &PgPool,
    upload_id: i64,
) -> Result<Vec<(String, String, i64)>, RegistryError> {
    Ok(sqlx::query_as(
        "SELECT code, severity, count(*) FROM upload_errors WHERE upload_id = $1
         GROUP BY code, severity ORDER BY count(*) DESC, code",
    )
    .bind(upload_id)
    .fetch_all(pool)
    .await?)
}
