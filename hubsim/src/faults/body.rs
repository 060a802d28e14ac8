//! Download-body faults (`--truncate`, `--corrupt`).
//!
//! [`wrap_download`] decides once per body whether to cut it short or flip
//! one bit, then applies that decision while the bytes stream out. A cut
//! ends the stream with an error rather than a clean end: hyper then aborts
//! the connection, so the client sees fewer bytes than the `Content-Length`
//! it was promised, exactly like a dropped transfer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::middleware::Faults;

/// The boxed body stream [`wrap_download`] returns; ready for
/// `axum::body::Body::from_stream`.
pub type DownloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send + 'static>>;

/// Wraps a download body of `len` bytes with the configured body faults.
///
/// With probability `truncate` the body stops at a random offset in
/// `[0, len)` with an error; with probability `corrupt` one bit of the byte
/// at a random offset in `[0, len)` is flipped. Both may apply. When
/// neither fires (or `len == 0`) the stream is only boxed.
pub fn wrap_download<S>(faults: &Faults, len: u64, stream: S) -> DownloadStream
where
    S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
{
    let config = faults.config();
    // An empty body has no byte to cut before or flip.
    let cut_at = (len > 0 && faults.roll(config.truncate)).then(|| faults.below(len));
    let flip = (len > 0 && faults.roll(config.corrupt)).then(|| (faults.below(len), 1u8 << faults.below(8)));

    if let Some(offset) = cut_at {
        faults.truncated.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(len, offset, kind = "truncate", "injected fault");
    }
    if let Some((offset, mask)) = flip {
        faults.corrupted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(len, offset, mask, kind = "corrupt", "injected fault");
    }
    if cut_at.is_none() && flip.is_none() {
        return Box::pin(stream);
    }
    Box::pin(FaultyBody {
        inner: Box::pin(stream),
        pos: 0,
        cut_at,
        flip,
        done: false,
        paused_at_cut: false,
    })
}

/// A body stream applying a pre-rolled truncation and/or bit flip.
struct FaultyBody<S> {
    /// Boxed so `S` need not be `Unpin`.
    inner: Pin<Box<S>>,
    /// Offset of the next byte the inner stream yields.
    pos: u64,
    /// Offset at which the body ends with an error.
    cut_at: Option<u64>,
    /// Offset and XOR mask of the corrupted byte.
    flip: Option<(u64, u8)>,
    /// Set once the stream has ended (normally or by the cut).
    done: bool,
    /// Set after the one `Pending` returned at the cut point.
    paused_at_cut: bool,
}

impl<S> FaultyBody<S> {
    /// Ends the body with an error, after first returning `Pending` once.
    ///
    /// hyper buffers what a body yields and flushes only when the body is
    /// not ready; an error while data is still buffered drops that data
    /// (headers included) with the connection. Pausing once, with an
    /// immediate wake-up, lets hyper flush the headers and every byte before
    /// the cut, so the client really sees a short body.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, io::Error>>> {
        if !self.paused_at_cut {
            self.paused_at_cut = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.done = true;
        Poll::Ready(Some(Err(io::Error::other("hubsim: download truncated (--truncate)"))))
    }

