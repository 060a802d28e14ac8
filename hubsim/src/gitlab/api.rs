//! The `/api/v4` routes a migration tool needs: the current user, projects (get, create,
//! update with an import URL and the mirror flag), namespaces, one branch, and the pull mirror
//! (trigger and status). Parameters arrive as JSON, as a form or in the query string, as Grape
//! accepts them.

use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::projects::{self, Credentials, Level, Project, Visibility};
use super::{Ctx, ProjectRef, mirror};
use crate::auth::Principal;
use crate::repo::{RepoId, RepoKind, check_name};
use crate::store::{StoreError, check_rev};
use crate::util::iso8601;

type Params = Map<String, Value>;

/// Query string, then the body (JSON object or form) on top.
fn params(parts: &axum::http::request::Parts, query: Option<&str>, body: &[u8]) -> ApiResult<Params> {
    let mut out: Params = crate::http::query_pairs(query)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => out.extend(m),
            _ => return Err(ApiError::bad_param("The request body is not a JSON object")),
        }
    } else {
        let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_param("The request body is not UTF-8"))?;
        out.extend(
            crate::http::query_pairs(Some(text))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v))),
        );
    }
    Ok(out)
}

fn str_param(p: &Params, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bool_param(p: &Params, key: &str) -> ApiResult<Option<bool>> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_param(format!("{key} is invalid"))),
    }
}

fn visibility_param(p: &Params) -> ApiResult<Option<Visibility>> {
    match str_param(p, "visibility") {
        None => Ok(None),
        Some(v) => Visibility::parse(&v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_param("visibility does not have a valid value")),
    }
}

