//! The hub crate's error type: every failure says what was being done, and carries the HTTP
//! status and the hub's own message where there is one. URLs in messages are redacted.

use std::time::Duration;

/// A failed hub operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user (an unparsable repo id, a missing token): exit code 2.
    #[error("{0}")]
    Input(String),
    /// A token is missing, invalid or lacks a right: exit code 2.
    #[error("{0}")]
    Auth(String),
    /// The hub answered with an error status.
    #[error("{what}: HTTP {status}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connection refused, reset, timeout).
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// Bytes did not match what the listing promised.
    #[error("integrity check failed for {path}: {detail}")]
    Integrity { path: String, detail: String },
    /// The hub answered something this client does not understand.
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    /// A git command failed; `message` is git's own complaint, redacted.
    #[error("{what}: {message}")]
    Git { what: String, message: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The hub asked to wait longer than this process may (`--max-wait`): stopped cleanly, and a
    /// re-run continues from what is done.
    #[error("{what}: the hub's quota asks to wait {}, longer than --max-wait ({}); stopped here: run again later to continue", crate::quota::human(*wait), crate::quota::human(*max))]
    QuotaWait {
        what: String,
        wait: Duration,
        max: Duration,
    },
    /// A failure a retry loop already retried to its limit: one bounded policy per operation,
    /// so no loop around it tries again.
    #[error("{last} (tried {attempts} times)")]
    Exhausted { attempts: u32, last: Box<Error> },
}

/// What went wrong under a request that got no answer, in a few words a person can act on.
fn transport_cause(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut chain: Vec<String> = Vec::new();
    let mut io_kind = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        chain.push(c.to_string());
        cur = c.source();
    }
    let (timeout, connect, body) = (e.is_timeout(), e.is_connect(), e.is_body() || e.is_decode());
    let detail = chain.last().cloned().unwrap_or_else(|| e.without_url().to_string());
    let all = chain.join(": ").to_ascii_lowercase();
    let kind = if timeout || io_kind == Some(std::io::ErrorKind::TimedOut) {
        "timed out"
    } else if all.contains("dns") || all.contains("failed to lookup") || all.contains("name or service not known") {
        "DNS lookup failed"
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        "connection refused"
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        "TLS failed"
    } else if matches!(
        io_kind,
        Some(
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    ) {
        "connection reset"
    } else if connect {
        "cannot connect"
    } else if body {
        "the answer was cut off"
    } else {
        "request failed"
    };
    if detail.to_ascii_lowercase().contains(kind.to_ascii_lowercase().as_str()) {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Result type of the hub crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Worth retrying: transport failures, 408, 429 and 5xx answers, short or corrupted bodies.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Exhausted { .. } => false,
            Error::Transport { .. } | Error::Integrity { .. } => true,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// A presigned URL refused because it outlived its expiry (S3's 403 "Request has expired"):
    /// the URL is dead, and only a new one from the hub (another batch call) helps.
    pub fn is_expired(&self) -> bool {
        match self {
            Error::Http {
                status: 403, message, ..
            } => message.to_ascii_lowercase().contains("request has expired"),
            Error::Exhausted { last, .. } => last.is_expired(),
            _ => false,
        }
    }

    /// The user's to fix (bad input or credentials): exit code 2.
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Exhausted { last, .. } => last.is_user_error(),
            e => matches!(e, Error::Input(_) | Error::Auth(_)),
        }
    }

    /// The `Retry-After` the hub sent with this failure, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Itself, unless the hub asked to wait longer than [`crate::quota::max_wait`]: then
    /// [`Error::QuotaWait`], which no loop retries.
    pub fn within_max_wait(self, what: &str) -> Result<Self> {
        match self.retry_after() {
            Some(wait) if wait > crate::quota::max_wait() => Err(Error::QuotaWait {
                what: what.to_string(),
                wait,
                max: crate::quota::max_wait(),
            }),
            _ => Ok(self),
        }
    }

    /// The HTTP status, when the hub answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// A transport error that names the host and the cause (DNS, refused, TLS, timeout), never
    /// the URL's path or query (they may carry signatures).
    pub fn transport(what: impl Into<String>, e: reqwest::Error) -> Self {
        let host = e.url().and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        });
        let cause = transport_cause(e);
        let message = match host {
            Some(h) => format!("cannot reach {h}: {cause}"),
            None => cause,
        };
        Error::Transport {
            what: what.into(),
            message,
        }
    }

    /// The failure a retry loop gives up with after `attempts` attempts: a retryable one is
    /// marked [`Error::Exhausted`] (saying how often it was tried), so that no loop around that
    /// one retries it again.
    pub fn after_attempts(self, attempts: u32) -> Self {
        if attempts > 1 && self.is_retryable() {
            Error::Exhausted {
                attempts,
                last: Box::new(self),
            }
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection names the host, says "connection refused", and never the path.
    #[tokio::test]
    async fn a_refused_connection_names_host_and_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/secret/path?sig=x"))
            .send()
            .await
            .unwrap_err();
        let err = Error::transport("checking the token", e).after_attempts(6);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "checking the token: cannot reach 127.0.0.1:{port}: connection refused"
            )),
            "{text}"
        );
        assert!(text.ends_with("(tried 6 times)") && !text.contains("secret"), "{text}");
    }
}
