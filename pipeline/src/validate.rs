//! Validation of a whole roster: normalise, resolve organisations once per distinct
//! name, derive, evaluate every rule in parallel, and return data — all rows with their
//! verdicts plus a table of findings. One bad row never aborts the file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chrono::NaiveDate;
use polars::prelude::*;
use schemas::{ErrorCode, Field, Kind, Severity, TemplateKind};

use crate::columns::col_in;
use crate::error::PipelineError;
use crate::error::Rejection;
use crate::read::ROW;
use crate::read::{RawRoster, ReadLimits, read_roster};
use crate::resolver::OrgResolver;
use crate::rules::org::{
    ORG_CATEGORY, ORG_IN_SCOPE, ORG_KEY, ORG_NAME, ORG_PARENS, ORG_PROVINCE, ORG_SUGGEST, PROVINCE,
};
use crate::rules::{self, Ctx};

/// Columns of the findings table.
pub mod errors {
    pub const ROW: &str = "row";
    pub const FIELD: &str = "field";
    pub const COLUMN: &str = "column";
    pub const CODE: &str = "code";
    pub const SEVERITY: &str = "severity";
    pub const MESSAGE: &str = "message";
    /// The organisation whose workbook the finding goes to.
    pub const REPORT_ORG: &str = "report_org";
}

/// Row-level verdict columns added to the rows.
pub const HAS_ERROR: &str = "has_error";
pub const HAS_WARNING: &str = "has_warning";
/// The organisation whose admins see the row: its branch when known and in scope,
/// else the uploader.
pub const REPORT_ORG: &str = "report_org";
/// The ID number of every row whose ID number is itself valid, whatever else is wrong
/// with the row: the database asks `id_registered_elsewhere` of it (SPEC §5: one error
/// never hides another).
pub const PROBE_ID: &str = "probe.id";
/// The development number of every row whose number is well formed: the database asks
/// `dev_number_taken` of it.
pub const PROBE_DEV: &str = "probe.dev";

/// China Standard Time (UTC+8): the clock of upload dates and of statistics snapshots.
pub fn china() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// Today's date in China: the default upload date ages are computed against.
pub fn today_in_china() -> NaiveDate {
    chrono::Utc::now().with_timezone(&china()).date_naive()
}

#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub template: TemplateKind,
    pub as_of: NaiveDate,
    pub limits: ReadLimits,
    /// Read this sheet instead of the first visible one.
    pub sheet: Option<String>,
    /// Rows read so far, updated while reading (for progress displays).
    pub progress: Option<Arc<AtomicUsize>>,
    /// Keep only the rows with findings (nothing will be loaded): less memory.
    pub issue_rows_only: bool,
}

/// A file's verdict.
#[derive(Debug)]
pub enum Outcome {
    Accepted(Box<Validation>),
    Rejected(Rejection),
}

/// A validated roster.
#[derive(Debug)]
pub struct Validation {
    pub template: TemplateKind,
    pub sheet: String,
    pub header_row: u32,
    pub present: Vec<Field>,
    pub warnings: Vec<String>,
    pub uploader: String,
    /// Every data row, in file order: `raw.*` as uploaded, canonical values, `in.*` of
    /// the branch and development number, `has_error`, `has_warning`, `report_org`, the
    /// resolved organisation and province. Derived columns and rule flags are dropped
    /// once the findings are made.
    pub rows: DataFrame,
    /// One row per finding: row, field, column, code, severity, message, report_org;
    /// sorted by row, then column.
    pub errors: DataFrame,
    /// Rows without findings let go by [`Validation::keep_issue_rows`]: still counted.
    pub clean_rows_dropped: usize,
}

/// Row counts of SPEC §11's `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub total: usize,
    pub valid: usize,
    pub with_errors: usize,
    pub with_warnings: usize,
}

