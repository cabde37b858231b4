//! §5.5 duplicates within one file: the same person twice (template A: a member belongs
//! to one branch; template B: one post per organisation), each occurrence pointing at
//! the others.

use polars::prelude::*;
use schemas::{ErrorCode, Field};

use super::groups::Groups;
use super::identity::ID_VALID;
use super::{Ctx, Rule};
use crate::columns::col_in;
use crate::read::ROW;

/// The other rows of the file holding the same person, e.g. `5、9`.
pub const DUP_ROWS: &str = "dup.rows";

/// [`DUP_ROWS`] of every row, row-aligned with `rows` (which has [`ROW`], [`ID_VALID`]
/// and the `in.*` ID number): rows are grouped by their valid ID number, and only the
/// rows of groups of two or more get text.
pub fn duplicate_rows(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let row = rows.column(ROW)?.u32()?.rechunk();
    let row = row.cont_slice()?;
    let valid = rows.column(ID_VALID)?.bool()?;
    let id = rows.column(&col_in(Field::IdNumber))?.str()?;
    let people = Groups::of(
        id.iter()
            .zip(valid.iter())
            .map(|(id, ok)| id.filter(|_| ok == Some(true))),
    );
    let mut others: Vec<Option<String>> = vec![None; rows.height()];
    let mut numbers: Vec<u32> = Vec::new();
    for group in people.iter().filter(|g| g.len() > 1) {
        for &i in group {
            numbers.clear();
            numbers.extend(group.iter().filter(|&&j| j != i).map(|&j| row[j as usize]));
            numbers.sort_unstable();
            let text: Vec<String> = numbers.iter().map(u32::to_string).collect();
            others[i as usize] = Some(text.join("、"));
        }
    }
    DataFrame::new(rows.height(), vec![Column::new(DUP_ROWS.into(), others)])
}

pub fn rules(_ctx: &Ctx) -> Vec<Rule> {
    vec![id_duplicate_in_file()]
}

pub fn id_duplicate_in_file() -> Rule {
    Rule::new(
        ErrorCode::IdDuplicateInFile,
        Field::IdNumber,
        col(ID_VALID).and(col(DUP_ROWS).is_not_null()),
    )
    .detail(concat_str(
        [lit("与本表第"), col(DUP_ROWS), lit("行是同一人")],
        "",
        false,
    ))
}
