//! Who is asking, and may they: the session (cookie) or API token (`Authorization:
//! Bearer`) behind a request, CSRF tokens for everything a cookie can send, and
//! [`authorize`], the one access check every route that names a resource goes through.

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, Method, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use registry::access::{Grant, Resource};
use registry::accounts::Admin;

use crate::{ApiError, AppState};

/// The session cookie's name: with the `__Host-` prefix when cookies are Secure, so no
/// other host or path can set or shadow it.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-roster_session"
    } else {
        "roster_session"
    }
}

/// The name of the cookie that carries the CSRF token of a browser with no session yet
/// (the login and registration forms).
pub fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-roster_csrf"
    } else {
        "roster_csrf"
    }
}

/// The CSRF token of a session: derived from its token, which only the browser holding
/// the (HttpOnly) session cookie and the server know. A new session (every login) has a
/// new one; another site can neither read nor choose it.
pub fn csrf_for_session(session_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("roster-csrf\0{session_token}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
/// The header an API call made with the session cookie carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of a cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A cookie as the service sets them: HttpOnly, SameSite=Lax, Secure behind HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

/// How the viewer proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cookie,
    Bearer,
}

/// A signed-in admin who has changed their initial password. Extracting it refuses
/// anyone else: `401` without a session, `403` while the password must be changed, and
/// `403` for an API call made with the cookie but without its CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub admin: Admin,
    pub token: String,
    pub via: Via,
}

/// A signed-in admin, whether or not the initial password has been changed (for `/me`,
/// changing the password and logging out).
#[derive(Debug, Clone)]
pub struct AnyViewer(pub Viewer);

impl FromRequestParts<AppState> for AnyViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| (t.trim().to_string(), Via::Bearer));
        let name = session_cookie_name(state.config.secure_cookies);
        let (token, via) = bearer
            .or_else(|| cookie(&parts.headers, name).map(|t| (t.to_string(), Via::Cookie)))
            .ok_or(ApiError::Unauthorized("请先登录"))?;
        let admin = registry::accounts::session(&state.pool, &token)
            .await?
            .ok_or(ApiError::Unauthorized("请先登录"))?;
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via == Via::Cookie && unsafe_method && parts.uri.path().starts_with("/api/") {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent.is_none_or(|t| t.as_bytes() != csrf_for_session(&token).as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        if let Some(slot) = parts.extensions.get::<crate::metrics::ViewerSlot>() {
            let _ = slot.0.set(admin.org_id);
        }
        Ok(AnyViewer(Viewer { admin, token, via }))
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AnyViewer(v) = AnyViewer::from_request_parts(parts, state).await?;
        if v.admin.must_change_password {
            return Err(ApiError::MustChangePassword);
        }
        Ok(v)
    }
}

/// The access check of SPEC §12.2: the grant, or `NotFound` for what the viewer may not
/// see, exactly as for what does not exist.
pub async fn authorize(
    state: &AppState,
    viewer: &Viewer,
    resource: Resource<'_>,
) -> Result<Grant, ApiError> {
    registry::access::authorize(&state.pool, viewer.admin.org_id, resource)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The CSRF token of this browser (double-submit: a cookie the forms repeat).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl CsrfToken {
    /// Whether a form's token is this browser's.
    pub fn check(&self, sent: &str) -> Result<(), ApiError> {
        if !self.0.is_empty() && self.0.as_bytes() == sent.as_bytes() {
            Ok(())
        } else {
            Err(ApiError::Csrf)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the CSRF layer is missing"))
    }
}

/// Gives the request its CSRF token ([`CsrfToken`]): with a session cookie, the
/// session's own ([`csrf_for_session`]); without one (the login and registration
/// forms), the browser's pre-session cookie, made here when it has none. That cookie is
/// set only on a response that no cache keeps.
pub async fn csrf_cookie(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let secure = state.config.secure_cookies;
    let is_token = |t: &&str| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(session) = cookie(req.headers(), session_cookie_name(secure)).filter(is_token) {
        let token = csrf_for_session(session);
        req.extensions_mut().insert(CsrfToken(token));
        return next.run(req).await;
    }
    let name = csrf_cookie_name(secure);
    let existing = cookie(req.headers(), name)
        .filter(is_token)
        .map(str::to_string);
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(registry::accounts::new_secret);
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut res = next.run(req).await;
    let cacheable = res
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("public") || v.contains("max-age"));
    if fresh && !cacheable {
        res.headers_mut()
            .append(header::SET_COOKIE, set_cookie(name, &token, None, secure));
    }
    res
}

/// The client's address, for the audit trail.
#[derive(Debug, Clone)]
pub struct Client(pub Option<String>);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Client(
            peer.map(|p| client_address(p, &parts.headers, &state.config.trusted_proxies))
                .map(|a| a.to_string()),
        ))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy
/// (`ROSTER_TRUSTED_PROXIES`); then the nearest address in `X-Forwarded-For` that is not
/// a trusted proxy itself (read from the right: the entries further left are the
/// client's own to write). A malformed entry stops the walk at the last proxy trusted.
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut nearest = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                nearest = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    nearest
}

/// Writes an event to the audit trail; a request whose event cannot be written fails.
pub async fn audit(
    state: &AppState,
    admin_id: Option<i64>,
    action: &str,
    upload_id: Option<i64>,
    detail: Option<&str>,
    client: &Client,
) -> Result<(), ApiError> {
    registry::audit::record(
        &state.pool,
        registry::audit::Event {
            admin_id,
            action,
            upload_id,
            detail,
            client: client.0.as_deref(),
        },
    )
    .await?;
    Ok(())
}
