//! The registry in PostgreSQL: migrations and org imports, each test in a fresh database.

use pipeline::db::import_orgs;
use pipeline::orgs::OrgTree;
use sqlx::PgPool;

use crate::helpers::*;

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "pipeline::db::MIGRATOR")]
async fn org_import_loads_the_tree_with_provinces_and_paths(pool: PgPool) {
    let done = import_orgs(&pool, &tree()).await.unwrap();
    assert_eq!(done.inserted, 15);
    assert_eq!(count(&pool, "SELECT count(*) FROM orgs").await, 15);
    // Provinces are inherited down the tree; 团中央 has none.
    let province: Option<String> =
        sqlx::query_scalar("SELECT province FROM orgs WHERE name_key = $1")
            .bind(BRANCH)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(province.as_deref(), Some("44"));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM orgs WHERE province IS NULL").await,
        1
    );
    // Scope by path: 广东 holds its own subtree (5 organisations) and nothing else.
    let in_guangdong = count(
        &pool,
        "SELECT count(*) FROM orgs o, orgs g WHERE g.name_key = '共青团广东省委员会' AND g.id = ANY(o.path)",
    )
    .await;
    assert_eq!(in_guangdong, 5);
    // Names are kept as registered, matched normalised.
    let full: String = sqlx::query_scalar("SELECT full_name FROM orgs WHERE name_key = $1")
        .bind("深圳市某中学初一(2)班团支部")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(full, BRANCH_PARENS);
}

#[sqlx::test(migrator = "pipeline::db::MIGRATOR")]
async fn org_import_again_changes_nothing_and_updates_what_changed(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    let snapshot = |pool: PgPool| async move {
        sqlx::query_as::<_, (String, String, Option<i64>, Option<String>, Vec<i64>)>(
            "SELECT name_key, category, parent_id, province, path FROM orgs ORDER BY name_key",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = snapshot(pool.clone()).await;
    let again = import_orgs(&pool, &tree()).await.unwrap();
    assert_eq!((again.inserted, again.updated), (0, 0));
    assert_eq!(snapshot(pool.clone()).await, before);
    // Move the Beijing school under Guangdong: parent, province and path follow.
    let moved = ORGS_CSV.replace(
        "北京市某中学团委,北京某中学,团委,共青团北京市委员会",
        "北京市某中学团委,北京某中学,团委,共青团深圳市委员会",
    );
    let done = import_orgs(&pool, &OrgTree::parse(moved.as_bytes()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (done.inserted, done.updated),
        (0, 0),
        "only the parent changed"
    );
    let province: Option<String> =
        sqlx::query_scalar("SELECT province FROM orgs WHERE name_key = $1")
            .bind(BEIJING_BRANCH)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(province.as_deref(), Some("44"));
}

#[sqlx::test(migrator = "pipeline::db::MIGRATOR")]
async fn secretaries_become_incomplete_people_with_a_post(pool: PgPool) {
    let csv = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号,书记姓名,书记身份证号码,书记手机号码
共青团中央,团中央,团的领导机关,,,,,,,
共青团广东省委员会,广东团省委,团的领导机关,共青团中央,,44,,王五,11010519491231002x,13800138000
某中学团委,某中学,团委,共青团广东省委员会,,,,王五,11010519491231002X,13800138000
";
    let done = import_orgs(&pool, &OrgTree::parse(csv.as_bytes()).unwrap())
        .await
        .unwrap();
    assert_eq!(done.secretaries, 2, "one person, two posts");
    assert_eq!(count(&pool, "SELECT count(*) FROM people").await, 1);
    let (name, verification, rule): (String, String, String) = sqlx::query_as(
        "SELECT name, verification, password_rule FROM people WHERE id_number = '11010519491231002X'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), verification.as_str(), rule.as_str()),
        ("王五", "未认证", "id_number_last_8")
    );
}
