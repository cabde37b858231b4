//! §5.6 the other fields: required cells, dates, names, phones, e-mails, enumerations,
//! 团内现任职务 for cadres, and free-text length.

use polars::prelude::*;
use schemas::{ErrorCode, Field, Kind, Requirement};

use super::{Ctx, Rule, truthy};
use crate::columns::col_in;
use crate::columns::col_raw;
use crate::columns::col_val;
use crate::normalise::date_part;
use schemas::excel::MAX_CELL_CHARS;

fn input(f: Field) -> Expr {
    col(col_in(f))
}

pub fn rules(ctx: &Ctx) -> Vec<Rule> {
    let mut rules = Vec::new();
    for c in ctx.template.columns {
        if c.requirement == Requirement::Required {
            rules.push(required_missing(c.field));
        }
        match c.kind {
            Kind::PersonName => rules.push(name_invalid(c.field)),
            Kind::Phone => rules.push(phone_invalid(c.field)),
            Kind::Email => rules.push(email_invalid(c.field)),
            Kind::Date => rules.push(date_invalid(c.field)),
            Kind::Enum(v) => rules.push(enum_invalid(c.field, v)),
            Kind::Text { max_chars } => rules.push(text_too_long(c.field, max_chars)),
            Kind::IdNumber | Kind::DevNumber | Kind::OrgName => {}
        }
        if !matches!(c.kind, Kind::Text { max_chars } if max_chars as usize <= MAX_CELL_CHARS) {
            rules.push(cell_too_long(c.field));
        }
        rules.push(control_character(c.field));
    }
    if ctx.is_members() {
        rules.push(duty_missing());
    }
    rules
}

pub fn required_missing(f: Field) -> Rule {
    let missing = input(f).is_null();
    let missing = if f == Field::IdNumber {
        // A numeric ID cell is not empty: it gets id_number_as_number instead.
        missing.and(col(crate::read::ID_NUMERIC).not())
    } else {
        missing
    };
    Rule::new(ErrorCode::RequiredMissing, f, missing).detail(lit(format!("“{}”", f.header())))
}

pub fn date_invalid(f: Field) -> Rule {
    Rule::new(
        ErrorCode::DateInvalid,
        f,
        input(f).is_not_null().and(col(date_part(f, "ok")).not()),
    )
    .detail(lit(format!("“{}”", f.header())))
}

/// 2–30 characters, no digits.
pub fn name_invalid(f: Field) -> Rule {
    let len = input(f).str().len_chars();
    Rule::new(
        ErrorCode::NameInvalid,
        f,
        input(f).is_not_null().and(
            len.clone()
                .lt(lit(2u32))
                .or(len.gt(lit(30u32)))
                .or(truthy(input(f).str().contains(lit(r"\d"), true))),
        ),
    )
}

/// Mainland mobile: `1[3-9]` and 9 more digits.
pub fn phone_invalid(f: Field) -> Rule {
    Rule::new(
        ErrorCode::PhoneInvalid,
        f,
        input(f)
            .is_not_null()
            .and(truthy(input(f).str().contains(lit(r"^1[3-9]\d{9}$"), true)).not()),
    )
}

pub fn email_invalid(f: Field) -> Rule {
    let pattern = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$";
    Rule::new(
        ErrorCode::EmailInvalid,
        f,
        input(f)
            .is_not_null()
            .and(truthy(input(f).str().contains(lit(pattern), true)).not()),
    )
}

pub fn enum_invalid(f: Field, vocab: &schemas::Vocabulary) -> Rule {
    Rule::new(
        ErrorCode::EnumInvalid,
        f,
        input(f).is_not_null().and(col(col_val(f)).is_null()),
    )
    .detail(lit(format!("“{}”应为：{}", f.header(), vocab.listing())))
}

/// 是否团干部 = 是 without 团内现任职务 (template A).
pub fn duty_missing() -> Rule {
    Rule::new(
        ErrorCode::DutyMissing,
        Field::Duty,
        truthy(col(col_val(Field::IsCadre)).eq(lit("是"))).and(input(Field::Duty).is_null()),
    )
}

pub fn text_too_long(f: Field, max_chars: u32) -> Rule {
    Rule::new(
        ErrorCode::TextTooLong,
        f,
        truthy(input(f).str().len_chars().gt(lit(max_chars))),
    )
    .detail(lit(format!("“{}”最多{max_chars}个字", f.header())))
}

/// Any cell over Excel's 32,767 characters (the reader keeps one more to tell).
pub fn cell_too_long(f: Field) -> Rule {
    let raw = col(col_raw(f));
    Rule::new(
        ErrorCode::TextTooLong,
        f,
        truthy(
            raw.clone()
                .str()
                .len_bytes()
                .gt(lit(MAX_CELL_CHARS as u32))
                .and(raw.str().len_chars().gt(lit(MAX_CELL_CHARS as u32))),
        ),
    )
    .detail(lit(format!(
        "“{}”超过 Excel 单元格上限 {MAX_CELL_CHARS} 个字，报告中显示截断后的内容",
        f.header()
    )))
}

/// NUL and the other control characters (C0 but tab, line feed and carriage return;
/// DEL; C1), as uploaded: they are invisible in Excel and PostgreSQL refuses NUL.
pub fn control_character(f: Field) -> Rule {
    Rule::new(
        ErrorCode::ControlCharacter,
        f,
        truthy(
            col(col_raw(f))
                .str()
                .contains(lit(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x{9F}]"), true),
        ),
    )
    .detail(lit(format!("“{}”", f.header())))
}
