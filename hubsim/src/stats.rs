//! What a running hub did since it started, for tests and benchmarks that must tell whether a
//! client retried, re-sent parts or committed: `GET /_hubsim/stats` answers JSON counters (see
//! docs/hubsim.md for the shape), to loopback peers only.
//!
//! The counting is one layer, [`count`], around every router of a hub: it classifies each
//! request with the flavor's own router ([`RouteClass`]), counts the answer's status, and wraps
//! both bodies so the bytes are counted as they actually stream. Counters are plain atomics laid
//! out in fixed arrays, so a request costs a few relaxed increments and no lookups. Refusals
//! that only the handlers can see (an expired URL, the commit limit) are counted where they are
//! decided, with [`Stats::note`]; injected faults are counted by `faults/` itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::body::{Body, HttpBody};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use futures_util::TryStreamExt;
use serde_json::{Map, Value, json};

use crate::faults::{Faults, ThrottledListener};

/// The path of the stats endpoint, on every flavor and on the CDN origin.
pub const STATS_PATH: &str = "/_hubsim/stats";

/// What kind of work a request is, as the flavor's router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// File downloads from the hub origin (HF `/resolve`, ModelScope `/repo?FilePath=`).
    Resolve,
    /// Presigned object downloads from the CDN origin.
    Download,
    /// The LFS batch API.
    LfsBatch,
    /// LFS verify callbacks.
    LfsVerify,
    /// Presigned single-PUT object uploads.
    Upload,
    /// Presigned multipart part uploads.
    Part,
    /// Multipart completions.
    Complete,
    /// Commit API calls (HF NDJSON commits, ModelScope commits).
    Commit,
    /// Git smart HTTP other than pushes (ref advertisements, fetches).
    Git,
    /// `git-receive-pack` exchanges (pushes).
    GitPush,
    /// Every other route the flavor knows.
    Api,
    /// Paths and methods no route matches.
    Unknown,
}

impl RouteClass {
    /// Every class, in the order the stats list them.
    pub const ALL: [RouteClass; 12] = [
        RouteClass::Resolve,
        RouteClass::Download,
        RouteClass::LfsBatch,
        RouteClass::LfsVerify,
        RouteClass::Upload,
        RouteClass::Part,
        RouteClass::Complete,
        RouteClass::Commit,
        RouteClass::Git,
        RouteClass::GitPush,
        RouteClass::Api,
        RouteClass::Unknown,
    ];

    /// The key of the class in the stats JSON.
    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Resolve => "resolve",
            RouteClass::Download => "download",
            RouteClass::LfsBatch => "lfs_batch",
            RouteClass::LfsVerify => "lfs_verify",
            RouteClass::Upload => "upload",
            RouteClass::Part => "part",
            RouteClass::Complete => "complete",
            RouteClass::Commit => "commit",
            RouteClass::Git => "git",
            RouteClass::GitPush => "git_push",
            RouteClass::Api => "api",
            RouteClass::Unknown => "unknown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Refusals and throttles decided inside handlers, counted where they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A presigned URL used after its expiry (`--url-ttl`).
    ExpiredUrl,
    /// A presigned URL whose signature does not match.
    BadSignature,
    /// A commit refused by the per-repo commit limit (`--commit-limit`).
    CommitThrottle,
    /// An object upload refused by the proxy body limit (`--proxy-max-body`).
    Proxy413,
}

const CLASSES: usize = RouteClass::ALL.len();
/// Status slots per class: 100 to 599 (anything above shares the last slot).
const STATUSES: usize = 500;

/// The counters of one hub. Shared by the layer and the handlers (through `Hub::stats`).
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// `CLASSES * STATUSES` counters: requests by class and status.
    statuses: Box<[AtomicU64]>,
    /// Request body bytes read, by class.
    received: [AtomicU64; CLASSES],
    /// Response body bytes streamed, by class.
    sent: [AtomicU64; CLASSES],
    /// Indexed by [`Event`].
    events: [AtomicU64; 4],
    /// Requests counted in each quota bucket (api, resolvers, pages): admitted, refused.
    buckets: [[AtomicU64; 2]; 3],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            statuses: (0..CLASSES * STATUSES).map(|_| AtomicU64::new(0)).collect(),
            received: Default::default(),
            sent: Default::default(),
            events: Default::default(),
            buckets: Default::default(),
        }
    }
}

