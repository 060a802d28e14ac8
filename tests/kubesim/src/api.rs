//! The HTTP front: routes `/api/v1/...` and `/apis/{group}/{version}/...` paths to resources,
//! namespaces, names and subresources; negotiates the representation (`Accept`: plain JSON,
//! `as=Table`, `as=PartialObjectMetadata[List]`, aggregated discovery); reads write options from
//! the query string and `DeleteOptions` bodies; and answers every error as a `Status`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::list::{ListOpts, list, list_object};
use crate::objects::{self, DeleteOpts, Deleted, FieldValidation, PatchType, Propagation, WriteOpts};
use crate::registry::ResourceInfo;
use crate::state::Cluster;
use crate::table::{Include, partial_metadata, table};
use crate::util::Query;
use crate::watch::{Repr, WatchOpts, watch};

/// The router of the API server.
pub fn router(cl: Arc<Cluster>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(3 * 1024 * 1024))
        .with_state(cl)
}

fn json_response(code: StatusCode, v: &Value, content_type: &'static str, warnings: &[String]) -> Response {
    let mut resp = (code, v.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for w in warnings {
        if let Ok(h) = HeaderValue::from_str(&format!("299 - {:?}", w)) {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, "application/json", &[])
}

/// What the client accepts for object responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    Json,
    Table,
    Metadata,
}

fn media_ranges(headers: &HeaderMap) -> Vec<(String, Vec<(String, String)>)> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|r| {
            let mut parts = r.split(';').map(str::trim);
            let ty = parts.next().unwrap_or("").to_ascii_lowercase();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (ty, params)
        })
        .collect()
}

fn negotiate(headers: &HeaderMap) -> ApiResult<Accept> {
    let ranges = media_ranges(headers);
    if ranges.is_empty() {
        return Ok(Accept::Json);
    }
    for (ty, params) in &ranges {
        if !["application/json", "application/*", "*/*"].contains(&ty.as_str()) {
            continue;
        }
        let p = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
        match p("as") {
            None => return Ok(Accept::Json),
            Some("Table") if p("g") == Some("meta.k8s.io") && matches!(p("v"), Some("v1" | "v1beta1")) => {
                return Ok(Accept::Table);
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") if p("g") == Some("meta.k8s.io") => {
                return Ok(Accept::Metadata);
            }
            _ => {}
        }
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    Err(ApiError::not_acceptable(accept))
}

/// The aggregated discovery version asked for, if any (`v2` or `v2beta1`).
fn aggregated_wanted(headers: &HeaderMap) -> Option<&'static str> {
    for (ty, params) in media_ranges(headers) {
        if ty != "application/json" {
            continue;
        }
        let p = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
        if p("as").as_deref() == Some("APIGroupDiscoveryList") && p("g").as_deref() == Some("apidiscovery.k8s.io") {
            match p("v").as_deref() {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        p("as")?;
    }
    None
}

async fn handle(State(cl): State<Arc<Cluster>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let started = std::time::Instant::now();
    let resp = match route(&cl, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn route(
    cl: &Arc<Cluster>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = Query(crate::util::query_pairs(uri.query()));
    let get_only = || {
        if method == Method::GET {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segs.as_slice() {
        ["version"] => {
            get_only()?;
            Ok(ok(&discovery::version()))
        }
        ["healthz" | "livez" | "readyz"] => Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => {
            get_only()?;
            let reg = cl.registry();
            Ok(match aggregated_wanted(headers) {
                Some(v) => aggregated_response(
                    &discovery::aggregated(&reg, true, &format!("apidiscovery.k8s.io/{v}")),
                    v,
                ),
                None => ok(&discovery::api_versions(&server_address(headers))),
            })
        }
        ["apis"] => {
            get_only()?;
            let reg = cl.registry();
            Ok(match aggregated_wanted(headers) {
                Some(v) => aggregated_response(
                    &discovery::aggregated(&reg, false, &format!("apidiscovery.k8s.io/{v}")),
                    v,
                ),
                None => ok(&discovery::api_group_list(&reg)),
            })
        }
        ["apis", group] => {
            get_only()?;
            discovery::api_group(&cl.registry(), group)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        ["openapi", "v3"] => {
            get_only()?;
            Ok(ok(&discovery::openapi_v3_root(&cl.registry())))
        }
        ["openapi", "v3", "api", version] => openapi_doc(cl, "", version),
        ["openapi", "v3", "apis", group, version] => openapi_doc(cl, group, version),
        ["api", "v1", rest @ ..] => resource_route(cl, "", "v1", rest, method, &q, headers, body).await,
        ["apis", group, version, rest @ ..] => {
            resource_route(cl, group, version, rest, method, &q, headers, body).await
        }
        _ => Err(ApiError::no_route()),
    }
}

fn server_address(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

fn aggregated_response(doc: &Value, version: &str) -> Response {
    let ct = if version == "v2" {
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    } else {
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    };
    json_response(StatusCode::OK, doc, ct, &[])
}

fn openapi_doc(cl: &Cluster, group: &str, version: &str) -> ApiResult<Response> {
    let doc = discovery::openapi_v3_doc(&cl.registry(), group, version).ok_or_else(ApiError::no_route)?;
    Ok(json_response(StatusCode::OK, &doc, "application/json", &[]))
}

/// A request aimed at a resource.
struct Target<'a> {
    info: ResourceInfo,
    ns: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn resolve<'a>(cl: &Cluster, group: &str, version: &str, rest: &[&'a str]) -> ApiResult<Target<'a>> {
    let find = |res: &str| cl.resource(group, version, res).ok_or_else(ApiError::no_route);
    let core = group.is_empty();
    let t = match rest {
        ["namespaces", name] if core => Target {
            info: find("namespaces")?,
            ns: None,
            name: Some(name),
            sub: None,
        },
        ["namespaces", name, sub @ ("status" | "finalize")] if core => Target {
            info: find("namespaces")?,
            ns: None,
            name: Some(name),
            sub: Some(sub),
        },
        ["namespaces", ns, res, tail @ ..] => match tail {
            [] => Target {
                info: find(res)?,
                ns: Some(ns),
                name: None,
                sub: None,
            },
            [name] => Target {
                info: find(res)?,
                ns: Some(ns),
                name: Some(name),
                sub: None,
            },
            [name, sub] => Target {
                info: find(res)?,
                ns: Some(ns),
                name: Some(name),
                sub: Some(sub),
            },
            _ => return Err(ApiError::no_route()),
        },
        [res] => Target {
            info: find(res)?,
            ns: None,
            name: None,
            sub: None,
        },
        [res, name] => Target {
            info: find(res)?,
            ns: None,
            name: Some(name),
            sub: None,
        },
        [res, name, sub] => Target {
            info: find(res)?,
            ns: None,
            name: Some(name),
            sub: Some(sub),
        },
        _ => return Err(ApiError::no_route()),
    };
    if t.info.namespaced && t.ns.is_none() && t.name.is_some() {
        return Err(ApiError::no_route());
    }
    if !t.info.namespaced && t.ns.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = t.sub
        && !t.info.subresources().contains(&sub)
    {
        return Err(ApiError::no_route());
    }
    Ok(t)
}

fn write_opts(q: &Query, headers: &HeaderMap) -> ApiResult<WriteOpts> {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let derived: String = ua.split('/').next().unwrap_or("").chars().take(128).collect();
    let validation = match q.get("fieldValidation") {
        None | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {v:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
            )));
        }
    };
    let dry_run = match q.get("dryRun") {
        None => false,
        Some("All") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {v:?}: supported values: \"All\""
            )));
        }
    };
    Ok(WriteOpts {
        manager: q.get("fieldManager").map(String::from).unwrap_or(derived),
        manager_explicit: q.get("fieldManager").is_some(),
        dry_run,
        validation,
        force: q.flag("force"),
        warnings: Vec::new(),
    })
}

