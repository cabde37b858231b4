//! What operators watch: `/healthz` (the process is up), `/readyz` (database and object
//! storage answer) and `/metrics` in Prometheus' text format: HTTP latency and counts
//! from this process, uploads by status, job durations and rows validated from the
//! registry (the same for every instance).

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// HTTP counters of this process, by route pattern and status class.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<std::collections::BTreeMap<(String, String, u16), Series>>,
}

#[derive(Default, Clone)]
struct Series {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let s = http
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        for (b, le) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
        s.count += 1;
        s.sum += seconds;
    }
}

/// The method as a metric label: one of HTTP's own, or `other`, so an invented method
/// never makes a new series.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The viewer of a request, told by the extractor that found them, for the access line.
#[derive(Clone, Default)]
pub struct ViewerSlot(pub std::sync::Arc<std::sync::OnceLock<i64>>);

/// A request's id: given back as `x-request-id` and on its access line.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub u64);

fn next_request_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // Unique across processes and restarts in practice: a random high part per process.
    let base = *BASE.get_or_init(|| {
        u64::from_str_radix(&registry::accounts::new_secret()[..8], 16).unwrap_or(0) << 32
    });
    base | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF)
}

/// Times every request by its route pattern (never its concrete path: ids stay out),
/// gives it an id, and writes one access line: method, route, status, latency, the
/// viewer's organisation id. No path parameters, query, headers or bodies, so no
/// personal data and no token reaches the log.
pub async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let id = RequestId(next_request_id());
    let viewer = ViewerSlot::default();
    req.extensions_mut().insert(id);
    req.extensions_mut().insert(viewer.clone());
    let start = Instant::now();
    let mut res = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    state.metrics.observe(method, &route, status, seconds);
    let request_id = format!("{:016x}", id.0);
    tracing::info!(
        target: "roster::access",
        request_id = %request_id,
        method,
        route = %route,
        status,
        latency_ms = (seconds * 1000.0 * 10.0).round() / 10.0,
        org_id = viewer.0.get().copied(),
        "request"
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// What the public port answers for operators: only that the process is up.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    ready(&state.pool, &state.storage).await
}

async fn ready(pool: &sqlx::PgPool, storage: &jobs::Storage) -> Response {
    let db = registry::ping(pool).await.is_ok();
    let storage = storage.ready().await.is_ok();
    let body = format!(
        "database: {}\nstorage: {}\n",
        if db { "ok" } else { "unavailable" },
        if storage { "ok" } else { "unavailable" }
    );
    let status = if db && storage {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP roster_http_request_duration_seconds HTTP request latency by route.\n");
    out.push_str("# TYPE roster_http_request_duration_seconds histogram\n");
    let http = state
        .metrics
        .http
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for ((method, route, status), s) in &http {
        let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
        for (b, le) in s.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {b}"
            );
        }
        let _ = writeln!(
            out,
            "roster_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            s.count
        );
        let _ = writeln!(
            out,
            "roster_http_request_duration_seconds_sum{{{labels}}} {}",
            s.sum
        );
        let _ = writeln!(
            out,
            "roster_http_request_duration_seconds_count{{{labels}}} {}",
            s.count
        );
    }
    let (slots, peak) = registry::accounts::argon2_peak();
    let _ = writeln!(
        out,
        "# HELP roster_argon2_checks_total Argon2 checks and hashes run by this process.\n\
         # TYPE roster_argon2_checks_total counter\n\
         roster_argon2_checks_total {}\n\
         # HELP roster_argon2_slots Argon2 checks this process runs at once at most.\n\
         # TYPE roster_argon2_slots gauge\n\
         roster_argon2_slots {slots}\n\
         # HELP roster_argon2_peak The most Argon2 checks this process has run at once.\n\
         # TYPE roster_argon2_peak gauge\n\
         roster_argon2_peak {peak}",
        registry::accounts::argon2_runs()
    );
    prometheus(&state.pool, out).await
}

/// `out` followed by the registry's upload metrics, as a Prometheus text response.
async fn prometheus(pool: &sqlx::PgPool, mut out: String) -> Response {
    match registry::uploads::metrics(pool).await {
        Ok(m) => out.push_str(&m.prometheus()),
        Err(e) => tracing::warn!(error = %e, "upload metrics unavailable"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The operators' endpoints of a worker process (`roster worker --metrics ADDR`):
/// `/healthz`, `/readyz` and `/metrics` with the registry's upload metrics (uploads by
/// status, job durations, rows validated), the same as the service's.
pub async fn serve_worker(
    listener: tokio::net::TcpListener,
    pool: sqlx::PgPool,
    storage: jobs::Storage,
) -> std::io::Result<()> {
    type Shared = State<(sqlx::PgPool, jobs::Storage)>;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(async |State((pool, storage)): Shared| ready(&pool, &storage).await),
        )
        .route(
            "/metrics",
            get(async |State((pool, _)): Shared| prometheus(&pool, String::new()).await),
        )
        .with_state((pool, storage));
    axum::serve(listener, app).await
}

/// The operators' endpoints of `roster serve` (`--metrics ADDR`), apart from the public
/// port: `/healthz`, `/readyz`, and `/metrics` with this process's HTTP series.
pub fn operator_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}
