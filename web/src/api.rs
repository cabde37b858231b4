//! The JSON API under `/api/v1` (SPEC §12.4): the contract scripts and checks depend on,
//! described by the OpenAPI document the server serves. Every path is declared with its
//! handler (utoipa-axum), so the routes and the document cannot drift apart.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use registry::access::{Grant, ReportRow, Resource, UploadRow};
use registry::accounts::ChildCode;
use registry::stats::ExportRow;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AnyViewer, Client, Viewer, audit, authorize, set_cookie};
use crate::error::ErrorBody;
use crate::extract::{Json as JsonBody, Multipart, Path, Query};
use crate::{ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "roster",
        description = "团员名单批量导入：账号、按组织授权的上传、报告与完成情况（SPEC §12.4）"
    ),
    modifiers(&Bearer),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes with their OpenAPI document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(password))
        .routes(routes!(register))
        .routes(routes!(me))
        .routes(routes!(create_upload, list_uploads))
        .routes(routes!(upload))
        .routes(routes!(reports))
        .routes(routes!(report))
        .routes(routes!(stats))
        .routes(routes!(codes))
        .routes(routes!(regenerate_code))
        .routes(routes!(template))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// 身份证号码
    pub id_number: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer TOKEN`.
    pub token: String,
    pub must_change_password: bool,
}

/// The one answer to every refused login: wrong account, wrong password, locked.
pub const LOGIN_REFUSED: &str = "身份证号码或密码不正确，或账号已被暂时锁定";

/// Logs in: a session cookie and a token for scripts.
pub async fn log_in(
    state: &AppState,
    client: &Client,
    id_number: &str,
    password: &str,
) -> Result<(String, registry::accounts::Admin), ApiError> {
    use registry::accounts::Login;
    match registry::accounts::login(&state.pool, id_number, password).await? {
        Login::Session { admin, token } => {
            audit(state, Some(admin.id), "login", None, None, client).await?;
            Ok((token, admin))
        }
        Login::Refused { admin_id } => {
            audit(state, admin_id, "login_refused", None, None, client).await?;
            Err(ApiError::Unauthorized(LOGIN_REFUSED))
        }
    }
}

/// Ends a session, on the audit trail.
pub async fn log_out(state: &AppState, client: &Client, token: &str) -> Result<(), ApiError> {
    if let Some(admin_id) = registry::accounts::logout(&state.pool, token).await? {
        audit(state, Some(admin_id), "logout", None, None, client).await?;
    }
    Ok(())
}

/// The session cookie of a new session.
pub fn session_cookie(
    state: &AppState,
    token: &str,
) -> (header::HeaderName, axum::http::HeaderValue) {
    (
        header::SET_COOKIE,
        set_cookie(
            crate::auth::session_cookie_name(state.config.secure_cookies),
            token,
            Some(registry::accounts::SESSION_HOURS * 3600),
            state.config.secure_cookies,
        ),
    )
}

#[utoipa::path(post, path = "/api/v1/login", request_body = LoginRequest,
    responses((status = 400, body = ErrorBody), (status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    client: Client,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let (token, admin) = log_in(&state, &client, &req.id_number, &req.password).await?;
    let cookie = session_cookie(&state, &token);
    Ok((
        [cookie],
        Json(LoginResponse {
            token,
            must_change_password: admin.must_change_password,
        }),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/logout", security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    client: Client,
    AnyViewer(v): AnyViewer,
) -> Result<Response, ApiError> {
    log_out(&state, &client, &v.token).await?;
    let clear = set_cookie(
        crate::auth::session_cookie_name(state.config.secure_cookies),
        "",
        Some(0),
        state.config.secure_cookies,
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordRequest {
    pub old: String,
    pub new: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

#[utoipa::path(post, path = "/api/v1/password", request_body = PasswordRequest, security(("bearer" = [])),
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn password(
    State(state): State<AppState>,
    AnyViewer(v): AnyViewer,
    client: Client,
    JsonBody(req): JsonBody<PasswordRequest>,
) -> Result<Json<Done>, ApiError> {
    registry::accounts::change_password(&state.pool, v.admin.id, &req.old, &req.new, &v.token)
        .await?;
    audit(&state, Some(v.admin.id), "password", None, None, &client).await?;
    Ok(Json(Done { ok: true }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 组织全称
    pub org: String,
    /// 管理员注册码
    pub code: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub org: String,
    pub name: String,
}

/// Registers an admin with an organisation's code (SPEC §12.1).
pub async fn register_admin(
    state: &AppState,
    client: &Client,
    req: &RegisterRequest,
) -> Result<i64, ApiError> {
    let registration = registry::accounts::Registration {
        org: &req.org,
        code: &req.code,
        name: &req.name,
        id_number: &req.id_number,
        phone: &req.phone,
        password: &req.password,
        client: client.0.as_deref(),
        throttle_after: state.config.register_throttle,
    };
    match registry::accounts::register(&state.pool, &registration, pipeline::today_in_china()).await
    {
        Ok(id) => {
            audit(state, Some(id), "register", None, Some(&req.org), client).await?;
            Ok(id)
        }
        Err(e) => {
            let e = ApiError::from(e);
            // Every refusal is on the trail with the organisation named, never the
            // person's numbers.
            if !matches!(e, ApiError::Internal(_)) {
                audit(
                    state,
                    None,
                    "register_refused",
                    None,
                    Some(&req.org),
                    client,
                )
                .await?;
            }
            Err(e)
        }
    }
}

#[utoipa::path(post, path = "/api/v1/register", request_body = RegisterRequest,
    responses((status = 201, body = Registered), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, description = "Too many refused registrations from this address or for this organisation", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    client: Client,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    register_admin(&state, &client, &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            org: req.org,
            name: req.name,
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub org: String,
    pub must_change_password: bool,
}

#[utoipa::path(get, path = "/api/v1/me", security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(AnyViewer(v): AnyViewer) -> Json<Me> {
    Json(Me {
        name: v.admin.name,
        org: v.admin.org_name,
        must_change_password: v.admin.must_change_password,
    })
}

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The roster (xlsx, xlsm, xlsb, xls or ods).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `members` (template A) or `cadres` (template B); default `members`.
    template: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadId {
    pub id: i64,
}

#[utoipa::path(post, path = "/api/v1/uploads", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadId, description = "a new upload"),
              (status = 200, body = UploadId, description = "the same content again: the same upload"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
async fn create_upload(
    State(state): State<AppState>,
    v: Viewer,
    client: Client,
    headers: HeaderMap,
    Multipart(multipart): Multipart,
) -> Result<(StatusCode, Json<UploadId>), ApiError> {
    let r = crate::uploads::receive(&state, &v, &headers, multipart, None).await?;
    audit(
        &state,
        Some(v.admin.id),
        "upload",
        Some(r.upload_id),
        None,
        &client,
    )
    .await?;
    let status = if r.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UploadId { id: r.upload_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Page number, from 1.
    pub page: Option<i64>,
    /// Only uploads with this status.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/uploads", params(ListQuery), security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = Vec<UploadRow>), (status = 401, body = ErrorBody)))]
async fn list_uploads(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<UploadRow>>, ApiError> {
    let rows = registry::access::visible_uploads(
        &state.pool,
        v.admin.org_id,
        q.page.unwrap_or(1).clamp(1, 1_000_000),
        q.status.as_deref(),
    )
    .await?;
    Ok(Json(rows))
}

/// An upload's status (what `roster status` prints, but for the report list, which is
/// `/reports` filtered by the viewer), plus its stage and rows read while it runs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadView {
    pub upload_id: i64,
    pub status: String,
    pub template: String,
    pub attempts: i32,
    pub rows_total: Option<i32>,
    pub rows_valid: Option<i32>,
    pub rows_with_errors: Option<i32>,
    pub rows_with_warnings: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub timings: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub file_error: Option<serde_json::Value>,
    pub failure: Option<String>,
    pub stage: Option<String>,
    pub rows_done: Option<i64>,
    /// Findings by code: `[code, severity, count]`.
    pub counts_by_code: Vec<CodeCount>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CodeCount {
    pub code: String,
    pub severity: String,
    pub count: i64,
}

/// An upload the viewer may see, with its counts by code.
pub async fn upload_view(state: &AppState, v: &Viewer, id: i64) -> Result<UploadView, ApiError> {
    authorize(state, v, Resource::Upload(id)).await?;
    let s = registry::uploads::status(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let counts = registry::access::counts_by_code(&state.pool, id).await?;
    Ok(UploadView {
        upload_id: s.upload_id,
        status: s.status,
        template: s.template,
        attempts: s.attempts,
        rows_total: s.rows_total,
        rows_valid: s.rows_valid,
        rows_with_errors: s.rows_with_errors,
        rows_with_warnings: s.rows_with_warnings,
        timings: s.timings,
        file_error: s.file_error,
        failure: s.failure,
        stage: s.stage,
        rows_done: s.rows_done,
        counts_by_code: counts
            .into_iter()
            .map(|(code, severity, count)| CodeCount {
                code,
                severity,
                count,
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/uploads/{id}", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = UploadView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<UploadView>, ApiError> {
    Ok(Json(upload_view(&state, &v, id).await?))
}

/// The reports of an upload the viewer may download.
pub async fn visible_reports(
    state: &AppState,
    v: &Viewer,
    id: i64,
) -> Result<Vec<ReportRow>, ApiError> {
    authorize(state, v, Resource::Upload(id)).await?;
    Ok(registry::access::visible_reports(&state.pool, v.admin.org_id, id).await?)
}

#[utoipa::path(get, path = "/api/v1/uploads/{id}/reports", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = Vec<ReportRow>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reports(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ReportRow>>, ApiError> {
    Ok(Json(visible_reports(&state, &v, id).await?))
}

#[utoipa::path(get, path = "/api/v1/uploads/{id}/reports/{name}",
    params(("id" = i64, Path), ("name" = String, Path)), security(("bearer" = [])),
    responses((status = 400, body = ErrorBody),
              (status = 200, description = "an organisation workbook (an entry of the upload's workbook bundle), the file itself",
               content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
              (status = 302, description = "a presigned link, valid at most 5 minutes (summary.xlsx, summary.json, escalations.xlsx)"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn report(
    State(state): State<AppState>,
    v: Viewer,
    client: Client,
    Path((id, name)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let Grant::Report {
        object_key, range, ..
    } = authorize(
        &state,
        &v,
        Resource::Report {
            upload_id: id,
            name: &name,
        },
    )
    .await?
    else {
        return Err(ApiError::NotFound);
    };
    // An entry of the workbook bundle: its bytes of the bundle, passed through. A link
    // cannot carry the range, so there is none to give.
    let response = match range {
        Some((offset, length)) => {
            let body = state
                .storage
                .get_range(&object_key, offset as u64, length as u64)
                .await?;
            let disposition = format!(
                "attachment; filename=\"report.xlsx\"; filename*=UTF-8''{}",
                percent(&name)
            );
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CONTENT_LENGTH, length.to_string()),
                ],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        None => {
            let link = state
                .storage
                .presign_get(&object_key, state.config.link_expiry)
                .await?;
            (StatusCode::FOUND, [(header::LOCATION, link)]).into_response()
        }
    };
    audit(
        &state,
        Some(v.admin.id),
        "download",
        Some(id),
        Some(&name),
        &client,
    )
    .await?;
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatsQuery {
    /// 组织全称 (default: the viewer's organisation).
    pub org: Option<String>,
    /// The snapshot's date (default: the latest).
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub date: NaiveDate,
    pub rows: Vec<ExportRow>,
}

/// The statistics rows of an organisation below the viewer and those below it, as far
/// as `reach`.
pub async fn stats_of(
    state: &AppState,
    v: &Viewer,
    org: Option<&str>,
    date: Option<NaiveDate>,
    reach: registry::stats::Reach,
) -> Result<Stats, ApiError> {
    let org = org.unwrap_or(&v.admin.org_name);
    let Grant::Org { full_name, .. } = authorize(state, v, Resource::Org(org)).await? else {
        return Err(ApiError::NotFound);
    };
    use registry::stats::ExportError;
    match registry::stats::rows_below(&state.pool, &full_name, date, reach).await {
        Ok((date, rows)) => Ok(Stats { date, rows }),
        Err(ExportError::NoSnapshot | ExportError::UnknownOrg(_)) => Err(ApiError::NotFound),
        Err(e) => Err(ApiError::internal(e)),
    }
}

#[utoipa::path(get, path = "/api/v1/stats", params(StatsQuery), security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = Stats), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn stats(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let all = registry::stats::Reach::Subtree;
    Ok(Json(
        stats_of(&state, &v, q.org.as_deref(), q.date, all).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/codes", security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = Vec<ChildCode>), (status = 401, body = ErrorBody)))]
async fn codes(State(state): State<AppState>, v: Viewer) -> Result<Json<Vec<ChildCode>>, ApiError> {
    Ok(Json(
        registry::accounts::child_codes(&state.pool, v.admin.org_id).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegenerateRequest {
    /// 组织全称 of a direct child.
    pub org: String,
}

/// A new code for a direct child of the viewer's organisation.
pub async fn regenerate(
    state: &AppState,
    v: &Viewer,
    org: &str,
    client: &Client,
) -> Result<ChildCode, ApiError> {
    let Grant::Org { full_name, .. } = authorize(state, v, Resource::ChildOrg(org)).await? else {
        return Err(ApiError::NotFound);
    };
    let code = registry::accounts::regenerate_code(&state.pool, v.admin.org_id, &full_name)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit(
        state,
        Some(v.admin.id),
        "regenerate_code",
        None,
        Some(&full_name),
        client,
    )
    .await?;
    let rows = registry::accounts::child_codes(&state.pool, v.admin.org_id).await?;
    let row = rows
        .into_iter()
        .find(|c| c.code == code)
        .ok_or(ApiError::NotFound)?;
    Ok(ChildCode {
        org: row.org,
        category: row.category,
        code: row.code,
        admins: row.admins,
    })
}

#[utoipa::path(post, path = "/api/v1/orgs/codes/regenerate", request_body = RegenerateRequest, security(("bearer" = [])),
    responses((status = 400, body = ErrorBody), (status = 200, body = ChildCode), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn regenerate_code(
    State(state): State<AppState>,
    v: Viewer,
    client: Client,
    JsonBody(req): JsonBody<RegenerateRequest>,
) -> Result<Json<ChildCode>, ApiError> {
    Ok(Json(regenerate(&state, &v, &req.org, &client).await?))
}

#[utoipa::path(get, path = "/api/v1/templates/{file}",
    params(("file" = String, Path, description = "members.xlsx or cadres.xlsx")),
    responses((status = 400, body = ErrorBody), (status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
              (status = 404, body = ErrorBody)))]
async fn template(Path(file): Path<String>) -> Result<Response, ApiError> {
    let kind = match file.as_str() {
        "members.xlsx" => schemas::TemplateKind::Members,
        "cadres.xlsx" => schemas::TemplateKind::Cadres,
        _ => return Err(ApiError::NotFound),
    };
    let bytes = tokio::task::spawn_blocking(move || pipeline::blank::template_bytes(kind))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let disposition = format!(
        "attachment; filename=\"{file}\"; filename*=UTF-8''{}",
        percent(&format!("{}.xlsx", kind.template().title))
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// RFC 5987 percent-encoding of a file name.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
