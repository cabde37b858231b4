//! Completion statistics (SPEC §8) on their edges, each test in a fresh database: the
//! four standards, who counts, roll-ups, and snapshots replaced atomically.

use chrono::NaiveDate;
use registry::import_orgs;
use registry::stats::{Mode, run};
use sqlx::PgPool;

use crate::helpers::*;
use crate::org_id;

const SHENZHEN: &str = "共青团深圳市委员会";
const BEIJING: &str = "共青团北京市委员会";
const BEIJING_SCHOOL: &str = "北京市某中学团委";
const XINJIANG: &str = "共青团新疆维吾尔自治区委员会";

fn night() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

/// A stored person: every field filled unless `missing` names one (set to NULL).
#[derive(Clone, Copy)]
struct P {
    seq: u32,
    branch: Option<&'static str>,
    missing: Option<&'static str>,
    joined: &'static str,
    dev: bool,
    verified: bool,
}

fn member(seq: u32, branch: &'static str) -> P {
    P {
        seq,
        branch: Some(branch),
        missing: None,
        joined: "2018-05-01",
        dev: true,
        verified: false,
    }
}

fn cadre_only(seq: u32) -> P {
    P {
        branch: None,
        ..member(seq, "")
    }
}

impl P {
    fn lacking(self, field: &'static str) -> P {
        P {
            missing: Some(field),
            ..self
        }
    }
    fn id(&self) -> String {
        format!("{:017}X", 44_000_000_000_000_000u64 + self.seq as u64)
    }
}

async fn store(pool: &PgPool, p: P) {
    let branch = match p.branch {
        Some(b) => Some(org_id(pool, b).await),
        None => None,
    };
    let null_if = |field: &str, v: &str| (p.missing != Some(field)).then(|| v.to_string());
    sqlx::query(
        "INSERT INTO people (id_number, name, ethnicity, political_status, joined_on,
             joined_precision, dev_number, education, occupation, phone, branch_id, verification)
         VALUES ($1, $2, $3, $4, $5::date, 'day', $6, $7, $8, $9, $10, $11)",
    )
    .bind(p.id())
    .bind("张三")
    .bind(null_if("ethnicity", "汉族"))
    .bind(null_if("political_status", "共青团员"))
    .bind(null_if("joined_on", p.joined))
    .bind(p.dev.then(|| format!("2018{:08}", p.seq)))
    .bind(null_if("education", "大学本科"))
    .bind(null_if("occupation", "学生"))
    .bind(null_if("phone", "13800138000"))
    .bind(branch)
    .bind(if p.verified { "已认证" } else { "未认证" })
    .execute(pool)
    .await
    .unwrap();
}

/// A post; `complete` false leaves 任职时间 empty.
async fn post(pool: &PgPool, p: P, org_name: &str, complete: bool) {
    let org_id = org_id(pool, org_name).await;
    sqlx::query(
        "INSERT INTO cadre_posts (id_number, org_id, duty, appointed_on, appointed_precision, nature)
         VALUES ($1, $2, '书记', $3, 'month', '专职')",
    )
    .bind(p.id())
    .bind(org_id)
    .bind(complete.then(|| NaiveDate::from_ymd_opt(2024, 9, 1).unwrap()))
    .execute(pool)
    .await
    .unwrap();
}

/// (complete, people_complete, people_total, cadres_complete, cadres_total) of an org.
type Own = (bool, i32, i32, i32, i32);