/// Splits an import URL into the URL without credentials and the credentials it carried.
fn parse_import_url(s: &str) -> ApiResult<(String, Option<Credentials>)> {
    let blocked = |why: &str| ApiError::invalid("import_url", &format!("is blocked: {why}"));
    let mut url = reqwest::Url::parse(s).map_err(|_| blocked("Invalid URL"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(blocked("Only allowed schemes are http, https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(blocked("Invalid URL"));
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let username = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let creds = (!username.is_empty() || !password.is_empty()).then_some(Credentials { username, password });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url.to_string(), creds))
}

fn principal(ctx: &Ctx) -> ApiResult<&Principal> {
    ctx.caller.principal().ok_or_else(ApiError::unauthorized)
}

/// The project `r` names and the caller's level on it; 404 when it is invisible.
async fn find(ctx: &Ctx, r: &ProjectRef) -> ApiResult<(Project, Level)> {
    let store = &ctx.gl.hub.store;
    let project = match r {
        ProjectRef::Num(n) => projects::load_by_num(store, *n).await?,
        ProjectRef::Path(path) => match RepoId::from_full_path(RepoKind::Model, path) {
            Ok(id) => projects::load(store, &id).await?,
            Err(_) => None,
        },
    };
    let p = project.ok_or_else(ApiError::project_not_found)?;
    match projects::level(&ctx.gl.hub.users, &ctx.caller, &p.id.ns, p.visibility()) {
        Level::None => Err(ApiError::project_not_found()),
        level => Ok((p, level)),
    }
}

/// Like [`find`], for changes: readers get 403.
async fn find_writable(ctx: &Ctx, r: &ProjectRef) -> ApiResult<Project> {
    match find(ctx, r).await? {
        (p, Level::Write) => Ok(p),
        _ if ctx.caller.principal().is_none() => Err(ApiError::unauthorized()),
        _ => Err(ApiError::forbidden()),
    }
}

async fn project_json(ctx: &Ctx, p: &Project) -> ApiResult<Value> {
    Ok(projects::json(&ctx.gl.hub.store, &ctx.gl.namespaces, &ctx.gl.hub.base_url, p).await?)
}

/// `GET /api/v4/user`.
pub fn user(ctx: &Ctx) -> ApiResult {
    let p = principal(ctx)?;
    let id = ctx.gl.namespaces.by_path(&p.name).map(|n| n.id);
    Ok(Json(json!({
        "id": id,
        "username": p.name,
        "name": p.name,
        "state": "active",
        "avatar_url": null,
        "web_url": format!("{}/{}", ctx.gl.hub.base_url, p.name),
    }))
    .into_response())
}

/// `GET /api/v4/projects/:id`.
pub async fn project(ctx: &Ctx, r: &ProjectRef) -> ApiResult {
    let (p, _) = find(ctx, r).await?;
    Ok(Json(project_json(ctx, &p).await?).into_response())
}

/// `GET /api/v4/namespaces/:id`: the caller's own namespace or one of its groups.
pub fn namespace(ctx: &Ctx, key: &str) -> ApiResult {
    let p = principal(ctx)?;
    let ns = ctx
        .gl
        .namespaces
        .lookup(key)
        .filter(|ns| {
            if ns.is_group {
                ctx.gl.hub.users.belongs(p, &ns.full_path)
            } else {
                ns.full_path == p.name
            }
        })
        .ok_or_else(ApiError::namespace_not_found)?;
    Ok(Json(ns.json(&ctx.gl.hub.base_url)).into_response())
}

/// The import settings a create or update asks for: `Some((url, credentials))` to set one.
fn import_params(p: &Params) -> ApiResult<Option<(String, Option<Credentials>)>> {
    match str_param(p, "import_url") {
        None => Ok(None),
        Some(u) if u.is_empty() => Ok(None),
        Some(u) => parse_import_url(&u).map(Some),
    }
}

/// Stores the import URL (without credentials) and the credentials apart.
async fn set_import(ctx: &Ctx, id: &RepoId, url: String, creds: Option<Credentials>) -> Result<(), StoreError> {
    projects::save_credentials(&ctx.gl.hub.store, id, creds.as_ref()).await?;
    projects::update(&ctx.gl.hub.store, id, |p| {
        p.meta.extra.insert("import_url".into(), Value::String(url));
    })
    .await?;
    Ok(())
}

/// `POST /api/v4/projects`.
pub async fn create_project(
    ctx: &Ctx,
    parts: &axum::http::request::Parts,
    query: Option<&str>,
    body: Body,
) -> ApiResult {
    let caller = principal(ctx)?;
    let bytes = crate::http::read_body(&ctx.gl.hub, body).await?;
    let params = params(parts, query, &bytes)?;
    let path = str_param(&params, "path")
        .or_else(|| str_param(&params, "name"))
        .ok_or_else(|| ApiError::bad_param("name, path are missing, at least one parameter must be provided"))?;
    let ns = match str_param(&params, "namespace_id") {
        Some(key) => ctx.gl.namespaces.lookup(&key),
        None => ctx.gl.namespaces.by_path(&caller.name),
    }
    .filter(|ns| ctx.gl.hub.users.belongs(caller, &ns.full_path))
    .ok_or_else(ApiError::namespace_not_found)?;
    if !ctx.gl.hub.users.can_write(&ctx.caller, &ns.full_path) {
        return Err(ApiError::forbidden());
    }
    let visibility = visibility_param(&params)?.unwrap_or(Visibility::Private);
    let import = import_params(&params)?;
    let mirror = bool_param(&params, "mirror")?.unwrap_or(false);
    if mirror && import.is_none() {
        return Err(ApiError::invalid("import_url", "can't be blank"));
    }
    check_name(&path).map_err(|_| {
        ApiError::invalid(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'",
        )
    })?;
    let id =
        RepoId::nested(RepoKind::Model, &ns.full_path, &path).map_err(|_| ApiError::invalid("path", "is too deep"))?;
    match ctx.gl.create_project(&id, visibility).await {
        Ok(_) => {}
        Err(StoreError::Exists) => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({"message": {"name": ["has already been taken"], "path": ["has already been taken"]}}),
            });
        }
        Err(e) => return Err(e.into()),
    }
    if let Some((url, creds)) = import {
        set_import(ctx, &id, url, creds).await?;
        projects::update(&ctx.gl.hub.store, &id, |p| {
            p.meta.extra.insert("mirror".into(), Value::Bool(mirror));
        })
        .await?;
        // GitLab imports a project created with an import URL right away.
        mirror::schedule(&ctx.gl, &id).await?;
    }
    let p = projects::load(&ctx.gl.hub.store, &id)
        .await?
        .ok_or_else(ApiError::project_not_found)?;
    Ok((StatusCode::CREATED, Json(project_json(ctx, &p).await?)).into_response())
}

/// `PUT /api/v4/projects/:id`: visibility, import URL, mirror flag, default branch.
pub async fn update_project(
    ctx: &Ctx,
    r: &ProjectRef,
    parts: &axum::http::request::Parts,
    query: Option<&str>,
    body: Body,
) -> ApiResult {
    let bytes = crate::http::read_body(&ctx.gl.hub, body).await?;
    let p = find_writable(ctx, r).await?;
    let params = params(parts, query, &bytes)?;
    let visibility = visibility_param(&params)?;
    let import = import_params(&params)?;
    let mirror = bool_param(&params, "mirror")?;
    if mirror == Some(true) && import.is_none() && p.import_url().is_none() {
        return Err(ApiError::invalid("import_url", "can't be blank"));
    }
    let store = &ctx.gl.hub.store;
    if let Some(branch) = str_param(&params, "default_branch") {
        let exists = check_rev(&branch).is_ok() && store.branch_head(&p.id, &branch).await?.is_some();
        if !exists {
            return Err(ApiError::invalid(
                "base",
                &format!("Could not change HEAD: branch '{branch}' does not exist"),
            ));
        }
        let head = format!("refs/heads/{branch}");
        crate::store::git::run(&store.repo_dir(&p.id), &["symbolic-ref", "HEAD", &head])
            .await
            .map_err(ApiError::internal)?;
    }
    if let Some((url, creds)) = import {
        set_import(ctx, &p.id, url, creds).await?;
    }
    let p = projects::update(store, &p.id, |p| {
        if let Some(v) = visibility {
            p.set_visibility(v);
        }
        if let Some(m) = mirror {
            p.meta.extra.insert("mirror".into(), Value::Bool(m));
        }
    })
    .await?;
    tracing::info!(project = %p.id.full(), mirror = p.mirror(), "updated project");
    Ok(Json(project_json(ctx, &p).await?).into_response())
}

