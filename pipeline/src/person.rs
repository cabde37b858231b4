//! One person typed into a form (an admin registering, SPEC §12.1): checked by the very
//! rule expressions a roster row is checked by, over a one-row frame, so a form and a
//! roster never disagree about a name, an ID number or a phone number.

use chrono::NaiveDate;
use polars::prelude::*;
use schemas::{ErrorCode, Field, TemplateKind};

use crate::rules::{Ctx, Rule, fields, identity};
use crate::text::{Shape, shape};
use crate::{ID_NUMERIC, PipelineError, col_in};

/// A person's name, ID number and phone as typed, normalised as a roster's cells are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

/// What the rules say of a [`Person`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonCheck {
    /// The normalised values (what is stored when the check passes).
    pub person: Person,
    /// Every finding, in rule order: the field and its code.
    pub findings: Vec<(Field, ErrorCode)>,
    /// The birth date in a valid ID number.
    pub birth: Option<NaiveDate>,
}

impl PersonCheck {
    /// The first finding's message, for a form.
    pub fn message(&self) -> Option<String> {
        self.findings
            .first()
            .map(|(f, c)| format!("{}：{}", f.header(), c.message()))
    }
}

/// Checks a name, an ID number (§5.1) and a mobile phone number as a roster row's would
/// be checked on `as_of`.
pub fn check_person(
    name: &str,
    id_number: &str,
    phone: &str,
    as_of: NaiveDate,
) -> Result<PersonCheck, PipelineError> {
    let norm = |s: &str, how: Shape| shape(s, how).map(|c| c.into_owned());
    let values = [
        (Field::Name, norm(name, Shape::Collapsed)),
        (Field::IdNumber, norm(id_number, Shape::Upper)),
        (Field::Phone, norm(phone, Shape::Phone)),
    ];
    let mut columns: Vec<Column> = values
        .iter()
        .map(|(f, v)| Column::new(col_in(*f).into(), [v.clone()]))
        .collect();
    columns.push(Column::new(ID_NUMERIC.into(), [false]));
    let ctx = Ctx {
        template: TemplateKind::Cadres.template(),
        as_of,
        uploader_province: None,
    };
    let mut rules: Vec<Rule> = values
        .iter()
        .map(|(f, _)| fields::required_missing(*f))
        .collect();
    rules.push(fields::name_invalid(Field::Name));
    rules.push(fields::phone_invalid(Field::Phone));
    rules.extend(identity::rules(&ctx));
    let mut frame = DataFrame::new(1, columns)?.lazy();
    for stage in identity::derive(&ctx) {
        frame = frame.with_columns(stage);
    }
    let flags: Vec<Expr> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.fails
                .clone()
                .fill_null(lit(false))
                .alias(format!("rule{i}"))
        })
        .collect();
    let mut outputs = flags;
    outputs.extend([
        col(identity::ID_VALID),
        col(identity::BIRTH_Y),
        col(identity::BIRTH_M),
        col(identity::BIRTH_D),
    ]);
    let out = frame.select(outputs).collect()?;
    let mut findings = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        if out.column(&format!("rule{i}"))?.bool()?.get(0) == Some(true)
            && !findings.iter().any(|(f, _)| *f == r.field)
        {
            findings.push((r.field, r.code));
        }
    }
    let int = |c: &str| -> Result<Option<i32>, PipelineError> {
        Ok(out.column(c)?.cast(&DataType::Int32)?.i32()?.get(0))
    };
    let birth = match (
        out.column(identity::ID_VALID)?.bool()?.get(0),
        int(identity::BIRTH_Y)?,
        int(identity::BIRTH_M)?,
        int(identity::BIRTH_D)?,
    ) {
        (Some(true), Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m as u32, d as u32),
        _ => None,
    };
    let [name, id_number, phone] = values.map(|(_, v)| v.unwrap_or_default());
    Ok(PersonCheck {
        person: Person {
            name,
            id_number,
            phone,
        },
        findings,
        birth,
    })
}

/// Whole years between `birth` and `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    use chrono::Datelike;
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}
