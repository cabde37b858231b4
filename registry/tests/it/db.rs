//! The registry in PostgreSQL: migrations and org imports, each test in a fresh database.

use pipeline::orgs::OrgTree;
use registry::import_orgs;
use sqlx::PgPool;

use crate::helpers::*;
use crate::org_id;

/// Runs CPU work (polars) on a plain thread, outside the test's current-thread runtime
/// (polars will not block inside one), while the runtime keeps serving database I/O.
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("worker thread finished")
}

/// The effective province code stored for an organisation.
async fn province(pool: &PgPool, name_key: &str) -> Option<String> {
    sqlx::query_scalar("SELECT province FROM orgs WHERE name_key = $1")
        .bind(name_key)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn org_import_loads_the_tree_with_provinces_and_paths(pool: PgPool) {
    let done = import_orgs(&pool, &tree()).await.unwrap();
    assert_eq!(done.inserted, 15);
    assert_eq!(count(&pool, "SELECT count(*) FROM orgs").await, 15);
    // Provinces are inherited down the tree; 团中央 has none.
    assert_eq!(province(&pool, BRANCH).await.as_deref(), Some("44"));
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

#[sqlx::test(migrator = "registry::MIGRATOR")]
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
    assert_eq!(province(&pool, BEIJING_BRANCH).await.as_deref(), Some("44"));
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn secretaries_become_incomplete_people_with_a_post(pool: PgPool) {
    let csv = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号,书记姓名,书记身份证号码,书记手机号码
共青团中央,团中央,团的领导机关,,,,,,,
共青团广东省委员会,广东团省委,团的领导机关,共青团中央,,44,,王五,11010519491231002x,13800138000
某中学团委,某中学,团委,共青团广东省委员会,,,,王五,11010519491231002X,13800138000
";
    // Checking the secretaries runs polars: off the test's current-thread runtime.
    let tree = off_runtime(move || OrgTree::parse(csv.as_bytes()).unwrap()).await;
    let done = import_orgs(&pool, &tree).await.unwrap();
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

/// The same roster validated against the database and against the org file gives the
/// same findings, row by row.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn validation_against_the_database_matches_the_offline_one(pool: PgPool) {
    use registry::DbOrgs;
    use schemas::{ErrorCode as E, Field, TemplateKind};

    import_orgs(&pool, &tree()).await.unwrap();
    let people = [
        Person::new(1),
        Person::new(2).text(Field::Branch, "初一1班"),
        Person::new(3).text(Field::Branch, "深圳市某中学初一1班团支布"),
        Person::new(4).text(Field::Branch, SCHOOL),
        Person::new(5).branch(BEIJING_BRANCH),
        Person::new(6).branch(BRANCH_PARENS),
        Person::new(7).text(Field::Branch, "深圳市某中学初一(2)班团支部"),
        Person::new(8).born(2004, 6, 15).joined("2016-06"),
        Person::new(9).text(Field::Phone, "123"),
    ];
    let rows: Vec<_> = people
        .iter()
        .map(|p| p.cells(TemplateKind::Members))
        .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let offline_bytes = bytes.clone();
    let offline =
        off_runtime(move || findings(&validate(&offline_bytes, TemplateKind::Members, GUANGDONG)))
            .await;

    assert!(
        DbOrgs::for_uploader(&pool, "没有这个团委")
            .await
            .unwrap()
            .is_none()
    );
    let db = DbOrgs::for_uploader(&pool, GUANGDONG)
        .await
        .unwrap()
        .unwrap();
    let outcome =
        off_runtime(move || pipeline::validate_bytes(&bytes, &options(TemplateKind::Members), &db))
            .await
            .unwrap();
    let pipeline::Outcome::Accepted(v) = outcome else {
        panic!("rejected")
    };
    let online = findings(&v);
    let codes = |f: &Findings| -> Vec<(u32, Vec<E>)> {
        f.iter()
            .map(|(row, x)| (*row, x.iter().map(|y| y.0).collect()))
            .collect()
    };
    assert_eq!(codes(&online), codes(&offline));
    assert_eq!(online.len(), 7, "{online:?}");
    for (row, found) in &online {
        for (i, (code, _, message)) in found.iter().enumerate() {
            if *code == E::OrgNotFound {
                // Suggestions come from different similarity measures; both name the branch.
                assert!(message.contains(BRANCH), "row {row}: {message}");
                assert!(offline[row][i].2.contains(BRANCH));
            } else {
                assert_eq!(message, &offline[row][i].2, "row {row}");
            }
        }
    }
    let orgs = column_str(&v.rows, pipeline::validate::REPORT_ORG);
    assert_eq!(
        orgs[4].as_deref(),
        Some(GUANGDONG),
        "out of scope goes to the uploader"
    );
    assert_eq!(
        orgs[5].as_deref(),
        Some(BRANCH_PARENS),
        "names as registered"
    );
}

/// Validates a members roster against the database and prepares the valid rows.
async fn validate_online(pool: &PgPool, people: &[Person], uploader: &str) -> registry::LoadBatch {
    validate_online_as(pool, schemas::TemplateKind::Members, people, uploader).await
}

/// Validates a roster of either template against the database and prepares the valid rows.
async fn validate_online_as(
    pool: &PgPool,
    template: schemas::TemplateKind,
    people: &[Person],
    uploader: &str,
) -> registry::LoadBatch {
    let rows: Vec<_> = people.iter().map(|p| p.cells(template)).collect();
    let bytes = workbook(template, &[], None, &rows, false);
    let db = registry::DbOrgs::for_uploader(pool, uploader)
        .await
        .unwrap()
        .unwrap();
    off_runtime(
        move || match pipeline::validate_bytes(&bytes, &options(template), &db).unwrap() {
            pipeline::Outcome::Accepted(v) => registry::LoadBatch::prepare(&v).unwrap(),
            pipeline::Outcome::Rejected(r) => panic!("{r:?}"),
        },
    )
    .await
}

/// Validates a roster against the database and makes the keys of its valid rows, with
/// what their COPY text is made from.
async fn validate_online_keys(
    pool: &PgPool,
    template: schemas::TemplateKind,
    people: &[Person],
    uploader: &str,
) -> (registry::LoadBatch, registry::load::LoadSource) {
    let rows: Vec<_> = people.iter().map(|p| p.cells(template)).collect();
    let bytes = workbook(template, &[], None, &rows, false);
    let db = registry::DbOrgs::for_uploader(pool, uploader)
        .await
        .unwrap()
        .unwrap();
    off_runtime(
        move || match pipeline::validate_bytes(&bytes, &options(template), &db).unwrap() {
            pipeline::Outcome::Accepted(v) => registry::LoadBatch::keys(&v).unwrap(),
            pipeline::Outcome::Rejected(r) => panic!("{r:?}"),
        },
    )
    .await
}

/// Every person and post as the connection sees them, whole but for their timestamps.
async fn whole_rows(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT (to_jsonb(p) - 'created_at' - 'updated_at')::text FROM people p
         UNION ALL
         SELECT (to_jsonb(c) - 'created_at' - 'updated_at')::text FROM cadre_posts c
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn snapshot(pool: &PgPool) -> Vec<(String, Option<String>, Option<i64>, Option<String>)> {
    sqlx::query_as(
        "SELECT p.id_number, p.dev_number, m.org_id, c.duty FROM people p
         LEFT JOIN memberships m USING (id_number) LEFT JOIN cadre_posts c USING (id_number)
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn loading_is_idempotent_and_checks_everyone_registered(pool: PgPool) {
    use registry::{DbFinding, load};
    use schemas::{ErrorCode as E, Field};

    import_orgs(&pool, &tree()).await.unwrap();
    let uploader: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE name_key = $1")
        .bind(GUANGDONG)
        .fetch_one(&pool)
        .await
        .unwrap();
    let first = [
        Person::new(1),
        Person::new(2),
        Person::new(3)
            .text(Field::IsCadre, "是")
            .text(Field::Duty, "书记"),
        Person::new(9).text(Field::Phone, "123"),
    ];
    let v = validate_online(&pool, &first, GUANGDONG).await;
    let loaded = load(&pool, &v, uploader, None).await.unwrap();
    assert_eq!(
        (loaded.rows, loaded.findings.len()),
        (3, 0),
        "the invalid row stays out"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM people").await, 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM memberships").await, 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM cadre_posts").await, 1);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM people WHERE verification = '未认证' AND must_change_password"
        )
        .await,
        3
    );
    let before = snapshot(&pool).await;

    // The same file again changes nothing.
    let again = load(&pool, &v, uploader, None).await.unwrap();
    assert_eq!((again.rows, again.findings.len()), (0, 0));
    assert_eq!(snapshot(&pool).await, before);

    // A follow-up: person 1 moved to another branch, a new person with person 2's
    // number, person 3 unchanged.
    let second = [
        Person::new(1).branch(BRANCH_PARENS),
        Person::new(4).dev(&Person::new(2).auto_dev()),
        Person::new(3)
            .text(Field::IsCadre, "是")
            .text(Field::Duty, "书记"),
    ];
    let v = validate_online(&pool, &second, GUANGDONG).await;
    let loaded = load(&pool, &v, uploader, None).await.unwrap();
    assert_eq!(
        loaded.findings,
        vec![
            DbFinding {
                row: 2,
                code: E::IdRegisteredElsewhere
            },
            DbFinding {
                row: 3,
                code: E::DevNumberTaken
            },
        ]
    );
    assert_eq!(loaded.rows, 0, "unchanged people pass silently");
    assert_eq!(snapshot(&pool).await, before);
}

/// Posts of a person: (organisation, duty), in the order the organisations were created.
async fn posts(pool: &PgPool, person: &Person) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT o.full_name, c.duty FROM cadre_posts c JOIN orgs o ON o.id = c.org_id
         WHERE c.id_number = $1 ORDER BY o.id",
    )
    .bind(person.id())
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Template B loads posts of the uploader's own organisation; one person may hold posts
/// in several, and a post never moves or removes a membership.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn cadre_rosters_load_posts_of_the_uploader_in_several_organisations(pool: PgPool) {
    use registry::load;
    use schemas::{Field, TemplateKind::Cadres};

    import_orgs(&pool, &tree()).await.unwrap();
    let (guangdong, school) = (org_id(&pool, GUANGDONG).await, org_id(&pool, SCHOOL).await);
    let member = Person::new(1);
    let members = validate_online(&pool, std::slice::from_ref(&member), GUANGDONG).await;
    assert_eq!(
        load(&pool, &members, guangdong, None).await.unwrap().rows,
        1
    );

    // The school's committee: the member as 书记, a new person as 副书记.
    let newcomer = Person::new(2).text(Field::Duty, "副书记");
    let school_file = [member.clone(), newcomer.clone()];
    let v = validate_online_as(&pool, Cadres, &school_file, SCHOOL).await;
    let loaded = load(&pool, &v, school, None).await.unwrap();
    assert_eq!(
        (loaded.rows, loaded.findings.len()),
        (1, 0),
        "one new person"
    );
    assert_eq!(
        posts(&pool, &member).await,
        vec![(SCHOOL.into(), "书记".into())]
    );
    assert_eq!(
        posts(&pool, &newcomer).await,
        vec![(SCHOOL.into(), "副书记".into())]
    );

    // The province's leading body: the same member, a second post; no finding.
    let v = validate_online_as(
        &pool,
        Cadres,
        &[member.clone().text(Field::Duty, "委员")],
        GUANGDONG,
    )
    .await;
    let loaded = load(&pool, &v, guangdong, None).await.unwrap();
    assert_eq!((loaded.rows, loaded.findings.len()), (0, 0));
    assert_eq!(
        posts(&pool, &member).await,
        vec![
            (GUANGDONG.into(), "委员".into()),
            (SCHOOL.into(), "书记".into())
        ]
    );
    // Memberships untouched: the member stays in the branch, the newcomer has none.
    let branches: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT p.id_number, o.full_name FROM people p LEFT JOIN orgs o ON o.id = p.branch_id
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        branches,
        vec![(member.id(), Some(BRANCH.into())), (newcomer.id(), None)]
    );

    // The school's file again: nothing; with a changed duty: the post is updated.
    let v = validate_online_as(&pool, Cadres, &school_file, SCHOOL).await;
    let again = load(&pool, &v, school, None).await.unwrap();
    assert_eq!((again.rows, again.findings.len()), (0, 0));
    assert_eq!(count(&pool, "SELECT count(*) FROM cadre_posts").await, 3);
    let promoted = [member.clone().text(Field::Duty, "副书记")];
    let v = validate_online_as(&pool, Cadres, &promoted, SCHOOL).await;
    load(&pool, &v, school, None).await.unwrap();
    assert_eq!(
        posts(&pool, &member).await,
        vec![
            (GUANGDONG.into(), "委员".into()),
            (SCHOOL.into(), "副书记".into())
        ]
    );
}

