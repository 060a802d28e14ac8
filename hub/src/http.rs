//! The HTTP client every hub client shares: timeouts, a user agent, and one retry policy.
//! Retries are bounded, back off exponentially with jitter, honour `Retry-After`, and only ever
//! resend requests whose body can be rebuilt (the caller passes a builder, not a request).

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};

use crate::error::{Error, Result};

/// How many times and how patiently to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Runs `op` (given the attempt number, from 1) up to `attempts` times while it fails with a
/// retryable error, pausing as [`RetryPolicy::delay`] says between attempts. For operations a
/// request-level retry cannot repeat on its own (a streamed upload, a whole file).
pub async fn with_retries<T, F, Fut>(what: &str, attempts: u32, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let policy = RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < attempts => {
                tracing::warn!(what, attempt, error = %e, "retrying");
                policy.pause(what, attempt, e).await?;
            }
            Err(e) => return Err(e.after_attempts(attempt)),
        }
    }
}

impl RetryPolicy {
    /// Waits before retry number `n` after `err` ([`RetryPolicy::delay`], announced when long),
    /// or gives `err` back as [`Error::QuotaWait`] when the hub asked for longer than
    /// [`crate::quota::max_wait`]: the one place every retry loop pauses.
    pub async fn pause(&self, what: &str, n: u32, err: Error) -> Result<()> {
        let err = err.within_max_wait(what)?;
        crate::quota::wait_visibly(what, self.delay(n, err.retry_after())).await;
        Ok(())
    }

    /// The pause before retry number `n` (1-based): exponential with full jitter, or the wait
    /// the server asked for (at most [`crate::quota::max_wait`]).
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(crate::quota::max_wait());
        }
        let exp = self.base.saturating_mul(1u32 << n.min(16)).min(self.max_delay);
        let jitter = (random_u64() % 1000) as f64 / 1000.0;
        exp.mul_f64(0.5 + jitter / 2.0)
    }
}

/// A random-enough `u64` for jitter and multipart boundaries (not for secrets).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Percent-encodes one URL path segment (what Python's `quote(s, safe="")` does).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Percent-encodes a path, keeping its slashes.
pub fn enc_path(p: &str) -> String {
    p.split('/').map(enc).collect::<Vec<_>>().join("/")
}

/// A shared HTTP client. Its requests are paced by the hub's `RateLimit` headers (one
/// [`Pacer`](crate::quota::Pacer) shared by the client's clones: one hub, one token).
#[derive(Clone, Debug)]
pub struct Http {
    pub client: reqwest::Client,
    pub retry: RetryPolicy,
    pacer: std::sync::Arc<crate::quota::Pacer>,
}

