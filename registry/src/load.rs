//! The load stage: the valid rows of a validation into the registry in one transaction,
//! checked against everyone already registered, as few index writes as possible.
//!
//! The shape of the work (BENCHMARKS.md has the numbers behind it):
//! 1. [`LoadBatch::keys`] (CPU, a blocking thread) sorts the valid rows' keys by ID
//!    number, so new people reach the primary key in key order; [`LoadSource::coming`]
//!    makes their COPY text once, in parallel parts in file order (each column read in
//!    sequence), on another thread while the load checks the first rows
//!    ([`LoadBatch::prepare`] makes both, one after the other). The COPY then takes
//!    each row's line in key order: one look-up a row, where making the text in key
//!    order cost a cache miss per field.
//! 2. [`load`] takes the load lock; a second connection then asks, a chunk of rows at a
//!    time, two set-based questions of the keys (row, ID, number, branch): which numbers
//!    are held by someone else (`dev_number_taken`), and which people are already stored
//!    (and, for members, in another branch: `id_registered_elsewhere`).
//! 3. Meanwhile the new people of each chunk already checked are COPYed straight into
//!    `people` (one COPY, no staging copy, no `ON CONFLICT`); stored people are staged
//!    and updated only where something differs; cadre posts are merged. Loading the same
//!    file again writes nothing.
//!
//! The findings are whole once the checks end, long before the writes do:
//! [`load_begin_telling`] tells them then, so the reports can be made during the writes.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;

use polars::prelude::{PolarsResult, StringChunked};
use schemas::{Field, TemplateKind};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::RegistryError;
use crate::copy::{CopyWriter, copy_field, copy_fields, copy_rows};
use crate::people::{self, OnUpdate, Value};

/// A finding only the database can make, for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFinding {
    pub row: u32,
    pub code: schemas::ErrorCode,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Rows written (inserted or updated people).
    pub rows: u64,
    /// Rows refused by the database checks, with their codes.
    pub findings: Vec<DbFinding>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Db(#[from] RegistryError),
    /// The checking connection stopped before it answered for every row (its own error
    /// is the one reported when it has one).
    #[error("the registry checks ended before every row was checked")]
    ChecksEnded,
    /// A batch of keys only was loaded without its text coming, or the text stopped
    /// coming before every row had its line.
    #[error("a batch made by LoadBatch::keys needs all its text (LoadSource::coming) to load")]
    NoText,
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        LoadError::Db(RegistryError::from(e))
    }
}

/// A row that does not load but is still asked the database's questions.
#[derive(Debug, Clone)]
struct Probe {
    row: u32,
    id_number: Option<String>,
    dev_number: Option<String>,
    branch: Option<u32>,
}

/// The keys of the valid rows of a validation (sorted by ID number), ready for the
/// registry's checks; and, when made by [`LoadBatch::prepare`], their COPY text. Making
/// it is CPU work (polars): do it on a blocking thread, then [`load`] it.
#[derive(Debug, Clone)]
pub struct LoadBatch {
    pub template: TemplateKind,
    pub rows: usize,
    /// Sorted by ID number.
    staged: Vec<Staged>,
    /// Rows with errors whose ID number or development number is itself valid: checked
    /// against the registry too, never written.
    probes: Vec<Probe>,
    /// Distinct normalised branch names (template A).
    branches: Vec<String>,
    /// The COPY fields of every staged row; `None` when they are made beside the load
    /// ([`LoadBatch::keys`], [`LoadSource::coming`]).
    text: Option<LoadText>,
    /// Staged rows checked at a time ([`CHECK_CHUNK`]).
    check_chunk: usize,
}

#[derive(Debug, Clone)]
struct Staged {
    /// The row's line in its [`LoadText`] (the rows' file order).
    at: u32,
    row: u32,
    id_number: String,
    dev_number: Option<String>,
    /// Index into `branches`.
    branch: Option<u32>,
}

impl LoadBatch {
    /// The keys and the COPY text, one after the other.
    pub fn prepare(v: &pipeline::Validation) -> PolarsResult<LoadBatch> {
        let (mut batch, source) = LoadBatch::keys(v)?;
        batch.text = Some(source.text());
        Ok(batch)
    }

    /// The keys only (quick: the registry's checks can begin), and what their COPY text
    /// is made from: [`LoadSource::coming`], given to the load as a [`TextComing`], is made
    /// while the registry answers.
    pub fn keys(v: &pipeline::Validation) -> PolarsResult<(LoadBatch, LoadSource)> {
        keys(v)
    }

    /// No rows to load.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Checks `rows` staged rows at a time instead of [`CHECK_CHUNK`] (tests hold every
    /// chunk size to the same answer).
    pub fn checked_in_chunks_of(mut self, rows: usize) -> LoadBatch {
        self.check_chunk = rows.max(1);
        self
    }

    /// The staged rows a check at a time: a small first chunk ([`FIRST_CHECK_CHUNK`]),
    /// so the COPY begins soon, then chunks of `check_chunk` rows.
    fn check_chunks(&self) -> impl Iterator<Item = &[Staged]> {
        let first = self
            .check_chunk
            .min(FIRST_CHECK_CHUNK)
            .min(self.staged.len());
        let (head, rest) = self.staged.split_at(first);
        std::iter::once(head)
            .filter(|h| !h.is_empty())
            .chain(rest.chunks(self.check_chunk))
    }
}

