//! Git smart HTTP (clone, fetch, push) through `git http-backend`, run as a CGI program per
//! request with the repo's access checked first. Git authenticates with Basic auth whose password
//! is the token; a missing or insufficient credential gets the 401 challenge git expects.

use std::process::Stdio;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::ReaderStream;

use crate::hf::{Ctx, HfError, HfResult};
use crate::http::{hv, param, query_pairs};
use crate::repo::RepoId;

fn challenge(message: &str) -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, message.to_string()).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"hubsim\""),
    );
    resp
}

/// Serves `info/refs`, `git-upload-pack` or `git-receive-pack` for repo `id`.
pub async fn serve(ctx: &Ctx, id: &RepoId, service: &str, parts: &axum::http::request::Parts, body: Body) -> HfResult {
    let query = parts.uri.query().unwrap_or("");
    let q = query_pairs(Some(query));
    let write = service == "git-receive-pack" || param(&q, "service") == Some("git-receive-pack");
    if matches!(ctx.caller, crate::auth::Caller::Invalid) {
        return Ok(challenge("Invalid username or password."));
    }
    if let Err(e) = ctx.access(id, write).await {
        return Ok(match e.status {
            StatusCode::UNAUTHORIZED => challenge("Authentication required"),
            status => (status, e.message).into_response(),
        });
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", ctx.hub.store.kind_root(id.kind))
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}/{}.git/{service}", id.ns, id.name))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = ctx.caller.principal() {
        cmd.env("REMOTE_USER", &p.name);
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
    let mut child = cmd.spawn().map_err(HfError::internal)?;
    let mut stdin = child.stdin.take().ok_or_else(|| HfError::internal("no stdin"))?;
    let stdout = child.stdout.take().ok_or_else(|| HfError::internal("no stdout"))?;
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
        if reader.read_line(&mut line).await.map_err(HfError::internal)? == 0 {
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
    if write && service == "git-receive-pack" {
        tracing::info!(repo = %id, "git push");
    }
    *resp.body_mut() = Body::from_stream(ReaderStream::with_capacity(reader, 64 * 1024));
    Ok(resp)
}
