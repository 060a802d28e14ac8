//! The coordinator's one error type. Every failure of a command or of the flow is one of these,
//! and each carries the exit code it deserves: 1 failure, 2 bad input or credentials (nothing was
//! moved), 3 migrated but verification found mismatches. 0 is success, which is no error.

/// Exit codes of `migrate-coord`.
pub mod exit {
    /// Migrated (or checked) and verified.
    pub const OK: i32 = 0;
    /// Anything else that went wrong.
    pub const FAILURE: i32 = 1;
    /// Bad input or credentials: nothing was moved.
    pub const BAD_INPUT: i32 = 2;
    /// Migrated, but verification found mismatches.
    pub const MISMATCH: i32 = 3;
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user's to fix: a bad reference, flag or file; nothing was written.
    #[error("{0}")]
    Input(String),
    /// A hub call failed (its kind decides the exit code: bad credentials are exit 2).
    #[error(transparent)]
    Hub(#[from] hubmigrate_hub::Error),
    /// The transfer did not finish: a chunk out of attempts, a worker gone, parts missing.
    /// Nothing was committed.
    #[error("{0}")]
    Transfer(String),
    /// An operation refused to go on, for safety; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The run was stopped (interrupt, or its Migration deleted); nothing was committed.
    #[error("interrupted: workers stopped, nothing was committed")]
    Interrupted,
    /// Verification found files that differ at the destination.
    #[error("{mismatched} of {files} files differ at the destination")]
    Mismatch { mismatched: usize, files: usize },
    /// The Kubernetes API refused or failed.
    #[error("{what}: {}", kube_message(.source))]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// A local resource (the worker binary, a report file, the gRPC port).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result type of the coordinator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => exit::BAD_INPUT,
            Error::Hub(e) if e.is_user_error() => exit::BAD_INPUT,
            Error::Mismatch { .. } => exit::MISMATCH,
            _ => exit::FAILURE,
        }
    }

    /// A Kubernetes error with what was being done.
    pub fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            what: what.into(),
            source,
        }
    }

    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The message and every cause below it, one per line (`caused by: ...`), for the terminal.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        match self {
            // `Hub` is transparent: its own message is already the first line.
            Error::Hub(_) => cause = cause.and_then(std::error::Error::source),
            // The API server's own message is in the first line; below it is kube's debug
            // rendering of the same answer.
            Error::Kube { .. } => cause = None,
            _ => {}
        }
        while let Some(c) = cause {
            let line = c.to_string();
            if !out.contains(&line) {
                out.push_str("\n  caused by: ");
                out.push_str(&line);
            }
            cause = c.source();
        }
        out
    }
}

/// A Kubernetes API error in one line: the server's own message.
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_exit_code() {
        assert_eq!(Error::Input("x".into()).exit_code(), exit::BAD_INPUT);
        assert_eq!(
            Error::Hub(hubmigrate_hub::Error::Auth("no".into())).exit_code(),
            exit::BAD_INPUT
        );
        assert_eq!(
            Error::Hub(hubmigrate_hub::Error::Protocol("odd".into())).exit_code(),
            exit::FAILURE
        );
        assert_eq!(
            Error::Mismatch {
                mismatched: 1,
                files: 2
            }
            .exit_code(),
            exit::MISMATCH
        );
        assert_eq!(Error::Interrupted.exit_code(), exit::FAILURE);
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = Error::io(
            "cannot write the report r.json",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        );
        assert_eq!(e.chain(), "cannot write the report r.json: permission denied");
    }
}