/// A column of the validated rows, when the template has the field (in one chunk, so a
/// row is found at once).
type Source = Option<StringChunked>;

fn get(c: &Source, i: usize) -> Option<&str> {
    c.as_ref().and_then(|c| c.get(i))
}

/// What the COPY text of a [`LoadBatch`] is made from: the columns of its valid rows
/// and their positions. Owns what it needs (polars columns share their buffers), so it
/// can go to another thread.
#[derive(Clone)]
pub struct LoadSource {
    members: bool,
    /// The position (in the validated rows) of each staged row, in file order: line `n`
    /// of the text is the row at `lines[n]`. Read in this order, every column is read in
    /// sequence.
    lines: Vec<u32>,
    /// Rows of a part of the text ([`TEXT_PART`]).
    part_rows: usize,
    /// The person columns known from the row, each with its source column.
    person: Vec<(&'static people::Column, Source)>,
    is_cadre: Source,
    duty: Source,
    appointed: Source,
    nature: Source,
    committee: Source,
}

/// The COPY fields of every staged row: parts of [`TEXT_PART`] rows in file order, made
/// in parallel.
#[derive(Debug, Clone, Default)]
pub struct LoadText {
    parts: Vec<TextPart>,
    /// Rows the parts cover.
    rows: usize,
}

#[derive(Debug, Clone)]
struct TextPart {
    text: String,
    /// Per row: its fields of `people` (those of [`people::copy_order`] known from the
    /// row), tab-separated.
    person: Vec<Range<u32>>,
    /// Per row: `duty, appointed_on, appointed_precision, nature, party_committee_member`.
    post: Vec<Option<Range<u32>>>,
}

/// Rows of one part of a [`LoadText`].
const TEXT_PART: usize = 1 << 14;

impl LoadText {
    fn push(&mut self, part: TextPart) {
        self.rows += part.person.len();
        self.parts.push(part);
    }

    /// Every part but the last has as many rows as the first.
    fn part(&self, at: u32) -> (&TextPart, usize) {
        let (at, n) = (at as usize, self.parts[0].person.len());
        (&self.parts[at / n], at % n)
    }

    fn person(&self, at: u32) -> &str {
        let (p, i) = self.part(at);
        let r = &p.person[i];
        &p.text[r.start as usize..r.end as usize]
    }

    fn post(&self, at: u32) -> Option<&str> {
        let (p, i) = self.part(at);
        p.post[i]
            .as_ref()
            .map(|r| &p.text[r.start as usize..r.end as usize])
    }
}

/// The COPY text of a [`LoadBatch`] made by [`LoadBatch::keys`], its parts coming in file
/// order from another thread while the load checks ([`LoadSource::coming`]).
pub struct TextComing {
    /// Unbounded: the load keeps every part anyway (the stored people and the posts need
    /// them after the COPY), so holding them in the channel costs nothing more, and the
    /// text is made at full speed while the load is still waiting for its first checks.
    parts: tokio::sync::mpsc::UnboundedReceiver<TextPart>,
}

/// Parts made at a time, in parallel.
const PARTS_AT_ONCE: usize = 4;

impl LoadSource {
    /// The COPY text of every staged row, in parallel parts.
    #[tracing::instrument(skip_all, fields(rows = self.lines.len()))]
    pub fn text(&self) -> LoadText {
        use rayon::prelude::*;
        let mut text = LoadText::default();
        let parts: Vec<TextPart> = self
            .lines
            .par_chunks(self.part_rows)
            .map(|rows| self.part(rows))
            .collect();
        for part in parts {
            text.push(part);
        }
        text
    }

    /// Makes the text in parts of `rows` rows instead of [`TEXT_PART`] (tests hold every
    /// part size to the same answer).
    pub fn in_parts_of(mut self, rows: usize) -> LoadSource {
        self.part_rows = rows.max(1);
        self
    }

    /// The COPY text of every staged row, made on a blocking thread [`PARTS_AT_ONCE`] parts
    /// at a time (in parallel) and handed over in order, while the load takes its lock and
    /// checks the first rows. Stops when the load no longer listens.
    pub fn coming(self) -> TextComing {
        use rayon::prelude::*;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            let begun = std::time::Instant::now();
            for rows in self.lines.chunks(self.part_rows * PARTS_AT_ONCE) {
                let parts: Vec<TextPart> = rows
                    .par_chunks(self.part_rows)
                    .map(|rows| self.part(rows))
                    .collect();
                for part in parts {
                    if tx.send(part).is_err() {
                        return;
                    }
                }
            }
            let (rows, seconds) = (self.lines.len(), begun.elapsed().as_secs_f64());
            tracing::debug!(rows, seconds, "COPY text made");
        });
        TextComing { parts: rx }
    }

    fn part(&self, rows: &[u32]) -> TextPart {
        let mut part = TextPart {
            text: String::with_capacity(rows.len() * 200),
            person: Vec::with_capacity(rows.len()),
            post: Vec::with_capacity(rows.len()),
        };
        let out = &mut part.text;
        for &i in rows {
            let i = i as usize;
            let start = out.len() as u32;
            for (n, (c, src)) in self.person.iter().enumerate() {
                if n > 0 {
                    out.push('\t');
                }
                // Template B rows are posts, not memberships: a new person gets the
                // defaults.
                let cell = if !self.members && c.on_update == OnUpdate::Membership {
                    None
                } else {
                    get(src, i)
                };
                person_field(out, c.value, cell);
            }
            part.person.push(start..out.len() as u32);
            let cadre = yes_no(get(&self.is_cadre, i));
            // Template B: every row is a post in the uploader's organisation; template
            // A: a cadre's post in the branch.
            let post = (get(&self.duty, i).is_some() && (!self.members || cadre == Some("t")))
                .then(|| {
                    let start = out.len() as u32;
                    let (on, precision) = month_or_day(get(&self.appointed, i));
                    copy_fields(
                        out,
                        &[
                            get(&self.duty, i),
                            on.as_deref(),
                            precision,
                            get(&self.nature, i),
                            yes_no(get(&self.committee, i)),
                        ],
                    );
                    start..out.len() as u32
                });
            part.post.push(post);
        }
        part
    }
}

