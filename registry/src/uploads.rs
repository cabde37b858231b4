//! Uploads as the registry records them: one per (content, uploader, template), its
//! status through the queue and the worker, its counts, timings, reports and findings.

use pipeline::Validation;
use pipeline::report::{ReportKind, ReportSet};
use pipeline::text::normalise_org;
use pipeline::validate::RowCounts;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use crate::RegistryError;
use crate::copy::{copy_in, copy_line};

/// Hex SHA-256 of an upload's bytes: with the uploader and the template, the identity
/// of an upload (the same content uploaded twice is one upload).
pub fn content_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// Registers (or finds) the upload of this content and marks it running, unless it
/// already ended `succeeded` or `rejected`: its rows are loaded, and it says so until the
/// run again records its own outcome (a failure of that run leaves it as it was).
pub async fn begin_upload(
    pool: &PgPool,
    uploader_id: i64,
    template: schemas::TemplateKind,
    sha256: &str,
) -> Result<i64, RegistryError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO uploads (uploader_org_id, template, content_sha256, status, started_at)
         VALUES ($1, $2, $3, 'running', now())
         ON CONFLICT (content_sha256, uploader_org_id, template) DO UPDATE
            SET status = CASE WHEN uploads.status IN ('succeeded', 'rejected')
                              THEN uploads.status ELSE 'running' END,
                started_at = now(), failure = NULL
         RETURNING id",
    )
    .bind(uploader_id)
    .bind(template.code())
    .bind(sha256)
    .fetch_one(pool)
    .await?)
}

/// How an upload ended, as `uploads` records it.
#[derive(Debug, Clone)]
pub struct UploadOutcome {
    /// `succeeded` or `rejected` (`failed` is written by the job runner).
    pub status: &'static str,
    pub counts: Option<RowCounts>,
    pub file_error: Option<serde_json::Value>,
    pub timings: serde_json::Value,
    pub report_prefix: String,
    pub report_keys: Vec<String>,
    /// Every report with the organisation it belongs to (`upload_reports`).
    pub reports: Vec<StoredReport>,
    /// The findings as COPY text (see [`findings_copy`]).
    pub findings: String,
    /// The worker's attempt that produced it: recorded only while that attempt is still
    /// the upload's latest ([`RegistryError::Superseded`] otherwise). `None`: no fence
    /// (`roster import`).
    pub attempt: Option<i32>,
}

/// One report of an upload, where it is stored and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// The file name, unique within the upload.
    pub name: String,
    pub kind: ReportKind,
    /// The organisation an organisation workbook belongs to (its full name); `None` for
    /// the uploader's own reports.
    pub org: Option<String>,
    /// Where it is: a path under the report folder, or an object key.
    pub key: String,
    /// Where in that object, when it is an entry of the upload's workbook bundle
    /// (`None`: the whole object).
    pub span: Option<pipeline::bundle::Span>,
}

/// The reports of a [`ReportSet`], stored under `prefix`.
pub fn stored_reports(set: &ReportSet, prefix: &str) -> Vec<StoredReport> {
    let owners: std::collections::HashMap<&str, &str> = set
        .books
        .iter()
        .map(|(f, o)| (f.as_str(), o.as_str()))
        .collect();
    set.files
        .iter()
        .map(|f| {
            let org = owners.get(f.as_str()).map(|o| o.to_string());
            StoredReport {
                name: f.clone(),
                kind: if org.is_some() {
                    ReportKind::Organisation
                } else {
                    ReportKind::of(f)
                },
                org,
                key: format!("{prefix}{f}"),
                span: None,
            }
        })
        .collect()
}

/// The findings of a validation as COPY lines for `upload_errors`.
pub fn findings_copy(v: &Validation) -> Result<String, polars::prelude::PolarsError> {
    use pipeline::validate::errors as e;
    let f = &v.errors;
    let (rows, columns, codes, severities, messages, orgs) = (
        f.column(e::ROW)?.u32()?,
        f.column(e::COLUMN)?.str()?,
        f.column(e::CODE)?.str()?,
        f.column(e::SEVERITY)?.str()?,
        f.column(e::MESSAGE)?.str()?,
        f.column(e::REPORT_ORG)?.str()?,
    );
    let mut out = String::new();
    for i in 0..f.height() {
        let row = rows.get(i).unwrap_or_default().to_string();
        let key = orgs.get(i).map(normalise_org);
        // A message may name a derived ID number: never stored whole.
        let message = messages.get(i).map(pipeline::text::mask_numbers);
        copy_line(
            &mut out,
            &[
                Some(&row),
                columns.get(i),
                codes.get(i),
                severities.get(i),
                message.as_deref(),
                key.as_deref(),
            ],
        );
    }
    Ok(out)
}

