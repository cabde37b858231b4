//! Integration tests of the pipeline: one binary, table-driven, real xlsx bytes.

mod blank;
mod bundle;
mod dates;
mod dev_number;
mod fast_reader;
mod fields;
mod helpers;
mod hostile;
mod identity;
mod org;
mod reading;
mod reports;
mod sample;
