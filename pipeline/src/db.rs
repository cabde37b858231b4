//! The registry in PostgreSQL: migrations, and loading the organisation tree set-based
//! (COPY into a staging table, then one statement per step, in one transaction).

use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

use crate::orgs::{LookupError, OrgMatch, OrgResolver, OrgTree, Resolved};
use crate::text::normalise_org;

pub use crate::load::{DbFinding, LoadBatch, LoadError, Loaded, load};

/// The migrations of `schemas/migrations`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../schemas/migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Applies pending migrations; running it again changes nothing.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// One line of PostgreSQL's COPY text format.
pub(crate) fn copy_line(out: &mut String, fields: &[Option<&str>]) {
    copy_fields(out, fields);
    out.push('\n');
}

/// Fields of a COPY text line, tab-separated, without the line end.
pub(crate) fn copy_fields(out: &mut String, fields: &[Option<&str>]) {
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
    // Secretaries are people: serialised with roster loads.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::load::LOAD_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        r#"CREATE TEMP TABLE org_stage (
            full_name text, name_key text COLLATE "C", short_name text, category text,
            parent_key text COLLATE "C", own_province text, industry text, school_code text,
            secretary_name text, secretary_id text, secretary_phone text
        ) ON COMMIT DROP"#,
    )
    .execute(&mut *tx)
    .await?;
    let mut data = String::new();
    for o in tree.orgs() {
        let parent = o
            .parent
            .map(|p| (&tree.get(p).full_name, &tree.get(p).province))
            .or(o
                .registered_parent
                .as_ref()
                .map(|r| (&r.full_name, &r.province)));
        let parent_key = parent.map(|(name, _)| normalise_org(name));
        let key = normalise_org(&o.full_name);
        // Stored only where it differs from the parent's (the rest is inherited).
        let own = match parent {
            Some((_, province)) if *province == o.province => None,
            _ => o.province.as_deref(),
        };
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

/// Parses an org file whose parents may already be registered: the parents it does not
/// hold are looked up in one query. The outer error is the database's; the inner one
/// lists the file's problems.
pub async fn parse_org_file(
    pool: &PgPool,
    bytes: Vec<u8>,
) -> Result<Result<OrgTree, crate::orgs::OrgFileError>, DbError> {
    let (pool, handle) = (pool.clone(), tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || {
        OrgTree::parse_with(&bytes, |keys| handle.block_on(registered_orgs(&pool, keys)))
    })
    .await?
    .map_err(DbError::from)
}

/// The registered organisations among these normalised names.
async fn registered_orgs(
    pool: &PgPool,
    keys: &[String],
) -> Result<std::collections::HashMap<String, crate::orgs::RegisteredOrg>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT name_key, full_name, province, parent_id IS NULL FROM orgs
         WHERE name_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, full_name, province, is_root)| {
            (
                key,
                crate::orgs::RegisteredOrg {
                    full_name,
                    province,
                    is_root,
                },
            )
        })
        .collect())
}

/// Streams COPY data; the COPY is aborted if sending fails.
pub(crate) async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, DbError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    for chunk in data.chunks(COPY_CHUNK) {
        copy = send(copy, chunk).await?;
    }
    Ok(copy.finish().await?)
}

/// Chunk size of COPY data sent to the server; building the next chunk overlaps with the
/// server writing the last one.
const COPY_CHUNK: usize = 1 << 20;

/// Streams the COPY lines `line` writes for each item, a chunk at a time (the whole text
/// never sits in memory); the COPY is aborted if sending fails. Returns the rows stored.
pub(crate) async fn copy_rows<'a, T: 'a, I, F>(
    conn: &mut PgConnection,
    statement: &str,
    items: I,
    mut line: F,
) -> Result<u64, DbError>
where
    I: Iterator<Item = &'a T>,
    F: FnMut(&mut String, &'a T),
{
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buf = String::with_capacity(COPY_CHUNK + 4096);
    for item in items {
        line(&mut buf, item);
        if buf.len() >= COPY_CHUNK {
            copy = send(copy, buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy = send(copy, buf.as_bytes()).await?;
    }
    Ok(copy.finish().await?)
}

/// Sends COPY data; if that fails the COPY is aborted, so the server discards it.
async fn send<'c>(
    mut copy: sqlx::postgres::PgCopyIn<&'c mut PgConnection>,
    bytes: &[u8],
) -> Result<sqlx::postgres::PgCopyIn<&'c mut PgConnection>, DbError> {
    match copy.send(bytes).await {
        Ok(_) => Ok(copy),
        Err(e) => {
            copy.abort(e.to_string()).await?;
            Err(e.into())
        }
    }
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

    /// The resolver of the organisation with this id; `None` if there is none.
    pub async fn for_uploader_id(pool: &PgPool, id: i64) -> Result<Option<DbOrgs>, DbError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT full_name, province FROM orgs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        Ok(row.map(|(name, province)| DbOrgs {
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
