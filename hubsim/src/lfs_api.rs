//! The Git LFS side of a hub: the batch API (`{repo}.git/info/lfs/objects/batch`, used by
//! `huggingface_hub` and by `git-lfs`), verify, multipart completion, and the object "CDN": a
//! second origin serving presigned upload, part and download URLs without the caller's token,
//! as S3 and the Hub's CDN do. Uploads are hashed while they stream and refused unless the bytes
//! match the announced sha256 and size.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::hf::{Ctx, HfError, HfResult};
use crate::http::{apply_range, enc, file_body, hv, read_body};
use crate::presigned::{Signed, message, s3_refusal};
use crate::repo::{RepoId, RepoKind};
use crate::state::Hub;
use crate::stats::{Event, RouteClass};
use crate::store::lfs::{PutError, write_at};
use crate::util::{is_hex, iso8601, random_hex};

const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// An answer in the LFS JSON media type.
pub fn lfs_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, hv(LFS_JSON));
    resp
}

#[derive(Deserialize)]
struct BatchObject {
    oid: String,
    size: u64,
}

#[derive(Deserialize)]
struct BatchRequest {
    operation: String,
    #[serde(default)]
    transfers: Vec<String>,
    objects: Vec<BatchObject>,
    /// The ref the objects are for (`{"name": ...}`); huggingface_hub leaves it out when it
    /// uploads for a pull request.
    #[serde(default, rename = "ref")]
    for_ref: Option<Value>,
}

/// What a well-formed batch request asks, for the flavor's access check.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    pub upload: bool,
    /// An upload for a pull request (no ref, or `refs/pr/N`), not for a branch.
    pub for_pr: bool,
}

fn repo_key(id: &RepoId) -> String {
    format!("{}/{}/{}", id.kind.plural(), id.ns, id.name)
}

fn parse_repo_key(key: &str) -> Option<RepoId> {
    let (kind, path) = key.split_once('/')?;
    RepoId::from_full_path(RepoKind::from_plural(kind)?, path).ok()
}

/// A presigned download URL for object `oid` on the CDN origin.
pub fn download_url(hub: &Hub, oid: &str, filename: &str) -> String {
    presigned_download(hub, oid, filename).0
}

/// A presigned download URL and its expiry.
fn presigned_download(hub: &Hub, oid: &str, filename: &str) -> (String, u64) {
    let (exp, sig) = hub.signer.sign(&["download", oid]);
    let url = format!(
        "{}/objects/{oid}?name={}&exp={exp}&sig={sig}",
        hub.cdn_url,
        enc(filename)
    );
    (url, exp)
}

/// What a flavor's batch endpoint offers.
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    /// Offer the multipart transfer to clients that ask for it (Hugging Face).
    pub multipart: bool,
    /// Add a `verify` action to uploads (Hugging Face; GitLab sends none).
    pub verify: bool,
    /// Refuse uploads of larger objects per object with 413 (GitLab's size limit).
    pub max_object_size: Option<u64>,
}

/// The message of the object size limit (the batch error and the refused PUT say the same).
pub fn too_large_message(oid: &str, limit: u64) -> String {
    format!("Size of LFS object {oid} exceeds the maximum allowed ({limit} bytes)")
}

/// `POST {repo}.git/info/lfs/objects/batch` of the Hugging Face and ModelScope flavors.
pub async fn batch(ctx: &Ctx, id: &RepoId, parts: &axum::http::request::Parts, body: Body) -> HfResult {
    let policy = BatchPolicy {
        multipart: true,
        verify: true,
        max_object_size: ctx.hub.cfg.max_lfs_object_size,
    };
    Ok(batch_with(&ctx.hub, id, parts, body, policy, |asked| async move {
        let verdict = match asked {
            Asked { upload: false, .. } => ctx.read_files(id).await,
            Asked { for_pr: true, .. } => ctx.access_for_pr(id).await,
            Asked { .. } => ctx.access(id, true).await,
        };
        verdict.map(|_| ()).map_err(|e| {
            let mut resp = e.into_response();
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, hv("Basic realm=\"hubsim\""));
                resp.headers_mut()
                    .insert("lfs-authenticate", hv("Basic realm=\"hubsim\""));
            }
            resp
        })
    })
    .await)
}