async fn own(pool: &PgPool, name: &str) -> Own {
    sqlx::query_as(
        "SELECT complete, people_complete, people_total, cadres_complete, cadres_total
         FROM org_stats WHERE snapshot_date = $1 AND org_id = $2",
    )
    .bind(night())
    .bind(org_id(pool, name).await)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn the_four_standards_on_their_edges(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    // 团支部: exactly 3 complete (one verified, two not: verification does not matter).
    for verified in [true, false, false] {
        store(
            &pool,
            P {
                verified,
                ..member(next(), BRANCH)
            },
        )
        .await;
    }
    // 团支部: 3 people, one lacking a required field.
    store(&pool, member(next(), BRANCH_PARENS)).await;
    store(&pool, member(next(), BRANCH_PARENS)).await;
    store(&pool, member(next(), BRANCH_PARENS).lacking("occupation")).await;
    // 新疆 requires a development number from 2016: joined 2016-05 without one is
    // incomplete there, complete in 北京 (required from 2017).
    for (branch, _) in [(XINJIANG_BRANCH, ()), (BEIJING_BRANCH, ())] {
        for _ in 0..2 {
            store(&pool, member(next(), branch)).await;
        }
        let early = P {
            joined: "2016-05-01",
            dev: false,
            ..member(next(), branch)
        };
        store(&pool, early).await;
    }
    // 团委: 2 complete cadres vs 1.
    for _ in 0..2 {
        let c = cadre_only(next());
        store(&pool, c).await;
        post(&pool, c, SCHOOL, true).await;
    }
    let lone = cadre_only(next());
    store(&pool, lone).await;
    post(&pool, lone, BEIJING_SCHOOL, true).await;
    // 团的领导机关: 广东 has one complete cadre; 深圳 one complete and one whose post lacks
    // 任职时间; 北京 has none.
    let gd = cadre_only(next());
    store(&pool, gd).await;
    post(&pool, gd, GUANGDONG, true).await;
    let (ok, bad) = (cadre_only(next()), cadre_only(next()));
    for c in [ok, bad] {
        store(&pool, c).await;
    }
    post(&pool, ok, SHENZHEN, true).await;
    post(&pool, bad, SHENZHEN, false).await;

    run(&pool, night(), Mode::Replace).await.unwrap().unwrap();

    let cases: [(&str, Own); 10] = [
        (BRANCH, (true, 3, 3, 0, 0)),
        (BRANCH_PARENS, (false, 2, 3, 0, 0)),
        (XINJIANG_BRANCH, (false, 2, 3, 0, 0)),
        (BEIJING_BRANCH, (true, 3, 3, 0, 0)),
        (SCHOOL, (true, 2, 2, 2, 2)),
        (BEIJING_SCHOOL, (false, 1, 1, 1, 1)),
        (GUANGDONG, (true, 1, 1, 1, 1)),
        (SHENZHEN, (false, 1, 2, 1, 2)),
        (BEIJING, (false, 0, 0, 0, 0)),
        (XINJIANG, (false, 0, 0, 0, 0)),
    ];
    for (name, want) in cases {
        assert_eq!(own(&pool, name).await, want, "{name}");
    }
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn a_member_who_is_a_cadre_counts_once_and_by_both_templates(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    for seq in 1..=3 {
        store(&pool, member(seq, BRANCH)).await;
    }
    // The branch's secretary is one of its members: one person there, and a cadre.
    post(&pool, member(1, BRANCH), BRANCH, true).await;
    assert_eq!(
        run(&pool, night(), Mode::Replace)
            .await
            .unwrap()
            .unwrap()
            .people,
        3
    );
    assert_eq!(own(&pool, BRANCH).await, (true, 3, 3, 1, 1));
    // Their post elsewhere lacks 任职时间: the person is incomplete everywhere.
    post(&pool, member(1, BRANCH), SCHOOL, false).await;
    run(&pool, night(), Mode::Replace).await.unwrap();
    assert_eq!(own(&pool, BRANCH).await, (false, 2, 3, 0, 1));
    assert_eq!(own(&pool, SCHOOL).await, (false, 0, 1, 0, 1));
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn roll_ups_cover_each_subtree(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    for seq in 1..=3 {
        store(&pool, member(seq, BRANCH)).await;
    }
    store(&pool, member(4, BRANCH_PARENS).lacking("phone")).await;
    run(&pool, night(), Mode::Replace).await.unwrap();
    // 广东: 深圳团市委, the school's 团委, two branches below; one branch complete.
    let (people, complete, orgs, orgs_complete, by_total, by_complete): (
        i64,
        i64,
        i32,
        i32,
        Vec<i32>,
        Vec<i32>,
    ) = sqlx::query_as(
        "SELECT subtree_people_total, subtree_people_complete, sub_orgs_total,
                sub_orgs_complete, sub_total_by_category, sub_complete_by_category
         FROM org_stats WHERE snapshot_date = $1 AND org_id = $2",
    )
    .bind(night())
    .bind(org_id(&pool, GUANGDONG).await)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((people, complete, orgs, orgs_complete), (4, 3, 4, 1));
    assert_eq!(
        by_total,
        vec![1, 1, 0, 0, 2],
        "leading, committee, …, branch"
    );
    assert_eq!(by_complete, vec![0, 0, 0, 0, 1]);

    // The export: 广东 and everything below, in tree order, incomplete rows marked.
    let (date, rows) = registry::stats::export_rows(&pool, GUANGDONG, None)
        .await
        .unwrap();
    assert_eq!(date, night());
    let names: Vec<&str> = rows.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names[0], GUANGDONG);
    assert_eq!(names.len(), 5);
    let branch = rows.iter().find(|r| r.full_name == BRANCH).unwrap();
    assert!(
        branch.complete && branch.people_complete == 3 && branch.parent.as_deref() == Some(SCHOOL)
    );
    let dir = tempfile::tempdir().unwrap();
    for file in ["s.xlsx", "s.csv"] {
        registry::stats::write_export(&rows, &dir.path().join(file)).unwrap();
    }
    use calamine::{Reader, open_workbook_auto};
    let mut wb = open_workbook_auto(dir.path().join("s.xlsx")).unwrap();
    let sheet = wb.worksheet_range("完成情况").unwrap();
    let xlsx: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(
        xlsx[0],
        registry::stats::EXPORT_HEADER.map(String::from).to_vec()
    );
    assert_eq!(xlsx.len(), 1 + rows.len());
    assert!(
        xlsx.contains(
            &[BRANCH, "团支部", SCHOOL, "是", "3", "3", "0", "0"]
                .map(String::from)
                .to_vec()
        ),
        "{xlsx:?}"
    );
    let csv = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    assert!(csv.starts_with("\u{feff}组织全称,组织类别,上级组织全称,是否完成,完整人数,总人数,下级组织完成数,下级组织总数"));
    assert!(
        csv.contains(&format!("{BRANCH},团支部,{SCHOOL},是,3,3,0,0")),
        "{csv}"
    );
}

#[sqlx::test(migrator = "registry::MIGRATOR")]
async fn re_running_a_date_replaces_its_snapshot_and_the_nightly_run_happens_once(pool: PgPool) {
    import_orgs(&pool, &tree()).await.unwrap();
    for seq in 1..=2 {
        store(&pool, member(seq, BRANCH)).await;
    }
    let yesterday = night().pred_opt().unwrap();
    run(&pool, yesterday, Mode::Replace).await.unwrap().unwrap();
    run(&pool, night(), Mode::Replace).await.unwrap().unwrap();
    assert!(!own(&pool, BRANCH).await.0);
    // The nightly tick: the date is done, nothing happens.
    assert_eq!(run(&pool, night(), Mode::OncePerDate).await.unwrap(), None);
    store(&pool, member(3, BRANCH)).await;
    assert_eq!(run(&pool, night(), Mode::OncePerDate).await.unwrap(), None);
    assert!(!own(&pool, BRANCH).await.0, "not recomputed");
    // A manual re-run replaces the date, keeps the other.
    run(&pool, night(), Mode::Replace).await.unwrap().unwrap();
    assert!(own(&pool, BRANCH).await.0);
    let (snapshots, partitions, rows): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM stats_snapshots),
                (SELECT count(*) FROM pg_inherits WHERE inhparent = 'org_stats'::regclass),
                (SELECT count(*) FROM org_stats)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((snapshots, partitions, rows), (2, 2, 2 * 15));
}
