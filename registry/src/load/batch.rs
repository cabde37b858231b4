//! The valid rows' keys, sorted by ID number, for the registry's checks and the COPY
//! order ([`LoadBatch`]); the rows that are only asked, never written ([`Probe`]).

use super::*;

/// Staged rows (in ID order) checked at a time: the COPY of one chunk's new people goes
/// on while the next chunk is checked.
pub(super) const CHECK_CHUNK: usize = 1 << 16;

/// Staged rows of the first check: the COPY waits for it (each later chunk is checked
/// while the one before is COPYed).
pub(super) const FIRST_CHECK_CHUNK: usize = 1 << 12;

/// A row that does not load but is still asked the database's questions.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub(super) row: u32,
    pub(super) id_number: Option<String>,
    pub(super) dev_number: Option<String>,
    pub(super) branch: Option<u32>,
}

/// The keys of the valid rows of a validation (sorted by ID number), ready for the
/// registry's checks; and, when made by [`LoadBatch::prepare`], their COPY text. Making
/// it is CPU work (polars): do it on a blocking thread, then [`load`] it.
#[derive(Debug, Clone)]
pub struct LoadBatch {
    pub template: TemplateKind,
    pub rows: usize,
    /// Sorted by ID number.
    pub(super) staged: Vec<Staged>,
    /// Rows with errors whose ID number or development number is itself valid: checked
    /// against the registry too, never written.
    pub(super) probes: Vec<Probe>,
    /// Distinct normalised branch names (template A).
    pub(super) branches: Vec<String>,
    /// The COPY fields of every staged row; `None` when they are made beside the load
    /// ([`LoadBatch::keys`], [`LoadSource::coming`]).
    pub(super) text: Option<LoadText>,
    /// Staged rows checked at a time ([`CHECK_CHUNK`]).
    pub(super) check_chunk: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Staged {
    /// The row's line in its [`LoadText`] (the rows' file order).
    pub(super) at: u32,
    pub(super) row: u32,
    pub(super) id_number: String,
    pub(super) dev_number: Option<String>,
    /// Index into `branches`.
    pub(super) branch: Option<u32>,
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
    pub(super) fn check_chunks(&self) -> impl Iterator<Item = &[Staged]> {
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

#[tracing::instrument(skip_all, fields(rows))]
pub(super) fn keys(v: &pipeline::Validation) -> PolarsResult<(LoadBatch, LoadSource)> {
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
