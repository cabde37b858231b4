//! The commands of the service, which keeps its state in the registry and the bucket:
//! `submit` an upload, run `worker`s, ask an upload's `status` and its `reports`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::out::say;
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::Args;
use pipeline::ReadLimits;

use crate::database::{DatabaseArgs, with_db, with_pool};
use crate::offline::Template;

/// Where the service keeps its state: the database and the bucket (AWS conventions for
/// the rest: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
#[derive(Args)]
pub struct ServiceArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The bucket holding uploads and reports.
    #[arg(long, env = "ROSTER_BUCKET")]
    bucket: String,
}

#[derive(Args)]
pub struct SubmitArgs {
    /// A local file, or s3://BUCKET/KEY.
    source: String,
    /// Full name of the uploading organisation.
    #[arg(long)]
    uploader: String,
    #[arg(long, value_enum, default_value = "members")]
    template: Template,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// Uploads processed at once by this process.
    #[arg(long, env = "ROSTER_CONCURRENCY", default_value_t = 1)]
    concurrency: usize,
    /// Attempts per upload before it ends `failed`.
    #[arg(long, env = "ROSTER_JOB_ATTEMPTS", default_value_t = 5)]
    attempts: u32,
    /// Delay before the second attempt in milliseconds; doubles each time (≤ 60 s).
    #[arg(long, env = "ROSTER_JOB_BACKOFF_MS", default_value_t = 2000)]
    backoff_ms: u64,
    /// Heartbeat period in seconds; a worker silent for 3 periods is dead and its
    /// upload goes back to the queue.
    #[arg(long, env = "ROSTER_HEARTBEAT_SECS", default_value_t = 10)]
    heartbeat_secs: u64,
    /// The upload date (default: today in China).
    #[arg(long, env = "ROSTER_AS_OF")]
    as_of: Option<NaiveDate>,
    /// Largest upload read, in MiB; a larger object is rejected without downloading it.
    #[arg(long, env = "ROSTER_MAX_FILE_MB", default_value_t = 512)]
    max_file_mb: u64,
    /// When to compute the nightly statistics, China time (cron with seconds);
    /// `off` leaves them to other workers. One snapshot a night however many run.
    #[arg(long, env = "ROSTER_STATS_SCHEDULE", default_value = jobs::cron::DEFAULT_SCHEDULE)]
    stats_schedule: String,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address.
    #[arg(long, env = "ROSTER_METRICS")]
    metrics: Option<String>,
    /// Longest one stage of a job (fetch, validate and load, publish) may take, in
    /// seconds; past it the attempt is cancelled and tried again.
    #[arg(long, env = "ROSTER_STAGE_DEADLINE_SECS", default_value_t = 600)]
    stage_deadline_secs: u64,
    /// After SIGTERM, seconds jobs in flight may take to finish; past it the worker
    /// exits and they go back to the queue.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    shutdown_grace_secs: u64,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Args)]
pub struct StatusArgs {
    upload_id: i64,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Args)]
pub struct ReportsArgs {
    upload_id: i64,
    /// How long the links work, in seconds.
    #[arg(long, env = "ROSTER_LINK_EXPIRY_SECS", default_value_t = 3600)]
    expires_secs: u64,
    #[command(flatten)]
    service: ServiceArgs,
}

