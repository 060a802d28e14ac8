//! Read-side listing endpoints (tree, paths-info, refs, commits) and ref management (branches,
//! tags). Pagination follows the Hub: an opaque cursor and an absolute `Link: <...>; rel="next"`.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::{Ctx, HfError, HfResult};
use crate::http::{enc, param, param_bool, query_pairs, read_body};
use crate::repo::RepoId;
use crate::store::{Entry, check_rev, git};
use crate::util::iso8601;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn entry_json(e: &Entry) -> Value {
    if e.is_dir {
        return json!({"type": "directory", "oid": e.oid, "size": 0, "path": e.path});
    }
    let mut v = json!({"type": "file", "oid": e.oid, "size": e.size, "path": e.path});
    if let Some(p) = &e.lfs {
        v["lfs"] = json!({"oid": p.oid, "size": p.size, "pointerSize": p.pointer_size});
    }
    v
}

async fn with_last_commit(ctx: &Ctx, id: &RepoId, commit: &str, e: &Entry) -> HfResult<Value> {
    let mut v = entry_json(e);
    let out = git::run(
        &ctx.hub.store.repo_dir(id),
        &["log", "-1", "--format=%H%x00%s%x00%ct", commit, "--", &e.path],
    )
    .await
    .map_err(HfError::internal)?;
    let text = String::from_utf8_lossy(&out);
    let mut f = text.trim_end().split('\0');
    if let (Some(cid), Some(title), Some(t)) = (f.next(), f.next(), f.next()) {
        v["lastCommit"] = json!({"id": cid, "title": title, "date": iso8601(t.parse().unwrap_or(0))});
    }
    Ok(v)
}

fn next_link(resp: &mut Response, url: String) {
    if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
        resp.headers_mut().insert(header::LINK, v);
    }
}

/// `GET /api/{t}s/{ns}/{n}/tree/{rev}[/{path}]?recursive=&expand=&cursor=`.
pub async fn tree(ctx: &Ctx, id: &RepoId, rev: &str, path: &str, query: Option<&str>) -> HfResult {
    ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, rev).await?;
    let q = query_pairs(query);
    let recursive = param_bool(&q, "recursive");
    let expand = param_bool(&q, "expand");
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let dir = path.trim_matches('/');
    if !dir.is_empty() && !tree.get(dir).is_some_and(|e| e.is_dir) {
        return Err(HfError::entry_not_found(Some(commit)));
    }
    let page = if expand { 50 } else { ctx.hub.cfg.tree_page_size.max(1) };
    let start: usize = match param(&q, "cursor") {
        None => 0,
        Some(c) => B64
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HfError::bad_request("Invalid cursor"))?,
    };
    let all: Vec<&Entry> = tree.under(dir, recursive).collect();
    let end = (start + page).min(all.len());
    let mut items = Vec::with_capacity(end.saturating_sub(start));
    for e in all.get(start..end).unwrap_or(&[]) {
        items.push(if expand {
            with_last_commit(ctx, id, &commit, e).await?
        } else {
            entry_json(e)
        });
    }
    let mut resp = Json(items).into_response();
    if end < all.len() {
        let sub = if dir.is_empty() {
            String::new()
        } else {
            format!("/{}", enc(dir))
        };
        let url = format!(
            "{}/api/{}/{}/{}/tree/{}{sub}?recursive={recursive}&expand={expand}&cursor={}",
            ctx.hub.base_url,
            id.kind.plural(),
            id.ns,
            id.name,
            enc(rev),
            B64.encode(end.to_string())
        );
        next_link(&mut resp, url);
    }
    Ok(resp)
}

/// `POST /api/{t}s/{ns}/{n}/paths-info/{rev}` with a form (`paths=a&paths=b`) or JSON body.
pub async fn paths_info(ctx: &Ctx, id: &RepoId, rev: &str, parts: &axum::http::request::Parts, body: Body) -> HfResult {
    ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, rev).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let (paths, expand): (Vec<String>, bool) = if is_json {
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| HfError::bad_request(format!("Invalid JSON body: {e}")))?;
        let paths = v
            .get("paths")
            .and_then(Value::as_array)
            .ok_or_else(|| HfError::bad_request("'paths' must be a list"))?
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        (paths, v.get("expand").and_then(Value::as_bool).unwrap_or(false))
    } else {
        let q = query_pairs(std::str::from_utf8(&bytes).ok());
        let paths = q
            .iter()
            .filter(|(k, _)| k == "paths" || k == "paths[]")
            .map(|(_, v)| v.clone())
            .collect();
        (paths, param_bool(&q, "expand"))
    };
    if paths.len() > 1000 {
        return Err(HfError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too many paths: at most 1000 per request",
        ));
    }
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let mut out = Vec::new();
    for p in &paths {
        if let Some(e) = tree.get(p.trim_matches('/')) {
            out.push(if expand {
                with_last_commit(ctx, id, &commit, e).await?
            } else {
                entry_json(e)
            });
        }
    }
    Ok(Json(out).into_response())
}

