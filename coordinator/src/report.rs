//! The run's outcome: the JSON report (`--report`) and the one-screen summary.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, exit};

/// One verification problem.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    /// `missing`, `size` or `hash`.
    pub kind: &'static str,
    pub expected: String,
    pub found: String,
}

/// A ref a git push left out, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SkippedRef {
    pub name: String,
    pub reason: String,
}

/// The JSON report.
#[derive(Debug, Serialize, Default)]
pub struct Report {
    pub migration_id: String,
    pub source: String,
    pub dest: String,
    pub source_commit: String,
    pub dest_commit: Option<String>,
    pub files: usize,
    pub bytes: u64,
    pub bytes_uploaded: u64,
    pub files_already_present: usize,
    pub chunks: usize,
    /// The ETA printed with the plan, to hold against `duration_secs`.
    pub eta_secs: f64,
    pub duration_secs: f64,
    pub rate_bytes_per_sec: f64,
    pub verified: bool,
    pub mismatches: Vec<Mismatch>,
    /// Git destinations: the refs pushed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs_pushed: Vec<String>,
    /// Git destinations: the refs left out (hub-managed, or rejected by the host).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs_skipped: Vec<SkippedRef>,
    /// What the destination repo got besides the files (visibility, license) and how.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<String>,
    pub status: String,
    pub error: Option<String>,
    pub exit_code: i32,
}

impl Report {
    /// A report for a run between the references as typed (credentials a git URL may carry are
    /// left out).
    pub fn started(source: &str, dest: Option<&str>) -> Self {
        Report {
            source: hubmigrate_hub::redact::url(source),
            dest: hubmigrate_hub::redact::url(dest.unwrap_or_default()),
            ..Default::default()
        }
    }

    /// Fills in what is known once the run is over: duration, rate, status and exit code (from
    /// `error`; `status_ok` names success: `verified`, `planned`, `deleted`).
    pub fn conclude(&mut self, started: Instant, error: Option<&Error>, status_ok: &str) {
        self.duration_secs = started.elapsed().as_secs_f64();
        self.rate_bytes_per_sec = self.bytes_uploaded as f64 / self.duration_secs.max(0.001);
        self.exit_code = error.map_or(exit::OK, Error::exit_code);
        // Mismatches are listed in full; the error line would only repeat their count.
        self.error = error.filter(|e| !matches!(e, Error::Mismatch { .. })).map(Error::chain);
        self.status = match self.exit_code {
            exit::OK => status_ok,
            exit::MISMATCH => "mismatch",
            exit::BAD_INPUT => "bad-input",
            _ => "failed",
        }
        .into();
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(path, json).map_err(|e| Error::io(format!("cannot write the report {}", path.display()), e))
    }

    /// The one-screen summary printed at the end.
    pub fn summary(&self) -> String {
        use crate::fmt::{bytes, duration};
        let mut s = format!(
            "{} -> {}\n  files      {} ({}), {} uploaded, {} already at the destination\n  time       {} ({}/s)\n",
            self.source,
            self.dest,
            self.files,
            bytes(self.bytes),
            bytes(self.bytes_uploaded),
            self.files_already_present,
            duration(std::time::Duration::from_secs_f64(self.duration_secs)),
            bytes(self.rate_bytes_per_sec as u64),
        );
        if let Some(c) = &self.dest_commit {
            s.push_str(&format!("  commit     {c}\n"));
        }
        if !self.refs_pushed.is_empty() {
            s.push_str(&format!("  refs       {} pushed\n", self.refs_pushed.len()));
        }
        for r in &self.refs_skipped {
            s.push_str(&format!("  skipped    {}: {}\n", r.name, r.reason));
        }
        if self.verified {
            s.push_str(&format!(
                "  verified   all {} files match the source (path, size, hash)\n",
                self.files
            ));
        } else if !self.mismatches.is_empty() {
            s.push_str(&format!(
                "  MISMATCHES {} file(s) differ from the source:\n",
                self.mismatches.len()
            ));
            for m in self.mismatches.iter().take(20) {
                s.push_str(&format!(
                    "    {} ({}): expected {}, found {}\n",
                    m.path, m.kind, m.expected, m.found
                ));
            }
            if self.mismatches.len() > 20 {
                s.push_str(&format!(
                    "    ... and {} more (see the report)\n",
                    self.mismatches.len() - 20
                ));
            }
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("  error      {e}\n"));
        }
        s
    }
}