/// `roster submit`: the object stored, the upload registered and its job enqueued.
pub fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let SubmitArgs {
        source,
        uploader,
        template,
        service,
    } = args;
    with_db(&service.database_url, async |pool| {
        jobs::setup(&pool).await?;
        let storage = jobs::Storage::from_env(&service.bucket).await;
        let source = match source.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, key) = rest.split_once('/').context("expected s3://BUCKET/KEY")?;
                jobs::Source::Object {
                    bucket: bucket.into(),
                    key: key.into(),
                }
            }
            None => {
                storage.ensure_bucket().await?;
                jobs::Source::File(Path::new(&source))
            }
        };
        let done = jobs::submit(&pool, &storage, source, &uploader, template.into()).await?;
        say!("{}", done.upload_id);
        if !done.enqueued {
            eprintln!("同一文件已提交过（上传 {}），未重复排队", done.upload_id);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `roster worker`: queue workers until SIGTERM or Ctrl-C.
pub fn worker(args: WorkerArgs) -> Result<ExitCode> {
    let connections = 4 + 3 * args.concurrency as u32;
    with_pool(&args.service.database_url, connections, async |pool| {
        jobs::setup(&pool).await?;
        let storage = jobs::Storage::from_env(&args.service.bucket).await;
        let options = jobs::WorkerOptions {
            concurrency: args.concurrency,
            attempts: args.attempts.max(1),
            backoff: Duration::from_millis(args.backoff_ms),
            liveness: jobs::queue::Liveness {
                heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
                missed_heartbeats: 3,
            },
            as_of: args.as_of,
            limits: ReadLimits {
                max_file_bytes: args.max_file_mb << 20,
                ..ReadLimits::default()
            },
            stats_schedule: match args.stats_schedule.as_str() {
                "off" => None,
                expr => Some(jobs::cron::schedule(expr)?),
            },
            stage_deadline: Duration::from_secs(args.stage_deadline_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            ..jobs::WorkerOptions::default()
        };
        if let Some(addr) = &args.metrics {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let (pool, storage) = (pool.clone(), storage.clone());
            tokio::spawn(async move {
                if let Err(e) = web::metrics::serve_worker(listener, pool, storage).await {
                    tracing::error!(error = %e, "metrics endpoint stopped");
                }
            });
        }
        jobs::run(pool, storage, options, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `roster status`: an upload as JSON.
pub fn status(args: StatusArgs) -> Result<ExitCode> {
    with_db(&args.db.database_url, async |pool| {
        let status = upload(&pool, args.upload_id).await?;
        say!("{}", serde_json::to_string_pretty(&status)?);
        Ok(ExitCode::SUCCESS)
    })
}

/// `roster reports`: presigned links to an upload's reports, as JSON.
pub fn reports(args: ReportsArgs) -> Result<ExitCode> {
    with_db(&args.service.database_url, async |pool| {
        let status = upload(&pool, args.upload_id).await?;
        let storage = jobs::Storage::from_env(&args.service.bucket).await;
        let expires = Duration::from_secs(args.expires_secs);
        let links = jobs::status::report_links(&storage, &status, expires).await?;
        say!("{}", serde_json::to_string_pretty(&links)?);
        Ok(ExitCode::SUCCESS)
    })
}

async fn upload(pool: &sqlx::PgPool, id: i64) -> Result<registry::uploads::UploadStatus> {
    match registry::uploads::status(pool, id).await? {
        Some(status) => Ok(status),
        None => bail!("没有上传 {id}"),
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ROSTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Largest upload accepted, in MiB; a larger one is refused while it streams.
    #[arg(long, env = "ROSTER_MAX_FILE_MB", default_value_t = 512)]
    max_file_mb: u64,
    /// The server runs behind HTTPS: cookies are marked Secure.
    #[arg(long, env = "ROSTER_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Where uploads are spooled on their way to object storage (default: the system's
    /// temporary folder).
    #[arg(long, env = "ROSTER_SPOOL_DIR")]
    spool_dir: Option<std::path::PathBuf>,
    /// Database connections of this process.
    #[arg(long, env = "ROSTER_DB_CONNECTIONS", default_value_t = 16)]
    connections: u32,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address, for operators
    /// (the public port answers only /healthz).
    #[arg(long, env = "ROSTER_METRICS")]
    metrics: Option<String>,
    /// Proxies in front of the service, by IP address, comma-separated: only their
    /// X-Forwarded-For names the client.
    #[arg(long, env = "ROSTER_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Seconds a connection may take to send a request's headers.
    #[arg(long, env = "ROSTER_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a request (but an upload) may take, its body included.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    #[command(flatten)]
    service: ServiceArgs,
}

/// `roster serve`: the web service until SIGTERM or Ctrl-C (requests in flight finish).
pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    with_pool(&args.service.database_url, args.connections, async |pool| {
        jobs::setup(&pool).await?;
        let storage = jobs::Storage::from_env(&args.service.bucket).await;
        storage.ensure_bucket().await?;
        let config = web::Config {
            max_upload_bytes: args.max_file_mb << 20,
            secure_cookies: args.secure_cookies,
            spool_dir: args.spool_dir.unwrap_or_else(std::env::temp_dir),
            trusted_proxies: args.trusted_proxies,
            header_read_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            ..web::Config::default()
        };
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        eprintln!("roster serve: http://{}", listener.local_addr()?);
        let state = web::AppState::new(pool, storage, config);
        // One signal stops both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stopped_too = stopped.clone();
        let when_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Some(addr) = &args.metrics {
            let operator = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    web::serve_operator(operator, state, when_stopped(stopped_too)).await
                {
                    tracing::error!(error = %e, "operator endpoint stopped");
                }
            });
        }
        tokio::spawn(async move {
            let _ = shutdown_signal().await;
            let _ = stop.send(true);
        });
        web::serve(listener, state, when_stopped(stopped)).await?;
        Ok(ExitCode::SUCCESS)
    })
}
