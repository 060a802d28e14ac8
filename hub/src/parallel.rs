//! Parallel ranged reads: one file read over several connections at once, handed on as a single
//! stream in file order, so a destination that takes one PUT stream (ModelScope, Git LFS hosts,
//! small Hugging Face objects) still gets its bytes in order while the source is read ahead.
//!
//! The file is cut into spans of [`SPAN`] bytes, one ranged GET each (16 a GiB, not one per few
//! MiB: fewer requests and TCP ramps).
//! Up to `streams` spans of a file are open at once; the head span flows on as its bytes
//! arrive, and each span ahead reads only as far as its small buffer allows, then waits with
//! its connection open (TCP's own flow control holds the server back) until the reader gets
//! to it. Memory is bounded by the budget: every open span of the worker holds at most its
//! buffer; connections by the budget's connection permits, held while a span is open.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::hashing::ByteStream;

/// Bytes per span of a parallel read: one ranged GET each.
pub const SPAN: u64 = 64 << 20;
/// Read-ahead memory a worker may hold for objects read in parallel spans, over all its files.
pub const BUFFER_BUDGET: u64 = 48 << 20;

/// Read-ahead is counted in units of this many bytes.
const UNIT: usize = 1 << 10;
/// A span ahead may hold at least this much, whatever the budget.
const SPAN_MIN_ROOM: usize = 2 << 20;
/// Network chunks smaller than this are copied together before they are held: a small slice
/// of a large receive buffer would pin all of it. Larger chunks are held as they are (no copy:
/// copying every byte cost a tenth of a worker's CPU).
const COPY_BELOW: usize = 64 << 10;

/// Opens the bytes `[offset, offset + len)` of one file (retrying and resuming on its own).
pub type Opener = Arc<dyn Fn(u64, u64) -> ByteStream + Send + Sync>;

/// Connections and buffer memory a worker may use for the ranges of its files.
#[derive(Clone, Debug)]
pub struct Budget {
    connections: Arc<Semaphore>,
    connection_count: usize,
    span: u64,
    streams: usize,
    /// Bytes one open span may hold before it waits for its reader.
    span_room: usize,
}

impl Budget {
    /// At most `connections` ranges open at once over all files, spans of `span` bytes, at most
    /// half the connections (at least one) open for one file, and `memory` bytes of read-ahead
    /// shared out among the open spans (at least 2 MiB each).
    pub fn new(connections: usize, memory: u64, span: u64) -> Self {
        let connections = connections.max(1);
        Budget {
            connections: Arc::new(Semaphore::new(connections)),
            connection_count: connections,
            span: span.max(1),
            streams: (connections / 2).max(1),
            span_room: ((memory / connections as u64) as usize).max(SPAN_MIN_ROOM),
        }
    }

    /// Bytes per span (one ranged GET).
    pub fn segment(&self) -> u64 {
        self.span
    }

    /// Spans one file may have open at once.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Connections the worker may open at once: what one file may use when its ranges go
    /// straight on to their own destinations (multipart parts), not into the budget's memory.
    pub fn connections(&self) -> usize {
        self.connection_count
    }

    /// Waits for a free connection; it is held until the permit is dropped.
    pub async fn connection(&self) -> OwnedSemaphorePermit {
        self.connections
            .clone()
            .acquire_owned()
            .await
            .expect("the budget's semaphores are never closed")
    }
}

/// Aborts the span producer when the reader is dropped (an error, a cancelled upload).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One span's bytes on their way to the reader, counted against the span's room.
struct Held {
    rx: mpsc::UnboundedReceiver<std::io::Result<Bytes>>,
    room: Arc<Semaphore>,
    cap: u32,
}

impl Drop for Held {
    /// The reader is gone (done, failed or cancelled): a fetch waiting for room ends, and its
    /// connection goes back to the budget.
    fn drop(&mut self) {
        self.room.close();
    }
}

/// Room units a chunk of `len` bytes takes (a chunk larger than the whole room takes it all).
fn units(len: usize, cap: u32) -> u32 {
    (len.div_ceil(UNIT) as u32).min(cap)
}

/// Reads `body` into `tx`, holding at most the span's room of bytes the reader has not taken:
/// when it is full the read waits with its connection open (TCP holds the server back).
async fn fetch(
    mut body: ByteStream,
    tx: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    room: Arc<Semaphore>,
    cap: u32,
) {
    let send = |b: Bytes| {
        let (tx, room) = (&tx, &room);
        async move {
            let Ok(permit) = room.acquire_many(units(b.len(), cap)).await else {
                return false;
            };
            permit.forget();
            tx.send(Ok(b)).is_ok()
        }
    };
    let mut small = BytesMut::new();
    loop {
        match body.next().await {
            Some(Ok(chunk)) if chunk.len() < COPY_BELOW => {
                small.extend_from_slice(&chunk);
                if small.len() >= COPY_BELOW && !send(small.split().freeze()).await {
                    return;
                }
            }
            Some(Ok(chunk)) => {
                if !small.is_empty() && !send(small.split().freeze()).await {
                    return;
                }
                if !send(chunk).await {
                    return;
                }
            }
            end => {
                if !small.is_empty() && !send(small.split().freeze()).await {
                    return;
                }
                if let Some(Err(e)) = end {
                    let _ = tx.send(Err(e));
                }
                return;
            }
        }
    }
}

