//! The registry in PostgreSQL: migrations, and loading the organisation tree set-based
//! (COPY into a staging table, then one statement per step, in one transaction).

use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

use crate::orgs::{LookupError, OrgMatch, OrgResolver, OrgTree, Resolved};
use crate::text::normalise_org;

/// The migrations of `schemas/migrations`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../schemas/migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Applies pending migrations; running it again changes nothing.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// One line of PostgreSQL's COPY text format.
pub(crate) fn copy_line(out: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match f {
            None => out.push_str("\\N"),
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.push('\n');
}

/// What an org import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgImport {
    pub inserted: u64,
    pub updated: u64,
    pub secretaries: u64,
}

/// Loads or updates the tree of an org file in one transaction: new organisations are
/// added, existing ones (same normalised full name) updated, parents and the derived
/// province and ancestor path recomputed. Secretaries named in the file are created as
/// people (if new) holding the post 书记 in their organisation.
#[tracing::instrument(skip_all, fields(orgs = tree.len()))]
pub async fn import_orgs(pool: &PgPool, tree: &OrgTree) -> Result<OrgImport, DbError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE org_stage (
            full_name text, name_key text, short_name text, category text,
            parent_key text, own_province text, industry text, school_code text,
            secretary_name text, secretary_id text, secretary_phone text
        ) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut data = String::new();
    for o in tree.orgs() {
        let parent_key = o.parent.map(|p| normalise_org(&tree.get(p).full_name));
        let key = normalise_org(&o.full_name);
        let own = o.parent.map_or(o.province.as_deref(), |p| {
            (tree.get(p).province != o.province)
                .then_some(o.province.as_deref())
                .flatten()
        });
        copy_line(
            &mut data,
            &[
                Some(&o.full_name),
                Some(&key),
                Some(&o.short_name),
                Some(o.category.code()),
                parent_key.as_deref(),
                own,
                o.industry.as_deref(),
                o.school_code.as_deref(),
                o.secretary.as_ref().map(|s| s.name.as_str()),
                o.secretary.as_ref().map(|s| s.id_number.as_str()),
                o.secretary.as_ref().and_then(|s| s.phone.as_deref()),
            ],
        );
    }
    copy_in(&mut tx, "COPY org_stage FROM STDIN", data.as_bytes()).await?;

    let existing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM orgs o JOIN org_stage s USING (name_key)")
            .fetch_one(&mut *tx)
            .await?;
    let upserted = sqlx::query(
        "INSERT INTO orgs (full_name, name_key, short_name, category, own_province, industry, school_code)
         SELECT full_name, name_key, short_name, category, own_province, industry, school_code FROM org_stage
         ON CONFLICT (name_key) DO UPDATE SET
            full_name = EXCLUDED.full_name, short_name = EXCLUDED.short_name,
            category = EXCLUDED.category, own_province = EXCLUDED.own_province,
            industry = EXCLUDED.industry, school_code = EXCLUDED.school_code, updated_at = now()
         WHERE (orgs.full_name, orgs.short_name, orgs.category, orgs.own_province, orgs.industry, orgs.school_code)
               IS DISTINCT FROM
               (EXCLUDED.full_name, EXCLUDED.short_name, EXCLUDED.category, EXCLUDED.own_province,
                EXCLUDED.industry, EXCLUDED.school_code)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE orgs o SET parent_id = p.id, updated_at = now()
         FROM org_stage s LEFT JOIN orgs p ON p.name_key = s.parent_key
         WHERE o.name_key = s.name_key AND o.parent_id IS DISTINCT FROM p.id",
    )
    .execute(&mut *tx)
    .await?;
    // Provinces and ancestor paths of the whole tree, from the roots down.
    sqlx::query(
        "WITH RECURSIVE t AS (
            SELECT id, ARRAY[id] AS path, own_province AS province FROM orgs WHERE parent_id IS NULL
            UNION ALL
            SELECT o.id, t.path || o.id, coalesce(o.own_province, t.province)
            FROM orgs o JOIN t ON o.parent_id = t.id
         )
         UPDATE orgs SET path = t.path, province = t.province
         FROM t WHERE orgs.id = t.id
           AND (orgs.path IS DISTINCT FROM t.path OR orgs.province IS DISTINCT FROM t.province)",
    )
    .execute(&mut *tx)
    .await?;
    // Secretaries (SPEC §2): a person with only these fields, so incomplete (§8).
    sqlx::query(
        "INSERT INTO people (id_number, name, phone)
         SELECT DISTINCT ON (secretary_id) secretary_id, secretary_name, secretary_phone
         FROM org_stage WHERE secretary_id IS NOT NULL
         ON CONFLICT (id_number) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    let secretaries = sqlx::query(
        "INSERT INTO cadre_posts (id_number, org_id, duty)
         SELECT s.secretary_id, o.id, '书记' FROM org_stage s JOIN orgs o USING (name_key)
         WHERE s.secretary_id IS NOT NULL
         ON CONFLICT (id_number, org_id) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    let inserted = tree.len() as u64 - existing as u64;
    Ok(OrgImport {
        inserted,
        updated: upserted - inserted,
        secretaries,
    })
}

/// Streams COPY data; the COPY is aborted if sending fails.
pub(crate) async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, DbError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in data.chunks(1 << 20) {
        if let Err(e) = copy.send(chunk).await {
            copy.abort(e.to_string()).await?;
            return Err(e.into());
        }
    }
    Ok(copy.finish().await?)
}

