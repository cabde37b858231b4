//! Integration tests of the pipeline: one binary, table-driven, real xlsx bytes.

mod ages;
mod blank;
mod bundle;
mod dev_number;
mod fast_reader;
mod fields;
mod helpers;
mod hostile;
mod identity;
mod orgs;
mod reading;
mod reports;
mod sample;