/// A committee's org file may hang new organisations under registered ones.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn org_files_may_name_registered_parents(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    let csv = format!(
        "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号
深圳市某中学初二1班团支部,初二1班,团支部,{SCHOOL},,,
广州市某中学团委,广州某中学,团委,{GUANGDONG},,,
广州市某中学高一1班团支部,广州高一1班,团支部,广州市某中学团委,,,
"
    );
    let tree = registry::parse_org_file(&pool, csv.into_bytes())
        .await
        .unwrap()
        .unwrap();
    let done = import_orgs(&pool, &tree).await.unwrap();
    assert_eq!((done.inserted, done.updated), (3, 0));
    assert_eq!(
        province(&pool, "广州市某中学高一1班团支部")
            .await
            .as_deref(),
        Some("44"),
        "inherited through a registered parent"
    );
    let in_guangdong = count(
        &pool,
        "SELECT count(*) FROM orgs o, orgs g WHERE g.name_key = '共青团广东省委员会' AND g.id = ANY(o.path)",
    )
    .await;
    assert_eq!(in_guangdong, 8, "paths run through the registered parents");

    // A parent neither in the file nor registered; a provincial organisation under the
    // registered national root without its code: rejected, with the line.
    let head = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号\n";
    for (row, problem) in [
        (
            "某某团支部,某某,团支部,没有这个团委,,,",
            "第2行：上级组织“没有这个团委”不存在",
        ),
        (
            "共青团上海市委员会,上海团市委,团的领导机关,共青团中央,,,",
            "第2行：省级组织“共青团上海市委员会”须填写省份代码",
        ),
    ] {
        let problems = registry::parse_org_file(&pool, format!("{head}{row}\n").into_bytes())
            .await
            .unwrap()
            .unwrap_err()
            .problems;
        assert_eq!(problems, vec![problem.to_string()]);
    }
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn progress_is_recorded_while_an_upload_runs_and_only_then(pool: PgPool) {
    use registry::uploads::{Claim, Submission, claim, progress, register, status};
    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let mut conn = pool.acquire().await.unwrap();
    let submission = Submission {
        uploader_id: uploader,
        template: schemas::TemplateKind::Members,
        sha256: "abc",
        bucket: "b",
        key: "k",
    };
    let r = register(&mut conn, submission).await.unwrap();
    assert!(r.new && r.enqueue);
    // Queued: nothing to show yet, and a stray progress write changes nothing.
    progress(&pool, r.upload_id, "validate", 10).await.unwrap();
    let s = status(&pool, r.upload_id).await.unwrap().unwrap();
    assert_eq!((s.stage, s.rows_done), (None, None));
    assert!(matches!(
        claim(&pool, r.upload_id, None).await.unwrap(),
        Claim::Claimed(_)
    ));
    progress(&pool, r.upload_id, "validate", 12_345)
        .await
        .unwrap();
    let s = status(&pool, r.upload_id).await.unwrap().unwrap();
    assert_eq!(
        (s.stage.as_deref(), s.rows_done),
        (Some("validate"), Some(12_345))
    );
    // Registering the same content again is the same upload.
    let again = register(&mut conn, submission).await.unwrap();
    assert_eq!(
        (again.upload_id, again.new, again.enqueue),
        (r.upload_id, false, false)
    );
}