/// `GET /api/{t}s/{ns}/{n}/refs[?include_prs=1]`.
pub async fn refs(ctx: &Ctx, id: &RepoId, query: Option<&str>) -> HfResult {
    ctx.access(id, false).await?;
    let q = query_pairs(query);
    let prs = param_bool(&q, "include_prs");
    let mut out = json!({"branches": [], "converts": [], "tags": []});
    if prs {
        out["pullRequests"] = json!([]);
    }
    for (name, target) in ctx.hub.store.refs(id).await? {
        let (key, short) = if let Some(s) = name.strip_prefix("refs/heads/") {
            ("branches", s)
        } else if let Some(s) = name.strip_prefix("refs/tags/") {
            ("tags", s)
        } else if let Some(s) = name.strip_prefix("refs/convert/") {
            ("converts", s)
        } else if let Some(s) = name.strip_prefix("refs/pr/") {
            if !prs {
                continue;
            }
            ("pullRequests", s)
        } else {
            continue;
        };
        if let Some(list) = out[key].as_array_mut() {
            list.push(json!({"name": short, "ref": name, "targetCommit": target}));
        }
    }
    Ok(Json(out).into_response())
}

const COMMITS_PAGE: usize = 50;

/// `GET /api/{t}s/{ns}/{n}/commits/{rev}[?p=N]`, newest first.
pub async fn commits(ctx: &Ctx, id: &RepoId, rev: &str, query: Option<&str>) -> HfResult {
    ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, rev).await?;
    let q = query_pairs(query);
    let page: usize = param(&q, "p").and_then(|p| p.parse().ok()).unwrap_or(0);
    let dir = ctx.hub.store.repo_dir(id);
    let list = git::log(&dir, &commit, page * COMMITS_PAGE, COMMITS_PAGE)
        .await
        .map_err(HfError::internal)?;
    let total = git::count(&dir, &commit).await.map_err(HfError::internal)?;
    let formatted = q
        .iter()
        .any(|(k, v)| (k == "expand[]" || k == "expand") && v == "formatted");
    let items: Vec<Value> = list
        .iter()
        .map(|c| {
            let mut v = json!({"id": c.id, "title": c.title, "message": c.message, "authors": [{"user": c.author, "avatar": ""}], "date": iso8601(c.time)});
            if formatted {
                v["formatted"] = json!({"title": html_escape(&c.title), "message": html_escape(&c.message)});
            }
            v
        })
        .collect();
    let mut resp = Json(items).into_response();
    resp.headers_mut().insert("x-total-count", HeaderValue::from(total));
    if ((page + 1) * COMMITS_PAGE) < total as usize {
        let url = format!(
            "{}/api/{}/{}/{}/commits/{}?p={}",
            ctx.hub.base_url,
            id.kind.plural(),
            id.ns,
            id.name,
            enc(rev),
            page + 1
        );
        next_link(&mut resp, url);
    }
    Ok(resp)
}

/// Minimal HTML escaping for the `formatted` commit fields (the Hub renders them as HTML).
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn check_branch_name(name: &str) -> HfResult<()> {
    if name.starts_with("refs/") || check_rev(name).is_err() {
        return Err(HfError::bad_request("Invalid reference for a branch"));
    }
    Ok(())
}

fn optional_json(bytes: &[u8]) -> HfResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| HfError::bad_request(format!("Invalid JSON body: {e}")))
}