impl Http {
    /// A client with connect and read timeouts (no total timeout: transfers may be long).
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hubmigrate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(32)
            .redirect(redirect_policy())
            .build()
            .map_err(|e| Error::transport("building the HTTP client", e))?;
        Ok(Http {
            client,
            retry: RetryPolicy::default(),
            pacer: Default::default(),
        })
    }

    /// Sends the request `build` makes, retrying retryable failures; an error status becomes
    /// [`Error::Http`] with the hub's message. `what` names the operation for errors and logs.
    pub async fn send(&self, what: &str, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        self.send_retrying(what, build, Error::is_retryable).await
    }

    /// [`Http::send`], retrying only the failures `retryable` accepts (a caller that answers a
    /// failure better than by sending the same request again, say).
    pub async fn send_retrying(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
        retryable: impl Fn(&Error) -> bool,
    ) -> Result<Response> {
        self.send_with(
            what,
            build,
            |resp| async move {
                if resp.status().is_success() {
                    Ok(resp)
                } else if resp.status().is_redirection() {
                    // Only a redirect the policy refused gets here (see `redirect_policy`).
                    let to = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(crate::redact::url)
                        .unwrap_or_default();
                    Err((
                        Error::Protocol(format!(
                            "{what}: redirected ({}) to {to} on another host, which would be sent this request's body; not followed",
                            resp.status().as_u16()
                        )),
                        (),
                    ))
                } else {
                    Err((error_from(what, resp).await, ()))
                }
            },
            |err, _| retryable(err),
        )
        .await
        .map_err(|(err, ())| err)
    }

    /// The crate's one retry loop. Sends the request `build` makes (anew for every attempt, so
    /// only requests whose body can be rebuilt are ever resent) and lets `read` judge the answer:
    /// a value, or a failure as the error plus an `extra` the caller wants back (a hub's business
    /// code, say; a transport failure carries `X::default()`). A failure is retried while
    /// `retryable` says so and the policy has attempts left, after the policy's pause (the
    /// `Retry-After` of an [`Error::Http`] when it has one).
    pub async fn send_with<T, X, Fut>(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
        read: impl Fn(Response) -> Fut,
        retryable: impl Fn(&Error, &X) -> bool,
    ) -> Result<T, (Error, X)>
    where
        X: Default,
        Fut: Future<Output = Result<T, (Error, X)>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match build().build() {
                Ok(req) => {
                    self.pacer.pace(req.url()).await;
                    self.client.execute(req).await
                }
                Err(e) => Err(e),
            };
            let (err, extra) = match sent {
                Ok(resp) => {
                    self.pacer.observe(resp.headers());
                    match read(resp).await {
                        Ok(v) => return Ok(v),
                        Err(failure) => failure,
                    }
                }
                Err(e) => (Error::transport(what, e), X::default()),
            };
            if !retryable(&err, &extra) || attempt >= self.retry.attempts {
                return Err((err.after_attempts(attempt), extra));
            }
            tracing::debug!(what, attempt, error = %err, "retrying");
            self.retry
                .pause(what, attempt, err)
                .await
                .map_err(|e| (e, X::default()))?;
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the hubs).
pub fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Most bytes of a JSON or text answer read into memory (a listing page of the Hub is well under
/// a MiB; the largest answers we read, LFS batches of 1,000 objects, a few MiB).
pub const MAX_BODY: usize = 64 << 20;
/// Most bytes of an error answer read (its message is cut shorter still).
const MAX_ERROR_BODY: usize = 64 << 10;

/// How long an answer read into memory may take to arrive in full once its headers are in (the
/// read timeout bounds each stall, this the whole: a body trickling a byte at a time ends too).
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(120);

/// Reads an answer's body into memory, at most `cap` bytes: a larger one is an error naming
/// `what`, found before the excess is read (from `Content-Length`, or as the chunks come). The
/// whole body must arrive within [`ANSWER_DEADLINE`].
pub async fn body_capped(what: &str, resp: Response, cap: usize) -> Result<Vec<u8>> {
    body_capped_within(what, resp, cap, ANSWER_DEADLINE).await
}

/// [`body_capped`] with another deadline.
pub async fn body_capped_within(what: &str, mut resp: Response, cap: usize, deadline: Duration) -> Result<Vec<u8>> {
    let too_large = || Error::Protocol(format!("{what}: the answer is larger than {cap} bytes; not read"));
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| Error::transport(what, e))? {
            if out.len() + chunk.len() > cap {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    tokio::time::timeout(deadline, read).await.unwrap_or_else(|_| {
        Err(Error::Transport {
            what: what.to_string(),
            message: format!(
                "timed out: the answer did not arrive in full within {} s",
                deadline.as_secs_f64()
            ),
        })
    })
}

/// A text answer of at most [`MAX_BODY`] bytes (invalid UTF-8 replaced).
pub async fn text_capped(what: &str, resp: Response) -> Result<String> {
    Ok(String::from_utf8_lossy(&body_capped(what, resp, MAX_BODY).await?).into_owned())
}

/// A JSON answer of at most [`MAX_BODY`] bytes, parsed into `T`.
pub async fn json_capped<T: serde::de::DeserializeOwned>(what: &str, resp: Response) -> Result<T> {
    let body = body_capped(what, resp, MAX_BODY).await?;
    serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("{what}: not the JSON expected ({e})")))
}

/// The first `cap` bytes of a body (the rest is not read); what could be read on a failure
/// within [`ANSWER_DEADLINE`].
async fn read_up_to(mut resp: Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(ANSWER_DEADLINE, async {
        while out.len() < cap {
            match resp.chunk().await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]),
                _ => break,
            }
        }
    })
    .await;
    out
}

/// Turns an error answer into [`Error::Http`], with the hub's message from `X-Error-Message` or
/// the JSON body (`error`, `message`, `Message`), or the start of the text body.
pub async fn error_from(what: &str, resp: Response) -> Error {
    let status = resp.status();
    // A 429 without `Retry-After` still says when its window resets (`RateLimit`'s `t`).
    let retry_after = match status {
        StatusCode::TOO_MANY_REQUESTS => crate::quota::requested_wait(resp.headers(), retry_after(&resp)),
        _ => retry_after(&resp),
    };
    let header_msg = resp
        .headers()
        .get("x-error-message")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = String::from_utf8_lossy(&read_up_to(resp, MAX_ERROR_BODY).await).into_owned();
    let body_msg = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| {
        ["error", "message", "Message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|m| m.as_str()).map(str::to_string))
    });
    let mut message = header_msg
        .or(body_msg)
        .unwrap_or_else(|| text.chars().take(300).collect());
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    Error::Http {
        what: what.to_string(),
        status: status.as_u16(),
        message,
        retry_after,
    }
}

/// True for statuses that mean "you may not" (401/403).
pub fn is_denied(status: u16) -> bool {
    status == StatusCode::UNAUTHORIZED.as_u16() || status == StatusCode::FORBIDDEN.as_u16()
}

/// Redirects: at most 10; one to another origin drops `Authorization` (reqwest does that) and is
/// not followed when it would resend the request's body (307, 308), so no credential in a
/// header or body reaches a host it was not meant for. 301-303 become bodiless GETs, which is
/// how a download reaches its CDN.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt
            .previous()
            .last()
            .map(|u| u.as_str().to_string())
            .unwrap_or_default();
        let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if keeps_body && !same_origin(&from, attempt.url().as_str()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(same_origin("http://h:80/api?cursor=1", "http://h"));
        assert!(!same_origin("http://evil/api", "http://h") && !same_origin("https://h/x", "http://h"));
    }

    #[test]
    fn delays_are_bounded_and_honour_retry_after() {
        let p = RetryPolicy::default();
        for n in 1..20 {
            assert!(p.delay(n, None) <= p.max_delay);
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(99_999))), crate::quota::max_wait());
    }
}