/// Organisations and scope as the database has them, for one uploader: one query per
/// file for every distinct name, whatever the number of rows.
///
/// [`OrgResolver::resolve`] blocks on the runtime the resolver was created in, so
/// validation must run on a blocking thread (`tokio::task::spawn_blocking`).
pub struct DbOrgs {
    pool: PgPool,
    handle: tokio::runtime::Handle,
    uploader_id: i64,
    uploader_name: String,
    uploader_province: Option<String>,
}

/// key, full name, category, province, in the uploader's scope.
type LookupRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

/// Suggestions offered for an unknown name.
const SUGGESTIONS: i64 = 3;

impl DbOrgs {
    /// The resolver of the organisation with this full name; `None` if there is none.
    pub async fn for_uploader(pool: &PgPool, full_name: &str) -> Result<Option<DbOrgs>, DbError> {
        let row: Option<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, full_name, province FROM orgs WHERE name_key = $1")
                .bind(normalise_org(full_name))
                .fetch_optional(pool)
                .await?;
        Ok(row.map(|(id, name, province)| DbOrgs {
            pool: pool.clone(),
            handle: tokio::runtime::Handle::current(),
            uploader_id: id,
            uploader_name: name,
            uploader_province: province,
        }))
    }

    pub fn uploader_id(&self) -> i64 {
        self.uploader_id
    }

    async fn lookup(&self, keys: &[&str]) -> Result<Vec<Resolved>, sqlx::Error> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let found: Vec<LookupRow> = sqlx::query_as(
            "SELECT k.key, o.full_name, o.category, o.province, $2 = ANY(o.path)
                 FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n)
                 LEFT JOIN orgs o ON o.name_key = k.key
                 ORDER BY k.n",
        )
        .bind(&keys)
        .bind(self.uploader_id)
        .fetch_all(&self.pool)
        .await?;
        let unknown: Vec<String> = found
            .iter()
            .filter(|r| r.1.is_none())
            .map(|r| r.0.clone())
            .collect();
        // Close names within the uploader's scope only: the org whose short name it is
        // first, then by trigram similarity.
        let close: Vec<(String, String)> = if unknown.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT k.key, s.full_name
                 FROM unnest($1::text[]) AS k(key)
                 CROSS JOIN LATERAL (
                     SELECT o.full_name FROM orgs o
                     WHERE $2 = ANY(o.path) AND (o.short_name = k.key OR o.name_key % k.key)
                     ORDER BY (o.short_name = k.key) DESC, similarity(o.name_key, k.key) DESC, o.id
                     LIMIT $3
                 ) s",
            )
            .bind(&unknown)
            .bind(self.uploader_id)
            .bind(SUGGESTIONS)
            .fetch_all(&self.pool)
            .await?
        };
        let mut suggestions: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (key, name) in close {
            suggestions.entry(key).or_default().push(name);
        }
        found
            .into_iter()
            .map(
                |(key, name, category, province, in_scope)| match (name, category) {
                    (Some(full_name), Some(category)) => {
                        let category = schemas::OrgCategory::parse(&category).ok_or_else(|| {
                            sqlx::Error::Protocol(format!(
                                "unknown organisation category {category}"
                            ))
                        })?;
                        Ok(Ok(OrgMatch {
                            full_name,
                            category,
                            province,
                            in_scope: in_scope.unwrap_or(false),
                        }))
                    }
                    _ => Ok(Err(suggestions.remove(&key).unwrap_or_default())),
                },
            )
            .collect()
    }
}