/// `POST|DELETE /api/{t}s/{ns}/{n}/branch/{name}` (`startingPoint` optional).
pub async fn branch(ctx: &Ctx, id: &RepoId, name: &str, method: &Method, body: Body) -> HfResult {
    let meta = ctx.access(id, true).await?;
    check_branch_name(name)?;
    let refname = format!("refs/heads/{name}");
    let dir = ctx.hub.store.repo_dir(id);
    let bytes = read_body(&ctx.hub, body).await?;
    let _guard = ctx.hub.store.lock(id).await;
    let existing = ctx.hub.store.branch_head(id, name).await?;
    if *method == Method::DELETE {
        if name == meta.default_branch {
            return Err(HfError::forbidden(format!("Cannot delete refs/heads/{name}")));
        }
        existing.ok_or_else(|| HfError::revision_not_found(name))?;
        git::delete_ref(&dir, &refname).await.map_err(HfError::internal)?;
        return Ok(StatusCode::OK.into_response());
    }
    if existing.is_some() {
        return Err(HfError::new(
            StatusCode::CONFLICT,
            format!("Reference {refname} already exists"),
        ));
    }
    let req = optional_json(&bytes)?;
    let start = req
        .get("startingPoint")
        .and_then(Value::as_str)
        .unwrap_or(&meta.default_branch)
        .to_string();
    let target = ctx.commit_of(id, &start).await?;
    git::update_ref(&dir, &refname, &target, Some(""))
        .await
        .map_err(HfError::internal)?;
    tracing::info!(repo = %id, branch = name, "created branch");
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/{t}s/{ns}/{n}/super-squash/{branch}` (body `{"message"}`): the branch becomes one
/// commit holding its head's tree; other branches keep their history. Answers `{"commitId"}`.
pub async fn super_squash(ctx: &Ctx, id: &RepoId, branch: &str, body: Body) -> HfResult {
    ctx.access(id, true).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let req = optional_json(&bytes)?;
    let message = req
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("Super-squash commit")
        .to_string();
    if message.chars().count() > 500 {
        return Err(HfError::bad_request(
            "* Too big: expected string to have <=500 characters * at message",
        ));
    }
    let dir = ctx.hub.store.repo_dir(id);
    let _guard = ctx.hub.store.lock(id).await;
    let Some(head) = ctx.hub.store.branch_head(id, branch).await? else {
        let is_tag = git::resolve_commit(&dir, &format!("refs/tags/{branch}"))
            .await
            .map_err(HfError::internal)?
            .is_some();
        if is_tag {
            return Err(HfError::bad_request(format!(
                "invalid reference for a branch: {branch}"
            )));
        }
        return Err(HfError::revision_not_found(branch));
    };
    let who = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
    let squashed = git::squash(&dir, &head, &who, &message)
        .await
        .map_err(HfError::internal)?;
    git::update_ref(&dir, &format!("refs/heads/{branch}"), &squashed, Some(&head))
        .await
        .map_err(HfError::internal)?;
    tracing::info!(repo = %id, branch, commit = %squashed, "super-squashed");
    Ok(Json(json!({"commitId": squashed})).into_response())
}

/// `POST /api/{t}s/{ns}/{n}/tag/{rev}` (body `{"tag", "message"}`) and
/// `DELETE /api/{t}s/{ns}/{n}/tag/{tag}`.
pub async fn tag(ctx: &Ctx, id: &RepoId, name: &str, method: &Method, body: Body) -> HfResult {
    ctx.access(id, true).await?;
    let dir = ctx.hub.store.repo_dir(id);
    let bytes = read_body(&ctx.hub, body).await?;
    let _guard = ctx.hub.store.lock(id).await;
    if *method == Method::DELETE {
        let refname = format!("refs/tags/{name}");
        if check_rev(name).is_err()
            || git::resolve_commit(&dir, &refname)
                .await
                .map_err(HfError::internal)?
                .is_none()
        {
            return Err(HfError::revision_not_found(name));
        }
        git::delete_ref(&dir, &refname).await.map_err(HfError::internal)?;
        return Ok(StatusCode::OK.into_response());
    }
    let req = optional_json(&bytes)?;
    let tag = req
        .get("tag")
        .and_then(Value::as_str)
        .ok_or_else(|| HfError::bad_request("'tag' is required"))?;
    if tag.starts_with("refs/") || check_rev(tag).is_err() {
        return Err(HfError::bad_request(format!("Invalid tag name: {tag}")));
    }
    let target = ctx.commit_of(id, name).await?;
    if git::resolve_commit(&dir, &format!("refs/tags/{tag}"))
        .await
        .map_err(HfError::internal)?
        .is_some()
    {
        // The branch text's shape (the Hub's text for tags is unrecorded).
        return Err(HfError::new(
            StatusCode::CONFLICT,
            format!("Reference refs/tags/{tag} already exists"),
        ));
    }
    let who = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
    let message = req.get("message").and_then(Value::as_str).unwrap_or("");
    git::tag(&dir, tag, &target, message, &who)
        .await
        .map_err(HfError::internal)?;
    Ok(StatusCode::OK.into_response())
}
