//! The upload worker: fetch the object, run the same import as `roster import`, publish
//! every report under `reports/<upload_id>/` (the organisation workbooks as entries of
//! one bundle object, [`BUNDLE`]), record the outcome in `uploads`.
//!
//! Failure semantics: a bad file is a verdict (`rejected`, final, never retried).
//! Storage or database failures are retried inside the job with exponential backoff;
//! after the last attempt the upload ends `failed` with the reason. A job that runs again
//! (its worker died) ends as if it had run once: the load is idempotent, the reports
//! replace the previous set, and a finished upload is never processed twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder};
use apalis_cron::CronScheduler;
use futures::{StreamExt, TryStreamExt};
use sqlx::PgPool;

use crate::bundle::BUNDLE;
use crate::queue::{Liveness, ProcessUpload, backend};
use crate::storage::{Storage, StorageError};

/// The pause before a worker that ended with an error is started again.
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// Report uploads in flight at once (the few reports that are not in the bundle).
const PARALLEL_PUTS: usize = 8;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs processed at once in this process.
    pub concurrency: usize,
    /// Attempts per job before it ends `failed`.
    pub attempts: u32,
    /// Delay before the second attempt; doubles each time, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub liveness: Liveness,
    /// The upload date ages are computed against (`None`: today in China).
    pub as_of: Option<chrono::NaiveDate>,
    /// Name prefix of this process's workers (unique per process).
    pub name: String,
    /// When to compute the nightly statistics (`None`: not in this process).
    pub stats_schedule: Option<cron::Schedule>,
    /// What the reader accepts (an object over the size limit is not downloaded).
    pub limits: pipeline::ReadLimits,
    /// The longest one stage of an attempt (fetch, validate with the load and the
    /// reports, publish) may take: past it the attempt is cancelled and tried again, so
    /// no job waits forever on a host that stopped answering.
    pub stage_deadline: Duration,
    /// After SIGTERM, how long jobs in flight may take to finish. Past it the worker
    /// exits anyway: what the job wrote is uncommitted, and its upload goes back to the
    /// queue when the heartbeat stops ([`Liveness`]).
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            attempts: 5,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            liveness: Liveness::default(),
            as_of: None,
            name: format!("roster-{}", std::process::id()),
            stats_schedule: None,
            limits: pipeline::ReadLimits::default(),
            stage_deadline: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// What a job needs, shared by the workers of a process.