/// Records how an upload ended and replaces its findings, in one transaction.
pub async fn finish_upload(pool: &PgPool, id: i64, o: &UploadOutcome) -> Result<(), RegistryError> {
    let mut tx = pool.begin().await?;
    finish_upload_in(&mut tx, id, o).await?;
    tx.commit().await?;
    Ok(())
}

/// [`finish_upload`] inside the caller's transaction: the load's, so the rows and the
/// upload's outcome become visible together.
pub async fn finish_upload_in(
    tx: &mut PgConnection,
    id: i64,
    o: &UploadOutcome,
) -> Result<(), RegistryError> {
    let c = o.counts;
    let recorded = sqlx::query(
        "UPDATE uploads SET status = $2, rows_total = $3, rows_valid = $4, rows_with_errors = $5,
            rows_with_warnings = $6, file_error = $7::jsonb, timings = $8::jsonb, report_prefix = $9,
            report_keys = $10, finished_at = now()
         WHERE id = $1 AND ($11::int IS NULL OR (attempts = $11 AND status = 'running'))",
    )
    .bind(id)
    .bind(o.status)
    .bind(c.map(|c| c.total as i32))
    .bind(c.map(|c| c.valid as i32))
    .bind(c.map(|c| c.with_errors as i32))
    .bind(c.map(|c| c.with_warnings as i32))
    .bind(o.file_error.as_ref().map(|v| v.to_string()))
    .bind(o.timings.to_string())
    .bind(&o.report_prefix)
    .bind(&o.report_keys)
    .bind(o.attempt)
    .execute(&mut *tx)
    .await?;
    if let Some(attempt) = o.attempt
        && recorded.rows_affected() == 0
    {
        return Err(RegistryError::Superseded {
            upload_id: id,
            attempt,
        });
    }
    sqlx::query("DELETE FROM upload_errors WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE finding_stage (row_number int, column_name text, code text,
            severity text, message text, org_key text) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    copy_in(
        &mut *tx,
        "COPY finding_stage FROM STDIN",
        o.findings.as_bytes(),
    )
    .await?;
    sqlx::query(
        "INSERT INTO upload_errors (upload_id, row_number, column_name, code, severity, message, org_id)
         SELECT $1, f.row_number, f.column_name, f.code, f.severity, f.message, o.id
         FROM finding_stage f LEFT JOIN orgs o ON o.name_key = f.org_key",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    record_reports(&mut *tx, id, &o.reports).await?;
    Ok(())
}

/// Replaces the upload's `upload_reports`: each report with its organisation (the
/// uploader's when it names none, or one no longer registered).
async fn record_reports(
    conn: &mut PgConnection,
    id: i64,
    reports: &[StoredReport],
) -> Result<(), RegistryError> {
    sqlx::query("DELETE FROM upload_reports WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let kinds: Vec<&str> = reports.iter().map(|r| r.kind.code()).collect();
    let orgs: Vec<Option<String>> = reports
        .iter()
        .map(|r| r.org.as_deref().map(normalise_org))
        .collect();
    let keys: Vec<&str> = reports.iter().map(|r| r.key.as_str()).collect();
    let offsets: Vec<Option<i64>> = reports
        .iter()
        .map(|r| r.span.map(|s| s.offset as i64))
        .collect();
    let lengths: Vec<Option<i64>> = reports
        .iter()
        .map(|r| r.span.map(|s| s.len as i64))
        .collect();
    sqlx::query(
        "INSERT INTO upload_reports (upload_id, name, kind, org_id, object_key, byte_offset, byte_length)
         SELECT $1, r.name, r.kind, coalesce(o.id, u.uploader_org_id), r.object_key, r.byte_offset,
                r.byte_length
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[])
              AS r(name, kind, org_key, object_key, byte_offset, byte_length)
         JOIN uploads u ON u.id = $1
         LEFT JOIN orgs o ON o.name_key = r.org_key",
    )
    .bind(id)
    .bind(&names)
    .bind(&kinds)
    .bind(&orgs)
    .bind(&keys)
    .bind(&offsets)
    .bind(&lengths)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A submitted upload: registered, and whether its job must be pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub upload_id: i64,
    /// False when the same content was already submitted by the same uploader with the
    /// same template and is queued, running or done: it is the same upload.
    pub enqueue: bool,
    /// True when this registered a new upload (not the same content again).
    pub new: bool,
}

/// Where a submitted upload's object is.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub uploader_id: i64,
    pub template: schemas::TemplateKind,
    pub sha256: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
}