#[tracing::instrument(skip_all, fields(rows))]
fn keys(v: &pipeline::Validation) -> PolarsResult<(LoadBatch, LoadSource)> {
    use rayon::prelude::*;
    let t = v.template.template();
    let members = v.template == TemplateKind::Members;
    // The columns of every validated row (shared, not copied), read at the valid rows'
    // positions.
    let df = &v.rows;
    let valid = v.valid_positions()?;
    tracing::Span::current().record("rows", valid.len());
    let source = |name: String, f: Field| -> PolarsResult<Source> {
        if t.has(f) {
            Ok(Some(df.column(&name)?.str()?.rechunk().into_owned()))
        } else {
            Ok(None)
        }
    };
    let canonical = |f: Field| source(pipeline::col_val(f), f);
    let person: Vec<(&'static people::Column, Source)> = people::copy_order()
        .filter(|c| !c.value.at_load())
        .map(|c| {
            let src = match c.value {
                Value::Input(f) => source(pipeline::col_in(f), f)?,
                Value::Canonical(f) | Value::Date(f) | Value::Precision(f) | Value::YesNo(f) => {
                    canonical(f)?
                }
                Value::Branch | Value::Upload => None,
            };
            Ok((c, src))
        })
        .collect::<PolarsResult<_>>()?;
    let id = canonical(Field::IdNumber)?;
    let dev = source(pipeline::col_in(Field::DevNumber), Field::DevNumber)?;
    let branch = source(pipeline::col_in(Field::Branch), Field::Branch)?;
    let rows = df.column(pipeline::ROW)?.u32()?.rechunk().into_owned();

    // Key order: new people then reach the primary key's B-tree in order. Equal keys
    // keep file order. Each key with its line (its place among the valid rows).
    let mut order: Vec<(&str, u32)> = valid
        .iter()
        .enumerate()
        .map(|(line, &i)| (get(&id, i as usize).unwrap_or_default(), line as u32))
        .collect();
    order.par_sort_unstable();
    let at = |line: u32| valid[line as usize] as usize;

    let mut branches: Vec<String> = Vec::new();
    let mut branch_index: std::collections::HashMap<String, u32> = Default::default();
    let mut branch_of = |key: &str| -> u32 {
        if let Some(&i) = branch_index.get(key) {
            return i;
        }
        branches.push(key.to_string());
        let i = (branches.len() - 1) as u32;
        branch_index.insert(key.to_string(), i);
        i
    };
    let branch_at: Vec<Option<u32>> = order
        .iter()
        .map(|&(_, line)| get(&branch, at(line)).map(&mut branch_of))
        .collect();
    let staged: Vec<Staged> = order
        .par_iter()
        .zip(branch_at)
        .map(|(&(id_number, line), branch)| Staged {
            at: line,
            row: rows.get(at(line)).unwrap_or_default(),
            id_number: id_number.to_string(),
            dev_number: get(&dev, at(line)).map(str::to_string),
            branch,
        })
        .collect();
    // Rows with errors: their keys only, where the key itself is valid.
    use pipeline::validate::{HAS_ERROR, PROBE_DEV, PROBE_ID};
    use polars::prelude::{IntoLazy, col};
    let mut select = vec![col(pipeline::ROW), col(PROBE_ID), col(PROBE_DEV)];
    if members {
        select.push(col(pipeline::col_in(Field::Branch)));
    }
    let errs = v
        .rows
        .clone()
        .lazy()
        .filter(col(HAS_ERROR).and(col(PROBE_ID).is_not_null().or(col(PROBE_DEV).is_not_null())))
        .select(select)
        .collect()?;
    let (err_rows, ids, devs) = (
        errs.column(pipeline::ROW)?.u32()?,
        errs.column(PROBE_ID)?.str()?,
        errs.column(PROBE_DEV)?.str()?,
    );
    let branch_col = if members {
        Some(
            errs.column(&pipeline::col_in(Field::Branch))?
                .str()?
                .rechunk()
                .into_owned(),
        )
    } else {
        None
    };
    let probes = (0..errs.height())
        .map(|i| Probe {
            row: err_rows.get(i).unwrap_or_default(),
            id_number: ids.get(i).map(str::to_string),
            dev_number: devs.get(i).map(str::to_string),
            branch: get(&branch_col, i).map(&mut branch_of),
        })
        .collect();
    let [is_cadre, duty, appointed, nature, committee] = [
        Field::IsCadre,
        Field::Duty,
        Field::AppointedOn,
        Field::CadreNature,
        Field::PartyCommitteeMember,
    ]
    .map(canonical);
    let source = LoadSource {
        members,
        lines: valid,
        part_rows: TEXT_PART,
        person,
        is_cadre: is_cadre?,
        duty: duty?,
        appointed: appointed?,
        nature: nature?,
        committee: committee?,
    };
    Ok((
        LoadBatch {
            template: v.template,
            rows: staged.len(),
            staged,
            probes,
            branches,
            text: None,
            check_chunk: CHECK_CHUNK,
        },
        source,
    ))
}

/// One person field of a COPY line, from its cell.
fn person_field(out: &mut String, value: Value, cell: Option<&str>) {
    match (value, cell) {
        (Value::YesNo(_), cell) => out.push(if cell == Some("是") { 't' } else { 'f' }),
        (Value::Date(_), Some(d)) => {
            copy_field(out, Some(d));
            if d.len() == 7 {
                out.push_str("-01");
            }
        }
        (Value::Precision(_), Some(d)) => out.push_str(if d.len() == 7 { "month" } else { "day" }),
        (_, cell) => copy_field(out, cell),
    }
}

/// "2017-05" is a month-precision date (stored as the first of the month).
fn month_or_day(s: Option<&str>) -> (Option<String>, Option<&'static str>) {
    match s {
        Some(d) if d.len() == 7 => (Some(format!("{d}-01")), Some("month")),
        Some(d) => (Some(d.to_string()), Some("day")),
        None => (None, None),
    }
}

fn yes_no(s: Option<&str>) -> Option<&'static str> {
    s.map(|v| if v == "是" { "t" } else { "f" })
}

