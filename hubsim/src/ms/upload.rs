//! The ModelScope upload path: the LFS "validate" batch (objects are stored globally, so an
//! object any repo uploaded needs no second upload) and the JSON commit API with `create` (an
//! upsert), `update` and `delete` actions, at most 2000 per commit.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::Ctx;
use super::error::{MsError, MsResult, ok};
use crate::glob::add_lfs_rules;
use crate::http::{enc, read_body};
use crate::repo::{RepoId, check_path};
use crate::store::{Op, tree::pointer_text};
use crate::util::is_hex;

/// The service refuses commits with more actions than this.
pub const MAX_ACTIONS: usize = 2000;

#[derive(Deserialize)]
struct Object {
    oid: String,
    size: u64,
}

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    operation: Option<String>,
    objects: Vec<Object>,
}

/// `POST /api/v1/repos/{type}/{o}/{n}/info/lfs/objects/batch`: every requested oid is listed;
/// missing ones carry `actions.upload.href`.
pub async fn batch(ctx: &Ctx, id: &RepoId, body: Body) -> MsResult {
    ctx.access(id, true).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let req: BatchRequest =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    if req.operation.as_deref().is_some_and(|o| o != "upload") {
        return Err(MsError::bad_request("only the upload operation is supported"));
    }
    let repo = format!("{}/{}/{}", id.kind.plural(), id.ns, id.name);
    let mut objects = Vec::with_capacity(req.objects.len());
    for o in &req.objects {
        if !is_hex(&o.oid, 64) {
            return Err(MsError::bad_request(format!(
                "invalid oid {}: expected a lowercase sha256",
                o.oid
            )));
        }
        if ctx.hub.store.lfs.size(&o.oid).await == Some(o.size) {
            objects.push(json!({"oid": o.oid, "size": o.size}));
            continue;
        }
        let size = o.size.to_string();
        let (exp, sig) = ctx.hub.signer.sign(&["upload", &repo, &o.oid, &size]);
        let href = format!(
            "{}/upload/{}?repo={}&size={size}&exp={exp}&sig={sig}",
            ctx.hub.cdn_url,
            o.oid,
            enc(&repo)
        );
        objects.push(json!({"oid": o.oid, "size": o.size, "actions": {"upload": {"href": href}}}));
    }
    Ok(ok(json!({"objects": objects})))
}

#[derive(Deserialize)]
struct Action {
    action: String,
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Deserialize)]
struct CommitRequest {
    #[serde(default)]
    commit_message: String,
    actions: Vec<Action>,
}

fn invalid(msg: String) -> MsError {
    MsError::bad_request(format!("invalid commit action: {msg}"))
}

/// `POST /api/v1/repos/{type}/{o}/{n}/commit/{branch}`.
pub async fn commit(ctx: &Ctx, id: &RepoId, branch: &str, body: Body) -> MsResult {
    let meta = ctx.access(id, true).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let req: CommitRequest =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    if req.actions.len() > MAX_ACTIONS {
        let msg = format!(
            "commit request exceeds actions limit: {} > {MAX_ACTIONS}; split the commit into smaller batches",
            req.actions.len()
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, msg).into_response());
    }
    if req.actions.is_empty() {
        return Err(MsError::bad_request("a commit needs at least one action"));
    }
    let _guard = ctx.hub.store.lock(id).await;
    let Some(head) = ctx.hub.store.branch_head(id, branch).await? else {
        if ctx.hub.store.resolve(id, branch).await?.is_some() {
            return Err(MsError::bad_request(
                "You can only create or edit files when you are on a branch",
            ));
        }
        return Err(MsError::not_found(format!("branch {branch} not found")));
    };
    let tree = ctx.hub.store.tree(id, &head).await?;
    let mut ops = Vec::with_capacity(req.actions.len());
    let mut lfs_paths = Vec::new();
    for a in &req.actions {
        check_path(&a.path).map_err(invalid)?;
        match (a.action.as_str(), a.kind.as_str()) {
            ("delete", _) => {
                if tree.get(&a.path).is_none() {
                    return Err(invalid(format!("{} does not exist", a.path)));
                }
                ops.push(Op::Delete { path: a.path.clone() });
            }
            ("create" | "update", "lfs") => {
                if !is_hex(&a.sha256, 64) {
                    return Err(invalid(format!(
                        "{}: sha256 must be 64 lowercase hex characters",
                        a.path
                    )));
                }
                if ctx.hub.store.lfs.size(&a.sha256).await != Some(a.size) {
                    return Err(invalid(format!(
                        "{}: LFS object {} of size {} was not uploaded",
                        a.path, a.sha256, a.size
                    )));
                }
                ctx.hub.store.link_object(id, &a.sha256).await?;
                ops.push(Op::Put {
                    path: a.path.clone(),
                    data: pointer_text(&a.sha256, a.size).into_bytes(),
                });
                lfs_paths.push(a.path.clone());
            }
            ("create" | "update", "normal" | "") => {
                let data = match a.encoding.as_str() {
                    "base64" => base64::engine::general_purpose::STANDARD
                        .decode(a.content.as_bytes())
                        .map_err(|_| invalid(format!("{}: content is not valid base64", a.path)))?,
                    "" if a.content.is_empty() => Vec::new(),
                    "" | "utf-8" | "text" => a.content.clone().into_bytes(),
                    other => return Err(invalid(format!("{}: unknown encoding {other}", a.path))),
                };
                ops.push(Op::Put {
                    path: a.path.clone(),
                    data,
                });
            }
            (act, kind) => {
                return Err(invalid(format!("{}: unknown action {act:?} of type {kind:?}", a.path)));
            }
        }
    }
    if let Some(p) = crate::store::path_conflict(&tree, &ops) {
        return Err(invalid(format!("'{p}' would be both a file and a folder")));
    }
    if !lfs_paths.is_empty() {
        let attrs = ctx.hub.store.gitattributes(id, &tree).await?;
        if let Some(updated) = add_lfs_rules(&attrs, &lfs_paths) {
            ops.push(Op::Put {
                path: ".gitattributes".into(),
                data: updated.into_bytes(),
            });
        }
    }
    // ModelScope's commit-frequency limit (2026, modelscope issue 1793): a 429 the SDK reports as
    // E1021, its limit dynamic and undisclosed, so no Retry-After: clients back off on their own.
    if ctx.hub.admit_commit(id).is_err() {
        return Err(MsError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Commit frequency limit exceeded",
        ));
    }
    let author = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
    let message = if req.commit_message.trim().is_empty() {
        "Upload files".to_string()
    } else {
        req.commit_message.clone()
    };
    let target = format!("refs/heads/{branch}");
    let oid = ctx
        .hub
        .store
        .write_commit(id, &target, Some(&head), &ops, &author, &message)
        .await?;
    tracing::info!(repo = %id, commit = %oid, actions = ops.len(), default_branch = %meta.default_branch, "commit");
    Ok(ok(json!({"oid": oid})))
}
