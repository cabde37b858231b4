//! End-to-end tests of the `roster` command line: exit statuses of SPEC §11, reports on
//! disk, and the bundled sample data that README.md runs.

use std::path::{Path, PathBuf};
use std::process::Command;

const AS_OF: &str = "2026-11-21";
const UPLOADER: &str = "共青团广东省委员会";

fn roster() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roster"));
    c.env("ROSTER_AS_OF", AS_OF).env_remove("RUST_LOG");
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn validate(file: &Path, orgs: &Path, template: &str, out: &Path) -> (i32, String) {
    let o = roster()
        .args(["validate"])
        .arg(file)
        .arg("--orgs")
        .arg(orgs)
        .args(["--uploader", UPLOADER, "--template", template, "--out"])
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn sample_then_validate_exits_by_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.xlsx");
    let orgs = dir.path().join("orgs.csv");
    for (rate, want) in [(0.0, 0), (0.1, 1)] {
        let o = roster()
            .args([
                "sample",
                "--rows",
                "300",
                "--error-rate",
                &rate.to_string(),
                "--out",
            ])
            .arg(&file)
            .arg("--orgs-out")
            .arg(&orgs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = dir.path().join(format!("reports-{rate}"));
        let (code, text) = validate(&file, &orgs, "members", &out);
        assert_eq!(code, want, "{text}");
        let s = summary(&out);
        assert_eq!(s["rows"]["total"], 300);
        assert_eq!(s["verdict"], "accepted");
        if want == 1 {
            assert_eq!(
                s["rows"]["with_errors"].as_u64().unwrap() + s["rows"]["valid"].as_u64().unwrap(),
                300
            );
            assert!(out.join("summary.xlsx").exists());
        }
    }
}

#[test]
fn a_rejected_file_exits_2_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("roster.xlsx");
    std::fs::write(&bad, "姓名,身份证号码\n").unwrap();
    let out = dir.path().join("reports");
    let (code, text) = validate(&bad, &root().join("sample-data/orgs.csv"), "members", &out);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("file_unreadable"), "{text}");
    assert_eq!(summary(&out)["verdict"], "rejected");
}

#[test]
fn a_mixed_template_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let (code, text) = validate(
        &root().join("sample-data/cadres.xlsx"),
        &root().join("sample-data/orgs.csv"),
        "members",
        &out,
    );
    assert_eq!(code, 2, "{text}");
    assert_eq!(summary(&out)["file_error"]["code"], "template_mixed");
}

#[test]
fn an_unknown_uploader_or_bad_org_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = roster()
        .args(["validate"])
        .arg(root().join("sample-data/members.xlsx"))
        .arg("--orgs")
        .arg(root().join("sample-data/orgs.csv"))
        .args(["--uploader", "不存在的团委", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("不存在的团委"));
    let orgs = dir.path().join("orgs.csv");
    std::fs::write(
        &orgs,
        "组织全称,组织简称,组织类别,上级组织全称\nA,A,团小组,\n",
    )
    .unwrap();
    let (code, text) = validate(
        &root().join("sample-data/members.xlsx"),
        &orgs,
        "members",
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(text.contains("团小组"), "{text}");
}

/// The bundled samples README.md runs: every mistake file finds every offline code.
#[test]
fn bundled_samples_validate_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let orgs = root().join("sample-data/orgs.csv");
    for (file, template, want) in [
        ("members.xlsx", "members", 1),
        ("cadres.xlsx", "cadres", 1),
        ("members-every-mistake.xlsx", "members", 1),
    ] {
        let out = dir.path().join(file);
        let (code, text) = validate(
            &root().join("sample-data").join(file),
            &orgs,
            template,
            &out,
        );
        assert_eq!(code, want, "{file}: {text}");
    }
    let s = summary(&dir.path().join("members-every-mistake.xlsx"));
    let seen: Vec<&str> = s["counts_by_code"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for code in schemas::ErrorCode::ALL {
        if code.level() == schemas::Level::Row && !code.needs_database() {
            assert!(
                seen.contains(&code.code()),
                "{code} missing from the every-mistake sample"
            );
        }
    }
}

/// The URL of the throwaway database `#[sqlx::test]` made, for child processes.
fn url_of(pool: &sqlx::PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (server, _) = base.rsplit_once('/').expect("a database in DATABASE_URL");
    format!(
        "{server}/{}",
        pool.connect_options().get_database().expect("a database")
    )
}

fn with_db(url: &str, args: &[&str]) -> (i32, String) {
    let o = roster()
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

async fn people(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(pool)
        .await
        .unwrap()
}

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
    let import = |out: &Path| {
        with_db(
            &url,
            &[
                "import",
                file.to_str().unwrap(),
                "--uploader",
                UPLOADER,
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
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
