//! Headers on every response: a content security policy that allows only the server's
//! own scripts and styles and no framing, no MIME sniffing, no referrer to other sites;
//! and requests carrying NUL refused before any handler sees them.

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

/// Largest JSON or form body read whole (anything larger is refused): the API's and
/// the pages' bodies are a few hundred bytes; uploads are multipart and stream.
const SMALL_BODY: usize = 64 << 10;

/// Refuses, with the API's 400, a request that carries a NUL character in its path, its
/// query or a JSON or form body: no text with NUL can be stored (PostgreSQL refuses it)
/// or name anything, so it is a bad request wherever it appears.
pub async fn reject_nul(req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let refused = || crate::ApiError::BadRequest("请求中含有空字符（NUL）".into()).into_response();
    let uri = req.uri().to_string();
    if uri.contains("%00") || uri.contains('\0') {
        return refused();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if !(json || form) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, SMALL_BODY).await else {
        return crate::ApiError::BadRequest("请求内容过大或无法读取".into()).into_response();
    };
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    if bytes.contains(&0) || (json && text.contains("\\u0000")) || (form && text.contains("%00")) {
        return refused();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}
