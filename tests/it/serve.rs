//! `roster serve` as operators run it (issue 31): a process of its own, its operators'
//! listener (`--metrics`), JSON logs with one access line per request, and floods of
//! logins and registrations measured from outside.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::s3::S3;
use super::service::RosterFor;
use super::{setup_db, url_of};

/// An admin `roster admins add` can create, and its initial password.
const ADMIN_ID: &str = "440103199001010022";
const INITIAL: &str = "01010022";
const PROVINCE: &str = "共青团广东省委员会";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `roster serve` process, killed on drop; its stderr (the log) in a file.
struct Serve {
    child: Child,
    base: String,
    operator: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(s3: &S3, url: &str, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let (port, operator) = (free_port(), free_port());
        let mut c = s3.roster(url);
        c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics", &format!("127.0.0.1:{operator}")])
            .env("ROSTER_SPOOL_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        let serve = Serve {
            child: c.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            operator: format!("http://127.0.0.1:{operator}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent()
            .get(format!("{}/healthz", serve.operator))
            .call()
            .is_err()
        {
            assert!(Instant::now() < deadline, "roster serve did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        serve
    }

    /// Peak resident memory so far, in MiB.
    fn peak_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024
    }

    fn metric(&self, name: &str) -> f64 {
        let text = agent()
            .get(format!("{}/metrics", self.operator))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))
            .parse()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn post_json(url: &str, body: serde_json::Value) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), text)
}

