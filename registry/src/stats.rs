//! Nightly completion statistics (SPEC §8), set-based in PostgreSQL for every
//! organisation at once, stored as a dated snapshot; and the export headquarters reads.
//!
//! One run is one transaction: each person's completeness once (their member fields by
//! template A, each of their posts by template B), each organisation's own counts and
//! verdict, then roll-ups over every subtree through the ancestor `path` (one
//! `unnest` + `GROUP BY`, no recursion). The snapshot is built as a new table and swapped
//! in as that date's partition of `org_stats`, so re-running a date replaces it
//! atomically and readers never see half a night.
//!
//! The SQL built with `format!` (`AssertSqlSafe`) only splices constants of this module
//! and table names made of a date's digits; every value is a bind parameter.

use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection};

use crate::{RegistryError, STATS_LOCK};

/// Template A's member fields are all filled (the development number where SPEC §5.3
/// requires it, by the branch's province; 职务 when 是否团干部 is 是).
const MEMBER_COMPLETE: &str = "p.name IS NOT NULL AND p.ethnicity IS NOT NULL
    AND p.political_status IS NOT NULL AND p.joined_on IS NOT NULL
    AND p.education IS NOT NULL AND p.occupation IS NOT NULL AND p.phone IS NOT NULL
    AND (p.dev_number IS NOT NULL OR p.joined_on < CASE WHEN o.province IN ('65', '66')
         THEN DATE '2016-01-01' ELSE DATE '2017-01-01' END)
    AND (NOT p.is_cadre OR p.duty IS NOT NULL)";

/// Template B's fields of one post are all filled (person fields and the post's).
const POST_COMPLETE: &str = "p.name IS NOT NULL AND p.ethnicity IS NOT NULL
    AND p.political_status IS NOT NULL AND p.joined_on IS NOT NULL
    AND p.education IS NOT NULL AND p.phone IS NOT NULL
    AND (p.dev_number IS NOT NULL OR p.joined_on < CASE WHEN o.province IN ('65', '66')
         THEN DATE '2016-01-01' ELSE DATE '2017-01-01' END)
    AND c.duty IS NOT NULL AND c.appointed_on IS NOT NULL AND c.nature IS NOT NULL";

/// Organisation categories in the order of the by-category arrays.
pub const CATEGORY_ORDER: [schemas::OrgCategory; 5] = [
    schemas::OrgCategory::LeadingBody,
    schemas::OrgCategory::Committee,
    schemas::OrgCategory::WorkingCommittee,
    schemas::OrgCategory::GeneralBranch,
    schemas::OrgCategory::Branch,
];

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub date: NaiveDate,
    pub orgs: i64,
    pub people: i64,
    pub seconds: f64,
}

/// Whether a run replaces an existing snapshot of its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `roster stats run`: wait for any other run, replace the date's snapshot.
    Replace,
    /// The nightly tick: skip if another run holds the lock or the date is done, so any
    /// number of workers make exactly one snapshot a night.
    OncePerDate,
}

