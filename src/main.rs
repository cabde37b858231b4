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
enum OrgsCommand {
    /// Load or update the tree from an org file (CSV or xlsx); a bad file loads nothing.
    Import {
        file: PathBuf,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

/// Runs a database command on a small runtime of its own.
fn with_db<T>(url: &str, f: impl AsyncFnOnce(sqlx::PgPool) -> Result<T>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(url)
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
        Command::Migrate { database_url } => with_db(&database_url, async |pool| {
            pipeline::db::migrate(&pool).await?;
            println!("migrations applied");
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

/// `roster import`: CPU stages on blocking threads, the load on the runtime.
async fn import_command(
    pool: sqlx::PgPool,
    bytes: Vec<u8>,
    uploader: &str,
    opts: ValidateOptions,
    out: PathBuf,
) -> Result<ExitCode> {
    use pipeline::db::{DbOrgs, LoadBatch, load};
    let Some(orgs) = DbOrgs::for_uploader(&pool, uploader).await? else {
        bail!("上传组织“{uploader}”不在数据库中");
    };
    let uploader_id = orgs.uploader_id();
    let template = opts.template;
    let sha = pipeline::db::content_sha256(&bytes);
    let upload_id = pipeline::db::begin_upload(&pool, uploader_id, template, &sha).await?;
    let clock = std::time::Instant::now();
    let (outcome, batch) = tokio::task::spawn_blocking(move || -> Result<_> {
        let outcome = validate_bytes(&bytes, &opts, &orgs)?;
        let batch = match &outcome {
            Outcome::Accepted(v) => Some(LoadBatch::prepare(v)?),
            Outcome::Rejected(_) => None,
        };
        Ok((outcome, batch))
    })
    .await??;
    let validate_s = clock.elapsed().as_secs_f64();
    let prefix = out.display().to_string();
    let (mut v, batch) = match (outcome, batch) {
        (Outcome::Accepted(v), Some(batch)) => (v, batch),
        (Outcome::Rejected(r), _) => {
            let (r, set) = tokio::task::spawn_blocking(move || -> Result<_> {
                let set = report::write_rejected(template, &r, &out)?;
                Ok((r, set))
            })
            .await??;
            let record = pipeline::db::UploadOutcome {
                status: "rejected",
                counts: None,
                file_error: Some(serde_json::json!({"code": r.code.code(), "message": r.message})),
                timings: serde_json::json!({"validate_s": validate_s}),
                report_prefix: prefix.clone(),
                report_keys: set.files,
                findings: String::new(),
            };
            pipeline::db::finish_upload(&pool, upload_id, &record).await?;
            println!("文件被拒绝 [{}]：{}\n报告：{prefix}", r.code, r.message);
            return Ok(ExitCode::from(2));
        }
        (Outcome::Accepted(_), None) => bail!("internal: an accepted file without rows to load"),
    };
    let started = std::time::Instant::now();
    let loaded = load(&pool, &batch, uploader_id, Some(upload_id)).await?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        rows = batch.rows,
        written = loaded.rows,
        seconds,
        rows_per_second = (batch.rows as f64 / seconds.max(1e-9)).round(),
        "loaded"
    );
    let found: Vec<_> = loaded.findings.iter().map(|f| (f.row, f.code)).collect();
    let report_clock = std::time::Instant::now();
    let (code, set, counts, findings) = tokio::task::spawn_blocking(move || -> Result<_> {
        v.add_findings(&found)?;
        let set = report::write_reports(&v, &out)?;
        println!("已导入 {} 人", loaded.rows);
        let code = print_counts(&v, &set, &out)?;
        Ok((code, set, v.counts()?, pipeline::db::findings_copy(&v)?))
    })
    .await??;
    let record = pipeline::db::UploadOutcome {
        status: "succeeded",
        counts: Some(counts),
        file_error: None,
        timings: serde_json::json!({
            "validate_s": validate_s,
            "load_s": seconds,
            "report_s": report_clock.elapsed().as_secs_f64(),
        }),
        report_prefix: prefix,
        report_keys: set.files,
        findings,
    };
    pipeline::db::finish_upload(&pool, upload_id, &record).await?;
    Ok(code)
}

/// Prints the counts of an accepted file; the exit status follows them (SPEC §11).
fn print_counts(v: &pipeline::Validation, set: &report::ReportSet, out: &Path) -> Result<ExitCode> {
    let c = v.counts()?;
    println!(
        "共 {} 行：可导入 {} 行，有错误 {} 行，有提示 {} 行\n报告（{} 个文件）：{}",
        c.total,
        c.valid,
        c.with_errors,
        c.with_warnings,
        set.files.len(),
        out.display()
    );
    for w in &v.warnings {
        println!("提示：{w}");
    }
    Ok(if c.with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
    let outcome = std::thread::scope(|s| {
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
    progress.set("生成报告");
    let code = match &outcome {
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
            let set = report::write_reports(v, out)?;
            progress.finish();
            print_counts(v, &set, out)?
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