impl OrgResolver for DbOrgs {
    fn uploader_name(&self) -> &str {
        &self.uploader_name
    }

    fn uploader_province(&self) -> Option<&str> {
        self.uploader_province.as_deref()
    }

    fn resolve(&self, keys: &[&str]) -> Result<Vec<Resolved>, LookupError> {
        self.handle
            .block_on(self.lookup(keys))
            .map_err(|e| LookupError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_what_copy_text_needs() {
        let mut s = String::new();
        copy_line(&mut s, &[Some("a\tb"), None, Some("c\\d\ne")]);
        assert_eq!(s, "a\\tb\t\\N\tc\\\\d\\ne\n");
    }
}

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

/// Columns staged for loading, in COPY order.
const STAGE_COLUMNS: &str = "row_number, id_number, name, ethnicity, political_status, joined_on, \
     joined_precision, dev_number, education, occupation, phone, workplace, email, org_key, \
     is_cadre, duty, appointed_on, appointed_precision, nature, party_committee_member";

/// Loads the valid rows of a validation in one transaction.
///
/// Under a transaction-level advisory lock (loads are serialised; validation is not), the
/// rows are staged with COPY, the database findings made set-based — a development
/// number held by someone else (`dev_number_taken`), a member registered in another
/// branch (`id_registered_elsewhere`) — those rows dropped, and the rest merged into
/// people, memberships and cadre posts. The same person into the same branch is an
/// update; unchanged rows are not touched, so loading a file again changes nothing.
#[tracing::instrument(skip_all, fields(rows = batch.rows, uploader_id))]
pub async fn load(
    pool: &PgPool,
    batch: &LoadBatch,
    uploader_id: i64,
    upload_id: Option<i64>,
) -> Result<Loaded, LoadError> {
    let mut conn = pool.acquire().await.map_err(DbError::from)?;
    let mut tx = conn.begin().await.map_err(DbError::from)?;
    sqlx::query("SELECT pg_advisory_xact_lock(7217001)")
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    sqlx::query(
        "CREATE TEMP TABLE load_stage (
            row_number int, id_number text, name text, ethnicity text, political_status text,
            joined_on date, joined_precision text, dev_number text, education text,
            occupation text, phone text, workplace text, email text, org_key text,
            is_cadre boolean, duty text, appointed_on date, appointed_precision text,
            nature text, party_committee_member boolean, org_id bigint
        ) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let copy = format!("COPY load_stage ({STAGE_COLUMNS}) FROM STDIN");
    copy_in(&mut tx, &copy, batch.data.as_bytes()).await?;
    // Template A names the branch; template B loads posts of the uploader's organisation.
    sqlx::query(
        "UPDATE load_stage s SET org_id = coalesce(o.id, $1)
         FROM load_stage s2 LEFT JOIN orgs o ON o.name_key = s2.org_key
         WHERE s.row_number = s2.row_number",
    )
    .bind(uploader_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let members = batch.template == schemas::TemplateKind::Members;
    let taken: Vec<(i32,)> = sqlx::query_as(
        "SELECT s.row_number FROM load_stage s
         JOIN people p ON p.dev_number = s.dev_number AND p.id_number <> s.id_number",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let elsewhere: Vec<(i32,)> = if members {
        sqlx::query_as(
            "SELECT s.row_number FROM load_stage s
             JOIN memberships m ON m.id_number = s.id_number AND m.org_id <> s.org_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(DbError::from)?
    } else {
        Vec::new()
    };
    let mut findings: Vec<DbFinding> = taken
        .iter()
        .map(|(r,)| DbFinding {
            row: *r as u32,
            code: schemas::ErrorCode::DevNumberTaken,
        })
        .chain(elsewhere.iter().map(|(r,)| DbFinding {
            row: *r as u32,
            code: schemas::ErrorCode::IdRegisteredElsewhere,
        }))
        .collect();
    findings.sort_by_key(|f| (f.row, f.code));
    let refused: Vec<i32> = findings.iter().map(|f| f.row as i32).collect();
    sqlx::query("DELETE FROM load_stage WHERE row_number = ANY($1)")
        .bind(&refused)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    // People: template B carries no occupation / workplace / email; keep stored ones.
    let rows = sqlx::query(
        "INSERT INTO people AS p (id_number, name, ethnicity, political_status, joined_on,
             joined_precision, dev_number, education, occupation, phone, workplace, email,
             created_by_upload, updated_by_upload)
         SELECT id_number, name, ethnicity, political_status, joined_on, joined_precision,
             dev_number, education, occupation, phone, workplace, email, $1, $1
         FROM load_stage
         ON CONFLICT (id_number) DO UPDATE SET
             name = EXCLUDED.name, ethnicity = EXCLUDED.ethnicity,
             political_status = EXCLUDED.political_status, joined_on = EXCLUDED.joined_on,
             joined_precision = EXCLUDED.joined_precision,
             dev_number = coalesce(EXCLUDED.dev_number, p.dev_number),
             education = EXCLUDED.education,
             occupation = coalesce(EXCLUDED.occupation, p.occupation),
             phone = EXCLUDED.phone,
             workplace = coalesce(EXCLUDED.workplace, p.workplace),
             email = coalesce(EXCLUDED.email, p.email),
             updated_by_upload = EXCLUDED.updated_by_upload, updated_at = now()
         WHERE (p.name, p.ethnicity, p.political_status, p.joined_on, p.joined_precision,
                p.dev_number, p.education, p.occupation, p.phone, p.workplace, p.email)
               IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.ethnicity, EXCLUDED.political_status, EXCLUDED.joined_on,
                EXCLUDED.joined_precision, coalesce(EXCLUDED.dev_number, p.dev_number),
                EXCLUDED.education, coalesce(EXCLUDED.occupation, p.occupation), EXCLUDED.phone,
                coalesce(EXCLUDED.workplace, p.workplace), coalesce(EXCLUDED.email, p.email))",
    )
    .bind(upload_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?
    .rows_affected();
    if members {
        sqlx::query(
            "INSERT INTO memberships AS m (id_number, org_id, is_cadre, duty, upload_id)
             SELECT id_number, org_id, coalesce(is_cadre, false), duty, $1 FROM load_stage
             ON CONFLICT (id_number) DO UPDATE SET
                 is_cadre = EXCLUDED.is_cadre, duty = EXCLUDED.duty,
                 upload_id = EXCLUDED.upload_id, updated_at = now()
             WHERE (m.is_cadre, m.duty) IS DISTINCT FROM (EXCLUDED.is_cadre, EXCLUDED.duty)",
        )
        .bind(upload_id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    }
    sqlx::query(
        "INSERT INTO cadre_posts AS c (id_number, org_id, duty, appointed_on, appointed_precision,
             nature, party_committee_member, upload_id)
         SELECT id_number, org_id, duty, appointed_on, appointed_precision, nature,
             party_committee_member, $1
         FROM load_stage WHERE duty IS NOT NULL AND ($2 OR is_cadre)
         ON CONFLICT (id_number, org_id) DO UPDATE SET
             duty = EXCLUDED.duty, appointed_on = EXCLUDED.appointed_on,
             appointed_precision = EXCLUDED.appointed_precision, nature = EXCLUDED.nature,
             party_committee_member = EXCLUDED.party_committee_member,
             upload_id = EXCLUDED.upload_id, updated_at = now()
         WHERE (c.duty, c.appointed_on, c.nature, c.party_committee_member)
               IS DISTINCT FROM
               (EXCLUDED.duty, EXCLUDED.appointed_on, EXCLUDED.nature, EXCLUDED.party_committee_member)",
    )
    .bind(upload_id)
    .bind(!members)
    .execute(&mut *tx)
    .await
    .map_err(DbError::from)?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Loaded { rows, findings })
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The valid rows of a validation, ready for COPY. Preparing it is CPU work (polars):
/// do it on a blocking thread, then [`load`] it.
#[derive(Debug, Clone)]
pub struct LoadBatch {
    pub template: schemas::TemplateKind,
    pub rows: usize,
    data: String,
}

impl LoadBatch {
    pub fn prepare(v: &crate::Validation) -> Result<LoadBatch, polars::prelude::PolarsError> {
        let (rows, data) = stage_data(v)?;
        Ok(LoadBatch {
            template: v.template,
            rows,
            data,
        })
    }
}

/// The valid rows as COPY text, canonical values only.
fn stage_data(v: &crate::Validation) -> Result<(usize, String), polars::prelude::PolarsError> {
    use polars::prelude::*;
    use schemas::Field;
    let t = v.template.template();
    let df = v.valid_rows()?;
    let text = |f: Field| -> PolarsResult<Option<StringChunked>> {
        if t.has(f) {
            Ok(Some(df.column(&crate::col_val(f))?.str()?.clone()))
        } else {
            Ok(None)
        }
    };
    let dev = df.column(&crate::col_in(Field::DevNumber))?.str()?.clone();
    let org_key = if t.has(Field::Branch) {
        Some(df.column(&crate::col_in(Field::Branch))?.str()?.clone())
    } else {
        None
    };
    let rows = df.column(crate::ROW)?.u32()?.clone();
    let fields = [
        Field::Name,
        Field::IdNumber,
        Field::Ethnicity,
        Field::PoliticalStatus,
        Field::JoinedOn,
        Field::Education,
        Field::Occupation,
        Field::Phone,
        Field::Workplace,
        Field::Email,
        Field::IsCadre,
        Field::Duty,
        Field::AppointedOn,
        Field::CadreNature,
        Field::PartyCommitteeMember,
    ];
    let cols: Vec<Option<StringChunked>> = fields
        .iter()
        .map(|f| text(*f))
        .collect::<PolarsResult<_>>()?;
    let get = |k: usize, i: usize| cols[k].as_ref().and_then(|c| c.get(i));
    // "2017-05" → a month-precision date (the first of the month).
    let date = |s: Option<&str>| -> (Option<String>, Option<&'static str>) {
        match s {
            Some(d) if d.len() == 7 => (Some(format!("{d}-01")), Some("month")),
            Some(d) => (Some(d.to_string()), Some("day")),
            None => (None, None),
        }
    };
    let yes_no = |s: Option<&str>| s.map(|v| if v == "是" { "t" } else { "f" });
    let mut out = String::with_capacity(df.height() * 160);
    for i in 0..df.height() {
        let row = rows.get(i).unwrap_or_default().to_string();
        let (joined, joined_p) = date(get(4, i));
        let (appointed, appointed_p) = date(get(12, i));
        copy_line(
            &mut out,
            &[
                Some(&row),
                get(1, i),
                get(0, i),
                get(2, i),
                get(3, i),
                joined.as_deref(),
                joined_p,
                dev.get(i),
                get(5, i),
                get(6, i),
                get(7, i),
                get(8, i),
                get(9, i),
                org_key.as_ref().and_then(|c| c.get(i)),
                yes_no(get(10, i)),
                get(11, i),
                appointed.as_deref(),
                appointed_p,
                get(13, i),
                yes_no(get(14, i)),
            ],
        );
    }
    Ok((df.height(), out))
}

/// Hex SHA-256 of an upload's bytes: with the uploader and the template, the identity
/// of an upload (the same content uploaded twice is one upload).
pub fn content_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// Registers (or finds) the upload of this content and marks it running.
pub async fn begin_upload(
    pool: &PgPool,
    uploader_id: i64,
    template: schemas::TemplateKind,
    sha256: &str,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO uploads (uploader_org_id, template, content_sha256, status, started_at)
         VALUES ($1, $2, $3, 'running', now())
         ON CONFLICT (content_sha256, uploader_org_id, template) DO UPDATE
            SET status = 'running', started_at = now(), finished_at = NULL, failure = NULL
         RETURNING id",
    )
    .bind(uploader_id)
    .bind(template.code())
    .bind(sha256)
    .fetch_one(pool)
    .await?)
}

/// How an upload ended, as `uploads` records it.
#[derive(Debug, Clone)]
pub struct UploadOutcome {
    /// `succeeded` or `rejected` (`failed` is written by the job runner).
    pub status: &'static str,
    pub counts: Option<crate::validate::RowCounts>,
    pub file_error: Option<serde_json::Value>,
    pub timings: serde_json::Value,
    pub report_prefix: String,
    pub report_keys: Vec<String>,
    /// The findings as COPY text (see [`findings_copy`]).
    pub findings: String,
}

/// The findings of a validation as COPY lines for `upload_errors`.
pub fn findings_copy(v: &crate::Validation) -> Result<String, polars::prelude::PolarsError> {
    use crate::validate::errors as e;
    let f = &v.errors;
    let (rows, columns, codes, severities, messages, orgs) = (
        f.column(e::ROW)?.u32()?,
        f.column(e::COLUMN)?.str()?,
        f.column(e::CODE)?.str()?,
        f.column(e::SEVERITY)?.str()?,
        f.column(e::MESSAGE)?.str()?,
        f.column(e::REPORT_ORG)?.str()?,
    );
    let mut out = String::new();
    for i in 0..f.height() {
        let row = rows.get(i).unwrap_or_default().to_string();
        let key = orgs.get(i).map(normalise_org);
        copy_line(
            &mut out,
            &[
                Some(&row),
                columns.get(i),
                codes.get(i),
                severities.get(i),
                messages.get(i),
                key.as_deref(),
            ],
        );
    }
    Ok(out)
}

/// Records how an upload ended and replaces its findings, in one transaction.
pub async fn finish_upload(pool: &PgPool, id: i64, o: &UploadOutcome) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let c = o.counts;
    sqlx::query(
        "UPDATE uploads SET status = $2, rows_total = $3, rows_valid = $4, rows_with_errors = $5,
            rows_with_warnings = $6, file_error = $7::jsonb, timings = $8::jsonb, report_prefix = $9,
            report_keys = $10, finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(o.status)
    .bind(c.map(|c| c.total as i32))
    .bind(c.map(|c| c.valid as i32))
    .bind(c.map(|c| c.with_errors as i32))
    .bind(c.map(|c| c.with_warnings as i32))
    .bind(o.file_error.as_ref().map(|v| v.to_string()))
    .bind(o.timings.to_string())
    .bind(&o.report_prefix)
    .bind(&o.report_keys)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM upload_errors WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE finding_stage (row_number int, column_name text, code text,
            severity text, message text, org_key text) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    copy_in(
        &mut tx,
        "COPY finding_stage FROM STDIN",
        o.findings.as_bytes(),
    )
    .await?;
    sqlx::query(
        "INSERT INTO upload_errors (upload_id, row_number, column_name, code, severity, message, org_id)
         SELECT $1, f.row_number, f.column_name, f.code, f.severity, f.message, o.id
         FROM finding_stage f LEFT JOIN orgs o ON o.name_key = f.org_key",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
