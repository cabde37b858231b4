//! The registry's two questions of a batch's keys, a chunk at a time on a second
//! connection: numbers held by someone else, people already stored.

use super::*;

/// The keys of some rows, as arrays for `unnest`.
pub(super) struct Keys<'a> {
    pub(super) rows: Vec<i32>,
    pub(super) ids: Vec<Option<&'a str>>,
    pub(super) devs: Vec<Option<&'a str>>,
    pub(super) orgs: Vec<Option<i64>>,
}

/// What the registry said of some rows: numbers held by someone else, and people stored
/// (with whether they are a member of another branch).
pub(super) struct Checked {
    pub(super) taken: Vec<i32>,
    pub(super) stored: Vec<(i32, bool)>,
}

impl Checked {
    /// The findings these answers make: a number held by someone else, a member stored
    /// in another branch.
    pub(super) fn findings(&self) -> impl Iterator<Item = DbFinding> + '_ {
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
    pub(super) fn of(
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
    pub(super) async fn check(
        &self,
        conn: &mut PgConnection,
        members: bool,
    ) -> Result<Checked, LoadError> {
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
    pub(super) fn answers(
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
pub(super) const CHECK_SETTINGS: &str = "SET enable_seqscan = off; SET jit = off";
pub(super) const CHECK_SETTINGS_LOCAL: &str = "SET LOCAL enable_seqscan = off; SET LOCAL jit = off";

/// Checks the staged rows a chunk at a time, then the probes, sending each answer on
/// `out` (a closed channel stops it: the load has failed), and returns the findings of
/// them all. The connection must already run with [`CHECK_SETTINGS`].
pub(super) async fn run_checks(
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
