//! `POST /api/v1/login` and `GET /openapi/v1/users/me`. Login answers with the
//! `m_session_id` cookie set to the token itself, because the SDK persists that cookie and uses
//! its value as the Bearer token in later processes.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Ctx;
use super::error::{MsError, MsResult, code, ok, open_ok};
use crate::auth::Caller;
use crate::http::read_body;

/// `POST /api/v1/login` with `{"AccessToken": "..."}`: write tokens only, as on the real service.
pub async fn login(ctx: &Ctx, body: Body) -> MsResult {
    let bytes = read_body(&ctx.hub, body).await?;
    let req: Value =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    let token = req.get("AccessToken").and_then(Value::as_str).unwrap_or("");
    let failed = || {
        MsError::bad_request(
            "登录失败，AccessToken错误，请从用户中心获取AccessToken或刷新 (login failed: invalid AccessToken)",
        )
        .with_code(code::LOGIN_FAILED)
    };
    let p = match ctx.hub.users.caller(Some(token)) {
        Caller::User(p) if p.can_write => p,
        _ => return Err(failed()),
    };
    let mut resp: Response =
        ok(json!({"AccessToken": token, "Username": p.name, "Email": format!("{}@users.hubsim", p.name)}));
    let cookie = format!("m_session_id={token}; Path=/; HttpOnly");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| failed())?,
    );
    Ok(resp)
}

/// `GET /openapi/v1/users/me`.
pub fn me(ctx: &Ctx) -> MsResult {
    let p = ctx.caller.principal().ok_or_else(|| {
        MsError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid authentication, please check your Authorization header",
        )
        .open("InvalidAuthentication")
    })?;
    Ok(open_ok(json!({
        "username": p.name,
        "nickname": p.name,
        "description": "",
        "email": format!("{}@users.hubsim", p.name),
        "avatar_url": "",
    })))
}
