//! Account and repository endpoints: whoami, create, delete, settings and repo info.

use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, HfError, HfResult, repo_url};
use crate::http::{param, param_bool, query_pairs, read_body};
use crate::repo::{RepoId, RepoKind};
use crate::store::{RepoMeta, StoreError};
use crate::util::{iso8601, now_secs, random_hex, random_u64};

/// `GET /api/whoami-v2`.
pub fn whoami(ctx: &Ctx) -> HfResult {
    let p = ctx.caller.principal().ok_or_else(HfError::invalid_token)?;
    let orgs: Vec<Value> = ctx
        .hub
        .users
        .orgs_of(&p.name)
        .into_iter()
        .map(|o| json!({"type": "org", "name": o, "fullname": o, "roleInOrg": if p.can_write {"write"} else {"read"}}))
        .collect();
    let role = if p.can_write { "write" } else { "read" };
    Ok(Json(json!({
        "type": "user",
        "id": crate::util::sha256_hex(p.name.as_bytes())[..24].to_string(),
        "name": p.name,
        "fullname": p.name,
        "email": format!("{}@users.hubsim", p.name),
        "emailVerified": true,
        "isPro": false,
        "orgs": orgs,
        "auth": {"type": "access_token", "accessToken": {"displayName": "hubsim", "role": role}},
    }))
    .into_response())
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    private: Option<bool>,
    visibility: Option<String>,
    sdk: Option<String>,
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> HfResult<T> {
    serde_json::from_slice(bytes).map_err(|e| HfError::bad_request(format!("Invalid JSON body: {e}")))
}

fn kind_of(kind: Option<&str>) -> HfResult<RepoKind> {
    match kind {
        None => Ok(RepoKind::Model),
        Some(k) => RepoKind::from_singular(k).ok_or_else(|| HfError::bad_request(format!("Invalid repo type: {k}"))),
    }
}

/// `POST /api/repos/create`.
pub async fn create(ctx: &Ctx, body: Body) -> HfResult {
    let bytes = read_body(&ctx.hub, body).await?;
    let req: CreateBody = parse_json(&bytes)?;
    let kind = kind_of(req.kind.as_deref())?;
    let p = ctx
        .caller
        .principal()
        .ok_or_else(|| HfError::new(StatusCode::UNAUTHORIZED, "You must be authenticated to create a repo"))?;
    let ns = req.organization.clone().unwrap_or_else(|| p.name.clone());
    let id = RepoId::new(kind, &ns, &req.name).map_err(HfError::bad_request)?;
    if !ctx.hub.users.can_write(&ctx.caller, &ns) {
        return Err(HfError::forbidden(format!(
            "You don't have the rights to create a {} under the namespace \"{ns}\"",
            kind.as_str()
        )));
    }
    let private = match (req.visibility.as_deref(), req.private) {
        (Some("private") | Some("protected"), _) => true,
        (Some("public"), _) => false,
        (Some(v), _) => return Err(HfError::bad_request(format!("Invalid visibility: {v}"))),
        (None, p) => p.unwrap_or(false),
    };
    let mut extra = serde_json::Map::new();
    if kind == RepoKind::Space {
        let sdk = req
            .sdk
            .clone()
            .ok_or_else(|| HfError::bad_request("Space SDK is required (gradio, streamlit, docker or static)"))?;
        if !["gradio", "streamlit", "docker", "static"].contains(&sdk.as_str()) {
            return Err(HfError::bad_request(format!("Invalid space SDK: {sdk}")));
        }
        extra.insert("sdk".into(), Value::String(sdk));
    }
    let meta = RepoMeta {
        id: random_hex(12),
        num_id: random_u64() % 1_000_000_000,
        private,
        gated: None,
        granted: Default::default(),
        created: now_secs(),
        default_branch: "main".into(),
        next_pr: 1,
        extra,
    };
    let url = repo_url(&ctx.hub, &id);
    let _guard = ctx.hub.store.lock(&id).await;
    let files = vec![(".gitattributes".to_string(), kind.default_gitattributes().into_bytes())];
    // Repo ids ignore case: `Alice/Model` exists when `alice/model` does.
    let created = match ctx.hub.store.canonical(&id).await? {
        Some(_) => Err(StoreError::Exists),
        None => {
            let author = ctx.caller.principal().map_or("system", |p| p.name.as_str());
            ctx.hub.store.create(&id, &meta, files, author, "initial commit").await
        }
    };
    match created {
        Ok(_) => {
            ctx.hub
                .store
                .install_pre_receive(&id, &super::commit::pre_receive_hook())
                .await?;
            tracing::info!(repo = %id, private, "created repo");
            Ok(Json(json!({"url": url, "name": id.full(), "id": meta.id})).into_response())
        }
        Err(StoreError::Exists) => Ok((
            StatusCode::CONFLICT,
            [(
                "x-error-message",
                format!("You already created this {} repo", kind.as_str()),
            )],
            Json(json!({"error": format!("You already created this {} repo", kind.as_str()), "url": url})),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct DeleteBody {
    name: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `DELETE /api/repos/delete`.
pub async fn delete(ctx: &Ctx, body: Body) -> HfResult {
    let bytes = read_body(&ctx.hub, body).await?;
    let req: DeleteBody = parse_json(&bytes)?;
    let kind = kind_of(req.kind.as_deref())?;
    let p = ctx.caller.principal().ok_or_else(|| HfError::repo_not_found(true))?;
    let ns = req.organization.clone().unwrap_or_else(|| p.name.clone());
    let id = RepoId::new(kind, &ns, &req.name).map_err(|_| HfError::repo_not_found(false))?;
    ctx.access(&id, true).await?;
    let _guard = ctx.hub.store.lock(&id).await;
    ctx.hub.store.delete(&id).await?;
    tracing::info!(repo = %id, "deleted repo");
    Ok("OK".into_response())
}

/// `PUT /api/{type}s/{ns}/{name}/settings`: visibility and gating.
pub async fn settings(ctx: &Ctx, id: &RepoId, body: Body) -> HfResult {
    ctx.access(id, true).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let req: Value = parse_json(&bytes)?;
    let _guard = ctx.hub.store.lock(id).await;
    let mut meta = ctx
        .hub
        .store
        .meta(id)
        .await?
        .ok_or_else(|| HfError::repo_not_found(false))?;
    match req.get("visibility").and_then(Value::as_str) {
        Some("private") | Some("protected") => meta.private = true,
        Some("public") => meta.private = false,
        Some(v) => return Err(HfError::bad_request(format!("Invalid visibility: {v}"))),
        None => {}
    }
    if let Some(p) = req.get("private") {
        meta.private = p
            .as_bool()
            .ok_or_else(|| HfError::bad_request("'private' must be a boolean"))?;
    }
    match req.get("gated") {
        None => {}
        Some(Value::Bool(false)) => meta.gated = None,
        Some(Value::String(g)) if g == "auto" || g == "manual" => meta.gated = Some(g.clone()),
        Some(other) => {
            return Err(HfError::bad_request(format!("Invalid gated value: {other}")));
        }
    }
    ctx.hub.store.save_meta(id, &meta).await?;
    tracing::info!(repo = %id, private = meta.private, "updated settings");
    Ok(Json(json!({})).into_response())
}

/// `POST /api/{type}s/{id}/user-access-request/grant {"user": NAME}`: a writer of the repo's
/// namespace lets a user read a gated repo, answered as the Hub does.
pub async fn grant_access(ctx: &Ctx, id: &RepoId, body: Body) -> HfResult {
    let req: Value = parse_json(&read_body(&ctx.hub, body).await?)?;
    let _guard = ctx.hub.store.lock(id).await;
    let mut meta = ctx.access(id, true).await.map_err(|e| {
        if e.status == StatusCode::FORBIDDEN {
            HfError::forbidden("You have read access but not the required permissions for this operation")
        } else {
            e
        }
    })?;
    if meta.gated.is_none() {
        return Err(
            HfError::bad_request(format!("{} {} is not gated", id.kind.as_str(), id.full())).code("RepoNotGated"),
        );
    }
    let user = req
        .get("user")
        .and_then(Value::as_str)
        .ok_or_else(|| HfError::invalid_input("string", "user"))?;
    if !ctx.hub.users.is_user(user) {
        return Err(HfError::new(StatusCode::NOT_FOUND, "User not found"));
    }
    if !meta.granted.insert(user.to_string()) {
        return Err(HfError::bad_request("That user already has access to the repo"));
    }
    ctx.hub.store.save_meta(id, &meta).await?;
    tracing::info!(repo = %id, user, "granted access to the gated repo");
    Ok(Json(json!({})).into_response())
}

/// `POST /api/repos/move {"fromRepo", "toRepo", "type"}`: renames or transfers a repo. The
/// caller writes to both namespaces; a taken name is refused as the Hub does, and the old id's
/// URLs are sent to the new one afterwards.
pub async fn move_repo(ctx: &Ctx, body: Body) -> HfResult {
    let req: Value = parse_json(&read_body(&ctx.hub, body).await?)?;
    let kind = RepoKind::from_singular(req.get("type").and_then(Value::as_str).unwrap_or("model"))
        .ok_or_else(|| HfError::bad_request("Invalid repo type"))?;
    let id_of = |key: &str| -> HfResult<RepoId> {
        let full = req
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| HfError::invalid_input("string", key))?;
        let (ns, name) = full
            .split_once('/')
            .ok_or_else(|| HfError::bad_request(format!("Invalid repo id: {full}")))?;
        RepoId::new(kind, ns, name).map_err(HfError::bad_request)
    };
    let (asked, to) = (id_of("fromRepo")?, id_of("toRepo")?);
    let from = ctx.hub.store.canonical(&asked).await?.unwrap_or(asked);
    ctx.access(&from, true).await?;
    if !ctx.hub.users.can_write(&ctx.caller, &to.ns) {
        return Err(HfError::forbidden(format!(
            "You don't have the rights to create a {} under the namespace \"{}\"",
            kind.as_str(),
            to.ns
        )));
    }
    let taken = || {
        HfError::new(
            StatusCode::CONFLICT,
            format!("A {} repository called {} already exists", kind.as_str(), to.full()),
        )
    };
    if from.full().eq_ignore_ascii_case(&to.full()) {
        return Err(taken());
    }
    // Both locks, always in the same order.
    let (first, second) = if from.full() < to.full() {
        (&from, &to)
    } else {
        (&to, &from)
    };
    let _a = ctx.hub.store.lock(first).await;
    let _b = ctx.hub.store.lock(second).await;
    if ctx.hub.store.canonical(&to).await?.is_some() {
        return Err(taken());
    }
    ctx.hub.store.rename(&from, &to).await?;
    tracing::info!(from = %from, to = %to, "moved repo");
    Ok(Json(json!({})).into_response())
}

/// `POST /api/validate-yaml {"content", "repoType"}`: a card's metadata checked as a commit
/// writing it would be (see [`super::card`]).
pub async fn validate_yaml(ctx: &Ctx, parts: &axum::http::request::Parts, body: Body) -> HfResult {
    let req: Value = parse_json(&read_body(&ctx.hub, body).await?)?;
    let content = req
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| HfError::invalid_input("string", "content"))?;
    let plain = parts
        .headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain"));
    Ok(super::card::answer(&super::card::validate(content), plain))
}

const LIST_PAGE: usize = 1000;

/// `GET /api/{models,datasets,spaces}?author=&search=&limit=`: the repos the caller may see,
/// paginated with a cursor and an absolute `Link: <...>; rel="next"`, like the tree listing.
/// `limit` is the page size (at most 1000), not a cap on the whole listing: huggingface.js
/// sends `limit=500` and follows `Link` to read everything.
pub async fn list(ctx: &Ctx, kind: RepoKind, query: Option<&str>) -> HfResult {
    let q = query_pairs(query);
    let author = param(&q, "author");
    let search = param(&q, "search").unwrap_or("");
    let limit: Option<usize> = param(&q, "limit").and_then(|v| v.parse().ok());
    let start: usize = param(&q, "cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut visible = Vec::new();
    for id in ctx.hub.store.list(kind, author).await? {
        if !id.full().contains(search) {
            continue;
        }
        if let Some(meta) = ctx.hub.store.meta(&id).await?
            && ctx.hub.users.can_read(&ctx.caller, &id.ns, meta.private)
        {
            visible.push((id, meta));
        }
    }
    let total = visible.len();
    let end = page_end(start, limit, total);
    let items: Vec<Value> = visible
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|(id, meta)| {
            let mut v = json!({
                "_id": meta.id, "id": id.full(), "author": id.ns, "private": meta.private,
                "gated": meta.gated.clone().map(Value::String).unwrap_or(Value::Bool(false)),
                "disabled": false, "downloads": 0, "likes": 0, "tags": [], "createdAt": iso8601(meta.created),
            });
            if kind == RepoKind::Model {
                v["modelId"] = json!(id.full());
            }
            v
        })
        .collect();
    let mut resp = Json(items).into_response();
    if end < total {
        let mut next = format!("{}/api/{}?cursor={end}", ctx.hub.base_url, kind.plural());
        for (k, v) in q.iter().filter(|(k, _)| k != "cursor") {
            next.push_str(&format!("&{}={}", crate::http::enc(k), crate::http::enc(v)));
        }
        if let Ok(link) = axum::http::HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            resp.headers_mut().insert(axum::http::header::LINK, link);
        }
    }
    Ok(resp)
}

/// Where a repo-listing page that starts at `start` ends: `limit` entries (the Hub's 1000 when
/// absent, zero or larger), never past `total`.
fn page_end(start: usize, limit: Option<usize>, total: usize) -> usize {
    let page = limit.filter(|l| (1..=LIST_PAGE).contains(l)).unwrap_or(LIST_PAGE);
    start.saturating_add(page).min(total)
}

/// `GET /api/{type}s/{ns}/{name}[/revision/{rev}]`.
pub async fn info(ctx: &Ctx, id: &RepoId, rev: Option<&str>, query: Option<&str>) -> HfResult {
    let meta = ctx.access(id, false).await?;
    let rev = rev.unwrap_or(&meta.default_branch);
    let commit = ctx.commit_of(id, rev).await?;
    let q = query_pairs(query);
    let blobs = param_bool(&q, "blobs");
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let last = crate::store::git::log(&ctx.hub.store.repo_dir(id), &commit, 0, 1)
        .await
        .map_err(HfError::internal)?;
    let modified = last.first().map(|c| c.time).unwrap_or(meta.created);
    let siblings: Vec<Value> = tree
        .files()
        .map(|e| {
            if !blobs {
                return json!({"rfilename": e.path});
            }
            let mut s = json!({"rfilename": e.path, "blobId": e.oid, "size": e.size});
            if let Some(p) = &e.lfs {
                s["lfs"] = json!({"sha256": p.oid, "size": p.size, "pointerSize": p.pointer_size});
            }
            s
        })
        .collect();
    let used: u64 = tree.files().map(|e| e.size).sum();
    let card = match tree.get("README.md").filter(|e| !e.is_dir && e.lfs.is_none()) {
        Some(e) => ctx
            .hub
            .store
            .read_blob(id, &e.oid)
            .await?
            .and_then(|b| super::card::card_data(&b)),
        None => None,
    };
    let tags = card.as_ref().map(super::card::license_tags).unwrap_or_default();
    let mut v = json!({
        "_id": meta.id,
        "id": id.full(),
        "author": id.ns,
        "sha": commit,
        "lastModified": iso8601(modified),
        "createdAt": iso8601(meta.created),
        "private": meta.private,
        "gated": meta.gated.clone().map(Value::String).unwrap_or(Value::Bool(false)),
        "disabled": false,
        "downloads": 0,
        "likes": 0,
        "tags": tags,
        "siblings": siblings,
        "usedStorage": used,
        "xetEnabled": false,
    });
    if let Some(c) = card {
        v["cardData"] = c;
    }
    match id.kind {
        RepoKind::Model => v["modelId"] = json!(id.full()),
        RepoKind::Space => v["sdk"] = meta.extra.get("sdk").cloned().unwrap_or(Value::Null),
        RepoKind::Dataset => {}
    }
    let expand: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "expand" || k == "expand[]")
        .map(|(_, v)| v.as_str())
        .collect();
    if !expand.is_empty() {
        let mut only = serde_json::Map::new();
        for key in ["_id", "id"].iter().chain(expand.iter()) {
            if let Some(val) = v.get(*key) {
                only.insert((*key).to_string(), val.clone());
            }
        }
        v = Value::Object(only);
    }
    Ok(Json(v).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_limit_is_a_page_size() {
        assert_eq!(page_end(0, Some(2), 5), 2);
        assert_eq!(page_end(4, Some(2), 5), 5);
        assert_eq!(page_end(0, None, 5000), LIST_PAGE);
        assert_eq!(page_end(0, Some(5000), 5000), LIST_PAGE, "capped at the Hub's page");
        assert_eq!(page_end(0, Some(0), 3), 3);
        assert_eq!(page_end(7, Some(2), 5), 5, "a cursor past the end gives an empty page");
    }
}
