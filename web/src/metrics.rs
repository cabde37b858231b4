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
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
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

/// Times every request by its route pattern (never its concrete path: ids stay out).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe(
        &method,
        &route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
