//! `roster migrate`, `orgs import` and `import` against a throwaway database: a load
//! happens once, a load killed mid-COPY or short of disk leaves nothing, racing imports
//! have one winner, hostile organisation names get a workbook each.

use std::path::Path;
use std::process::Command;

use super::*;

#[sqlx::test(migrations = false)]
async fn migrate_orgs_import_and_import_load_once(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("sample-data");
    assert_eq!(with_db(&url, &["migrate"]).0, 0);
    assert_eq!(with_db(&url, &["migrate"]).0, 0, "migrate is idempotent");
    let orgs = data.join("orgs.csv");
    let (code, text) = with_db(&url, &["orgs", "import", orgs.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let file = data.join("members.xlsx");
    let out = dir.path().join("r1");
    let import = |out: &Path| import_as_uploader(&url, &file, out);
    let (code, text) = import(&out);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("已导入 294 人"), "{text}");
    assert_eq!(summary(&out)["rows"]["valid"], 294);
    assert_eq!(people(&pool).await, 294);
    // Again: nothing changes, the same verdicts.
    let out2 = dir.path().join("r2");
    let (code, text) = import(&out2);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("已导入 0 人"), "{text}");
    assert_eq!(
        summary(&out2)["counts_by_code"],
        summary(&out)["counts_by_code"]
    );
    assert_eq!(people(&pool).await, 294);
    // An unknown uploader is refused before anything is read.
    let (code, text) = with_db(
        &url,
        &[
            "import",
            file.to_str().unwrap(),
            "--uploader",
            "没有这个团委",
        ],
    );
    assert_eq!(code, 2);
    assert!(text.contains("没有这个团委"), "{text}");
}

