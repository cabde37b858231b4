//! The service end to end: a real S3-compatible server (`s3s-fs`) on a free loopback port,
//! a fresh database per test, and `roster submit` / `worker` / `status` / `reports` as
//! child processes talking to both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::s3::{BUCKET, S3};
use super::{UPLOADER, root, roster, setup_db, url_of};

/// A `roster` command configured for an S3 server and a database.
pub(crate) trait RosterFor {
    fn roster(&self, url: &str) -> Command;
}

impl RosterFor for S3 {
    fn roster(&self, url: &str) -> Command {
        let mut c = roster();
        c.env("DATABASE_URL", url)
            .env("ROSTER_BUCKET", BUCKET)
            .envs(self.env())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        c
    }
}

/// A worker process, killed on drop.
pub(crate) struct Worker(pub(crate) Child);

impl Worker {
    pub(crate) fn start(s3: &S3, url: &str, extra: &[(&str, &str)]) -> Worker {
        let mut c = s3.roster(url);
        c.args(["worker"])
            .env("ROSTER_HEARTBEAT_SECS", "1")
            .env("ROSTER_JOB_BACKOFF_MS", "300")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // ROSTER_TEST_WORKER_LOG=DIR keeps each worker's log there, for a failing run.
        if let Some(dir) = std::env::var_os("ROSTER_TEST_WORKER_LOG") {
            let file = tempfile::Builder::new()
                .prefix("worker-")
                .suffix(".log")
                .disable_cleanup(true)
                .tempfile_in(dir)
                .unwrap();
            c.stderr(file.into_file())
                .env("RUST_LOG", "info,apalis=debug");
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        Worker(c.spawn().unwrap())
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.0.wait().unwrap().code()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn submit(s3: &S3, url: &str, file: &Path) -> (i64, String) {
    let o = s3
        .roster(url)
        .args(["submit"])
        .arg(file)
        .args(["--uploader", UPLOADER])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{stderr}");
    let id = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    (id, stderr)
}

pub(crate) fn status(s3: &S3, url: &str, id: i64) -> serde_json::Value {
    let o = s3
        .roster(url)
        .args(["status", &id.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Polls until the upload reaches a final status, then returns it.
pub(crate) fn wait_final(s3: &S3, url: &str, id: i64, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(s3, url, id);
        if ["succeeded", "rejected", "failed"].contains(&s["status"].as_str().unwrap()) {
            return s;
        }
        assert!(Instant::now() < deadline, "upload {id} still {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A clean roster of `rows` rows; with `orgs`, its org file written there too.
pub(crate) fn sample(
    dir: &Path,
    name: &str,
    rows: usize,
    seed: u64,
    orgs: Option<&Path>,
) -> PathBuf {
    let file = dir.join(name);
    let mut c = roster();
    c.args(["sample", "--rows", &rows.to_string(), "--error-rate", "0"])
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(&file);
    if let Some(orgs) = orgs {
        c.arg("--orgs-out").arg(orgs);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    file
}

/// Every cell of every sheet of a workbook, as text.
fn cells(bytes: &[u8]) -> Vec<(String, Vec<Vec<String>>)> {
    use calamine::{Reader, open_workbook_auto_from_rs};
    let mut wb = open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    wb.sheet_names()
        .into_iter()
        .map(|name| {
            let range = wb.worksheet_range(&name).unwrap();
            let rows = range
                .rows()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect();
            (name, rows)
        })
        .collect()
}

/// A clean sample of `rows` rows whose org file is imported first, submitted: its upload
/// id, and the folder holding the files.
pub(crate) fn submit_sample_with_orgs(
    s3: &S3,
    url: &str,
    rows: usize,
    seed: u64,
) -> (i64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let orgs = dir.path().join("orgs.csv");
    let file = sample(dir.path(), "big.xlsx", rows, seed, Some(&orgs));
    orgs_import(s3, url, &orgs);
    let (id, _) = submit(s3, url, &file);
    (id, dir)
}

/// `roster orgs import ORGS` against the database at `url`.
pub(crate) fn orgs_import(s3: &S3, url: &str, orgs: &Path) {
    let o = s3
        .roster(url)
        .args(["orgs", "import"])
        .arg(orgs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Everyone loaded once, and exactly the upload's valid rows: `s` is its status.
pub(crate) async fn assert_loaded_once(pool: &sqlx::PgPool, s: &serde_json::Value) {
    let (people, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id_number) FROM people")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(people, distinct, "nobody loaded twice");
    assert_eq!(people, s["rows_valid"].as_i64().unwrap(), "{s}");
}

/// Waits until a load is COPYing people into the pool's database.
pub(crate) async fn wait_for_copy(pool: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !super::copying_people(pool).await {
        assert!(Instant::now() < deadline, "never saw the load");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn submit_worker_status_and_report_links_end_to_end(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let file = root().join("sample-data/members.xlsx");
    let (id, _) = submit(&s3, &url, &file);
    let (again, note) = submit(&s3, &url, &file);
    assert_eq!(again, id, "the same content is the same upload");
    assert!(note.contains("未重复排队"), "{note}");
    assert_eq!(status(&s3, &url, id)["status"], "queued");

    let worker = Worker::start(&s3, &url, &[]);
    let done = wait_final(&s3, &url, id, Duration::from_secs(120));
    assert_eq!(worker.terminate(), Some(0), "graceful shutdown on SIGTERM");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(
        (done["rows_total"].as_i64(), done["rows_valid"].as_i64()),
        (Some(300), Some(294))
    );
    for stage in ["fetch_s", "validate_s", "load_s", "report_s", "publish_s"] {
        assert!(done["timings"][stage].is_number(), "{stage}: {done}");
    }

    // The reports through their links: the same content `validate` gives.
    let o = s3
        .roster(&url)
        .args(["reports", &id.to_string(), "--expires-secs", "600"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let links: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let local = tempfile::tempdir().unwrap();
    let orgs = root().join("sample-data/orgs.csv");
    let (code, text) = super::validate(&file, &orgs, "members", local.path());
    assert_eq!(code, 1, "{text}");
    let mut expected: Vec<String> = std::fs::read_dir(local.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    expected.sort();
    // Every report is an object of its own but the organisation workbooks, which are
    // the entries of one zip: together, what `validate` writes.
    let mut got: Vec<String> = Vec::new();
    let mut objects: Vec<String> = Vec::new();
    for link in &links {
        let url = link["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Expires=600"), "{url}");
        let body = ureq::get(url)
            .call()
            .unwrap()
            .into_body()
            .read_to_vec()
            .unwrap();
        let key = link["key"].as_str().unwrap();
        // Each attempt writes under its own folder: reports/<id>/<attempt>/<name>.
        let name = key
            .strip_prefix(&format!("reports/{id}/{}/", done["attempts"]))
            .unwrap();
        objects.push(name.to_string());
        let mut compare = |name: &str, body: &[u8]| {
            got.push(name.to_string());
            let want = std::fs::read(local.path().join(name)).unwrap();
            if name.ends_with(".json") {
                let (a, b): (serde_json::Value, serde_json::Value) = (
                    serde_json::from_slice(body).unwrap(),
                    serde_json::from_slice(&want).unwrap(),
                );
                assert_eq!(a, b, "{name}");
            } else {
                assert_eq!(cells(body), cells(&want), "{name}");
            }
        };
        if name == "workbooks.zip" {
            use std::io::Read;
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).unwrap();
                let entry_name = entry.name().unwrap().to_string();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                assert!(entry_name.ends_with(".xlsx"), "{entry_name}");
                compare(&entry_name, &bytes);
            }
        } else {
            compare(name, &body);
        }
    }
    got.sort();
    assert_eq!(got, expected);
    let own = [
        "summary.json",
        "summary.xlsx",
        "escalations.xlsx",
        "workbooks.zip",
    ];
    assert!(
        objects.iter().all(|o| own.contains(&o.as_str())) && objects.contains(&own[3].into()),
        "one object for all the organisation workbooks: {objects:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_worker_serves_its_metrics_health_and_readiness(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let file = sample(dir.path(), "m.xlsx", 30, 5, None);
    let (id, _) = submit(&s3, &url, &file);
    let _worker = Worker::start(&s3, &url, &[("ROSTER_METRICS", &addr)]);
    assert_eq!(
        wait_final(&s3, &url, id, Duration::from_secs(120))["status"],
        "succeeded"
    );
    let get = |path: &str| {
        ureq::get(format!("http://{addr}{path}"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    assert_eq!(get("/healthz"), "ok");
    assert!(get("/readyz").contains("database: ok"));
    let metrics = get("/metrics");
    for line in [
        "roster_uploads{status=\"succeeded\"} 1",
        "roster_uploads{status=\"failed\"} 0",
        "roster_job_duration_seconds_count{status=\"succeeded\"} 1",
        "roster_rows_validated_total 30",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn three_worker_processes_process_twenty_uploads_exactly_once(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for seed in 0..20 {
        let file = sample(dir.path(), &format!("r{seed}.xlsx"), 40, 100 + seed, None);
        ids.push(submit(&s3, &url, &file).0);
    }
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&s3, &url, &[])).collect();
    for id in &ids {
        let s = wait_final(&s3, &url, *id, Duration::from_secs(180));
        assert_eq!(s["status"], "succeeded", "{s}");
        assert_eq!(s["attempts"], 1, "processed exactly once: {s}");
        assert_eq!(s["rows_valid"], 40);
    }
    for w in workers {
        assert_eq!(w.terminate(), Some(0));
    }
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(people, 20 * 40);
    // Each job ran on one worker, and every worker got some (batch size 1).
    let by_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT split_part(lock_by, '-', 2), count(*) FROM apalis.jobs
         WHERE job_type = 'roster.process_upload' AND status = 'Done' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        by_worker.iter().map(|w| w.1).sum::<i64>(),
        20,
        "{by_worker:?}"
    );
    assert_eq!(
        by_worker.len(),
        3,
        "all three processes took jobs: {by_worker:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_worker_killed_mid_job_leaves_one_complete_upload(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let rows = 60_000;
    let (id, _dir) = submit_sample_with_orgs(&s3, &url, rows, 7);
    let victim = Worker::start(&s3, &url, &[]);
    wait_for_copy(&pool).await;
    drop(victim); // SIGKILL mid-load
    let _rescuer = Worker::start(&s3, &url, &[]);
    let s = wait_final(&s3, &url, id, Duration::from_secs(300));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["attempts"], 2, "picked up again after the kill: {s}");
    assert_eq!(s["rows_valid"].as_i64(), Some(rows as i64));
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(people, rows as i64, "no doubled rows");
    let keys: Vec<String> = s["report_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored_reports(&s3, id), keys.len(), "one set of reports");
}

#[sqlx::test(migrations = false)]
async fn storage_outages_are_retried_then_fail_with_a_reason(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let mut s3 = S3::start();
    let dir = tempfile::tempdir().unwrap();
    let first = sample(dir.path(), "a.xlsx", 30, 201, None);
    let second = sample(dir.path(), "b.xlsx", 30, 202, None);
    let (a, _) = submit(&s3, &url, &first);

    // Down when the worker starts: retried with backoff; back up: succeeds.
    s3.stop();
    let worker = Worker::start(&s3, &url, &[("ROSTER_JOB_ATTEMPTS", "8")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&s3, &url, a)["attempts"].as_i64().unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "no retry seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    s3.resume();
    let s = wait_final(&s3, &url, a, Duration::from_secs(120));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert!(s["attempts"].as_i64().unwrap() >= 2, "{s}");
    drop(worker);

    // Never back: `failed` after the last attempt, with the reason.
    let (b, _) = submit(&s3, &url, &second);
    s3.stop();
    let _worker = Worker::start(&s3, &url, &[("ROSTER_JOB_ATTEMPTS", "2")]);
    let s = wait_final(&s3, &url, b, Duration::from_secs(120));
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["attempts"], 2);
    // What viewers read: a Chinese reason, no host, port, bucket or key.
    let failure = s["failure"].as_str().unwrap();
    assert!(
        failure.contains("2 次尝试后失败") && failure.contains("对象存储暂时无法访问"),
        "{failure}"
    );
    for internal in [
        "127.0.0.1",
        &s3.port.to_string(),
        "uploads/",
        "unavailable",
        "roster-test",
    ] {
        assert!(!failure.contains(internal), "{failure} holds {internal}");
    }
}

#[sqlx::test(migrations = false)]
async fn two_workers_ticking_together_make_one_snapshot(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    // Both processes tick every second, at the same instants.
    let every_second = [("ROSTER_STATS_SCHEDULE", "* * * * * *")];
    let workers = [
        Worker::start(&s3, &url, &every_second),
        Worker::start(&s3, &url, &every_second),
    ];
    let snapshots = || async {
        sqlx::query_as::<_, (chrono::NaiveDate, chrono::DateTime<chrono::Utc>)>(
            "SELECT snapshot_date, created_at FROM stats_snapshots",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let s = snapshots().await;
        if !s.is_empty() {
            break s;
        }
        assert!(Instant::now() < deadline, "no snapshot made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Several more ticks of both workers: still that one snapshot, never redone.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(snapshots().await, first);
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'org_stats'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(partitions, 1);
    for w in workers {
        assert_eq!(w.terminate(), Some(0));
    }
}

#[sqlx::test(migrations = false)]
async fn an_object_over_the_size_limit_is_rejected_without_download(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let (id, _) = submit(&s3, &url, &root().join("sample-data/members.xlsx"));
    let _worker = Worker::start(&s3, &url, &[("ROSTER_MAX_FILE_MB", "0")]);
    let s = wait_final(&s3, &url, id, Duration::from_secs(60));
    assert_eq!(s["status"], "rejected", "a verdict, final: {s}");
    assert_eq!(s["attempts"], 1, "never retried: {s}");
    assert_eq!(s["file_error"]["code"], "file_too_large");
    assert!(s["timings"]["fetch_s"].is_number());
    let keys: Vec<&str> = s["report_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&format!("reports/{id}/1/summary.json").as_str()),
        "{keys:?}"
    );
}

/// `roster submit s3://BUCKET/KEY` reads only the configured bucket, under `uploads/`,
/// and never another organisation's stored roster as the caller's.
#[sqlx::test(migrations = false)]
async fn submit_s3_takes_only_the_callers_objects_under_uploads(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let file = root().join("sample-data/members.xlsx");
    // The province's own upload, stored content-addressed under its id.
    let (id, _) = submit(&s3, &url, &file);
    let key: String = sqlx::query_scalar("SELECT object_key FROM uploads WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(key.starts_with("uploads/"), "{key}");
    // An operator's drop folder inside uploads/.
    let dropped = s3.dir.path().join(BUCKET).join("uploads/incoming");
    std::fs::create_dir_all(&dropped).unwrap();
    std::fs::copy(
        root().join("sample-data/cadres.xlsx"),
        dropped.join("c.xlsx"),
    )
    .unwrap();
    let city = "共青团广州市委员会";
    let try_submit = |target: &str, uploader: &str, template: &str| {
        let o = s3
            .roster(&url)
            .args([
                "submit",
                target,
                "--uploader",
                uploader,
                "--template",
                template,
            ])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    // (object, uploader, allowed)
    let table = [
        (format!("s3://{BUCKET}/{key}"), city, false),
        (format!("s3://other-bucket/{key}"), UPLOADER, false),
        (
            format!("s3://{BUCKET}/reports/{id}/summary.json"),
            UPLOADER,
            false,
        ),
        (format!("s3://{BUCKET}/uploads/../{key}"), UPLOADER, false),
        (format!("s3://{BUCKET}/uploads/incoming/c.xlsx"), city, true),
    ];
    for (target, uploader, allowed) in &table {
        let template = if target.ends_with("c.xlsx") {
            "cadres"
        } else {
            "members"
        };
        let (code, err) = try_submit(target, uploader, template);
        if *allowed {
            assert_eq!(code, Some(0), "{target} as {uploader}: {err}");
        } else {
            assert_ne!(code, Some(0), "{target} as {uploader} was taken");
            assert!(err.contains("不能提交对象"), "{target}: {err}");
        }
    }
    // Nothing was registered for the city from the province's object.
    let city_uploads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM uploads u JOIN orgs o ON o.id = u.uploader_org_id
         WHERE o.full_name = $1 AND u.template = 'members'",
    )
    .bind(city)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(city_uploads, 0);
}

/// Waits until some report object of upload `id` is stored.
fn wait_for_a_report_object(s3: &S3, id: i64, within: Duration) {
    let dir = s3
        .dir
        .path()
        .join(BUCKET)
        .join("reports")
        .join(id.to_string());
    let deadline = Instant::now() + within;
    while std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no report was ever published");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Report objects stored for upload `id`.
fn stored_reports(s3: &S3, id: i64) -> usize {
    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { files(&p) } else { 1 })
                .sum()
        })
    }
    files(
        &s3.dir
            .path()
            .join(BUCKET)
            .join("reports")
            .join(id.to_string()),
    )
}

/// An upload with a workbook for each of many branches (publishing takes a while).
fn many_branch_sample(dir: &Path, rows: usize) -> (PathBuf, PathBuf) {
    let file = dir.join("many.xlsx");
    let orgs = dir.join("orgs.csv");
    let o = roster()
        .args(["sample", "--rows", &rows.to_string(), "--error-rate", "0.2"])
        .args(["--seed", "14", "--out"])
        .arg(&file)
        .arg("--orgs-out")
        .arg(&orgs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (file, orgs)
}

/// The rows an upload says are valid are exactly the people stored, and its report
/// keys exactly the objects stored.
async fn assert_clean_end(pool: &sqlx::PgPool, s3: &S3, s: &serde_json::Value) {
    assert_eq!(s["status"], "succeeded", "{s}");
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        Some(people),
        s["rows_valid"].as_i64(),
        "no doubled or lost rows: {s}"
    );
    let id = s["upload_id"].as_i64().unwrap();
    assert_eq!(
        stored_reports(s3, id),
        s["report_keys"].as_array().unwrap().len(),
        "exactly one set of reports"
    );
}

/// Object storage stopped while a worker publishes the reports: nothing is committed
/// before they are all stored, the job is retried, and it ends as one clean run would.
#[sqlx::test(migrations = false)]
async fn object_storage_stopped_while_reports_are_published(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let mut s3 = S3::start();
    let dir = tempfile::tempdir().unwrap();
    let (file, orgs) = many_branch_sample(dir.path(), 20_000);
    orgs_import(&s3, &url, &orgs);
    let (id, _) = submit(&s3, &url, &file);
    let _worker = Worker::start(&s3, &url, &[("ROSTER_JOB_ATTEMPTS", "10")]);
    wait_for_a_report_object(&s3, id, Duration::from_secs(300));
    s3.stop();
    // Meanwhile nothing of the upload is visible.
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(people, 0, "rows are committed only with their reports");
    assert_ne!(status(&s3, &url, id)["status"], "succeeded");
    std::thread::sleep(Duration::from_secs(2));
    s3.resume();
    let s = wait_final(&s3, &url, id, Duration::from_secs(300));
    assert!(s["attempts"].as_i64().unwrap() >= 2, "retried: {s}");
    assert_clean_end(&pool, &s3, &s).await;
}

/// Every connection of the database dropped while a worker's COPY streams (what a
/// PostgreSQL restart does to its clients; the cluster itself is shared by the other
/// tests): the attempt fails, the retry ends as one clean run would.
#[sqlx::test(migrations = false)]
async fn postgres_connections_dropped_while_a_copy_streams(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let rows = 60_000;
    let (id, _dir) = submit_sample_with_orgs(&s3, &url, rows, 8);
    let _worker = Worker::start(&s3, &url, &[("ROSTER_JOB_ATTEMPTS", "10")]);
    wait_for_copy(&pool).await;
    let db = pool.connect_options().get_database().unwrap().to_string();
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(&db)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(dropped > 0);
    let s = wait_final(&s3, &url, id, Duration::from_secs(300));
    assert!(s["attempts"].as_i64().unwrap() >= 2, "retried: {s}");
    assert_eq!(s["rows_valid"].as_i64(), Some(rows as i64));
    assert_clean_end(&pool, &s3, &s).await;
}

/// SIGTERM to a worker mid-job: it finishes the job it holds, once, then exits.
#[sqlx::test(migrations = false)]
async fn sigterm_to_a_worker_mid_job_finishes_it_once(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let rows = 60_000;
    let (id, _dir) = submit_sample_with_orgs(&s3, &url, rows, 9);
    let worker = Worker::start(&s3, &url, &[]);
    wait_for_copy(&pool).await;
    assert_eq!(worker.terminate(), Some(0), "a graceful exit");
    let s = status(&s3, &url, id);
    assert_eq!(s["attempts"], 1, "{s}");
    assert_eq!(s["rows_valid"].as_i64(), Some(rows as i64));
    assert_clean_end(&pool, &s3, &s).await;
}

/// No personal data in the worker's log at debug level, and none whole in what the
/// upload stores: a message naming the 18-digit form of a 15-digit ID keeps it masked.
#[sqlx::test(migrations = false)]
async fn the_worker_logs_and_stores_no_whole_identity_numbers(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let file = root().join("sample-data/members-every-mistake.xlsx");
    let secrets = super::logs::identifiers(&file);
    assert!(secrets.len() > 40);
    let (id, _) = submit(&s3, &url, &file);
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut c = s3.roster(&url);
    c.args(["worker"])
        .env("ROSTER_HEARTBEAT_SECS", "1")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log);
    let worker = Worker(c.spawn().unwrap());
    let s = wait_final(&s3, &url, id, Duration::from_secs(120));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(worker.terminate(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("upload processed"), "the log is there: {log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} logged by the worker"
        );
    }
    let messages: Vec<String> =
        sqlx::query_scalar("SELECT message FROM upload_errors WHERE upload_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        messages.iter().any(|m| m.contains("对应的18位号码为")),
        "the legacy ID's message is stored"
    );
    for m in &messages {
        let longest_digits = m
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest_digits < 11, "a whole number stored: {m}");
        for secret in &secrets {
            assert!(!m.contains(secret.as_str()), "{secret} stored in {m}");
        }
    }
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary folder, a free port),
/// so it can be restarted without disturbing the tests that share the machine's.
pub(crate) struct PrivatePg {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// Where it listens (with 127.0.0.1), and the network it trusts there.
    host: Option<(String, String)>,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        PrivatePg::start_on(None)
    }

    /// Listening on 127.0.0.1 and, with `host` (an address and the network it trusts,
    /// `10.0.0.1`, `10.0.0.0/24`), on that address too. A client that stops answering
    /// is dropped within seconds (TCP keepalives and a user timeout), so the locks of a
    /// worker cut off go with it, as an operator sets a production server up.
    pub(crate) fn start_on(host: Option<(&str, &str)>) -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (scripts/test installs them)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The server refuses to run as root: the folder is the postgres user's.
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
        let pg = PrivatePg {
            dir,
            port,
            bin,
            host: host.map(|(a, n)| (a.to_string(), n.to_string())),
        };
        pg.as_postgres(&[
            pg.bin.join("initdb").to_str().unwrap(),
            "-D",
            pg.data().to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        if let Some((_, net)) = &pg.host {
            use std::io::Write;
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(pg.data().join("pg_hba.conf"))
                .unwrap();
            writeln!(hba, "host all all {net} trust").unwrap();
        }
        pg.ctl("start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, args: &[&str]) {
        let o = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let listen = match &self.host {
            Some((addr, _)) => format!("'127.0.0.1,{addr}'"),
            None => "127.0.0.1".to_string(),
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses={listen} -c fsync=off -c max_connections=200 \
             -c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 \
             -c tcp_user_timeout=5000",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.as_postgres(&[
            self.bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            self.data().to_str().unwrap(),
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            action,
        ]);
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL a test host reaches it by.
    pub(crate) fn url_on_host(&self) -> String {
        let host = self.host.as_ref().map_or("127.0.0.1", |(a, _)| a.as_str());
        format!("postgres://postgres@{host}:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// PostgreSQL restarted (a cluster of the test's own) while a worker's COPY streams: the
/// attempt fails, the worker retries, and the upload ends as one clean run would.
#[sqlx::test(migrations = false)]
async fn postgres_restarted_while_a_copy_streams(_shared: sqlx::PgPool) {
    let pg = PrivatePg::start();
    let url = pg.url();
    setup_db(&url).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let s3 = S3::start();
    let rows = 60_000;
    let (id, _dir) = submit_sample_with_orgs(&s3, &url, rows, 10);
    let _worker = Worker::start(&s3, &url, &[("ROSTER_JOB_ATTEMPTS", "10")]);
    wait_for_copy(&pool).await;
    pg.ctl("restart");
    let s = wait_final(&s3, &url, id, Duration::from_secs(300));
    assert!(s["attempts"].as_i64().unwrap() >= 2, "retried: {s}");
    assert_eq!(s["rows_valid"].as_i64(), Some(rows as i64));
    assert_clean_end(&pool, &s3, &s).await;
}

/// Workbooks `(name, bytes)` of the given sizes, their bytes unlike each other's.
fn workbooks(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut x: u32 = 2_463_534_242;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let bytes = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            (format!("共青团第{i}团支部.xlsx"), bytes)
        })
        .collect()
}

/// A client of the test's S3 server and its bucket, made if need be.
async fn storage_of(s3: &S3) -> jobs::Storage {
    let storage = jobs::Storage::with_endpoint(
        &s3.endpoint(),
        super::s3::ACCESS_KEY,
        super::s3::SECRET_KEY,
        BUCKET,
    );
    storage.ensure_bucket().await.unwrap();
    storage
}

/// Feeds `books` to a bundle uploader from a writer's thread, as the report writer does.
async fn bundle_of(
    storage: &jobs::Storage,
    key: &str,
    part_bytes: usize,
    books: &[(String, Vec<u8>)],
) -> Result<jobs::bundle::Stored, jobs::StorageError> {
    let (hook, storing) = jobs::bundle::stream(storage, key.to_string(), part_bytes);
    let books = books.to_vec();
    tokio::task::spawn_blocking(move || {
        for (name, bytes) in books {
            hook(&name, bytes);
        }
    })
    .await
    .unwrap();
    storing.await.unwrap()
}

/// The organisation workbooks stored as one zip: a plain put under a part, a multipart
/// upload over it (parts counted), nothing without workbooks; each workbook comes back
/// whole by its range, and the object opens as a zip of them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbook_bundle_is_one_object_read_back_by_range() {
    use futures::StreamExt;
    let s3 = S3::start();
    let storage = storage_of(&s3).await;
    const MIB: usize = 1 << 20;
    let part = jobs::bundle::MIN_PART_BYTES;
    // (case, workbook sizes, part size, parts expected)
    let table: &[(&str, Vec<usize>, usize, u32)] = &[
        ("none", vec![], part, 0),
        ("under-a-part", vec![10_000, 0, 70_000], part, 0),
        ("one-big-workbook", vec![3 * part + 5], part, 2),
        // Seven workbooks (with their headers) make a part: five of them, then the last
        // five workbooks and the central directory.
        ("many-parts", vec![750_000; 40], part, 6),
        // A workbook's local header and name ("共青团第0团支部.xlsx") take 57 bytes.
        ("just-under-a-part", vec![part - 58], part, 0),
        ("exactly-a-part", vec![part - 57], part, 2),
        // Smaller parts than S3 takes are raised to its minimum (1 MiB parts: four).
        ("parts-too-small", vec![2 * MIB; 3], MIB, 2),
    ];
    for (case, sizes, part, parts) in table {
        let books = workbooks(sizes);
        let key = format!("reports/{case}/workbooks.zip");
        let stored = bundle_of(&storage, &key, *part, &books).await.unwrap();
        assert_eq!(stored.parts, *parts, "{case}");
        assert_eq!(stored.spans.len(), books.len(), "{case}");
        if books.is_empty() {
            assert!(storage.list(&key).await.unwrap().is_empty(), "{case}");
            continue;
        }
        for (name, bytes) in &books {
            let span = stored.spans[name];
            let body = storage
                .get_range(&key, span.offset, span.len)
                .await
                .unwrap();
            let mut body = std::pin::pin!(body);
            let mut got = Vec::new();
            while let Some(chunk) = body.next().await {
                got.extend_from_slice(&chunk.unwrap());
            }
            assert!(got == *bytes, "{case}: {name} by its range");
        }
        let whole = storage.get(BUCKET, &key, u64::MAX).await.unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(whole)).unwrap();
        assert_eq!(zip.len(), books.len(), "{case}");
        for (name, bytes) in &books {
            use std::io::Read;
            let mut got = Vec::new();
            zip.by_name(name).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == *bytes, "{case}: {name} in the zip");
        }
    }
}

/// The store gone while the bundle streams: the uploader fails with a transient error,
/// and no object is left at the key for a reader to take as the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_whose_store_fails_is_not_stored() {
    let mut s3 = S3::start();
    let storage = storage_of(&s3).await;
    let key = "reports/9/workbooks.zip";
    let (hook, storing) = jobs::bundle::stream(&storage, key.to_string(), 0);
    // A part is on its way (or stored) before the store goes.
    let books = workbooks(&[1_000_000; 12]);
    let (first, rest) = books.split_at(7);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    let feed = |books: Vec<(String, Vec<u8>)>, hook: pipeline::report::OnWorkbook| {
        tokio::task::spawn_blocking(move || {
            for (name, bytes) in books {
                hook(&name, bytes);
            }
        })
    };
    feed(first, hook.clone()).await.unwrap();
    s3.stop();
    feed(rest, hook).await.unwrap();
    let e = storing.await.unwrap().unwrap_err();
    assert!(e.is_transient(), "{e}");
    s3.resume();
    assert!(storage.list("reports/9/").await.unwrap().is_empty());
}
