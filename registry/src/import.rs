//! `import` as one call — validate against the registry, load, write and publish the
//! reports, record the upload — shared by `roster import` and the job worker, so both
//! give the same verdicts and reports.
//!
//! Order of effects: the load is written but not committed, and meanwhile, from the
//! moment its findings are known, the reports are written (and, for the worker, each
//! organisation workbook put as it is made); then the rest is published (a folder for
//! the CLI, the bucket for the worker) and the upload's outcome recorded inside the
//! load's transaction; then it commits. So rows are never visible while their upload is
//! `running` or `failed`, and a failure anywhere before the commit leaves nothing
//! loaded. CPU stages run on blocking threads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::postgres::PgPool;

use pipeline::report::{self, ReportSet};
use pipeline::validate::RowCounts;
use pipeline::{Outcome, PipelineError, Rejection, ValidateOptions};

use crate::RegistryError;
use crate::load::{LoadBatch, LoadError, load_begin_telling};
use crate::orgs::DbOrgs;
use crate::uploads::{
    StoredReport, UploadOutcome, findings_copy, finish_upload_in, stored_reports,
};

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
    /// Publishing the reports failed (the caller's error, for it to judge).
    #[error("publishing the reports: {0}")]
    Publish(Box<dyn std::error::Error + Send + Sync>),
}

/// Where the reports went, for `uploads`: returned by the caller's publish step.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Where the reports are: a folder, or `s3://bucket/prefix/`.
    pub prefix: String,
    pub keys: Vec<String>,
    pub reports: Vec<StoredReport>,
    /// Seconds of the caller's own stages, added to the upload's timings.
    pub timings: Vec<(&'static str, f64)>,
    /// The worker's attempt: the outcome is recorded only while it is the latest.
    pub attempt: Option<i32>,
}

impl Published {
    /// Reports that stay where they were written (`roster import`).
    pub fn local(out: &Path, set: &ReportSet) -> Published {
        Published {
            prefix: out.display().to_string(),
            keys: set.files.clone(),
            reports: stored_reports(set, ""),
            timings: Vec::new(),
            attempt: None,
        }
    }
}

/// Where `import` writes the reports: a folder, and who takes each organisation workbook
/// as it is made instead of the folder (the worker uploads it then).
pub struct ReportsTo {
    pub dir: PathBuf,
    pub on_workbook: Option<report::OnWorkbook>,
}

impl ReportsTo {
    /// A folder, every report in it.
    pub fn dir(dir: PathBuf) -> ReportsTo {
        ReportsTo {
            dir,
            on_workbook: None,
        }
    }
}

/// Error of a publish step.
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

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
/// `upload_id`, writes every report into `reports_to.dir` (handing each organisation
/// workbook to its `on_workbook`, when there is one, as it is made), has `publish` put
/// them where they belong, and records the outcome: all of it, or (on an error) nothing.
#[tracing::instrument(skip_all, fields(upload_id = upload_id, bytes = bytes.len()))]
pub async fn import(
    pool: &PgPool,
    upload_id: i64,
    orgs: DbOrgs,
    bytes: Vec<u8>,
    opts: ValidateOptions,
    reports_to: ReportsTo,
    publish: impl AsyncFnOnce(&Path, &ReportSet) -> Result<Published, PublishError>,
) -> Result<Imported, ImportError> {
    let uploader_id = orgs.uploader_id();
    let template = opts.template;
    let clock = Instant::now();
    let (outcome, batch) = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let outcome = pipeline::validate_bytes(&bytes, &opts, &orgs)?;
        // The keys only: the registry's checks begin while the COPY text is made.
        let batch = match &outcome {
            Outcome::Accepted(v) => Some(LoadBatch::keys(v)?),
            Outcome::Rejected(_) => None,
        };
        Ok((outcome, batch))
    })
    .await??;
    let validate_s = clock.elapsed().as_secs_f64();
    let (mut v, batch) = match (outcome, batch) {
        (Outcome::Accepted(v), Some(batch)) => (v, batch),
        (Outcome::Rejected(r), _) => {
            // The workbook hook goes with `reports_to`: `publish` waits for the hook's
            // stream to end, so it must be gone before publish runs.
            return rejected(
                pool, upload_id, template, r, reports_to, validate_s, publish,
            )
            .await;
        }
        (Outcome::Accepted(_), None) => unreachable!("an accepted file is always prepared"),
    };
    let ReportsTo {
        dir: out,
        on_workbook,
    } = reports_to;
    // The load and the reports overlap: the reports need only the load's findings, told
    // once the registry has answered for every row, while new people are still written.
    let (batch, source) = batch;
    let started = Instant::now();
    let text = source.coming();
    let (tell, told) = tokio::sync::oneshot::channel();
    let load = async {
        let pending = load_begin_telling(
            pool,
            &batch,
            uploader_id,
            Some(upload_id),
            Some(tell),
            Some(text),
        )
        .await?;
        let load_s = started.elapsed().as_secs_f64();
        tracing::info!(
            rows = batch.rows,
            written = pending.loaded().rows,
            seconds = load_s,
            rows_per_second = (batch.rows as f64 / load_s.max(1e-9)).round(),
            "loaded, not yet committed"
        );
        Ok::<_, ImportError>((pending, load_s))
    };
    let report_out = out.clone();
    let made = async {
        // Never told: the load failed before its checks ended, and its error is reported.
        let Ok(found) = told.await else {
            return Ok(None);
        };
        let checks_s = started.elapsed().as_secs_f64();
        let report_clock = Instant::now();
        let found: Vec<_> = found.iter().map(|f| (f.row, f.code)).collect();
        let made = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
            behind_the_load(move || {
                v.add_findings(&found)?;
                v.keep_issue_rows()?;
                // `on_workbook` ends here, before `publish` waits for what it started.
                let set = report::write_reports_with(&v, &report_out, on_workbook.as_ref())?;
                drop(on_workbook);
                Ok((set, v.counts()?, findings_copy(&v)?, v.warnings.clone()))
            })
        })
        .await??;
        Ok::<_, ImportError>(Some((made, checks_s, report_clock.elapsed().as_secs_f64())))
    };
    // Both end before either result is used: a failed load never leaves the reports
    // still being written behind it.
    let (loaded, made) = tokio::join!(load, made);
    let (mut pending, load_s) = loaded?;
    let ((reports, counts, findings, warnings), checks_s, report_s) =
        made?.ok_or(LoadError::ChecksEnded)?;
    drop(batch);
    let mut outcome = UploadOutcome {
        status: "succeeded",
        counts: Some(counts),
        file_error: None,
        timings: serde_json::json!({
            "validate_s": validate_s,
            "load_s": load_s,
            // Seconds into the load when the reports began (they overlap the rest of it).
            "checks_s": checks_s,
            "report_s": report_s,
        }),
        report_prefix: String::new(),
        report_keys: Vec::new(),
        reports: Vec::new(),
        findings,
        attempt: None,
    };
    let published = publish(&out, &reports)
        .await
        .map_err(ImportError::Publish)?;
    record(pending.conn(), upload_id, &mut outcome, published).await?;
    let commit = Instant::now();
    let loaded = pending.commit().await?;
    tracing::debug!(seconds = commit.elapsed().as_secs_f64(), "committed");
    Ok(Imported {
        rejection: None,
        counts: Some(counts),
        written: loaded.rows,
        warnings,
        reports,
        outcome,
    })
}

