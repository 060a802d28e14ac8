//! Moving files: an LFS object streams from the source download straight into the destination's
//! object store, hashed on the way; a regular file is read into memory, checked, and handed back
//! for the commit. Each file (and each part) is retried a bounded number of times.
//!
//! Large objects move over several connections: multipart parts are read with a ranged GET each
//! (a slice's in runs of up to 64 MiB, one GET a run) and PUT in parallel; an object the
//! destination takes as one PUT stream is read in parallel 64 MiB spans that are put back in
//! order on the way (see [`hubmigrate_hub::parallel`]). A slice task (parts of a file split
//! across workers) PUTs its parts and reports their ETags.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use hubmigrate_hub::hashing::{ByteStream, Digests, Hashing, PartHashes};
use hubmigrate_hub::hub::{Hub, UploadAction};
use hubmigrate_hub::parallel::{Budget, Opener, ordered};
use hubmigrate_hub::reporef::RepoRef;
use hubmigrate_hub::resume::open_resuming;
use hubmigrate_hub::{Error, Result};
use hubmigrate_proto as pb;

/// Attempts per file (and per part) before the chunk fails. This is the one retry policy of a
/// file: a file that fails it fails the chunk for good (the chunk is not sent again for it).
pub const FILE_ATTEMPTS: u32 = 5;
/// Times a multipart object is sent in all when its parts do not hash to its oid (every part
/// goes again each time).
pub const OBJECT_SENDS: u32 = 3;
/// Regular files are held in memory for the commit; anything larger must be LFS.
pub const MAX_INLINE: u64 = 256 * 1024 * 1024;

/// Where bytes come from and go to, and how many connections a worker may open.
pub struct Sides {
    pub source: Hub,
    pub source_repo: RepoRef,
    pub commit: String,
    pub dest: Hub,
    pub dest_repo: RepoRef,
    /// The destination branch (the store's batch API is asked for uploads to it).
    pub branch: String,
    pub budget: Budget,
}

impl Sides {
    /// Opens any range of `t`'s content at the source (each range resumes on its own).
    fn opener(&self, t: &pb::FileTask) -> Opener {
        let (hub, repo, commit, path) = (
            self.source.clone(),
            self.source_repo.clone(),
            self.commit.clone(),
            t.path.clone(),
        );
        let object = (t.lfs && t.sha256.len() == 64).then(|| (t.sha256.clone(), t.size));
        Arc::new(move |offset, len| {
            let object = object.as_ref().map(|(o, s)| (o.as_str(), *s));
            open_resuming(&hub, &repo, &commit, &path, object, offset, len)
        })
    }

    /// The whole of `t` in order: one stream for a file of one span or less, parallel spans for a
    /// larger LFS object (a regular file may be served whole whatever range is asked: one stream).
    fn whole(&self, t: &pb::FileTask, progress: Arc<AtomicU64>) -> (Hashing, hubmigrate_hub::hashing::DigestSlot) {
        if t.size <= self.budget.segment() || !t.source_lfs {
            return self.open(t, 0, t.size, progress, None);
        }
        Hashing::new(ordered(self.opener(t), 0, t.size, &self.budget), None, progress)
    }

    /// `len` bytes of `t` from `offset`, hashed (with `git_size`, the git blob id too).
    fn open(
        &self,
        t: &pb::FileTask,
        offset: u64,
        len: u64,
        progress: Arc<AtomicU64>,
        git_size: Option<u64>,
    ) -> (Hashing, hubmigrate_hub::hashing::DigestSlot) {
        Hashing::new(self.opener(t)(offset, len), git_size, progress)
    }
}

/// Runs `op` up to [`FILE_ATTEMPTS`] times while it fails with a retryable error.
pub async fn with_retries<T, F, Fut>(what: &str, op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    hubmigrate_hub::http::with_retries(what, FILE_ATTEMPTS, op).await
}

/// How many times a whole file's upload URLs are asked for again after they expired.
const RENEWALS: u32 = 3;

