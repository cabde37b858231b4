//! End-to-end tests of the `roster` command line: exit statuses of SPEC §11, reports on
//! disk, and the bundled sample data that README.md runs.

use std::path::{Path, PathBuf};
use std::process::Command;

mod hosts;
mod import;
mod logs;
mod offline;
mod resilience;
mod s3;
mod serve;
mod service;

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

/// Whether a load is COPYing new people into the test's database right now.
async fn copying_people(pool: &sqlx::PgPool) -> bool {
    let db = pool.connect_options().get_database().unwrap().to_string();
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = $1 AND state = 'active' AND query LIKE 'COPY people%'",
    )
    .bind(&db)
    .fetch_one(pool)
    .await
    .unwrap();
    active > 0
}

async fn people(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `roster import FILE` as the sample's uploader, reports into `out`.
fn import_as_uploader(url: &str, file: &Path, out: &Path) -> (i32, String) {
    with_db(
        url,
        &[
            "import",
            file.to_str().unwrap(),
            "--uploader",
            UPLOADER,
            "--out",
            out.to_str().unwrap(),
        ],
    )
}

async fn setup_db(url: &str) {
    assert_eq!(with_db(url, &["migrate"]).0, 0);
    let orgs = root().join("sample-data/orgs.csv");
    assert_eq!(
        with_db(url, &["orgs", "import", orgs.to_str().unwrap()]).0,
        0
    );
}
