//! The Git LFS batch API (spec: git-lfs/docs/api/batch.md), shared by every hub: which objects a
//! store needs and where to send them (upload), or where to read them (download). Per-object
//! errors (404 missing, 413 too large, 422 invalid) come back as [`ObjectError`]s.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::Http;
use crate::redact::Secret;
use crate::types::UploadAction;

const LFS_JSON: &str = "application/vnd.git-lfs+json";
/// Objects per batch request (servers commonly cap batches at 100).
pub const BATCH: usize = 100;

/// A store's refusal of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectError {
    pub code: u16,
    pub message: String,
}

/// Where to read an object: URL and the headers to send with it.
#[derive(Clone, Debug)]
pub struct Download {
    pub href: String,
    pub headers: Vec<(String, Secret)>,
}

/// Adds an action's headers (which may carry credentials) to a request.
pub fn with_headers(mut rb: reqwest::RequestBuilder, headers: &[(String, Secret)]) -> reqwest::RequestBuilder {
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.expose());
    }
    rb
}

/// One batch request for `objects` (sha256, size); returns the answer's object entries in the
/// order asked. `auth` adds the caller's credentials to the request.
pub async fn batch(
    http: &Http,
    url: &str,
    auth: &(dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Sync),
    operation: &str,
    transfers: &[&str],
    branch: Option<&str>,
    objects: &[(String, u64)],
) -> Result<Vec<Value>> {
    let what = if operation == "upload" {
        "asking the destination which objects it needs"
    } else {
        "asking the source where its objects are"
    };
    let mut out = Vec::with_capacity(objects.len());
    for chunk in objects.chunks(BATCH) {
        let mut body = json!({
            "operation": operation, "transfers": transfers, "hash_algo": "sha256",
            "objects": chunk.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
        });
        if let Some(b) = branch {
            body["ref"] = json!({"name": b});
        }
        let resp = http
            .send(what, || {
                auth(http.client.post(url))
                    .header("accept", LFS_JSON)
                    .header("content-type", LFS_JSON)
                    .body(body.to_string())
            })
            .await?;
        let v: Value = crate::http::json_capped("LFS batch", resp).await?;
        let objs = v["objects"]
            .as_array()
            .ok_or_else(|| Error::Protocol("LFS batch answer without objects".into()))?;
        for (oid, _) in chunk {
            let o = objs
                .iter()
                .find(|o| o["oid"].as_str() == Some(oid))
                .ok_or_else(|| Error::Protocol(format!("LFS batch answer does not mention {oid}")))?;
            out.push(o.clone());
        }
    }
    Ok(out)
}

/// The per-object error of a batch answer entry, if any.
pub fn object_error(o: &Value) -> Option<ObjectError> {
    let err = o.get("error")?;
    Some(ObjectError {
        code: err["code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(0),
        message: err["message"].as_str().unwrap_or("").to_string(),
    })
}

fn headers(action: &Value) -> Vec<(String, Secret)> {
    action
        .get("header")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), Secret::new(v.as_str()?))))
                .collect()
        })
        .unwrap_or_default()
}

/// The download action of an entry: where the object's bytes are.
pub fn download_action(o: &Value) -> Result<Download> {
    if let Some(e) = object_error(o) {
        return Err(Error::Http {
            what: format!("reading LFS object {}", o["oid"].as_str().unwrap_or("?")),
            status: e.code,
            message: e.message,
            retry_after: None,
        });
    }
    let action = &o["actions"]["download"];
    let href = action["href"]
        .as_str()
        .ok_or_else(|| Error::Protocol("LFS download answer without href".into()))?;
    Ok(Download {
        href: href.to_string(),
        headers: headers(action),
    })
}

/// How long a download location is reused. Hubs' presigned URLs live an hour or more; one that
/// dies sooner is asked for again when the store says it expired.
const DOWNLOAD_REUSE: std::time::Duration = std::time::Duration::from_secs(300);

/// The location last given for one object and when; locked while it is asked for, so the
/// ranges of an object opened at once wait for one answer instead of each asking.
type DownloadSlot = std::sync::Arc<tokio::sync::Mutex<Option<(Download, std::time::Instant)>>>;

