//! A repo's LFS files as its settings page shows them: `GET /api/{type}s/{id}/lfs-files` (each
//! object the repo holds, with a path that uses it) and `POST .../lfs-files/batch` (permanent
//! deletion), as huggingface_hub's `list_lfs_files` and `permanently_delete_lfs_files` call them.
//! Deleting "with history" removes the files from every branch in one commit each; the Hub
//! rewrites the history instead (hubsim keeps older commits, whose object reads then fail).

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::body::Body;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Ctx, HfError, HfResult};
use crate::http::read_body;
use crate::repo::RepoId;
use crate::store::Op;
use crate::util::iso8601;

/// Shas one deletion request may name (the Hub's API schema).
const MAX_DELETIONS: usize = 1000;

/// Each branch with its head commit, the default branch first.
async fn branches(ctx: &Ctx, id: &RepoId, default: &str) -> HfResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = ctx
        .hub
        .store
        .refs(id)
        .await?
        .into_iter()
        .filter_map(|(r, c)| Some((r.strip_prefix("refs/heads/")?.to_string(), c)))
        .collect();
    out.sort_by_key(|(b, _)| b != default);
    Ok(out)
}

/// `GET /api/{type}s/{id}/lfs-files`.
pub async fn list(ctx: &Ctx, id: &RepoId) -> HfResult {
    let meta = ctx.access(id, true).await?;
    let mut used: HashMap<String, (String, String)> = HashMap::new();
    for (branch, commit) in branches(ctx, id, &meta.default_branch).await? {
        for e in ctx.hub.store.tree(id, &commit).await?.files() {
            if let Some(p) = &e.lfs {
                used.entry(p.oid.clone())
                    .or_insert_with(|| (e.path.clone(), branch.clone()));
            }
        }
    }
    let mut items = Vec::new();
    for (oid, at) in ctx.hub.store.objects_of(id).await? {
        let Some(size) = ctx.hub.store.lfs.size(&oid).await else {
            continue;
        };
        let mut item = json!({"fileOid": oid, "oid": oid, "size": size, "pushedAt": iso8601(at), "filename": ""});
        if let Some((path, branch)) = used.get(&oid) {
            item["filename"] = json!(path);
            item["ref"] = json!(branch);
        }
        items.push(item);
    }
    Ok(Json(items).into_response())
}

/// `POST /api/{type}s/{id}/lfs-files/batch {"deletions": {"sha": [...], "rewriteHistory"}}`.
pub async fn delete(ctx: &Ctx, id: &RepoId, body: Body) -> HfResult {
    let meta = ctx.access(id, true).await?;
    let req: Value = super::repos::parse_json(&read_body(&ctx.hub, body).await?)?;
    let shas: BTreeSet<String> = req["deletions"]["sha"]
        .as_array()
        .ok_or_else(|| HfError::invalid_input("array", "deletions.sha"))?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    if shas.is_empty() || shas.len() > MAX_DELETIONS {
        return Err(HfError::bad_request(format!(
            "deletions.sha must name 1 to {MAX_DELETIONS} files"
        )));
    }
    let rewrite = req["deletions"]["rewriteHistory"].as_bool().unwrap_or(true);
    let _guard = ctx.hub.store.lock(id).await;
    if rewrite {
        let author = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
        for (branch, commit) in branches(ctx, id, &meta.default_branch).await? {
            let tree = ctx.hub.store.tree(id, &commit).await?;
            let ops: Vec<Op> = tree
                .files()
                .filter(|e| e.lfs.as_ref().is_some_and(|p| shas.contains(&p.oid)))
                .map(|e| Op::Delete { path: e.path.clone() })
                .collect();
            if !ops.is_empty() {
                let target = format!("refs/heads/{branch}");
                ctx.hub
                    .store
                    .write_commit(
                        id,
                        &target,
                        Some(&commit),
                        &ops,
                        &author,
                        "Permanently delete LFS files",
                    )
                    .await?;
            }
        }
    }
    for sha in &shas {
        ctx.hub.store.unlink_object(id, sha).await?;
    }
    tracing::info!(repo = %id, files = shas.len(), rewrite, "LFS files deleted");
    Ok(Json(json!({})).into_response())
}
