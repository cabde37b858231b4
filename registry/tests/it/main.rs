//! Integration tests of the registry, each in a fresh database (`#[sqlx::test]`):
//! org imports, validation against the database, loads, statistics.

mod db;
// The pipeline's builders (fixture org tree, people with valid IDs, rosters as real xlsx
// bytes), shared rather than copied; not every test binary uses all of them.
#[allow(dead_code)]
#[path = "../../../pipeline/tests/it/helpers.rs"]
mod helpers;
mod people;
mod stats;

/// The id of a registered organisation, by (any form of) its full name.
pub async fn org_id(pool: &sqlx::PgPool, name: &str) -> i64 {
    registry::orgs::org_id(pool, name)
        .await
        .unwrap()
        .expect("a registered organisation")
}