/// Where objects can be read, by key (an oid, a pinned URL), reused for every range of an
/// object while fresh: one batch call or one `/resolve` an object, not one a range (the Hub
/// counts both against the user's quotas). Clones share the locations.
#[derive(Clone, Debug, Default)]
pub struct Downloads {
    slots: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, DownloadSlot>>>,
}

impl Downloads {
    /// Streams `len` bytes from `offset` of the object `key` names, from where `ask` says it is
    /// (asked once, reused within [`DOWNLOAD_REUSE`]). A range the store refuses as expired or
    /// unauthorised asks once more (ranges refused together share one new answer) and is
    /// tried again there.
    pub async fn fetch<F, Fut>(
        &self,
        http: &Http,
        key: &str,
        what: &str,
        offset: u64,
        len: u64,
        ask: F,
    ) -> Result<ByteStream>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Download>>,
    {
        let d = self.location(key, None, &ask).await?;
        match fetch(http, &d, what, offset, len).await {
            Err(e) if e.is_expired() || matches!(e.status(), Some(401 | 403)) => {
                let d = self.location(key, Some(&d.href), &ask).await?;
                fetch(http, &d, what, offset, len).await
            }
            read => read,
        }
    }

    /// The location known for `key` while fresh, unless that is the URL `refused` (then, or
    /// when there is none, a new one from `ask`).
    async fn location<F, Fut>(&self, key: &str, refused: Option<&str>, ask: &F) -> Result<Download>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Download>>,
    {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut known = slot.lock().await;
        if let Some((d, at)) = known.as_ref()
            && refused != Some(d.href.as_str())
            && at.elapsed() < DOWNLOAD_REUSE
        {
            return Ok(d.clone());
        }
        let d = ask().await?;
        *known = Some((d.clone(), std::time::Instant::now()));
        Ok(d)
    }
}

/// Streams `len` bytes (from `offset`; `len` 0: all of it) of an object from where a download
/// batch answer said, with the headers it gave for it.
pub async fn fetch(http: &Http, d: &Download, what: &str, offset: u64, len: u64) -> Result<ByteStream> {
    let resp = http
        .send(what, || {
            let mut rb = with_headers(http.client.get(&d.href), &d.headers);
            if offset > 0 || len > 0 {
                rb = rb.header(
                    reqwest::header::RANGE,
                    format!("bytes={offset}-{}", offset + len.max(1) - 1),
                );
            }
            rb
        })
        .await?;
    crate::body::ranged_body(resp, offset, len)
}

/// The upload action of an entry: nothing to send, one PUT, or multipart parts.
pub fn upload_action(o: &Value) -> Result<UploadAction> {
    if let Some(e) = object_error(o) {
        return Err(Error::Http {
            what: format!("the destination refused object {}", o["oid"].as_str().unwrap_or("?")),
            status: e.code,
            message: e.message,
            retry_after: None,
        });
    }
    let Some(actions) = o.get("actions") else {
        return Ok(UploadAction::Present);
    };
    let Some(upload) = actions.get("upload") else {
        return Ok(UploadAction::Present);
    };
    let href = upload["href"]
        .as_str()
        .ok_or_else(|| Error::Protocol("upload action without href".into()))?
        .to_string();
    let verify = actions
        .get("verify")
        .and_then(|v| v["href"].as_str())
        .map(str::to_string);
    let header = upload.get("header").and_then(Value::as_object);
    match header.and_then(|h| h.get("chunk_size")) {
        Some(cs) => {
            let chunk_size = cs
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| cs.as_u64())
                .filter(|c| *c > 0)
                .ok_or_else(|| Error::Protocol("invalid multipart chunk_size".into()))?;
            let mut parts: Vec<(u64, String)> = header
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v.as_str()?.to_string())))
                .collect();
            parts.sort_by_key(|p| p.0);
            Ok(UploadAction::Multipart {
                chunk_size,
                parts: parts.into_iter().map(|p| p.1).collect(),
                complete: href,
                verify,
            })
        }
        None => Ok(UploadAction::Basic {
            href,
            headers: headers(upload),
            verify,
        }),
    }
}
