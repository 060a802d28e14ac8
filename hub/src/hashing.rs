//! Hashing as bytes stream by: a stream adapter that feeds every chunk to sha256 (and, for
//! regular files, to the git blob sha1), counts bytes for progress, and leaves the digests in a
//! shared slot once the stream ends. Composed around the one byte stream that flows from the
//! source to the destination, so nothing is read twice and nothing touches a disk.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A stream of bytes from a hub.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// Digests of everything that passed through a [`Hashing`] stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub sha256: String,
    /// Git blob id (`sha1("blob <size>\0" + content)`), when requested.
    pub git_oid: Option<String>,
    pub bytes: u64,
}

struct State {
    sha256: Sha256,
    git: Option<Sha1>,
    done: Option<Digests>,
    bytes: u64,
}

/// Reads the digests after the stream has ended.
#[derive(Clone)]
pub struct DigestSlot(Arc<Mutex<State>>);

impl DigestSlot {
    /// The digests, once the stream reached its end (`None` before, or after an error).
    pub fn get(&self) -> Option<Digests> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).done.clone()
    }

    /// The digests of everything that passed so far, ending the hash. For consumers that stop
    /// polling once they have the bytes they expected (an HTTP body with a Content-Length never
    /// polls past its end); callers compare `bytes` with what they expected.
    pub fn finish(&self) -> Digests {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        finalize(&mut st);
        st.done.clone().unwrap_or(Digests {
            sha256: String::new(),
            git_oid: None,
            bytes: 0,
        })
    }
}

fn finalize(st: &mut State) {
    if st.done.is_none() {
        let sha256 = hex::encode(std::mem::take(&mut st.sha256).finalize());
        let git_oid = st.git.take().map(|g| hex::encode(g.finalize()));
        st.done = Some(Digests {
            sha256,
            git_oid,
            bytes: st.bytes,
        });
    }
}

/// The adapter. `progress` is bumped by every chunk's length.
pub struct Hashing {
    inner: ByteStream,
    state: Arc<Mutex<State>>,
    progress: Arc<AtomicU64>,
}

impl Hashing {
    /// Wraps `inner`; with `git_size`, also computes the git blob id for a blob of that size.
    pub fn new(inner: ByteStream, git_size: Option<u64>, progress: Arc<AtomicU64>) -> (Self, DigestSlot) {
        let git = git_size.map(|n| {
            let mut h = Sha1::new();
            h.update(format!("blob {n}\0").as_bytes());
            h
        });
        let state = Arc::new(Mutex::new(State {
            sha256: Sha256::new(),
            git,
            done: None,
            bytes: 0,
        }));
        (
            Hashing {
                inner,
                state: state.clone(),
                progress,
            },
            DigestSlot(state),
        )
    }
}

impl Stream for Hashing {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                st.sha256.update(chunk);
                if let Some(g) = st.git.as_mut() {
                    g.update(chunk);
                }
                st.bytes += chunk.len() as u64;
                self.progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            Poll::Ready(None) => finalize(&mut st),
            _ => {}
        }
        polled
    }
}

/// The git blob id of `data`.
pub fn git_blob_id(data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn digests_match_one_shot_hashes() {
        let data = b"hello world, streamed in pieces".to_vec();
        let chunks: Vec<std::io::Result<Bytes>> = data.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let progress = Arc::new(AtomicU64::new(0));
        let (s, slot) = Hashing::new(
            Box::pin(futures_util::stream::iter(chunks)),
            Some(data.len() as u64),
            progress.clone(),
        );
        let collected: Vec<u8> = s.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(collected, data);
        let d = slot.get().unwrap();
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(d.git_oid.as_deref(), Some(git_blob_id(&data).as_str()));
        assert_eq!(
            git_blob_id(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
            "git's empty blob"
        );
        assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);
    }
}
