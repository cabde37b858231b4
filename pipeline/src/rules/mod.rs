//! Row rules of SPEC §5, one file per family, each rule a small function named after its
//! error code that returns a [`Rule`]: a boolean polars expression saying which rows
//! break it, and the specifics to add to its message.
//!
//! A rule that needs a value which is itself invalid checks that value's validity flag
//! first, so one mistake is reported once (SPEC §5).

pub mod dates;
pub mod dev_number;
pub mod duplicates;
pub mod fields;
pub mod groups;
pub mod identity;
pub mod org;

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use schemas::{ErrorCode, Field, Template, TemplateKind};

/// What the rules need besides the rows.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub template: &'static Template,
    /// The upload date: ages and "in the future" are judged against it.
    pub as_of: NaiveDate,
    /// Province code of the uploader's organisation.
    pub uploader_province: Option<String>,
}

impl Ctx {
    pub fn as_of_ymd(&self) -> i32 {
        self.as_of.year() * 10000 + self.as_of.month() as i32 * 100 + self.as_of.day() as i32
    }

    pub fn as_of_ym(&self) -> i32 {
        self.as_of.year() * 100 + self.as_of.month() as i32
    }

    pub fn is_members(&self) -> bool {
        self.template.kind == TemplateKind::Members
    }
}

/// One rule: which rows break it and what to say.
pub struct Rule {
    pub code: ErrorCode,
    /// The column (cell) the finding concerns.
    pub field: Field,
    /// True for rows that break the rule (null counts as false).
    pub fails: Expr,
    /// Specifics appended to the catalogue message, evaluated on failing rows only.
    pub detail: Option<Expr>,
}

impl Rule {
    pub fn new(code: ErrorCode, field: Field, fails: Expr) -> Rule {
        Rule {
            code,
            field,
            fails,
            detail: None,
        }
    }

    pub fn detail(mut self, detail: Expr) -> Rule {
        self.detail = Some(detail);
        self
    }

    /// The full Chinese message: catalogue text, then the specifics when there are any.
    pub fn message(&self) -> Expr {
        let base = lit(self.code.message());
        match &self.detail {
            None => base,
            Some(d) => when(d.clone().is_null())
                .then(base.clone())
                .otherwise(concat_str([base, lit("："), d.clone()], "", true)),
        }
    }
}

/// Every rule of the template, in report order (columns left to right, then code).
pub fn all(ctx: &Ctx) -> Vec<Rule> {
    let mut rules = Vec::new();
    rules.extend(fields::rules(ctx));
    rules.extend(identity::rules(ctx));
    rules.extend(dates::rules(ctx));
    rules.extend(dev_number::rules(ctx));
    rules.extend(duplicates::rules(ctx));
    if ctx.is_members() {
        rules.extend(org::rules(ctx));
    }
    rules.retain(|r| ctx.template.has(r.field));
    let position = |f: Field| {
        ctx.template
            .columns
            .iter()
            .position(|c| c.field == f)
            .unwrap_or(usize::MAX)
    };
    rules.sort_by_key(|r| (position(r.field), r.code));
    rules
}

/// The derived columns the rules read come in three parts, each in the order its
/// stages must be computed. First those of the ID number and the development number
/// that each row has of its own: computed over those two columns alone, slice by slice.
/// Then, from those, what looks across the whole file: [`dev_number::first_holders`] and
/// [`duplicates::duplicate_rows`], over [`groups::Groups`].
pub fn derive_keys(ctx: &Ctx) -> Vec<Vec<Expr>> {
    let mut stages = identity::derive(ctx);
    stages.push(dev_number::derive_row(ctx));
    stages
}

/// The rest of the derived columns, for a slice of rows that already has [`derive_keys`]'s
/// columns.
pub fn derive_rest(ctx: &Ctx) -> Vec<Vec<Expr>> {
    let mut stages = vec![org::derive(ctx)];
    stages.extend(dates::derive(ctx));
    stages
}

/// `x.cast(String)`, for messages.
pub(crate) fn as_text(e: Expr) -> Expr {
    e.cast(DataType::String)
}

/// Shorthand: `e` is true (null → false).
pub(crate) fn truthy(e: Expr) -> Expr {
    e.fill_null(lit(false))
}
