//! The load's one transaction: the lock, the checks beside the COPY of new people, the
//! update of stored people, the posts; committed by the caller ([`PendingLoad`]).

use super::*;

/// What the checks said about one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    New,
    Stored,
    Refused,
}

/// The verdict of each row of a batch. Memory follows the rows there are, never the
/// largest row number a file names: when the batch's rows fill at least half of the
/// span between the first and the last (a roster's rows are contiguous but for the ones
/// with errors), one slot per row number of the span, found by subtraction; otherwise
/// the rows sorted, found by binary search.
pub(super) struct Verdicts {
    index: RowIndex,
    /// `None`: a row number in the span that the batch does not hold.
    verdicts: Vec<Option<Verdict>>,
}

enum RowIndex {
    /// Slot `row - first`.
    Span { first: u32 },
    /// Slot: the row's rank among these.
    Sorted(Vec<u32>),
}

impl Verdicts {
    /// Every row starts `New`.
    pub(super) fn of(rows: impl Iterator<Item = u32>) -> Verdicts {
        let mut rows: Vec<u32> = rows.collect();
        let (Some(&first), Some(&last)) = (rows.iter().min(), rows.iter().max()) else {
            return Verdicts {
                index: RowIndex::Sorted(Vec::new()),
                verdicts: Vec::new(),
            };
        };
        let span = u64::from(last - first) + 1;
        if span <= 2 * rows.len() as u64 {
            let mut verdicts = vec![None; span as usize];
            for r in rows {
                verdicts[(r - first) as usize] = Some(Verdict::New);
            }
            return Verdicts {
                index: RowIndex::Span { first },
                verdicts,
            };
        }
        rows.sort_unstable();
        rows.dedup();
        let verdicts = vec![Some(Verdict::New); rows.len()];
        Verdicts {
            index: RowIndex::Sorted(rows),
            verdicts,
        }
    }

    fn slot(&self, row: u32) -> Option<usize> {
        let i = match &self.index {
            RowIndex::Span { first } => row.checked_sub(*first)? as usize,
            RowIndex::Sorted(rows) => rows.binary_search(&row).ok()?,
        };
        self.verdicts.get(i)?.is_some().then_some(i)
    }

    /// A row the batch does not hold is `Refused`: nothing is written for it.
    pub(super) fn get(&self, row: u32) -> Verdict {
        self.slot(row)
            .and_then(|i| self.verdicts[i])
            .unwrap_or(Verdict::Refused)
    }

    pub(super) fn set(&mut self, row: u32, v: Verdict) {
        if let Some(i) = self.slot(row) {
            self.verdicts[i] = Some(v);
        }
    }

    /// Slots held, whatever the rows (for tests).
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.verdicts.len()
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
    pub(super) tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub(super) loaded: Loaded,
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
    let (new, stored): (Vec<&Staged>, Vec<&Staged>) = (
        posts(Verdict::New).collect(),
        posts(Verdict::Stored).collect(),
    );
    write_posts(&mut tx, &new, &stored, &lines).await?;
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