struct Context {
    pool: PgPool,
    storage: Storage,
    options: WorkerOptions,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Import(#[from] registry::ImportError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("temporary folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("upload {0} does not exist")]
    NoSuchUpload(i64),
    #[error("上传组织（id {0}）不在数据库中")]
    NoSuchUploader(i64),
    /// Another worker claimed the upload since this one's last attempt.
    #[error("the upload was taken over by another worker")]
    Superseded,
    /// A stage ran past [`WorkerOptions::stage_deadline`] and was cancelled.
    #[error("stage {stage} ran past its deadline of {seconds} s")]
    Deadline { stage: &'static str, seconds: u64 },
}

impl AttemptError {
    /// What an admin reads of this failure: a Chinese reason with no internal detail
    /// (hosts, keys, SQL). The detail goes to the worker's log.
    pub fn reason(&self) -> &'static str {
        match self {
            AttemptError::Storage(_) => "对象存储暂时无法访问",
            AttemptError::Import(registry::ImportError::Publish(_)) => "报告保存失败",
            AttemptError::Import(registry::ImportError::Db(_) | registry::ImportError::Load(_))
            | AttemptError::Registry(_) => "数据库暂时无法访问或拒绝了写入",
            AttemptError::Import(_) | AttemptError::Io(_) => "系统内部错误",
            AttemptError::NoSuchUpload(_) => "上传记录不存在",
            AttemptError::NoSuchUploader(_) => "上传组织不在系统中",
            AttemptError::Deadline { .. } => "处理超时",
            AttemptError::Superseded => "已由其他工作进程接手",
        }
    }

    /// Another worker's attempt has taken the upload over.
    fn is_superseded(&self) -> bool {
        matches!(
            self,
            AttemptError::Superseded
                | AttemptError::Registry(registry::RegistryError::Superseded { .. })
                | AttemptError::Import(registry::ImportError::Db(
                    registry::RegistryError::Superseded { .. }
                ))
        )
    }

    fn is_transient(&self) -> bool {
        match self {
            AttemptError::Storage(e) => e.is_transient(),
            AttemptError::Import(registry::ImportError::Publish(e)) => e
                .downcast_ref::<StorageError>()
                .is_none_or(StorageError::is_transient),
            AttemptError::NoSuchUpload(_) | AttemptError::NoSuchUploader(_) => false,
            AttemptError::Deadline { .. } => true,
            _ => true,
        }
    }
}

/// Runs `options.concurrency` workers on the queue until `shutdown` resolves (SIGTERM,
/// Ctrl-C); jobs in flight are finished first.
pub async fn run(
    pool: PgPool,
    storage: Storage,
    options: WorkerOptions,
    shutdown: impl Future<Output = std::io::Result<()>> + Send,
) -> Result<(), apalis::prelude::MonitorError> {
    let (n, liveness, name) = (
        options.concurrency.max(1),
        options.liveness,
        options.name.clone(),
    );
    let ctx = Arc::new(Context {
        pool: pool.clone(),
        storage,
        options,
    });
    // A worker whose queue polling fails (the database restarting, its connections
    // dropped) ends with an error and, by default, stays down with its job. It is
    // restarted instead, after a pause so a database that is still down is not polled
    // in a tight loop; the job it held goes back to the queue when its heartbeat stops
    // (`Liveness`), and the upload ends as a single clean run would.
    let mut monitor = Monitor::new().should_restart(|worker, error| {
        tracing::warn!(
            worker = worker.name(),
            restarts = worker.restarts(),
            error = %error,
            "worker ended with an error; restarting it"
        );
        std::thread::sleep(RESTART_PAUSE);
        true
    });
    for i in 0..n {
        let (pool, ctx, name) = (pool.clone(), ctx.clone(), name.clone());
        monitor = monitor.register(move |restarts| {
            WorkerBuilder::new(format!("{name}-{i}-{restarts}"))
                .backend(backend(&pool, liveness))
                .data(ctx.clone())
                .build(process)
        });
    }
    if let Some(schedule) = ctx.options.stats_schedule.clone() {
        monitor = monitor.register(move |restarts| {
            WorkerBuilder::new(format!("{name}-stats-{restarts}"))
                .backend(CronScheduler::new(schedule.clone()).with_timezone(pipeline::china()))
                .data(pool.clone())
                .build(crate::cron::nightly)
        });
    }
    // SIGTERM: the monitor stops taking jobs and waits for those in flight, but never
    // longer than the grace, so a worker always stops (SPEC: jobs in flight finish or are
    // handed back).
    let grace = ctx.options.shutdown_grace;
    let (fired, mut told) = tokio::sync::watch::channel(false);
    let signal = async move {
        let r = shutdown.await;
        let _ = fired.send(true);
        r
    };
    let overdue = async move {
        // The sender dropped unfired: no signal will come; the monitor decides.
        if told.wait_for(|f| *f).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        done = monitor.run_with_signal(signal) => done,
        () = overdue => {
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "jobs still in flight after the shutdown grace: left uncommitted, handed back to the queue"
            );
            Ok(())
        }
    }
}

/// Where an attempt's reports go: its own folder under the upload's, so an attempt that
/// was taken over and writes late never overwrites the reports of the one that won.
fn report_prefix(upload_id: i64, attempt: i32) -> String {
    format!("reports/{upload_id}/{attempt}/")
}

/// The job: attempts with backoff; the last failure is recorded as `failed`. An attempt
/// that finds itself taken over by another worker (this one was cut off for longer than
/// its heartbeat) records nothing, removes what it stored, and ends the job here.
async fn process(job: ProcessUpload, ctx: Data<Arc<Context>>) -> Result<(), BoxDynError> {
    let ctx: Arc<Context> = (*ctx).clone();
    let opts = &ctx.options;
    let upload_id = job.upload_id;
    let mut delay = opts.backoff;
    let mut tries = 1;
    // The upload's attempt number this worker holds (`None` before its first claim).
    let mut held: Option<i32> = None;
    loop {
        let result = attempt_once(&ctx, upload_id, held, &mut held).await;
        if let (Err(_), Some(attempt)) = (&result, held) {
            // Whatever this attempt stored is of no use: a later attempt writes its own,
            // elsewhere, so this need not hold the next attempt up.
            tokio::spawn(forget_reports(ctx.storage.clone(), upload_id, attempt));
        }
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_superseded() => {
                tracing::warn!(
                    upload_id,
                    attempt = held,
                    "taken over by another worker; stopping"
                );
                return Ok(());
            }
            Err(e) if e.is_transient() && tries < opts.attempts => {
                tracing::warn!(upload_id, attempt = held, tries, error = %e, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(opts.max_backoff);
                tries += 1;
            }
            Err(e) => {
                tracing::error!(upload_id, attempt = held, tries, error = %e, "failed");
                let reason = format!(
                    "{tries} 次尝试后失败：{}，请稍后重新上传；如仍失败，请联系系统管理员（上传编号 {upload_id}）",
                    e.reason(),
                );
                registry::uploads::mark_failed(&ctx.pool, upload_id, &reason, held).await?;
                return Ok(());
            }
        }
    }
}

