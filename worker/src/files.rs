//! Moving files: an LFS object streams from the source download straight into the destination's
//! object store (one PUT, or parts), hashed on the way; a regular file is read into memory,
//! checked, and handed back for the commit. Each file is retried a bounded number of times.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hubmigrate_hub::hashing::Hashing;
use hubmigrate_hub::hub::{Hub, UploadAction};
use hubmigrate_hub::reporef::RepoRef;
use hubmigrate_hub::transfer::open_resuming;
use hubmigrate_hub::{Error, Result};
use hubmigrate_proto as pb;

/// Attempts per file (and per part) before the chunk fails.
pub const FILE_ATTEMPTS: u32 = 3;
/// Regular files are held in memory for the commit; anything larger must be LFS.
pub const MAX_INLINE: u64 = 256 * 1024 * 1024;

/// Where bytes come from and go to.
pub struct Sides {
    pub source: Hub,
    pub source_repo: RepoRef,
    pub commit: String,
    pub dest: Hub,
    pub dest_repo: RepoRef,
}

impl Sides {
    fn open(
        &self,
        t: &pb::FileTask,
        offset: u64,
        len: u64,
        progress: Arc<AtomicU64>,
        git_size: Option<u64>,
    ) -> (Hashing, hubmigrate_hub::hashing::DigestSlot) {
        let object = (t.lfs && t.sha256.len() == 64).then_some((t.sha256.as_str(), t.size));
        let stream = open_resuming(
            &self.source,
            &self.source_repo,
            &self.commit,
            &t.path,
            object,
            offset,
            len,
        );
        Hashing::new(stream, git_size, progress)
    }
}

/// Runs `op` up to [`FILE_ATTEMPTS`] times while it fails with a retryable error.
pub async fn with_retries<T, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let policy = hubmigrate_hub::http::RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < FILE_ATTEMPTS => {
                tracing::warn!(what, attempt, error = %e, "retrying");
                tokio::time::sleep(policy.delay(attempt, None)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Moves one LFS object according to the destination's `action`.
pub async fn move_lfs(
    s: &Sides,
    t: &pb::FileTask,
    action: &UploadAction,
    progress: Arc<AtomicU64>,
) -> Result<pb::FileResult> {
    let mut result = pb::FileResult {
        path: t.path.clone(),
        size: t.size,
        sha256: t.sha256.clone(),
        ..Default::default()
    };
    match action {
        UploadAction::Present => {
            result.set_outcome(pb::FileOutcome::AlreadyPresent);
            progress.store(t.size, std::sync::atomic::Ordering::Relaxed);
        }
        UploadAction::Basic { href, headers, verify } => {
            with_retries(&t.path, |_| async {
                progress.store(0, std::sync::atomic::Ordering::Relaxed);
                let (body, slot) = s.open(t, 0, t.size, progress.clone(), None);
                let put = s.dest.put(href, headers, t.size, Box::pin(body)).await;
                let d = slot.finish();
                // Bytes that do not hash to the oid were corrupted on the way from the source:
                // worth another read, whatever the store answered (it refuses them too).
                if d.bytes == t.size && d.sha256 != t.sha256 {
                    return Err(Error::Integrity {
                        path: t.path.clone(),
                        detail: format!("the source sent bytes hashing to {}, expected {}", d.sha256, t.sha256),
                    });
                }
                put?;
                if d.sha256 != t.sha256 || d.bytes != t.size {
                    return Err(Error::Integrity {
                        path: t.path.clone(),
                        detail: format!(
                            "read {} bytes hashing to {}, expected {} bytes with sha256 {}",
                            d.bytes, d.sha256, t.size, t.sha256
                        ),
                    });
                }
                Ok(())
            })
            .await?;
            if let Some(v) = verify {
                s.dest.verify_upload(v, &t.sha256, t.size).await?;
            }
            result.set_outcome(pb::FileOutcome::Uploaded);
            result.bytes_sent = t.size;
        }
        UploadAction::Multipart {
            chunk_size,
            parts,
            complete,
            verify,
        } => {
            let expected = t.size.div_ceil((*chunk_size).max(1));
            if parts.len() as u64 != expected {
                return Err(Error::Protocol(format!(
                    "{} parts offered for {} bytes in chunks of {chunk_size}",
                    parts.len(),
                    t.size
                )));
            }
            let mut etags = Vec::with_capacity(parts.len());
            let done = Arc::new(AtomicU64::new(0));
            for (i, url) in parts.iter().enumerate() {
                let offset = i as u64 * chunk_size;
                let len = (*chunk_size).min(t.size - offset);
                let etag = with_retries(&t.path, |_| {
                    let part_progress = Arc::new(AtomicU64::new(0));
                    let (body, _) = s.open(t, offset, len, part_progress, None);
                    let progress = progress.clone();
                    let done = done.clone();
                    async move {
                        let etag = s.dest.put(url, &[], len, Box::pin(body)).await?;
                        let total = done.fetch_add(len, std::sync::atomic::Ordering::Relaxed) + len;
                        progress.store(total, std::sync::atomic::Ordering::Relaxed);
                        etag.ok_or_else(|| Error::Protocol("a part upload answered without an ETag".into()))
                    }
                })
                .await?;
                etags.push(etag);
            }
            // The object store verifies the whole object's sha256 when the parts are assembled.
            with_retries(&t.path, |_| s.dest.complete_multipart(complete, &t.sha256, &etags)).await?;
            if let Some(v) = verify {
                s.dest.verify_upload(v, &t.sha256, t.size).await?;
            }
            result.set_outcome(pb::FileOutcome::Uploaded);
            result.bytes_sent = t.size;
        }
    }
    Ok(result)
}

/// Reads a regular file for the commit, checking it against the listing's hashes.
pub async fn read_regular(s: &Sides, t: &pb::FileTask, progress: Arc<AtomicU64>) -> Result<pb::FileResult> {
    if t.size > MAX_INLINE {
        return Err(Error::Input(format!(
            "{} is {} bytes, too large to commit as a regular file",
            t.path, t.size
        )));
    }
    with_retries(&t.path, |_| async {
        use futures_util::TryStreamExt;
        progress.store(0, std::sync::atomic::Ordering::Relaxed);
        let (body, slot) = s.open(t, 0, t.size, progress.clone(), Some(t.size));
        let content: Vec<u8> = body
            .map_ok(|b| b.to_vec())
            .try_concat()
            .await
            .map_err(|e| Error::Transport {
                what: t.path.clone(),
                message: e.to_string(),
            })?;
        let d = slot.finish();
        let git = d.git_oid.unwrap_or_default();
        let bad = (d.bytes != t.size)
            || (!t.sha256.is_empty() && d.sha256 != t.sha256)
            || (!t.git_oid.is_empty() && git != t.git_oid);
        if bad {
            return Err(Error::Integrity {
                path: t.path.clone(),
                detail: format!(
                    "read {} bytes (sha256 {}, git {git}), the listing says {} bytes (sha256 {:?}, git {:?})",
                    d.bytes, d.sha256, t.size, t.sha256, t.git_oid
                ),
            });
        }
        let mut r = pb::FileResult {
            path: t.path.clone(),
            size: t.size,
            sha256: d.sha256,
            git_oid: git,
            content,
            ..Default::default()
        };
        r.set_outcome(pb::FileOutcome::Inline);
        Ok(r)
    })
    .await
}
