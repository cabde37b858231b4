//! Hostile files and lost hosts through the queue (issue 31): a file rejected whole never
//! stalls a worker, a stage that waits on a host that stopped answering is cancelled and
//! tried again, and SIGTERM stops a worker within 30 s whatever it is doing.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::s3::S3;
use super::service::{Worker, assert_loaded_once, status, submit, wait_final};
use super::{root, setup_db, url_of};

/// `sample-data/members.xlsx` with its last row renumbered `row` (sheet XML edited in
/// place): a file no spreadsheet program writes.
fn members_with_last_row_at(row: u64) -> Vec<u8> {
    let bytes = std::fs::read(root().join("sample-data/members.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let xml = String::from_utf8(data).unwrap();
            let start = xml.rfind("<row r=\"").unwrap();
            let end = start + xml[start..].find("</row>").unwrap();
            let n: String = xml[start + 8..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let renumbered = xml[start..end].replace(&format!("{n}\""), &format!("{row}\""));
            data = format!("{}{renumbered}{}", &xml[..start], &xml[end..]).into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Every kind of file the reader rejects whole, as a hostile or careless user sends it:
/// (what it is, file name, bytes, the verdict's code).
fn rejected_whole() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let members = std::fs::read(root().join("sample-data/members.xlsx")).unwrap();
    vec![
        (
            "an HTML page named .xlsx",
            "page.xlsx",
            b"<!DOCTYPE html><html><body>login</body></html>".to_vec(),
            "file_unreadable",
        ),
        (
            "a truncated xlsx",
            "cut.xlsx",
            members[..members.len() / 2].to_vec(),
            "file_unreadable",
        ),
        ("an empty file", "empty.xlsx", Vec::new(), "file_unreadable"),
        (
            "CSV text",
            "roster.csv",
            "姓名,身份证号码\n张三,440103199001010022\n"
                .as_bytes()
                .to_vec(),
            "file_unreadable",
        ),
        (
            "a row numbered 4,294,967,295",
            "far.xlsx",
            members_with_last_row_at(4_294_967_295),
            "file_unreadable",
        ),
        (
            "a row numbered 1,048,577",
            "past.xlsx",
            members_with_last_row_at(1_048_577),
            "file_unreadable",
        ),
    ]
}

/// Each file rejected whole ends `rejected` with its code within seconds, through the
/// queue, on one worker that then still takes the next upload and stops on SIGTERM.
#[sqlx::test(migrations = false)]
async fn files_rejected_whole_end_rejected_through_the_queue_and_never_stall_a_worker(
    pool: sqlx::PgPool,
) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(&s3, &url, &[]);
    for (what, name, bytes, code) in rejected_whole() {
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        let (id, _) = submit(&s3, &url, &file);
        let clock = Instant::now();
        let s = wait_final(&s3, &url, id, Duration::from_secs(20));
        assert_eq!(s["status"], "rejected", "{what}: {s}");
        assert_eq!(s["file_error"]["code"], code, "{what}: {s}");
        assert_eq!(s["attempts"], 1, "{what}: a verdict is never retried: {s}");
        assert_eq!(s["rows_total"], serde_json::Value::Null, "{what}: {s}");
        let keys = s["report_keys"].as_array().unwrap();
        assert!(
            keys.iter()
                .any(|k| k == &format!("reports/{id}/1/summary.json")),
            "{what}: {s}"
        );
        assert!(
            clock.elapsed() < Duration::from_secs(20),
            "{what}: {:?}",
            clock.elapsed()
        );
    }
    // The worker is still free: the next upload goes through.
    let (id, _) = submit(&s3, &url, &root().join("sample-data/members.xlsx"));
    let s = wait_final(&s3, &url, id, Duration::from_secs(60));
    assert_eq!(s["status"], "succeeded", "{s}");
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(people > 0, "the valid upload loaded");
    let clock = Instant::now();
    assert_eq!(worker.terminate(), Some(0));
    assert!(clock.elapsed() < Duration::from_secs(30));
}

/// The object store stops answering (SIGSTOP: connections accepted, nothing said) while
/// a worker fetches: the stage runs past its deadline, the attempt is cancelled and tried
/// again, and once the store answers the upload ends `succeeded`, loaded once.
#[sqlx::test(migrations = false)]
async fn a_stage_past_its_deadline_is_cancelled_and_tried_again(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let (id, _) = submit(&s3, &url, &root().join("sample-data/members.xlsx"));
    s3.freeze();
    let _worker = Worker::start(
        &s3,
        &url,
        &[
            ("ROSTER_STAGE_DEADLINE_SECS", "4"),
            ("ROSTER_JOB_ATTEMPTS", "10"),
        ],
    );
    // Two deadlines pass while the store is lost.
    let clock = Instant::now();
    loop {
        let s = status(&s3, &url, id);
        if s["attempts"].as_i64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(30),
            "no second attempt: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&s3, &url, id)["status"], "running");
    s3.thaw();
    let s = wait_final(&s3, &url, id, Duration::from_secs(60));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert!(s["attempts"].as_i64().unwrap() >= 2, "{s}");
    assert_loaded_once(&pool, &s).await;
}

/// SIGTERM to a worker stuck on a lost host (its fetch will never return) stops it
/// within 30 s; its upload goes back to the queue and another worker finishes it once.
#[sqlx::test(migrations = false)]
async fn sigterm_stops_a_worker_stuck_on_a_lost_host_within_30_s(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let (id, _) = submit(&s3, &url, &root().join("sample-data/members.xlsx"));
    s3.freeze();
    let stuck = Worker::start(&s3, &url, &[]);
    let clock = Instant::now();
    while status(&s3, &url, id)["status"] != "running" {
        assert!(clock.elapsed() < Duration::from_secs(30), "never claimed");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let clock = Instant::now();
    assert_eq!(stuck.terminate(), Some(0));
    let took = clock.elapsed();
    assert!(took < Duration::from_secs(30), "SIGTERM took {took:?}");
    s3.thaw();
    let _next = Worker::start(&s3, &url, &[]);
    let s = wait_final(&s3, &url, id, Duration::from_secs(90));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_loaded_once(&pool, &s).await;
}

/// A database error during `roster import` (a trigger that refuses every person, with an
/// internal detail) ends with exit 2 and a sentence in Chinese naming the SQLSTATE; the
/// refusal's own text reaches neither that sentence nor the upload's recorded failure,
/// and nothing is loaded.
#[sqlx::test(migrations = false)]
async fn a_database_error_is_never_shown_raw(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'internal-detail-7781 in relation people'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, text) = super::import_as_uploader(
        &url,
        &root().join("sample-data/members.xlsx"),
        &out.path().join("reports"),
    );
    assert_eq!(code, 2, "{text}");
    let said: Vec<&str> = text.lines().filter(|l| l.starts_with("错误：")).collect();
    assert_eq!(said.len(), 1, "{text}");
    assert!(
        said[0].contains("数据库") && said[0].contains("P0001"),
        "{}",
        said[0]
    );
    for raw in [
        "internal-detail-7781",
        "relation",
        "error returned from database",
    ] {
        assert!(!said[0].contains(raw), "{}", said[0]);
    }
    let (status, failure): (String, Option<String>) =
        sqlx::query_as("SELECT status, failure FROM uploads")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    let failure = failure.unwrap();
    assert!(!failure.contains("internal-detail-7781"), "{failure}");
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(people, 0);
}