/// Sets where the reports are and records the outcome, in the caller's transaction.
async fn record(
    conn: &mut sqlx::PgConnection,
    upload_id: i64,
    outcome: &mut UploadOutcome,
    published: Published,
) -> Result<(), ImportError> {
    outcome.report_prefix = published.prefix;
    outcome.report_keys = published.keys;
    outcome.reports = published.reports;
    outcome.attempt = published.attempt;
    if let Some(t) = outcome.timings.as_object_mut() {
        for (name, seconds) in published.timings {
            t.insert(name.into(), seconds.into());
        }
    }
    finish_upload_in(conn, upload_id, outcome).await?;
    Ok(())
}

/// A file-level verdict: its reports written into `reports_to.dir` and published,
/// nothing loaded. Also for files refused before they are read (an object over the size
/// limit). A rejected file has no organisation workbooks: the hook of `reports_to` is
/// dropped first, which ends the stream a worker's `publish` waits for. Taking the whole
/// `ReportsTo` makes that impossible to forget.
pub async fn rejected(
    pool: &PgPool,
    upload_id: i64,
    template: schemas::TemplateKind,
    rejection: Rejection,
    reports_to: ReportsTo,
    validate_s: f64,
    publish: impl AsyncFnOnce(&Path, &ReportSet) -> Result<Published, PublishError>,
) -> Result<Imported, ImportError> {
    let ReportsTo {
        dir: out,
        on_workbook,
    } = reports_to;
    drop(on_workbook);
    let report_out = out.clone();
    let (r, reports) = tokio::task::spawn_blocking(move || -> Result<_, ImportError> {
        let set = report::write_rejected(template, &rejection, &report_out)?;
        Ok((rejection, set))
    })
    .await??;
    let mut outcome = UploadOutcome {
        status: "rejected",
        counts: None,
        file_error: Some(serde_json::json!({"code": r.code.code(), "message": r.message})),
        timings: serde_json::json!({ "validate_s": validate_s }),
        report_prefix: String::new(),
        report_keys: Vec::new(),
        reports: Vec::new(),
        findings: String::new(),
        attempt: None,
    };
    let published = publish(&out, &reports)
        .await
        .map_err(ImportError::Publish)?;
    let mut tx = pool.begin().await.map_err(RegistryError::from)?;
    record(&mut tx, upload_id, &mut outcome, published).await?;
    tx.commit().await.map_err(RegistryError::from)?;
    Ok(Imported {
        rejection: Some(r),
        counts: None,
        written: 0,
        warnings: Vec::new(),
        reports,
        outcome,
    })
}

/// Runs `work` (the reports, written while the COPY goes on) on threads of their own at
/// a lower scheduling priority (nice 10, Linux): the COPY's one backend is what the
/// upload waits for, and the reports, with seconds to spare before it ends, take the CPU
/// it leaves. Where cores are free this changes nothing; where they are not (2 cores,
/// the checks, the COPY text and the reports all runnable), the COPY is not the one
/// that waits. Elsewhere than Linux, or when the threads cannot be made, `work` runs
/// where it is called.
fn behind_the_load<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(|i| format!("reports-{i}"))
        .start_handler(|_| lower_this_threads_priority())
        .build();
    match pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

/// Nice 10 for the calling thread only (Linux gives each thread its own nice value).
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority with PRIO_PROCESS and 0 changes the calling thread's nice value
    // and touches no memory; a refusal leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
