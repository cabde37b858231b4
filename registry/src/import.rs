//! `import` as one call — validate against the registry, load, write the reports — shared
//! by `roster import` and the job worker, so both give the same verdicts and reports.
//!
//! It writes reports to a local folder and returns what the caller records in `uploads`
//! ([`crate::uploads::finish_upload`]) once the reports are where they belong (a folder
//! for the CLI, the bucket for the worker). CPU stages run on blocking threads.

use std::path::PathBuf;
use std::time::Instant;

use sqlx::postgres::PgPool;

use pipeline::report::{self, ReportSet};
use pipeline::validate::RowCounts;
use pipeline::{Outcome, PipelineError, Rejection, ValidateOptions};

use crate::RegistryError;
use crate::load::{LoadBatch, LoadError, load};
use crate::orgs::DbOrgs;
use crate::uploads::{UploadOutcome, findings_copy, stored_reports};

/// Something failed (database, disk, a background task): worth retrying. A bad file is
/// not an error: it is an [`Imported`] with a rejection.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Db(#[from] RegistryError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<polars::prelude::PolarsError> for ImportError {
    fn from(e: polars::prelude::PolarsError) -> Self {
        ImportError::Pipeline(e.into())
    }
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    /// The file-level verdict, when the file was rejected (nothing loaded).
    pub rejection: Option<Rejection>,
    /// Row counts (accepted files).
    pub counts: Option<RowCounts>,
    /// People written by the load (inserted or updated).
    pub written: u64,
    /// File-level warnings (unknown columns…).
    pub warnings: Vec<String>,
    /// The report files, relative to the report folder.
    pub reports: ReportSet,
    /// What to record in `uploads` (the caller sets where the reports are).
    pub outcome: UploadOutcome,
}

/// Validates `bytes` against the registry as `orgs`' uploader, loads the valid rows under
/// `upload_id`, and writes every report into `out`.
#[tracing::instrument(skip_all, fields(upload_id = upload_id, bytes = bytes.len()))]
pub async fn import(
    pool: &PgPool,
    upload_id: i64,
    orgs: DbOrgs,
    bytes: Vec<u8>,
    opts: ValidateOptions,
    out: PathBuf,
) -> Result<Imported, ImportError> {
    let uploader_id = orgs.uploader_id();
    let template = opts.template;
    let clock = Instant::now();
    let (outcome, batch) = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let outcome = pipeline::validate_bytes(&bytes, &opts, &orgs)?;
        let batch = match &outcome {
            Outcome::Accepted(v) => Some(LoadBatch::prepare(v)?),
            Outcome::Rejected(_) => None,
        };
        Ok((outcome, batch))
    })
    .await??;
    let validate_s = clock.elapsed().as_secs_f64();
    let (mut v, batch) = match (outcome, batch) {
        (Outcome::Accepted(v), Some(batch)) => (v, batch),
        (Outcome::Rejected(r), _) => return rejected(template, r, out, validate_s).await,
        (Outcome::Accepted(_), None) => unreachable!("an accepted file is always prepared"),
    };
    let started = Instant::now();
    let loaded = load(pool, &batch, uploader_id, Some(upload_id)).await?;
    let load_s = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = batch.rows,
        written = loaded.rows,
        seconds = load_s,
        rows_per_second = (batch.rows as f64 / load_s.max(1e-9)).round(),
        "loaded"
    );
    let found: Vec<_> = loaded.findings.iter().map(|f| (f.row, f.code)).collect();
    let report_clock = Instant::now();
    let (reports, counts, findings, warnings) =
        tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
            v.add_findings(&found)?;
            v.keep_issue_rows()?;
            let set = report::write_reports(&v, &out)?;
            Ok((set, v.counts()?, findings_copy(&v)?, v.warnings.clone()))
        })
        .await??;
    let outcome = UploadOutcome {
        status: "succeeded",
        counts: Some(counts),
        file_error: None,
        timings: serde_json::json!({
            "validate_s": validate_s,
            "load_s": load_s,
            "report_s": report_clock.elapsed().as_secs_f64(),
        }),
        report_prefix: String::new(),
        report_keys: reports.files.clone(),
        reports: stored_reports(&reports, ""),
        findings,
    };
    Ok(Imported {
        rejection: None,
        counts: Some(counts),
        written: loaded.rows,
        warnings,
        reports,
        outcome,
    })
}

/// A file-level verdict: its reports written into `out`, nothing loaded. Also for files
/// refused before they are read (an object over the size limit).
pub async fn rejected(
    template: schemas::TemplateKind,
    rejection: Rejection,
    out: PathBuf,
    validate_s: f64,
) -> Result<Imported, ImportError> {
    let (r, reports) = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let set = report::write_rejected(template, &rejection, &out)?;
        Ok((rejection, set))
    })
    .await??;
    let outcome = UploadOutcome {
        status: "rejected",
        counts: None,
        file_error: Some(serde_json::json!({"code": r.code.code(), "message": r.message})),
        timings: serde_json::json!({ "validate_s": validate_s }),
        report_prefix: String::new(),
        report_keys: reports.files.clone(),
        reports: stored_reports(&reports, ""),
        findings: String::new(),
    };
    Ok(Imported {
        rejection: Some(r),
        counts: None,
        written: 0,
        warnings: Vec::new(),
        reports,
        outcome,
    })
}
