//! The pages (SPEC §12.3), rendered on the server in Chinese from compile-time templates
//! (askama, `templates/`). Scripts and styles are the binary's own (`static/`). Every
//! form carries the browser's CSRF token; everything a page shows comes from the same
//! functions as the API's, through the same access check.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::api::{self, RegisterRequest, percent};
use crate::auth::{AnyViewer, Client, CsrfToken, Viewer, set_cookie};
use crate::{ApiError, AppState};
use registry::stats::Reach;

/// Every page route as `(method, path)`: the access tests check each is in their table.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/password"),
    ("POST", "/password"),
    ("GET", "/"),
    ("GET", "/upload"),
    ("POST", "/upload"),
    ("GET", "/uploads/{id}"),
    ("GET", "/stats"),
    ("GET", "/stats/export"),
    ("GET", "/codes"),
    ("POST", "/codes/regenerate"),
    ("GET", "/register"),
    ("POST", "/register"),
    ("GET", "/static/app.css"),
    ("GET", "/static/app.js"),
];

/// The routes of [`ROUTES`] but the static files ([`static_router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(password_page).post(password))
        .route("/", get(home))
        .route("/upload", get(upload_page).post(upload))
        .route("/uploads/{id}", get(detail))
        .route("/stats", get(stats))
        .route("/stats/export", get(export))
        .route("/codes", get(codes))
        .route("/codes/regenerate", post(regenerate))
        .route("/register", get(register_page).post(register))
}

/// The binary's own CSS and JS: cacheable, so outside the CSRF layer (no cookie is
/// ever set on a response a cache keeps).
pub fn static_router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
}

/// A request failed: sign-in problems become redirects, the rest an error page with the
/// API's status (404 reads the same whether the thing is missing or not the viewer's).
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        match e {
            ApiError::Unauthorized(_) => Redirect::to("/login").into_response(),
            ApiError::MustChangePassword => Redirect::to("/password").into_response(),
            e => {
                if let ApiError::Internal(detail) = &e {
                    tracing::error!(error = %detail, "page failed");
                }
                let title = match e.status() {
                    StatusCode::NOT_FOUND => "页面不存在",
                    StatusCode::FORBIDDEN => "请求被拒绝",
                    StatusCode::PAYLOAD_TOO_LARGE => "文件太大",
                    s if s.is_server_error() => "出错了",
                    _ => "请求有误",
                };
                let page = ErrorPage {
                    nav: None,
                    title,
                    message: e.to_string(),
                };
                (e.status(), Html(page.render().unwrap_or_default())).into_response()
            }
        }
    }
}

type PageResult = Result<Response, PageError>;

/// What the header shows of the signed-in admin.
struct Nav {
    name: String,
    org: String,
    csrf: String,
}

/// A signed-in admin on a page, with their CSRF token.
struct Page {
    viewer: Viewer,
    csrf: CsrfToken,
}

impl Page {
    fn nav(&self) -> Option<Nav> {
        Some(Nav {
            name: self.viewer.admin.name.clone(),
            org: self.viewer.admin.org_name.clone(),
            csrf: self.csrf.0.clone(),
        })
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let csrf = CsrfToken::from_request_parts(parts, state).await?;
        Ok(Page { viewer, csrf })
    }
}

/// A signed-in admin on a page, whether or not the initial password has been changed.
struct AnyPage {
    viewer: Viewer,
    csrf: CsrfToken,
}

impl FromRequestParts<AppState> for AnyPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let AnyViewer(viewer) = AnyViewer::from_request_parts(parts, state).await?;
        let csrf = CsrfToken::from_request_parts(parts, state).await?;
        Ok(AnyPage { viewer, csrf })
    }
}

fn html(t: impl Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
}