/// A child killed with SIGKILL while its COPY streams leaves none of the upload; running
/// it again loads all of it.
#[sqlx::test(migrations = false)]
async fn a_load_killed_during_copy_leaves_nothing(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.xlsx");
    let orgs = dir.path().join("orgs.csv");
    let o = roster()
        .args(["sample", "--rows", "150000", "--error-rate", "0", "--out"])
        .arg(&file)
        .arg("--orgs-out")
        .arg(&orgs)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(with_db(&url, &["migrate"]).0, 0);
    assert_eq!(
        with_db(&url, &["orgs", "import", orgs.to_str().unwrap()]).0,
        0
    );
    let args = |out: &str| {
        vec![
            "import".to_string(),
            file.to_str().unwrap().to_string(),
            "--uploader".into(),
            UPLOADER.into(),
            "--out".into(),
            dir.path().join(out).to_str().unwrap().to_string(),
        ]
    };
    let mut child = roster()
        .env("DATABASE_URL", &url)
        .args(args("r1"))
        .spawn()
        .unwrap();
    let db = pool.connect_options().get_database().unwrap().to_string();
    let mut seen_copy = false;
    // Time-based: on a busy machine reading and validating take a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        if copying_people(&pool).await {
            seen_copy = true;
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "import ended before its COPY was seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(seen_copy, "never saw the COPY");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server notices the dead connection and rolls back.
    for _ in 0..200 {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY people%'",
        )
        .bind(&db)
        .fetch_one(&pool)
        .await
        .unwrap();
        if busy == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(people(&pool).await, 0, "a killed load leaves nothing");
    let o = roster()
        .env("DATABASE_URL", &url)
        .args(args("r2"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(people(&pool).await, 150_000);
}

/// Two uploads racing for one development number and one person: exactly one wins each,
/// the other row gets the right code, nothing deadlocks.
#[sqlx::test(migrations = false)]
async fn racing_imports_have_exactly_one_winner(pool: sqlx::PgPool) {
    use pipeline::rules::identity::id_check_char;
    use rust_xlsxwriter::Workbook;
    let url = url_of(&pool);
    setup_db(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let id = |seq: u32| {
        let first17 = format!("44010320050101{seq:03}");
        format!("{first17}{}", id_check_char(&first17))
    };
    let branch_a = "广州市荔湾区第1中学初一1班团支部";
    let branch_b = "广州市荔湾区第1中学初一2班团支部";
    // File a: P in branch a with number N. File b: P in branch b, and Q with number N.
    let files = [
        (
            "a.xlsx",
            vec![
                (id(1), branch_a, "201944900001"),
                (id(3), branch_a, "201944900003"),
            ],
        ),
        (
            "b.xlsx",
            vec![
                (id(1), branch_b, "201944900002"),
                (id(2), branch_b, "201944900001"),
            ],
        ),
    ];
    for (name, people) in &files {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let t = schemas::TemplateKind::Members.template();
        for (i, c) in t.columns.iter().enumerate() {
            ws.write_string(0, i as u16, c.field.header()).unwrap();
        }
        for (r, (pid, branch, dev)) in people.iter().enumerate() {
            let values = [
                "张三",
                pid,
                "汉族",
                "共青团员",
                "2019-05",
                dev,
                "普通高中在读",
                "学生",
                "13800138000",
                branch,
                "否",
            ];
            for (i, v) in values.iter().enumerate() {
                ws.write_string(1 + r as u32, i as u16, *v).unwrap();
            }
        }
        wb.save(dir.path().join(name)).unwrap();
    }
    let spawn = |name: &str| {
        roster()
            .env("DATABASE_URL", &url)
            .arg("import")
            .arg(dir.path().join(name))
            .args(["--uploader", UPLOADER, "--out"])
            .arg(dir.path().join(format!("out-{name}")))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a.xlsx"), spawn("b.xlsx"));
    let (ca, cb) = (a.wait().unwrap().code(), b.wait().unwrap().code());
    let sa = summary(&dir.path().join("out-a.xlsx"));
    let sb = summary(&dir.path().join("out-b.xlsx"));
    let codes = |s: &serde_json::Value| -> Vec<String> {
        let mut c: Vec<String> = s["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap().to_string())
            .collect();
        c.sort();
        c
    };
    let (ea, eb) = (codes(&sa), codes(&sb));
    // Whoever loaded first won both P and N; the other file's two rows are refused.
    let a_won = ea.is_empty();
    if a_won {
        assert_eq!((ca, cb), (Some(0), Some(1)));
        assert_eq!(eb, vec!["dev_number_taken", "id_registered_elsewhere"]);
    } else {
        assert_eq!((ca, cb), (Some(1), Some(0)));
        assert!(eb.is_empty(), "{eb:?}");
        // P's row in a also names N, now Q's: both codes on that row.
        assert_eq!(ea, vec!["dev_number_taken", "id_registered_elsewhere"]);
    }
    let holders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM people WHERE dev_number = '201944900001'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(holders, 1);
    let p_branches: i64 =
        sqlx::query_scalar("SELECT count(*) FROM memberships WHERE id_number = $1")
            .bind(id(1))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(p_branches, 1);
}

/// A small tmpfs mounted for a test, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mounting a tmpfs (the tests run as root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// The reports' file system full while `roster import` writes them: the load is not
/// committed, the upload says `failed` and why, nothing is left half-written; with room
/// again the same import ends as a single clean run would.
#[sqlx::test(migrations = false)]
async fn the_report_folder_file_system_full_leaves_nothing_loaded(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let file = root().join("sample-data/members-every-mistake.xlsx");
    let full = Tmpfs::mount("48k");
    let out = full.0.path().join("reports");
    let (code, text) = import_as_uploader(&url, &file, &out);
    assert_eq!(code, 2, "an error, not a verdict: {text}");
    assert!(text.contains("No space left"), "{text}");
    assert_eq!(people(&pool).await, 0, "nothing loaded");
    let (status, failure): (String, Option<String>) =
        sqlx::query_as("SELECT status, failure FROM uploads")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(failure.unwrap_or_default().contains("导入失败"));
    let left: Vec<_> = std::fs::read_dir(full.0.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing half-written: {left:?}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let (code, text) = import_as_uploader(&url, &file, &out);
    assert_eq!(code, 1, "{text}");
    let s = summary(&out);
    assert_eq!(people(&pool).await, s["rows"]["valid"].as_i64().unwrap());
    let status: String = sqlx::query_scalar("SELECT status FROM uploads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "succeeded");
}

/// The three examples of issue 14 through the commands: an organisation named with 99
/// Chinese characters, and two whose names differ only in `/` and `_`, each get their
/// own workbook from `validate` and `import`, listed with their organisation.
#[sqlx::test(migrations = false)]
async fn hostile_org_names_get_a_workbook_each_from_validate_and_import(pool: sqlx::PgPool) {
    use rust_xlsxwriter::Workbook;
    let url = url_of(&pool);
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{}团支部", "广".repeat(96));
    let slash = "广州市一中/实验班团支部";
    let under = "广州市一中_实验班团支部";
    let mut orgs = std::fs::read_to_string(root().join("sample-data/orgs.csv")).unwrap();
    for (i, name) in [long.as_str(), slash, under].iter().enumerate() {
        orgs.push_str(&format!("{name},恶意名{i},团支部,{UPLOADER},,,\n"));
    }
    let orgs_file = dir.path().join("orgs.csv");
    std::fs::write(&orgs_file, &orgs).unwrap();
    // One row per branch, each with a bad phone so each gets a workbook.
    use schemas::Field;
    let template = schemas::TemplateKind::Members.template();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, col) in template.columns.iter().enumerate() {
        ws.write_string(0, c as u16, col.field.header()).unwrap();
    }
    for (r, branch) in [long.as_str(), slash, under].iter().enumerate() {
        let first17 = format!("44030520080615{:03}", r + 1);
        let id = format!(
            "{first17}{}",
            pipeline::rules::identity::id_check_char(&first17)
        );
        for (c, col) in template.columns.iter().enumerate() {
            let v = match col.field {
                Field::Name => "张三",
                Field::IdNumber => id.as_str(),
                Field::Ethnicity => "汉族",
                Field::PoliticalStatus => "共青团员",
                Field::JoinedOn => "2022-05",
                Field::Education => "初中在读",
                Field::Phone => "123",
                Field::Occupation => "学生",
                Field::Branch => branch,
                Field::IsCadre => "否",
                _ => continue,
            };
            ws.write_string((r + 1) as u32, c as u16, v).unwrap();
        }
    }
    let roster_file = dir.path().join("hostile.xlsx");
    wb.save(&roster_file).unwrap();

    let check = |out: &Path| {
        let s = summary(out);
        let books: Vec<(String, String)> = s["workbooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["file"].as_str().unwrap().to_string(),
                    w["organisation"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for name in [long.as_str(), slash, under] {
            let (file, _) = books
                .iter()
                .find(|(_, o)| o == name)
                .unwrap_or_else(|| panic!("no workbook for {name}: {books:?}"));
            assert!(out.join(file).is_file(), "{file}");
            assert!(file.len() <= 255);
        }
    };
    let out = dir.path().join("offline");
    let (code, text) = validate(&roster_file, &orgs_file, "members", &out);
    assert_eq!(code, 1, "{text}");
    check(&out);

    assert_eq!(with_db(&url, &["migrate"]).0, 0);
    let (code, text) = with_db(&url, &["orgs", "import", orgs_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let out = dir.path().join("online");
    let (code, text) = import_as_uploader(&url, &roster_file, &out);
    assert_eq!(code, 1, "{text}");
    check(&out);
    // The upload's record lists each workbook with its organisation.
    let listed: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.name, o.full_name FROM upload_reports r JOIN orgs o ON o.id = r.org_id
         WHERE r.kind = 'organisation'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for name in [long.as_str(), slash, under] {
        assert_eq!(
            listed.iter().filter(|(_, o)| o == name).count(),
            1,
            "{name}: {listed:?}"
        );
    }
}
