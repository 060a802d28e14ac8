//! File listings and downloads. `repo/files` (models) truncates silently at 3000 entries, as the
//! real service does; `repo/tree` (datasets) pages with `PageNumber`/`PageSize`. Every blob entry
//! carries its content sha256 and the last commit that touched it. Downloads redirect LFS files
//! to the object CDN and serve regular files directly, ignoring `Range` like the real service.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::Ctx;
use super::error::{MsError, MsResult, ok};
use crate::http::{blob_body, hv, param, param_bool};
use crate::repo::RepoId;
use crate::store::Entry;

/// `repo/files` never returns more entries than this (no marker, no paging).
pub const FILES_LIMIT: usize = 3000;

fn root_of(q: &[(String, String)]) -> String {
    param(q, "Root").unwrap_or("").trim_matches('/').to_string()
}

/// Entries under `Root` at `Revision`, rendered as ModelScope file records.
async fn listing(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult<Vec<Value>> {
    let meta = ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, &meta, param(q, "Revision")).await?;
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let root = root_of(q);
    if !root.is_empty() && !tree.get(&root).is_some_and(|e| e.is_dir) {
        return Ok(Vec::new());
    }
    let entries: Vec<&Entry> = tree.under(&root, param_bool(q, "Recursive")).collect();
    let shas = ctx.hub.store.content_sha256(id, &entries).await?;
    let last = ctx.hub.store.last_commits(id, &commit).await?;
    Ok(entries
        .iter()
        .map(|e| {
            let lc = last.get(&e.path);
            json!({
                "CommitMessage": lc.map(|c| c.title.as_str()).unwrap_or(""),
                "CommittedDate": lc.map(|c| c.time).unwrap_or(0),
                "CommitterName": lc.map(|c| c.author.as_str()).unwrap_or(""),
                "CommitId": lc.map(|c| c.id.as_str()).unwrap_or(&commit),
                "Revision": lc.map(|c| c.id.as_str()).unwrap_or(&commit),
                "InCheck": false,
                "IsLFS": e.lfs.is_some(),
                "Mode": if e.is_dir { "16384" } else { "33188" },
                "Name": e.name(),
                "Path": e.path,
                "Sha256": shas.get(&e.path).cloned().unwrap_or_default(),
                "Size": e.size,
                "Type": if e.is_dir { "tree" } else { "blob" },
            })
        })
        .collect())
}

/// `GET /api/v1/models/{o}/{n}/repo/files?Revision=&Recursive=&Root=`.
pub async fn files(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult {
    let mut list = listing(ctx, id, q).await?;
    list.truncate(FILES_LIMIT);
    Ok(ok(json!({"Files": list})))
}

/// `GET /api/v1/datasets/{o}/{n}/repo/tree?Revision=&Recursive=&Root=&PageNumber=&PageSize=`.
pub async fn tree(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult {
    let list = listing(ctx, id, q).await?;
    let page: usize = param(q, "PageNumber").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let size: usize = param(q, "PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let items: Vec<Value> = list.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(ok(json!({"Files": items})))
}

/// `GET|HEAD /api/v1/{type}/{o}/{n}/repo?Revision=&FilePath=`.
pub async fn download(ctx: &Ctx, id: &RepoId, q: &[(String, String)], parts: &axum::http::request::Parts) -> MsResult {
    let meta = ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, &meta, param(q, "Revision")).await?;
    let path = param(q, "FilePath").unwrap_or("").trim_start_matches('/').to_string();
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let entry = tree
        .get(&path)
        .filter(|e| !e.is_dir)
        .ok_or_else(|| MsError::not_found(format!("file {path} not found at revision {commit}")))?;
    if let Some(p) = &entry.lfs {
        let mut resp = StatusCode::FOUND.into_response();
        resp.headers_mut().insert(
            header::LOCATION,
            hv(&crate::lfs_api::download_url(&ctx.hub, &p.oid, entry.name())),
        );
        resp.headers_mut()
            .insert("x-linked-etag", hv(&format!("\"{}\"", p.oid)));
        return Ok(resp);
    }
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, entry.size.into());
    h.insert(header::ETAG, hv(&format!("\"{}\"", entry.oid)));
    if parts.method == Method::GET && entry.size > 0 {
        *resp.body_mut() =
            blob_body(&ctx.hub, &ctx.hub.store.repo_dir(id), &entry.oid, 0, entry.size).map_err(MsError::internal)?;
    }
    Ok(resp)
}
