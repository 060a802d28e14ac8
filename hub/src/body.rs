//! Bodies on the wire: a (possibly range-ignoring) download answer turned into exactly the bytes
//! asked for, and the single streaming PUT of an upload. Every hub client uses these; they know
//! no hub.

use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::header::CONTENT_LENGTH;
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::error_from;

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
