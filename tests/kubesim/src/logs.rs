//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: the container output the kubelet captured.
//! Lines are stored with their timestamp (as the container runtime does), so `timestamps`,
//! `sinceSeconds`, `tailLines` and `limitBytes` behave; `follow=true` streams until the
//! container exits or the pod goes away.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::Cluster;
use crate::store::ObjKey;
use crate::util::{Query, now_secs, parse_rfc3339};

/// Formats one captured line as stored: `TIMESTAMP LINE\n`.
pub fn stored_line(line: &str) -> String {
    format!("{} {line}\n", crate::util::now_micro())
}

fn pod(cl: &Cluster, ns: &str, name: &str) -> Option<Value> {
    cl.store.txn().get(&ObjKey::new("/pods", ns, name)).cloned()
}

struct Filter {
    timestamps: bool,
    since: Option<i64>,
}

impl Filter {
    fn line(&self, stored: &str) -> Option<String> {
        let (ts, text) = stored.split_once(' ').unwrap_or(("", stored));
        if let Some(since) = self.since
            && parse_rfc3339(ts).is_some_and(|t| t < since)
        {
            return None;
        }
        Some(if self.timestamps {
            format!("{stored}\n")
        } else {
            format!("{text}\n")
        })
    }
}

/// Serves a pod's log.
pub async fn serve(cl: &Arc<Cluster>, ns: &str, name: &str, q: &Query) -> ApiResult<Response> {
    let p = pod(cl, ns, name).ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let containers: Vec<String> = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let container = match q.get("container") {
        Some(c) if containers.iter().any(|x| x == c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if q.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let path = cl.log_path(ns, name);
    let Ok(text) = tokio::fs::read_to_string(&path).await else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let filter = Filter {
        timestamps: q.flag("timestamps"),
        since: q
            .get("sinceSeconds")
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| now_secs() - s),
    };
    let mut lines: Vec<String> = text.lines().filter_map(|l| filter.line(l)).collect();
    if let Some(n) = q.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut out: String = lines.concat();
    let limit = q.get("limitBytes").and_then(|l| l.parse::<usize>().ok());
    if let Some(l) = limit {
        out.truncate(l.min(out.len()));
    }
    if !q.flag("follow") || limit.is_some() {
        let mut resp = (StatusCode::OK, out).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(resp);
    }
    let (cl2, ns2, name2) = (cl.clone(), ns.to_string(), name.to_string());
    let offset = text.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(16);
    tokio::spawn(async move {
        if tx.send(out).await.is_err() {
            return;
        }
        let mut offset = offset;
        loop {
            let done = match pod(&cl2, &ns2, &name2) {
                None => true,
                Some(p) => matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")),
            };
            if let Ok(text) = tokio::fs::read_to_string(cl2.log_path(&ns2, &name2)).await
                && text.len() > offset
            {
                let new = &text[offset..];
                let complete = new.rfind('\n').map(|i| i + 1).unwrap_or(0);
                let chunk: String = new[..complete].lines().filter_map(|l| filter.line(l)).collect();
                offset += complete;
                if !chunk.is_empty() && tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|s| (Ok::<_, std::convert::Infallible>(bytes::Bytes::from(s)), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}
