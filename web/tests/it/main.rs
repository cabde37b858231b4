//! The web service end to end: each test gets a fresh database with the sample
//! organisation tree, a real S3-compatible server (`s3s-fs`) on a free loopback port, the
//! service on another, and in-process workers when it needs uploads processed.

#[allow(dead_code)] // shared with the root tests, which use all of it
#[path = "../../../tests/it/s3.rs"]
mod s3;

mod access;
mod browser;
mod e2e;
mod harness;
mod hostile;
mod security;
