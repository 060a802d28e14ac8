//! Request-level fault injection (`--latency`, `--fail-429`, `--fail-5xx`,
//! `--api-403`) and the shared [`Faults`] state.
//!
//! [`Faults`] owns the configuration, a lock-free PRNG and the injection
//! counters; the download-body faults in `body.rs` use the same instance.
//! [`inject`] is an axum middleware; the hub flavor supplies, through
//! [`FaultCtx`], which routes count as API listings and how errors look.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{OriginalUri, Request, State};
use axum::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Fault knobs, one field per `serve` flag.
///
/// Probabilities are in `[0, 1]`; values outside clamp (NaN counts as 0).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Delay added before every request is handled.
    pub latency: Option<Duration>,
    /// Probability of answering 429 Too Many Requests.
    pub fail_429: f64,
    /// Probability of answering 500, 502 or 503.
    pub fail_5xx: f64,
    /// Probability that a download body ends early.
    pub truncate: f64,
    /// Probability that a download body has one bit flipped.
    pub corrupt: f64,
    /// Refuse API listing routes with 403 (git and downloads keep working).
    pub api_403: bool,
    /// Seconds advertised in `Retry-After` on injected 429s.
    pub retry_after_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency: None,
            fail_429: 0.0,
            fail_5xx: 0.0,
            truncate: 0.0,
            corrupt: 0.0,
            api_403: false,
            retry_after_secs: 1,
        }
    }
}

/// Snapshot of how many faults have been injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests refused by `--api-403`.
    pub injected_403: u64,
    /// Requests answered 429.
    pub injected_429: u64,
    /// Requests answered 500/502/503.
    pub injected_5xx: u64,
    /// Download bodies set up to end early.
    pub truncated: u64,
    /// Download bodies set up with a flipped bit.
    pub corrupted: u64,
}

/// Fault configuration plus the state needed to apply it: a PRNG and
/// counters. Shared (in an `Arc`) by the middleware and download handlers.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    /// SplitMix64 state. Advancing it is a single `fetch_add`, so rolls
    /// from concurrent requests need no lock and never repeat a value.
    rng: AtomicU64,
    pub(super) injected_403: AtomicU64,
    pub(super) injected_429: AtomicU64,
    pub(super) injected_5xx: AtomicU64,
    pub(super) truncated: AtomicU64,
    pub(super) corrupted: AtomicU64,
}

