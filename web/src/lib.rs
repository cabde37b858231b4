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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_upload_bytes: 512 << 20,
            secure_cookies: false,
            link_expiry: Duration::from_secs(300),
            spool_dir: std::env::temp_dir(),
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

/// Every route of the service: pages, the API and its OpenAPI document, the operators'
/// probes; security headers and metrics on every response.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
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
        .merge(metrics::router())
        .layer(upload_limit)
        .layer(axum::middleware::from_fn(security::reject_nul))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        // A span per request (method, path, status, latency at debug level): no headers,
        // no bodies, so no cookie, token or password reaches a log.
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Responses go out in more than one write: without TCP_NODELAY, Nagle's algorithm
    // and the client's delayed ACK hold the last one back for up to 200 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