/// Computes and stores the snapshot of `date`; `None` when `OncePerDate` had nothing to do.
#[tracing::instrument(skip_all, fields(date = %date, mode = ?mode))]
pub async fn run(
    pool: &PgPool,
    date: NaiveDate,
    mode: Mode,
) -> Result<Option<Snapshot>, RegistryError> {
    let clock = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    match mode {
        Mode::Replace => {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(STATS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Mode::OncePerDate => {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(STATS_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM stats_snapshots WHERE snapshot_date = $1)",
            )
            .bind(date)
            .fetch_one(&mut *tx)
            .await?;
            if !locked || done {
                return Ok(None);
            }
        }
    }
    sqlx::query("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    // People holding a post that misses a template-B field.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE st_post_bad ON COMMIT DROP AS
         SELECT c.id_number FROM cadre_posts c
         JOIN people p USING (id_number) JOIN orgs o ON o.id = c.org_id
         GROUP BY c.id_number HAVING bool_or(NOT ({POST_COMPLETE}))"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query("ANALYZE st_post_bad").execute(&mut *tx).await?;
    // Each person once: complete when every template they were entered through is.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE st_person ON COMMIT DROP AS
         SELECT p.id_number, p.branch_id,
                (p.branch_id IS NULL OR ({MEMBER_COMPLETE})) AND b.id_number IS NULL AS ok
         FROM people p
         LEFT JOIN orgs o ON o.id = p.branch_id
         LEFT JOIN st_post_bad b ON b.id_number = p.id_number"
    )))
    .execute(&mut *tx)
    .await?;
    // Each organisation's own people: its members, and its cadres (a member holding a post
    // in their own branch is one person there).
    sqlx::query(
        "CREATE TEMP TABLE st_own ON COMMIT DROP AS
         SELECT org_id,
                count(*) FILTER (WHERE person) AS total,
                count(*) FILTER (WHERE person AND ok) AS complete,
                count(*) FILTER (WHERE cadre) AS cadres,
                count(*) FILTER (WHERE cadre AND ok) AS cadres_complete
         FROM (
             SELECT branch_id AS org_id, ok, true AS person, false AS cadre
             FROM st_person WHERE branch_id IS NOT NULL
             UNION ALL
             SELECT c.org_id, s.ok, s.branch_id IS DISTINCT FROM c.org_id, true
             FROM cadre_posts c JOIN st_person s USING (id_number)
         ) x
         GROUP BY org_id",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "CREATE TEMP TABLE st_org ON COMMIT DROP AS
         SELECT o.id, o.category, o.parent_id,
                CASE WHEN cardinality(o.path) = 0 THEN ARRAY[o.id] ELSE o.path END AS path,
                coalesce(w.total, 0) AS total, coalesce(w.complete, 0) AS complete,
                coalesce(w.cadres, 0) AS cadres, coalesce(w.cadres_complete, 0) AS cadres_complete,
                CASE o.category
                    WHEN 'branch' THEN coalesce(w.complete, 0) >= 3
                    WHEN 'leading_body' THEN coalesce(w.cadres, 0) >= 1
                                             AND w.cadres_complete = w.cadres
                    ELSE coalesce(w.cadres_complete, 0) >= 2
                END AS ok
         FROM orgs o LEFT JOIN st_own w ON w.org_id = o.id",
    )
    .execute(&mut *tx)
    .await?;
    let day = date.format("%Y%m%d");
    let (part, fresh) = (format!("org_stats_{day}"), format!("org_stats_{day}_new"));
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {fresh}")))
        .execute(&mut *tx)
        .await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE {fresh} (LIKE org_stats INCLUDING DEFAULTS)"
    )))
    .execute(&mut *tx)
    .await?;
    let by_category = |filter: &str| {
        CATEGORY_ORDER
            .iter()
            .map(|c| {
                format!(
                    "count(*) FILTER (WHERE d.id <> a.anc AND d.category = '{}'{filter})::int",
                    c.code()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let orgs = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {fresh}
         SELECT $1, s.id, s.category, s.parent_id, s.ok, s.total, s.complete, s.cadres,
                s.cadres_complete, r.people_total, r.people_complete, r.orgs_total,
                r.orgs_complete, r.by_total, r.by_complete
         FROM st_org s JOIN (
             SELECT a.anc AS id,
                    sum(d.total) AS people_total, sum(d.complete) AS people_complete,
                    count(*) FILTER (WHERE d.id <> a.anc)::int AS orgs_total,
                    count(*) FILTER (WHERE d.id <> a.anc AND d.ok)::int AS orgs_complete,
                    ARRAY[{}] AS by_total, ARRAY[{}] AS by_complete
             FROM st_org d CROSS JOIN LATERAL unnest(d.path) AS a(anc)
             GROUP BY a.anc
         ) r ON r.id = s.id",
        by_category(""),
        by_category(" AND d.ok"),
    )))
    .bind(date)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    // Swap it in: the CHECK lets ATTACH skip its validation scan.
    for statement in [
        format!(
            "ALTER TABLE {fresh} ADD CONSTRAINT {part}_date CHECK (snapshot_date = DATE '{date}')"
        ),
        format!("DROP TABLE IF EXISTS {part}"),
        format!("ALTER TABLE {fresh} RENAME TO {part}"),
        format!("ALTER TABLE org_stats ATTACH PARTITION {part} FOR VALUES IN ('{date}')"),
    ] {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM st_person")
        .fetch_one(&mut *tx)
        .await?;
    let seconds = clock.elapsed().as_secs_f64();
    sqlx::query(
        "INSERT INTO stats_snapshots (snapshot_date, orgs, people, seconds) VALUES ($1, $2, $3, $4)
         ON CONFLICT (snapshot_date) DO UPDATE SET orgs = EXCLUDED.orgs,
             people = EXCLUDED.people, seconds = EXCLUDED.seconds, created_at = now()",
    )
    .bind(date)
    .bind(orgs as i32)
    .bind(people)
    .bind(seconds)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(orgs, people, seconds, "statistics snapshot stored");
    Ok(Some(Snapshot {
        date,
        orgs,
        people,
        seconds,
    }))
}

/// One row of the export.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRow {
    pub full_name: String,
    pub category: String,
    pub parent: Option<String>,
    pub complete: bool,
    pub people_complete: i32,
    pub people_total: i32,
    pub sub_orgs_complete: i32,
    pub sub_orgs_total: i32,
}

