//! How a request fails, and what the client is told: the same statuses for the API
//! (JSON) and the pages (HTML, in `pages`). What a viewer may not see is `NotFound`,
//! word for word what a missing resource answers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not there, or not the viewer's to see: one answer for both.
    #[error("不存在")]
    NotFound,
    /// No valid session or token, or a refused login.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The password must be changed first (SPEC §12.4).
    #[error("请先修改初始密码")]
    MustChangePassword,
    /// A form or API call without a valid CSRF token.
    #[error("请求已失效，请刷新页面后重试")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// Too many attempts from this client or at this resource: try later.
    #[error("{0}")]
    TooMany(String),
    /// Something failed on our side (logged; the client gets no details).
    #[error("服务器内部错误，请稍后重试")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::MustChangePassword | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::internal(e)
            }
        }
    )*};
}
internal_from!(
    registry::RegistryError,
    sqlx::Error,
    jobs::StorageError,
    std::io::Error,
    askama::Error
);

impl From<registry::accounts::AccountError> for ApiError {
    fn from(e: registry::accounts::AccountError) -> Self {
        use registry::accounts::AccountError as A;
        match e {
            A::Full | A::Exists => ApiError::Conflict(e.to_string()),
            A::Db(e) => ApiError::internal(e),
            A::BadCode | A::UnknownOrg(_) | A::Invalid(_) => ApiError::BadRequest(e.to_string()),
            A::Throttled => ApiError::TooMany(e.to_string()),
        }
    }
}

/// The body of every API error.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        (
            self.status(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}