impl Validation {
    pub fn counts(&self) -> PolarsResult<RowCounts> {
        let total = self.rows.height() + self.clean_rows_dropped;
        let sum = |c: &str| -> PolarsResult<usize> {
            Ok(self.rows.column(c)?.bool()?.sum().unwrap_or(0) as usize)
        };
        let with_errors = sum(HAS_ERROR)?;
        Ok(RowCounts {
            total,
            valid: total - with_errors,
            with_errors,
            with_warnings: sum(HAS_WARNING)?,
        })
    }

    pub fn counts_by_code(&self) -> PolarsResult<BTreeMap<String, usize>> {
        let mut out = BTreeMap::new();
        for code in self.errors.column(errors::CODE)?.str()?.iter().flatten() {
            *out.entry(code.to_string()).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Lets go of the rows without findings once they are loaded (or need not be): the
    /// reports read only rows with findings, and the counts stay the same. The kept text is
    /// copied out of the file-sized buffers so those are freed. Call it after
    /// [`Validation::add_findings`] and before the reports; the clean rows are gone.
    pub fn keep_issue_rows(&mut self) -> PolarsResult<()> {
        let before = self.rows.height();
        self.rows = issue_rows(&self.rows)?;
        self.clean_rows_dropped += before - self.rows.height();
        Ok(())
    }

    /// The positions in `rows` of the rows that load (no error; warnings allowed), in
    /// file order. Positions, not a filtered copy: the load reads the few columns it
    /// needs at them, and a million rows' every column is never copied.
    pub fn valid_positions(&self) -> PolarsResult<Vec<u32>> {
        let has_error = self.rows.column(HAS_ERROR)?.bool()?;
        let mut at = Vec::with_capacity(self.rows.height());
        let mut i = 0_u32;
        for chunk in has_error.downcast_iter() {
            for e in chunk.iter() {
                if e == Some(false) {
                    at.push(i);
                }
                i += 1;
            }
        }
        Ok(at)
    }

    /// Adds findings only the database could make (they are errors: the rows were not
    /// loaded), so the reports show them like any other.
    pub fn add_findings(&mut self, found: &[(u32, ErrorCode)]) -> PolarsResult<()> {
        if found.is_empty() {
            return Ok(());
        }
        let field = |c: ErrorCode| match c {
            ErrorCode::DevNumberTaken => Field::DevNumber,
            ErrorCode::OrgNotFound => Field::Branch,
            _ => Field::IdNumber,
        };
        let rows: Vec<u32> = found.iter().map(|f| f.0).collect();
        let extra = DataFrame::new(
            found.len(),
            vec![
                Column::new(errors::ROW.into(), rows.clone()),
                Column::new(
                    errors::FIELD.into(),
                    found.iter().map(|f| field(f.1).key()).collect::<Vec<_>>(),
                ),
                Column::new(
                    errors::COLUMN.into(),
                    found
                        .iter()
                        .map(|f| field(f.1).header())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    errors::CODE.into(),
                    found.iter().map(|f| f.1.code()).collect::<Vec<_>>(),
                ),
                Column::new(
                    errors::SEVERITY.into(),
                    found
                        .iter()
                        .map(|f| f.1.severity().code())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    errors::MESSAGE.into(),
                    found.iter().map(|f| f.1.message()).collect::<Vec<_>>(),
                ),
            ],
        )?;
        let row_set = Series::new("rows".into(), rows);
        self.rows = self
            .rows
            .clone()
            .lazy()
            .with_column(
                col(HAS_ERROR)
                    .or(col(ROW).is_in(lit(row_set).implode(false), false))
                    .alias(HAS_ERROR),
            )
            .collect()?;
        let extra = extra
            .lazy()
            .join(
                self.rows.clone().lazy().select([col(ROW), col(REPORT_ORG)]),
                [col(errors::ROW)],
                [col(ROW)],
                JoinArgs::new(JoinType::Left),
            )
            .collect()?;
        self.errors = concat(
            [self.errors.clone().lazy(), extra.lazy()],
            UnionArgs::default(),
        )?
        .sort(
            [errors::ROW],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
        Ok(())
    }

    /// The codes found, each once.
    pub fn codes(&self) -> PolarsResult<Vec<ErrorCode>> {
        Ok(self
            .counts_by_code()?
            .keys()
            .filter_map(|c| ErrorCode::from_code(c))
            .collect())
    }
}

/// The rows with a finding, their text copied out of the (file-sized) buffers it shares
/// with the dropped rows, so those can be freed.
fn issue_rows(rows: &DataFrame) -> PolarsResult<DataFrame> {
    let kept = rows
        .clone()
        .lazy()
        .filter(col(HAS_ERROR).or(col(HAS_WARNING)))
        .collect()?;
    let compact = kept
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::String => {
                let ca = c.str()?;
                let copy: StringChunked = ca.iter().collect();
                Ok(copy.with_name(c.name().clone()).into_column())
            }
            _ => Ok(c.clone()),
        })
        .collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new(kept.height(), compact)
}

/// Reads and validates an upload.
pub fn validate_bytes(
    bytes: &[u8],
    opts: &ValidateOptions,
    orgs: &dyn OrgResolver,
) -> Result<Outcome, PipelineError> {
    let raw = match read_roster(
        bytes,
        opts.template,
        opts.sheet.as_deref(),
        &opts.limits,
        opts.progress.as_deref(),
    ) {
        Ok(raw) => raw,
        Err(rejection) => return Ok(Outcome::Rejected(rejection)),
    };
    Ok(Outcome::Accepted(Box::new(validate_rows(
        raw,
        opts.as_of,
        orgs,
        opts.issue_rows_only,
    )?)))
}

/// Rows validated at a time: the reader's chunk ([`crate::read::CHUNK_ROWS`]), so each
/// slice is whole chunks. Normalisation, the lookups and the rules work on one slice of
/// this many rows, so their working set is a slice's, not the file's; what looks across
/// the file (duplicate ID numbers, who first holds a development number) is computed
/// first over those two columns alone.
pub const SLICE_ROWS: usize = crate::read::CHUNK_ROWS;

/// Validates a roster already read.
pub fn validate(
    raw: RawRoster,
    as_of: NaiveDate,
    orgs: &dyn OrgResolver,
) -> Result<Validation, PipelineError> {
    validate_rows(raw, as_of, orgs, false)
}

/// [`validate`]; with `issue_rows_only`, each slice keeps only its rows with findings
/// (as [`Validation::keep_issue_rows`] would after), for callers that load nothing.
pub fn validate_rows(
    raw: RawRoster,
    as_of: NaiveDate,
    orgs: &dyn OrgResolver,
    issue_rows_only: bool,
) -> Result<Validation, PipelineError> {
    // `ROSTER_SLICE_ROWS` trades memory for time (benchmarks, machines with memory to
    // spare).
    let slice = std::env::var("ROSTER_SLICE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SLICE_ROWS);
    validate_sliced(raw, as_of, orgs, issue_rows_only, slice)
}

/// [`validate_rows`] with slices of `slice_rows` rows (tests hold every slice size to
/// the same answer).
#[tracing::instrument(skip_all, fields(rows = raw.frame.height(), template = raw.template.code()))]
pub fn validate_sliced(
    raw: RawRoster,
    as_of: NaiveDate,
    orgs: &dyn OrgResolver,
    issue_rows_only: bool,
    slice_rows: usize,
) -> Result<Validation, PipelineError> {
    let slice_rows = slice_rows.max(1);
    let template = raw.template.template();
    let ctx = Ctx {
        template,
        as_of,
        uploader_province: orgs.uploader_province().map(str::to_string),
    };
    let uploader = orgs.uploader_name().to_string();
    tracing::info!(
        rss_mib = crate::memory::rss_mib(),
        peak_rss_mib = crate::memory::peak_rss_mib(),
        "read"
    );
    let mut across = across_file(&raw.frame, &ctx, slice_rows)?;
    tracing::info!(
        rss_mib = crate::memory::rss_mib(),
        peak_rss_mib = crate::memory::peak_rss_mib(),
        "file-wide columns"
    );
    let rules = rules::all(&ctx);
    let RawRoster {
        template: kind,
        sheet,
        header_row,
        frame: mut unread,
        present,
        warnings,
    } = raw;
    let mut rows: Option<DataFrame> = None;
    let mut findings = Vec::new();
    let mut dropped = 0;
    for (_, len) in slices(unread.height(), slice_rows) {
        // Each slice is taken off the front of what is left, so the chunks of rows
        // validated are let go as the walk goes on (the reader builds them a slice long).
        let slice = unread.slice(0, len);
        unread = unread.slice(len as i64, unread.height() - len);
        let extra = across.slice(0, len);
        across = across.slice(len as i64, across.height() - len);
        let (mut kept, found) = validate_slice(slice, extra, &ctx, &rules, &uploader, orgs)?;
        if issue_rows_only {
            let before = kept.height();
            kept = issue_rows(&kept)?;
            dropped += before - kept.height();
        }
        match rows.as_mut() {
            Some(r) => {
                r.vstack_mut_owned(kept)?;
            }
            None => rows = Some(kept),
        }
        findings.push(found.lazy());
    }
    drop((unread, across));
    let rows = rows.expect("at least one slice");
    tracing::info!(
        rss_mib = crate::memory::rss_mib(),
        peak_rss_mib = crate::memory::peak_rss_mib(),
        "rules evaluated"
    );
    let errors = concat(findings, UnionArgs::default())?
        .sort([errors::ROW, "rule"], Default::default())
        .drop(cols(["rule"]))
        .collect()?;
    tracing::info!(
        rows = rows.height(),
        findings = errors.height(),
        peak_rss_mib = crate::memory::peak_rss_mib(),
        "validated"
    );
    Ok(Validation {
        template: kind,
        sheet,
        header_row,
        present,
        warnings,
        uploader,
        rows,
        errors,
        clean_rows_dropped: dropped,
    })
}

/// The derived columns of the ID number and the development number, from those two
/// columns alone, including what looks across the whole file: who first holds each
/// number (`dev.first_row`, `dev.held_by_other`) and the other rows with the same ID number
/// (`dup.rows`). Row-aligned with `raw`; the inputs themselves are left out. Each row's
/// own columns are derived a slice at a time, so their transients are a slice's.
fn across_file(raw: &DataFrame, ctx: &Ctx, slice_rows: usize) -> Result<DataFrame, PipelineError> {
    let mut inputs = vec![col(ROW), col(crate::read::ID_NUMERIC)];
    let mut leave_out = vec![ROW.to_string(), crate::read::ID_NUMERIC.to_string()];
    for f in [Field::IdNumber, Field::DevNumber] {
        let kind = ctx
            .template
            .column(f)
            .map(|c| c.kind)
            .unwrap_or(Kind::DevNumber);
        let raw_col = crate::columns::col_raw(f);
        let text = if raw.schema().contains(&raw_col) {
            col(raw_col)
        } else {
            lit(NULL).cast(DataType::String)
        };
        inputs.push(crate::normalise::input(kind, text).alias(col_in(f)));
        leave_out.push(col_in(f));
    }
    let stages = rules::derive_keys(ctx);
    let mut narrow: Option<DataFrame> = None;
    for (offset, len) in slices(raw.height(), slice_rows) {
        let mut lf = raw.slice(offset as i64, len).lazy().select(inputs.clone());
        for stage in &stages {
            lf = lf.with_columns(stage.clone());
        }
        let part = lf.collect()?;
        match narrow.as_mut() {
            Some(n) => {
                n.vstack_mut_owned(part)?;
            }
            None => narrow = Some(part),
        }
    }
    let narrow = narrow.expect("at least one slice");
    let holders = rules::dev_number::first_holders(&narrow)?;
    let dups = rules::duplicates::duplicate_rows(&narrow)?;
    let mut across = narrow.drop_many(leave_out);
    append(&mut across, holders)?;
    append(&mut across, dups)?;
    Ok(across)
}

/// One slice of rows: normalised, its organisations resolved, derived (with the
/// file-wide columns of `across`), every rule evaluated; returns the rows as kept for
/// the reports and the load, and the slice's findings (with a `rule` column to sort by).
fn validate_slice(
    raw: DataFrame,
    across: DataFrame,
    ctx: &Ctx,
    rules: &[rules::Rule],
    uploader: &str,
    orgs: &dyn OrgResolver,
) -> Result<(DataFrame, DataFrame), PipelineError> {
    let template = ctx.template;
    let mut frame = crate::normalise::normalise(raw.lazy(), template).collect()?;
    // Lookups are joined onto narrow frames and their columns appended: the joins keep
    // the left order, so row i is row i, and the wide frame is never gathered.
    if ctx.is_members() {
        let lookup = org_lookup(&frame, orgs)?;
        let key = col_in(Field::Branch);
        let attached = frame
            .select([key.as_str()])?
            .lazy()
            .join(
                lookup.lazy(),
                [col(key.as_str())],
                [col(ORG_KEY)],
                crate::columns::left_join(),
            )
            .drop(cols([key.as_str()]))
            .collect()?;
        append(&mut frame, attached)?;
    }
    append(&mut frame, across)?;
    let mut lf = frame.lazy();
    for stage in rules::derive_rest(ctx) {
        lf = lf.with_columns(stage);
    }

    let flag = |i: usize| format!("fail.{i}");
    lf = lf.with_columns(
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| rules::truthy(r.fails.clone()).alias(flag(i)))
            .collect::<Vec<_>>(),
    );
    let any_of = |severity: Severity| -> PolarsResult<Expr> {
        let flags: Vec<Expr> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code.severity() == severity)
            .map(|(i, _)| col(flag(i)))
            .collect();
        if flags.is_empty() {
            Ok(lit(false))
        } else {
            any_horizontal(flags)
        }
    };
    let report_org = if ctx.is_members() {
        when(
            col(ORG_NAME)
                .is_not_null()
                .and(rules::truthy(col(ORG_IN_SCOPE))),
        )
        .then(col(ORG_NAME))
        .otherwise(lit(uploader.to_string()))
    } else {
        lit(uploader.to_string())
    };
    let probe_dev = if template.has(Field::DevNumber) {
        when(rules::truthy(col(rules::dev_number::WELL_FORMED)))
            .then(col(col_in(Field::DevNumber)))
            .otherwise(lit(NULL).cast(DataType::String))
    } else {
        lit(NULL).cast(DataType::String)
    };
    let rows = lf
        .with_columns([
            any_of(Severity::Error)?.alias(HAS_ERROR),
            any_of(Severity::Warning)?.alias(HAS_WARNING),
            report_org.alias(REPORT_ORG),
            when(rules::truthy(col(rules::identity::ID_VALID)))
                .then(col(crate::columns::col_val(Field::IdNumber)))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias(PROBE_ID),
            probe_dev.alias(PROBE_DEV),
        ])
        .collect()?;