/// The export's header (SPEC §8, issue 5).
pub const EXPORT_HEADER: [&str; 8] = [
    "组织全称",
    "组织类别",
    "上级组织全称",
    "是否完成",
    "完整人数",
    "总人数",
    "下级组织完成数",
    "下级组织总数",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] RegistryError),
    #[error("组织“{0}”不在数据库中")]
    UnknownOrg(String),
    #[error("还没有统计快照（先运行 roster stats run）")]
    NoSnapshot,
    #[error("writing the export: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing the export: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Db(e.into())
    }
}

/// How far below an organisation its statistics rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The organisation and every one below it (exports).
    Subtree,
    /// The organisation and its direct children (a page to drill down from).
    Children,
}

/// An organisation and every one below it, from the snapshot of `date` (default: the
/// latest), in tree order.
pub async fn export_rows(
    pool: &PgPool,
    org: &str,
    date: Option<NaiveDate>,
) -> Result<(NaiveDate, Vec<ExportRow>), ExportError> {
    rows_below(pool, org, date, Reach::Subtree).await
}

/// An organisation's statistics rows and those below it as far as `reach`, from the
/// snapshot of `date` (default: the latest), in tree order.
pub async fn rows_below(
    pool: &PgPool,
    org: &str,
    date: Option<NaiveDate>,
    reach: Reach,
) -> Result<(NaiveDate, Vec<ExportRow>), ExportError> {
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name_key = $1")
        .bind(pipeline::text::normalise_org(org))
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ExportError::UnknownOrg(org.to_string()))?;
    let date: NaiveDate = match date {
        Some(d) => d,
        None => sqlx::query_scalar("SELECT max(snapshot_date) FROM stats_snapshots")
            .fetch_one(pool)
            .await
            .ok()
            .flatten()
            .ok_or(ExportError::NoSnapshot)?,
    };
    let rows: Vec<ExportRow> = sqlx::query_as(
        "SELECT o.full_name, s.category, p.full_name AS parent, s.complete,
                s.people_complete, s.people_total, s.sub_orgs_complete, s.sub_orgs_total
         FROM orgs o
         JOIN org_stats s ON s.org_id = o.id AND s.snapshot_date = $2
         LEFT JOIN orgs p ON p.id = s.parent_id
         WHERE $1 = ANY(o.path) AND ($3 OR o.id = $1 OR o.parent_id = $1)
         ORDER BY o.path",
    )
    .bind(org_id)
    .bind(date)
    .bind(reach == Reach::Subtree)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Err(ExportError::NoSnapshot);
    }
    Ok((date, rows))
}

fn category_label(code: &str) -> &str {
    schemas::OrgCategory::parse(code).map_or(code, |c| c.chinese())
}

/// Writes the export: xlsx (header frozen, autofilter, incomplete rows highlighted) or
/// CSV (UTF-8 with BOM, for Excel), by the file's extension.
pub fn write_export(rows: &[ExportRow], out: &Path) -> Result<(), ExportError> {
    let csv = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let cells = |r: &ExportRow| -> [String; 8] {
        [
            r.full_name.clone(),
            category_label(&r.category).to_string(),
            r.parent.clone().unwrap_or_default(),
            if r.complete { "是" } else { "否" }.to_string(),
            r.people_complete.to_string(),
            r.people_total.to_string(),
            r.sub_orgs_complete.to_string(),
            r.sub_orgs_total.to_string(),
        ]
    };
    if csv {
        let mut file = std::fs::File::create(out)?;
        std::io::Write::write_all(&mut file, "\u{feff}".as_bytes())?;
        let mut w = csv::Writer::from_writer(file);
        w.write_record(EXPORT_HEADER)?;
        for r in rows {
            w.write_record(cells(r))?;
        }
        w.flush()?;
        return Ok(());
    }
    use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory()?;
    ws.set_name("完成情况")?;
    let head = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xD9E1F2))
        .set_border(FormatBorder::Thin);
    let incomplete = Format::new().set_background_color(Color::RGB(0xFCE4D6));
    let plain = Format::new();
    ws.set_column_width(0, 40)?;
    ws.set_column_width(2, 40)?;
    ws.set_column_range_width(3, 7, 12)?;
    for (c, h) in EXPORT_HEADER.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let f = if r.complete { &plain } else { &incomplete };
        let cells = cells(r);
        for (c, v) in cells.iter().enumerate().take(4) {
            ws.write_string_with_format(row, c as u16, v, f)?;
        }
        for (c, v) in [
            r.people_complete,
            r.people_total,
            r.sub_orgs_complete,
            r.sub_orgs_total,
        ]
        .iter()
        .enumerate()
        {
            ws.write_number_with_format(row, 4 + c as u16, *v as f64, f)?;
        }
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, rows.len() as u32, EXPORT_HEADER.len() as u16 - 1)?;
    wb.save(out)?;
    Ok(())
}
