//! Parallel ranged reads: one file read over several connections at once, handed on as a single
//! stream in file order, so a destination that takes one PUT stream (ModelScope, Git LFS hosts,
//! small Hugging Face objects) still gets its bytes in order while the source is read at the speed
//! of many connections.
//!
//! The file is cut into segments; up to `streams` segments are fetched at once, each into its
//! own buffer, and the head segment flows on as its bytes arrive. A file with nothing fetched or
//! buffered always gets its next segment; reading further ahead takes memory permits from a
//! [`Budget`] shared by every file of a worker (a permit from the moment its fetch starts until
//! its last byte has been consumed), so no file's read-ahead delays another file's start. Memory
//! is bounded by the budget plus one segment per file being read; connections by the budget's
//! connection permits, held while a segment is fetched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::hashing::ByteStream;

/// Bytes per segment of a parallel read: one ranged GET each.
pub const SEGMENT: u64 = 8 << 20;
/// Read-ahead memory a worker may hold for objects read in parallel segments (besides one
/// segment per file being read).
pub const BUFFER_BUDGET: u64 = 48 << 20;

/// Buffered bytes are handed on in blocks of this size.
const BLOCK: usize = 1 << 20;

/// Opens the bytes `[offset, offset + len)` of one file (retrying and resuming on its own).
pub type Opener = Arc<dyn Fn(u64, u64) -> ByteStream + Send + Sync>;

/// Connections and buffer memory a worker may use for the ranges of its files.
#[derive(Clone, Debug)]
pub struct Budget {
    connections: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    segment: u64,
    streams: usize,
}

impl Budget {
    /// At most `connections` ranges fetched at once over all files, at most `memory` bytes
    /// buffered (in segments of `segment` bytes; at least one segment), and at most `streams`
    /// segments of one file in flight.
    pub fn new(connections: usize, memory: u64, segment: u64) -> Self {
        let segment = segment.max(1);
        let slots = (memory / segment).max(1) as usize;
        Budget {
            connections: Arc::new(Semaphore::new(connections.max(1))),
            memory: Arc::new(Semaphore::new(slots)),
            segment,
            streams: connections.max(1).min(slots),
        }
    }

    /// Bytes per segment.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Connections one file may use at once.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Waits for a free connection; it is held until the permit is dropped.
    pub async fn connection(&self) -> OwnedSemaphorePermit {
        self.connections
            .clone()
            .acquire_owned()
            .await
            .expect("the budget's semaphores are never closed")
    }

    /// Memory for a file's next segment: none needed while the file has nothing fetched or
    /// buffered (`held` counts its segments not yet consumed), a budget permit otherwise, waiting
    /// for whichever comes first.
    async fn memory(&self, held: &Held) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(p) = self.memory.clone().try_acquire_owned() {
                return Some(p);
            }
            let drained = held.drained.notified();
            if held.count.load(Ordering::Acquire) == 0 {
                return None;
            }
            tokio::select! {
                p = self.memory.clone().acquire_owned() => return p.ok(),
                _ = drained => {}
            }
        }
    }
}

/// A file's segments not yet consumed, and a signal when the last one is.
#[derive(Default)]
struct Held {
    count: AtomicUsize,
    drained: Notify,
}

/// One segment on its way: its bytes as they arrive, and the memory it may occupy.
struct Segment {
    rx: mpsc::UnboundedReceiver<std::io::Result<Bytes>>,
    _memory: Option<OwnedSemaphorePermit>,
    held: Arc<Held>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.held.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.held.drained.notify_waiters();
        }
    }
}

/// Aborts the segment producer when the reader is dropped (an error, a cancelled upload).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads `body` into `tx` in compact blocks of [`BLOCK`] bytes. The network's chunks are slices of
/// larger receive buffers: kept as they are, a buffered segment would pin up to twice its size.
async fn fetch(mut body: ByteStream, tx: mpsc::UnboundedSender<std::io::Result<Bytes>>) {
    let mut block = BytesMut::with_capacity(BLOCK);
    while let Some(item) = body.next().await {
        let mut chunk = match item {
            Ok(chunk) => chunk,
            Err(e) => {
                if !block.is_empty() {
                    let _ = tx.send(Ok(block.split().freeze()));
                }
                let _ = tx.send(Err(e));
                return;
            }
        };
        while !chunk.is_empty() {
            let take = chunk.len().min(BLOCK - block.len());
            block.extend_from_slice(&chunk.split_to(take));
            if block.len() == BLOCK {
                if tx.send(Ok(block.split().freeze())).is_err() {
                    return;
                }
                block.reserve(BLOCK);
            }
        }
    }
    if !block.is_empty() {
        let _ = tx.send(Ok(block.freeze()));
    }
}

