//! The declarations of `people`'s and `cadre_posts`' loaded columns against the tables
//! the migrations make: a column added to one and not the other fails here, not in a
//! load.

use registry::people::{COLUMNS, NOT_LOADED, copy_header};
use sqlx::PgPool;

/// Asserts that `declared` and `not_loaded` name exactly the columns of `table`.
async fn assert_declares_table<'a>(
    pool: &PgPool,
    table: &str,
    declared: impl Iterator<Item = &'a str>,
    not_loaded: &'a [&'a str],
) {
    let mut columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    columns.sort();
    let mut named: Vec<String> = declared
        .chain(not_loaded.iter().copied())
        .map(str::to_string)
        .collect();
    named.sort();
    assert_eq!(named, columns, "{table}");
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_declared_columns_are_the_tables_columns(pool: PgPool) {
    assert_declares_table(&pool, "people", COLUMNS.iter().map(|c| c.name), NOT_LOADED).await;
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

/// `cadre_posts`' declaration against the table, and its derived statements run: the
/// staging table, a merge that changes only what differs.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_declared_post_columns_are_the_tables_and_their_statements_run(pool: PgPool) {
    use registry::posts::{COLUMNS, NOT_LOADED};
    assert_declares_table(
        &pool,
        "cadre_posts",
        COLUMNS.iter().map(|c| c.name),
        NOT_LOADED,
    )
    .await;
    let mut tx = pool.begin().await.unwrap();
    // No foreign keys on cadre_posts (the loader keeps integrity): no org or person needed.
    sqlx::query(registry::posts::create_stage())
        .execute(&mut *tx)
        .await
        .unwrap();
    // (what is staged, posts written by the merge): a new post, the same again, a change.
    let rows = [
        (
            "110101199001010011\t1\t书记\t2020-01-01\tmonth\t专职\tt\t7\n",
            1,
        ),
        (
            "110101199001010011\t1\t书记\t2020-01-01\tmonth\t专职\tt\t8\n",
            0,
        ),
        (
            "110101199001010011\t1\t副书记\t2020-01-01\tmonth\t专职\tt\t9\n",
            1,
        ),
    ];
    for (line, written) in rows {
        sqlx::query("TRUNCATE load_posts")
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY load_posts ({}) FROM STDIN",
                registry::posts::copy_header()
            ))
            .await
            .unwrap();
        copy.send(line.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        let merged = sqlx::query(sqlx::AssertSqlSafe(registry::posts::merge_stored()))
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(merged, written, "{line}");
    }
    let duty: String = sqlx::query_scalar("SELECT duty FROM cadre_posts")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(duty, "副书记");
}
