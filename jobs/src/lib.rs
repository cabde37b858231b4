//! Job workers: object storage, the queue and cron. Empty until the worker issue; only this crate will know about S3 and apalis.
