//! The hubs' request quotas as they announce them, and how this process keeps inside them.
//!
//! The Hugging Face Hub counts requests per user in buckets (`api`, `resolvers` for every URL
//! with a `/resolve/` segment, `pages`) over fixed windows, and says where a caller stands on
//! every answer with the IETF draft header `RateLimit: "api";r=<remaining>;t=<seconds to reset>`
//! (docs/hubsim.md lists the figures). A [`Pacer`] reads those headers; once this process's share
//! of what remains runs low, it spaces its requests so that the rest lasts until the window
//! resets: a short job never waits, a long one spends each window's quota without a 429. Several processes share one
//! user's quota (the coordinator and its workers): each is told its share (1/N of the workers
//! running at once) by the coordinator.
//!
//! Waits the hub asks for (`Retry-After`, or `t` of a 429's `RateLimit`) are honoured up to the
//! process's [`max_wait`] (the `--max-wait` option, 2 hours by default) and announced with a
//! line a person can read ("hub quota: waiting 41 min for commits; resumes at 19:42 UTC") and a
//! countdown; a longer one stops the operation with an error saying so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// What the hub said of one bucket: requests left in the window and seconds until it resets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub bucket: String,
    pub remaining: u64,
    pub reset: Duration,
}

/// Parses a `RateLimit` header value: comma-separated items `"name";r=N;t=S` (draft-09; a bare
/// token name is taken too). An item that does not parse is left out with a debug line; nothing
/// here fails.
pub fn parse(value: &str) -> Vec<Standing> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").trim_matches('"');
        let (mut r, mut t) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some(("r", v)) => r = v.trim().parse::<u64>().ok(),
                Some(("t", v)) => t = v.trim().parse::<u64>().ok(),
                _ => {}
            }
        }
        match (name.is_empty(), r, t) {
            (false, Some(remaining), Some(t)) => out.push(Standing {
                bucket: name.to_string(),
                remaining,
                reset: Duration::from_secs(t),
            }),
            _ => tracing::debug!(item, "a RateLimit item that does not parse; ignored"),
        }
    }
    out
}

/// The bucket a request to `url` counts in on the Hugging Face Hub: `resolvers` for a path with a
/// `resolve` segment, `api` for everything else this client sends.
pub fn bucket_of(url: &reqwest::Url) -> &'static str {
    if url.path_segments().is_some_and(|mut s| s.any(|seg| seg == "resolve")) {
        "resolvers"
    } else {
        "api"
    }
}

/// The part of what remains this process allows itself to spend before the reset: a margin for
/// the other processes' requests already in flight.
const SPEND: f64 = 0.9;
/// Requests go at once while this process's share of what remains is above this part of its
/// share of the bucket's quota; below it they are spaced out until the reset. A short job never
/// waits, a long one spends the window's quota and then trickles until the next.
const LOW_WATER: f64 = 0.2;

/// One bucket's last known standing, the most it was seen to hold (its quota, near enough), and
/// the next free slot of this process.
#[derive(Debug)]
struct Bucket {
    remaining: u64,
    most: u64,
    reset_at: Instant,
    next: Instant,
}

/// Spaces requests by the `RateLimit` headers of one hub's answers (see the module's text).
#[derive(Debug)]
pub struct Pacer {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl Pacer {
    /// Takes note of an answer's `RateLimit` header.
    pub fn observe(&self, headers: &HeaderMap) {
        let Some(v) = headers.get("ratelimit").and_then(|v| v.to_str().ok()) else {
            return;
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for s in parse(v) {
            let reset_at = now + s.reset;
            let b = buckets.entry(s.bucket).or_insert(Bucket {
                remaining: s.remaining,
                most: s.remaining,
                reset_at,
                next: now,
            });
            b.remaining = s.remaining;
            b.most = b.most.max(s.remaining);
            b.reset_at = reset_at;
        }
    }

    /// How long a request to `url` should wait before it is sent, and takes its slot: nothing
    /// while the bucket is unknown, its window over, or this process's share of what remains
    /// above the low-water mark; until the reset when nothing of its share remains; otherwise
    /// the window's time left spread evenly over its share of what remains.
    pub fn slot(&self, url: &reqwest::Url) -> Duration {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = buckets.get_mut(bucket_of(url)) else {
            return Duration::ZERO;
        };
        if b.reset_at <= now {
            return Duration::ZERO;
        }
        let share = f64::from(share());
        let mine = b.remaining as f64 * SPEND / share;
        b.remaining = b.remaining.saturating_sub(1);
        if mine < 1.0 {
            // Nothing of this process's share left: wait for the window to turn over (a little
            // after it, so the first request lands in the new window).
            let wait = b.reset_at - now + Duration::from_millis(250);
            b.next = b.next.max(now + wait);
            return wait;
        }
        if mine >= b.most as f64 * LOW_WATER / share {
            return Duration::ZERO;
        }
        let start = b.next.max(now);
        b.next = start + b.reset_at.saturating_duration_since(start).div_f64(mine);
        start - now
    }

    /// Waits for a request to `url`'s slot ([`Pacer::slot`]), announcing a long wait.
    pub async fn pace(&self, url: &reqwest::Url) {
        let wait = self.slot(url);
        if !wait.is_zero() {
            wait_visibly(&format!("{} requests", bucket_of(url)), wait).await;
        }
    }
}

/// This process's share of a user's quota is 1 / this (the workers running at once).
static SHARE: AtomicU32 = AtomicU32::new(1);
/// The longest wait honoured, in seconds.
static MAX_WAIT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_WAIT.as_secs());

/// `--max-wait`'s default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2 * 3600);

/// Sets how many processes share the user's quotas with this one (itself included).
pub fn set_share(processes: u32) {
    SHARE.store(processes.max(1), Ordering::Relaxed);
}

fn share() -> u32 {
    SHARE.load(Ordering::Relaxed).max(1)
}

/// Sets the longest wait for a hub's quota this process honours (`--max-wait`).
pub fn set_max_wait(d: Duration) {
    MAX_WAIT.store(d.as_secs(), Ordering::Relaxed);
}

/// The longest wait for a hub's quota this process honours.
pub fn max_wait() -> Duration {
    Duration::from_secs(MAX_WAIT.load(Ordering::Relaxed))
}

/// Waits shorter than this pass without a line.
const QUIET: Duration = Duration::from_secs(10);

/// Sleeps `wait` for `what` (e.g. "commits"); a wait of 10 s or more is announced with when it
/// ends, and a countdown line follows every minute.
pub async fn wait_visibly(what: &str, wait: Duration) {
    if wait < QUIET {
        tokio::time::sleep(wait).await;
        return;
    }
    tracing::warn!(
        "hub quota: waiting {} for {what}; resumes at {}",
        human(wait),
        clock_after(wait)
    );
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let step = left.min(Duration::from_secs(60));
        tokio::time::sleep(step).await;
        let left = end.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            tracing::warn!("hub quota: {} left to wait for {what}", human(left));
        }
    }
}

