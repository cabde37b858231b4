//! The service end to end: a real S3-compatible server (`s3s-fs`) on a free loopback port,
//! a fresh database per test, and `roster submit` / `worker` / `status` / `reports` as
//! child processes talking to both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::s3::{BUCKET, S3};
use super::{UPLOADER, root, roster, setup_db, url_of};

/// A `roster` command configured for an S3 server and a database.
trait RosterFor {
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
struct Worker(Child);

impl Worker {
    fn start(s3: &S3, url: &str, extra: &[(&str, &str)]) -> Worker {
        let mut c = s3.roster(url);
        c.args(["worker"])
            .env("ROSTER_HEARTBEAT_SECS", "1")
            .env("ROSTER_JOB_BACKOFF_MS", "300")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        Worker(c.spawn().unwrap())
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> Option<i32> {
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

fn submit(s3: &S3, url: &str, file: &Path) -> (i64, String) {
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

fn status(s3: &S3, url: &str, id: i64) -> serde_json::Value {
    let o = s3
        .roster(url)
        .args(["status", &id.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Polls until the upload reaches a final status, then returns it.
fn wait_final(s3: &S3, url: &str, id: i64, within: Duration) -> serde_json::Value {
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
fn sample(dir: &Path, name: &str, rows: usize, seed: u64, orgs: Option<&Path>) -> PathBuf {
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
    let mut got: Vec<String> = links
        .iter()
        .map(|l| {
            let key = l["key"].as_str().unwrap();
            key.strip_prefix(&format!("reports/{id}/"))
                .unwrap()
                .to_string()
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    for link in &links {
        let url = link["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Expires=600"), "{url}");
        let body = ureq::get(url)
            .call()
            .unwrap()
            .into_body()
            .read_to_vec()
            .unwrap();
        let name = link["key"].as_str().unwrap().rsplit('/').next().unwrap();
        let want = std::fs::read(local.path().join(name)).unwrap();
        if name.ends_with(".json") {
            let (a, b): (serde_json::Value, serde_json::Value) = (
                serde_json::from_slice(&body).unwrap(),
                serde_json::from_slice(&want).unwrap(),
            );
            assert_eq!(a, b, "{name}");
        } else {
            assert_eq!(cells(&body), cells(&want), "{name}");
        }
    }
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
    let dir = tempfile::tempdir().unwrap();
    let rows = 60_000;
    let orgs = dir.path().join("orgs.csv");
    let file = sample(dir.path(), "big.xlsx", rows, 7, Some(&orgs));
    let o = s3
        .roster(&url)
        .args(["orgs", "import"])
        .arg(&orgs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (id, _) = submit(&s3, &url, &file);
    let victim = Worker::start(&s3, &url, &[]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if super::copying_people(&pool).await {
            break;
        }
        assert!(Instant::now() < deadline, "never saw the load");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
    let stored = std::fs::read_dir(
        s3.dir
            .path()
            .join(BUCKET)
            .join("reports")
            .join(id.to_string()),
    )
    .unwrap()
    .count();
    assert_eq!(stored, keys.len(), "one set of reports");
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
    let failure = s["failure"].as_str().unwrap();
    assert!(
        failure.contains("2 次尝试后失败") && failure.contains("object storage unavailable"),
        "{failure}"
    );
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
        keys.contains(&format!("reports/{id}/summary.json").as_str()),
        "{keys:?}"
    );
}
