//! The registry's front door (SPEC §12): server-rendered pages in Chinese and a JSON API
//! over the same PostgreSQL and object storage as the workers. It keeps no state of its
//! own (sessions live in PostgreSQL), so any number of `roster serve` run side by side.
//!
//! Handlers are thin: extract, authorise ([`auth::authorize`], the one access check),
//! call the registry or `jobs`, render.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod pages;
pub mod security;
pub mod server;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sqlx::PgPool;

pub use error::ApiError;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest upload accepted, in bytes (`ROSTER_MAX_FILE_MB`).
    pub max_upload_bytes: u64,
    /// Cookies are `Secure` (the server runs behind HTTPS).
    pub secure_cookies: bool,
    /// How long a download link works (at most 5 minutes).
    pub link_expiry: Duration,
    /// Where uploads are spooled before they go to object storage.
    pub spool_dir: std::path::PathBuf,
    /// A connection that has not sent a request's headers whole by then is closed.
    pub header_read_timeout: Duration,
    /// The longest a request but an upload may take, its body included.
    pub request_timeout: Duration,
    /// The longest an upload request may take (its file streams in).
    pub upload_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (`ROSTER_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Refused registrations per client address, and per organisation, within 15
    /// minutes, after which registration is refused unheard.
    pub register_throttle: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_upload_bytes: 512 << 20,
            secure_cookies: false,
            link_expiry: Duration::from_secs(300),
            spool_dir: std::env::temp_dir(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(3600),
            trusted_proxies: Vec::new(),
            register_throttle: registry::accounts::THROTTLE_AFTER,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub pool: PgPool,
    pub storage: jobs::Storage,
    pub config: Config,
    pub metrics: metrics::Metrics,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(pool: PgPool, storage: jobs::Storage, mut config: Config) -> AppState {
        config.link_expiry = config.link_expiry.min(Duration::from_secs(300));
        AppState(Arc::new(Inner {
            pool,
            storage,
            config,
            metrics: metrics::Metrics::default(),
        }))
    }
}

/// Every route of the service: pages, the API and its OpenAPI document, `/healthz`;
/// security headers, small bodies and timeouts, metrics and an access line on every
/// response. `/metrics` and `/readyz` are on the operator listener
/// ([`metrics::operator_router`]), not here.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    // Extractors may read up to an upload; `security::bodies` has already cut every
    // other route's body to 64 KiB.
    let upload_limit = DefaultBodyLimit::max(state.config.max_upload_bytes as usize + (1 << 20));
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .merge(pages::router().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::csrf_cookie,
        )))
        .merge(pages::static_router())
        .merge(metrics::router())
        .layer(upload_limit)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::bodies,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}

/// Serves until `shutdown` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = state.config.header_read_timeout;
    server::serve_router(listener, router(state), timeout, shutdown).await
}

/// Serves the operators' endpoints ([`metrics::operator_router`]) until `shutdown`.
pub async fn serve_operator(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = state.config.header_read_timeout;
    server::serve_router(listener, metrics::operator_router(state), timeout, shutdown).await
}
