//! The roster pipeline: read → normalise → validate → report. Pure compute: it takes
//! bytes and paths and knows nothing of object storage, queues or databases; what it
//! needs of the registry (organisations) it asks through [`orgs::OrgResolver`].

pub mod blank;
mod bounds;
mod branch_book;
pub mod bundle;
mod error_sheet;
pub mod normalise;
pub mod orgs;
pub mod person;
pub mod read;
pub mod report;
pub mod rules;
pub mod sample;
pub mod text;
pub mod validate;
mod xlsx;

use schemas::{ErrorCode, Field};

pub use read::{ID_NUMERIC, ROW, ReadLimits};
pub use validate::{
    Outcome, ValidateOptions, Validation, china, today_in_china, validate, validate_bytes,
};

/// A file-level verdict (SPEC §3): the whole file is rejected, nothing is loaded. This is
/// a result about the file, not a failure of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

/// Something failed while processing a file that may be fine: worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("dataframe: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("writing a workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Lookup(#[from] orgs::LookupError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("error workbook prototype: {0}")]
    Prototype(&'static str),
}

/// Peak resident memory of this process so far in MiB (Linux; `None` elsewhere), logged
/// at stage boundaries.
pub fn peak_rss_mib() -> Option<u64> {
    status_mib("VmHWM:")
}

/// Resident memory of this process now in MiB (Linux; `None` elsewhere): beside the peak
/// it tells what a stage holds from what it passed through.
pub fn rss_mib() -> Option<u64> {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A left join that keeps the left frame's row order (window rules depend on file order).
pub fn left_join() -> polars::prelude::JoinArgs {
    use polars::prelude::{JoinArgs, JoinType, MaintainOrderJoin};
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    args
}

/// Column of the uploaded text of a field.
pub fn col_raw(f: Field) -> String {
    format!("raw.{}", f.key())
}

/// Column of the normalised input of a field.
pub fn col_in(f: Field) -> String {
    format!("in.{}", f.key())
}

/// Column of the canonical value of a field (what the database stores).
pub fn col_val(f: Field) -> String {
    f.key().to_string()
}