/// `POST /api/v4/projects/:id/mirror/pull`: schedules a pull (asynchronous).
pub async fn mirror_pull(ctx: &Ctx, r: &ProjectRef) -> ApiResult {
    let p = find_writable(ctx, r).await?;
    if !p.mirror() || p.import_url().is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "The project is not mirrored"));
    }
    mirror::schedule(&ctx.gl, &p.id).await?;
    Ok(StatusCode::OK.into_response())
}

fn time(t: Option<u64>) -> Value {
    t.map(|t| Value::String(iso8601(t))).unwrap_or(Value::Null)
}

/// `GET /api/v4/projects/:id/mirror/pull`.
pub async fn mirror_status(ctx: &Ctx, r: &ProjectRef) -> ApiResult {
    let p = find_writable(ctx, r).await?;
    let Some(url) = p.import_url() else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "The project is not mirrored"));
    };
    let s = p.mirror_state();
    Ok(Json(json!({
        "id": p.meta.num_id,
        "update_status": s.status(),
        "url": url,
        "last_error": s.last_error,
        "last_update_at": time(s.last_update_at),
        "last_update_started_at": time(s.last_update_started_at),
        "last_successful_update_at": time(s.last_successful_update_at),
        "enabled": p.mirror(),
        "mirror_trigger_builds": false,
        "only_mirror_protected_branches": null,
        "mirror_overwrites_diverged_branches": null,
        "mirror_branch_regex": null,
    }))
    .into_response())
}

/// `GET /api/v4/projects/:id/repository/branches/:branch`.
pub async fn branch(ctx: &Ctx, r: &ProjectRef, name: &str) -> ApiResult {
    let (p, level) = find(ctx, r).await?;
    let store = &ctx.gl.hub.store;
    if check_rev(name).is_err() {
        return Err(ApiError::branch_not_found());
    }
    let sha = store
        .branch_head(&p.id, name)
        .await?
        .ok_or_else(ApiError::branch_not_found)?;
    let out = crate::store::git::run(
        &store.repo_dir(&p.id),
        &[
            "show",
            "-s",
            "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%s%x00%B",
            "--end-of-options",
            &sha,
        ],
    )
    .await
    .map_err(ApiError::internal)?;
    let text = String::from_utf8_lossy(&out);
    let f: Vec<&str> = text.splitn(10, '\0').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or("");
    let full = p.id.full();
    let base = &ctx.gl.hub.base_url;
    let is_default = projects::default_branch(store, &p.id).await?.as_deref() == Some(name);
    let commit = json!({
        "id": field(0),
        "short_id": field(0).get(..8).unwrap_or(""),
        "parent_ids": field(1).split_whitespace().collect::<Vec<_>>(),
        "author_name": field(2),
        "author_email": field(3),
        "authored_date": field(4),
        "committer_name": field(5),
        "committer_email": field(6),
        "committed_date": field(7),
        "created_at": field(7),
        "title": field(8),
        "message": field(9).trim_end(),
        "web_url": format!("{base}/{full}/-/commit/{}", field(0)),
    });
    Ok(Json(json!({
        "name": name,
        "commit": commit,
        "merged": false,
        // GitLab protects the default branch of new projects.
        "protected": is_default,
        "developers_can_push": false,
        "developers_can_merge": false,
        "can_push": level == Level::Write,
        "default": is_default,
        "web_url": format!("{base}/{full}/-/tree/{}", crate::http::enc(name)),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_urls_lose_their_credentials() {
        let (url, creds) = parse_import_url("https://alice:s%40cret@hub.example:8443/acme/m.git").unwrap();
        assert_eq!(url, "https://hub.example:8443/acme/m.git");
        let c = creds.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "s@cret"));
        assert!(!format!("{c:?}").contains("cret"));
        let (url, creds) = parse_import_url("http://127.0.0.1:9/x/y").unwrap();
        assert_eq!(url, "http://127.0.0.1:9/x/y");
        assert!(creds.is_none());
        for bad in ["ftp://h/x", "file:///etc/passwd", "not a url", "git@host:x/y.git"] {
            let e = parse_import_url(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                e.body["message"]["import_url"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("is blocked")
            );
        }
    }
}