/// Removes an attempt's reports, as far as the store answers (a later attempt's publish
/// removes what is left under the upload).
async fn forget_reports(storage: Storage, upload_id: i64, attempt: i32) {
    let prefix = report_prefix(upload_id, attempt);
    let gone = async {
        let keys = storage.list(&prefix).await?;
        storage.delete_many(&keys).await
    };
    match tokio::time::timeout(Duration::from_secs(30), gone).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(upload_id, attempt, error = %e, "reports not removed"),
        Err(_) => tracing::debug!(upload_id, attempt, "reports not removed in time"),
    }
}

/// One attempt at an upload, cancelled when one of its stages runs past the deadline.
#[tracing::instrument(skip_all, fields(upload_id = upload_id))]
async fn attempt_once(
    ctx: &Context,
    upload_id: i64,
    after: Option<i32>,
    held: &mut Option<i32>,
) -> Result<(), AttemptError> {
    let progress = Progress::start(ctx.pool.clone(), upload_id);
    let deadline = ctx.options.stage_deadline;
    let watchdog = async {
        loop {
            let (stage, since) = progress.current();
            let left = deadline.saturating_sub(since.elapsed());
            if left.is_zero() {
                return AttemptError::Deadline {
                    stage,
                    seconds: deadline.as_secs(),
                };
            }
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        }
    };
    tokio::select! {
        done = attempt_stages(ctx, upload_id, after, held, &progress) => done,
        late = watchdog => Err(late),
    }
}

/// The stages of one attempt, each marked on `progress`.
async fn attempt_stages(
    ctx: &Context,
    upload_id: i64,
    after: Option<i32>,
    held: &mut Option<i32>,
    progress: &Progress,
) -> Result<(), AttemptError> {
    use registry::uploads::{Claim, Claimed};
    let Claimed {
        uploader_id,
        template,
        bucket,
        key,
        attempt,
    } = match registry::uploads::claim(&ctx.pool, upload_id, after).await? {
        Claim::Claimed(c) => c,
        // Already finished (a duplicate delivery): nothing to do.
        Claim::Finished => return Ok(()),
        Claim::Superseded => return Err(AttemptError::Superseded),
        Claim::Missing => return Err(AttemptError::NoSuchUpload(upload_id)),
    };
    *held = Some(attempt);
    let (bucket, key) = (
        bucket.unwrap_or_else(|| ctx.storage.bucket.clone()),
        key.unwrap_or_default(),
    );
    progress.stage("fetch");
    let opts = pipeline::ValidateOptions {
        template,
        as_of: ctx.options.as_of.unwrap_or_else(pipeline::today_in_china),
        limits: ctx.options.limits.clone(),
        sheet: None,
        progress: Some(progress.rows.clone()),
        issue_rows_only: false,
    };
    let dir = tempfile::tempdir()?;
    // A folder that does not exist yet: the reports are staged beside it and become it
    // with one rename.
    let out = dir.path().join("reports");
    let clock = Instant::now();
    let fetched = ctx
        .storage
        .get(&bucket, &key, opts.limits.max_file_bytes)
        .await;
    let fetch_s = clock.elapsed().as_secs_f64();
    // Publish: organisation workbooks are uploaded as they are made; then the rest of the
    // reports, then leftovers of an earlier attempt are dropped, so exactly one set
    // remains. It all happens before the load commits.
    let (on_workbook, streamed) = crate::bundle::stream(
        &ctx.storage,
        format!("{}{BUNDLE}", report_prefix(upload_id, attempt)),
        crate::bundle::PART_BYTES,
    );
    let publish_reports = async |dir: &std::path::Path, set: &pipeline::report::ReportSet| {
        progress.stage("publish");
        publish(
            &ctx.storage,
            upload_id,
            attempt,
            dir,
            set,
            fetch_s,
            streamed,
        )
        .await
        .map_err(|e| Box::new(e) as registry::import::PublishError)
    };
    let done = match fetched {
        // Too large to read: the reader's own verdict, without downloading the object.
        Err(StorageError::TooLarge { .. }) => {
            let verdict = pipeline::read::file_too_large(&opts.limits);
            registry::import::rejected(
                &ctx.pool,
                upload_id,
                template,
                verdict,
                registry::import::ReportsTo {
                    dir: out.clone(),
                    on_workbook: Some(on_workbook),
                },
                0.0,
                publish_reports,
            )
            .await?
        }
        Err(e) => return Err(e.into()),
        Ok(bytes) => {
            progress.stage("validate");
            let orgs = registry::DbOrgs::for_uploader_id(&ctx.pool, uploader_id)
                .await?
                .ok_or(AttemptError::NoSuchUploader(uploader_id))?;
            registry::import(
                &ctx.pool,
                upload_id,
                orgs,
                bytes,
                opts,
                registry::import::ReportsTo {
                    dir: out.clone(),
                    on_workbook: Some(on_workbook),
                },
                publish_reports,
            )
            .await?
        }
    };
    tracing::info!(
        status = done.outcome.status,
        written = done.written,
        "upload processed"
    );
    Ok(())
}

