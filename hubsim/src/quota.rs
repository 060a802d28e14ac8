//! The Hugging Face Hub's request quotas (docs/hub/rate-limits.md): three buckets, **api**,
//! **resolvers** (every URL with a `/resolve/` segment) and **pages**, each counted per user
//! (anonymous callers per IP address) over fixed windows of 5 minutes, with the quotas of the
//! caller's plan. Every answer carries the IETF draft-09 headers the Hub sends,
//! `RateLimit: "api";r=<remaining>;t=<seconds to reset>` and
//! `RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window>`; over the quota the answer is
//! 429 with the same headers (`r=0`) and `Retry-After: t`, and nothing is done.
//!
//! Windows are aligned to the clock (multiples of the window since the epoch), as a fixed window
//! is: every caller's window ends at the same instant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::Hub;
use crate::stats::Peer;

/// A request bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Api,
    Resolvers,
    Pages,
}

impl Bucket {
    /// The name in the `RateLimit` headers.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Api => "api",
            Bucket::Resolvers => "resolvers",
            Bucket::Pages => "pages",
        }
    }
}

/// A plan's quotas per window: (api, resolvers, pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    Free,
    Pro,
    Team,
    Enterprise,
}

impl Tier {
    /// The Hub's quotas per 5 minutes (rate-limits.md, September 2025).
    pub fn quotas(self) -> [u64; 3] {
        match self {
            Tier::Free => [1_000, 5_000, 200],
            Tier::Pro => [2_500, 12_000, 400],
            Tier::Team => [3_000, 20_000, 400],
            Tier::Enterprise => [6_000, 50_000, 600],
        }
    }
}

/// Anonymous callers' quotas per IP address (api, resolvers, pages).
pub const ANONYMOUS: [u64; 3] = [500, 3_000, 100];

/// The quotas a hub enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    /// Per user and window: api, resolvers, pages.
    pub users: [u64; 3],
    /// Per anonymous IP address and window.
    pub anonymous: [u64; 3],
    /// The fixed window (the Hub's: 5 minutes).
    pub window: Duration,
}

impl QuotaConfig {
    /// The quotas of `tier` over the Hub's 5-minute windows.
    pub fn tier(tier: Tier) -> Self {
        QuotaConfig {
            users: tier.quotas(),
            anonymous: ANONYMOUS,
            window: Duration::from_secs(300),
        }
    }

    fn quota(&self, anonymous: bool, bucket: Bucket) -> u64 {
        let q = if anonymous { &self.anonymous } else { &self.users };
        q[bucket as usize]
    }
}

/// What one request was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub bucket: Bucket,
    pub allowed: bool,
    /// Requests left in the window after this one.
    pub remaining: u64,
    /// Whole seconds until the window resets (at least 1).
    pub reset_secs: u64,
    pub quota: u64,
    pub window_secs: u64,
}

impl Verdict {
    /// Adds `RateLimit` and `RateLimit-Policy` (and `Retry-After` when refused).
    pub fn headers(&self, response: &mut Response) {
        let h = response.headers_mut();
        let b = self.bucket.name();
        let limit = format!("\"{b}\";r={};t={}", self.remaining, self.reset_secs);
        let policy = format!("\"fixed window\";\"{b}\";q={};w={}", self.quota, self.window_secs);
        for (name, value) in [("ratelimit", limit), ("ratelimit-policy", policy)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        }
        if !self.allowed {
            h.insert(RETRY_AFTER, HeaderValue::from(self.reset_secs));
        }
    }
}

/// The counters: per (caller, bucket), the window index and the requests counted in it.
#[derive(Debug)]
pub struct Quotas {
    cfg: QuotaConfig,
    counts: Mutex<HashMap<(String, Bucket), (u64, u64)>>,
}

impl Quotas {
    pub fn new(cfg: QuotaConfig) -> Self {
        Quotas {
            cfg,
            counts: Mutex::default(),
        }
    }

    /// Counts a request of `caller` (a user name, or `ip:ADDR` for anonymous callers) in
    /// `bucket`; a refused request is not counted.
    pub fn admit(&self, caller: &str, anonymous: bool, bucket: Bucket) -> Verdict {
        self.admit_at(caller, anonymous, bucket, SystemTime::now())
    }