/// Staged rows (in ID order) checked at a time: the COPY of one chunk's new people goes
/// on while the next chunk is checked.
const CHECK_CHUNK: usize = 1 << 16;

/// Staged rows of the first check: the COPY waits for it (each later chunk is checked
/// while the one before is COPYed).
const FIRST_CHECK_CHUNK: usize = 1 << 12;

/// The keys of some rows, as arrays for `unnest`.
struct Keys<'a> {
    rows: Vec<i32>,
    ids: Vec<Option<&'a str>>,
    devs: Vec<Option<&'a str>>,
    orgs: Vec<Option<i64>>,
}

/// What the registry said of some rows: numbers held by someone else, and people stored
/// (with whether they are a member of another branch).
struct Checked {
    taken: Vec<i32>,
    stored: Vec<(i32, bool)>,
}

impl Checked {
    /// The findings these answers make: a number held by someone else, a member stored
    /// in another branch.
    fn findings(&self) -> impl Iterator<Item = DbFinding> + '_ {
        let taken = self.taken.iter().map(|&row| DbFinding {
            row: row as u32,
            code: schemas::ErrorCode::DevNumberTaken,
        });
        let elsewhere = self
            .stored
            .iter()
            .filter(|&&(_, elsewhere)| elsewhere)
            .map(|&(row, _)| DbFinding {
                row: row as u32,
                code: schemas::ErrorCode::IdRegisteredElsewhere,
            });
        taken.chain(elsewhere)
    }
}

impl<'a> Keys<'a> {
    /// From `(row, ID number, development number, organisation)`.
    fn of(
        rows: impl Iterator<Item = (u32, Option<&'a str>, Option<&'a str>, Option<i64>)>,
    ) -> Keys<'a> {
        let mut keys = Keys {
            rows: Vec::new(),
            ids: Vec::new(),
            devs: Vec::new(),
            orgs: Vec::new(),
        };
        for (row, id, dev, org) in rows {
            keys.rows.push(row as i32);
            keys.ids.push(id);
            keys.devs.push(dev);
            keys.orgs.push(org);
        }
        keys
    }

    /// Two set-based questions, answered by index probes: which numbers are held by
    /// someone else (`dev_number_taken`), and which people are already stored (and, for
    /// members, in another branch: `id_registered_elsewhere`). A row whose branch is
    /// unknown is not judged "elsewhere": it may name that very branch with a typo (its
    /// org_not_found says so already).
    ///
    /// Each question is one index scan over the chunk's numbers (`= ANY`), answering only
    /// with the people found; the rows are matched to them here. A join over `unnest`
    /// asks the same of the index but costs an executor rescan per row: about a third
    /// more of the checking backend's CPU, which on few cores is taken from the COPY.
    async fn check(&self, conn: &mut PgConnection, members: bool) -> Result<Checked, LoadError> {
        let devs: Vec<&str> = self.devs.iter().flatten().copied().collect();
        let holders: Vec<(String, String)> = sqlx::query_as(
            r#"SELECT dev_number, id_number FROM people WHERE dev_number = ANY($1::text[])"#,
        )
        .bind(&devs)
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<&str> = self.ids.iter().flatten().copied().collect();
        let people: Vec<(String, Option<i64>)> = sqlx::query_as(
            r#"SELECT id_number, branch_id FROM people WHERE id_number = ANY($1::text[])"#,
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        Ok(self.answers(&holders, &people, members))
    }

    /// The rows' answers from the people holding their numbers (`(development number,
    /// ID number)`) and the people stored under their ID numbers (`(ID number,
    /// branch)`).
    fn answers(
        &self,
        holders: &[(String, String)],
        people: &[(String, Option<i64>)],
        members: bool,
    ) -> Checked {
        let holder: std::collections::HashMap<&str, &str> = holders
            .iter()
            .map(|(dev, id)| (dev.as_str(), id.as_str()))
            .collect();
        let branch: std::collections::HashMap<&str, Option<i64>> = people
            .iter()
            .map(|(id, branch)| (id.as_str(), *branch))
            .collect();
        let mut checked = Checked {
            taken: Vec::new(),
            stored: Vec::new(),
        };
        for (((&row, id), dev), org) in self
            .rows
            .iter()
            .zip(&self.ids)
            .zip(&self.devs)
            .zip(&self.orgs)
        {
            // Held by someone whose ID number is not this row's (or the row has none).
            if dev
                .and_then(|d| holder.get(d))
                .is_some_and(|held_by| Some(*held_by) != *id)
            {
                checked.taken.push(row);
            }
            if let Some(stored_in) = id.and_then(|i| branch.get(i)) {
                let elsewhere = members && matches!((stored_in, org), (Some(b), Some(o)) if b != o);
                checked.stored.push((row, elsewhere));
            }
        }
        checked
    }
}

