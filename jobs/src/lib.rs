//! Job workers: uploads from object storage, the queue in PostgreSQL (apalis), reports
//! back to storage. The only crate that knows about S3 and apalis; the work itself is
//! `pipeline::import`, the same as `roster import`.

pub mod cron;
pub mod queue;
pub mod status;
pub mod storage;
pub mod worker;

pub use queue::{ProcessUpload, QUEUE, Source, Submitted, setup, submit};
pub use storage::{Storage, StorageError};
pub use worker::{WorkerOptions, run};

/// Today's date in China (UTC+8): the default upload date.
pub fn today_in_china() -> chrono::NaiveDate {
    let east8 = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    chrono::Utc::now().with_timezone(&east8).date_naive()
}
