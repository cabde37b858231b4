//! §5.2 age at joining and §5.2's `over_age`: ages from the birth date in the ID number
//! against 入团年月 (month precision: age N is reached in the birth month of birth+N).

use polars::prelude::*;
use schemas::{ErrorCode, Field};

use super::identity::{BIRTH_D, BIRTH_M, BIRTH_Y, ID_VALID};
use super::org::{IS_CADRE, XINJIANG};
use super::{Ctx, Rule, as_text, truthy};
use crate::normalise::date_part;

pub const JOIN_FUTURE: &str = "join.future";
pub const JOIN_BEFORE_BIRTH: &str = "join.before_birth";
pub const MIN_AGE: &str = "join.min_age";

fn jy() -> Expr {
    col(date_part(Field::JoinedOn, "y"))
}
fn jm() -> Expr {
    col(date_part(Field::JoinedOn, "m"))
}
fn jd() -> Expr {
    col(date_part(Field::JoinedOn, "d"))
}
/// 入团年月 parsed as a real date.
pub fn join_ok() -> Expr {
    col(date_part(Field::JoinedOn, "ok"))
}

fn join_ym() -> Expr {
    jy() * lit(100) + jm()
}
fn join_ymd() -> Expr {
    jy() * lit(10000) + jm() * lit(100) + jd()
}

/// True when the person was at least `age` years old on 入团年月.
fn reached(age: Expr) -> Expr {
    let by = col(BIRTH_Y) + age;
    when(jd().is_null())
        .then(join_ym().gt_eq(by.clone() * lit(100) + col(BIRTH_M)))
        .otherwise(join_ymd().gt_eq(by * lit(10000) + col(BIRTH_M) * lit(100) + col(BIRTH_D)))
}

pub fn derive(ctx: &Ctx) -> Vec<Vec<Expr>> {
    let future = when(jd().is_null())
        .then(join_ym().gt(lit(ctx.as_of_ym())))
        .otherwise(join_ymd().gt(lit(ctx.as_of_ymd())));
    let before_birth = when(jd().is_null())
        .then(join_ym().lt(col(BIRTH_Y) * lit(100) + col(BIRTH_M)))
        .otherwise(
            join_ymd().lt(col(BIRTH_Y) * lit(10000) + col(BIRTH_M) * lit(100) + col(BIRTH_D)),
        );
    // 13 from 2017-01-01, 12 before; 13 in 新疆 whatever the date.
    let min_age = when(col(XINJIANG).or(jy().gt_eq(lit(2017))))
        .then(lit(13))
        .otherwise(lit(12));
    vec![vec![
        truthy(join_ok().and(future)).alias(JOIN_FUTURE),
        truthy(join_ok().and(col(ID_VALID)).and(before_birth)).alias(JOIN_BEFORE_BIRTH),
        min_age.alias(MIN_AGE),
    ]]
}

pub fn rules(ctx: &Ctx) -> Vec<Rule> {
    let mut rules = vec![joined_on_invalid(), join_age_too_young()];
    if ctx.is_members() {
        rules.push(over_age(ctx));
    }
    rules
}

pub fn joined_on_invalid() -> Rule {
    Rule::new(
        ErrorCode::JoinedOnInvalid,
        Field::JoinedOn,
        col(JOIN_FUTURE).or(col(JOIN_BEFORE_BIRTH)),
    )
    .detail(
        when(col(JOIN_FUTURE))
            .then(lit("晚于今天"))
            .otherwise(lit("早于身份证号码中的出生日期")),
    )
}

pub fn join_age_too_young() -> Rule {
    Rule::new(
        ErrorCode::JoinAgeTooYoung,
        Field::JoinedOn,
        col(ID_VALID)
            .and(join_ok())
            .and(col(JOIN_FUTURE).not())
            .and(col(JOIN_BEFORE_BIRTH).not())
            .and(reached(col(MIN_AGE)).not()),
    )
    .detail(concat_str(
        [lit("入团时未满"), as_text(col(MIN_AGE)), lit("周岁")],
        "",
        false,
    ))
}

/// Warning: 28 or older on the upload date and not a cadre (template A only).
pub fn over_age(ctx: &Ctx) -> Rule {
    let turned_28 = (col(BIRTH_Y) + lit(28)) * lit(10000) + col(BIRTH_M) * lit(100) + col(BIRTH_D);
    Rule::new(
        ErrorCode::OverAge,
        Field::IdNumber,
        col(ID_VALID)
            .and(col(IS_CADRE).not())
            .and(lit(ctx.as_of_ymd()).gt_eq(turned_28)),
    )
}