/// How the checking connection runs its two questions: index probes, never a scan of
/// everyone registered (the planner picks one, hashing the numbers, for tens of thousands
/// of them: 10 s against 10 M people, growing with the registry; BENCHMARKS.md), and no
/// JIT compilation (10–30 ms a query, more than it saves on a probe).
const CHECK_SETTINGS: &str = "SET enable_seqscan = off; SET jit = off";
const CHECK_SETTINGS_LOCAL: &str = "SET LOCAL enable_seqscan = off; SET LOCAL jit = off";

/// Checks the staged rows a chunk at a time, then the probes, sending each answer on
/// `out` (a closed channel stops it: the load has failed), and returns the findings of
/// them all. The connection must already run with [`CHECK_SETTINGS`].
async fn run_checks(
    conn: &mut PgConnection,
    batch: &LoadBatch,
    org_of: impl Fn(&Staged) -> Option<i64>,
    probe_org: impl Fn(&Probe) -> Option<i64>,
    members: bool,
    out: &tokio::sync::mpsc::Sender<Checked>,
) -> Result<Vec<DbFinding>, LoadError> {
    let mut found = Vec::new();
    let staged = batch.check_chunks().map(|chunk| {
        Keys::of(chunk.iter().map(|s| {
            (
                s.row,
                Some(s.id_number.as_str()),
                s.dev_number.as_deref(),
                org_of(s),
            )
        }))
    });
    let probes = (!batch.probes.is_empty()).then(|| {
        Keys::of(batch.probes.iter().map(|p| {
            (
                p.row,
                p.id_number.as_deref(),
                p.dev_number.as_deref(),
                probe_org(p),
            )
        }))
    });
    for keys in staged.chain(probes) {
        let checked = keys.check(conn, members).await?;
        found.extend(checked.findings());
        if out.send(checked).await.is_err() {
            // The load has failed: its error is the one reported.
            break;
        }
    }
    Ok(found)
}

/// What the checks said about one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    New,
    Stored,
    Refused,
}

/// The verdict of each row of a batch, kept by the row's rank among the batch's row
/// numbers: memory follows the rows there are, never the largest row number a file
/// names.
struct Verdicts {
    rows: Vec<u32>,
    verdicts: Vec<Verdict>,
}

impl Verdicts {
    /// Every row starts `New`.
    fn of(rows: impl Iterator<Item = u32>) -> Verdicts {
        let mut rows: Vec<u32> = rows.collect();
        rows.sort_unstable();
        rows.dedup();
        let verdicts = vec![Verdict::New; rows.len()];
        Verdicts { rows, verdicts }
    }

    fn rank(&self, row: u32) -> Option<usize> {
        self.rows.binary_search(&row).ok()
    }

    /// A row the batch does not hold is `Refused`: nothing is written for it.
    fn get(&self, row: u32) -> Verdict {
        self.rank(row)
            .map_or(Verdict::Refused, |i| self.verdicts[i])
    }

    fn set(&mut self, row: u32, v: Verdict) {
        if let Some(i) = self.rank(row) {
            self.verdicts[i] = v;
        }
    }
}

/// Loads the valid rows of a validation in one transaction (module docs for the steps).
///
/// The same person into the same branch is an update; unchanged rows are not touched,
/// so loading a file again changes nothing. Template A rows become members of their
/// branch (and cadre posts there when 是否团干部 is 是); template B rows become posts in
/// the uploader's organisation, and one person may hold posts in several.
#[tracing::instrument(skip_all, fields(rows = batch.rows, uploader_id = uploader_id, upload_id = ?upload_id))]
pub async fn load(
    pool: &PgPool,
    batch: &LoadBatch,
    uploader_id: i64,
    upload_id: Option<i64>,
) -> Result<Loaded, LoadError> {
    load_begin(pool, batch, uploader_id, upload_id)
        .await?
        .commit()
        .await
}

