//! Headers on every response: a content security policy that allows only the server's
//! own scripts and styles and no framing, no MIME sniffing, no referrer to other sites;
//! small bodies for everything but uploads, NUL refused, and the request timeouts.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Largest body of every route but the two upload routes, read whole before any
/// handler sees it: the API's and the pages' bodies are a few hundred bytes.
pub const SMALL_BODY: usize = 64 << 10;

/// The routes that take a roster file: their bodies stream to the spool under the
/// upload limit (`uploads`), everything else is small.
pub fn is_upload(method: &axum::http::Method, route: &str) -> bool {
    method == axum::http::Method::POST && matches!(route, "/api/v1/uploads" | "/upload")
}

/// Every request but an upload: its body read whole, at most [`SMALL_BODY`] bytes
/// whatever its content type (`413` past it, before reading on when it is declared),
/// within the request timeout (`408`), and refused with the API's `400` when it carries
/// a NUL character: in its path or query, as a raw byte, as a JSON escape in any
/// JSON-like type (`application/json`, `application/x+json`, `…+json`) or `%00` in a
/// form. No text with NUL can be stored (PostgreSQL refuses it) or name anything. Then
/// the handler runs under the request timeout (uploads under their own, longer one).
pub async fn bodies(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    let refused = || crate::ApiError::BadRequest("请求中含有空字符（NUL）".into()).into_response();
    let uri = req.uri().to_string();
    if uri.contains("%00") || uri.contains('\0') {
        return refused();
    }
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let timeouts = (state.config.request_timeout, state.config.upload_timeout);
    if is_upload(req.method(), &route) {
        return within(timeouts.1, next.run(req)).await;
    }
    let too_large = || {
        crate::ApiError::TooLarge(format!("请求内容超过 {} KiB", SMALL_BODY >> 10)).into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > SMALL_BODY as u64) {
        return too_large();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(timeouts.0, axum::body::to_bytes(body, SMALL_BODY)).await;
    let bytes = match read {
        Err(_) => {
            return (
                axum::http::StatusCode::REQUEST_TIMEOUT,
                axum::Json(crate::error::ErrorBody {
                    error: "请求超时".into(),
                }),
            )
                .into_response();
        }
        Ok(Err(_)) => return too_large(),
        Ok(Ok(bytes)) => bytes,
    };
    let json = content_type.contains("json");
    let form = content_type.contains("form-urlencoded");
    let lower = || String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    if bytes.contains(&0)
        || (json && lower().contains("\\u0000"))
        || (form && lower().contains("%00"))
    {
        return refused();
    }
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    within(timeouts.0, next.run(req)).await
}

/// `503` when the handler has not answered within `limit` (its work is dropped: a
/// transaction rolls back).
async fn within(limit: std::time::Duration, run: impl Future<Output = Response>) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, run).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(limit_s = limit.as_secs_f64(), "request timed out");
            let mut res = (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(crate::error::ErrorBody {
                    error: "服务器繁忙，请稍后重试".into(),
                }),
            )
                .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            res
        }
    }
}