/// A worker cut off from the database is taken over by another (its job delivered
/// again): the attempt number fences it. Reconnected, it can neither claim the upload
/// back, nor record an outcome, nor mark it failed; the attempt that took over can.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn an_attempt_taken_over_can_neither_claim_back_nor_record_nor_fail(pool: PgPool) {
    use registry::RegistryError;
    use registry::uploads::{
        Claim, Submission, UploadOutcome, claim, finish_upload, mark_failed, register, status,
    };
    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let mut conn = pool.acquire().await.unwrap();
    let r = register(
        &mut conn,
        Submission {
            uploader_id: uploader,
            template: schemas::TemplateKind::Members,
            sha256: "fence",
            bucket: "b",
            key: "k",
        },
    )
    .await
    .unwrap();
    let id = r.upload_id;
    let attempt_of = |c: Claim| match c {
        Claim::Claimed(c) => Some(c.attempt),
        _ => None,
    };
    let outcome = |attempt: i32| UploadOutcome {
        status: "succeeded",
        counts: None,
        file_error: None,
        timings: serde_json::json!({}),
        report_prefix: format!("reports/{id}/{attempt}/"),
        report_keys: vec![format!("reports/{id}/{attempt}/summary.json")],
        reports: Vec::new(),
        findings: String::new(),
        attempt: Some(attempt),
    };
    // The first worker claims attempt 1; its job is delivered again to a second worker,
    // which takes attempt 2.
    assert_eq!(attempt_of(claim(&pool, id, None).await.unwrap()), Some(1));
    assert_eq!(attempt_of(claim(&pool, id, None).await.unwrap()), Some(2));
    // The first, back: (what it tries, what it gets).
    assert!(matches!(
        claim(&pool, id, Some(1)).await.unwrap(),
        Claim::Superseded
    ));
    match finish_upload(&pool, id, &outcome(1)).await {
        Err(RegistryError::Superseded { upload_id, attempt }) => {
            assert_eq!((upload_id, attempt), (id, 1));
        }
        other => panic!("{other:?}"),
    }
    mark_failed(&pool, id, "x", Some(1)).await.unwrap();
    let s = status(&pool, id).await.unwrap().unwrap();
    assert_eq!((s.status.as_str(), s.attempts), ("running", 2));
    assert!(s.report_keys.is_empty(), "{s:?}");
    // The second records its outcome; then nothing more is claimed.
    finish_upload(&pool, id, &outcome(2)).await.unwrap();
    let s = status(&pool, id).await.unwrap().unwrap();
    assert_eq!(s.status, "succeeded");
    assert_eq!(s.report_keys, [format!("reports/{id}/2/summary.json")]);
    for after in [None, Some(1), Some(2)] {
        assert!(matches!(
            claim(&pool, id, after).await.unwrap(),
            Claim::Finished
        ));
    }
    mark_failed(&pool, id, "x", Some(2)).await.unwrap();
    assert_eq!(
        status(&pool, id).await.unwrap().unwrap().status,
        "succeeded"
    );
}