/// The batch API with the flavor's `policy`; `access` (told what is asked) answers the flavor's
/// refusal, if any, once the request is known to be well-formed.
pub async fn batch_with<F, Fut>(
    hub: &Hub,
    id: &RepoId,
    parts: &axum::http::request::Parts,
    body: Body,
    policy: BatchPolicy,
    access: F,
) -> Response
where
    F: FnOnce(Asked) -> Fut,
    Fut: Future<Output = Result<(), Response>>,
{
    let bytes = match read_body(hub, body).await {
        Ok(b) => b,
        Err((status, message)) => return lfs_response(status, json!({ "message": message })),
    };
    let req: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return lfs_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("Invalid batch request: {e}")}),
            );
        }
    };
    let upload = match req.operation.as_str() {
        "upload" => true,
        "download" => false,
        other => {
            return lfs_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": format!("Unknown operation {other:?}")}),
            );
        }
    };
    let ref_name = req.for_ref.as_ref().and_then(|r| r["name"].as_str());
    let for_pr = upload && ref_name.is_none_or(|r| r.starts_with("refs/pr/"));
    if let Err(resp) = access(Asked { upload, for_pr }).await {
        return resp;
    }
    let multipart_ok = policy.multipart && req.transfers.iter().any(|t| t == "multipart");
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut objects = Vec::with_capacity(req.objects.len());
    for o in &req.objects {
        if !is_hex(&o.oid, 64) {
            objects.push(json!({"oid": o.oid, "size": o.size, "error": {"code": 422, "message": "Invalid oid: expected a sha256 in lowercase hex"}}));
            continue;
        }
        if upload && let Some(limit) = policy.max_object_size.filter(|l| o.size > *l) {
            objects.push(json!({"oid": o.oid, "size": o.size, "error": {"code": 413, "message": too_large_message(&o.oid, limit)}}));
            continue;
        }
        let present = hub.store.repo_has_object(id, &o.oid).await && hub.store.lfs.size(&o.oid).await == Some(o.size);
        let mut v = json!({"oid": o.oid, "size": o.size, "authenticated": true});
        if upload {
            if !present {
                v["actions"] = upload_actions(hub, id, o, multipart_ok, policy.verify, &auth);
            }
        } else if present {
            let (href, exp) = presigned_download(hub, &o.oid, &o.oid);
            v["actions"] = json!({"download": {"href": href, "expires_at": iso8601(exp)}});
        } else {
            v = json!({"oid": o.oid, "size": o.size, "error": {"code": 404, "message": "Object does not exist"}});
        }
        objects.push(v);
    }
    lfs_response(
        StatusCode::OK,
        json!({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
    )
}

fn upload_actions(hub: &Hub, id: &RepoId, o: &BatchObject, multipart_ok: bool, verify: bool, auth: &str) -> Value {
    let repo = repo_key(id);
    let size = o.size.to_string();
    // One expiry for every URL of the object, so `expires_at` is exactly when they die.
    let exp = hub.signer.expiry();
    let exp_at = iso8601(exp);
    let verify = verify.then(|| {
        let href = format!(
            "{}/{}{}/{}.git/info/lfs/objects/verify",
            hub.base_url,
            id.kind.url_prefix(),
            id.ns,
            id.name
        );
        let mut v = json!({ "href": href });
        if !auth.is_empty() {
            v["header"] = json!({"Authorization": auth});
        }
        v
    });
    let with_verify = |mut actions: Value| {
        if let Some(v) = &verify {
            actions["verify"] = v.clone();
        }
        actions
    };
    let chunk = hub.cfg.part_size.max(1);
    if multipart_ok && o.size >= hub.cfg.multipart_threshold && o.size > 0 {
        let upload_id = random_hex(12);
        let chunk_s = chunk.to_string();
        let n_parts = o.size.div_ceil(chunk);
        let mut header = serde_json::Map::new();
        header.insert("chunk_size".into(), json!(chunk_s));
        for n in 1..=n_parts {
            let n_s = n.to_string();
            let sig = hub
                .signer
                .sign_until(&["part", &repo, &o.oid, &size, &upload_id, &chunk_s, &n_s], exp);
            header.insert(
                format!("{n:05}"),
                json!(format!(
                    "{}/upload/{}/{n}?repo={}&size={size}&upload_id={upload_id}&chunk={chunk_s}&exp={exp}&sig={sig}",
                    hub.cdn_url,
                    o.oid,
                    enc(&repo)
                )),
            );
        }
        let sig = hub
            .signer
            .sign_until(&["complete", &repo, &o.oid, &size, &upload_id, &chunk_s], exp);
        let href = format!(
            "{}/api/complete_multipart?repo={}&oid={}&size={size}&upload_id={upload_id}&chunk={chunk_s}&exp={exp}&sig={sig}",
            hub.base_url,
            enc(&repo),
            o.oid
        );
        return with_verify(json!({"upload": {"href": href, "header": header, "expires_at": exp_at}}));
    }
    let sig = hub.signer.sign_until(&["upload", &repo, &o.oid, &size], exp);
    let href = format!(
        "{}/upload/{}?repo={}&size={size}&exp={exp}&sig={sig}",
        hub.cdn_url,
        o.oid,
        enc(&repo)
    );
    with_verify(json!({"upload": {"href": href, "expires_at": exp_at}}))
}

/// `POST {repo}.git/info/lfs/objects/verify` with `{"oid", "size"}`.
pub async fn verify(ctx: &Ctx, id: &RepoId, body: Body) -> HfResult {
    ctx.access(id, false).await?;
    let bytes = read_body(&ctx.hub, body).await?;
    let o: BatchObject = serde_json::from_slice(&bytes)
        .map_err(|e| HfError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("Invalid verify request: {e}")))?;
    if ctx.hub.store.repo_has_object(id, &o.oid).await && ctx.hub.store.lfs.size(&o.oid).await == Some(o.size) {
        Ok(lfs_response(StatusCode::OK, json!({"message": "ok"})))
    } else {
        Ok(lfs_response(
            StatusCode::NOT_FOUND,
            json!({"message": format!("Object {} of size {} was not uploaded", o.oid, o.size)}),
        ))
    }
}

