//! How the pipeline fails, apart from what it finds: a file-level verdict
//! ([`Rejection`], final) and a failure worth retrying ([`PipelineError`]).

use schemas::ErrorCode;

use crate::resolver::LookupError;

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
    Lookup(#[from] LookupError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("error workbook prototype: {0}")]
    Prototype(&'static str),
}