/// SPEC §5: one error never hides another. A row with any offline error is still asked
/// the database's questions about whichever of its keys is itself valid.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn database_checks_run_on_every_row_whose_key_is_valid(pool: PgPool) {
    use registry::{DbFinding, load};
    use schemas::{ErrorCode as E, Field};

    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let first = [Person::new(1), Person::new(2)];
    let v = validate_online(&pool, &first, GUANGDONG).await;
    assert_eq!(load(&pool, &v, uploader, None).await.unwrap().rows, 2);
    let taken = Person::new(2).auto_dev();
    // (the row, the database finding wanted)
    let table: Vec<(Person, Option<E>)> = vec![
        // Moved, and a bad phone: both shown.
        (
            Person::new(1)
                .branch(BRANCH_PARENS)
                .text(Field::Phone, "123"),
            Some(E::IdRegisteredElsewhere),
        ),
        // Someone else's number, and a bad ethnicity.
        (
            Person::new(5).dev(&taken).text(Field::Ethnicity, "火星族"),
            Some(E::DevNumberTaken),
        ),
        // Someone else's number and a bad ID number: the number is still taken.
        (
            {
                let p = Person::new(6).dev(&taken);
                let bad = p.id_bad_check();
                p.text(Field::IdNumber, &bad)
            },
            Some(E::DevNumberTaken),
        ),
        // Moved, with a badly formed number: the ID is still registered elsewhere.
        (
            Person::new(1)
                .branch(BRANCH_PARENS)
                .dev("2019ABC")
                .text(Field::Name, "李4"),
            Some(E::IdRegisteredElsewhere),
        ),
        // An unknown branch: not judged "elsewhere" (it may be a typo of its own).
        (Person::new(1).text(Field::Branch, "查无此支部"), None),
        // Its own number, a bad phone: nothing from the database.
        (Person::new(2).text(Field::Phone, "123"), None),
        // A bad number that nobody holds.
        (Person::new(7).dev("2019ABC"), None),
    ];
    let people: Vec<Person> = table.iter().map(|(p, _)| p.clone()).collect();
    let v = validate_online(&pool, &people, GUANGDONG).await;
    assert_eq!(v.rows, 0, "every row has an offline error");
    let loaded = load(&pool, &v, uploader, None).await.unwrap();
    let want: Vec<DbFinding> = table
        .iter()
        .enumerate()
        .filter_map(|(i, (_, code))| {
            code.map(|code| DbFinding {
                row: i as u32 + 2,
                code,
            })
        })
        .collect();
    assert_eq!(loaded.findings, want);
    assert_eq!(loaded.rows, 0);
}