    let findings: Vec<LazyFrame> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            rows.clone().lazy().filter(col(flag(i))).select([
                col(ROW).alias(errors::ROW),
                lit(i as u32).alias("rule"),
                lit(r.field.key()).alias(errors::FIELD),
                lit(r.field.header()).alias(errors::COLUMN),
                lit(r.code.code()).alias(errors::CODE),
                lit(r.code.severity().code()).alias(errors::SEVERITY),
                r.message().alias(errors::MESSAGE),
                col(REPORT_ORG).alias(errors::REPORT_ORG),
            ])
        })
        .collect();
    let found = concat(findings, UnionArgs::default())?.collect()?;
    let kept = rows.select(kept_columns(ctx, &rows))?;
    Ok((kept, found))
}

/// Appends the columns of `extra`, row-aligned with `frame`.
/// `(offset, len)` of each slice of `slice_rows` rows (at least one, even of no rows).
fn slices(height: usize, slice_rows: usize) -> impl Iterator<Item = (usize, usize)> {
    let slice_rows = slice_rows.max(1);
    (0..height.max(1))
        .step_by(slice_rows)
        .map(move |offset| (offset, slice_rows.min(height - offset)))
}

fn append(frame: &mut DataFrame, extra: DataFrame) -> PolarsResult<()> {
    polars_ensure!(
        extra.height() == frame.height(),
        ShapeMismatch: "lookup of {} rows for {} rows", extra.height(), frame.height()
    );
    frame.hstack_mut(extra.columns())?;
    Ok(())
}