    fn admit_at(&self, caller: &str, anonymous: bool, bucket: Bucket, now: SystemTime) -> Verdict {
        let window_ms = (self.cfg.window.as_millis() as u64).max(1000);
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let index = now_ms / window_ms;
        let reset_secs = ((index + 1) * window_ms - now_ms).div_ceil(1000).max(1);
        let quota = self.cfg.quota(anonymous, bucket);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let slot = counts.entry((caller.to_string(), bucket)).or_insert((index, 0));
        if slot.0 != index {
            *slot = (index, 0);
        }
        let allowed = slot.1 < quota;
        if allowed {
            slot.1 += 1;
        }
        Verdict {
            bucket,
            allowed,
            remaining: quota.saturating_sub(slot.1),
            reset_secs,
            quota,
            window_secs: window_ms / 1000,
        }
    }
}

/// State of [`enforce`]: the hub (its users and quotas) and the flavor's rules.
#[derive(Clone)]
pub struct QuotaCtx {
    pub hub: Arc<Hub>,
    pub quotas: Arc<Quotas>,
    /// The bucket a request (method, raw path) counts in; `None`: not counted.
    pub bucket_of: fn(&Method, &str) -> Option<Bucket>,
    /// Renders an error in the flavor's shape.
    pub render_error: fn(StatusCode, &str) -> Response,
}

/// Axum middleware: counts each request in its bucket, refuses it with 429 over the quota, and
/// adds the `RateLimit` headers to every answer.
pub async fn enforce(State(ctx): State<QuotaCtx>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |uri| uri.path());
    let Some(bucket) = (ctx.bucket_of)(req.method(), path) else {
        return next.run(req).await;
    };
    let token = crate::http::token(req.headers(), false);
    let user = token
        .as_deref()
        .and_then(|t| ctx.hub.users.caller(Some(t)).principal().map(|p| p.name.clone()));
    let (caller, anonymous) = match user {
        Some(name) => (name, false),
        None => {
            let ip = req
                .extensions()
                .get::<ConnectInfo<Peer>>()
                .map(|c| c.0.0.ip().to_string());
            (format!("ip:{}", ip.unwrap_or_default()), true)
        }
    };
    let verdict = ctx.quotas.admit(&caller, anonymous, bucket);
    ctx.hub.stats.bucket(bucket as usize, verdict.allowed);
    if !verdict.allowed {
        tracing::debug!(%caller, bucket = bucket.name(), "quota exceeded");
        let mut response = (ctx.render_error)(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "You have exceeded our rate limit for \"{}\" requests ({} per {} seconds). Retry after {} seconds.",
                bucket.name(),
                verdict.quota,
                verdict.window_secs,
                verdict.reset_secs
            ),
        );
        verdict.headers(&mut response);
        return response;
    }
    let mut response = next.run(req).await;
    verdict.headers(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_fixed_window_counts_per_caller_and_bucket_and_resets_on_the_clock() {
        let q = Quotas::new(QuotaConfig {
            users: [2, 3, 1],
            anonymous: [1, 1, 1],
            window: Duration::from_secs(10),
        });
        // 4.5 s into a window: 5.5 s left, said as 6.
        let v = q.admit_at("alice", false, Bucket::Api, at(1_004_500));
        assert_eq!(
            (v.allowed, v.remaining, v.reset_secs, v.quota, v.window_secs),
            (true, 1, 6, 2, 10)
        );
        assert!(q.admit_at("alice", false, Bucket::Api, at(1_005_000)).allowed);
        let refused = q.admit_at("alice", false, Bucket::Api, at(1_009_200));
        assert_eq!((refused.allowed, refused.remaining, refused.reset_secs), (false, 0, 1));
        // Other buckets and other callers have their own counts.
        assert!(q.admit_at("alice", false, Bucket::Resolvers, at(1_009_300)).allowed);
        assert!(q.admit_at("bob", false, Bucket::Api, at(1_009_300)).allowed);
        assert!(q.admit_at("ip:127.0.0.1", true, Bucket::Api, at(1_009_300)).allowed);
        assert!(!q.admit_at("ip:127.0.0.1", true, Bucket::Api, at(1_009_400)).allowed);
        // The next window starts from zero.
        let next = q.admit_at("alice", false, Bucket::Api, at(1_010_000));
        assert_eq!((next.allowed, next.remaining, next.reset_secs), (true, 1, 10));
    }

    #[test]
    fn headers_are_the_hubs() {
        let v = Verdict {
            bucket: Bucket::Resolvers,
            allowed: false,
            remaining: 0,
            reset_secs: 172,
            quota: 5000,
            window_secs: 300,
        };
        let mut r = Response::new(axum::body::Body::empty());
        v.headers(&mut r);
        let h = r.headers();
        assert_eq!(h["ratelimit"], "\"resolvers\";r=0;t=172");
        assert_eq!(h["ratelimit-policy"], "\"fixed window\";\"resolvers\";q=5000;w=300");
        assert_eq!(h["retry-after"], "172");
    }
}
