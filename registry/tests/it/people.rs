//! The declaration of `people`'s loaded columns against the table the migrations make:
//! a column added to one and not the other fails here, not in a load.

use registry::people::{COLUMNS, NOT_LOADED, copy_header};
use sqlx::PgPool;

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_declared_columns_are_the_tables_columns(pool: PgPool) {
    let mut table: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'people'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    table.sort();
    let mut declared: Vec<String> = COLUMNS
        .iter()
        .map(|c| c.name)
        .chain(NOT_LOADED.iter().copied())
        .map(str::to_string)
        .collect();
    declared.sort();
    assert_eq!(declared, table);
    // The derived header names every declared column once.
    let mut header: Vec<&str> = copy_header().split(", ").collect();
    header.sort_unstable();
    let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    names.sort_unstable();
    assert_eq!(header, names);
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_derived_statements_run_against_the_table(pool: PgPool) {
    // The staging table and the update are valid SQL for the table as migrated.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(registry::people::create_update_stage())
        .execute(&mut *tx)
        .await
        .unwrap();
    let updated = sqlx::query(sqlx::AssertSqlSafe(registry::people::update_stored()))
        .bind(true)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 0);
}