/// Short names are compared normalised on both sides online too: stored with a
/// full-width digit and a zero-width space, typed plainly.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn short_name_suggestions_normalise_both_sides_online(pool: PgPool) {
    let csv = ORGS_CSV.replace(",初一1班,", ",初一\u{200B}１班,");
    import_orgs(&pool, &OrgTree::parse(csv.as_bytes()).unwrap())
        .await
        .unwrap();
    let db = registry::DbOrgs::for_uploader(&pool, GUANGDONG)
        .await
        .unwrap()
        .unwrap();
    let got = off_runtime(move || {
        use pipeline::orgs::OrgResolver;
        db.resolve(&["初一1班"]).unwrap()
    })
    .await;
    assert_eq!(
        got[0].as_ref().unwrap_err().first().map(String::as_str),
        Some(BRANCH)
    );
}

/// The checks run on a second connection a chunk of rows at a time, beside the COPY of
/// the chunk checked before: every chunk size gives the same findings and leaves the same
/// people (each load seen inside its own transaction, then rolled back).
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn every_check_chunk_size_gives_the_same_load(pool: PgPool) {
    use registry::load::load_begin_telling;
    use registry::{DbFinding, load};
    use schemas::{ErrorCode as E, Field, TemplateKind::Members};

    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let first = [Person::new(1), Person::new(2), Person::new(3)];
    let v = validate_online(&pool, &first, GUANGDONG).await;
    assert_eq!(load(&pool, &v, uploader, None).await.unwrap().rows, 3);
    let taken = Person::new(2).auto_dev();
    let second = [
        Person::new(10),
        // Moved to another branch.
        Person::new(1).branch(BRANCH_PARENS),
        // Someone else's number.
        Person::new(11).dev(&taken),
        // Stored, unchanged.
        Person::new(3),
        Person::new(12),
        // An offline error too: checked, never written.
        Person::new(5).dev(&taken).text(Field::Ethnicity, "火星族"),
        Person::new(14),
    ];
    let batch = validate_online(&pool, &second, GUANGDONG).await;
    let (keys, source) = validate_online_keys(&pool, Members, &second, GUANGDONG).await;
    let mut answers = Vec::new();
    // Each chunk size, with the text made beforehand (`prepare`, coming: None) and
    // coming beside the load in parts of 1, 2 and many rows (`keys`, then
    // `LoadSource::coming`).
    for (rows, coming) in [1, 2, 3, 1 << 16]
        .into_iter()
        .flat_map(|r| [(r, None), (r, Some(1)), (r, Some(2)), (r, Some(1 << 14))])
    {
        let (b, text) = match coming {
            Some(part) => (
                keys.clone(),
                Some(source.clone().in_parts_of(part).coming()),
            ),
            None => (batch.clone(), None),
        };
        let b = b.checked_in_chunks_of(rows);
        let (tell, told) = tokio::sync::oneshot::channel();
        let mut pending = load_begin_telling(&pool, &b, uploader, None, Some(tell), text)
            .await
            .unwrap();
        assert_eq!(
            told.await.unwrap(),
            pending.loaded().findings,
            "told before the writes end: the same findings ({rows} rows at a time)"
        );
        let people: Vec<(String, Option<String>, Option<i64>)> =
            sqlx::query_as("SELECT id_number, dev_number, branch_id FROM people ORDER BY 1")
                .fetch_all(pending.conn())
                .await
                .unwrap();
        let whole = whole_rows(pending.conn()).await;
        answers.push((rows, coming, pending.loaded().clone(), people, whole));
    }
    let (_, _, loaded, people, whole) = &answers[0];
    assert_eq!(
        loaded.findings,
        vec![
            DbFinding {
                row: 3,
                code: E::IdRegisteredElsewhere
            },
            DbFinding {
                row: 4,
                code: E::DevNumberTaken
            },
            DbFinding {
                row: 7,
                code: E::DevNumberTaken
            },
        ]
    );
    assert_eq!(loaded.rows, 3, "persons 10, 12 and 14 are new");
    assert_eq!(people.len(), 6);
    for (rows, coming, l, p, w) in &answers[1..] {
        assert_eq!(
            (l, p, w),
            (loaded, people, whole),
            "checked {rows} rows at a time, text coming in parts of {coming:?}"
        );
    }
    // Keys alone, with no text coming, are refused before anything is written.
    let refused = load_begin_telling(&pool, &keys, uploader, None, None, None).await;
    assert!(
        matches!(refused, Err(registry::LoadError::NoText)),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM people").await,
        3,
        "each load was rolled back"
    );
}

