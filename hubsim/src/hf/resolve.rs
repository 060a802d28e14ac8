//! `/resolve/{rev}/{path}` downloads. Regular files stream from git with `ETag` = blob id; LFS
//! files redirect (302) to the object CDN, another origin, with `X-Linked-Etag` (sha256) and
//! `X-Linked-Size`, as the real Hub does. Every answer carries `X-Repo-Commit`.

use axum::body::Body;
use axum::http::{HeaderName, Method, Response, StatusCode, header};
use axum::response::IntoResponse;

use super::{Ctx, HfError, HfResult};
use crate::http::{apply_range, blob_body, hv};
use crate::repo::RepoId;

fn set(resp: &mut Response<Body>, name: &'static str, value: &str) {
    resp.headers_mut().insert(HeaderName::from_static(name), hv(value));
}

/// Answers `HEAD`/`GET {prefix}{ns}/{name}/resolve/{rev}/{path}`.
pub async fn resolve(ctx: &Ctx, id: &RepoId, rev: &str, path: &str, parts: &axum::http::request::Parts) -> HfResult {
    // The root README.md (the model card) is readable by anyone who can see the repo, gated or
    // not: users read it before asking for access.
    if path == "README.md" {
        ctx.access(id, false).await?;
    } else {
        ctx.read_files(id).await?;
    }
    let commit = ctx.commit_of(id, rev).await?;
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let entry = tree
        .get(path)
        .filter(|e| !e.is_dir)
        .ok_or_else(|| HfError::entry_not_found(Some(commit.clone())))?;
    if let Some(p) = &entry.lfs {
        if ctx.hub.store.lfs.size(&p.oid).await.is_none() {
            return Err(HfError::new(StatusCode::NOT_FOUND, "LFS object missing from storage").code("EntryNotFound"));
        }
        let location = crate::lfs_api::download_url(&ctx.hub, &p.oid, entry.name());
        let mut resp = StatusCode::FOUND.into_response();
        set(&mut resp, "location", &location);
        set(&mut resp, "x-repo-commit", &commit);
        set(&mut resp, "x-linked-etag", &format!("\"{}\"", p.oid));
        set(&mut resp, "x-linked-size", &p.size.to_string());
        set(&mut resp, "etag", &format!("\"{}\"", p.oid));
        resp.headers_mut().insert(header::CONTENT_LENGTH, 0.into());
        return Ok(resp);
    }
    let mut resp = Response::new(Body::empty());
    set(&mut resp, "x-repo-commit", &commit);
    set(&mut resp, "etag", &format!("\"{}\"", entry.oid));
    set(&mut resp, "content-type", "application/octet-stream");
    let Some((offset, count)) = apply_range(&parts.headers, entry.size, &mut resp) else {
        return Ok(resp);
    };
    if parts.method == Method::GET && count > 0 {
        *resp.body_mut() =
            blob_body(&ctx.hub, &ctx.hub.store.repo_dir(id), &entry.oid, offset, count).map_err(HfError::internal)?;
    }
    Ok(resp)
}