fn parse_body(body: &Bytes) -> ApiResult<Value> {
    if body.starts_with(b"k8s\x00") {
        return crate::proto::decode(body).map_err(|why| {
            let mut e = ApiError::unsupported_media(&["application/json", "application/vnd.kubernetes.protobuf"]);
            e.message = format!("{}: {why}", e.message);
            e
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e}")))
}

fn delete_opts(q: &Query, body: &Bytes) -> ApiResult<DeleteOpts> {
    let b: Value = if body.is_empty() { json!({}) } else { parse_body(body)? };
    let policy = q
        .get("propagationPolicy")
        .map(String::from)
        .or_else(|| b["propagationPolicy"].as_str().map(String::from));
    let orphan = q
        .get("orphanDependents")
        .map(|v| v == "true")
        .or(b["orphanDependents"].as_bool());
    let propagation = match (policy.as_deref(), orphan) {
        (Some("Orphan"), _) => Some(Propagation::Orphan),
        (Some("Background"), _) => Some(Propagation::Background),
        (Some("Foreground"), _) => Some(Propagation::Foreground),
        (Some(p), _) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let grace = q
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or(b["gracePeriodSeconds"].as_i64());
    let dry_run =
        q.get("dryRun") == Some("All") || b["dryRun"].as_array().is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOpts {
        propagation,
        grace,
        uid: b["preconditions"]["uid"].as_str().map(String::from),
        rv: b["preconditions"]["resourceVersion"].as_str().map(String::from),
        dry_run,
    })
}

fn include(q: &Query) -> Include {
    match q.get("includeObject") {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    }
}

fn render_one(info: &ResourceInfo, obj: Value, accept: Accept, q: &Query) -> Value {
    match accept {
        Accept::Json => obj,
        Accept::Metadata => partial_metadata(&obj),
        Accept::Table => {
            let rv = obj["metadata"]["resourceVersion"].clone();
            table(info, &[obj], json!({"resourceVersion": rv}), include(q))
        }
    }
}

fn written(code: StatusCode, obj: &Value, w: &WriteOpts) -> Response {
    json_response(code, obj, "application/json", &w.warnings)
}

#[allow(clippy::too_many_arguments)]
async fn resource_route(
    cl: &Arc<Cluster>,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    if rest.is_empty() {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        return discovery::resource_list(&cl.registry(), group, version)
            .map(|d| ok(&d))
            .ok_or_else(ApiError::no_route);
    }
    let t = resolve(cl, group, version, rest)?;
    let info = &t.info;
    let ns = t.ns.unwrap_or("");
    match (method.clone(), t.name, t.sub) {
        (Method::GET, Some(name), Some("log")) => crate::logs::serve(cl, ns, name, q).await,
        (Method::GET, Some(name), _) => {
            let accept = negotiate(headers)?;
            let obj = objects::get(cl, info, ns, name)?;
            Ok(ok(&render_one(info, obj, accept, q)))
        }
        (Method::GET, None, None) => {
            let accept = negotiate(headers)?;
            let lo = ListOpts::from_query(q, info)?;
            if q.flag("watch") {
                let repr = match accept {
                    Accept::Json => Repr::Object,
                    Accept::Table => Repr::Table(include(q)),
                    Accept::Metadata => Repr::Metadata,
                };
                let timeout = q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(1800);
                let wo = WatchOpts {
                    list: lo,
                    bookmarks: q.flag("allowWatchBookmarks"),
                    send_initial: q.flag("sendInitialEvents"),
                    timeout: Duration::from_secs(timeout),
                };
                return watch(cl.clone(), info.clone(), t.ns.map(String::from), wo, repr);
            }
            let page = list(cl, info, t.ns, &lo)?;
            Ok(ok(&match accept {
                Accept::Json => list_object(info, page),
                Accept::Table => {
                    let mut meta = json!({"resourceVersion": page.rv.to_string()});
                    if let Some(c) = &page.cont {
                        meta["continue"] = json!(c);
                    }
                    table(info, &page.items, meta, include(q))
                }
                Accept::Metadata => {
                    let items: Vec<Value> = page.items.iter().map(partial_metadata).collect();
                    let mut meta = json!({"resourceVersion": page.rv.to_string()});
                    if let Some(c) = &page.cont {
                        meta["continue"] = json!(c);
                    }
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
                }
            }))
        }
        (Method::POST, None, None) => {
            let mut w = write_opts(q, headers)?;
            let obj = objects::create(cl, info, ns, parse_body(body)?, &mut w)?;
            Ok(written(StatusCode::CREATED, &obj, &w))
        }
        (Method::PUT, Some(name), sub) => {
            let mut w = write_opts(q, headers)?;
            let obj = objects::update(cl, info, ns, name, parse_body(body)?, sub, &mut w)?;
            Ok(written(StatusCode::OK, &obj, &w))
        }
        (Method::PATCH, Some(name), sub) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ct = ct.split(';').next().unwrap_or("").trim();
            let ptype = match ct {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
                _ => {
                    return Err(ApiError::unsupported_media(&[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/apply-patch+yaml",
                        "application/strategic-merge-patch+json",
                    ]));
                }
            };
            let mut w = write_opts(q, headers)?;
            let patch = match (ptype, parse_body(body)) {
                (PatchType::Apply, Err(e)) if e.code == 400 => serde_yaml_ng::from_slice::<Value>(body)
                    .map_err(|y| ApiError::bad_request(format!("error decoding YAML: {y}")))?,
                (_, r) => r?,
            };
            let (obj, created) = objects::patch(cl, info, ns, name, ptype, &patch, sub, &mut w)?;
            Ok(written(
                if created { StatusCode::CREATED } else { StatusCode::OK },
                &obj,
                &w,
            ))
        }
        (Method::DELETE, Some(name), None) => {
            let opts = delete_opts(q, body)?;
            Ok(match objects::delete(cl, info, ns, name, &opts)? {
                Deleted::Gone(v) => ok(&v),
                Deleted::Pending(v) => json_response(StatusCode::OK, &v, "application/json", &[]),
            })
        }
        (Method::DELETE, None, None) => {
            let opts = delete_opts(q, body)?;
            let lo = ListOpts::from_query(q, info)?;
            let page = list(cl, info, t.ns, &lo)?;
            let mut items = Vec::new();
            for obj in page.items {
                let (ons, oname) = (
                    crate::util::meta_str(&obj, "namespace").unwrap_or(""),
                    crate::util::meta_str(&obj, "name").unwrap_or(""),
                );
                match objects::delete(cl, info, ons, oname, &opts) {
                    Ok(_) => items.push(obj),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(ok(
                &json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(),
                          "metadata": {"resourceVersion": cl.store.txn().rv().to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