/// SplitMix64 increment (the golden-ratio constant).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Faults {
    /// Creates the fault state, seeding the PRNG from the clock and a
    /// process-wide counter (so two instances made in the same nanosecond
    /// still differ).
    pub fn new(config: FaultConfig) -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        Self::with_seed(config, nanos ^ instance.wrapping_mul(GOLDEN_GAMMA))
    }

    /// Creates the fault state with a fixed PRNG seed (reproducible runs).
    pub fn with_seed(config: FaultConfig, seed: u64) -> Self {
        Self {
            config,
            rng: AtomicU64::new(seed),
            injected_403: AtomicU64::new(0),
            injected_429: AtomicU64::new(0),
            injected_5xx: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
        }
    }

    /// The configuration this instance applies.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Returns true with probability `p` (false for `p <= 0` or NaN, true
    /// for `p >= 1`, without consuming randomness in either case).
    pub fn roll(&self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits give a uniform float in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// A uniformly random value in `[0, n)`; 0 when `n == 0`.
    pub(super) fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift maps 64 random bits onto [0, n) without division;
        // the bias (< n / 2^64) is irrelevant for fault injection.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A snapshot of the injection counters.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            injected_403: self.injected_403.load(Ordering::Relaxed),
            injected_429: self.injected_429.load(Ordering::Relaxed),
            injected_5xx: self.injected_5xx.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
        }
    }

    /// SplitMix64: advance the state by the gamma, then mix.
    fn next_u64(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// State for [`inject`]: the shared faults plus the flavor's hooks.
///
/// The hooks are plain function pointers so the context stays `Copy`-cheap
/// and each hub flavor (HF, ModelScope, ...) plugs in its own rules.
#[derive(Clone)]
pub struct FaultCtx {
    /// The shared fault state.
    pub faults: Arc<Faults>,
    /// Whether a request (method, raw path) is an API listing route that
    /// `--api-403` refuses. Git and download routes must answer false.
    pub is_api_listing: fn(&Method, &str) -> bool,
    /// Renders an error response in the flavor's own error shape.
    pub render_error: fn(StatusCode, &str) -> Response,
}

impl FaultCtx {
    /// Bundles the fault state with the flavor's hooks.
    pub fn new(
        faults: Arc<Faults>,
        is_api_listing: fn(&Method, &str) -> bool,
        render_error: fn(StatusCode, &str) -> Response,
    ) -> Self {
        Self {
            faults,
            is_api_listing,
            render_error,
        }
    }
}

impl std::fmt::Debug for FaultCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultCtx")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// Axum middleware injecting request-level faults.
///
/// Order: latency, then `--api-403` on API listings, then a 429 with
/// probability `fail_429`, then a 5xx with probability `fail_5xx`;
/// otherwise the request proceeds to `next`. Use with
/// `axum::middleware::from_fn_with_state(ctx, inject)`.
pub async fn inject(State(ctx): State<FaultCtx>, req: Request, next: Next) -> Response {
    let faults = &ctx.faults;
    let config = faults.config();
    if let Some(latency) = config.latency {
        tokio::time::sleep(latency).await;
    }

    // Behind `Router::nest` the URI is stripped; the original one is what
    // the flavor's route rules are written against.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |uri| uri.path());
    let method = req.method();

    if config.api_403 && (ctx.is_api_listing)(method, path) {
        faults.injected_403.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path, kind = "api-403", "injected fault");
        return (ctx.render_error)(
            StatusCode::FORBIDDEN,
            "Access to this resource is forbidden (hubsim --api-403)",
        );
    }

    if faults.roll(config.fail_429) {
        faults.injected_429.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path, kind = "429", "injected fault");
        let mut response = (ctx.render_error)(StatusCode::TOO_MANY_REQUESTS, "Too many requests (hubsim --fail-429)");
        add_rate_limit_headers(&mut response, config.retry_after_secs);
        return response;
    }

    if faults.roll(config.fail_5xx) {
        // 503 is what overloaded hubs send most; keep it the common case.
        let status = match faults.below(4) {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::BAD_GATEWAY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        faults.injected_5xx.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path, kind = status.as_str(), "injected fault");
        return (ctx.render_error)(status, "Server error (hubsim --fail-5xx)");
    }

    next.run(req).await
}

