//! Repository endpoints: create (models as JSON, datasets as multipart), metadata (legacy and
//! OpenAPI), owner listings, revisions, commit history, tags, and the refused API delete.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::Ctx;
use super::error::{MsError, MsResult, code, ok, ok_paged, open_ok};
use crate::http::{param, read_body};
use crate::repo::{RepoId, RepoKind};
use crate::store::{RepoMeta, StoreError, git};
use crate::util::{iso8601, now_secs, random_hex, random_u64};

const PRIVATE: i64 = 1;
const INTERNAL: i64 = 3;
const PUBLIC: i64 = 5;

fn visibility(meta: &RepoMeta) -> i64 {
    meta.extra
        .get("visibility")
        .and_then(Value::as_i64)
        .unwrap_or(if meta.private { PRIVATE } else { PUBLIC })
}

/// The card ModelScope puts in a new model (its default template, as found in mirrored
/// ModelScope repos): front matter naming the license as given at creation, and a note that the
/// card is still the template.
fn model_card_template(owner: &str, name: &str, license: &str) -> String {
    format!(
        "---\nlicense: {license}\n---\n###### 该模型当前使用的是默认介绍模版，处于“预发布”阶段，页面仅限所有者可见。\n\
         ###### 请根据[模型贡献文档说明](https://www.modelscope.cn/docs/%E5%A6%82%E4%BD%95%E6%92%B0%E5%86%99%E5%A5%BD%E7%94%A8%E7%9A%84%E6%A8%A1%E5%9E%8B%E5%8D%A1%E7%89%87)，及时完善模型卡片内容。ModelScope平台将在模型卡片完善后展示。谢谢您的理解。\n\n\
         #### Clone with HTTP\n```bash\n git clone https://www.modelscope.cn/{owner}/{name}.git\n```\n"
    )
}