/// A load written but not committed: what else must be true when its rows become
/// visible (the upload recorded, its reports in place) is done in [`PendingLoad::conn`]
/// before [`PendingLoad::commit`]. Dropped, it rolls back and leaves nothing.
pub struct PendingLoad {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    loaded: Loaded,
}

impl PendingLoad {
    /// What the load will have done once committed.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// The load's transaction, still holding the load lock.
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<Loaded, LoadError> {
        self.tx.commit().await?;
        Ok(self.loaded)
    }
}

/// [`load`] up to the commit.
pub async fn load_begin(
    pool: &PgPool,
    batch: &LoadBatch,
    uploader_id: i64,
    upload_id: Option<i64>,
) -> Result<PendingLoad, LoadError> {
    load_begin_telling(pool, batch, uploader_id, upload_id, None, None).await
}

/// Where [`load_begin_telling`] tells the load's findings, once the registry has answered
/// for every row.
pub type FindingsTold = tokio::sync::oneshot::Sender<Vec<DbFinding>>;

/// [`load_begin`], telling `tell` the findings (those [`Loaded::findings`] will hold) as
/// soon as they are known: once the checks end, while new people are still being
/// written. The reports, which need only the findings, can be made meanwhile. A load that
/// fails before its checks end drops `tell` unanswered.
///
/// A batch made by [`LoadBatch::keys`] takes its COPY text from `text`, part by part as
/// the COPY reaches the rows of each: the checks, and the COPY of the first rows, run
/// while the rest is made. (A batch with its own text ignores `text`.)
#[tracing::instrument(skip_all, fields(upload_id = upload_id, rows = batch.rows))]
pub async fn load_begin_telling(
    pool: &PgPool,
    batch: &LoadBatch,
    uploader_id: i64,
    upload_id: Option<i64>,
    tell: Option<FindingsTold>,
    text: Option<TextComing>,
) -> Result<PendingLoad, LoadError> {
    let members = batch.template == TemplateKind::Members;
    let begun = std::time::Instant::now();
    let mut clock = begun;
    // Each step's duration, at debug level (BENCHMARKS.md breaks the load down by it).
    let mut step = |name: &'static str| {
        tracing::debug!(
            step = name,
            seconds = clock.elapsed().as_secs_f64(),
            "load step"
        );
        clock = std::time::Instant::now();
    };
    let mut tx = pool.begin().await.map_err(RegistryError::from)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::LOAD_LOCK)
        .execute(&mut *tx)
        .await?;

    // Branch ids, one query for the distinct names. Organisations are never deleted,
    // but one may have been renamed since validation: its rows are refused.
    let branch_ids: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT o.id FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n)
         LEFT JOIN orgs o ON o.name_key = k.key ORDER BY k.n",
    )
    .bind(&batch.branches)
    .fetch_all(&mut *tx)
    .await?;
    let org_of = |s: &Staged| -> Option<i64> {
        if members {
            s.branch.and_then(|b| branch_ids[b as usize])
        } else {
            Some(uploader_id)
        }
    };

    step("lock, branch ids");

    // The checks and the COPY of new people overlap: a second connection asks the
    // registry about one chunk of rows (in ID order) while this one COPYs the new people
    // of the chunk before. It sees what this transaction would: it connects once the load
    // lock is held, every writer of `people` takes that lock, and the checks read only
    // what was committed before the load (as before this transaction writes anything).
    let probe_org = |p: &Probe| -> Option<i64> {
        if members {
            p.branch.and_then(|b| branch_ids[b as usize])
        } else {
            Some(uploader_id)
        }
    };
    // Rows whose branch is not (or no longer) an organisation: refused before any check.
    let unknown_branch: Vec<DbFinding> = batch
        .staged
        .iter()
        .filter(|s| org_of(s).is_none())
        .map(|s| DbFinding {
            row: s.row,
            code: schemas::ErrorCode::OrgNotFound,
        })
        .collect();
    let mut verdict = Verdicts::of(
        batch
            .staged
            .iter()
            .map(|s| s.row)
            .chain(batch.probes.iter().map(|p| p.row)),
    );
    for f in &unknown_branch {
        verdict.set(f.row, Verdict::Refused);
    }
    // Every answer fits in the channel: the checks never wait for the COPY, so the
    // findings are whole (and told) as soon as the registry has answered for every row,
    // while the COPY goes on.
    let answers = batch.check_chunks().count() + 1;
    let (checked_tx, mut checked_rx) = tokio::sync::mpsc::channel::<Checked>(answers);
    // With one chunk there is nothing to overlap: the checks run first on this
    // connection (no second connection to open for a small upload).
    let overlap = batch.staged.len() > batch.check_chunk;
    let checked_first = if overlap {
        None
    } else {
        sqlx::raw_sql(CHECK_SETTINGS_LOCAL)
            .execute(&mut *tx)
            .await?;
        let found = run_checks(&mut tx, batch, org_of, probe_org, members, &checked_tx).await?;
        sqlx::raw_sql("RESET enable_seqscan; RESET jit")
            .execute(&mut *tx)
            .await?;
        Some(found)
    };
    let checker = async move {
        let checked = match checked_first {
            Some(found) => found,
            None => {
                let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
                sqlx::raw_sql(CHECK_SETTINGS).execute(&mut conn).await?;
                let found =
                    run_checks(&mut conn, batch, org_of, probe_org, members, &checked_tx).await?;
                conn.close().await?;
                found
            }
        };
        let mut found = unknown_branch;
        found.extend(checked);
        found.sort_by_key(|f| (f.row, f.code));
        found.dedup();
        tracing::debug!(
            seconds = begun.elapsed().as_secs_f64(),
            findings = found.len(),
            "registry checks ended"
        );
        if let Some(tell) = tell {
            // Nobody listening any more is not the load's failure.
            let _ = tell.send(found.clone());
        }
        Ok::<Vec<DbFinding>, LoadError>(found)
    };

    // What the checks said of some rows, into their verdicts.
    let apply = |checked: Checked, verdict: &mut Verdicts| {
        for f in checked.findings() {
            verdict.set(f.row, Verdict::Refused);
        }
        for row in checked
            .stored
            .iter()
            .filter_map(|&(r, _)| u32::try_from(r).ok())
        {
            if verdict.get(row) == Verdict::New {
                verdict.set(row, Verdict::Stored);
            }
        }
    };

    // New people, straight into the table.
    let upload = upload_id.map(|u| u.to_string());
    let load_time: Vec<&people::Column> =
        people::copy_order().filter(|c| c.value.at_load()).collect();
    let copy_people = format!("COPY people ({}) FROM STDIN", people::copy_header());
    let loader = async {
        // The batch's own text, or the parts of the text coming, kept as they come (the
        // stored people and the posts need them again after the COPY).
        let (mut text, mut coming) = match (&batch.text, text) {
            (Some(text), _) => (Cow::Borrowed(text), None),
            (None, coming) => (Cow::Owned(LoadText::default()), coming),
        };
        let mut copy = CopyWriter::begin(&mut tx, &copy_people).await?;
        for (n, chunk) in batch.check_chunks().enumerate() {
            let checked = checked_rx.recv().await.ok_or(LoadError::ChecksEnded)?;
            apply(checked, &mut verdict);
            // The chunk's rows are anywhere in the text (it is in file order).
            let needed = chunk.iter().map(|s| s.at as usize + 1).max().unwrap_or(0);
            while text.rows < needed {
                let coming = coming.as_mut().ok_or(LoadError::NoText)?;
                let part = coming.parts.recv().await.ok_or(LoadError::NoText)?;
                text.to_mut().push(part);
            }
            if n == 0 {
                let seconds = begun.elapsed().as_secs_f64();
                tracing::debug!(
                    seconds,
                    "first rows checked and their text made: COPY under way"
                );
            }
            let lines = Lines {
                text: &text,
                load_time: &load_time,
                members,
                upload: upload.as_deref(),
                branch_ids: &branch_ids,
                uploader_id,
            };
            copy.write(
                chunk.iter().filter(|s| verdict.get(s.row) == Verdict::New),
                |out: &mut String, s: &Staged| lines.person(out, s),
            )
            .await?;
        }
        let inserted = copy.finish().await?;
        if !batch.probes.is_empty() {
            let checked = checked_rx.recv().await.ok_or(LoadError::ChecksEnded)?;
            apply(checked, &mut verdict);
        }
        Ok::<_, LoadError>((inserted, text))
    };
    let (findings, (inserted, text)) = tokio::try_join!(checker, loader)?;
    let lines = Lines {
        text: &text,
        load_time: &load_time,
        members,
        upload: upload.as_deref(),
        branch_ids: &branch_ids,
        uploader_id,
    };
    let is = |s: &Staged, v: Verdict| verdict.get(s.row) == v;
    step("checks and COPY of new people, overlapped");
    // Stored people: staged, then updated where something differs (`people::update_stored`:
    // what an upload leaves empty is kept, membership only by template A).
    // (Probes may be stored too; only staged rows are updated.)
    let updated = if !batch.staged.iter().any(|s| is(s, Verdict::Stored)) {
        0
    } else {
        sqlx::query(people::create_update_stage())
            .execute(&mut *tx)
            .await?;
        copy_rows(
            &mut tx,
            &format!("COPY load_update ({}) FROM STDIN", people::copy_header()),
            batch.staged.iter().filter(|s| is(s, Verdict::Stored)),
            |out: &mut String, s: &Staged| lines.person(out, s),
        )
        .await?;
        sqlx::query("ANALYZE load_update").execute(&mut *tx).await?;
        sqlx::query(AssertSqlSafe(people::update_stored()))
            .bind(members)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };

    step("update stored people");
    // Cadre posts. A new person holds none yet: every post's holder is in `people`
    // (written with it, under the load lock) and no one is ever removed. Their posts are
    // COPYed straight in; the posts of stored people are merged.
    let text_ref = &text;
    let posts = move |v: Verdict| {
        batch
            .staged
            .iter()
            .filter(move |s| is(s, v) && text_ref.post(s.at).is_some())
    };
    if posts(Verdict::New).next().is_some() {
        copy_rows(
            &mut tx,
            "COPY cadre_posts (id_number, org_id, duty, appointed_on, appointed_precision,
                               nature, party_committee_member, upload_id) FROM STDIN",
            posts(Verdict::New),
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
    }
    if posts(Verdict::Stored).next().is_some() {
        sqlx::query(
            r#"CREATE TEMP TABLE load_posts (
                id_number text COLLATE "C", org_id bigint, duty text, appointed_on date,
                appointed_precision text, nature text, party_committee_member boolean,
                upload_id bigint
            ) ON COMMIT DROP"#,
        )
        .execute(&mut *tx)
        .await?;
        copy_rows(
            &mut tx,
            "COPY load_posts FROM STDIN",
            posts(Verdict::Stored),
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
        sqlx::query(
            "INSERT INTO cadre_posts AS c (id_number, org_id, duty, appointed_on,
                 appointed_precision, nature, party_committee_member, upload_id)
             SELECT * FROM load_posts
             ON CONFLICT (id_number, org_id) DO UPDATE SET
                 duty = EXCLUDED.duty, appointed_on = EXCLUDED.appointed_on,
                 appointed_precision = EXCLUDED.appointed_precision, nature = EXCLUDED.nature,
                 party_committee_member = EXCLUDED.party_committee_member,
                 upload_id = EXCLUDED.upload_id, updated_at = now()
             WHERE (c.duty, c.appointed_on, c.appointed_precision, c.nature,
                    c.party_committee_member)
                   IS DISTINCT FROM
                   (EXCLUDED.duty, EXCLUDED.appointed_on, EXCLUDED.appointed_precision,
                    EXCLUDED.nature, EXCLUDED.party_committee_member)",
        )
        .execute(&mut *tx)
        .await?;
    }
    step("cadre posts");
    tracing::debug!(inserted, updated, refused = findings.len(), "load written");
    Ok(PendingLoad {
        tx,
        loaded: Loaded {
            rows: inserted + updated,
            findings,
        },
    })
}