/// "41 min", "1 h 05 min", "45 s".
pub fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    match s {
        0..=89 => format!("{s} s"),
        90..=3599 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600).div_ceil(60).min(59)),
    }
}

/// The UTC wall-clock time `d` from now, as HH:MM UTC.
fn clock_after(d: Duration) -> String {
    let at = SystemTime::now()
        .checked_add(d)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |t| t.as_secs());
    format!("{:02}:{:02} UTC", at / 3600 % 24, at / 60 % 60)
}

/// What a 429 asks to wait: `Retry-After`, else the `t` of its `RateLimit` header.
pub fn requested_wait(headers: &HeaderMap, retry_after: Option<Duration>) -> Option<Duration> {
    retry_after.or_else(|| {
        let v = headers.get("ratelimit")?.to_str().ok()?;
        parse(v).into_iter().map(|s| s.reset).max()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_are_ignored() {
        assert_eq!(
            parse(r#""api";r=12;t=34"#),
            vec![Standing {
                bucket: "api".into(),
                remaining: 12,
                reset: Duration::from_secs(34)
            }]
        );
        let two = parse(r#""api";r=0;t=5, "resolvers";r=4999;t=300"#);
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].bucket, "resolvers");
        assert_eq!(two[1].remaining, 4999);
        for bad in ["", "api", r#""api";r=x;t=1"#, r#""api";t=1"#, ";r=1;t=1", "\u{0}"] {
            assert!(parse(bad).is_empty(), "{bad:?}");
        }
        // One bad item does not spoil a good one.
        assert_eq!(parse(r#"junk, "api";r=1;t=2"#).len(), 1);
    }

    #[test]
    fn resolve_urls_count_as_resolvers() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(bucket_of(&u("https://hf.co/o/n/resolve/main/a.bin")), "resolvers");
        assert_eq!(bucket_of(&u("https://hf.co/datasets/o/n/resolve/abc/x/y")), "resolvers");
        assert_eq!(bucket_of(&u("https://hf.co/api/models/o/n/tree/main")), "api");
        assert_eq!(bucket_of(&u("https://hf.co/api/models/o/resolver/tree")), "api");
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("ratelimit", v.parse().unwrap());
        h
    }

    #[test]
    fn requests_spread_over_what_remains() {
        let p = Pacer::default();
        let url = reqwest::Url::parse("http://hub/api/x").unwrap();
        assert!(p.slot(&url).is_zero(), "nothing known: no wait");
        // Plenty left: no wait, however many go.
        p.observe(&headers(r#""api";r=100;t=9"#));
        assert!((0..50).all(|_| p.slot(&url).is_zero()));
        // 10 requests left of about 100 for 9 s (9 of them ours to spend): one slot a second.
        p.observe(&headers(r#""api";r=10;t=9"#));
        let slots: Vec<Duration> = (0..4).map(|_| p.slot(&url)).collect();
        assert!(slots[0].is_zero());
        for (k, s) in slots.iter().enumerate().skip(1) {
            let want = k as f64;
            assert!((s.as_secs_f64() - want).abs() < 0.15, "slot {k}: {s:?}");
        }
        // Other buckets are not held up.
        let resolve = reqwest::Url::parse("http://hub/o/n/resolve/main/f").unwrap();
        assert!(p.slot(&resolve).is_zero());
        // Nothing left: wait for the reset.
        p.observe(&headers(r#""resolvers";r=0;t=3"#));
        let w = p.slot(&resolve);
        assert!(w >= Duration::from_secs(3) && w < Duration::from_secs(4), "{w:?}");
    }

    #[test]
    fn a_429_asks_for_retry_after_or_the_reset() {
        let h = headers(r#""api";r=0;t=41"#);
        assert_eq!(requested_wait(&h, None), Some(Duration::from_secs(41)));
        assert_eq!(
            requested_wait(&h, Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(requested_wait(&HeaderMap::new(), None), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_secs(41 * 60)), "41 min");
        assert_eq!(human(Duration::from_secs(3600 + 5 * 60)), "1 h 05 min");
    }
}