/// Registers a submitted upload by content hash inside the caller's transaction (which
/// then pushes its job, so both happen or neither). The same content, uploader and
/// template is one upload: registering it again returns the same id and nothing to
/// enqueue, unless it had `failed` (then it is queued again).
pub async fn register(
    conn: &mut PgConnection,
    s: Submission<'_>,
) -> Result<Registered, RegistryError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO uploads (uploader_org_id, template, content_sha256, bucket, object_key, status)
         VALUES ($1, $2, $3, $4, $5, 'queued')
         ON CONFLICT (content_sha256, uploader_org_id, template) DO NOTHING
         RETURNING id",
    )
    .bind(s.uploader_id)
    .bind(s.template.code())
    .bind(s.sha256)
    .bind(s.bucket)
    .bind(s.key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(upload_id) = inserted {
        return Ok(Registered {
            upload_id,
            enqueue: true,
            new: true,
        });
    }
    // Existing: try again only if it failed.
    let (upload_id, status): (i64, String) = sqlx::query_as(
        "SELECT id, status FROM uploads
         WHERE content_sha256 = $1 AND uploader_org_id = $2 AND template = $3
         FOR UPDATE",
    )
    .bind(s.sha256)
    .bind(s.uploader_id)
    .bind(s.template.code())
    .fetch_one(&mut *conn)
    .await?;
    let enqueue = status == "failed";
    if enqueue {
        sqlx::query(
            "UPDATE uploads SET status = 'queued', failure = NULL, bucket = $2,
                 object_key = $3, finished_at = NULL
             WHERE id = $1",
        )
        .bind(upload_id)
        .bind(s.bucket)
        .bind(s.key)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Registered {
        upload_id,
        enqueue,
        new: false,
    })
}

/// An upload claimed by a worker for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub uploader_id: i64,
    pub template: schemas::TemplateKind,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Which attempt this is, counting every claim (1: no worker has started on it
    /// before, so nothing of an earlier attempt is in storage).
    pub attempt: i32,
}

/// What claiming an upload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Marked `running`, its attempts counted: process it.
    Claimed(Claimed),
    /// Already `succeeded` or `rejected` (a duplicate delivery): nothing to do.
    Finished,
    /// Another attempt took it over since this worker's last one: leave it to that one.
    Superseded,
    /// No upload has this id.
    Missing,
}

/// Claims an upload for an attempt: marks it running and counts the attempt, unless it
/// is already finished. `after` is the claimer's own previous attempt when it tries
/// again: the claim then holds only if no other worker has claimed the upload since
/// (a worker cut off from the database is taken over; reconnected, it must not take the
/// upload back). A job's first claim (`None`) takes it: the queue delivers a job again
/// only once its previous worker stopped beating.
pub async fn claim(
    pool: &PgPool,
    upload_id: i64,
    after: Option<i32>,
) -> Result<Claim, RegistryError> {
    // uploader, template, bucket, key, attempt
    type Row = (i64, String, Option<String>, Option<String>, i32);
    let row: Option<Row> = sqlx::query_as(
        "UPDATE uploads SET status = 'running', started_at = now(), attempts = attempts + 1
         WHERE id = $1 AND status NOT IN ('succeeded', 'rejected')
           AND ($2::int IS NULL OR attempts = $2)
         RETURNING uploader_org_id, template, bucket, object_key, attempts",
    )
    .bind(upload_id)
    .bind(after)
    .fetch_optional(pool)
    .await?;
    if let Some((uploader_id, template, bucket, key, attempt)) = row {
        return Ok(Claim::Claimed(Claimed {
            uploader_id,
            template: schemas::TemplateKind::parse(&template)
                .unwrap_or(schemas::TemplateKind::Members),
            bucket,
            key,
            attempt,
        }));
    }
    let exists: Option<String> = sqlx::query_scalar("SELECT status FROM uploads WHERE id = $1")
        .bind(upload_id)
        .fetch_optional(pool)
        .await?;
    Ok(match exists.as_deref() {
        Some("succeeded" | "rejected") => Claim::Finished,
        Some(_) => Claim::Superseded,
        None => Claim::Missing,
    })
}