/// A signed-URL failure or a refused upload, as the object store answers it.
fn store_error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::warn!(%status, %message, "object request refused");
    (status, Json(json!({"message": message, "error": message}))).into_response()
}

fn put_error(e: PutError) -> Response {
    let status = match e {
        PutError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    store_error(status, e.to_string())
}

fn body_stream(body: Body) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
    body.into_data_stream().map_err(std::io::Error::other)
}

/// What nginx answers a body over `client_max_body_size` (read first, so the client sees it).
async fn proxy_too_large(hub: &Hub, body: Body) -> Response {
    hub.stats.note(Event::Proxy413);
    let mut s = body_stream(body);
    while let Some(Ok(_)) = futures_util::StreamExt::next(&mut s).await {}
    let html = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    let mut resp = (StatusCode::PAYLOAD_TOO_LARGE, html).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, hv("text/html"));
    resp
}

/// `PUT {cdn}/upload/{oid}`: a basic (single) upload.
async fn put_object(
    State(hub): State<Arc<Hub>>,
    Path(oid): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let s = match Signed::check(&hub, q.as_deref(), |s| {
        vec!["upload".into(), s.get("repo").into(), oid.clone(), s.get("size").into()]
    }) {
        Ok(s) => s,
        Err(r) => return s3_refusal(&hub, r),
    };
    let (Some(id), Ok(size)) = (parse_repo_key(s.get("repo")), s.get("size").parse::<u64>()) else {
        return store_error(StatusCode::BAD_REQUEST, "malformed upload URL");
    };
    if let Some(limit) = hub.cfg.max_lfs_object_size.filter(|l| size > *l) {
        return store_error(StatusCode::PAYLOAD_TOO_LARGE, too_large_message(&oid, limit));
    }
    if hub.cfg.proxy_max_body.is_some_and(|l| size > l) {
        return proxy_too_large(&hub, body).await;
    }
    if let Err(e) = hub.store.lfs.put_stream(&oid, size, body_stream(body)).await {
        return put_error(e);
    }
    if let Err(e) = hub.store.link_object(&id, &oid).await {
        return store_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    tracing::info!(repo = %id, %oid, size, "stored LFS object");
    // S3 ignores the body; ModelScope's SDK insists on its envelope, so every flavor gets it.
    Json(json!({"Code": 200, "Message": "success", "Success": true, "RequestId": random_hex(16)})).into_response()
}

fn parts_dir(hub: &Hub, upload_id: &str) -> PathBuf {
    hub.store.lfs.temp_path("x").with_file_name(format!("mp-{upload_id}"))
}

/// `PUT {cdn}/upload/{oid}/{n}`: one part of a multipart upload; answers with its `ETag`.
async fn put_part(
    State(hub): State<Arc<Hub>>,
    Path((oid, n)): Path<(String, u64)>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let n_s = n.to_string();
    let s = match Signed::check(&hub, q.as_deref(), |s| {
        vec![
            "part".into(),
            s.get("repo").into(),
            oid.clone(),
            s.get("size").into(),
            s.get("upload_id").into(),
            s.get("chunk").into(),
            n_s.clone(),
        ]
    }) {
        Ok(s) => s,
        Err(r) => return s3_refusal(&hub, r),
    };
    let (Ok(size), Ok(chunk)) = (s.get("size").parse::<u64>(), s.get("chunk").parse::<u64>()) else {
        return store_error(StatusCode::BAD_REQUEST, "malformed part URL");
    };
    let upload_id = s.get("upload_id");
    if !is_hex(upload_id, 24) || n == 0 || chunk == 0 {
        return store_error(StatusCode::BAD_REQUEST, "malformed part URL");
    }
    let expected = chunk.min(size.saturating_sub((n - 1) * chunk));
    let dir = parts_dir(&hub, upload_id);
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        return store_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    // Every part goes straight to its place in one file, so completing the upload copies
    // nothing. A part being sent again is not valid until it has arrived whole.
    let etag_file = dir.join(format!("{n}.etag"));
    let _ = tokio::fs::remove_file(&etag_file).await;
    if let Err(e) = write_at(&dir.join("object"), (n - 1) * chunk, expected, body_stream(body)).await {
        return put_error(e);
    }
    // Opaque to clients, as S3's are; a new one for every PUT of the part, so a completion that
    // names an earlier upload of the part is refused. The object's sha256 is checked on assembly.
    let etag = random_hex(16);
    if let Err(e) = tokio::fs::write(&etag_file, &etag).await {
        return store_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(header::ETAG, hv(&format!("\"{etag}\"")));
    resp
}

#[derive(Deserialize)]
struct CompletionPart {
    #[serde(rename = "partNumber")]
    part_number: u64,
    etag: String,
}

#[derive(Deserialize)]
struct Completion {
    oid: String,
    parts: Vec<CompletionPart>,
}

/// `POST {hub}/api/complete_multipart?...`: assembles the parts into the object.
pub async fn complete_multipart(hub: &Arc<Hub>, query: Option<&str>, body: Body) -> HfResult {
    let s = match Signed::check(hub, query, |s| {
        vec![
            "complete".into(),
            s.get("repo").into(),
            s.get("oid").into(),
            s.get("size").into(),
            s.get("upload_id").into(),
            s.get("chunk").into(),
        ]
    }) {
        Ok(s) => s,
        Err(r) => return Ok(store_error(StatusCode::FORBIDDEN, message(r))),
    };
    let bytes = read_body(hub, body).await?;
    let req: Completion =
        serde_json::from_slice(&bytes).map_err(|e| HfError::bad_request(format!("Invalid completion body: {e}")))?;
    let (Some(id), Ok(size), Ok(chunk)) = (
        parse_repo_key(s.get("repo")),
        s.get("size").parse::<u64>(),
        s.get("chunk").parse::<u64>(),
    ) else {
        return Err(HfError::bad_request("malformed completion URL"));
    };
    let oid = s.get("oid").to_string();
    if req.oid != oid {
        return Err(HfError::bad_request("The completion body names another object"));
    }
    let n_parts = size.div_ceil(chunk.max(1));
    let mut numbers: Vec<u64> = req.parts.iter().map(|p| p.part_number).collect();
    numbers.sort_unstable();
    if numbers != (1..=n_parts).collect::<Vec<_>>() {
        return Err(HfError::bad_request(format!(
            "Expected parts 1..={n_parts}, got {numbers:?}"
        )));
    }
    let dir = parts_dir(hub, s.get("upload_id"));
    for p in &req.parts {
        let stored = tokio::fs::read_to_string(dir.join(format!("{}.etag", p.part_number)))
            .await
            .unwrap_or_default();
        if stored.is_empty() || p.etag.trim_matches('"') != stored {
            return Err(HfError::bad_request(format!(
                "Part {} is missing or its ETag does not match",
                p.part_number
            )));
        }
    }
    let checked = !hub.cfg.unchecked_multipart;
    let result = hub
        .store
        .lfs
        .put_assembled(&oid, size, &dir.join("object"), checked)
        .await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    if let Err(e) = result {
        return Ok(put_error(e));
    }
    hub.store.link_object(&id, &oid).await?;
    tracing::info!(repo = %id, %oid, size, parts = n_parts, "assembled multipart LFS object");
    Ok(Json(json!({"success": true})).into_response())
}

/// `GET|HEAD {cdn}/objects/{oid}`: a presigned download, with Range support.
async fn get_object(State(hub): State<Arc<Hub>>, Path(oid): Path<String>, req: Request) -> Response {
    let query = req.uri().query().map(str::to_string);
    let s = match Signed::check(&hub, query.as_deref(), |_| vec!["download".into(), oid.clone()]) {
        Ok(s) => s,
        Err(r) => return s3_refusal(&hub, r),
    };
    let Some(len) = hub.store.lfs.size(&oid).await else {
        return store_error(StatusCode::NOT_FOUND, "The specified key does not exist.");
    };
    let headers: &HeaderMap = req.headers();
    let mut resp = Response::new(Body::empty());
    resp.headers_mut().insert(header::ETAG, hv(&format!("\"{oid}\"")));
    resp.headers_mut().insert("x-linked-etag", hv(&format!("\"{oid}\"")));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, hv("application/octet-stream"));
    let name = s.get("name");
    if !name.is_empty() {
        resp.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            hv(&format!("inline; filename*=UTF-8''{}", enc(name))),
        );
    }
    let Some((offset, count)) = apply_range(headers, len, &mut resp) else {
        return resp;
    };
    if req.method() == Method::GET && count > 0 {
        match file_body(&hub, &hub.store.lfs.path(&oid), offset, count).await {
            Ok(b) => *resp.body_mut() = b,
            Err(e) => return store_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    resp
}

/// The stats class of a CDN request.
pub fn cdn_route_class(method: &Method, raw_path: &str) -> RouteClass {
    let mut segs = raw_path.trim_start_matches('/').split('/');
    match (method, segs.next(), segs.next(), segs.next(), segs.next()) {
        (&Method::GET | &Method::HEAD, Some("objects"), Some(_), None, _) => RouteClass::Download,
        (&Method::PUT, Some("upload"), Some(_), None, _) => RouteClass::Upload,
        (&Method::PUT, Some("upload"), Some(_), Some(_), None) => RouteClass::Part,
        _ => RouteClass::Unknown,
    }
}

/// The CDN origin: presigned object downloads, uploads and multipart parts.
pub fn cdn_router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/objects/{oid}", get(get_object).head(get_object))
        .route("/upload/{oid}", put(put_object))
        .route("/upload/{oid}/{n}", put(put_part))
        .with_state(hub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Users;
    use crate::faults::{FaultConfig, Faults};
    use crate::state::{Flavor, HubConfig};
    use crate::store::Store;
    use crate::util::sha256_hex;

    #[test]
    fn repo_keys_round_trip_nested_namespaces() {
        let id = RepoId::from_full_path(RepoKind::Model, "acme/ml/bert").unwrap();
        assert_eq!(repo_key(&id), "models/acme/ml/bert");
        assert_eq!(parse_repo_key(&repo_key(&id)), Some(id));
        let flat = RepoId::new(RepoKind::Dataset, "alice", "d").unwrap();
        assert_eq!(parse_repo_key(&repo_key(&flat)), Some(flat));
        assert_eq!(parse_repo_key("models/x"), None);
        assert_eq!(parse_repo_key("foos/a/b"), None);
    }

    /// The batch API never hands out an upload URL over the limit, so this signs one itself.
    #[tokio::test]
    async fn put_over_the_size_limit_is_413() {
        let data = std::env::temp_dir().join(format!("hubsim-lfs-api-{}", random_hex(4)));
        let cfg = HubConfig {
            flavor: Flavor::Git,
            multipart_threshold: u64::MAX,
            part_size: 1 << 20,
            tree_page_size: 1000,
            commit_limit: None,
            commit_window: std::time::Duration::from_secs(3600),
            commit_cost: crate::state::CommitCost::FREE,
            max_request_body: 1 << 20,
            max_lfs_object_size: Some(10),
            proxy_max_body: None,
            url_ttl: crate::sign::DEFAULT_URL_TTL,
            unchecked_multipart: false,
        };
        let faults = Arc::new(Faults::new(FaultConfig::default()));
        let store = Store::open(&data).unwrap();
        let hub = Arc::new(Hub::new(
            store,
            Users::default(),
            cfg,
            faults,
            "http://hub".into(),
            "http://cdn".into(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, cdn_router(hub.clone())).into_future());
        let client = reqwest::Client::new();
        let put = |body: Vec<u8>| {
            let oid = sha256_hex(&body);
            let size = body.len().to_string();
            let (exp, sig) = hub.signer.sign(&["upload", "models/acme/ml/bert", &oid, &size]);
            let url =
                format!("http://{addr}/upload/{oid}?repo=models%2Facme%2Fml%2Fbert&size={size}&exp={exp}&sig={sig}");
            client.put(url).body(body).send()
        };
        let resp = put(vec![7u8; 11]).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("exceeds the maximum allowed (10 bytes)")
        );
        let ok = put(vec![7u8; 10]).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let id = RepoId::from_full_path(RepoKind::Model, "acme/ml/bert").unwrap();
        assert!(
            hub.store.repo_has_object(&id, &sha256_hex(&[7u8; 10])).await,
            "linked to the nested project"
        );
        std::fs::remove_dir_all(data).unwrap();
    }
}
