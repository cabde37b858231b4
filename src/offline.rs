//! The commands that need no service: `validate` a roster against an org file, generate
//! a `sample`, and the benchmark's `read-floor`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::out::say;
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use pipeline::orgs::OrgTree;
use pipeline::report;
use pipeline::sample::{SampleOptions, generate};
use pipeline::validate::RowCounts;
use pipeline::{Outcome, ReadLimits, ValidateOptions, today_in_china};
use schemas::TemplateKind;

#[derive(Clone, Copy, ValueEnum)]
pub enum Template {
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

/// What `validate` and `import` share: the roster and how to read it.
#[derive(Args)]
pub struct RosterArgs {
    /// The roster (xlsx, xlsm, xlsb, xls or ods).
    pub file: PathBuf,
    /// Full name of the uploading organisation.
    #[arg(long)]
    pub uploader: String,
    #[arg(long, value_enum, default_value = "members")]
    pub template: Template,
    /// Folder receiving the reports.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Read this sheet instead of the first visible one.
    #[arg(long)]
    pub sheet: Option<String>,
    /// Data rows accepted at most.
    #[arg(long, env = "ROSTER_MAX_ROWS", default_value_t = schemas::excel::MAX_ROWS as usize)]
    pub max_rows: usize,
    /// The upload date (default: today in China).
    #[arg(long, env = "ROSTER_AS_OF")]
    pub as_of: Option<NaiveDate>,
}

impl RosterArgs {
    pub fn options(&self, progress: bool) -> ValidateOptions {
        ValidateOptions {
            template: self.template.into(),
            as_of: self.as_of.unwrap_or_else(today_in_china),
            limits: ReadLimits {
                max_rows: self.max_rows,
                ..ReadLimits::default()
            },
            sheet: self.sheet.clone(),
            progress: progress.then(|| Arc::new(AtomicUsize::new(0))),
            issue_rows_only: false,
        }
    }

    pub fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.file).with_context(|| format!("reading {}", self.file.display()))
    }
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The org file (CSV or xlsx with 组织全称, 组织简称, 组织类别, 上级组织全称, …).
    #[arg(long, env = "ROSTER_ORGS")]
    orgs: PathBuf,
    #[command(flatten)]
    roster: RosterArgs,
}

#[derive(Args)]
pub struct SampleArgs {
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
}

#[derive(Args)]
pub struct ReadFloorArgs {
    file: PathBuf,
    /// Materialise the sheet (calamine `Range`) instead of streaming its cells.
    #[arg(long)]
    range: bool,
    /// The fast xlsx reader alone (what `roster` reads xlsx with), for comparison.
    #[arg(long, conflicts_with = "range")]
    fast: bool,
}

/// `roster validate`: the reports of a roster checked against an org file.
pub fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let ValidateArgs { orgs, roster } = args;
    let mut opts = roster.options(true);
    // Nothing is loaded: each slice of rows keeps only its rows with findings.
    opts.issue_rows_only = true;
    let (uploader, out) = (roster.uploader.as_str(), roster.out.as_path());
    let org_bytes =
        std::fs::read(&orgs).with_context(|| format!("reading org file {}", orgs.display()))?;
    let tree = OrgTree::parse(&org_bytes)?;
    let Some(resolver) = tree.resolver(uploader) else {
        bail!("上传组织“{uploader}”不在组织文件中");
    };
    let bytes = roster.read()?;
    let progress = Progress::start("读取");
    let done = AtomicBool::new(false);
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
        let read = pipeline::read::read_roster(
            &bytes,
            opts.template,
            opts.sheet.as_deref(),
            &opts.limits,
            opts.progress.as_deref(),
        );
        // The file is read: its bytes are needed by nothing after.
        drop(bytes);
        let outcome = match read {
            Ok(raw) => pipeline::validate::validate_rows(raw, opts.as_of, &resolver, true)
                .map(|v| Outcome::Accepted(Box::new(v))),
            Err(rejection) => Ok(Outcome::Rejected(rejection)),
        };
        done.store(true, Ordering::Relaxed);
        outcome
    })?;
    progress.set("生成报告");
    let code = match &mut outcome {
        Outcome::Rejected(rejection) => {
            report::write_rejected(opts.template, rejection, out)?;
            progress.finish();
            print_rejected(rejection, out)?;
            ExitCode::from(2)
        }
        Outcome::Accepted(v) => {
            v.keep_issue_rows()?;
            let set = report::write_reports(v, out)?;
            progress.finish();
            print_counts(&v.counts()?, &v.warnings, set.files.len(), out)?
        }
    };
    Ok(code)
}

/// `roster sample`: a synthetic roster and its org file.
pub fn sample(args: SampleArgs) -> Result<ExitCode> {
    if args.rows == 0 || args.rows >= pipeline::sample::EXCEL_ROWS {
        bail!(
            "--rows must be between 1 and {}",
            pipeline::sample::EXCEL_ROWS - 1
        );
    }
    if !(0.0..=1.0).contains(&args.error_rate) {
        bail!("--error-rate must be between 0 and 1");
    }
    let progress = Progress::start("生成样例");
    let out = &args.out;
    let sample = generate(
        &SampleOptions {
            rows: args.rows,
            template: args.template.into(),
            error_rate: args.error_rate,
            seed: args.seed,
            as_of: args.as_of.unwrap_or_else(today_in_china),
        },
        out,
    )
    .with_context(|| format!("writing {}", out.display()))?;
    progress.finish();
    let orgs_path = args
        .orgs_out
        .unwrap_or_else(|| out.with_extension("orgs.csv"));
    std::fs::write(&orgs_path, &sample.orgs_csv)
        .with_context(|| format!("writing {}", orgs_path.display()))?;
    say!(
        "{}: {} rows ({} injected findings); orgs: {}; uploader: {}",
        out.display(),
        sample.rows,
        sample.expected.len(),
        orgs_path.display(),
        sample.uploader
    );
    Ok(ExitCode::SUCCESS)
}

/// `roster read-floor`: calamine alone reading every cell, the benchmark's floor.
pub fn read_floor(args: ReadFloorArgs) -> Result<ExitCode> {
    let file = &args.file;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let clock = std::time::Instant::now();
    let cells = if args.fast {
        pipeline::read::read_floor_fast(&bytes)
    } else {
        pipeline::read::read_floor(&bytes, args.range)
    }
    .map_err(anyhow::Error::msg)?;
    say!(
        "{} cells in {:.2} s ({})",
        cells,
        clock.elapsed().as_secs_f64(),
        match (args.range, args.fast) {
            (true, _) => "calamine Range",
            (_, true) => "fast reader",
            _ => "calamine cell reader",
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a file-level verdict.
pub fn print_rejected(r: &pipeline::Rejection, out: &Path) -> Result<()> {
    say!(
        "文件被拒绝 [{}]：{}\n报告：{}",
        r.code,
        r.message,
        out.display()
    );
    Ok(())
}

/// Prints the counts of an accepted file; the exit status follows them (0 every row
/// valid, 1 some rows have errors).
pub fn print_counts(
    c: &RowCounts,
    warnings: &[String],
    files: usize,
    out: &Path,
) -> Result<ExitCode> {
    say!(
        "共 {} 行：可导入 {} 行，有错误 {} 行，有提示 {} 行\n报告（{} 个文件）：{}",
        c.total,
        c.valid,
        c.with_errors,
        c.with_warnings,
        files,
        out.display()
    );
    for w in warnings {
        say!("提示：{w}");
    }
    Ok(if c.with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
