//! §5.5 duplicates within one file: the same person twice (template A: a member belongs
//! to one branch; template B: one post per organisation), each occurrence pointing at
//! the others.

use polars::prelude::*;
use schemas::{ErrorCode, Field};

use super::identity::ID_VALID;
use super::{Ctx, Rule};
use crate::{ROW, col_in};

/// The other rows of the file holding the same person, e.g. `5、9`.
pub const DUP_ROWS: &str = "dup.rows";

/// [`DUP_ROWS`] of every row, row-aligned with `rows`. Only duplicated rows take part in
/// the self-join, so its cost follows the number of duplicates, not of rows; the join
/// onto the rows is made on the row numbers alone.
pub fn duplicate_rows(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let id = col(col_in(Field::IdNumber));
    let narrow = rows
        .clone()
        .lazy()
        .select([col(ROW), col(ID_VALID), id.clone()]);
    let dups = narrow
        .clone()
        .filter(col(ID_VALID).and(id.clone().is_duplicated()))
        .select([col(ROW), id.alias("dup.id")]);
    let others = dups
        .clone()
        .join(
            dups.select([col(ROW).alias("dup.other"), col("dup.id")]),
            [col("dup.id")],
            [col("dup.id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(ROW).neq(col("dup.other")))
        .group_by([col(ROW)])
        .agg([col("dup.other")
            .sort(Default::default())
            .cast(DataType::String)
            .str()
            .join("、", true)
            .alias(DUP_ROWS)]);
    narrow
        .select([col(ROW)])
        .join(others, [col(ROW)], [col(ROW)], crate::left_join())
        .select([col(DUP_ROWS)])
        .collect()
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
