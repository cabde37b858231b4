//! The organisation tree in the registry: importing an org file set-based (COPY into a
//! staging table, then one statement per step, in one transaction), and [`DbOrgs`], the
//! [`OrgResolver`] validation asks when it runs against the database.

use pipeline::orgs::{
    LookupError, OrgFileError, OrgMatch, OrgResolver, OrgTree, RegisteredOrg, Resolved,
};
use pipeline::text::normalise_org;
use sqlx::Connection;
use sqlx::postgres::PgPool;

use crate::RegistryError;
use crate::copy::{copy_in, copy_line};

/// The id of the organisation with this full name (in any form that normalises to it).
pub async fn org_id(pool: &PgPool, full_name: &str) -> Result<Option<i64>, RegistryError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM orgs WHERE name_key = $1")
            .bind(normalise_org(full_name))
            .fetch_optional(pool)
            .await?,
    )
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
pub async fn import_orgs(pool: &PgPool, tree: &OrgTree) -> Result<OrgImport, RegistryError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    // Secretaries are people: serialised with roster loads.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::LOAD_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        r#"CREATE TEMP TABLE org_stage (
            full_name text, name_key text COLLATE "C", short_name text, short_key text,
            category text,
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
                Some(normalise_org(&o.short_name))
                    .filter(|k| !k.is_empty())
                    .as_deref(),
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
        "INSERT INTO orgs (full_name, name_key, short_name, short_key, category, own_province, industry, school_code)
         SELECT full_name, name_key, short_name, short_key, category, own_province, industry, school_code FROM org_stage
         ON CONFLICT (name_key) DO UPDATE SET
            full_name = EXCLUDED.full_name, short_name = EXCLUDED.short_name,
            short_key = EXCLUDED.short_key,
            category = EXCLUDED.category, own_province = EXCLUDED.own_province,
            industry = EXCLUDED.industry, school_code = EXCLUDED.school_code, updated_at = now()
         WHERE (orgs.full_name, orgs.short_name, orgs.short_key, orgs.category, orgs.own_province, orgs.industry, orgs.school_code)
               IS DISTINCT FROM
               (EXCLUDED.full_name, EXCLUDED.short_name, EXCLUDED.short_key, EXCLUDED.category, EXCLUDED.own_province,
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
) -> Result<Result<OrgTree, OrgFileError>, RegistryError> {
    let (pool, handle) = (pool.clone(), tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || {
        OrgTree::parse_with(&bytes, |keys| handle.block_on(registered_orgs(&pool, keys)))
    })
    .await?
    .map_err(RegistryError::from)
}

/// Name key, full name, province, is a root, ancestors' name keys (root first).
type RegisteredRow = (String, String, Option<String>, bool, Vec<String>);

/// The registered organisations among these normalised names.
async fn registered_orgs(
    pool: &PgPool,
    keys: &[String],
) -> Result<std::collections::HashMap<String, RegisteredOrg>, sqlx::Error> {
    let rows: Vec<RegisteredRow> = sqlx::query_as(
        "SELECT o.name_key, o.full_name, o.province, o.parent_id IS NULL,
                coalesce((SELECT array_agg(a.name_key ORDER BY x.n)
                          FROM unnest(o.path) WITH ORDINALITY AS x(id, n)
                          JOIN orgs a ON a.id = x.id
                          WHERE a.id <> o.id), '{}')
         FROM orgs o WHERE o.name_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, full_name, province, is_root, ancestors)| {
            (
                key,
                RegisteredOrg {
                    full_name,
                    province,
                    is_root,
                    ancestors,
                },
            )
        })
        .collect())
}

/// Organisations and scope as the database has them, for one uploader: one query per
/// file for every distinct name, and a second for suggestions when some are unknown,
/// whatever the number of rows.
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
    pub async fn for_uploader(
        pool: &PgPool,
        full_name: &str,
    ) -> Result<Option<DbOrgs>, RegistryError> {
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
    pub async fn for_uploader_id(pool: &PgPool, id: i64) -> Result<Option<DbOrgs>, RegistryError> {
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
                     WHERE $2 = ANY(o.path) AND (o.short_key = k.key OR o.name_key % k.key)
                     ORDER BY (o.short_key = k.key) DESC, similarity(o.name_key, k.key) DESC, o.id
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