async fn add_admin(url: &str) {
    let o = super::roster()
        .env("DATABASE_URL", url)
        .args(["admins", "add", "--org", PROVINCE, "--id", ADMIN_ID])
        .args(["--name", "张三", "--phone", "13800138000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// 64 logins at once, each for an unknown account: their statuses.
fn flood(login: &str) -> Vec<u16> {
    std::thread::scope(|s| {
        let all: Vec<_> = (0..64)
            .map(|i| {
                s.spawn(move || {
                    let who = format!("4401031990010{i:05}");
                    post_json(
                        login,
                        serde_json::json!({"id_number": who, "password": INITIAL}),
                    )
                    .0
                })
            })
            .collect();
        all.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// 64 logins at once (unknown accounts, each still checked against a dummy hash so a
/// refusal takes as long): at most `roster_argon2_slots` Argon2 checks run together
/// (each takes 19 MiB), the rest wait, every one is answered, and the server's peak
/// memory stays far below 64 checks' worth.
#[sqlx::test(migrations = false)]
async fn a_login_flood_waits_for_argon2_slots_and_memory_stays_bounded(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    add_admin(&url).await;
    let s3 = S3::start();
    let serve = Serve::start(&s3, &url, &[]);
    let login = format!("{}/api/v1/login", serve.base);
    let before = serve.peak_mib();
    let statuses = flood(&login);
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    let slots = serve.metric("roster_argon2_slots");
    let peak = serve.metric("roster_argon2_peak");
    assert!(peak >= 1.0 && peak <= slots, "peak {peak}, slots {slots}");
    assert_eq!(serve.metric("roster_argon2_checks_total"), 64.0);
    let after = serve.peak_mib();
    // The same flood with a slot per request, as before the bound: the peer of this run.
    drop(serve);
    let unbounded = Serve::start(&s3, &url, &[("ROSTER_ARGON2_SLOTS", "64")]);
    let unbounded_before = unbounded.peak_mib();
    let login = format!("{}/api/v1/login", unbounded.base);
    flood(&login);
    let unbounded_after = unbounded.peak_mib();
    eprintln!(
        "login flood of 64: bounded ({slots} slots) peak {before} -> {after} MiB; \
         64 slots peak {unbounded_before} -> {unbounded_after} MiB"
    );
    // 64 checks at once take up to 64 × 19 MiB = 1.2 GiB more.
    assert!(
        after < before + 64 * 19 / 4,
        "peak {before} MiB before, {after} MiB after"
    );
    assert!(
        unbounded_after - unbounded_before > 2 * (after - before),
        "the bound is what keeps memory down: {unbounded_before} -> {unbounded_after} MiB"
    );
}

/// A registration with a wrong code or organisation is refused before any Argon2 work;
/// the right code costs one hash.
#[sqlx::test(migrations = false)]
async fn registration_checks_the_code_before_any_argon2_work(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let serve = Serve::start(&s3, &url, &[]);
    let (child, code): (String, String) = sqlx::query_as(
        "SELECT c.full_name, c.reg_code FROM orgs c JOIN orgs p ON p.id = c.parent_id
         WHERE p.full_name = $1 ORDER BY c.name_key LIMIT 1",
    )
    .bind(PROVINCE)
    .fetch_one(&pool)
    .await
    .unwrap();
    let register = format!("{}/api/v1/register", serve.base);
    let form = |org: &str, code: &str| {
        serde_json::json!({
            "org": org, "code": code, "name": "李四", "id_number": "440103199505050028",
            "phone": "13900139000", "password": "Register2026x",
        })
    };
    for (org, code) in [
        (child.as_str(), "wrong-code"),
        ("没有这个组织", code.as_str()),
    ] {
        let (status, body) = post_json(&register, form(org, code));
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(serve.metric("roster_argon2_checks_total"), 0.0);
    let (status, body) = post_json(&register, form(&child, &code));
    assert_eq!(status, 201, "{body}");
    assert_eq!(serve.metric("roster_argon2_checks_total"), 1.0);
}

/// With `ROSTER_LOG_FORMAT=json` every log line is a JSON object; each request has one
/// access line (method, route pattern, status, latency, the viewer's organisation) whose
/// id the response carries as `x-request-id`; no ID number, password or token is in it.
#[sqlx::test(migrations = false)]
async fn json_logs_give_one_access_line_per_request_with_its_id(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    add_admin(&url).await;
    let s3 = S3::start();
    let serve = Serve::start(&s3, &url, &[("ROSTER_LOG_FORMAT", "json")]);
    let (status, body) = post_json(
        &format!("{}/api/v1/login", serve.base),
        serde_json::json!({"id_number": ADMIN_ID, "password": INITIAL}),
    );
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM orgs WHERE full_name = $1")
        .bind(PROVINCE)
        .fetch_one(&pool)
        .await
        .unwrap();
    let me = agent()
        .get(format!("{}/api/v1/me", serve.base))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let me_id = me.headers()["x-request-id"].to_str().unwrap().to_string();
    let missing = agent()
        .get(format!("{}/api/v1/uploads/123456", serve.base))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let missing_id = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(me_id, missing_id);
    std::thread::sleep(Duration::from_millis(300));
    let log = serve.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "roster::access")
        .collect();
    assert_eq!(access.len(), 3, "{log}");
    let of = |id: &str| {
        let hits: Vec<_> = access.iter().filter(|l| l["request_id"] == id).collect();
        assert_eq!(hits.len(), 1, "{id}: {log}");
        hits[0]
    };
    let me_line = of(&me_id);
    assert_eq!(me_line["method"], "GET");
    assert_eq!(me_line["route"], "/api/v1/me");
    assert_eq!(me_line["status"], 200);
    assert_eq!(me_line["org_id"], org_id);
    assert!(me_line["latency_ms"].is_number());
    let missing_line = of(&missing_id);
    assert_eq!(
        missing_line["route"], "/api/v1/uploads/{id}",
        "the pattern, not the path"
    );
    // The initial password is not changed yet: refused, but counted under its pattern.
    assert_eq!(missing_line["status"], 403);
    for secret in [ADMIN_ID, INITIAL, token.as_str(), "123456"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// `roster worker` with `ROSTER_LOG_FORMAT=json`: every line of its log is a JSON
/// object, the upload's end among them.
#[sqlx::test(migrations = false)]
async fn the_worker_logs_json_lines_too(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let s3 = S3::start();
    let (id, _) =
        super::service::submit(&s3, &url, &super::root().join("sample-data/members.xlsx"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = s3.roster(&url);
    worker
        .args(["worker"])
        .env("ROSTER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("ROSTER_STATS_SCHEDULE", "off")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let worker = super::service::Worker(worker.spawn().unwrap());
    let s = super::service::wait_final(&s3, &url, id, Duration::from_secs(120));
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(worker.terminate(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "upload processed" && l["status"] == "succeeded"),
        "{text}"
    );
}
