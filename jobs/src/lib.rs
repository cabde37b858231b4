//! Job workers: uploads from object storage, the queue in PostgreSQL (apalis), reports
//! back to storage. The only crate that knows about S3 and apalis; the work itself is
//! `registry::import`, the same as `roster import`, and every SQL statement outside the
//! queue library's own is the registry's.

pub mod bundle;
pub mod cron;
pub mod queue;
pub mod status;
pub mod storage;
pub mod worker;

pub use queue::{ProcessUpload, QUEUE, Source, Submitted, setup, submit};
pub use storage::{Storage, StorageError};
pub use worker::{WorkerOptions, run};
