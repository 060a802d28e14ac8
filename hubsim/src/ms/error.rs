//! ModelScope's two response shapes: the legacy `/api/v1` envelope
//! (`{"Code","Data","Message","RequestId","Success"}`) and the OpenAPI `/openapi/v1` one
//! (`{"success","data","request_id"}`, errors with a string `code`). Errors always use a real
//! HTTP error status, as the SDK only looks at the body when the status is 4xx/5xx.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;
use crate::util::random_hex;

/// A fresh request id (uuid-like).
pub fn request_id() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A legacy success envelope around `data`.
pub fn ok(data: Value) -> Response {
    Json(json!({"Code": 200, "Data": data, "Message": "success", "RequestId": request_id(), "Success": true}))
        .into_response()
}

/// A legacy success envelope with `TotalCount` beside `Data`, as paged listings carry it.
pub fn ok_paged(data: Value, total: u64) -> Response {
    Json(json!({"Code": 200, "Data": data, "Message": "success", "RequestId": request_id(), "Success": true, "TotalCount": total}))
        .into_response()
}

/// An OpenAPI success envelope around `data`.
pub fn open_ok(data: Value) -> Response {
    Json(json!({"success": true, "data": data, "request_id": request_id()})).into_response()
}

/// Business codes the SDK maps to its exceptions.
pub mod code {
    pub const LOGIN_FAILED: i64 = 10010103009;
    pub const MODEL_EXISTS: i64 = 10010101001;
    pub const DATASET_EXISTS: i64 = 10020101001;
}

/// An error of the ms flavor.
#[derive(Debug)]
pub struct MsError {
    pub status: StatusCode,
    /// Legacy business code (defaults to the HTTP status).
    pub code: i64,
    /// OpenAPI string code, for `/openapi/v1` routes.
    pub open_code: Option<&'static str>,
    pub message: String,
}

/// Handler result of the ms flavor.
pub type MsResult<T = Response> = Result<T, MsError>;

impl MsError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        MsError {
            status,
            code: i64::from(status.as_u16()),
            open_code: None,
            message: message.into(),
        }
    }

    pub fn with_code(mut self, code: i64) -> Self {
        self.code = code;
        self
    }

    /// Switches to the OpenAPI shape with this string code.
    pub fn open(mut self, code: &'static str) -> Self {
        self.open_code = Some(code);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "用户未登录 (not logged in)")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
}

impl From<StoreError> for MsError {
    fn from(e: StoreError) -> Self {
        MsError::internal(e)
    }
}

impl From<(StatusCode, String)> for MsError {
    fn from((status, message): (StatusCode, String)) -> Self {
        MsError::new(status, message)
    }
}

impl IntoResponse for MsError {
    fn into_response(self) -> Response {
        let body = match self.open_code {
            Some(c) => {
                json!({"success": false, "code": c, "message": self.message, "request_id": request_id()})
            }
            None => {
                json!({"Code": self.code, "Message": self.message, "RequestId": request_id(), "Success": false})
            }
        };
        (self.status, Json(body)).into_response()
    }
}

/// Renders a plain ms error (used by the fault layer): OpenAPI codes for the statuses it has.
pub fn render(status: StatusCode, message: &str) -> Response {
    let open = match status.as_u16() {
        429 => "RateLimitExceed",
        403 => "OperationNotAllowed",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    };
    let mut e = MsError::new(status, message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        e = e.open(open);
    }
    e.into_response()
}
