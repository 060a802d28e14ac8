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

/// Hashes the parts of one object in order while they stream in parallel (one upload's parts,
/// each read and PUT over its own connection). The part at the head (the first one not yet
/// hashed) is hashed as its bytes pass; bytes of parts further on are held (references to the
/// received buffers, not copies) until every part before them is hashed. Held bytes are capped:
/// a part further on that would hold more waits until the head moves, so memory stays bounded
/// while the head part always goes on. A part that starts again (a retried PUT) drops what it
/// held, and the head part rolls its hash back to where the part began.
#[derive(Clone)]
pub struct PartHashes {
    order: Arc<Mutex<Order>>,
    moved: Arc<tokio::sync::Notify>,
}

struct Order {
    sha256: Sha256,
    /// The hash as it was when the head part began.
    checkpoint: Sha256,
    parts: usize,
    head: usize,
    head_bytes: u64,
    hashed: u64,
    held: std::collections::BTreeMap<usize, Vec<Bytes>>,
    held_bytes: u64,
    finished: std::collections::BTreeSet<usize>,
    cap: u64,
}

impl Order {
    /// Moves the head past every finished part, hashing what the next parts hold.
    fn advance(&mut self) {
        while self.head < self.parts && self.finished.remove(&self.head) {
            self.hashed += self.head_bytes;
            self.head += 1;
            self.checkpoint = self.sha256.clone();
            self.head_bytes = 0;
            for chunk in self.held.remove(&self.head).unwrap_or_default() {
                self.sha256.update(&chunk);
                self.head_bytes += chunk.len() as u64;
                self.held_bytes -= chunk.len() as u64;
            }
        }
    }
}

impl PartHashes {
    /// For `parts` parts (numbered from 0), holding at most `cap` bytes of parts ahead of the
    /// head (a part further on may pass the cap once: a single chunk is never split).
    pub fn new(parts: usize, cap: u64) -> Self {
        PartHashes {
            order: Arc::new(Mutex::new(Order {
                sha256: Sha256::new(),
                checkpoint: Sha256::new(),
                parts,
                head: 0,
                head_bytes: 0,
                hashed: 0,
                held: Default::default(),
                held_bytes: 0,
                finished: Default::default(),
                cap,
            })),
            moved: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `body`, one attempt at part `part`, with its bytes hashed in their place. Forgets what an
    /// earlier attempt at the part passed.
    pub fn part(&self, part: usize, body: ByteStream) -> ByteStream {
        {
            let mut o = self.lock();
            if part == o.head {
                o.sha256 = o.checkpoint.clone();
                o.head_bytes = 0;
            } else if let Some(chunks) = o.held.remove(&part) {
                o.held_bytes -= chunks.iter().map(|c| c.len() as u64).sum::<u64>();
            }
            o.finished.remove(&part);
        }
        let this = self.clone();
        Box::pin(futures_util::stream::unfold(Some(body), move |body| {
            let this = this.clone();
            async move {
                use futures_util::StreamExt;
                let mut body = body?;
                let item = body.next().await?;
                if let Ok(chunk) = &item {
                    this.pass(part, chunk).await;
                }
                Some((item, Some(body)))
            }
        }))
    }

    /// Hashes or holds one chunk of `part`; waits while the held bytes are over the cap and the
    /// part is not the head.
    async fn pass(&self, part: usize, chunk: &Bytes) {
        loop {
            let moved = self.moved.notified();
            {
                let mut o = self.lock();
                if part == o.head {
                    o.sha256.update(chunk);
                    o.head_bytes += chunk.len() as u64;
                    return;
                }
                if o.held_bytes < o.cap {
                    o.held_bytes += chunk.len() as u64;
                    o.held.entry(part).or_default().push(chunk.clone());
                    return;
                }
            }
            moved.await;
        }
    }

    /// Part `part` is in (its PUT succeeded): the head moves on past it when it is the head.
    pub fn finished(&self, part: usize) {
        {
            let mut o = self.lock();
            o.finished.insert(part);
            o.advance();
        }
        self.moved.notify_waiters();
    }

    /// The digest of every part in order, once all of them are in; `None` before.
    pub fn digests(&self) -> Option<Digests> {
        let o = self.lock();
        (o.head == o.parts).then(|| Digests {
            sha256: hex::encode(o.sha256.clone().finalize()),
            git_oid: None,
            bytes: o.hashed,
        })
    }
}

/// The sha256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
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

    fn stream_of(data: &[u8], piece: usize) -> ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> = data.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn parts_finishing_out_of_order_hash_as_the_whole_object() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let parts: Vec<&[u8]> = data.chunks(3000).collect();
        let h = PartHashes::new(parts.len(), 1 << 20);
        // Parts 3, 1, 2 stream and finish before part 0; part 2 is tried twice (its first
        // attempt sends garbage and fails).
        for &i in &[3usize, 1] {
            let got: Vec<u8> = h
                .part(i, stream_of(parts[i], 100))
                .map(|c| c.unwrap().to_vec())
                .concat()
                .await;
            assert_eq!(got, parts[i]);
            h.finished(i);
        }
        let _: Vec<_> = h.part(2, stream_of(&[9u8; 500], 100)).collect().await;
        let _: Vec<_> = h.part(2, stream_of(parts[2], 64)).collect().await;
        h.finished(2);
        assert!(h.digests().is_none(), "part 0 is not in yet");
        // The head part is tried twice too: its first attempt's bytes are rolled back.
        let _: Vec<_> = h.part(0, stream_of(&[1u8; 2000], 100)).collect().await;
        let _: Vec<_> = h.part(0, stream_of(parts[0], 1000)).collect().await;
        h.finished(0);
        let d = h.digests().expect("every part is in");
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(d.bytes, data.len() as u64);
    }

    #[tokio::test]
    async fn a_part_ahead_waits_at_the_cap_until_the_head_moves() {
        let data = vec![5u8; 4000];
        let h = PartHashes::new(2, 1000);
        // Part 1 holds up to the cap, then waits; part 0 (the head) goes on and, once in, lets
        // part 1 finish.
        let ahead = tokio::spawn({
            let h = h.clone();
            let part = data[2000..].to_vec();
            async move {
                let n = h.part(1, stream_of(&part, 250)).count().await;
                h.finished(1);
                n
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!ahead.is_finished(), "part 1 stopped at the cap");
        assert!(h.lock().held_bytes <= 1000);
        let _: Vec<_> = h.part(0, stream_of(&data[..2000], 250)).collect().await;
        h.finished(0);
        assert_eq!(ahead.await.unwrap(), 8);
        assert_eq!(h.digests().unwrap().sha256, hex::encode(Sha256::digest(&data)));
    }
}