async fn login_page(csrf: CsrfToken) -> PageResult {
    html(LoginPage {
        nav: None,
        csrf: csrf.0,
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    id_number: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    csrf: CsrfToken,
    client: Client,
    axum::Form(f): axum::Form<LoginForm>,
) -> PageResult {
    csrf.check(&f.csrf)?;
    match api::log_in(&state, &client, &f.id_number, &f.password).await {
        Ok((token, admin)) => {
            let to = if admin.must_change_password {
                "/password"
            } else {
                "/"
            };
            Ok(([api::session_cookie(&state, &token)], Redirect::to(to)).into_response())
        }
        Err(ApiError::Unauthorized(message)) => {
            let page = LoginPage {
                nav: None,
                csrf: csrf.0,
                error: Some(message.to_string()),
            };
            Ok((StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    csrf: CsrfToken,
    client: Client,
    headers: HeaderMap,
    axum::Form(f): axum::Form<CsrfForm>,
) -> PageResult {
    let name = crate::auth::session_cookie_name(state.config.secure_cookies);
    // Signed out already: nothing to do. Otherwise only the browser's own form may.
    if let Some(token) = crate::auth::cookie(&headers, name) {
        csrf.check(&f.csrf)?;
        api::log_out(&state, &client, token).await?;
    }
    let clear = set_cookie(name, "", Some(0), state.config.secure_cookies);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    csrf: String,
    forced: bool,
    done: bool,
    error: Option<String>,
}

async fn password_page(AnyPage { viewer: v, csrf }: AnyPage) -> PageResult {
    let forced = v.admin.must_change_password;
    html(PasswordPage {
        nav: (!forced).then(|| nav_of(&v, &csrf)),
        csrf: csrf.0,
        forced,
        done: false,
        error: None,
    })
}

fn nav_of(v: &Viewer, csrf: &CsrfToken) -> Nav {
    Nav {
        name: v.admin.name.clone(),
        org: v.admin.org_name.clone(),
        csrf: csrf.0.clone(),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    old: String,
    new: String,
    confirm: String,
}

async fn password(
    State(state): State<AppState>,
    AnyPage { viewer: v, csrf }: AnyPage,
    client: Client,
    axum::Form(f): axum::Form<PasswordForm>,
) -> PageResult {
    csrf.check(&f.csrf)?;
    let result = if f.new != f.confirm {
        Err(ApiError::BadRequest("两次输入的新密码不一致".into()))
    } else {
        registry::accounts::change_password(&state.pool, v.admin.id, &f.old, &f.new, &v.token)
            .await
            .map_err(ApiError::from)
    };
    match result {
        Ok(()) => {
            crate::auth::audit(&state, Some(v.admin.id), "password", None, None, &client).await?;
            if v.admin.must_change_password {
                return Ok(Redirect::to("/").into_response());
            }
            html(PasswordPage {
                nav: Some(nav_of(&v, &csrf)),
                csrf: csrf.0,
                forced: false,
                done: true,
                error: None,
            })
        }
        Err(ApiError::BadRequest(message)) => {
            let forced = v.admin.must_change_password;
            let page = PasswordPage {
                nav: (!forced).then(|| nav_of(&v, &csrf)),
                csrf: csrf.0,
                forced,
                done: false,
                error: Some(message),
            };
            Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// An upload's status in Chinese.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "queued" => "排队中",
        "running" => "处理中",
        "succeeded" => "已完成",
        "rejected" => "文件未通过",
        "failed" => "失败",
        _ => "未知",
    }
}

/// Where a running upload is, in Chinese.
fn progress_label(status: &str, stage: Option<&str>, rows: Option<i64>) -> Option<String> {
    if status != "running" {
        return None;
    }
    let stage = match stage {
        Some("fetch") => "读取文件",
        Some("validate") => "校验",
        Some("publish") => "发布报告",
        _ => "准备中",
    };
    Some(match rows {
        Some(n) if n > 0 => format!("{stage}：已读 {n} 行"),
        _ => stage.to_string(),
    })
}

fn template_label(t: &str) -> &'static str {
    match t {
        "members" => "模板A（团员团干部）",
        "cadres" => "模板B（本级团干部）",
        _ => "",
    }
}

struct UploadLine {
    id: i64,
    uploader: String,
    template: &'static str,
    status: &'static str,
    status_code: String,
    progress: Option<String>,
    total: String,
    valid: String,
    errors: String,
    warnings: String,
    created: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Option<Nav>,
    org: String,
    uploads: Vec<UploadLine>,
    running: bool,
}

async fn home(State(state): State<AppState>, p: Page) -> PageResult {
    let rows =
        registry::access::visible_uploads(&state.pool, p.viewer.admin.org_id, 1, None).await?;
    let n = |v: Option<i32>| v.map_or(String::new(), |v| v.to_string());
    let china = pipeline::china();
    let uploads: Vec<UploadLine> = rows
        .into_iter()
        .map(|u| UploadLine {
            id: u.id,
            template: template_label(&u.template),
            status: status_label(&u.status),
            progress: progress_label(&u.status, u.stage.as_deref(), u.rows_done),
            total: n(u.rows_total),
            valid: n(u.rows_valid),
            errors: n(u.rows_with_errors),
            warnings: n(u.rows_with_warnings),
            created: u
                .created_at
                .with_timezone(&china)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            uploader: u.uploader,
            status_code: u.status,
        })
        .collect();
    let running = uploads
        .iter()
        .any(|u| matches!(u.status_code.as_str(), "queued" | "running"));
    html(HomePage {
        nav: p.nav(),
        org: p.viewer.admin.org_name.clone(),
        uploads,
        running,
    })
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    nav: Option<Nav>,
    csrf: String,
    max_mb: u64,
    error: Option<String>,
}

async fn upload_page(State(state): State<AppState>, p: Page) -> PageResult {
    html(UploadPage {
        nav: p.nav(),
        csrf: p.csrf.0.clone(),
        max_mb: state.config.max_upload_bytes >> 20,
        error: None,
    })
}

async fn upload(
    State(state): State<AppState>,
    p: Page,
    client: Client,
    headers: HeaderMap,
    multipart: Multipart,
) -> PageResult {
    match crate::uploads::receive(&state, &p.viewer, &headers, multipart, Some(&p.csrf)).await {
        Ok(r) => {
            crate::auth::audit(
                &state,
                Some(p.viewer.admin.id),
                "upload",
                Some(r.upload_id),
                None,
                &client,
            )
            .await?;
            Ok(Redirect::to(&format!("/uploads/{}", r.upload_id)).into_response())
        }
        Err(e @ (ApiError::BadRequest(_) | ApiError::TooLarge(_))) => {
            let page = UploadPage {
                nav: p.nav(),
                csrf: p.csrf.0.clone(),
                max_mb: state.config.max_upload_bytes >> 20,
                error: Some(e.to_string()),
            };
            Ok((e.status(), Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

struct CodeLine {
    code: String,
    message: &'static str,
    severity: &'static str,
    count: i64,
}

struct ReportLine {
    name: String,
    href: String,
    org: String,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage {
    nav: Option<Nav>,
    u: api::UploadView,
    template: &'static str,
    codes: Vec<CodeLine>,
    status: &'static str,
    progress: Option<String>,
    file_error: Option<String>,
    reports: Vec<ReportLine>,
    running: bool,
}

async fn detail(State(state): State<AppState>, p: Page, Path(id): Path<i64>) -> PageResult {
    let u = api::upload_view(&state, &p.viewer, id).await?;
    let reports = api::visible_reports(&state, &p.viewer, id)
        .await?
        .into_iter()
        .map(|r| ReportLine {
            href: percent(&r.name),
            label: match r.kind.as_str() {
                "summary" => "汇总",
                "summary_json" => "汇总（JSON）",
                "escalations" => "年龄问题上报",
                _ => "组织错误表",
            },
            name: r.name,
            org: r.org,
        })
        .collect();
    let file_error = u
        .file_error
        .as_ref()
        .and_then(|f| f.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let codes = u
        .counts_by_code
        .iter()
        .map(|c| CodeLine {
            message: schemas::ErrorCode::from_code(&c.code).map_or("", |e| e.message()),
            severity: if c.severity == "error" {
                "错误"
            } else {
                "提示"
            },
            code: c.code.clone(),
            count: c.count,
        })
        .collect();
    html(DetailPage {
        nav: p.nav(),
        template: template_label(&u.template),
        codes,
        status: status_label(&u.status),
        progress: progress_label(&u.status, u.stage.as_deref(), u.rows_done),
        running: matches!(u.status.as_str(), "queued" | "running"),
        file_error,
        reports,
        u,
    })
}

#[derive(Deserialize)]
struct StatsParams {
    org: Option<String>,
    date: Option<NaiveDate>,
    format: Option<String>,
}

struct StatsLine {
    full_name: String,
    org_q: String,
    link: bool,
    category: &'static str,
    complete: bool,
    people_complete: i32,
    people_total: i32,
    sub_orgs_complete: i32,
    sub_orgs_total: i32,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    nav: Option<Nav>,
    org: String,
    org_q: String,
    date: Option<NaiveDate>,
    rows: Vec<StatsLine>,
}

async fn stats(State(state): State<AppState>, p: Page, Query(q): Query<StatsParams>) -> PageResult {
    let org = q.org.clone().unwrap_or(p.viewer.admin.org_name.clone());
    let (date, rows) =
        match api::stats_of(&state, &p.viewer, Some(&org), q.date, Reach::Children).await {
            Ok(s) => (Some(s.date), s.rows),
            // The viewer's own organisation before the first night: no snapshot yet.
            Err(ApiError::NotFound) if q.org.is_none() && q.date.is_none() => (None, Vec::new()),
            Err(e) => return Err(e.into()),
        };
    let rows = rows
        .into_iter()
        .map(|r| StatsLine {
            org_q: percent(&r.full_name),
            link: r.sub_orgs_total > 0 && r.full_name != org,
            category: schemas::OrgCategory::parse(&r.category).map_or("", |c| c.chinese()),
            complete: r.complete,
            people_complete: r.people_complete,
            people_total: r.people_total,
            sub_orgs_complete: r.sub_orgs_complete,
            sub_orgs_total: r.sub_orgs_total,
            full_name: r.full_name,
        })
        .collect();
    html(StatsPage {
        nav: p.nav(),
        org_q: percent(&org),
        org,
        date,
        rows,
    })
}

async fn export(
    State(state): State<AppState>,
    p: Page,
    client: Client,
    Query(q): Query<StatsParams>,
) -> PageResult {
    let s = api::stats_of(&state, &p.viewer, q.org.as_deref(), q.date, Reach::Subtree).await?;
    let csv = q.format.as_deref() == Some("csv");
    let org = q.org.unwrap_or(p.viewer.admin.org_name.clone());
    let rows = s.rows;
    let ext = if csv { "csv" } else { "xlsx" };
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(format!("export.{ext}"));
        registry::stats::write_export(&rows, &path).map_err(ApiError::internal)?;
        Ok(std::fs::read(&path)?)
    })
    .await
    .map_err(ApiError::internal)??;
    crate::auth::audit(
        &state,
        Some(p.viewer.admin.id),
        "export",
        None,
        Some(&org),
        &client,
    )
    .await?;
    let file = format!("完成情况-{org}-{}.{ext}", s.date);
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"stats.{ext}\"; filename*=UTF-8''{}",
                    percent(&file)
                ),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "codes.html")]
struct CodesPage {
    nav: Option<Nav>,
    csrf: String,
    codes: Vec<registry::accounts::ChildCode>,
}

async fn codes(State(state): State<AppState>, p: Page) -> PageResult {
    let mut codes = registry::accounts::child_codes(&state.pool, p.viewer.admin.org_id).await?;
    for c in &mut codes {
        c.category = schemas::OrgCategory::parse(&c.category)
            .map_or("", |c| c.chinese())
            .to_string();
    }
    html(CodesPage {
        nav: p.nav(),
        csrf: p.csrf.0.clone(),
        codes,
    })
}

#[derive(Deserialize)]
struct RegenerateForm {
    csrf: String,
    org: String,
}

async fn regenerate(
    State(state): State<AppState>,
    p: Page,
    client: Client,
    axum::Form(f): axum::Form<RegenerateForm>,
) -> PageResult {
    p.csrf.check(&f.csrf)?;
    api::regenerate(&state, &p.viewer, &f.org, &client).await?;
    Ok(Redirect::to("/codes").into_response())
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    nav: Option<Nav>,
    csrf: String,
    org: String,
    name: String,
    done: bool,
    error: Option<String>,
}

async fn register_page(csrf: CsrfToken) -> PageResult {
    html(RegisterPage {
        nav: None,
        csrf: csrf.0,
        org: String::new(),
        name: String::new(),
        done: false,
        error: None,
    })
}

#[derive(Deserialize)]
struct RegisterForm {
    csrf: String,
    org: String,
    code: String,
    name: String,
    id_number: String,
    phone: String,
    password: String,
    confirm: String,
}

async fn register(
    State(state): State<AppState>,
    csrf: CsrfToken,
    client: Client,
    axum::Form(f): axum::Form<RegisterForm>,
) -> PageResult {
    csrf.check(&f.csrf)?;
    let req = RegisterRequest {
        org: f.org.clone(),
        code: f.code,
        name: f.name.clone(),
        id_number: f.id_number,
        phone: f.phone,
        password: f.password.clone(),
    };
    let result = if f.password != f.confirm {
        Err(ApiError::BadRequest("两次输入的密码不一致".into()))
    } else {
        api::register_admin(&state, &client, &req).await
    };
    let (status, done, error) = match result {
        Ok(_) => (StatusCode::OK, true, None),
        Err(e @ (ApiError::BadRequest(_) | ApiError::Conflict(_) | ApiError::TooMany(_))) => {
            (e.status(), false, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let page = RegisterPage {
        nav: None,
        csrf: csrf.0,
        org: f.org,
        name: f.name,
        done,
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.js"),
    )
        .into_response()
}