/// The bytes `[offset, offset + len)` in order, fetched in spans over up to `budget.streams()`
/// connections at once. An error of any span ends the stream with it.
pub fn ordered(open: Opener, offset: u64, len: u64, budget: &Budget) -> ByteStream {
    let budget = budget.clone();
    // A file has at most `streams` spans open: the one being read and those queued behind it.
    let queued = budget.streams.saturating_sub(1).max(1);
    let (queue_tx, queue_rx) = mpsc::channel::<Held>(queued);
    let producer = tokio::spawn(async move {
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let n = budget.span.min(end - at);
            let Ok(slot) = queue_tx.reserve().await else {
                return;
            };
            let connection = budget.connection().await;
            let (tx, rx) = mpsc::unbounded_channel();
            let cap = (budget.span_room / UNIT) as u32;
            let room = Arc::new(Semaphore::new(cap as usize));
            slot.send(Held {
                rx,
                room: room.clone(),
                cap,
            });
            let body = open(at, n);
            tokio::spawn(async move {
                let _connection = connection;
                fetch(body, tx, room, cap).await;
            });
            at += n;
        }
    });
    let state = (queue_rx, None::<Held>, AbortOnDrop(producer));
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut queue, mut current, guard)| async move {
            loop {
                let span = match current.as_mut() {
                    Some(s) => s,
                    None => current.insert(queue.recv().await?),
                };
                match span.rx.recv().await {
                    Some(item) => {
                        if let Ok(b) = &item {
                            span.room.add_permits(units(b.len(), span.cap) as usize);
                        }
                        return Some((item, (queue, current, guard)));
                    }
                    // The span is spent: its connection goes back to the budget.
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
        // Three files read at once on a small budget: every file still finishes.
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
        assert!(most.load(Ordering::SeqCst) <= 8, "more ranges open than connections");
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_reader_gives_its_connection_back() {
        // One connection, taken by a span that filled its room and waits for a reader that is
        // then dropped: the next file still gets the connection.
        const MIB: u64 = 1 << 20;
        let budget = Budget::new(1, 0, 16 * MIB);
        let mut first = ordered(counting_opener(Arc::default(), Arc::default()), 0, 16 * MIB, &budget);
        assert!(first.next().await.is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(first);
        let second = ordered(counting_opener(Arc::default(), Arc::default()), 0, MIB, &budget);
        let got = tokio::time::timeout(Duration::from_secs(10), collect(second))
            .await
            .expect("the dropped reader's connection was never given back")
            .unwrap();
        assert_eq!(got.len() as u64, MIB);
    }

    /// A source of `len` bytes from `offset` in 64 KiB chunks, counting the ranges opened and
    /// the bytes handed out.
    fn counting_opener(opened: Arc<AtomicUsize>, produced: Arc<AtomicUsize>) -> Opener {
        Arc::new(move |offset, len| {
            opened.fetch_add(1, Ordering::SeqCst);
            let produced = produced.clone();
            let chunks: Vec<(u64, u64)> = (offset..offset + len)
                .step_by(65_536)
                .map(|s| (s, 65_536.min(offset + len - s)))
                .collect();
            Box::pin(futures_util::stream::iter(chunks).map(move |(s, l)| {
                produced.fetch_add(l as usize, Ordering::SeqCst);
                Ok(Bytes::from((s..s + l).map(byte_at).collect::<Vec<u8>>()))
            }))
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_ranged_get_per_span_and_spans_ahead_wait_for_the_reader() {
        const MIB: u64 = 1 << 20;
        let (opened, produced) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        // Four connections (two spans of a file open at once), 8 MiB of read-ahead: two blocks
        // a span.
        let budget = Budget::new(4, 8 * MIB, 16 * MIB);
        let mut reader = ordered(counting_opener(opened.clone(), produced.clone()), 0, 96 * MIB, &budget);
        let first = reader.next().await.expect("a first chunk").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let read_ahead = produced.load(Ordering::SeqCst) as u64;
        assert!(
            read_ahead <= 2 * 4 * MIB,
            "{read_ahead} bytes read from the source while the reader waited: spans ahead did not wait"
        );
        let mut got = first.len() as u64;
        while let Some(b) = reader.next().await {
            got += b.unwrap().len() as u64;
        }
        assert_eq!(got, 96 * MIB);
        assert_eq!(
            opened.load(Ordering::SeqCst),
            6,
            "96 MiB in spans of 16 MiB: six ranged GETs"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_chunks_are_handed_on_without_a_copy_and_small_ones_together() {
        // A span of three large chunks and many small ones: the large ones come out as the
        // very buffers the source gave (same address), the small ones joined.
        let big: Vec<Bytes> = (0..3).map(|i| Bytes::from(vec![i as u8; 100_000])).collect();
        let addresses: Vec<usize> = big.iter().map(|b| b.as_ptr() as usize).collect();
        let mut chunks: Vec<Bytes> = big.clone();
        chunks.extend((0..100).map(|_| Bytes::from_static(&[9u8; 1000])));
        let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let open: Opener =
            Arc::new(move |_, _| Box::pin(futures_util::stream::iter(chunks.clone().into_iter().map(Ok))));
        let budget = Budget::new(2, 8 << 20, len);
        let got: Vec<Bytes> = ordered(open, 0, len, &budget).map(|b| b.unwrap()).collect().await;
        let got_addresses: Vec<usize> = got.iter().take(3).map(|b| b.as_ptr() as usize).collect();
        assert_eq!(got_addresses, addresses, "large chunks were copied");
        assert_eq!(got.len(), 5, "100 small chunks of 1000 bytes come out in two pieces");
        assert_eq!(got.iter().map(|b| b.len() as u64).sum::<u64>(), len);
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
