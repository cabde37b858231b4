//! The load stage: the valid rows of a validation into the registry in one transaction,
//! checked against everyone already registered, as few index writes as possible.
//!
//! The shape of the work (BENCHMARKS.md has the numbers behind it):
//! 1. [`LoadBatch::keys`] (CPU, a blocking thread) sorts the valid rows' keys by ID
//!    number, so new people reach the primary key in key order; [`LoadSource::coming`]
//!    makes their COPY text once, in parallel parts in file order (each column read in
//!    sequence), on another thread while the load checks the first rows
//!    ([`LoadBatch::prepare`] makes both, one after the other). The COPY then takes
//!    each row's line in key order: one look-up a row, where making the text in key
//!    order cost a cache miss per field.
//! 2. [`load`] takes the load lock; a second connection then asks, a chunk of rows at a
//!    time, two set-based questions of the keys (row, ID, number, branch): which numbers
//!    are held by someone else (`dev_number_taken`), and which people are already stored
//!    (and, for members, in another branch: `id_registered_elsewhere`).
//! 3. Meanwhile the new people of each chunk already checked are COPYed straight into
//!    `people` (one COPY, no staging copy, no `ON CONFLICT`); stored people are staged
//!    and updated only where something differs; cadre posts are merged. Loading the same
//!    file again writes nothing.
//!
//! The findings are whole once the checks end, long before the writes do:
//! [`load_begin_telling`] tells them then, so the reports can be made during the writes.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;

use polars::prelude::{PolarsResult, StringChunked};
use schemas::{Field, TemplateKind};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::RegistryError;
use crate::copy::{CopyWriter, copy_field, copy_fields, copy_rows};
use crate::people::{self, OnUpdate, Value};

/// A finding only the database can make, for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFinding {
    pub row: u32,
    pub code: schemas::ErrorCode,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Rows written (inserted or updated people).
    pub rows: u64,
    /// Rows refused by the database checks, with their codes.
    pub findings: Vec<DbFinding>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Db(#[from] RegistryError),
    /// The checking connection stopped before it answered for every row (its own error
    /// is the one reported when it has one).
    #[error("the registry checks ended before every row was checked")]
    ChecksEnded,
    /// A batch of keys only was loaded without its text coming, or the text stopped
    /// coming before every row had its line.
    #[error("a batch made by LoadBatch::keys needs all its text (LoadSource::coming) to load")]
    NoText,
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        LoadError::Db(RegistryError::from(e))
    }
}

mod batch;
mod checks;
mod lines;
mod posts;
mod text;
mod transaction;

use batch::*;
use checks::*;
use lines::*;
use posts::*;
use text::*;

pub use batch::LoadBatch;
pub use text::{LoadSource, LoadText, TextComing};
pub use transaction::{FindingsTold, PendingLoad, load, load_begin, load_begin_telling};

#[cfg(test)]
mod tests {
    use super::*;

    /// Verdicts by row whatever the rows: contiguous, with gaps, or one row far away
    /// (a row number no smaller file names): the slots follow the rows, every row reads
    /// back what was set, a row not held reads `Refused`.
    #[test]
    fn verdicts_follow_the_rows_there_are() {
        // (rows, most slots)
        let table: Vec<(Vec<u32>, usize)> = vec![
            (vec![], 0),
            (vec![2], 1),
            ((2..1002).collect(), 1000),
            ((2..1002).step_by(2).collect(), 1000),
            ((2..1002).step_by(3).collect(), 334),
            (vec![2, 3, 1_048_576], 3),
            (vec![2, u32::MAX], 2),
            (vec![u32::MAX - 1, u32::MAX], 2),
        ];
        for (rows, most) in table {
            let mut v = transaction::Verdicts::of(rows.iter().copied());
            assert!(
                v.slots() <= most,
                "{} slots for {} rows",
                v.slots(),
                rows.len()
            );
            for (k, &r) in rows.iter().enumerate() {
                assert!(v.get(r) == transaction::Verdict::New, "{r}");
                if k % 2 == 0 {
                    v.set(r, transaction::Verdict::Stored);
                }
            }
            for (k, &r) in rows.iter().enumerate() {
                let want = if k % 2 == 0 {
                    transaction::Verdict::Stored
                } else {
                    transaction::Verdict::New
                };
                assert!(v.get(r) == want, "{r}");
            }
            for absent in [0, 1, 1003, u32::MAX - 2] {
                if !rows.contains(&absent) {
                    assert!(v.get(absent) == transaction::Verdict::Refused, "{absent}");
                    v.set(absent, transaction::Verdict::Stored);
                    assert!(v.get(absent) == transaction::Verdict::Refused, "{absent}");
                }
            }
        }
    }

    fn batch(rows: usize, check_chunk: usize) -> LoadBatch {
        LoadBatch {
            template: TemplateKind::Members,
            rows,
            staged: (0..rows as u32)
                .map(|at| Staged {
                    at,
                    row: at + 2,
                    id_number: format!("{at:018}"),
                    dev_number: None,
                    branch: None,
                })
                .collect(),
            probes: Vec::new(),
            branches: Vec::new(),
            text: None,
            check_chunk,
        }
    }

    #[test]
    fn the_first_check_is_small_and_the_chunks_cover_every_row_once() {
        let f = FIRST_CHECK_CHUNK;
        // (rows, chunk size asked) → the sizes of the chunks checked, in order.
        let cases: &[(usize, usize, &[usize])] = &[
            (0, CHECK_CHUNK, &[]),
            (1, CHECK_CHUNK, &[1]),
            (f, CHECK_CHUNK, &[f]),
            (f + 1, CHECK_CHUNK, &[f, 1]),
            (f + CHECK_CHUNK, CHECK_CHUNK, &[f, CHECK_CHUNK]),
            (f + CHECK_CHUNK + 1, CHECK_CHUNK, &[f, CHECK_CHUNK, 1]),
            (7, 1, &[1, 1, 1, 1, 1, 1, 1]),
            (7, 3, &[3, 3, 1]),
            (2 * f + 1, 2 * f, &[f, f + 1]),
        ];
        for &(rows, chunk, sizes) in cases {
            let b = batch(rows, chunk);
            let got: Vec<usize> = b.check_chunks().map(<[Staged]>::len).collect();
            assert_eq!(got, sizes, "{rows} rows, chunks of {chunk}");
            let ats: Vec<u32> = b.check_chunks().flatten().map(|s| s.at).collect();
            assert_eq!(ats, (0..rows as u32).collect::<Vec<_>>());
        }
    }
}