/// The bytes `[offset, offset + len)` in order, fetched in segments over up to
/// `budget.streams()` connections at once. An error of any segment ends the stream with it.
pub fn ordered(open: Opener, offset: u64, len: u64, budget: &Budget) -> ByteStream {
    let budget = budget.clone();
    let seg = budget.segment;
    let (queue_tx, queue_rx) = mpsc::channel::<Segment>(budget.streams.max(1));
    let producer = tokio::spawn(async move {
        let held = Arc::new(Held::default());
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let n = seg.min(end - at);
            let memory = budget.memory(&held).await;
            let connection = budget.connection().await;
            let (tx, rx) = mpsc::unbounded_channel();
            held.count.fetch_add(1, Ordering::AcqRel);
            let segment = Segment {
                rx,
                _memory: memory,
                held: held.clone(),
            };
            // Waits while `streams` segments of this file are ahead of its consumer.
            if queue_tx.send(segment).await.is_err() {
                return;
            }
            let body = open(at, n);
            tokio::spawn(async move {
                let _connection = connection;
                fetch(body, tx).await;
            });
            at += n;
        }
    });
    let state = (queue_rx, None::<Segment>, AbortOnDrop(producer));
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut queue, mut current, guard)| async move {
            loop {
                let segment = match current.as_mut() {
                    Some(s) => s,
                    None => current.insert(queue.recv().await?),
                };
                match segment.rx.recv().await {
                    Some(item) => return Some((item, (queue, current, guard))),
                    // The segment is spent: its memory goes back to the budget.
                    None => current = None,
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn byte_at(i: u64) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 7) as u8
    }

    /// A fake source: serves `[offset, offset + len)` in 1000-byte chunks with a delay that
    /// varies by range, counting the ranges open at once.
    fn opener(open_now: Arc<AtomicUsize>, most: Arc<AtomicUsize>, fail_at: Option<u64>) -> Opener {
        Arc::new(move |offset, len| {
            let (open_now, most) = (open_now.clone(), most.clone());
            let n = open_now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            let delay = Duration::from_micros((offset / 1000 * 7919) % 500);
            let chunks: Vec<(u64, u64)> = (offset..offset + len)
                .step_by(1000)
                .map(|s| (s, 1000.min(offset + len - s)))
                .collect();
            let last = chunks.len();
            Box::pin(
                futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(k, (s, l))| {
                    let open_now = open_now.clone();
                    async move {
                        tokio::time::sleep(delay).await;
                        if k + 1 == last {
                            open_now.fetch_sub(1, Ordering::SeqCst);
                        }
                        if fail_at.is_some_and(|f| (s..s + l).contains(&f)) {
                            return Err(std::io::Error::other("source broke"));
                        }
                        Ok(Bytes::from((s..s + l).map(byte_at).collect::<Vec<u8>>()))
                    }
                }),
            )
        })
    }

    async fn collect(s: ByteStream) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(b) = s.next().await {
            out.extend_from_slice(&b?);
        }
        Ok(out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_come_out_in_order_and_whole() {
        for (offset, len, seg) in [
            (0, 100_000, 7_000),
            (12_345, 54_321, 10_000),
            (5, 3, 10_000),
            (0, 0, 10),
        ] {
            let (open_now, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
            let budget = Budget::new(4, 6 * seg, seg);
            let got = collect(ordered(opener(open_now, most.clone(), None), offset, len, &budget))
                .await
                .unwrap();
            let want: Vec<u8> = (offset..offset + len).map(byte_at).collect();
            assert_eq!(got.len(), want.len());
            assert!(
                got == want,
                "bytes out of order for {offset}+{len} in segments of {seg}"
            );
            assert!(
                most.load(Ordering::SeqCst) <= 4,
                "more connections than the budget allows"
            );
            if len > 4 * seg {
                assert!(most.load(Ordering::SeqCst) > 1, "segments were read one at a time");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_share_one_budget_without_deadlock() {
        // Two memory slots for three files read at once: every file still finishes.
        let budget = Budget::new(8, 2 * 4_000, 4_000);
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..3u64).map(|f| {
            let s = ordered(
                opener(Arc::default(), most.clone(), None),
                f * 1_000_000,
                50_000,
                &budget,
            );
            async move { (f, collect(s).await.unwrap()) }
        });
        let done = tokio::time::timeout(Duration::from_secs(20), futures_util::future::join_all(reads))
            .await
            .expect("the reads finished");
        for (f, got) in done {
            assert_eq!(
                got,
                (f * 1_000_000..f * 1_000_000 + 50_000).map(byte_at).collect::<Vec<_>>()
            );
        }
        assert!(
            most.load(Ordering::SeqCst) <= 2 + 3,
            "more segments in memory than the budget plus one per file"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_files_read_ahead_does_not_hold_up_another() {
        // One memory slot, taken by a file whose consumer has stopped reading: another file
        // still reads to its end, one segment at a time.
        let budget = Budget::new(8, 4_000, 4_000);
        let mut stalled = ordered(opener(Arc::default(), Arc::default(), None), 0, 40_000, &budget);
        assert!(stalled.next().await.is_some());
        let other = ordered(opener(Arc::default(), Arc::default(), None), 1_000_000, 40_000, &budget);
        let got = tokio::time::timeout(Duration::from_secs(10), collect(other))
            .await
            .expect("the second file was not held up")
            .unwrap();
        assert_eq!(got, (1_000_000..1_040_000).map(byte_at).collect::<Vec<_>>());
        drop(stalled);
    }

    #[tokio::test]
    async fn an_error_in_any_segment_ends_the_stream() {
        let budget = Budget::new(4, 40_000, 10_000);
        let err = collect(ordered(
            opener(Arc::default(), Arc::default(), Some(33_000)),
            0,
            80_000,
            &budget,
        ))
        .await
        .unwrap_err();
        assert!(err.to_string().contains("source broke"));
    }
}