/// A branch renamed between validation and load no longer names an organisation: its
/// rows are refused at the load (org_not_found), told with the other findings, and
/// nobody else's row is held back by it, whether checked in one chunk or several.
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn a_branch_renamed_after_validation_refuses_its_rows_at_the_load(pool: PgPool) {
    use registry::DbFinding;
    use registry::load::load_begin_telling;
    use schemas::ErrorCode as E;

    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let taken = Person::new(9).auto_dev();
    registry::load(
        &pool,
        &validate_online(&pool, &[Person::new(9)], GUANGDONG).await,
        uploader,
        None,
    )
    .await
    .unwrap();
    let roster = [
        Person::new(1),
        Person::new(2).branch(BRANCH_PARENS),
        Person::new(3).dev(&taken),
        Person::new(4).branch(BRANCH_PARENS),
    ];
    let batch = validate_online(&pool, &roster, GUANGDONG).await;
    sqlx::query("UPDATE orgs SET name_key = name_key || '（旧）' WHERE full_name = $1")
        .bind(BRANCH_PARENS)
        .execute(&pool)
        .await
        .unwrap();
    for rows in [1, 1 << 16] {
        let b = batch.clone().checked_in_chunks_of(rows);
        let (tell, told) = tokio::sync::oneshot::channel();
        let pending = load_begin_telling(&pool, &b, uploader, None, Some(tell), None)
            .await
            .unwrap();
        let expected = vec![
            DbFinding {
                row: 3,
                code: E::OrgNotFound,
            },
            DbFinding {
                row: 4,
                code: E::DevNumberTaken,
            },
            DbFinding {
                row: 5,
                code: E::OrgNotFound,
            },
        ];
        assert_eq!(told.await.unwrap(), expected, "{rows} rows at a time");
        assert_eq!(pending.loaded().findings, expected);
        assert_eq!(pending.loaded().rows, 1, "only person 1 is written");
    }
}

