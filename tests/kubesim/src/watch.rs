//! Watches: a stream of newline-delimited `{"type": ..., "object": ...}` events. Without a
//! `resourceVersion` (or with `0`) the current objects come first as `ADDED`; with one, the
//! changes after it are replayed from the change log, and an `ERROR` event carrying a 410
//! `Expired` Status ends the watch when that history is gone (as the API server's watch cache
//! does). Label and field selectors apply to both sides of a change, so an object that stops
//! matching is seen as `DELETED`. `allowWatchBookmarks` adds periodic `BOOKMARK`s, and
//! `sendInitialEvents=true` ends the initial state with the `k8s.io/initial-events-end` bookmark.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::list::{ListOpts, parse_rv};
use crate::registry::ResourceInfo;
use crate::state::Cluster;
use crate::store::EventType;
use crate::table::{Include, column_definitions, partial_metadata, row};
use crate::views::view_out;

/// How watch event objects are represented (`Accept`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr {
    /// The objects themselves.
    Object,
    /// One-row Tables.
    Table(Include),
    /// `PartialObjectMetadata`.
    Metadata,
}

/// The watch options beyond those of a list.
#[derive(Clone, Debug)]
pub struct WatchOpts {
    /// Selectors and `resourceVersion`.
    pub list: ListOpts,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

fn encode(info: &ResourceInfo, repr: Repr, ty: &str, obj: &Value) -> String {
    let object = match repr {
        Repr::Object => obj.clone(),
        Repr::Metadata => partial_metadata(obj),
        Repr::Table(inc) => json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"].clone()},
            "columnDefinitions": column_definitions(info), "rows": [row(info, obj, inc)],
        }),
    };
    let mut line = json!({"type": ty, "object": object}).to_string();
    line.push('\n');
    line
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_end: bool) -> String {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
    format!("{}\n", json!({"type": "BOOKMARK", "object": obj}))
}

fn expired(asked: u64, oldest: u64) -> String {
    let status = ApiError::expired(format!("too old resource version: {asked} ({oldest})")).status();
    format!("{}\n", json!({"type": "ERROR", "object": status}))
}

/// Starts a watch; the response streams until the timeout, an error, or the client leaves.
pub fn watch(
    cl: Arc<Cluster>,
    info: ResourceInfo,
    ns: Option<String>,
    o: WatchOpts,
    repr: Repr,
) -> ApiResult<Response> {
    if o.send_initial && (!o.bookmarks || o.list.rv_match.as_deref() != Some("NotOlderThan")) {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            vec![crate::error::FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and \
                 allowWatchBookmarks is true and resourceVersionMatch is NotOlderThan",
            )],
        ));
    }
    let asked = match o.list.rv.as_deref() {
        None | Some("") => None,
        Some(rv) => Some(parse_rv(rv)?),
    };
    let storage = info.storage();
    let ns = if info.namespaced { ns } else { None };
    let mut first = Vec::new();
    let start_rv;
    {
        let txn = cl.store.txn();
        let current = txn.rv();
        let initial = o.send_initial || matches!(asked, None | Some(0));
        if initial {
            for (_, obj) in txn.list(&storage, ns.as_deref()) {
                let view = view_out(&info, obj);
                if o.list.matches(&view) {
                    first.push(encode(&info, repr, "ADDED", &view));
                }
            }
            if o.send_initial {
                first.push(bookmark(&info, current, true));
            }
            start_rv = current;
        } else {
            let n = asked.unwrap_or(current);
            if n > current {
                return Err(ApiError::too_large_rv(n, current));
            }
            start_rv = n;
        }
    }
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(pump(cl, info, ns, o, repr, start_rv, first, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|s| (Ok::<_, std::convert::Infallible>(bytes::Bytes::from(s)), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    cl: Arc<Cluster>,
    info: ResourceInfo,
    ns: Option<String>,
    o: WatchOpts,
    repr: Repr,
    mut last_rv: u64,
    first: Vec<String>,
    tx: mpsc::Sender<String>,
) {
    for line in first {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let mut changed = cl.store.subscribe();
    let deadline = tokio::time::Instant::now() + o.timeout;
    let mut bookmarks = tokio::time::interval(cl.cfg.bookmark_interval);
    bookmarks.tick().await;
    let storage = info.storage();
    loop {
        let (lines, done) = {
            let txn = cl.store.txn();
            match txn.changes_since(&storage, last_rv) {
                Err(c) => (vec![expired(last_rv, c.oldest)], true),
                Ok(changes) => {
                    let mut out = Vec::new();
                    for c in changes {
                        if ns.as_deref().is_some_and(|n| c.key.ns != n) {
                            continue;
                        }
                        let new = view_out(&info, &c.object);
                        let old = c.old.as_ref().map(|v| view_out(&info, v));
                        let was = old.as_ref().is_some_and(|v| o.list.matches(v));
                        let is = o.list.matches(&new);
                        let ty = match (c.ty, was, is) {
                            (EventType::Added, _, true) => "ADDED",
                            (EventType::Modified, true, true) => "MODIFIED",
                            (EventType::Modified, false, true) => "ADDED",
                            (EventType::Modified, true, false) => "DELETED",
                            (EventType::Deleted, true, _) => "DELETED",
                            _ => continue,
                        };
                        out.push(encode(&info, repr, ty, &new));
                    }
                    last_rv = txn.rv();
                    (out, false)
                }
            }
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = bookmarks.tick() => {
                if o.bookmarks && tx.send(bookmark(&info, last_rv, false)).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if o.bookmarks {
                    let _ = tx.send(bookmark(&info, last_rv, false)).await;
                }
                return;
            }
            _ = tx.closed() => return,
        }
    }
}
