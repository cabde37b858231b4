//! §5.3 development member number (发展团员编号): required from 2017 (新疆 2016), and the
//! registry's four situations: taken, year mismatch, segment, format.

use polars::prelude::*;
use schemas::{ErrorCode, Field};

use super::dates::join_ok;
use super::groups::Groups;
use super::org::{PROVINCE, XINJIANG};
use super::{Ctx, Rule, as_text, truthy};
use crate::columns::col_in;
use crate::normalise::date_part;
use crate::read::ROW;

pub const DIGITS: &str = "dev.digits";
/// Twelve digits: the shape every other check needs.
pub const WELL_FORMED: &str = "dev.well_formed";
pub const FIRST_ROW: &str = "dev.first_row";
/// The number's first holder in the file is another person (or a row without an ID
/// number).
pub const HELD_BY_OTHER: &str = "dev.held_by_other";

fn dev() -> Expr {
    col(col_in(Field::DevNumber))
}

fn jy() -> Expr {
    col(date_part(Field::JoinedOn, "y"))
}

/// Each row's own: digits only, and well formed.
pub fn derive_row(_ctx: &Ctx) -> Vec<Expr> {
    let digits = truthy(dev().str().contains(lit(r"^\d+$"), true));
    vec![
        digits.clone().alias(DIGITS),
        digits
            .and(dev().str().len_chars().eq(lit(12u32)))
            .alias(WELL_FORMED),
    ]
}

/// Across the file, from each row's own columns ([`ROW`], [`WELL_FORMED`] and the `in.*`
/// of the development and ID numbers): the earliest row holding each well-formed number
/// ([`FIRST_ROW`]) and whether that row is someone else's ([`HELD_BY_OTHER`]: another
/// ID number, or none). Row-aligned with `rows`.
pub fn first_holders(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let row = rows.column(ROW)?.u32()?.rechunk();
    let row = row.cont_slice()?;
    let well_formed = rows.column(WELL_FORMED)?.bool()?;
    let dev = rows.column(&col_in(Field::DevNumber))?.str()?;
    let id: Vec<Option<&str>> = rows
        .column(&col_in(Field::IdNumber))?
        .str()?
        .iter()
        .collect();
    let holders = Groups::of(
        dev.iter()
            .zip(well_formed.iter())
            .map(|(d, ok)| d.filter(|_| ok == Some(true))),
    );
    let mut first_row: Vec<Option<u32>> = vec![None; rows.height()];
    let mut by_other = vec![false; rows.height()];
    for group in holders.iter() {
        let first = group[0] as usize;
        for &i in group {
            let i = i as usize;
            first_row[i] = Some(row[first]);
            by_other[i] = id[i].is_some_and(|me| id[first].unwrap_or("") != me);
        }
    }
    DataFrame::new(
        rows.height(),
        vec![
            Column::new(FIRST_ROW.into(), first_row),
            Column::new(HELD_BY_OTHER.into(), by_other),
        ],
    )
}

pub fn rules(_ctx: &Ctx) -> Vec<Rule> {
    vec![
        dev_number_missing(),
        dev_number_format(),
        dev_number_segment(),
        dev_number_year_mismatch(),
        dev_number_taken(),
    ]
}

/// Required when joined on or after 2017-01-01, in 新疆 on or after 2016-01-01.
pub fn dev_number_missing() -> Rule {
    let from = when(col(XINJIANG)).then(lit(2016)).otherwise(lit(2017));
    Rule::new(
        ErrorCode::DevNumberMissing,
        Field::DevNumber,
        dev().is_null().and(join_ok()).and(jy().gt_eq(from)),
    )
}

/// 情况四: anything but digits.
pub fn dev_number_format() -> Rule {
    Rule::new(
        ErrorCode::DevNumberFormat,
        Field::DevNumber,
        dev().is_not_null().and(col(DIGITS).not()),
    )
}

/// 情况三: not 12 digits, or digits 5–6 are not the province code of the organisation.
pub fn dev_number_segment() -> Rule {
    let province_segment = dev().str().slice(lit(4i64), lit(2u64));
    let wrong_province = truthy(province_segment.neq(col(PROVINCE)));
    Rule::new(
        ErrorCode::DevNumberSegment,
        Field::DevNumber,
        col(DIGITS).and(col(WELL_FORMED).not().or(wrong_province)),
    )
    .detail(
        when(col(WELL_FORMED).not())
            .then(concat_str(
                [
                    lit("应为12位，当前为"),
                    as_text(dev().str().len_chars()),
                    lit("位"),
                ],
                "",
                false,
            ))
            .otherwise(concat_str(
                [lit("第5–6位应为省份代码 "), col(PROVINCE)],
                "",
                false,
            )),
    )
}

/// 情况二: the first four digits are not the year of joining; a join in 2017 or 2018
/// accepts either year.
pub fn dev_number_year_mismatch() -> Rule {
    let year = dev()
        .str()
        .slice(lit(0i64), lit(4u64))
        .cast(DataType::Int32);
    let tolerant = |e: Expr| e.clone().eq(lit(2017)).or(e.eq(lit(2018)));
    let matches = year.clone().eq(jy()).or(tolerant(year).and(tolerant(jy())));
    Rule::new(
        ErrorCode::DevNumberYearMismatch,
        Field::DevNumber,
        col(WELL_FORMED).and(join_ok()).and(matches.not()),
    )
    .detail(
        when(tolerant(jy()))
            .then(lit("前四位应为 2017 或 2018"))
            .otherwise(concat_str([lit("前四位应为 "), as_text(jy())], "", false)),
    )
}

/// 情况一: the number is already used by another person earlier in the same file.
/// (The database loader adds numbers held by stored people.)
pub fn dev_number_taken() -> Rule {
    Rule::new(
        ErrorCode::DevNumberTaken,
        Field::DevNumber,
        col(WELL_FORMED).and(truthy(col(HELD_BY_OTHER))),
    )
    .detail(concat_str(
        [
            lit("本表第"),
            as_text(col(FIRST_ROW)),
            lit("行已使用此编号"),
        ],
        "",
        false,
    ))
}
