//! Errors in the Hugging Face Hub's shape: a status, `X-Error-Code` / `X-Error-Message` headers
//! (what `huggingface_hub` keys its exceptions on) and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::hv;
use crate::store::StoreError;

/// An error response of the HF flavor.
#[derive(Debug)]
pub struct HfError {
    pub status: StatusCode,
    pub code: Option<&'static str>,
    pub message: String,
    /// `X-Repo-Commit`, sent with EntryNotFound on resolve.
    pub commit: Option<String>,
}

/// Handler result type of the HF flavor.
pub type HfResult<T = Response> = Result<T, HfError>;

impl HfError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HfError {
            status,
            code: None,
            message: message.into(),
            commit: None,
        }
    }

    /// Adds an `X-Error-Code`.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 for a body field that is missing or of another type, in the Hub's validator's words.
    pub fn invalid_input(expected: &str, at: &str) -> Self {
        Self::bad_request(format!(
            "* Invalid input: expected {expected}, received undefined * at {at}"
        ))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 401 for a token that matches no user.
    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Invalid credentials in Authorization header")
    }

    /// Repo missing or invisible: 401 for anonymous callers (as the real Hub), 404 otherwise.
    pub fn repo_not_found(anonymous: bool) -> Self {
        let status = if anonymous {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::NOT_FOUND
        };
        Self::new(status, "Repository not found").code("RepoNotFound")
    }

    pub fn revision_not_found(rev: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Invalid rev id: {rev}")).code("RevisionNotFound")
    }

    pub fn entry_not_found(commit: Option<String>) -> Self {
        HfError {
            commit,
            ..Self::new(StatusCode::NOT_FOUND, "Entry not found").code("EntryNotFound")
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Error - We're working hard to fix this as soon as possible!",
        )
    }
}

impl From<StoreError> for HfError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => HfError::repo_not_found(false),
            other => HfError::internal(other),
        }
    }
}

impl From<(StatusCode, String)> for HfError {
    fn from((status, message): (StatusCode, String)) -> Self {
        HfError::new(status, message)
    }
}

impl IntoResponse for HfError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        let h = resp.headers_mut();
        if let Some(code) = self.code {
            h.insert(HeaderName::from_static("x-error-code"), hv(code));
        }
        h.insert(HeaderName::from_static("x-error-message"), hv(&self.message));
        if let Some(c) = self.commit {
            h.insert(HeaderName::from_static("x-repo-commit"), hv(&c));
        }
        resp
    }
}

/// Renders a plain HF error (used by the fault layer).
pub fn render(status: StatusCode, message: &str) -> Response {
    HfError::new(status, message).into_response()
}
