//! The test environment: a fresh database (dropped at the end), the sample organisation
//! tree plus a few organisations the access tests need, an `s3s-fs` server, the service
//! on a free port, workers on demand, admins at any position, and a small HTTP client
//! that neither follows redirects nor turns statuses into errors.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::s3::{ACCESS_KEY, BUCKET, S3, SECRET_KEY};

/// Organisations added to the sample tree: a sibling of the school committee that
/// uploads in the access tests.
pub const EXTRA_ORGS: &str =
    "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号
广州市荔湾区第2中学团委,荔湾二中,团委,共青团广州市荔湾区委员会,,,4400000099
广州市荔湾区第2中学高一1班团支部,高一1班,团支部,广州市荔湾区第2中学团委,,,
";

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub pool: PgPool,
    pub storage: jobs::Storage,
    pub base: String,
    /// The operators' listener (`--metrics`): `/metrics`, `/readyz`, `/healthz`.
    pub operator: String,
    /// Kept for the test's duration (the server stops when it drops).
    _s3: S3,
    db: String,
    admin_url: String,
    server: tokio::task::JoinHandle<()>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Env {
    pub fn start() -> Env {
        Env::with_config(web::Config::default())
    }

    pub fn with_config(mut config: web::Config) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let db = format!("roster_web_{}", &registry::accounts::new_secret()[..16]);
        let (server_url, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{server_url}/{db}");
        let pool = rt.block_on(async {
            let admin = PgPool::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(&url)
                .await
                .unwrap();
            jobs::setup(&pool).await.unwrap();
            for bytes in [
                std::fs::read(root().join("sample-data/orgs.csv")).unwrap(),
                EXTRA_ORGS.as_bytes().to_vec(),
            ] {
                let tree = registry::parse_org_file(&pool, bytes)
                    .await
                    .unwrap()
                    .unwrap();
                registry::import_orgs(&pool, &tree).await.unwrap();
            }
            pool
        });
        let s3 = S3::start();
        let storage = jobs::Storage::with_endpoint(&s3.endpoint(), ACCESS_KEY, SECRET_KEY, BUCKET);
        rt.block_on(storage.ensure_bucket()).unwrap();
        let spool = tempfile::tempdir().unwrap().keep();
        config.spool_dir = spool;
        let state = web::AppState::new(pool.clone(), storage.clone(), config);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let operator_listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let operator = format!("http://{}", operator_listener.local_addr().unwrap());
        let operator_state = state.clone();
        let server = rt.spawn(async move {
            let public = web::serve(listener, state, std::future::pending());
            let operators =
                web::serve_operator(operator_listener, operator_state, std::future::pending());
            let (a, b) = tokio::join!(public, operators);
            a.unwrap();
            b.unwrap();
        });
        Env {
            rt,
            pool,
            storage,
            base,
            operator,
            _s3: s3,
            db,
            admin_url,
            server,
        }
    }

    /// Workers in the background until the guard drops.
    pub fn start_worker(&self) -> WorkerGuard<'_> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = jobs::WorkerOptions {
            liveness: jobs::queue::Liveness {
                heartbeat: Duration::from_secs(1),
                missed_heartbeats: 3,
            },
            name: format!("test-{}", &registry::accounts::new_secret()[..8]),
            ..jobs::WorkerOptions::default()
        };
        let run = jobs::run(
            self.pool.clone(),
            self.storage.clone(),
            options,
            async move {
                let _ = stopped.await;
                Ok(())
            },
        );
        let task = self.rt.spawn(async move {
            run.await.expect("the workers run");
        });
        WorkerGuard {
            env: self,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Runs workers until every upload is finished (or `within` runs out).
    pub fn process_uploads(&self, within: Duration) {
        let _worker = self.start_worker();
        let deadline = Instant::now() + within;
        loop {
            let open: i64 = self
                .rt
                .block_on(
                    sqlx::query_scalar(
                        "SELECT count(*) FROM uploads WHERE status IN ('queued', 'running')",
                    )
                    .fetch_one(&self.pool),
                )
                .unwrap();
            if open == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} uploads still open");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates an admin of `org` with this password (no change forced), and returns the
    /// account name (the ID number).
    pub fn admin(&self, org: &str, seq: u32, password: &str, must_change: bool) -> String {
        let id = id_number("440103", NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(), seq);
        self.add_admin(org, &id, "测试管理员", password, must_change);
        id
    }

    /// Creates an admin as `roster admins add` does, with this password.
    pub fn add_admin(&self, org: &str, id: &str, name: &str, password: &str, must_change: bool) {
        self.rt
            .block_on(registry::accounts::bootstrap_admin(
                &self.pool,
                &registry::accounts::NewAdmin {
                    org,
                    name,
                    id_number: id,
                    phone: "13800138000",
                    password_hash: registry::accounts::hash_password(password),
                    must_change_password: must_change,
                },
            ))
            .unwrap();
    }

    /// Logs in through the API: the token.
    pub fn login(&self, id_number: &str, password: &str) -> String {
        let r = self.post_json(
            "/api/v1/login",
            None,
            &serde_json::json!({"id_number": id_number, "password": password}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, auth: Option<&Auth>) -> Reply {
        reply(with_auth(self.agent().get(self.url(path)), auth).call())
    }

    /// A POST of `body` as `content_type`, whatever it holds.
    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        reply(
            self.agent()
                .post(self.url(path))
                .header("content-type", content_type)
                .send(body),
        )
    }

    /// Writes `request` on a new connection and reads what comes back until a response's
    /// headers are in, the server closes it, or `within` passes: the bytes, and how long
    /// it took.
    pub fn raw(&self, request: &[u8], within: Duration) -> (Vec<u8>, Duration) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(within)).unwrap();
        let clock = Instant::now();
        tcp.write_all(request).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while clock.elapsed() < within {
            match tcp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        (got, clock.elapsed())
    }

    /// A GET on the operators' listener.
    pub fn get_operator(&self, path: &str) -> Reply {
        reply(self.agent().get(format!("{}{path}", self.operator)).call())
    }

    pub fn post_json(&self, path: &str, auth: Option<&Auth>, body: &serde_json::Value) -> Reply {
        let req = self
            .agent()
            .post(self.url(path))
            .header("content-type", "application/json");
        reply(with_auth(req, auth).send(body.to_string().as_bytes()))
    }

    pub fn post_form(&self, path: &str, auth: Option<&Auth>, fields: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", web::api::percent(k), web::api::percent(v)))
            .collect();
        let req = self
            .agent()
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        reply(with_auth(req, auth).send(body.join("&").as_bytes()))
    }

    /// A multipart POST: text fields, then the file.
    pub fn post_multipart(
        &self,
        path: &str,
        auth: Option<&Auth>,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> Reply {
        let boundary = "----rosterboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{}\"\r\ncontent-type: application/octet-stream\r\n\r\n",
                file.0
            )
            .as_bytes(),
        );
        body.extend(file.1);
        body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self.agent().post(self.url(path)).header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        reply(with_auth(req, auth).send(&body[..]))
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    }

    pub fn audit(&self) -> Vec<registry::audit::AuditRow> {
        self.rt
            .block_on(registry::audit::recent(&self.pool, 1000))
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
        let (pool, admin_url, db) = (self.pool.clone(), self.admin_url.clone(), self.db.clone());
        self.rt.block_on(async move {
            pool.close().await;
            if let Ok(admin) = PgPool::connect(&admin_url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
            }
        });
    }
}

