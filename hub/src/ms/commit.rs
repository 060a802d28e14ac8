//! Writing to a ModelScope repo: the LFS "validate" batch that says which objects still need
//! uploading (and where), and commits split into batches by action count and JSON size, with the
//! commit-specific retry classification (policy throttle, branch races).

use base64::Engine;
use serde_json::{Value, json};

use super::MsClient;
use super::wire::{Failure, data};
use crate::error::{Error, Result};
use crate::http::enc;
use crate::http::is_denied;
use crate::reporef::RepoRef;
use crate::types::{CommitFile, UploadAction};

/// Objects per LFS batch request.
const BATCH_OBJECTS: usize = 64;
/// Actions per commit request (the service refuses more than [`MAX_COMMIT_ACTIONS`]).
pub const COMMIT_ACTIONS: usize = 256;
/// The service's hard limit of actions per commit.
pub const MAX_COMMIT_ACTIONS: usize = 2000;
const _: () = assert!(COMMIT_ACTIONS <= MAX_COMMIT_ACTIONS);
/// Target size of one commit request's JSON.
pub const COMMIT_BYTES: usize = 8 * 1024 * 1024;
/// Business code of "commit rejected by repository policy" (transient).
const CODE_COMMIT_POLICY: i64 = 10030000001;

/// The estimated JSON size of one commit action (base64 content counts ⌈n/3⌉·4 bytes).
fn action_bytes(f: &CommitFile) -> usize {
    const OVERHEAD: usize = 128;
    match f {
        CommitFile::Inline { path, content } => OVERHEAD + path.len() + content.len().div_ceil(3) * 4,
        CommitFile::Lfs { path, .. } => OVERHEAD + path.len() + 64,
    }
}

/// Splits `files` into consecutive commit batches of at most [`COMMIT_ACTIONS`] actions and
/// about [`COMMIT_BYTES`] of JSON; a file bigger than that on its own goes alone.
fn commit_batches(files: &[CommitFile]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let b = action_bytes(f);
        let count = i - start;
        if count > 0 && (count >= COMMIT_ACTIONS || bytes + b > COMMIT_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += b;
    }
    if start < files.len() {
        out.push(start..files.len());
    }
    out
}

/// One commit action.
fn commit_action(f: &CommitFile) -> Value {
    match f {
        CommitFile::Inline { path, content } => json!({
            "action": "create", "path": path, "type": "normal", "size": content.len(),
            "sha256": "", "content": base64::engine::general_purpose::STANDARD.encode(content),
            "encoding": "base64",
        }),
        CommitFile::Lfs { path, sha256, size } => json!({
            "action": "create", "path": path, "type": "lfs", "size": size,
            "sha256": sha256, "content": "", "encoding": "",
        }),
    }
}

/// Is this commit failure worth another attempt? 5xx, 429, transport failures, the repository
/// policy throttle (business code or message) and branch races.
fn commit_retryable(err: &Error, code: Option<i64>) -> bool {
    if err.is_retryable() {
        return true;
    }
    if code == Some(CODE_COMMIT_POLICY) {
        return true;
    }
    match err {
        Error::Http {
            status: 200..=299 | 400 | 409,
            message,
            ..
        } => {
            let m = message.to_ascii_lowercase();
            [
                "commit rejected by repository policy",
                "branch changed",
                "could not update refs",
                "please retry",
                "try again",
            ]
            .iter()
            .any(|p| m.contains(p))
        }
        _ => false,
    }
}

/// One object of a batch answer: no `actions.upload` means "already stored".
fn upload_action(o: &Value) -> Result<UploadAction> {
    if let Some(err) = o.get("error").filter(|e| !e.is_null()) {
        return Err(Error::Protocol(format!(
            "the destination refused object {}: {} {}",
            o["oid"].as_str().unwrap_or("?"),
            err["code"],
            err["message"].as_str().unwrap_or("")
        )));
    }
    match o.get("actions").and_then(|a| a.get("upload")) {
        None | Some(Value::Null) => Ok(UploadAction::Present),
        Some(up) => Ok(UploadAction::Basic {
            headers: Vec::new(),
            href: up["href"]
                .as_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::Protocol("upload action without href".into()))?
                .to_string(),
            verify: None,
        }),
    }
}

impl MsClient {
    /// The LFS "validate" batch: which objects the store still needs, and where to PUT them.
    /// ModelScope stores objects globally and has no multipart transfer.
    pub async fn prepare_uploads(
        &self,
        repo: &RepoRef,
        _branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        let url = format!("{}/info/lfs/objects/batch", self.repos_api(repo)?);
        let mut out = Vec::with_capacity(objects.len());
        for batch in objects.chunks(BATCH_OBJECTS) {
            let body = json!({
                "operation": "upload",
                "objects": batch.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
            });
            let resp = self
                .http
                .send("asking the destination which objects it needs", || {
                    self.post(&url).json(&body)
                })
                .await
                .map_err(|e| match self.tidy(e) {
                    Error::Http { status, message, .. } if is_denied(status) => Error::Auth(format!(
                        "cannot upload to {repo}: the ModelScope token may not write there \
                         (HTTP {status}: {message})"
                    )),
                    other => other,
                })?;
            let v: Value = crate::http::json_capped("LFS batch", resp).await?;
            let objs = data(&v)["objects"]
                .as_array()
                .ok_or_else(|| Error::Protocol("LFS batch answer without objects".into()))?;
            for (oid, _) in batch {
                let o = objs
                    .iter()
                    .find(|o| o["oid"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(oid)))
                    .ok_or_else(|| Error::Protocol(format!("LFS batch answer does not mention {oid}")))?;
                out.push(upload_action(o)?);
            }
        }
        Ok(out)
    }

