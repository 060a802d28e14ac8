//! HTTP plumbing shared by the flavors: credentials from headers, query strings, bounded bodies,
//! byte ranges, and streaming files or git blobs as responses.

use std::io;
use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use base64::Engine;
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::state::Hub;

/// The token presented by a request: `Authorization: Bearer T`, or the password of Basic auth
/// (git and git-lfs send the token as a password). With `cookies`, also `m_session_id=T`.
pub fn token(headers: &HeaderMap, cookies: bool) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            let t = t.trim();
            return (!t.is_empty()).then(|| t.to_string());
        }
        if let Some(b) = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")) {
            let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
            let s = String::from_utf8(raw).ok()?;
            let pass = s.split_once(':').map(|(_, p)| p).unwrap_or("");
            return (!pass.is_empty()).then(|| pass.to_string());
        }
    }
    if cookies {
        for v in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            for part in v.split(';') {
                if let Some((k, val)) = part.trim().split_once('=')
                    && (k == "m_session_id" || k == "modelscope_session")
                    && !val.is_empty()
                {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// Decodes a form/query string (`+` is a space) into ordered pairs.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The first value of `key` in `pairs`.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A boolean query value (`true`/`True`/`1`).
pub fn param_bool(pairs: &[(String, String)], key: &str) -> bool {
    param(pairs, key).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Characters escaped in one URL path segment.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment (or a whole value for a query string).
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Reads a request body up to the hub's API body limit; `Err` carries 413 or 400.
pub async fn read_body(hub: &Hub, body: Body) -> Result<bytes::Bytes, (StatusCode, String)> {
    let limit = hub.cfg.max_request_body;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| (StatusCode::BAD_REQUEST, format!("could not read the request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Marks a response `Connection: close`: for answers sent before the request body was read.
pub fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Outcome of interpreting a `Range` header against a length.
#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    Full,
    /// Inclusive byte range.
    Part(u64, u64),
    Unsatisfiable,
}

/// Interprets `Range: bytes=a-b | a- | -n` (a single range; anything else is served in full).
pub fn range(headers: &HeaderMap, len: u64) -> Range {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Range::Full;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (len.saturating_sub(n), len.saturating_sub(1), n > 0)),
        (false, true) => a.parse::<u64>().ok().map(|s| (s, len.saturating_sub(1), true)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(len.saturating_sub(1)), true)),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => Range::Full,
        Some((s, e, nonempty)) if nonempty && s < len && s <= e => Range::Part(s, e),
        Some(_) => Range::Unsatisfiable,
    }
}

/// Applies a range to a response builder: status, `Content-Range`, `Content-Length`.
/// Returns `(offset, count)` to serve, or `None` for 416.
pub fn apply_range(headers: &HeaderMap, len: u64, resp: &mut Response<Body>) -> Option<(u64, u64)> {
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range(headers, len) {
        Range::Full => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Some((0, len))
        }
        Range::Part(s, e) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes {s}-{e}/{len}")));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(e - s + 1));
            Some((s, e - s + 1))
        }
        Range::Unsatisfiable => {
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            None
        }
    }
}

/// A header value from text that may contain anything (invalid bytes are dropped).
pub fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| {
        HeaderValue::from_str(&s.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), ""))
            .unwrap_or(HeaderValue::from_static(""))
    })
}

/// Streams `count` bytes of `path` from `offset` (with the hub's download faults applied).
pub async fn file_body(hub: &Hub, path: &Path, offset: u64, count: u64) -> io::Result<Body> {
    let mut f = tokio::fs::File::open(path).await?;
    if offset > 0 {
        f.seek(io::SeekFrom::Start(offset)).await?;
    }
    let stream = ReaderStream::with_capacity(f.take(count), 256 * 1024);
    Ok(Body::from_stream(crate::faults::wrap_download(
        &hub.faults,
        count,
        stream,
    )))
}

/// Streams `count` bytes of a git blob from `offset` (with the hub's download faults applied).
pub fn blob_body(hub: &Hub, repo_dir: &Path, oid: &str, offset: u64, count: u64) -> io::Result<Body> {
    let mut child = crate::store::git::blob_child(repo_dir, oid).map_err(|e| io::Error::other(e.to_string()))?;
    let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
    let stream = ReaderStream::with_capacity(stdout, 256 * 1024)
        .scan((offset, count, child), |(skip, left, _child), chunk| {
            let out = chunk.map(|mut b| {
                let drop_n = (*skip).min(b.len() as u64) as usize;
                *skip -= drop_n as u64;
                let b = b.split_off(drop_n);
                let keep = (*left).min(b.len() as u64) as usize;
                *left -= keep as u64;
                b.slice(0..keep)
            });
            std::future::ready(Some(out))
        })
        .filter(|c| std::future::ready(!matches!(c, Ok(b) if b.is_empty())));
    Ok(Body::from_stream(crate::faults::wrap_download(
        &hub.faults,
        count,
        Box::pin(stream),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(range(&HeaderMap::new(), 10), Range::Full);
        assert_eq!(range(&h("bytes=2-5"), 10), Range::Part(2, 5));
        assert_eq!(range(&h("bytes=2-"), 10), Range::Part(2, 9));
        assert_eq!(range(&h("bytes=-3"), 10), Range::Part(7, 9));
        assert_eq!(range(&h("bytes=5-100"), 10), Range::Part(5, 9));
        assert_eq!(range(&h("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(range(&h("bytes=0-"), 0), Range::Unsatisfiable);
        assert_eq!(range(&h("bytes=5-2"), 10), Range::Full);
    }

    #[test]
    fn tokens() {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(token(&m, false).as_deref(), Some("abc"));
        m.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpzZWNyZXQ="),
        ); // user:secret
        assert_eq!(token(&m, false).as_deref(), Some("secret"));
        let mut c = HeaderMap::new();
        c.insert(header::COOKIE, HeaderValue::from_static("a=b; m_session_id=tok"));
        assert_eq!(token(&c, false), None);
        assert_eq!(token(&c, true).as_deref(), Some("tok"));
    }
}