/// Waits for the workbook bundle, puts every other report of `set` (files under `dir`)
/// under `reports/<upload_id>/`, and deletes what an earlier attempt left there that this
/// one did not write, a thousand keys a request.
async fn publish(
    storage: &Storage,
    upload_id: i64,
    attempt: i32,
    dir: &std::path::Path,
    set: &pipeline::report::ReportSet,
    fetch_s: f64,
    streamed: crate::bundle::Storing,
) -> Result<registry::import::Published, StorageError> {
    let prefix = report_prefix(upload_id, attempt);
    let bundle_key = format!("{prefix}{BUNDLE}");
    let clock = Instant::now();
    let crate::bundle::Stored { spans, parts } =
        streamed.await.map_err(|e| StorageError::Unavailable {
            op: "upload reports",
            bucket: storage.bucket.clone(),
            key: bundle_key.clone(),
            detail: e.to_string(),
        })??;
    tracing::info!(
        upload_id,
        workbooks = spans.len(),
        parts,
        "workbook bundle stored"
    );
    let wait_s = clock.elapsed().as_secs_f64();
    let mut reports = registry::uploads::stored_reports(set, &prefix);
    let mut keys = Vec::new();
    let mut rest = Vec::new();
    for r in &mut reports {
        match spans.get(&r.name) {
            Some(span) => {
                r.key = bundle_key.clone();
                r.span = Some(*span);
            }
            None => {
                rest.push((dir.join(&r.name), r.key.clone()));
                keys.push(r.key.clone());
            }
        }
    }
    if !spans.is_empty() {
        keys.push(bundle_key);
    }
    futures::stream::iter(rest)
        .map(|(path, key)| async move { storage.put_file(&key, &path).await })
        .buffer_unordered(PARALLEL_PUTS)
        .try_collect::<()>()
        .await?;
    // Only an earlier attempt can have left keys under this upload's folder: the first
    // attempt lists nothing.
    if attempt > 1 {
        let wanted: std::collections::HashSet<&String> = keys.iter().collect();
        let stale: Vec<String> = storage
            .list(&format!("reports/{upload_id}/"))
            .await?
            .into_iter()
            .filter(|k| !wanted.contains(k))
            .collect();
        storage.delete_many(&stale).await?;
    }
    Ok(registry::import::Published {
        prefix: format!("s3://{}/{prefix}", storage.bucket),
        reports,
        keys,
        timings: vec![
            ("fetch_s", fetch_s),
            // Waiting for the bundle's last parts once the writer was done.
            ("publish_wait_s", wait_s),
            ("publish_s", clock.elapsed().as_secs_f64()),
        ],
        attempt: Some(attempt),
    })
}

/// Where a running upload is, written to `uploads` about once a second (the pages show
/// it) by a task that ends with this value.
struct Progress {
    rows: Arc<std::sync::atomic::AtomicUsize>,
    stage: Arc<std::sync::Mutex<&'static str>>,
    /// When the current stage began.
    since: std::sync::Mutex<Instant>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(1);

    fn start(pool: PgPool, upload_id: i64) -> Progress {
        let rows = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stage = Arc::new(std::sync::Mutex::new("queued"));
        let (r, s) = (rows.clone(), stage.clone());
        let ticker = tokio::spawn(async move {
            let mut last = None;
            loop {
                let now = (
                    *s.lock().unwrap_or_else(|e| e.into_inner()),
                    r.load(std::sync::atomic::Ordering::Relaxed) as u64,
                );
                if last != Some(now) {
                    // Progress is a display: a failed write is tried again next tick.
                    if registry::uploads::progress(&pool, upload_id, now.0, now.1)
                        .await
                        .is_ok()
                    {
                        last = Some(now);
                    }
                }
                tokio::time::sleep(Self::EVERY).await;
            }
        });
        Progress {
            rows,
            stage,
            since: std::sync::Mutex::new(Instant::now()),
            ticker,
        }
    }

    fn stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage;
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// The stage under way and when it began.
    fn current(&self) -> (&'static str, Instant) {
        (
            *self.stage.lock().unwrap_or_else(|e| e.into_inner()),
            *self.since.lock().unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}
