//! Socket-level bandwidth limits (`--conn-rate`, `--total-rate`).
//!
//! Throttling lives below HTTP, on the accepted TCP stream, so one mechanism
//! slows uploads (request bodies hyper reads) and downloads (responses hyper
//! writes) alike, whatever handler produced them. A [`ThrottledListener`]
//! wraps every accepted socket in a [`ThrottledStream`], which draws tokens
//! from an optional per-connection [`TokenBucket`] and an optional shared one
//! before each read or write.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Smallest burst a bucket allows, so small requests and responses pass
/// without delay even under low limits.
const MIN_BURST: u64 = 64 * 1024;

/// A thread-safe token bucket measured in bytes.
///
/// It refills continuously at `rate` bytes per second up to a burst
/// capacity of `max(rate / 10, 64 KiB)`, and starts full. One bucket can be
/// shared (through an `Arc`) by any number of connections and listeners.
#[derive(Debug)]
pub struct TokenBucket {
    /// Refill rate in bytes per second; never zero.
    rate: f64,
    /// Maximum number of tokens the bucket holds.
    capacity: f64,
    /// About 10 ms of traffic: the size of one reservation (see [`TokenBucket::chunk`]).
    min_grant: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Creates a full bucket refilling at `rate` bytes per second.
    ///
    /// A rate of 0 is treated as 1 byte/s (a limit that never refills would
    /// hang every connection forever); callers wanting "unlimited" should
    /// not create a bucket at all.
    pub fn new(rate: u64) -> Self {
        let rate = rate.max(1) as f64;
        let capacity = (rate / 10.0).max(MIN_BURST as f64);
        let min_grant = (rate / 100.0).clamp(1.0, capacity);
        Self {
            rate,
            capacity,
            min_grant,
            state: Mutex::new(BucketState {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// Reserves `n` tokens and returns the instant from which they are covered.
    ///
    /// The balance may go negative: every caller queues behind the reservations made before
    /// it, so connections sharing a bucket are served in turn (first come, first served)
    /// instead of whichever timer fires first draining everything that refilled.
    fn reserve(&self, n: usize) -> Instant {
        let now = Instant::now();
        // A poisoned lock only means another thread panicked mid-update of
        // two plain numbers; the state is still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.capacity);
        state.last = now;
        state.tokens -= n as f64;
        if state.tokens >= 0.0 {
            return now;
        }
        let wait = Duration::try_from_secs_f64(-state.tokens / self.rate).unwrap_or(Duration::from_secs(1));
        now + wait
    }

    /// How many bytes one reservation covers: about 10 ms of traffic (at least 4 KiB), which
    /// bounds both wake-ups per second and how far one connection can get ahead of another.
    fn chunk(&self) -> usize {
        self.min_grant.max(4096.0) as usize
    }

    /// Returns tokens taken but not used (short reads/writes, `Pending`).
    fn refund(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.tokens = (state.tokens + n as f64).min(self.capacity);
    }
}

/// Bandwidth limits applied to every connection of a listener.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Bytes per second for each connection, each direction sharing one
    /// budget (`--conn-rate`).
    pub per_conn: Option<u64>,
    /// A bucket shared by all connections of all listeners holding it
    /// (`--total-rate`).
    pub total: Option<Arc<TokenBucket>>,
}

/// An I/O stream whose reads and writes are paced by token buckets.
///
/// Each read is limited to the tokens granted beforehand and each write to
/// a slice of that length; when no tokens are available the stream arms a
/// timer for the refill and returns `Pending`. Without limits it forwards
/// every call directly.
#[derive(Debug)]
pub struct ThrottledStream<S> {
    inner: S,
    /// Per-connection bucket; owned, so uncontended.
    conn: Option<TokenBucket>,
    total: Option<Arc<TokenBucket>>,
    /// Separate timers per direction: hyper may poll both at once and each
    /// must keep its own waker registered.
    read_wait: Option<Reserved>,
    write_wait: Option<Reserved>,
}

/// Tokens reserved for the next read or write, usable once `sleep` fires.
#[derive(Debug)]
struct Reserved {
    n: usize,
    sleep: Pin<Box<Sleep>>,
}

impl<S> ThrottledStream<S> {
    /// Wraps `inner`, creating a fresh per-connection bucket if
    /// `limits.per_conn` is set.
    pub fn new(inner: S, limits: &RateLimits) -> Self {
        Self {
            inner,
            conn: limits.per_conn.map(TokenBucket::new),
            total: limits.total.clone(),
            read_wait: None,
            write_wait: None,
        }
    }

    fn is_unlimited(&self) -> bool {
        self.conn.is_none() && self.total.is_none()
    }

    /// Reserves up to `want` bytes in both buckets: the amount and when it may be used.
    fn reserve(&self, want: usize) -> (usize, Instant) {
        let chunk = [
            self.conn.as_ref().map(TokenBucket::chunk),
            self.total.as_ref().map(|t| t.chunk()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(want);
        let n = want.min(chunk).max(1);
        let mut at = Instant::now();
        if let Some(conn) = &self.conn {
            at = at.max(conn.reserve(n));
        }
        if let Some(total) = &self.total {
            at = at.max(total.reserve(n));
        }
        (n, at)
    }

    /// Gives back `n` unused tokens to both buckets.
    fn refund(&self, n: usize) {
        if let Some(conn) = &self.conn {
            conn.refund(n);
        }
        if let Some(total) = &self.total {
            total.refund(n);
        }
    }
}

/// Grants up to `want` bytes: reserves them, then parks the task until the reservation is
/// covered. A reservation survives `Pending`, so a woken task never pays twice.
fn poll_grant<S>(
    stream: &ThrottledStream<S>,
    wait: &mut Option<Reserved>,
    cx: &mut Context<'_>,
    want: usize,
) -> Poll<usize> {
    if wait.is_none() {
        let (n, at) = stream.reserve(want);
        if at <= Instant::now() {
            return Poll::Ready(n);
        }
        *wait = Some(Reserved {
            n,
            sleep: Box::pin(tokio::time::sleep_until(at)),
        });
    }
    let Some(r) = wait.as_mut() else {
        return Poll::Pending;
    };
    ready!(r.sleep.as_mut().poll(cx));
    let n = r.n;
    *wait = None;
    if n > want {
        stream.refund(n - want);
    }
    Poll::Ready(n.min(want))
}

impl<S: AsyncRead + Unpin> AsyncRead for ThrottledStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_unlimited() || buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut wait = this.read_wait.take();
        let granted = poll_grant(this, &mut wait, cx, buf.remaining());
        this.read_wait = wait;
        let Poll::Ready(granted) = granted else {
            return Poll::Pending;
        };
        // Read into a prefix of the caller's buffer no longer than the grant.
        // Zero-initialising it keeps this module free of `unsafe`; the cost
        // is one memset of at most the granted bytes, which are few by
        // construction (this path only runs when a limit is set).
        let window = buf.initialize_unfilled_to(granted);
        let mut limited = ReadBuf::new(window);
        let result = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let read = limited.filled().len();
        this.refund(granted - read);
        if let Poll::Ready(Ok(())) = result {
            buf.advance(read);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ThrottledStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_unlimited() || buf.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let mut wait = this.write_wait.take();
        let granted = poll_grant(this, &mut wait, cx, buf.len());
        this.write_wait = wait;
        let Poll::Ready(granted) = granted else {
            return Poll::Pending;
        };
        let slice = buf.get(..granted).unwrap_or(buf);
        let result = Pin::new(&mut this.inner).poll_write(cx, slice);
        let written = match &result {
            Poll::Ready(Ok(n)) => (*n).min(granted),
            _ => 0,
        };
        this.refund(granted - written);
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_unlimited() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        // Throttled writes go one slice at a time through `poll_write`;
        // callers rarely get here since `is_write_vectored` says false.
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
        Pin::new(this).poll_write(cx, first)
    }

    /// Vectored only when unlimited, so unthrottled connections keep hyper's
    /// zero-copy write path; throttled ones let hyper flatten into a buffer
    /// that `poll_write` then meters.
    fn is_write_vectored(&self) -> bool {
        self.is_unlimited() && self.inner.is_write_vectored()
    }
}

/// A TCP listener whose accepted connections are [`ThrottledStream`]s.
///
/// Implements [`axum::serve::Listener`], so it drops into `axum::serve` in
/// place of a `TcpListener`.
#[derive(Debug)]
pub struct ThrottledListener {
    inner: TcpListener,
    limits: RateLimits,
}

impl ThrottledListener {
    /// Wraps `inner`, applying `limits` to every accepted connection.
    pub fn new(inner: TcpListener, limits: RateLimits) -> Self {
        Self { inner, limits }
    }
}

impl axum::serve::Listener for ThrottledListener {
    type Io = ThrottledStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => return (ThrottledStream::new(stream, &self.limits), addr),
                Err(e) => handle_accept_error(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Mirrors axum's own `TcpListener` handling (private there): errors about
/// one aborted connection are skipped; anything else (e.g. `EMFILE`) is
/// logged and followed by a pause so the accept loop does not spin.
async fn handle_accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const MIB: usize = 1024 * 1024;

    /// Writes `len` bytes into `w` then shuts it down.
    async fn send(mut w: impl AsyncWrite + Unpin, len: usize) {
        let chunk = vec![7u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
        w.shutdown().await.expect("shutdown");
    }

    /// Reads `r` to EOF, returning the byte count.
    async fn drain(mut r: impl AsyncRead + Unpin) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    /// Connected loopback TCP pair (client, server side).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), server.expect("accept").0)
    }

    fn assert_about(elapsed: Duration, expected: f64) {
        let secs = elapsed.as_secs_f64();
        eprintln!("took {secs:.3}s, expected about {expected}s");
        assert!(
            (expected * 0.8..=expected * 1.2).contains(&secs),
            "took {secs:.2}s, expected {expected}s ± 20%"
        );
    }

    #[test]
    fn reservations_queue_behind_each_other() {
        let bucket = TokenBucket::new(1_000_000);
        let start = Instant::now();
        // Capacity is rate / 10 = 100 kB, all available at once.
        assert!(bucket.reserve(100_000) <= Instant::now());
        // Each further 10 kB is 10 ms later than the one before: first come, first served.
        let first = bucket.reserve(10_000) - start;
        let second = bucket.reserve(10_000) - start;
        assert!(
            first >= Duration::from_millis(8) && first <= Duration::from_millis(15),
            "{first:?}"
        );
        assert!(
            second >= Duration::from_millis(18) && second <= Duration::from_millis(25),
            "{second:?}"
        );
        bucket.refund(25_000); // pays back both reservations and 5 kB more
        assert!(bucket.reserve(5_000) <= Instant::now() + Duration::from_millis(1));
    }

    #[test]
    fn small_rates_keep_a_64k_burst_and_zero_is_clamped() {
        let bucket = TokenBucket::new(0);
        assert!(bucket.reserve(64 * 1024) <= Instant::now());
        // Refilling at 1 byte/s, one more byte is about one second away.
        let wait = bucket.reserve(1) - Instant::now();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(bucket.chunk(), 4096);
    }

    #[tokio::test]
    async fn upload_through_conn_limit_takes_expected_time() {
        let (client, server) = tcp_pair().await;
        let limits = RateLimits {
            per_conn: Some(4 * MIB as u64),
            total: None,
        };
        // Throttle the receiving side: exercises the read path.
        let server = ThrottledStream::new(server, &limits);
        let start = std::time::Instant::now();
        let (_, got) = tokio::join!(send(client, 8 * MIB), drain(server));
        assert_eq!(got, 8 * MIB);
        assert_about(start.elapsed(), 2.0);
    }

    #[tokio::test]
    async fn download_through_conn_limit_takes_expected_time() {
        let (client, server) = tcp_pair().await;
        let limits = RateLimits {
            per_conn: Some(4 * MIB as u64),
            total: None,
        };
        // Throttle the sending side: exercises the write path.
        let server = ThrottledStream::new(server, &limits);
        let start = std::time::Instant::now();
        let (_, got) = tokio::join!(send(server, 8 * MIB), drain(client));
        assert_eq!(got, 8 * MIB);
        assert_about(start.elapsed(), 2.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_listeners_share_a_total_limit() {
        let limits = RateLimits {
            per_conn: None,
            total: Some(Arc::new(TokenBucket::new(4 * MIB as u64))),
        };
        // Two listeners holding the same bucket, one download from each.
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let mut listener = ThrottledListener::new(tcp, limits.clone());
            let addr = Listener::local_addr(&listener).expect("addr");
            tasks.push(tokio::spawn(async move {
                let (client, (server, _)) = tokio::join!(TcpStream::connect(addr), Listener::accept(&mut listener));
                let (_, got) = tokio::join!(send(server, 4 * MIB), drain(client.expect("conn")));
                got
            }));
        }
        let start = std::time::Instant::now();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("task");
        }
        assert_eq!(total, 8 * MIB);
        assert_about(start.elapsed(), 2.0);
    }

    /// End to end through `axum::serve`: an upload and a download on two
    /// connections, each held to the per-connection rate independently.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_serve_throttles_uploads_and_downloads() {
        use axum::body::Body;
        use axum::routing::{get, post};
        use futures_util::StreamExt;

        const LEN: usize = 4 * MIB;
        let app = axum::Router::new()
            .route("/blob", get(|| async { vec![1u8; LEN] }))
            .route(
                "/upload",
                post(|body: Body| async move {
                    let mut stream = body.into_data_stream();
                    let mut n = 0;
                    while let Some(Ok(chunk)) = stream.next().await {
                        n += chunk.len();
                    }
                    n.to_string()
                }),
            );
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let limits = RateLimits {
            per_conn: Some(2 * MIB as u64),
            total: None,
        };
        let listener = ThrottledListener::new(tcp, limits);
        let addr = Listener::local_addr(&listener).expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let download = async {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            let req = "GET /blob HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            tcp.write_all(req.as_bytes()).await.expect("write");
            drain(tcp).await
        };
        let upload = async {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                 Content-Length: {LEN}\r\n\r\n"
            );
            tcp.write_all(head.as_bytes()).await.expect("write");
            tcp.write_all(&vec![2u8; LEN]).await.expect("write body");
            let mut response = String::new();
            tcp.read_to_string(&mut response).await.expect("read");
            response
        };
        let start = std::time::Instant::now();
        let (downloaded, uploaded) = tokio::join!(download, upload);
        // 2 MiB/s per connection, both in parallel: about 2 s in total.
        assert_about(start.elapsed(), 2.0);
        assert!(downloaded > LEN);
        assert!(uploaded.ends_with(&format!("\r\n\r\n{LEN}")), "{uploaded}");
    }

    #[tokio::test]
    async fn unlimited_stream_is_not_delayed() {
        let (client, server) = tcp_pair().await;
        let server = ThrottledStream::new(server, &RateLimits::default());
        let start = std::time::Instant::now();
        let (_, got) = tokio::join!(send(server, 8 * MIB), drain(client));
        assert_eq!(got, 8 * MIB);
        assert!(start.elapsed() < Duration::from_millis(500));
    }
}
