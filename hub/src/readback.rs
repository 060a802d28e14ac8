//! Reading an object back from the destination's store and hashing it, before a commit names
//! it: for an object assembled from parts that several workers sent (no one of them saw every
//! byte), and for an object the store says it holds already (nobody here sent it). Read over
//! several connections in order when a [`Budget`] is given.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::TryStreamExt;

use crate::error::{Error, Result};
use crate::hashing::{ByteStream, Hashing};
use crate::hub::Hub;
use crate::parallel::{Budget, Opener, ordered};
use crate::reporef::RepoRef;

/// The sha256 of no bytes.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Bytes per ranged read when an object is read back over several connections: the
/// destination's object store is not the source's resolver quota, so ranges stay small enough
/// for the read-ahead budget to hold a whole one each, and one object is read at the speed of
/// several connections (64 MiB spans would give one connection's worth: a span ahead only
/// reads its share of the budget).
pub const SEGMENT: u64 = 8 << 20;

/// Reads of one object before a mismatch counts (the first read may be damaged on the way).
pub const READS: u32 = 2;

/// What the store holds under `oid`, read back and hashed against `oid` and `size`: `Ok(true)`
/// when it matches, `Ok(false)` when the store offers no such read (ModelScope), an
/// [`Error::Integrity`] naming `path` when every read differs.
pub async fn object(
    hub: &Hub,
    repo: &RepoRef,
    path: &str,
    oid: &str,
    size: u64,
    budget: Option<&Budget>,
    progress: Arc<AtomicU64>,
) -> Result<bool> {
    // An empty object has one possible content: nothing to read.
    if size == 0 && oid == EMPTY_SHA256 {
        return Ok(true);
    }
    let Some(download) = hub.object_download(repo, oid, size).await? else {
        return Ok(false);
    };
    let download = Arc::new(download);
    let mut last = String::new();
    for read in 1..=READS {
        progress.store(0, std::sync::atomic::Ordering::Relaxed);
        let body = match budget.filter(|b| size > b.segment()) {
            Some(b) => {
                let (hub, d) = (hub.clone(), download.clone());
                let open: Opener = Arc::new(move |offset, len| range(&hub, &d, offset, len));
                ordered(open, 0, size, b)
            }
            None => range(hub, &download, 0, size),
        };
        let (body, slot) = Hashing::new(body, None, progress.clone());
        let drained = body.try_for_each(|_| async { Ok(()) }).await;
        let d = slot.finish();
        last = match drained {
            Err(e) => format!("reading it back failed: {e}"),
            Ok(()) if d.bytes == size && d.sha256 == oid => return Ok(true),
            Ok(()) => format!("reading it back gave {} bytes hashing to {}", d.bytes, d.sha256),
        };
        tracing::warn!(path, read, "{last}; expected {size} bytes with sha256 {oid}");
    }
    Err(Error::Integrity {
        path: path.to_string(),
        detail: format!(
            "the destination's store holds this object but {last} ({READS} reads), expected {size} bytes with sha256 {oid}; nothing names it in a commit"
        ),
    })
}

/// [`object`] for each of `objects` (path, sha256, size), 8 at a time; the first that differs
/// fails them all.
pub async fn objects(hub: &Hub, repo: &RepoRef, objects: Vec<(String, String, u64)>) -> Result<()> {
    use futures_util::StreamExt;
    let reads = objects.into_iter().map(|(path, oid, size)| {
        let (hub, repo) = (hub.clone(), repo.clone());
        async move { object(&hub, &repo, &path, &oid, size, None, Default::default()).await }
    });
    futures_util::stream::iter(reads)
        .buffer_unordered(8)
        .try_collect::<Vec<bool>>()
        .await?;
    Ok(())
}

/// `len` bytes from `offset` of the object, as one stream.
fn range(hub: &Hub, d: &Arc<crate::lfs::Download>, offset: u64, len: u64) -> ByteStream {
    let (hub, d) = (hub.clone(), d.clone());
    Box::pin(
        futures_util::stream::once(
            async move { hub.fetch_object(&d, offset, len).await.map_err(std::io::Error::other) },
        )
        .try_flatten(),
    )
}