    /// Commits `files` to `branch` in batches (at most 256 actions and about 8 MiB of JSON
    /// each, in order) and returns the last batch's commit. No files: the branch's head.
    pub async fn commit(&self, repo: &RepoRef, branch: &str, message: &str, files: &[CommitFile]) -> Result<String> {
        if files.is_empty() {
            return self.head(repo, branch).await;
        }
        let url = format!("{}/commit/{}", self.repos_api(repo)?, enc(branch));
        let batches = commit_batches(files);
        let n = batches.len();
        let mut last = None;
        for (i, range) in batches.into_iter().enumerate() {
            let msg = if n > 1 {
                format!("{message} (batch {}/{n})", i + 1)
            } else {
                message.to_string()
            };
            let body = json!({
                "commit_message": msg,
                "actions": files[range].iter().map(commit_action).collect::<Vec<_>>(),
            });
            let what = if n > 1 {
                format!("committing batch {}/{n} to the destination", i + 1)
            } else {
                "committing to the destination".to_string()
            };
            let tries = std::sync::atomic::AtomicU32::new(0);
            let result = self
                .send_coded(
                    &what,
                    || {
                        tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.post(&url).json(&body)
                    },
                    commit_retryable,
                )
                .await;
            last = match result {
                Ok(v) => {
                    let d = data(&v);
                    ["oid", "Oid", "CommitId", "commit_id"]
                        .iter()
                        .find_map(|k| d.get(*k).and_then(Value::as_str))
                        .map(str::to_string)
                }
                Err(Failure {
                    error: Error::Http { status, message, .. },
                    ..
                }) if is_denied(status) => {
                    return Err(Error::Auth(format!(
                        "cannot commit to {repo}: the ModelScope token may not write there \
                         (HTTP {status}: {message})"
                    )));
                }
                // A retried batch whose earlier attempt landed after all.
                Err(Failure {
                    error:
                        Error::Http {
                            status: 400 | 409,
                            message,
                            ..
                        },
                    ..
                }) if tries.load(std::sync::atomic::Ordering::Relaxed) > 1
                    && message.to_ascii_lowercase().contains("already exist") =>
                {
                    None
                }
                Err(f) => return Err(f.error),
            };
        }
        match last {
            Some(oid) => Ok(oid),
            None => self.head(repo, branch).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(path: &str, n: usize) -> CommitFile {
        CommitFile::Inline {
            path: path.into(),
            content: vec![b'x'; n],
        }
    }

    #[test]
    fn batches_by_count_and_size() {
        let files: Vec<CommitFile> = (0..600).map(|i| inline(&format!("f{i}"), 10)).collect();
        let b = commit_batches(&files);
        assert_eq!(b, vec![0..256, 256..512, 512..600]);
        assert!(commit_batches(&[]).is_empty());
        // 3 MiB files: base64 makes each 4 MiB, so two per batch would pass 8 MiB.
        let big: Vec<CommitFile> = (0..5).map(|i| inline(&format!("b{i}"), 3 << 20)).collect();
        assert_eq!(commit_batches(&big), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
        // An oversized file goes alone, between others.
        let mixed = vec![inline("a", 10), inline("huge", 20 << 20), inline("b", 10)];
        assert_eq!(commit_batches(&mixed), vec![0..1, 1..2, 2..3]);
        // LFS actions are small: 256 per batch.
        let lfs: Vec<CommitFile> = (0..300)
            .map(|i| CommitFile::Lfs {
                path: format!("w/{i}.bin"),
                sha256: "a".repeat(64),
                size: 1 << 40,
            })
            .collect();
        assert_eq!(commit_batches(&lfs), vec![0..256, 256..300]);
        assert_eq!(action_bytes(&inline("p", 4)), 128 + 1 + 8);
    }

    #[test]
    fn commit_actions() {
        assert_eq!(
            commit_action(&inline("a b/ü.txt", 3)),
            json!({"action": "create", "path": "a b/ü.txt", "type": "normal", "size": 3,
                   "sha256": "", "content": "eHh4", "encoding": "base64"})
        );
        assert_eq!(
            commit_action(&CommitFile::Lfs {
                path: "m.bin".into(),
                sha256: "ab".into(),
                size: 7
            }),
            json!({"action": "create", "path": "m.bin", "type": "lfs", "size": 7,
                   "sha256": "ab", "content": "", "encoding": ""})
        );
    }

    #[test]
    fn upload_actions() {
        assert_eq!(
            upload_action(&json!({"oid": "a", "size": 1})).unwrap(),
            UploadAction::Present
        );
        assert_eq!(
            upload_action(&json!({"oid": "a", "size": 1, "actions": {"upload": {"href": "h"}}})).unwrap(),
            UploadAction::Basic {
                headers: Vec::new(),
                href: "h".into(),
                verify: None
            }
        );
        assert!(upload_action(&json!({"oid": "a", "actions": {"upload": {}}})).is_err());
    }

    #[test]
    fn error_classification() {
        let http = |status, message: &str| Error::Http {
            what: "w".into(),
            status,
            message: message.into(),
            retry_after: None,
        };
        assert!(commit_retryable(&http(503, "busy"), None));
        assert!(commit_retryable(&http(429, "slow down"), None));
        assert!(commit_retryable(&http(400, "x"), Some(CODE_COMMIT_POLICY)));
        assert!(commit_retryable(
            &http(400, "Commit rejected by repository policy"),
            None
        ));
        assert!(commit_retryable(&http(409, "branch changed, try again"), None));
        assert!(!commit_retryable(&http(400, "invalid commit action"), None));
        assert!(!commit_retryable(&http(422, "exceeds actions limit"), None));
        assert!(!commit_retryable(&http(403, "try again"), None));
    }
}
