//! The roster pipeline: read → normalise → validate → report. Pure compute: it takes
//! bytes and paths and knows nothing of object storage, queues or databases; what it
//! needs of the registry (organisations) it asks through [`resolver::OrgResolver`].

pub mod blank;
mod bounds;
mod branch_book;
pub mod bundle;
pub mod columns;
pub mod error;
mod error_sheet;
pub mod memory;
pub mod normalise;
pub mod orgs;
pub mod person;
pub mod read;
pub mod report;
pub mod resolver;
pub mod rules;
pub mod sample;
pub mod text;
pub mod validate;
mod xlsx;

pub use columns::{col_in, col_raw, col_val, left_join};
pub use error::{PipelineError, Rejection};
pub use memory::{peak_rss_mib, rss_mib};
pub use read::{ID_NUMERIC, ROW, ReadLimits};
pub use validate::{
    Outcome, ValidateOptions, Validation, china, today_in_china, validate, validate_bytes,
};
