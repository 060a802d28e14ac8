//! Streaming transfer primitives: turning a (possibly range-ignoring) download answer into exactly
//! the bytes asked for, a download that resumes with `Range` after a cut connection or a short
//! body, a bounded number of times, and the single streaming PUT of an upload.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::CONTENT_LENGTH;
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::{RetryPolicy, error_from};
use crate::hub::Hub;
use crate::reporef::RepoRef;

/// The bytes `[offset, offset + len)` of a download answer. A `206` is taken as is; a `200` (a
/// server that ignores `Range`, as ModelScope does for regular files) is skipped forward.
pub fn ranged_body(resp: Response, offset: u64, len: u64) -> Result<ByteStream> {
    let skip = match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            let start = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(offset) {
                return Err(Error::Protocol(format!(
                    "asked for bytes from {offset}, got a range starting at {start:?}"
                )));
            }
            0
        }
        StatusCode::OK => offset,
        s => return Err(Error::Protocol(format!("unexpected download status {s}"))),
    };
    let mut skip = skip;
    let mut left = len;
    let stream = resp
        .bytes_stream()
        .map_err(|e| std::io::Error::other(e.without_url()))
        .map_ok(move |mut b: Bytes| {
            let drop_n = skip.min(b.len() as u64) as usize;
            skip -= drop_n as u64;
            let b = b.split_off(drop_n);
            let keep = left.min(b.len() as u64) as usize;
            left -= keep as u64;
            b.slice(..keep)
        })
        .try_filter(|b| std::future::ready(!b.is_empty()));
    Ok(Box::pin(stream))
}

/// Sends `rb` (a PUT with whatever credentials its URL may receive) with the `len` bytes of `body`
/// streamed in one request; an error status becomes [`Error::Http`] with the hub's message. Never
/// retried: the body is consumed as it goes.
pub(crate) async fn put_stream(what: &str, rb: RequestBuilder, len: u64, body: ByteStream) -> Result<Response> {
    let resp = rb
        .header(CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| Error::transport(what, e))?;
    if !resp.status().is_success() {
        return Err(error_from(what, resp).await);
    }
    Ok(resp)
}

/// What to download: a file of a repo at a commit.
#[derive(Clone)]
struct Source {
    hub: Hub,
    repo: RepoRef,
    commit: String,
    path: String,
    object: Option<(String, u64)>,
}

struct Resume {
    src: Arc<Source>,
    current: Option<ByteStream>,
    offset: u64,
    left: u64,
    failures: u32,
    retry: RetryPolicy,
}

/// Streams `len` bytes of a file from `offset`, reopening the download at the current position
/// when the connection breaks or the body ends early (at most `retry.attempts` times in a row
/// without progress). The bytes are each read once: callers hash them as they pass.
/// `object` is the LFS object (sha256, size) behind `path`, when it is one.
pub fn open_resuming(
    hub: &Hub,
    repo: &RepoRef,
    commit: &str,
    path: &str,
    object: Option<(&str, u64)>,
    offset: u64,
    len: u64,
) -> ByteStream {
    let state = Resume {
        src: Arc::new(Source {
            hub: hub.clone(),
            repo: repo.clone(),
            commit: commit.into(),
            path: path.into(),
            object: object.map(|(o, s)| (o.to_string(), s)),
        }),
        current: None,
        offset,
        left: len,
        failures: 0,
        retry: RetryPolicy::default(),
    };
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            if st.left == 0 {
                return None;
            }
            let stream = match st.current.as_mut() {
                Some(s) => s,
                None => match st
                    .src
                    .hub
                    .download(
                        &st.src.repo,
                        &st.src.commit,
                        &st.src.path,
                        st.src.object.as_ref().map(|(o, s)| (o.as_str(), *s)),
                        st.offset,
                        st.left,
                    )
                    .await
                {
                    Ok(s) => st.current.insert(s),
                    Err(e) if e.is_retryable() && st.failures + 1 < st.retry.attempts => {
                        st.failures += 1;
                        tokio::time::sleep(st.retry.delay(st.failures, None)).await;
                        continue;
                    }
                    Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                },
            };
            let failure = match stream.next().await {
                Some(Ok(b)) => {
                    st.offset += b.len() as u64;
                    st.left = st.left.saturating_sub(b.len() as u64);
                    st.failures = 0;
                    return Some((Ok(b), Some(st)));
                }
                Some(Err(e)) => e.to_string(),
                None => format!("body ended {} bytes early", st.left),
            };
            st.current = None;
            st.failures += 1;
            if st.failures >= st.retry.attempts {
                let msg = format!("download of {} kept failing: {failure}", st.src.path);
                return Some((Err(std::io::Error::other(msg)), None));
            }
            tracing::debug!(path = %st.src.path, offset = st.offset, %failure, "resuming download");
            tokio::time::sleep(st.retry.delay(st.failures, None)).await;
        }
    }))
}
