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
}

/// Result type of the hub crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Worth retrying: transport failures, 408, 429 and 5xx answers, short or corrupted bodies.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Integrity { .. } => true,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// The user's to fix (bad input or credentials): exit code 2.
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Input(_) | Error::Auth(_))
    }

    /// The HTTP status, when the hub answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A transport error, with the URL removed from reqwest's message.
    pub fn transport(what: impl Into<String>, e: reqwest::Error) -> Self {
        Error::Transport {
            what: what.into(),
            message: e.without_url().to_string(),
        }
    }
}
