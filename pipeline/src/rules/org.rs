//! §5.4 organisation of a row (所在团支部): exists, is a branch, is within the uploader's
//! scope, has no parentheses; and the row's province (新疆 rules) and cadre status.

use polars::prelude::*;
use schemas::{ErrorCode, Field, OrgCategory};

use super::{Ctx, Rule, truthy};
use crate::columns::col_in;
use crate::columns::col_val;

/// Columns of the organisation lookup joined onto each row (template A).
pub const ORG_KEY: &str = "org.key";
pub const ORG_NAME: &str = "org.name";
pub const ORG_CATEGORY: &str = "org.category";
pub const ORG_PROVINCE: &str = "org.province";
pub const ORG_IN_SCOPE: &str = "org.in_scope";
pub const ORG_PARENS: &str = "org.parens";
pub const ORG_SUGGEST: &str = "org.suggest";

/// Province code that governs the row: its branch's, else the uploader's.
pub const PROVINCE: &str = "province";
/// The row is governed by the Xinjiang rules (65 新疆, 66 兵团).
pub const XINJIANG: &str = "xinjiang";
/// The person holds a post (template B: always).
pub const IS_CADRE: &str = "is_cadre.flag";

pub fn derive(ctx: &Ctx) -> Vec<Expr> {
    let uploader = match &ctx.uploader_province {
        Some(p) => lit(p.clone()),
        None => lit(NULL).cast(DataType::String),
    };
    let province = if ctx.is_members() {
        col(ORG_PROVINCE).fill_null(uploader)
    } else {
        uploader
    };
    let is_cadre = if ctx.is_members() {
        truthy(col(col_val(Field::IsCadre)).eq(lit("是")))
    } else {
        lit(true)
    };
    let xinjiang = schemas::orgs::XINJIANG_PROVINCES
        .iter()
        .map(|p| province.clone().eq(lit(*p)))
        .reduce(|a, b| a.or(b))
        .expect("two codes");
    vec![
        province.alias(PROVINCE),
        truthy(xinjiang).alias(XINJIANG),
        is_cadre.alias(IS_CADRE),
    ]
}

pub fn rules(_ctx: &Ctx) -> Vec<Rule> {
    vec![
        org_not_found(),
        org_not_branch(),
        org_out_of_scope(),
        org_name_parentheses(),
    ]
}

fn named() -> Expr {
    col(col_in(Field::Branch)).is_not_null()
}

fn found() -> Expr {
    col(ORG_NAME).is_not_null()
}

pub fn org_not_found() -> Rule {
    Rule::new(
        ErrorCode::OrgNotFound,
        Field::Branch,
        named().and(found().not()),
    )
    .detail(concat_str(
        [lit("您是否要填写："), col(ORG_SUGGEST)],
        "",
        false,
    ))
}

pub fn org_not_branch() -> Rule {
    Rule::new(
        ErrorCode::OrgNotBranch,
        Field::Branch,
        found().and(col(ORG_CATEGORY).neq(lit(OrgCategory::Branch.code()))),
    )
}

pub fn org_out_of_scope() -> Rule {
    Rule::new(
        ErrorCode::OrgOutOfScope,
        Field::Branch,
        found().and(col(ORG_IN_SCOPE).not()),
    )
}

pub fn org_name_parentheses() -> Rule {
    Rule::new(
        ErrorCode::OrgNameParentheses,
        Field::Branch,
        found()
            .and(col(ORG_IN_SCOPE))
            .and(col(ORG_CATEGORY).eq(lit(OrgCategory::Branch.code())))
            .and(col(ORG_PARENS)),
    )
}