/// Moves one LFS object according to the destination's `action`. Presigned URLs that expired
/// before the file got to them (the assignment's batch call was made when the worker started)
/// are asked for again, and the file starts over with the new ones.
pub async fn move_lfs(
    s: &Sides,
    t: &pb::FileTask,
    action: &UploadAction,
    progress: Arc<AtomicU64>,
) -> Result<pb::FileResult> {
    let mut renewed: Option<UploadAction> = None;
    let mut renewal = 0;
    loop {
        let act = renewed.as_ref().unwrap_or(action);
        match move_object(s, t, act, progress.clone()).await {
            Err(e) if e.is_expired() && renewal < RENEWALS => {
                renewal += 1;
                tracing::warn!(path = %t.path, renewal, "the upload URLs expired; asking the store for new ones");
                let objects = [(t.sha256.clone(), t.size)];
                let fresh = s.dest.prepare_uploads(&s.dest_repo, &s.branch, &objects).await?;
                renewed = Some(fresh.into_iter().next().ok_or_else(|| {
                    Error::Protocol(format!("the store offered no upload for {} when asked again", t.path))
                })?);
            }
            r => return r,
        }
    }
}

/// One try at moving an LFS object with the upload `action` the store offered.
async fn move_object(
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
            read_back(s, t, progress.clone()).await?;
            result.set_outcome(pb::FileOutcome::AlreadyPresent);
            progress.store(t.size, std::sync::atomic::Ordering::Relaxed);
        }
        UploadAction::Basic { href, headers, verify } => {
            with_retries(&t.path, |_| async {
                progress.store(0, std::sync::atomic::Ordering::Relaxed);
                let (body, slot) = s.whole(t, progress.clone());
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
                matches_task(t, &d)
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
            // Every part is hashed in order on its way; bytes that do not hash to the oid are
            // sent again (the same part URLs take a part again) before the upload is completed.
            let etags = hubmigrate_hub::http::with_retries(&t.path, OBJECT_SENDS, |_| async {
                progress.store(0, Ordering::Relaxed);
                let hashes = PartHashes::new(parts.len(), held_cap(*chunk_size, &s.budget));
                let etags = put_parts(s, t, *chunk_size, 1, parts, progress.clone(), Some(&hashes)).await?;
                let d = hashes.digests().unwrap_or(Digests {
                    sha256: String::new(),
                    git_oid: None,
                    bytes: 0,
                });
                matches_task(t, &d)?;
                Ok(etags)
            })
            .await?;
            // The store's own check of the assembled object (where it makes one) comes on top.
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

/// Whether what passed (`d`) is the task's object: its size and sha256.
fn matches_task(t: &pb::FileTask, d: &Digests) -> Result<()> {
    if d.sha256 == t.sha256 && d.bytes == t.size {
        return Ok(());
    }
    Err(Error::Integrity {
        path: t.path.clone(),
        detail: format!(
            "the source sent {} bytes hashing to {}, expected {} bytes with sha256 {}",
            d.bytes, d.sha256, t.size, t.sha256
        ),
    })
}

/// An object the destination says it holds already is read back from it and hashed before a
/// commit may name it (where the store offers such a read: not ModelScope's shared store, which
/// checks every object's sha256 as it takes it). A copy that differs cannot be replaced through
/// the LFS API (the store answers that it has it): the file fails, naming what the store holds.
async fn read_back(s: &Sides, t: &pb::FileTask, progress: Arc<AtomicU64>) -> Result<()> {
    let budget = (t.size > s.budget.segment()).then_some(&s.budget);
    if hubmigrate_hub::readback::object(&s.dest, &s.dest_repo, &t.path, &t.sha256, t.size, budget, progress).await? {
        tracing::debug!(path = %t.path, "object already at the destination, read back and hashed");
    }
    Ok(())
}

/// Bytes of parts ahead of the head that one object's [`PartHashes`] may hold: enough for every
/// connection of the object to stream a whole part, at most 80 MiB (on the peers bench 128 MiB
/// took a worker to 196 MiB of memory, 96 MiB to 154; the goal is under 150; 80 MiB: 144, and
/// no slower).
fn held_cap(part_size: u64, budget: &Budget) -> u64 {
    (part_size.max(1) * budget.connections() as u64).min(80 << 20)
}

/// Bytes of the source one ranged GET covers at least when a slice goes in parts: the parts of
/// a run are read one after the other from the same GET, so a 16 MiB part size costs 16 GETs a
/// GiB instead of 64 (the GETs go where the source located the object once: see
/// `hubmigrate_hub::lfs::Downloads`).
pub const SPAN: u64 = 64 << 20;

/// PUTs parts `first_part ..` (1-based, `part_size` bytes each, the file's last part shorter) of
/// `t` to `urls`, several runs at once within the worker's connection budget, and returns their
/// ETags in part order. A run is consecutive parts read with one ranged GET (up to [`SPAN`]
/// bytes for a slice with more parts than connections; one part for everything else); a part
/// that fails is retried alone with its own GET, and the rest of its run reads on from a new
/// one. `progress` counts the bytes of every part as they pass (a retried part starts its
/// count again); `hashes`, when given, hashes the parts in order (numbered from 0 in `urls`).
pub async fn put_parts(
    s: &Sides,
    t: &pb::FileTask,
    part_size: u64,
    first_part: u32,
    urls: &[String],
    progress: Arc<AtomicU64>,
    hashes: Option<&PartHashes>,
) -> Result<Vec<String>> {
    let part_size = part_size.max(1);
    let open = s.opener(t);
    let first_offset = (u64::from(first_part.max(1)) - 1) * part_size;
    let part = |i: usize| {
        let offset = first_offset + i as u64 * part_size;
        (offset, part_size.min(t.size.saturating_sub(offset)))
    };
    // A regular file's source may ignore Range and send it whole: one part per GET, one at a
    // time. Each part of an LFS object streams from its run's GET into its own PUT (nothing of
    // it in the budget's memory): a file may use every connection of the worker. Parts hashed
    // here in order go one part a GET: a run ahead of the one being hashed would have to hold
    // its parts in memory until the hash reaches them (runs of 64 MiB on 8 connections stall
    // behind the head run within the hold cap: the peers bench's 1.5 GiB file kept whole took
    // 29.2 s in runs, 21.3 s a part a GET). Parts of a slice (hashed by the coordinator's
    // read-back) go in runs, never so long that the slice has fewer runs than connections (a
    // 110 MiB piece in 16 MiB parts on 8 connections goes one part a GET).
    let connections = s.budget.connections();
    let (per_run, at_once) = if !t.source_lfs {
        (1, 1)
    } else if hashes.is_some() {
        (1, connections)
    } else {
        let per_run = (SPAN.div_ceil(part_size) as usize).min(urls.len().div_ceil(connections));
        (per_run.max(1), connections)
    };
    let indices: Vec<usize> = (0..urls.len()).collect();
    let runs = indices.chunks(per_run).map(|run| {
        let (open, progress) = (open.clone(), progress.clone());
        async move {
            let _connection = s.budget.connection().await;
            let run_end = {
                let (o, l) = part(run[run.len() - 1]);
                o + l
            };
            // The run's GET, positioned at the next part; none after a failure.
            let span: Arc<tokio::sync::Mutex<Option<Span>>> = Default::default();
            let mut etags = Vec::with_capacity(run.len());
            for &i in run {
                let (offset, len) = part(i);
                let etag = with_retries(&t.path, |attempt| {
                    let counted = Arc::new(AtomicU64::new(0));
                    let source = if attempt == 1 {
                        let open = open.clone();
                        from_span(span.clone(), move || open(offset, run_end - offset), len)
                    } else {
                        open(offset, len)
                    };
                    let mut body = counting(source, vec![counted.clone(), progress.clone()]);
                    if let Some(h) = hashes {
                        body = h.part(i, body);
                    }
                    let (progress, span) = (progress.clone(), span.clone());
                    async move {
                        let put = s.dest.put(&urls[i], &[], len, body).await;
                        if put.is_err() {
                            progress.fetch_sub(counted.load(Ordering::Relaxed), Ordering::Relaxed);
                            // Where the run's GET stands is unknown now: the next part opens anew.
                            *span.lock().await = None;
                        }
                        put?.ok_or_else(|| Error::Protocol("a part upload answered without an ETag".into()))
                    }
                })
                .await?;
                if let Some(h) = hashes {
                    h.finished(i);
                }
                etags.push(etag);
            }
            Ok::<_, Error>(etags)
        }
    });
    let etags: Vec<Vec<String>> = futures_util::stream::iter(runs).buffered(at_once).try_collect().await?;
    Ok(etags.concat())
}

/// One ranged GET over a run of parts, and what was read past the last part taken from it.
struct Span {
    body: ByteStream,
    leftover: bytes::Bytes,
}

/// The next `len` bytes of the run's GET in `span` (opened with `open` when there is none): one
/// part's body. The GET ending early is an error of this part.
fn from_span(
    span: Arc<tokio::sync::Mutex<Option<Span>>>,
    open: impl FnOnce() -> ByteStream + Send + 'static,
    len: u64,
) -> ByteStream {
    let open = std::sync::Mutex::new(Some(open));
    Box::pin(futures_util::stream::unfold(len, move |left| {
        let span = span.clone();
        let open = open.lock().ok().and_then(|mut o| o.take());
        async move {
            if left == 0 {
                return None;
            }
            let mut guard = span.lock().await;
            if guard.is_none()
                && let Some(open) = open
            {
                *guard = Some(Span {
                    body: open(),
                    leftover: bytes::Bytes::new(),
                });
            }
            let Some(sp) = guard.as_mut() else {
                return Some((Err(std::io::Error::other("the part's range was lost")), 0));
            };
            let mut chunk = if sp.leftover.is_empty() {
                match sp.body.next().await {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Some((Err(e), 0)),
                    None => return Some((Err(std::io::Error::other("the source's range ended early")), 0)),
                }
            } else {
                std::mem::take(&mut sp.leftover)
            };
            if chunk.len() as u64 > left {
                sp.leftover = chunk.split_off(left as usize);
            }
            let left = left - chunk.len() as u64;
            Some((Ok(chunk), left))
        }
    }))
}

/// `body` with every chunk's length added to each of `counters`.
fn counting(body: ByteStream, counters: Vec<Arc<AtomicU64>>) -> ByteStream {
    Box::pin(body.inspect_ok(move |b| {
        for c in &counters {
            c.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    }))
}

/// Moves a slice of a file split across workers: its parts go to the multipart upload the
/// coordinator opened, and their ETags go back for the coordinator to complete it.
pub async fn move_slice(
    s: &Sides,
    t: &pb::FileTask,
    slice: &pb::Slice,
    progress: Arc<AtomicU64>,
) -> Result<pb::FileResult> {
    let mut r = pb::FileResult {
        path: t.path.clone(),
        size: t.size,
        sha256: t.sha256.clone(),
        first_part: slice.first_part,
        upload: slice.upload,
        ..Default::default()
    };
    match put_parts(
        s,
        t,
        slice.part_size,
        slice.first_part,
        &slice.urls,
        progress.clone(),
        None,
    )
    .await
    {
        Ok(etags) => {
            r.etags = etags;
            r.bytes_sent = t.bytes();
            r.set_outcome(pb::FileOutcome::Uploaded);
        }
        // The coordinator opened the upload; only it can open it again.
        Err(e) if e.is_expired() => {
            tracing::warn!(path = %t.path, first_part = slice.first_part, "the part URLs expired; the coordinator opens the upload again");
            progress.store(0, Ordering::Relaxed);
            r.set_outcome(pb::FileOutcome::Expired);
        }
        Err(e) => return Err(e),
    }
    Ok(r)
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