/// Creates a repo after the permission and existence checks both create routes share.
async fn create(ctx: &Ctx, kind: RepoKind, owner: &str, name: &str, vis: i64, license: &str) -> MsResult {
    ctx.require_write(owner)?;
    let id = RepoId::new(kind, owner, name).map_err(MsError::bad_request)?;
    if ![PRIVATE, INTERNAL, PUBLIC].contains(&vis) {
        return Err(MsError::bad_request(format!(
            "invalid Visibility {vis}: expected 1, 3 or 5"
        )));
    }
    let mut extra = serde_json::Map::new();
    extra.insert("visibility".into(), json!(vis));
    extra.insert("license".into(), json!(license));
    let meta = RepoMeta {
        id: random_hex(12),
        num_id: 1000 + random_u64() % 1_000_000_000,
        private: vis != PUBLIC,
        gated: None,
        granted: Default::default(),
        created: now_secs(),
        default_branch: "master".into(),
        next_pr: 1,
        extra,
    };
    let _guard = ctx.hub.store.lock(&id).await;
    let mut files = vec![(".gitattributes".to_string(), kind.default_gitattributes().into_bytes())];
    if kind == RepoKind::Model {
        files.push((
            "README.md".to_string(),
            model_card_template(owner, name, license).into_bytes(),
        ));
    }
    match ctx
        .hub
        .store
        .create(&id, &meta, files, "system", "initial commit")
        .await
    {
        Ok(_) => {
            tracing::info!(repo = %id, visibility = vis, "created repo");
            Ok(ok(json!({"Path": owner, "Name": name, "Id": meta.num_id})))
        }
        Err(StoreError::Exists) => {
            let c = if kind == RepoKind::Dataset {
                code::DATASET_EXISTS
            } else {
                code::MODEL_EXISTS
            };
            Err(MsError::bad_request("该名称已被注册使用，请重新命名 (the name is already in use)").with_code(c))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/v1/models` with a JSON body `{"Path","Name","Visibility","License",...}`.
pub async fn create_model(ctx: &Ctx, body: Body) -> MsResult {
    let bytes = read_body(&ctx.hub, body).await?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    let owner = v
        .get("Path")
        .and_then(Value::as_str)
        .ok_or_else(|| MsError::bad_request("Path is required"))?;
    let name = v
        .get("Name")
        .and_then(Value::as_str)
        .ok_or_else(|| MsError::bad_request("Name is required"))?;
    let vis = v.get("Visibility").and_then(Value::as_i64).unwrap_or(PUBLIC);
    let license = v.get("License").and_then(Value::as_str).unwrap_or("Apache-2.0");
    create(ctx, RepoKind::Model, owner, name, vis, license).await
}

/// `POST /api/v1/datasets` with multipart form fields `Owner`, `Name`, `Visibility`, `License`.
pub async fn create_dataset(ctx: &Ctx, parts: axum::http::request::Parts, body: Body) -> MsResult {
    let req = Request::from_parts(parts, body);
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| MsError::bad_request(format!("expected multipart/form-data: {e}")))?;
    let mut fields = std::collections::HashMap::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| MsError::bad_request(e.to_string()))?
    {
        let name = field.name().unwrap_or("").to_string();
        let text = field.text().await.map_err(|e| MsError::bad_request(e.to_string()))?;
        fields.insert(name, text);
    }
    let owner = fields
        .get("Owner")
        .ok_or_else(|| MsError::bad_request("Owner is required"))?;
    let name = fields
        .get("Name")
        .ok_or_else(|| MsError::bad_request("Name is required"))?;
    let vis = match fields.get("Visibility") {
        Some(v) => v
            .parse()
            .map_err(|_| MsError::bad_request(format!("invalid Visibility {v}")))?,
        None => PUBLIC,
    };
    let license = fields.get("License").map(String::as_str).unwrap_or("Apache-2.0");
    create(ctx, RepoKind::Dataset, owner, name, vis, license).await
}

/// `GET /api/v1/{models|datasets}/{owner}/{name}`.
pub async fn info(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult {
    let meta = ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, &meta, param(q, "Revision")).await?;
    let last = git::log(&ctx.hub.store.repo_dir(id), &commit, 0, 1)
        .await
        .map_err(MsError::internal)?;
    let updated = last.first().map(|c| c.time).unwrap_or(meta.created);
    Ok(ok(legacy_entry(id, &meta, updated)))
}

/// A repo as the legacy routes describe it (info, and each entry of the owner listings).
fn legacy_entry(id: &RepoId, meta: &RepoMeta, updated: u64) -> Value {
    let license = meta.extra.get("license").cloned().unwrap_or(json!(""));
    let mut data = json!({
        "Id": meta.num_id, "Name": id.name, "Path": id.ns, "Owner": id.ns, "Namespace": id.ns,
        "ChineseName": "", "Visibility": visibility(meta), "ProtectedMode": 2, "ApprovalMode": 2,
        "License": license, "Description": "", "Downloads": 0, "Likes": 0, "Stars": 0,
        "CreatedTime": meta.created, "GmtCreate": meta.created, "LastUpdatedTime": updated,
        "CreatedBy": id.ns, "Tags": [], "ReadMeContent": "", "Revision": meta.default_branch,
    });
    if id.kind == RepoKind::Dataset {
        data["Type"] = json!(4);
    }
    data
}

/// Where a 1-based legacy page of `size` entries lies in a listing of `total`: `Err` with the
/// service's own `fromIndex > toIndex` complaint when it starts past the end (its Java
/// `subList` throws then; a page starting exactly at the end is empty).
fn legacy_bounds(page: usize, size: usize, total: usize) -> MsResult<(usize, usize)> {
    if page == 0 || !(1..=100).contains(&size) {
        return Err(MsError::bad_request(
            "参数错误 (invalid parameter): PageNumber must be at least 1 and PageSize 1..=100",
        ));
    }
    let from = (page - 1).saturating_mul(size);
    let to = from.saturating_add(size).min(total);
    if from > to {
        return Err(MsError::bad_request(format!("fromIndex({from}) > toIndex({to})")));
    }
    Ok((from, to))
}

/// One page of the `kind` repos of `owner` (every owner when `None`) that the caller may see,
/// private ones included (the legacy routes authenticate like the site), and the total.
async fn legacy_page(
    ctx: &Ctx,
    kind: RepoKind,
    owner: Option<&str>,
    page: usize,
    size: usize,
) -> MsResult<(Vec<Value>, usize)> {
    let mut visible = Vec::new();
    for id in ctx.hub.store.list(kind, owner).await? {
        if let Some(meta) = ctx.hub.store.meta(&id).await?
            && ctx.hub.users.can_read(&ctx.caller, &id.ns, meta.private)
        {
            visible.push((id, meta));
        }
    }
    let (from, to) = legacy_bounds(page, size, visible.len())?;
    let mut items = Vec::new();
    for (id, meta) in &visible[from..to] {
        let commit = ctx.commit_of(id, meta, None).await?;
        let last = git::log(&ctx.hub.store.repo_dir(id), &commit, 0, 1)
            .await
            .map_err(MsError::internal)?;
        items.push(legacy_entry(id, meta, last.first().map_or(meta.created, |c| c.time)));
    }
    Ok((items, visible.len()))
}

fn number(v: Option<&Value>, default: usize) -> MsResult<usize> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(n) => n
            .as_u64()
            .or_else(|| n.as_str()?.parse().ok())
            .map(|n| n as usize)
            .ok_or_else(|| MsError::bad_request(format!("参数错误 (invalid parameter): {n}"))),
    }
}

/// `PUT /api/v1/models/` with `{"Path","PageNumber","PageSize"}` (the old SDK's `list_models`):
/// `Data.{Models, TotalCount}`.
pub async fn legacy_list_models(ctx: &Ctx, body: Body) -> MsResult {
    let bytes = read_body(&ctx.hub, body).await?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    let owner = v.get("Path").and_then(Value::as_str).filter(|p| !p.is_empty());
    let page = number(v.get("PageNumber"), 1)?;
    let size = number(v.get("PageSize"), 10)?;
    let (items, total) = legacy_page(ctx, RepoKind::Model, owner, page, size).await?;
    Ok(ok(json!({"Models": items, "TotalCount": total})))
}

/// `GET /api/v1/datasets?owner=&PageNumber=&PageSize=`: the page in `Data`, with `TotalCount`,
/// `PageNumber` and `PageSize` beside it.
pub async fn legacy_list_datasets(ctx: &Ctx, q: &[(String, String)]) -> MsResult {
    let page = number(param(q, "PageNumber").map(|p| json!(p)).as_ref(), 1)?;
    let size = number(param(q, "PageSize").map(|p| json!(p)).as_ref(), 10)?;
    let owner = param(q, "owner").filter(|o| !o.is_empty());
    let (items, total) = legacy_page(ctx, RepoKind::Dataset, owner, page, size).await?;
    Ok(axum::Json(json!({
        "Code": 200, "Data": items, "Message": "success", "RequestId": super::error::request_id(),
        "Success": true, "TotalCount": total, "PageNumber": page, "PageSize": size,
    }))
    .into_response())
}

/// `DELETE /api/v1/{models|datasets}/{owner}/{name}`: refused for API tokens, as in production.
pub async fn delete(ctx: &Ctx, id: &RepoId) -> MsResult {
    ctx.access(id, true).await?;
    Err(MsError::new(
        StatusCode::UNAUTHORIZED,
        "the current token no longer supports deletion operations. Please go to the site page : https://www.modelscope.cn to delete",
    ))
}

/// Finds a dataset by the numeric id that old SDKs use in tree URLs.
pub async fn dataset_by_num(ctx: &Ctx, num: u64) -> MsResult<RepoId> {
    for id in ctx.hub.store.list(RepoKind::Dataset, None).await? {
        if ctx.hub.store.meta(&id).await?.is_some_and(|m| m.num_id == num) {
            return Ok(id);
        }
    }
    Err(MsError::not_found(format!(
        "数据集不存在 (dataset {num} does not exist)"
    )))
}

fn open_entry(id: &RepoId, meta: &RepoMeta, size: u64) -> Value {
    let mut v = json!({
        "id": id.full(), "display_name": id.name, "description": "", "downloads": 0, "likes": 0,
        "license": meta.extra.get("license").cloned().unwrap_or(json!("")),
        "tasks": [], "tags": [], "created_at": iso8601(meta.created).replace(".000", ""),
        "last_modified": iso8601(meta.created).replace(".000", ""), "file_size": size,
        "private": meta.private, "gated": meta.gated.is_some(),
    });
    if id.kind == RepoKind::Model {
        v["params"] = json!(0);
    } else {
        v["login_required"] = json!(false);
    }
    v
}

async fn repo_size(ctx: &Ctx, id: &RepoId, meta: &RepoMeta) -> MsResult<u64> {
    let commit = ctx.commit_of(id, meta, None).await?;
    Ok(ctx.hub.store.tree(id, &commit).await?.files().map(|e| e.size).sum())
}

/// `GET /openapi/v1/{models|datasets}/{owner}/{name}`: public repos only (private ones are
/// answered by the legacy route, as on the real service).
pub async fn open_get(ctx: &Ctx, id: &RepoId) -> MsResult {
    let missing = || {
        MsError::not_found(format!("Resource not found: {} {}", id.kind.as_str(), id.full())).open("ResourceNotFound")
    };
    let meta = ctx.hub.store.meta(id).await?.ok_or_else(missing)?;
    if meta.private {
        return Err(missing());
    }
    let size = repo_size(ctx, id, &meta).await?;
    Ok(open_ok(open_entry(id, &meta, size)))
}

/// `GET /openapi/v1/{models|datasets}?owner=&page_number=&page_size=` (public repos).
pub async fn open_list(ctx: &Ctx, kind: RepoKind, q: &[(String, String)]) -> MsResult {
    let page_size: usize = param(q, "page_size").and_then(|v| v.parse().ok()).unwrap_or(10);
    let page: usize = param(q, "page_number").and_then(|v| v.parse().ok()).unwrap_or(1);
    if page_size == 0 || page_size > 50 || page == 0 || page * page_size > 3000 {
        return Err(
            MsError::bad_request("page_size must be 1..=50 and page_number*page_size at most 3000")
                .open("InputParameterError"),
        );
    }
    let owner = param(q, "owner");
    let mut items = Vec::new();
    for id in ctx.hub.store.list(kind, owner).await? {
        if let Some(meta) = ctx.hub.store.meta(&id).await?
            && !meta.private
        {
            items.push((id, meta));
        }
    }
    let total = items.len();
    let mut page_items = Vec::new();
    for (id, meta) in items.into_iter().skip((page - 1) * page_size).take(page_size) {
        let size = repo_size(ctx, &id, &meta).await?;
        page_items.push(open_entry(&id, &meta, size));
    }
    let key = if kind == RepoKind::Dataset {
        "datasets"
    } else {
        "models"
    };
    Ok(open_ok(
        json!({key: page_items, "total_count": total, "page_number": page, "page_size": page_size}),
    ))
}

/// `GET /api/v1/{type}/{o}/{n}/revisions[?EndTime=]`: branches and tags (tags newest first).
pub async fn revisions(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult {
    ctx.access(id, false).await?;
    let end: Option<u64> = param(q, "EndTime").and_then(|v| v.parse().ok());
    let dir = ctx.hub.store.repo_dir(id);
    let (mut branches, mut tags) = (Vec::new(), Vec::new());
    for (name, target) in ctx.hub.store.refs(id).await? {
        let created = git::log(&dir, &target, 0, 1)
            .await
            .map_err(MsError::internal)?
            .first()
            .map(|c| c.time)
            .unwrap_or(0);
        if let Some(b) = name.strip_prefix("refs/heads/") {
            branches.push(json!({"Revision": b, "CreatedAt": created, "CommitId": target}));
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            let tag_time = tag_time(&dir, &name).await.unwrap_or(created);
            if end.is_none_or(|e| tag_time <= e) {
                tags.push((
                    tag_time,
                    json!({"Revision": t, "CreatedAt": tag_time, "CommitId": target, "ShowName": t, "Message": ""}),
                ));
            }
        }
    }
    tags.sort_by_key(|t| std::cmp::Reverse(t.0));
    let tags: Vec<Value> = tags.into_iter().map(|(_, v)| v).collect();
    Ok(ok(json!({"RevisionMap": {"Branches": branches, "Tags": tags}})))
}

async fn tag_time(dir: &std::path::Path, refname: &str) -> Option<u64> {
    let out = git::run(
        dir,
        &[
            "for-each-ref",
            "--format=%(taggerdate:unix)%(committerdate:unix)",
            refname,
        ],
    )
    .await
    .ok()?;
    String::from_utf8_lossy(&out).trim().parse().ok()
}

/// `GET /api/v1/{type}/{o}/{n}/commits?Ref=&PageNumber=&PageSize=`.
pub async fn commits(ctx: &Ctx, id: &RepoId, q: &[(String, String)]) -> MsResult {
    let meta = ctx.access(id, false).await?;
    let commit = ctx.commit_of(id, &meta, param(q, "Ref")).await?;
    let page: usize = param(q, "PageNumber").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let size: usize = param(q, "PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .clamp(1, 200);
    let dir = ctx.hub.store.repo_dir(id);
    let list = git::log(&dir, &commit, (page - 1) * size, size)
        .await
        .map_err(MsError::internal)?;
    let total = git::count(&dir, &commit).await.map_err(MsError::internal)?;
    let items: Vec<Value> = list
        .iter()
        .map(|c| {
            let email = format!("{}@users.hubsim", c.author);
            json!({"Id": c.id, "ShortId": &c.id[..8.min(c.id.len())], "Title": c.title, "Message": format!("{}\n", c.title),
                   "AuthorName": c.author, "AuthorEmail": email, "AuthoredDate": c.time, "CommitterName": c.author,
                   "CommitterEmail": email, "CommittedDate": c.time, "CreatedAt": c.time})
        })
        .collect();
    Ok(ok_paged(json!({"Commit": items}), total))
}

/// `POST /api/v1/{type}/{o}/{n}/repo/tag` with `{"TagName", "Ref"}`.
pub async fn tag(ctx: &Ctx, id: &RepoId, body: Body) -> MsResult {
    let meta = ctx.access(id, true).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| MsError::bad_request(format!("invalid JSON body: {e}")))?;
    let tag = v
        .get("TagName")
        .and_then(Value::as_str)
        .ok_or_else(|| MsError::bad_request("TagName is required"))?;
    if tag == "master" || tag == "main" || tag.starts_with("refs/") || crate::store::check_rev(tag).is_err() {
        return Err(MsError::bad_request(format!("invalid tag name {tag}")));
    }
    let target = ctx.commit_of(id, &meta, v.get("Ref").and_then(Value::as_str)).await?;
    let dir = ctx.hub.store.repo_dir(id);
    let _guard = ctx.hub.store.lock(id).await;
    if git::resolve_commit(&dir, &format!("refs/tags/{tag}"))
        .await
        .map_err(MsError::internal)?
        .is_some()
    {
        return Err(MsError::bad_request(format!("tag {tag} already exists")));
    }
    let who = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
    git::tag(&dir, tag, &target, tag, &who)
        .await
        .map_err(MsError::internal)?;
    Ok(ok(json!({"TagName": tag, "CommitId": target})))
}

#[cfg(test)]
mod tests {
    use super::legacy_bounds;

    #[test]
    fn legacy_pages_fail_only_past_the_end() {
        assert_eq!(legacy_bounds(1, 2, 5).unwrap(), (0, 2));
        assert_eq!(legacy_bounds(3, 2, 5).unwrap(), (4, 5));
        assert_eq!(legacy_bounds(2, 5, 5).unwrap(), (5, 5), "empty, as subList(5, 5)");
        let past = legacy_bounds(3, 5, 5).unwrap_err();
        assert!(past.message.contains("fromIndex(10) > toIndex(5)"), "{}", past.message);
        assert!(legacy_bounds(0, 5, 5).is_err() && legacy_bounds(1, 0, 5).is_err());
        assert!(legacy_bounds(1, 101, 5).is_err());
    }
}
