//! One person typed into a form (an admin registering, SPEC §12.1): checked by the very
//! rule expressions a roster row is checked by, over a one-row frame, so a form and a
//! roster never disagree about a name, an ID number or a phone number.

use chrono::NaiveDate;
use polars::prelude::*;
use schemas::{ErrorCode, Field, TemplateKind};

use crate::columns::col_in;
use crate::error::PipelineError;
use crate::read::ID_NUMERIC;
use crate::rules::{Ctx, Rule, fields, identity};
use crate::text::{Shape, shape};

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
    let mut checks = check_people(&[(name, id_number, phone)], as_of)?;
    Ok(checks.remove(0))
}

/// [`check_person`] for many people at once, over one frame: `(name, ID number, phone)`.
pub fn check_people(
    people: &[(&str, &str, &str)],
    as_of: NaiveDate,
) -> Result<Vec<PersonCheck>, PipelineError> {
    let norm = |s: &str, how: Shape| shape(s, how).map(|c| c.into_owned());
    let fields = [
        (Field::Name, Shape::Collapsed),
        (Field::IdNumber, Shape::Upper),
        (Field::Phone, Shape::Phone),
    ];
    let values: Vec<Vec<Option<String>>> = fields
        .iter()
        .enumerate()
        .map(|(k, (_, how))| {
            people
                .iter()
                .map(|p| norm([p.0, p.1, p.2][k], *how))
                .collect()
        })
        .collect();
    let height = people.len();
    let mut columns: Vec<Column> = fields
        .iter()
        .zip(&values)
        .map(|((f, _), v)| Column::new(col_in(*f).into(), v.clone()))
        .collect();
    columns.push(Column::new(ID_NUMERIC.into(), vec![false; height]));
    let ctx = Ctx {
        template: TemplateKind::Cadres.template(),
        as_of,
        uploader_province: None,
    };
    let mut rules: Vec<Rule> = fields
        .iter()
        .map(|(f, _)| fields::required_missing(*f))
        .collect();
    rules.push(fields::name_invalid(Field::Name));
    rules.push(fields::phone_invalid(Field::Phone));
    rules.extend(identity::rules(&ctx));
    let mut frame = DataFrame::new(height, columns)?.lazy();
    for stage in identity::derive(&ctx) {
        frame = frame.with_columns(stage);
    }
    let mut outputs: Vec<Expr> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.fails
                .clone()
                .fill_null(lit(false))
                .alias(format!("rule{i}"))
        })
        .collect();
    outputs.extend([
        col(identity::ID_VALID),
        col(identity::BIRTH_Y).cast(DataType::Int32),
        col(identity::BIRTH_M).cast(DataType::Int32),
        col(identity::BIRTH_D).cast(DataType::Int32),
    ]);
    let out = frame.select(outputs).collect()?;
    let flags: Vec<BooleanChunked> = (0..rules.len())
        .map(|i| Ok(out.column(&format!("rule{i}"))?.bool()?.clone()))
        .collect::<Result<_, PipelineError>>()?;
    let valid = out.column(identity::ID_VALID)?.bool()?;
    let (y, m, d) = (
        out.column(identity::BIRTH_Y)?.i32()?,
        out.column(identity::BIRTH_M)?.i32()?,
        out.column(identity::BIRTH_D)?.i32()?,
    );
    let mut checks = Vec::with_capacity(height);
    let typed = values[0].iter().zip(&values[1]).zip(&values[2]);
    for (row, ((name, id_number), phone)) in typed.enumerate() {
        let mut findings = Vec::new();
        for (r, flag) in rules.iter().zip(&flags) {
            if flag.get(row) == Some(true) && !findings.iter().any(|(f, _)| *f == r.field) {
                findings.push((r.field, r.code));
            }
        }
        let birth = match (valid.get(row), y.get(row), m.get(row), d.get(row)) {
            (Some(true), Some(y), Some(m), Some(d)) => {
                NaiveDate::from_ymd_opt(y, m as u32, d as u32)
            }
            _ => None,
        };
        checks.push(PersonCheck {
            person: Person {
                name: name.clone().unwrap_or_default(),
                id_number: id_number.clone().unwrap_or_default(),
                phone: phone.clone().unwrap_or_default(),
            },
            findings,
            birth,
        });
    }
    Ok(checks)
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