    /// Applies the bit flip and the cut to one chunk starting at `self.pos`.
    fn process(&mut self, chunk: Bytes) -> Poll<Option<Result<Bytes, io::Error>>> {
        let start = self.pos;
        let end = start.saturating_add(chunk.len() as u64);
        self.pos = end;

        let mut chunk = chunk;
        if let Some((offset, mask)) = self.flip
            && (start..end).contains(&offset)
        {
            let mut owned = chunk.to_vec();
            // `offset - start < chunk.len()`, so the index is in bounds.
            if let Some(byte) = owned.get_mut((offset - start) as usize) {
                *byte ^= mask;
            }
            chunk = Bytes::from(owned);
            self.flip = None;
        }

        if let Some(cut) = self.cut_at
            && cut < end
        {
            // Deliver the bytes before the cut; the next poll reports the
            // error. `start <= cut` holds because polling stops at the cut.
            let keep = cut.saturating_sub(start) as usize;
            self.pos = cut;
            return Poll::Ready(Some(Ok(chunk.slice(..keep.min(chunk.len())))));
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

impl<S> Stream for FaultyBody<S>
where
    S: Stream<Item = Result<Bytes, io::Error>>,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // All fields are Unpin (the inner stream is boxed).
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.cut_at == Some(this.pos) {
            return this.poll_cut(cx);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => this.process(chunk),
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            // The source ended before the cut point: still end with the
            // error, so a truncation roll always reads as a failure.
            Poll::Ready(None) if this.cut_at.is_some() => this.poll_cut(cx),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::middleware::FaultConfig;
    use super::*;
    use futures_util::StreamExt;
    use futures_util::stream;

    /// `len` bytes of a recognisable pattern.
    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// The payload as a stream of `chunk`-sized pieces.
    fn chunked(data: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, io::Error>> + use<> {
        let pieces: Vec<_> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(pieces)
    }

    /// Collects the stream: the bytes received and whether it ended in error.
    async fn collect(mut s: DownloadStream) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => {
                    // Nothing may follow the error.
                    assert!(s.next().await.is_none());
                    return (out, true);
                }
            }
        }
        (out, false)
    }

    fn faults(truncate: f64, corrupt: f64) -> Faults {
        Faults::new(FaultConfig {
            truncate,
            corrupt,
            ..FaultConfig::default()
        })
    }

    #[tokio::test]
    async fn truncate_ends_early_with_an_error() {
        let data = payload(10_000);
        let faults = faults(1.0, 0.0);
        for chunk in [1, 333, 4096, 20_000] {
            let body = wrap_download(&faults, data.len() as u64, chunked(&data, chunk));
            let (got, errored) = collect(body).await;
            assert!(errored);
            assert!(got.len() < data.len());
            assert_eq!(got, data[..got.len()]);
        }
        assert_eq!(faults.stats().truncated, 4);
    }

    #[tokio::test]
    async fn corrupt_flips_exactly_one_byte() {
        let data = payload(10_000);
        let faults = faults(0.0, 1.0);
        for chunk in [1, 333, 4096, 20_000] {
            let body = wrap_download(&faults, data.len() as u64, chunked(&data, chunk));
            let (got, errored) = collect(body).await;
            assert!(!errored);
            assert_eq!(got.len(), data.len());
            let diffs: Vec<_> = (0..data.len()).filter(|&i| got[i] != data[i]).collect();
            assert_eq!(diffs.len(), 1);
            // One bit, not just one byte.
            assert_eq!((got[diffs[0]] ^ data[diffs[0]]).count_ones(), 1);
        }
        assert_eq!(faults.stats().corrupted, 4);
    }

    #[tokio::test]
    async fn no_faults_leave_bytes_identical() {
        let data = payload(10_000);
        let faults = faults(0.0, 0.0);
        let body = wrap_download(&faults, data.len() as u64, chunked(&data, 777));
        assert_eq!(collect(body).await, (data, false));
        assert_eq!(faults.stats(), Default::default());
    }

    #[tokio::test]
    async fn empty_body_is_never_faulted() {
        let faults = faults(1.0, 1.0);
        let body = wrap_download(&faults, 0, chunked(&[], 1));
        assert_eq!(collect(body).await, (Vec::new(), false));
    }

    /// End to end through hyper: the client gets a correct Content-Length
    /// header but fewer body bytes, and the connection is closed.
    #[tokio::test]
    async fn truncated_http_response_is_short() {
        use axum::body::Body;
        use axum::http::header::CONTENT_LENGTH;
        use axum::response::Response;
        use axum::routing::get;
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        const LEN: usize = 100_000;
        let faults = Arc::new(faults(1.0, 0.0));
        let app = axum::Router::new().route(
            "/file",
            get(move || {
                let faults = faults.clone();
                async move {
                    let data = payload(LEN);
                    let body = wrap_download(&faults, LEN as u64, chunked(&data, 8192));
                    Response::builder()
                        .header(CONTENT_LENGTH, LEN)
                        .body(Body::from_stream(body))
                        .unwrap_or_default()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        // Several requests, so several random cut points get exercised.
        for _ in 0..5 {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"GET /file HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .expect("write");
            let mut raw = Vec::new();
            // Keep-alive was requested, so reaching EOF (or a reset) here
            // means hyper aborted the connection.
            let _ = tcp.read_to_end(&mut raw).await;
            let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers");
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(head.contains(&format!("content-length: {LEN}")), "{head}");
            let body = &raw[split + 4..];
            assert!(body.len() < LEN);
            assert_eq!(body, &payload(LEN)[..body.len()]);
        }
    }
}
