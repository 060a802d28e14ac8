//! Errors of GitLab's REST API: a status and a JSON body whose `message` is either a sentence
//! (`"404 Project Not Found"`) or, for validation failures, a map of field to messages
//! (`{"path": ["has already been taken"]}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

/// An error answer of `/api/v4`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

/// Handler result of `/api/v4`.
pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    /// `{"message": message}` with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "message": message.into() }),
        }
    }

    /// A validation failure: 400 `{"message": {field: [message]}}`.
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "message": { field: [message] } }),
        }
    }

    /// A missing or malformed parameter: 400 `{"error": ...}`, as Grape answers it.
    pub fn bad_param(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": message.into() }),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "401 Unauthorized")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "403 Forbidden")
    }

    pub fn project_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "404 Project Not Found")
    }

    pub fn namespace_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "404 Namespace Not Found")
    }

    pub fn branch_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "404 Branch Not Found")
    }

    /// An unknown route: Grape's `{"error": "404 Not Found"}`.
    pub fn no_route() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({ "error": "404 Not Found" }),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::project_not_found(),
            other => ApiError::internal(other),
        }
    }
}

impl From<(StatusCode, String)> for ApiError {
    fn from((status, message): (StatusCode, String)) -> Self {
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Renders a plain API error (used by the fault layer).
pub fn render(status: StatusCode, message: &str) -> Response {
    ApiError::new(status, message).into_response()
}
