//! Git smart HTTP (clone, fetch, push) through `git http-backend`, run as a CGI program per
//! request once the flavor has decided the caller may. Each flavor plugs in its own access rule
//! ([`Access`]): the Hugging Face and ModelScope flavors check repo visibility and namespace
//! rights, the git flavor also creates projects on push. Git authenticates with Basic auth whose
//! password is the token; a missing or insufficient credential gets the 401 challenge git expects.

use std::future::Future;
use std::process::Stdio;

use axum::body::Body;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::ReaderStream;

use crate::http::{hv, param, query_pairs};
use crate::repo::RepoId;
use crate::state::Hub;

/// A flavor's verdict on a git request, reached before git runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// Serve it; `user` (if any) becomes git's `REMOTE_USER` (needed for pushes).
    Allow { user: Option<String> },
    /// 401 with a Basic challenge in `realm` and this message.
    Challenge { realm: &'static str, message: String },
    /// Refused with this status and plain-text message.
    Deny(StatusCode, String),
}

/// The 401 answer git retries with credentials.
pub fn challenge(realm: &str, message: &str) -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, message.to_string()).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, hv(&format!("Basic realm=\"{realm}\"")));
    resp
}

/// True when the request is (the start of) a push: `git-receive-pack`, or its advertisement.
pub fn is_push(service: &str, query: Option<&str>) -> bool {
    service == "git-receive-pack" || param(&query_pairs(query), "service") == Some("git-receive-pack")
}

/// Serves `info/refs`, `git-upload-pack` or `git-receive-pack` for repo `id`, after `access`
/// (called with "is this a push") allowed it.
pub async fn serve<F, Fut>(
    hub: &Hub,
    id: &RepoId,
    service: &str,
    parts: &axum::http::request::Parts,
    body: Body,
    access: F,
) -> Response
where
    F: FnOnce(bool) -> Fut,
    Fut: Future<Output = Access>,
{
    let query = parts.uri.query().unwrap_or("");
    let write = is_push(service, Some(query));
    let user = match access(write).await {
        Access::Allow { user } => user,
        Access::Challenge { realm, message } => return challenge(realm, &message),
        Access::Deny(status, message) => return (status, message).into_response(),
    };
    match backend(hub, id, service, user.as_deref(), parts, body).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(repo = %id, error = %e, "git http-backend failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "git failed").into_response()
        }
    }
}

async fn backend(
    hub: &Hub,
    id: &RepoId,
    service: &str,
    user: Option<&str>,
    parts: &axum::http::request::Parts,
    body: Body,
) -> std::io::Result<Response> {
    let query = parts.uri.query().unwrap_or("");
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", hub.store.kind_root(id.kind))
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}/{}.git/{service}", id.ns, id.name))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(u) = user {
        cmd.env("REMOTE_USER", u);
    }
    for (h, var) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
        (HeaderName::from_static("git-protocol"), "HTTP_GIT_PROTOCOL"),
    ] {
        if let Some(v) = parts.headers.get(h).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    if let Some(v) = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) {
        cmd.env("CONTENT_LENGTH", v);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        let mut s = body.into_data_stream();
        while let Some(Ok(chunk)) = s.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let repo = id.to_string();
    tokio::spawn(async move {
        if let Some(err) = stderr {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::debug!(repo = %repo, "git http-backend: {l}");
            }
        }
        let _ = child.wait().await;
    });
    let mut reader = BufReader::new(stdout);
    let mut resp = Response::new(Body::empty());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(500);
            *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let Ok(name) = HeaderName::from_bytes(k.as_bytes()) {
            resp.headers_mut().append(name, hv(v));
        }
    }
    if service == "git-receive-pack" {
        tracing::info!(repo = %id, "git push");
    }
    *resp.body_mut() = Body::from_stream(ReaderStream::with_capacity(reader, 64 * 1024));
    Ok(resp)
}