/// Adds `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` headers
/// the Hugging Face hub sends with its 429s, which clients parse for the
/// back-off time.
fn add_rate_limit_headers(response: &mut Response, secs: u64) {
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    // Both values are ASCII built from a number, so they always parse.
    if let Ok(value) = HeaderValue::from_str(&format!("\"api\";r=0;t={secs}")) {
        headers.insert(HeaderName::from_static("ratelimit"), value);
    }
    headers.insert(
        HeaderName::from_static("ratelimit-policy"),
        HeaderValue::from_static("\"fixed window\";\"api\";q=1000;w=300"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn is_listing(method: &Method, path: &str) -> bool {
        method == Method::GET && path.starts_with("/api/")
    }

    fn render(status: StatusCode, message: &str) -> Response {
        (status, format!("ERR {message}")).into_response()
    }

    /// Serves a tiny router behind `inject` and returns its address.
    async fn serve(faults: Arc<Faults>) -> std::net::SocketAddr {
        let ctx = FaultCtx::new(faults, is_listing, render);
        let app = Router::new()
            .route("/api/models", get(|| async { "listing" }))
            .route("/repo/file", get(|| async { "content" }))
            .layer(axum::middleware::from_fn_with_state(ctx, inject));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// Minimal HTTP/1.1 GET; returns the raw response text.
    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.expect("read");
        out
    }

    fn status_of(raw: &str) -> u16 {
        raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    #[test]
    fn roll_respects_extremes_and_probability() {
        let faults = Faults::with_seed(FaultConfig::default(), 42);
        assert!(!faults.roll(0.0));
        assert!(!faults.roll(-1.0));
        assert!(!faults.roll(f64::NAN));
        assert!(faults.roll(1.0));
        assert!(faults.roll(7.0));
        let hits = (0..10_000).filter(|_| faults.roll(0.25)).count();
        assert!((2_200..=2_800).contains(&hits), "hits = {hits}");
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let faults = Faults::new(FaultConfig::default());
        assert_eq!(faults.below(0), 0);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let v = faults.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[tokio::test]
    async fn no_faults_pass_through() {
        let faults = Arc::new(Faults::new(FaultConfig::default()));
        let addr = serve(faults.clone()).await;
        let raw = get_raw(addr, "/api/models").await;
        assert_eq!(status_of(&raw), 200);
        assert!(raw.ends_with("listing"));
        assert_eq!(faults.stats(), FaultStats::default());
    }

    #[tokio::test]
    async fn api_403_refuses_listings_only() {
        let faults = Arc::new(Faults::new(FaultConfig {
            api_403: true,
            ..FaultConfig::default()
        }));
        let addr = serve(faults.clone()).await;
        let raw = get_raw(addr, "/api/models").await;
        assert_eq!(status_of(&raw), 403);
        assert!(raw.contains("ERR Access to this resource is forbidden"));
        let raw = get_raw(addr, "/repo/file").await;
        assert_eq!(status_of(&raw), 200);
        assert_eq!(faults.stats().injected_403, 1);
    }

    #[tokio::test]
    async fn fail_429_sets_rate_limit_headers() {
        let faults = Arc::new(Faults::new(FaultConfig {
            fail_429: 1.0,
            fail_5xx: 1.0,
            retry_after_secs: 7,
            ..FaultConfig::default()
        }));
        let addr = serve(faults.clone()).await;
        let raw = get_raw(addr, "/repo/file").await.to_ascii_lowercase();
        assert_eq!(status_of(&raw), 429);
        assert!(raw.contains("\r\nretry-after: 7\r\n"), "{raw}");
        assert!(raw.contains("\r\nratelimit: \"api\";r=0;t=7\r\n"), "{raw}");
        assert!(raw.contains("\r\nratelimit-policy: \"fixed window\";\"api\";q=1000;w=300\r\n"));
        // 429 wins over 5xx when both fire.
        let stats = faults.stats();
        assert_eq!((stats.injected_429, stats.injected_5xx), (1, 0));
    }

    #[tokio::test]
    async fn fail_5xx_answers_server_errors() {
        let faults = Arc::new(Faults::new(FaultConfig {
            fail_5xx: 1.0,
            ..FaultConfig::default()
        }));
        let addr = serve(faults.clone()).await;
        for _ in 0..20 {
            let raw = get_raw(addr, "/repo/file").await;
            assert!([500, 502, 503].contains(&status_of(&raw)), "{raw}");
            assert!(raw.contains("ERR Server error"));
        }
        assert_eq!(faults.stats().injected_5xx, 20);
    }

    #[tokio::test]
    async fn latency_delays_each_request() {
        let faults = Arc::new(Faults::new(FaultConfig {
            latency: Some(Duration::from_millis(200)),
            ..FaultConfig::default()
        }));
        let addr = serve(faults).await;
        let start = std::time::Instant::now();
        let raw = get_raw(addr, "/repo/file").await;
        assert_eq!(status_of(&raw), 200);
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