/// The COPY lines of staged rows: their text, and what only the load knows (branch ids,
/// the upload).
struct Lines<'a> {
    text: &'a LoadText,
    load_time: &'a [&'static people::Column],
    members: bool,
    upload: Option<&'a str>,
    branch_ids: &'a [Option<i64>],
    uploader_id: i64,
}

impl Lines<'_> {
    fn org(&self, s: &Staged) -> Option<i64> {
        if self.members {
            s.branch.and_then(|b| self.branch_ids[b as usize])
        } else {
            Some(self.uploader_id)
        }
    }

    /// A line of `people`.
    fn person(&self, out: &mut String, s: &Staged) {
        out.push_str(self.text.person(s.at));
        for c in self.load_time {
            out.push('\t');
            match (c.value, self.org(s)) {
                // Template B rows are posts, not memberships.
                _ if !self.members && c.on_update == OnUpdate::Membership => copy_field(out, None),
                (Value::Branch, Some(org)) => {
                    let _ = write!(out, "{org}");
                }
                (Value::Branch, None) => copy_field(out, None),
                _ => copy_field(out, self.upload),
            }
        }
        out.push('\n');
    }

    /// A line of `cadre_posts` (as `load_posts` has it).
    fn post(&self, out: &mut String, s: &Staged) {
        let org = self.org(s).map(|o| o.to_string());
        copy_fields(out, &[Some(&s.id_number), org.as_deref()]);
        out.push('\t');
        out.push_str(self.text.post(s.at).unwrap_or_default());
        out.push('\t');
        out.push_str(self.upload.unwrap_or("\\N"));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: usize, check_chunk: usize) -> LoadBatch {
        LoadBatch {
            template: TemplateKind::Members,
            rows,
            staged: (0..rows as u32)
                .map(|at| Staged {
                    at,
                    row: at + 2,
                    id_number: format!("{at:018}"),
                    dev_number: None,
                    branch: None,
                })
                .collect(),
            probes: Vec::new(),
            branches: Vec::new(),
            text: None,
            check_chunk,
        }
    }

    #[test]
    fn the_first_check_is_small_and_the_chunks_cover_every_row_once() {
        let f = FIRST_CHECK_CHUNK;
        // (rows, chunk size asked) → the sizes of the chunks checked, in order.
        let cases: &[(usize, usize, &[usize])] = &[
            (0, CHECK_CHUNK, &[]),
            (1, CHECK_CHUNK, &[1]),
            (f, CHECK_CHUNK, &[f]),
            (f + 1, CHECK_CHUNK, &[f, 1]),
            (f + CHECK_CHUNK, CHECK_CHUNK, &[f, CHECK_CHUNK]),
            (f + CHECK_CHUNK + 1, CHECK_CHUNK, &[f, CHECK_CHUNK, 1]),
            (7, 1, &[1, 1, 1, 1, 1, 1, 1]),
            (7, 3, &[3, 3, 1]),
            (2 * f + 1, 2 * f, &[f, f + 1]),
        ];
        for &(rows, chunk, sizes) in cases {
            let b = batch(rows, chunk);
            let got: Vec<usize> = b.check_chunks().map(<[Staged]>::len).collect();
            assert_eq!(got, sizes, "{rows} rows, chunks of {chunk}");
            let ats: Vec<u32> = b.check_chunks().flatten().map(|s| s.at).collect();
            assert_eq!(ats, (0..rows as u32).collect::<Vec<_>>());
        }
    }
}
