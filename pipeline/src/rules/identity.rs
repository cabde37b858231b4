//! §5.1 identity number (GB 11643-1999): format, legacy 15-digit numbers, birth date,
//! region code, check character, and numeric cells that lost their digits (§4).

use polars::prelude::*;
use schemas::{ErrorCode, Field, reference};

use super::{Ctx, Rule, truthy};
use crate::columns::col_in;
use crate::normalise::is_real_date;
use crate::read::ID_NUMERIC;

pub const IS18: &str = "id.is18";
pub const IS15: &str = "id.is15";
pub const BIRTH_Y: &str = "birth.y";
pub const BIRTH_M: &str = "birth.m";
pub const BIRTH_D: &str = "birth.d";
pub const BIRTH_OK: &str = "birth.ok";
pub const REGION_OK: &str = "id.region_ok";
pub const CHECK_OK: &str = "id.check_ok";
/// The ID number passed every check: rules that need the birth date require it.
pub const ID_VALID: &str = "id.valid";
pub const LEGACY_18: &str = "id.legacy18";

const WEIGHTS: [i32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [&str; 11] = ["1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"];

fn id() -> Expr {
    col(col_in(Field::IdNumber))
}

fn not_numeric() -> Expr {
    col(ID_NUMERIC).not()
}

fn slice_int(e: Expr, offset: i64, len: u64) -> Expr {
    // Char-based slicing: the ID column is normalised text, not necessarily ASCII.
    e.str().slice(lit(offset), lit(len)).cast(DataType::Int32)
}

/// The ISO 7064 MOD 11-2 check character of the first 17 characters of `e`; null unless
/// they are 17 digits. One pass over the column (as 17 slices and casts it was the most
/// expensive expression of the validation).
pub fn check_char(e: Expr) -> Expr {
    e.map(
        |c: Column| {
            let out: StringChunked = c.str()?.iter().map(|v| v.and_then(check_char_of)).collect();
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, f| Ok(f.clone()),
    )
}

fn check_char_of(s: &str) -> Option<&'static str> {
    let digits = s.as_bytes().get(..17)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: i32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| i32::from(b - b'0') * w)
        .sum();
    Some(CHECK_CHARS[(sum % 11) as usize])
}

pub fn derive(ctx: &Ctx) -> Vec<Vec<Expr>> {
    let is18 = truthy(id().str().contains(lit(r"^\d{17}[\dX]$"), true));
    let is15 = truthy(id().str().contains(lit(r"^\d{15}$"), true));
    let part = |off18: i64, off15: i64, len: u64| {
        when(col(IS18))
            .then(slice_int(id(), off18, len))
            .when(col(IS15))
            .then(slice_int(id(), off15, len))
            .otherwise(lit(NULL).cast(DataType::Int32))
    };
    let stage1 = vec![is18.alias(IS18), is15.alias(IS15)];
    let stage2 = vec![
        when(col(IS18))
            .then(slice_int(id(), 6, 4))
            .when(col(IS15))
            .then(slice_int(id(), 6, 2) + lit(1900))
            .otherwise(lit(NULL).cast(DataType::Int32))
            .alias(BIRTH_Y),
        part(10, 8, 2).alias(BIRTH_M),
        part(12, 10, 2).alias(BIRTH_D),
    ];
    let codes: Vec<&str> = reference::region_codes();
    let birth_ymd = col(BIRTH_Y) * lit(10000) + col(BIRTH_M) * lit(100) + col(BIRTH_D);
    let stage3 = vec![
        truthy(
            is_real_date(col(BIRTH_Y), col(BIRTH_M), col(BIRTH_D))
                .and(birth_ymd.lt_eq(lit(ctx.as_of_ymd()))),
        )
        .alias(BIRTH_OK),
        truthy(id().str().slice(lit(0i64), lit(6u64)).is_in(
            lit(Series::new("codes".into(), codes)).implode(false),
            false,
        ))
        .alias(REGION_OK),
        truthy(check_char(id()).eq(id().str().slice(lit(17i64), lit(1u64)))).alias(CHECK_OK),
    ];
    let legacy17 = concat_str(
        [
            id().str().slice(lit(0i64), lit(6u64)),
            lit("19"),
            id().str().slice(lit(6i64), lit(9u64)),
        ],
        "",
        false,
    );
    let stage4 = vec![
        not_numeric()
            .and(col(IS18))
            .and(col(BIRTH_OK))
            .and(col(REGION_OK))
            .and(col(CHECK_OK))
            .alias(ID_VALID),
        when(col(IS15))
            .then(concat_str(
                [legacy17.clone(), check_char(legacy17)],
                "",
                false,
            ))
            .otherwise(lit(NULL).cast(DataType::String))
            .alias(LEGACY_18),
    ];
    vec![stage1, stage2, stage3, stage4]
}

pub fn rules(_ctx: &Ctx) -> Vec<Rule> {
    vec![
        id_number_as_number(),
        id_number_format(),
        id_number_legacy(),
        id_number_birthdate(),
        id_number_region(),
        id_number_checksum(),
    ]
}

fn well_shaped() -> Expr {
    not_numeric().and(col(IS18).or(col(IS15)))
}

pub fn id_number_as_number() -> Rule {
    Rule::new(
        ErrorCode::IdNumberAsNumber,
        Field::IdNumber,
        col(ID_NUMERIC),
    )
}

pub fn id_number_format() -> Rule {
    Rule::new(
        ErrorCode::IdNumberFormat,
        Field::IdNumber,
        not_numeric()
            .and(id().is_not_null())
            .and(col(IS18).or(col(IS15)).not()),
    )
    .detail(concat_str(
        [
            lit("当前为"),
            id().str().len_chars().cast(DataType::String),
            lit("位"),
        ],
        "",
        false,
    ))
}

pub fn id_number_birthdate() -> Rule {
    Rule::new(
        ErrorCode::IdNumberBirthdate,
        Field::IdNumber,
        well_shaped().and(col(BIRTH_OK).not()),
    )
}

pub fn id_number_region() -> Rule {
    Rule::new(
        ErrorCode::IdNumberRegion,
        Field::IdNumber,
        well_shaped().and(col(BIRTH_OK)).and(col(REGION_OK).not()),
    )
}

/// Checked after birth date and region, like the 18-digit number it should become.
pub fn id_number_legacy() -> Rule {
    Rule::new(
        ErrorCode::IdNumberLegacy,
        Field::IdNumber,
        not_numeric()
            .and(col(IS15))
            .and(col(BIRTH_OK))
            .and(col(REGION_OK)),
    )
    .detail(concat_str(
        [lit("对应的18位号码为 "), col(LEGACY_18)],
        "",
        false,
    ))
}

pub fn id_number_checksum() -> Rule {
    Rule::new(
        ErrorCode::IdNumberChecksum,
        Field::IdNumber,
        not_numeric()
            .and(col(IS18))
            .and(col(BIRTH_OK))
            .and(col(REGION_OK))
            .and(col(CHECK_OK).not()),
    )
}

/// The check character of 17 digits, in plain Rust (sample data and tests).
pub fn id_check_char(first17: &str) -> char {
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| (b - b'0') as u32 * w as u32)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
        .chars()
        .next()
        .expect("one char")
}