/// Both templates load the same people and posts whether the COPY text is made before
/// the load (`LoadBatch::prepare`) or beside it (`LoadBatch::keys`, then
/// `LoadSource::coming`, here in parts of 2 rows): template A members and cadres, template B
/// posts (each load seen inside its own transaction, then rolled back).
#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_text_made_beside_the_load_loads_what_the_prepared_text_loads(pool: PgPool) {
    use registry::load::load_begin_telling;
    use schemas::Field;
    use schemas::TemplateKind::{self, Cadres, Members};

    import_orgs(&pool, &tree()).await.unwrap();
    let uploader = org_id(&pool, GUANGDONG).await;
    let cadre = |p: Person| {
        p.text(Field::IsCadre, "是")
            .text(Field::Duty, "书记")
            .text(Field::AppointedOn, "2024-09")
            .text(Field::CadreNature, "兼职")
            .text(Field::PartyCommitteeMember, "否")
    };
    let files: [(TemplateKind, Vec<Person>); 2] = [
        (
            Members,
            vec![
                Person::new(1),
                cadre(Person::new(2)),
                Person::new(3).text(Field::Name, "李四"),
                cadre(Person::new(4)).branch(BRANCH_PARENS),
            ],
        ),
        (
            Cadres,
            vec![Person::new(5), Person::new(6).text(Field::Duty, "副书记")],
        ),
    ];
    for (template, people) in files {
        let prepared = validate_online_as(&pool, template, &people, GUANGDONG).await;
        let (keys, source) = validate_online_keys(&pool, template, &people, GUANGDONG).await;
        let mut seen = Vec::new();
        for (batch, text) in [
            (prepared, None),
            (keys, Some(source.in_parts_of(2).coming())),
        ] {
            let mut pending = load_begin_telling(&pool, &batch, uploader, None, None, text)
                .await
                .unwrap();
            assert_eq!(pending.loaded().rows, people.len() as u64, "{template:?}");
            seen.push(whole_rows(pending.conn()).await);
        }
        let posts = seen[0].iter().filter(|r| r.contains("\"org_id\"")).count();
        assert_eq!(posts, 2, "{template:?}: two posts in {:#?}", seen[0]);
        assert_eq!(seen[0], seen[1], "{template:?}");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM people").await, 0);
}