/// Fields whose normalised input (`in.*`) outlives validation, for the load: the branch
/// (organisations are looked up by it) and the development number as written. Of every
/// other field the load reads the canonical value.
pub const LOAD_INPUTS: [Field; 2] = [Field::Branch, Field::DevNumber];

/// What the reports and the load read of the rows; the rest (derived columns, rule
/// flags) is dropped once the findings are made.
fn kept_columns(ctx: &Ctx, rows: &DataFrame) -> Vec<String> {
    let mut keep: Vec<String> = [
        ROW,
        HAS_ERROR,
        HAS_WARNING,
        REPORT_ORG,
        PROVINCE,
        ORG_NAME,
        PROBE_ID,
        PROBE_DEV,
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    for c in ctx.template.columns {
        keep.push(crate::columns::col_raw(c.field));
        keep.push(crate::columns::col_val(c.field));
    }
    for f in LOAD_INPUTS {
        keep.push(col_in(f));
    }
    keep.retain(|c| rows.schema().contains(c));
    keep.dedup();
    keep
}

/// Resolves each distinct organisation name of the file once.
fn org_lookup(frame: &DataFrame, orgs: &dyn OrgResolver) -> Result<DataFrame, PipelineError> {
    let names = frame
        .clone()
        .lazy()
        .select([col(col_in(Field::Branch)).unique().drop_nulls()])
        .collect()?;
    let keys: Vec<&str> = names
        .column(&col_in(Field::Branch))?
        .str()?
        .iter()
        .flatten()
        .collect();
    let resolved = orgs.resolve(&keys)?;
    let n = keys.len();
    let mut name = Vec::with_capacity(n);
    let mut category = Vec::with_capacity(n);
    let mut province = Vec::with_capacity(n);
    let mut in_scope = Vec::with_capacity(n);
    let mut parens = Vec::with_capacity(n);
    let mut suggest = Vec::with_capacity(n);
    for r in &resolved {
        match r {
            Ok(m) => {
                name.push(Some(m.full_name.clone()));
                category.push(Some(m.category.code()));
                province.push(m.province.clone());
                in_scope.push(Some(m.in_scope));
                parens.push(Some(m.full_name.contains(['(', ')', '（', '）'])));
                suggest.push(None);
            }
            Err(s) => {
                name.push(None);
                category.push(None);
                province.push(None);
                in_scope.push(None);
                parens.push(None);
                suggest.push((!s.is_empty()).then(|| s.join("、")));
            }
        }
    }
    Ok(DataFrame::new(
        n,
        vec![
            Column::new(ORG_KEY.into(), keys),
            Column::new(ORG_NAME.into(), name),
            Column::new(ORG_CATEGORY.into(), category),
            Column::new(ORG_PROVINCE.into(), province),
            Column::new(ORG_IN_SCOPE.into(), in_scope),
            Column::new(ORG_PARENS.into(), parens),
            Column::new(ORG_SUGGEST.into(), suggest),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::slices;

    /// Height, slice rows, and the `(offset, len)` of each slice.
    type Case = (usize, usize, &'static [(usize, usize)]);

    #[test]
    fn slices_cover_every_row_once() {
        let cases: &[Case] = &[
            (0, 4, &[(0, 0)]),
            (1, 4, &[(0, 1)]),
            (4, 4, &[(0, 4)]),
            (5, 4, &[(0, 4), (4, 1)]),
            (8, 4, &[(0, 4), (4, 4)]),
            (3, 0, &[(0, 1), (1, 1), (2, 1)]),
        ];
        for (height, rows, want) in cases {
            let got: Vec<_> = slices(*height, *rows).collect();
            assert_eq!(&got, want, "height {height}, slices of {rows}");
        }
    }
}