impl Stats {
    /// Counts a request in quota bucket `bucket` (0 api, 1 resolvers, 2 pages), admitted or not.
    pub fn bucket(&self, bucket: usize, admitted: bool) {
        if let Some(b) = self.buckets.get(bucket) {
            b[usize::from(!admitted)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one handler-side refusal.
    pub fn note(&self, event: Event) {
        self.events[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn status_slot(&self, class: RouteClass, status: StatusCode) -> &AtomicU64 {
        let code = usize::from(status.as_u16()).clamp(100, 100 + STATUSES - 1);
        &self.statuses[class.index() * STATUSES + code - 100]
    }

    /// Counts one answered request.
    fn record(&self, class: RouteClass, status: StatusCode) {
        self.status_slot(class, status).fetch_add(1, Ordering::Relaxed);
    }

    fn requests(&self, class: RouteClass, ok: impl Fn(u16) -> bool) -> u64 {
        (0..STATUSES)
            .filter(|i| ok(100 + *i as u16))
            .map(|i| self.statuses[class.index() * STATUSES + i].load(Ordering::Relaxed))
            .sum()
    }

    /// The counters as the endpoint answers them, with the fault counters of `faults`.
    pub fn snapshot(&self, faults: &Faults) -> Value {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut requests = Map::new();
        let mut by_route = Map::new();
        for class in RouteClass::ALL {
            let mut codes = Map::new();
            for i in 0..STATUSES {
                let n = load(&self.statuses[class.index() * STATUSES + i]);
                if n > 0 {
                    codes.insert((100 + i).to_string(), json!(n));
                }
            }
            requests.insert(class.name().into(), Value::Object(codes));
            by_route.insert(
                class.name().into(),
                json!({"received": load(&self.received[class.index()]), "sent": load(&self.sent[class.index()])}),
            );
        }
        let event = |e: Event| load(&self.events[e as usize]);
        let f = faults.stats();
        let success = |code: u16| (200..300).contains(&code);
        let quota: Map<String, Value> = ["api", "resolvers", "pages"]
            .iter()
            .zip(&self.buckets)
            .map(|(name, b)| {
                let counts = json!({"admitted": load(&b[0]), "refused": load(&b[1])});
                ((*name).to_string(), counts)
            })
            .collect();
        json!({
            "uptime_secs": self.started.elapsed().as_secs(),
            "requests": requests,
            "bytes": {
                "received": self.received.iter().map(load).sum::<u64>(),
                "sent": self.sent.iter().map(load).sum::<u64>(),
            },
            "bytes_by_route": by_route,
            "faults": {
                "api_403": f.injected_403,
                "429": f.injected_429,
                "5xx": f.injected_5xx,
                "truncated": f.truncated,
                "corrupted": f.corrupted,
                "commit_throttle": event(Event::CommitThrottle),
                "proxy_413": event(Event::Proxy413),
            },
            "refused": {
                "expired_url": event(Event::ExpiredUrl),
                "bad_signature": event(Event::BadSignature),
            },
            "quota": quota,
            "commits": self.requests(RouteClass::Commit, success) + self.requests(RouteClass::GitPush, |c| c == 200),
            "multipart": {
                "parts": self.requests(RouteClass::Part, success),
                "part_bytes": load(&self.received[RouteClass::Part.index()]),
                "completed": self.requests(RouteClass::Complete, success),
            },
        })
    }
}

/// The peer address of a connection, for the loopback check of the stats endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, ThrottledListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ThrottledListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// True for loopback peers (IPv4, IPv6 and IPv4-mapped IPv6); false when unknown.
pub fn is_loopback(peer: Option<&Peer>) -> bool {
    peer.is_some_and(|Peer(addr)| match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    })
}

/// State of [`count`]: the counters, the faults whose counters the endpoint reports, and the
/// router's classifier (a flavor's `route_class`, or the CDN's).
#[derive(Clone)]
pub struct StatsCtx {
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
    pub classify: fn(&Method, &str) -> RouteClass,
}

#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

/// Wraps `body` so its bytes are counted as they pass; bodies known to be empty stay as they are.
fn counted(body: Body, stats: &Arc<Stats>, class: RouteClass, dir: Direction) -> Body {
    if body.is_end_stream() {
        return body;
    }
    let stats = stats.clone();
    Body::from_stream(body.into_data_stream().inspect_ok(move |chunk| {
        let counters = match dir {
            Direction::In => &stats.received,
            Direction::Out => &stats.sent,
        };
        counters[class.index()].fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }))
}

/// Axum middleware: answers [`STATS_PATH`] itself (uncounted) and counts everything else.
/// Install it outside the fault layer, so injected faults are counted as answers too.
pub async fn count(State(ctx): State<StatsCtx>, req: Request, next: Next) -> Response {
    if req.uri().path() == STATS_PATH {
        return answer(&ctx, &req);
    }
    let class = (ctx.classify)(req.method(), req.uri().path());
    let req = req.map(|b| counted(b, &ctx.stats, class, Direction::In));
    let resp = next.run(req).await;
    ctx.stats.record(class, resp.status());
    resp.map(|b| counted(b, &ctx.stats, class, Direction::Out))
}

fn answer(ctx: &StatsCtx, req: &Request) -> Response {
    if !is_loopback(req.extensions().get::<ConnectInfo<Peer>>().map(|c| &c.0)) {
        return (
            StatusCode::FORBIDDEN,
            "hubsim stats are served to loopback peers only\n",
        )
            .into_response();
    }
    if req.method() != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET only\n").into_response();
    }
    Json(ctx.stats.snapshot(&ctx.faults)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultConfig;

    #[test]
    fn loopback_peers_only() {
        let peer = |s: &str| Peer(s.parse().unwrap());
        assert!(is_loopback(Some(&peer("127.0.0.1:5"))));
        assert!(is_loopback(Some(&peer("127.8.9.1:5"))));
        assert!(is_loopback(Some(&peer("[::1]:5"))));
        assert!(is_loopback(Some(&peer("[::ffff:127.0.0.1]:5"))));
        assert!(!is_loopback(Some(&peer("10.0.0.7:5"))));
        assert!(!is_loopback(Some(&peer("[::ffff:10.0.0.7]:5"))));
        assert!(!is_loopback(Some(&peer("[2001:db8::1]:5"))));
        assert!(!is_loopback(None), "unknown peers are refused");
    }

    #[test]
    fn snapshot_groups_by_class_and_status() {
        let stats = Stats::default();
        stats.record(RouteClass::Resolve, StatusCode::OK);
        stats.record(RouteClass::Resolve, StatusCode::OK);
        stats.record(RouteClass::Resolve, StatusCode::PARTIAL_CONTENT);
        stats.record(RouteClass::Part, StatusCode::OK);
        stats.record(RouteClass::Part, StatusCode::BAD_REQUEST);
        stats.record(RouteClass::Commit, StatusCode::OK);
        stats.record(RouteClass::GitPush, StatusCode::OK);
        stats.received[RouteClass::Part.index()].fetch_add(10, Ordering::Relaxed);
        stats.sent[RouteClass::Resolve.index()].fetch_add(7, Ordering::Relaxed);
        stats.note(Event::ExpiredUrl);
        stats.note(Event::CommitThrottle);
        let v = stats.snapshot(&Faults::new(FaultConfig::default()));
        assert_eq!(v["requests"]["resolve"], json!({"200": 2, "206": 1}));
        assert_eq!(v["requests"]["api"], json!({}));
        assert_eq!(v["bytes"], json!({"received": 10, "sent": 7}));
        assert_eq!(v["bytes_by_route"]["part"], json!({"received": 10, "sent": 0}));
        assert_eq!(v["refused"], json!({"expired_url": 1, "bad_signature": 0}));
        assert_eq!(v["faults"]["commit_throttle"], 1);
        assert_eq!(v["faults"]["5xx"], 0);
        assert_eq!(v["commits"], 2);
        assert_eq!(v["multipart"], json!({"parts": 1, "part_bytes": 10, "completed": 0}));
    }
}
