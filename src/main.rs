//! `roster`: the command line of the bulk-import pipeline (SPEC §11).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{FixedOffset, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use pipeline::orgs::OrgTree;
use pipeline::report;
use pipeline::sample::{SampleOptions, generate};
use pipeline::validate::RowCounts;
use pipeline::{Outcome, ReadLimits, ValidateOptions, validate_bytes};
use schemas::TemplateKind;

// polars allocates from many threads; glibc's arenas fragment under that load (see the
// peak memory of a 1M-row validation in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Bulk-import pipeline for member rosters (智慧团建)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Template {
    /// A. 导入下级团支部团员团干部
    Members,
    /// B. 导入本级团干部
    Cadres,
}

impl From<Template> for TemplateKind {
    fn from(t: Template) -> TemplateKind {
        match t {
            Template::Members => TemplateKind::Members,
            Template::Cadres => TemplateKind::Cadres,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate a roster offline against an org file and write the reports.
    Validate {
        /// The org file (CSV or xlsx, SPEC §2).
        #[arg(long, env = "ROSTER_ORGS")]
        orgs: PathBuf,
        #[command(flatten)]
        roster: RosterArgs,
    },
    /// Validate against the database, load the valid rows in one transaction, write the
    /// reports.
    Import {
        #[command(flatten)]
        roster: RosterArgs,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Put a roster into the uploads bucket (or take an object already there), register it
    /// by content hash, enqueue it; prints the upload id.
    Submit {
        /// A local file, or s3://BUCKET/KEY.
        source: String,
        /// Full name of the uploading organisation.
        #[arg(long)]
        uploader: String,
        #[arg(long, value_enum, default_value = "members")]
        template: Template,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Process queued uploads until SIGTERM or Ctrl-C (jobs in flight are finished).
    Worker {
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
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Completion statistics (SPEC §8).
    Stats {
        #[command(subcommand)]
        command: StatsCommand,
    },
    /// An upload's status, counts, timings and reports, as JSON.
    Status {
        upload_id: i64,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Download links (presigned) to an upload's reports, as JSON.
    Reports {
        upload_id: i64,
        /// How long the links work, in seconds.
        #[arg(long, env = "ROSTER_LINK_EXPIRY_SECS", default_value_t = 3600)]
        expires_secs: u64,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Benchmark floor: calamine alone reading every cell of an xlsx, nothing else.
    #[command(hide = true)]
    ReadFloor {
        file: PathBuf,
        /// Materialise the sheet (calamine `Range`) instead of streaming its cells.
        #[arg(long)]
        range: bool,
    },
    /// Apply the database migrations (idempotent).
    Migrate {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Organisation tree commands.
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Generate a synthetic roster and its org file.
    Sample {
        #[arg(long)]
        rows: usize,
        /// The roster to write (xlsx).
        #[arg(long)]
        out: PathBuf,
        /// Where to write the org file (CSV).
        #[arg(long)]
        orgs_out: Option<PathBuf>,
        /// Share of rows with one injected mistake.
        #[arg(long, default_value_t = 0.02)]
        error_rate: f64,
        #[arg(long, value_enum, default_value = "members")]
        template: Template,
        #[arg(long, default_value_t = 2017)]
        seed: u64,
        /// The upload date the sample is planned for (default: today in China).
        #[arg(long, env = "ROSTER_AS_OF")]
        as_of: Option<NaiveDate>,
    },
}

/// Where the service keeps its state: the database and the bucket (AWS conventions for
/// the rest: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
#[derive(Args)]
struct ServiceArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The bucket holding uploads and reports.
    #[arg(long, env = "ROSTER_BUCKET")]
    bucket: String,
}

/// What `validate` and `import` share: the roster and how to read it.
#[derive(Args)]
struct RosterArgs {
    /// The roster (xlsx, xlsm, xlsb, xls or ods).
    file: PathBuf,
    /// Full name of the uploading organisation.
    #[arg(long)]
    uploader: String,
    #[arg(long, value_enum, default_value = "members")]
    template: Template,
    /// Folder receiving the reports.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Read this sheet instead of the first visible one.
    #[arg(long)]
    sheet: Option<String>,
    /// Data rows accepted at most.
    #[arg(long, env = "ROSTER_MAX_ROWS", default_value_t = 1_048_576)]
    max_rows: usize,
    /// The upload date (default: today in China).
    #[arg(long, env = "ROSTER_AS_OF")]
    as_of: Option<NaiveDate>,
}

impl RosterArgs {
    fn options(&self, progress: bool) -> ValidateOptions {
        ValidateOptions {
            template: self.template.into(),
            as_of: self.as_of.unwrap_or_else(today_in_china),
            limits: ReadLimits {
                max_rows: self.max_rows,
                ..ReadLimits::default()
            },
            sheet: self.sheet.clone(),
            progress: progress.then(|| Arc::new(AtomicUsize::new(0))),
        }
    }

    fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.file).with_context(|| format!("reading {}", self.file.display()))
    }
}

#[derive(Subcommand)]
enum StatsCommand {
    /// Compute and store the snapshot of a date (default: today in China), replacing
    /// that date's snapshot if there is one.
    Run {
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// An organisation and every one below it, one row each (xlsx or csv by extension).
    Export {
        /// Full name of the organisation.
        #[arg(long)]
        org: String,
        #[arg(long)]
        out: PathBuf,
        /// The snapshot's date (default: the latest).
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Load or update the tree from an org file (CSV or xlsx); a bad file loads nothing.
    Import {
        file: PathBuf,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// Runs a database command on a small runtime of its own.
fn with_db<T>(url: &str, f: impl AsyncFnOnce(sqlx::PgPool) -> Result<T>) -> Result<T> {
    with_pool(url, 4, f)
}

/// Runs a database command with a pool of up to `connections`.
fn with_pool<T>(
    url: &str,
    connections: u32,
    f: impl AsyncFnOnce(sqlx::PgPool) -> Result<T>,
) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        use sqlx::ConnectOptions;
        // Bulk statements take seconds by design: slow-statement notes are debug output.
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .context("parsing DATABASE_URL")?
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .context("connecting to DATABASE_URL")?;
        f(pool).await
    })
}

fn today_in_china() -> NaiveDate {
    let east8 = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    Utc::now().with_timezone(&east8).date_naive()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // With RUST_LOG=info each stage logs its duration when it ends.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("错误：{e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { orgs, roster } => {
            let opts = roster.options(true);
            validate_command(&roster, &orgs, &opts)
        }
        Command::Import {
            roster,
            database_url,
        } => {
            let opts = roster.options(false);
            let bytes = roster.read()?;
            with_db(&database_url, async |pool| {
                import_command(pool, bytes, &roster.uploader, opts, roster.out.clone()).await
            })
        }
        Command::ReadFloor { file, range } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let clock = std::time::Instant::now();
            let cells = pipeline::read::read_floor(&bytes, range).map_err(anyhow::Error::msg)?;
            println!(
                "{} cells in {:.2} s ({})",
                cells,
                clock.elapsed().as_secs_f64(),
                if range { "Range" } else { "cell reader" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { database_url } => with_db(&database_url, async |pool| {
            jobs::setup(&pool).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }),
        Command::Submit {
            source,
            uploader,
            template,
            service,
        } => with_db(&service.database_url, async |pool| {
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
            println!("{}", done.upload_id);
            if !done.enqueued {
                eprintln!("同一文件已提交过（上传 {}），未重复排队", done.upload_id);
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Worker {
            concurrency,
            attempts,
            backoff_ms,
            heartbeat_secs,
            as_of,
            max_file_mb,
            stats_schedule,
            service,
        } => with_pool(
            &service.database_url,
            4 + 3 * concurrency as u32,
            async |pool| {
                jobs::setup(&pool).await?;
                let storage = jobs::Storage::from_env(&service.bucket).await;
                let options = jobs::WorkerOptions {
                    concurrency,
                    attempts: attempts.max(1),
                    backoff: Duration::from_millis(backoff_ms),
                    liveness: jobs::queue::Liveness {
                        heartbeat: Duration::from_secs(heartbeat_secs.max(1)),
                        missed_heartbeats: 3,
                    },
                    as_of,
                    limits: ReadLimits {
                        max_file_bytes: max_file_mb << 20,
                        ..ReadLimits::default()
                    },
                    stats_schedule: match stats_schedule.as_str() {
                        "off" => None,
                        expr => Some(jobs::cron::schedule(expr)?),
                    },
                    ..jobs::WorkerOptions::default()
                };
                jobs::run(pool, storage, options, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            },
        ),
        Command::Stats {
            command: StatsCommand::Run { date, database_url },
        } => with_db(&database_url, async |pool| {
            jobs::setup(&pool).await?;
            let date = date.unwrap_or_else(today_in_china);
            let mode = pipeline::stats::Mode::Replace;
            let s = pipeline::stats::run(&pool, date, mode)
                .await?
                .context("a replacing run always produces a snapshot")?;
            println!(
                "{}: {} organisations, {} people, {:.1} s",
                s.date, s.orgs, s.people, s.seconds
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Stats {
            command:
                StatsCommand::Export {
                    org,
                    out,
                    date,
                    database_url,
                },
        } => with_db(&database_url, async |pool| {
            let (date, rows) = pipeline::stats::export_rows(&pool, &org, date).await?;
            pipeline::stats::write_export(&rows, &out)?;
            println!("{date}: {} organisations → {}", rows.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }),
        Command::Status {
            upload_id,
            database_url,
        } => with_db(&database_url, async |pool| {
            let Some(status) = jobs::status::status(&pool, upload_id).await? else {
                bail!("没有上传 {upload_id}");
            };
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Reports {
            upload_id,
            expires_secs,
            service,
        } => with_db(&service.database_url, async |pool| {
            let Some(status) = jobs::status::status(&pool, upload_id).await? else {
                bail!("没有上传 {upload_id}");
            };
            let storage = jobs::Storage::from_env(&service.bucket).await;
            let links =
                jobs::status::report_links(&storage, &status, Duration::from_secs(expires_secs))
                    .await?;
            println!("{}", serde_json::to_string_pretty(&links)?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Orgs {
            command: OrgsCommand::Import { file, database_url },
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            with_db(&database_url, async |pool| {
                // Parents may be in the file or already registered.
                let tree = match pipeline::db::parse_org_file(&pool, bytes).await? {
                    Ok(tree) => tree,
                    Err(e) => {
                        eprintln!("{e}");
                        return Ok(ExitCode::from(2));
                    }
                };
                let done = pipeline::db::import_orgs(&pool, &tree).await?;
                println!(
                    "{} organisations: {} new, {} updated, {} secretary posts",
                    tree.len(),
                    done.inserted,
                    done.updated,
                    done.secretaries
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Sample {
            rows,
            out,
            orgs_out,
            error_rate,
            template,
            seed,
            as_of,
        } => {
            if rows == 0 || rows >= pipeline::sample::EXCEL_ROWS {
                bail!(
                    "--rows must be between 1 and {}",
                    pipeline::sample::EXCEL_ROWS - 1
                );
            }
            if !(0.0..=1.0).contains(&error_rate) {
                bail!("--error-rate must be between 0 and 1");
            }
            let progress = Progress::start("生成样例");
            let sample = generate(
                &SampleOptions {
                    rows,
                    template: template.into(),
                    error_rate,
                    seed,
                    as_of: as_of.unwrap_or_else(today_in_china),
                },
                &out,
            )
            .with_context(|| format!("writing {}", out.display()))?;
            progress.finish();
            let orgs_path = orgs_out.unwrap_or_else(|| out.with_extension("orgs.csv"));
            std::fs::write(&orgs_path, &sample.orgs_csv)
                .with_context(|| format!("writing {}", orgs_path.display()))?;
            println!(
                "{}: {} rows ({} injected findings); orgs: {}; uploader: {}",
                out.display(),
                sample.rows,
                sample.expected.len(),
                orgs_path.display(),
                sample.uploader
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `roster import`: validate against the database, load, write the reports, record it.
async fn import_command(
    pool: sqlx::PgPool,
    bytes: Vec<u8>,
    uploader: &str,
    opts: ValidateOptions,
    out: PathBuf,
) -> Result<ExitCode> {
    use pipeline::db::DbOrgs;
    let Some(orgs) = DbOrgs::for_uploader(&pool, uploader).await? else {
        bail!("上传组织“{uploader}”不在数据库中");
    };
    let sha = pipeline::db::content_sha256(&bytes);
    let upload_id =
        pipeline::db::begin_upload(&pool, orgs.uploader_id(), opts.template, &sha).await?;
    let mut done =
        pipeline::import::import(&pool, upload_id, orgs, bytes, opts, out.clone()).await?;
    done.outcome.report_prefix = out.display().to_string();
    pipeline::db::finish_upload(&pool, upload_id, &done.outcome).await?;
    if let Some(r) = &done.rejection {
        println!(
            "文件被拒绝 [{}]：{}\n报告：{}",
            r.code,
            r.message,
            out.display()
        );
        return Ok(ExitCode::from(2));
    }
    println!("已导入 {} 人", done.written);
    let c = done.counts.context("an accepted file has counts")?;
    Ok(print_counts(
        &c,
        &done.warnings,
        done.reports.files.len(),
        &out,
    ))
}

/// Prints the counts of an accepted file; the exit status follows them (SPEC §11).
fn print_counts(c: &RowCounts, warnings: &[String], files: usize, out: &Path) -> ExitCode {
    println!(
        "共 {} 行：可导入 {} 行，有错误 {} 行，有提示 {} 行\n报告（{} 个文件）：{}",
        c.total,
        c.valid,
        c.with_errors,
        c.with_warnings,
        files,
        out.display()
    );
    for w in warnings {
        println!("提示：{w}");
    }
    if c.with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn validate_command(roster: &RosterArgs, orgs: &Path, opts: &ValidateOptions) -> Result<ExitCode> {
    let (uploader, out) = (roster.uploader.as_str(), roster.out.as_path());
    let org_bytes =
        std::fs::read(orgs).with_context(|| format!("reading org file {}", orgs.display()))?;
    let tree = OrgTree::parse(&org_bytes)?;
    let Some(resolver) = tree.resolver(uploader) else {
        bail!("上传组织“{uploader}”不在组织文件中");
    };
    let bytes = roster.read()?;
    let progress = Progress::start("读取");
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut outcome = std::thread::scope(|s| {
        if let (Some(bar), Some(rows)) = (&progress.0, &opts.progress) {
            let done = &done;
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let n = rows.load(Ordering::Relaxed);
                    bar.set_message(format!("读取并校验：已读 {n} 行"));
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        let outcome = validate_bytes(&bytes, opts, &resolver);
        done.store(true, Ordering::Relaxed);
        outcome
    })?;
    // The file is read: its bytes are not needed by the reports.
    drop(bytes);
    progress.set("生成报告");
    let code = match &mut outcome {
        Outcome::Rejected(rejection) => {
            report::write_rejected(opts.template, rejection, out)?;
            progress.finish();
            println!(
                "文件被拒绝 [{}]：{}\n报告：{}",
                rejection.code,
                rejection.message,
                out.display()
            );
            ExitCode::from(2)
        }
        Outcome::Accepted(v) => {
            v.keep_issue_rows()?;
            let set = report::write_reports(v, out)?;
            progress.finish();
            print_counts(&v.counts()?, &v.warnings, set.files.len(), out)
        }
    };
    Ok(code)
}

/// A spinner on stderr when it is a terminal; silent otherwise.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(msg: &'static str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(msg);
        Progress(Some(bar))
    }

    fn set(&self, msg: &'static str) {
        if let Some(b) = &self.0 {
            b.set_message(msg);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