/// Records that an upload failed for good (after its last attempt), with the reason;
/// an upload that has finished meanwhile keeps its outcome, and one that a later
/// attempt than `attempt` has taken over is left to it.
pub async fn mark_failed(
    pool: &PgPool,
    upload_id: i64,
    reason: &str,
    attempt: Option<i32>,
) -> Result<(), RegistryError> {
    sqlx::query(
        "UPDATE uploads SET status = 'failed', failure = $2, finished_at = now()
         WHERE id = $1 AND status NOT IN ('succeeded', 'rejected')
           AND ($3::int IS NULL OR attempts = $3)",
    )
    .bind(upload_id)
    .bind(reason)
    .bind(attempt)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records where a running upload is: its stage and the rows read so far. Only while it
/// runs: a finished upload keeps its outcome.
pub async fn progress(
    pool: &PgPool,
    upload_id: i64,
    stage: &str,
    rows_done: u64,
) -> Result<(), RegistryError> {
    sqlx::query(
        "UPDATE uploads SET stage = $2, rows_done = $3 WHERE id = $1 AND status = 'running'",
    )
    .bind(upload_id)
    .bind(stage)
    .bind(rows_done as i64)
    .execute(pool)
    .await?;
    Ok(())
}

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
    /// While it runs: the stage it is in and the rows read so far.
    pub stage: Option<String>,
    pub rows_done: Option<i64>,
}

type StatusRow = (
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
    Option<String>,
    Option<i64>,
);

/// The upload with this id, if any.
pub async fn status(pool: &PgPool, upload_id: i64) -> Result<Option<UploadStatus>, RegistryError> {
    let row: Option<StatusRow> = sqlx::query_as(
        "SELECT status, template, attempts, rows_total, rows_valid, rows_with_errors,
             rows_with_warnings, timings::text, report_prefix, report_keys, file_error::text,
             failure, stage, rows_done
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
        stage: r.12,
        rows_done: r.13,
    }))
}

/// Uploads in the registry as operators count them: by status, how long finished jobs
/// took, and how many rows were validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadMetrics {
    pub by_status: Vec<(String, i64)>,
    /// `(status, jobs, seconds)` of finished uploads: the sum of their run times.
    pub durations: Vec<(String, i64, f64)>,
    pub rows_validated: i64,
}

impl UploadMetrics {
    /// Prometheus' text format.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# HELP roster_uploads Uploads in the registry by status.\n");
        out.push_str("# TYPE roster_uploads gauge\n");
        for (status, n) in &self.by_status {
            let _ = writeln!(out, "roster_uploads{{status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP roster_job_duration_seconds Run time of finished upload jobs.\n");
        out.push_str("# TYPE roster_job_duration_seconds summary\n");
        for (status, n, seconds) in &self.durations {
            let _ = writeln!(
                out,
                "roster_job_duration_seconds_sum{{status=\"{status}\"}} {seconds}"
            );
            let _ = writeln!(
                out,
                "roster_job_duration_seconds_count{{status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP roster_rows_validated_total Rows of finished uploads.\n");
        out.push_str("# TYPE roster_rows_validated_total counter\n");
        let _ = writeln!(out, "roster_rows_validated_total {}", self.rows_validated);
        out
    }
}

/// [`UploadMetrics`] now: three aggregate queries over `uploads`.
pub async fn metrics(pool: &PgPool) -> Result<UploadMetrics, RegistryError> {
    let by_status = sqlx::query_as(
        "SELECT s, count(u.id) FROM unnest(ARRAY['queued','running','succeeded','rejected','failed']) s
         LEFT JOIN uploads u ON u.status = s GROUP BY s ORDER BY s",
    )
    .fetch_all(pool)
    .await?;
    let durations = sqlx::query_as(
        "SELECT status, count(*),
                coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)::float8
         FROM uploads WHERE finished_at IS NOT NULL AND started_at IS NOT NULL
         GROUP BY status ORDER BY status",
    )
    .fetch_all(pool)
    .await?;
    let rows_validated =
        sqlx::query_scalar("SELECT coalesce(sum(rows_total), 0)::int8 FROM uploads")
            .fetch_one(pool)
            .await?;
    Ok(UploadMetrics {
        by_status,
        durations,
        rows_validated,
    })
}