/// Workers running in the background; stopped (jobs in flight finished) on drop.
pub struct WorkerGuard<'a> {
    env: &'a Env,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.env.rt.block_on(task);
        }
    }
}

/// How a request proves who sends it.
#[derive(Debug, Clone)]
pub enum Auth {
    Bearer(String),
    /// The session cookie and the CSRF token forms and the header repeat (the
    /// session's own; sent as the pre-session cookie too, for a session that is no token).
    Cookie {
        session: String,
        csrf: String,
    },
}

impl Auth {
    pub fn cookie(token: &str) -> Auth {
        Auth::Cookie {
            session: token.to_string(),
            csrf: web::auth::csrf_for_session(token),
        }
    }

    pub fn csrf(&self) -> &str {
        match self {
            Auth::Cookie { csrf, .. } => csrf,
            Auth::Bearer(_) => "",
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: Option<&Auth>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(Auth::Bearer(t)) => req.header("authorization", format!("Bearer {t}")),
        Some(Auth::Cookie { session, csrf }) => req
            .header(
                "cookie",
                format!("roster_session={session}; roster_csrf={csrf}"),
            )
            .header("x-csrf-token", csrf.as_str()),
        None => req,
    }
}

fn reply(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let res = res.unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = res.into_body().read_to_vec().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// A valid ID number (GB 11643) from a region, a birth date and a sequence.
pub fn id_number(region: &str, birth: NaiveDate, seq: u32) -> String {
    let first17 = format!("{region}{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    let check = pipeline::rules::identity::id_check_char(&first17);
    format!("{first17}{check}")
}
