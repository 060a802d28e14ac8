//! The planner: cuts a manifest into size-balanced chunks, one worker each. Largest files first,
//! each into the currently least-loaded chunk (LPT scheduling). A file the destination can take
//! in parts (multipart uploads) and that is larger than a piece is cut into byte-range pieces
//! first, so one big file no longer sets the whole migration's time. The chunk count never
//! exceeds `--max-workers` nor the number of pieces; see [`chunk_count`] for how `--parallel`
//! and `--chunk-size` choose it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hubmigrate_proto as pb;

use crate::cli::{RunArgs, SplitFiles};

/// One chunk: indices into the planned file list (whole files), pieces of split files, and
/// their total size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: u32,
    pub files: Vec<usize>,
    pub pieces: Vec<Piece>,
    pub bytes: u64,
}

/// The bytes `[offset, offset + len)` of file `file`, moved by one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub file: usize,
    pub offset: u64,
    pub len: u64,
}

/// The plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub chunks: Vec<Chunk>,
    pub total_bytes: u64,
}

impl Plan {
    /// The largest chunk's size.
    pub fn largest(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).max().unwrap_or(0)
    }

    /// How many files are split across chunks, and into how many pieces in all.
    pub fn split(&self) -> (usize, usize) {
        let pieces: Vec<usize> = self
            .chunks
            .iter()
            .flat_map(|c| c.pieces.iter().map(|p| p.file))
            .collect();
        let files: std::collections::HashSet<usize> = pieces.iter().copied().collect();
        (files.len(), pieces.len())
    }

    /// The ideal chunk size: total / chunks.
    pub fn ideal(&self) -> u64 {
        self.total_bytes.div_ceil(self.chunks.len().max(1) as u64)
    }
}

/// Below this, splitting a repo across more workers costs more than it saves.
pub const MIN_PARALLEL_CHUNK: u64 = 64 * 1024 * 1024;

/// How many chunks. Single mode: `ceil(total / chunk_size)` (one chunk unless the repo is
/// large). Parallel mode: as many as `max_workers` allows, down to chunks of
/// [`MIN_PARALLEL_CHUNK`], and never fewer than single mode would use. Always at least 1, at
/// most `max_workers` and the number of files.
pub fn chunk_count(total: u64, files: usize, chunk_size: u64, max_workers: usize, parallel: bool) -> usize {
    let by_size = total.div_ceil(chunk_size.max(1)).max(1);
    let wanted = if parallel {
        by_size.max(total.div_ceil(MIN_PARALLEL_CHUNK))
    } else {
        by_size
    };
    (wanted.min(max_workers.max(1) as u64) as usize).min(files.max(1))
}

/// Split files are cut into pieces of at least this size (or the chunk size, when smaller).
pub const MIN_PIECE: u64 = 64 * 1024 * 1024;

/// How many pieces of at least `min_piece` bytes `size` bytes could be cut into (1 when it may
/// not be split): what [`chunk_count`] is given in place of a file count.
pub fn max_pieces(size: u64, splittable: bool, min_piece: u64) -> usize {
    if splittable {
        (size / min_piece.max(1)).max(1) as usize
    } else {
        1
    }
}

/// The pieces file `i` of `size` bytes is cut into for chunks of `ideal` bytes: pieces of about
/// a quarter of a chunk (at least `min_piece`), so that no piece outweighs the balance.
fn pieces(i: usize, size: u64, ideal: u64, min_piece: u64) -> Vec<Piece> {
    let target = (ideal / 4).max(min_piece).max(1);
    let n = size.div_ceil(target).max(1);
    let base = size / n;
    let extra = size % n;
    let mut offset = 0;
    (0..n)
        .map(|k| {
            let len = base + u64::from(k < extra);
            let p = Piece { file: i, offset, len };
            offset += len;
            p
        })
        .collect()
}

/// Plans `sizes` (file sizes, in manifest order) into `chunks` balanced chunks (fewer when there
/// are fewer files). No file is split.
pub fn plan(sizes: &[u64], chunks: usize) -> Plan {
    plan_split(sizes, chunks, MIN_PIECE, |_| false)
}

/// Plans `sizes` into `chunks` balanced chunks; files for which `splittable` holds and that are
/// larger than a chunk (and than `min_piece` bytes) are cut into byte-range pieces (of a
/// quarter of a chunk, at least `min_piece` bytes) spread like files.
pub fn plan_split(sizes: &[u64], chunks: usize, min_piece: u64, splittable: impl Fn(usize) -> bool) -> Plan {
    let total: u64 = sizes.iter().sum();
    let ideal = total.div_ceil(chunks.max(1) as u64);
    // Whole files as pieces with `len == size` and `offset == 0`; split files as several.
    let mut items: Vec<(Piece, bool)> = Vec::with_capacity(sizes.len());
    for (i, &size) in sizes.iter().enumerate() {
        // Only a file larger than a whole chunk is split: a split file is read back from the
        // destination before it is committed (no worker saw every byte), so splitting costs a
        // second pass over its bytes and is worth it only where balance cannot do without.
        if chunks > 1 && splittable(i) && size > ideal.max(min_piece) {
            items.extend(pieces(i, size, ideal, min_piece).into_iter().map(|p| (p, true)));
        } else {
            items.push((
                Piece {
                    file: i,
                    offset: 0,
                    len: size,
                },
                false,
            ));
        }
    }
    let n = chunks.clamp(1, items.len().max(1));
    // Largest first; ties by file and offset so plans are deterministic.
    items.sort_unstable_by_key(|(p, _)| (Reverse(p.len), p.file, p.offset));
    let mut chunks: Vec<Chunk> = (0..n)
        .map(|id| Chunk {
            id: id as u32,
            files: Vec::new(),
            pieces: Vec::new(),
            bytes: 0,
        })
        .collect();
    // Min-heap of (load, chunk id): the least-loaded chunk on top.
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..n).map(|i| Reverse((0, i))).collect();
    for (p, split) in items {
        let Some(Reverse((load, c))) = heap.pop() else { break };
        if split {
            chunks[c].pieces.push(p);
        } else {
            chunks[c].files.push(p.file);
        }
        chunks[c].bytes = load + p.len;
        heap.push(Reverse((chunks[c].bytes, c)));
    }
    chunks.retain(|c| !c.files.is_empty() || !c.pieces.is_empty());
    for (id, c) in chunks.iter_mut().enumerate() {
        c.id = id as u32;
    }
    Plan {
        chunks,
        total_bytes: total,
    }
}

/// Plans the tasks at `moved` (indices into `tasks`) into chunks whose file indices point into
/// `tasks`. With `multipart` (the destination takes multipart uploads) and `--split always`,
/// LFS files larger than a chunk are split across chunks.
///
/// Not by default: measured side by side on the peers bench (bench/RESULTS.md), the 1.5 GiB
/// file kept whole in one worker took 21.2 s (worker 144 MiB), split and read back 33.2 s
/// (136 MiB). A split file is read back before it is committed (no worker saw all of it), and
/// that second pass through one coordinator costs about what it saved.
pub fn plan_tasks(tasks: &[pb::FileTask], moved: &[usize], args: &RunArgs, multipart: bool) -> Plan {
    let sizes: Vec<u64> = moved.iter().map(|&i| tasks[i].size).collect();
    let splittable = |k: usize| {
        let t = &tasks[moved[k]];
        multipart && args.split == SplitFiles::Always && t.lfs && t.source_lfs && t.sha256.len() == 64
    };
    // "A file larger than the chunk size is split": pieces are never smaller than it.
    let min_piece = args.chunk_size.clamp(1, MIN_PIECE);
    let pieces: usize = (0..sizes.len())
        .map(|k| max_pieces(sizes[k], splittable(k), min_piece))
        .sum();
    let n = chunk_count(
        sizes.iter().sum(),
        pieces,
        args.chunk_size,
        args.max_workers as usize,
        args.parallel,
    );
    let mut p = plan_split(&sizes, n, min_piece, splittable);
    for c in &mut p.chunks {
        for f in &mut c.files {
            *f = moved[*f];
        }
        for piece in &mut c.pieces {
            piece.file = moved[piece.file];
        }
    }
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every byte of every file is planned exactly once.
    fn check_partition(sizes: &[u64], p: &Plan) {
        let mut ranges: Vec<Vec<(u64, u64)>> = vec![Vec::new(); sizes.len()];
        for c in &p.chunks {
            let bytes = c.files.iter().map(|&i| sizes[i]).sum::<u64>() + c.pieces.iter().map(|p| p.len).sum::<u64>();
            assert_eq!(c.bytes, bytes);
            for &i in &c.files {
                ranges[i].push((0, sizes[i]));
            }
            for piece in &c.pieces {
                ranges[piece.file].push((piece.offset, piece.offset + piece.len));
            }
        }
        for (i, r) in ranges.iter_mut().enumerate() {
            r.sort_unstable();
            assert!(!r.is_empty(), "file {i} is planned");
            let mut at = 0;
            for &(a, b) in r.iter() {
                assert_eq!(a, at, "file {i}: a gap or an overlap at byte {at}");
                at = b;
            }
            assert_eq!(at, sizes[i], "file {i} is planned to its end");
        }
    }

    /// An LFS file of `size` bytes, read from an LFS source (splittable).
    pub(crate) fn lfs(size: u64) -> pb::FileTask {
        pb::FileTask {
            size,
            lfs: true,
            source_lfs: true,
            sha256: "a".repeat(64),
            ..Default::default()
        }
    }

    #[test]
    fn files_larger_than_a_chunk_are_split_only_when_asked() {
        const MIB: u64 = 1 << 20;
        // The peers bench: 1.5 GiB and ten 200 MiB files on 8 workers.
        let mut tasks = vec![lfs(1536 * MIB)];
        tasks.extend((0..10).map(|_| lfs(200 * MIB)));
        let moved: Vec<usize> = (0..tasks.len()).collect();
        let args = RunArgs {
            parallel: true,
            max_workers: 8,
            ..Default::default()
        };
        assert_eq!(
            plan_tasks(&tasks, &moved, &args, true).split(),
            (0, 0),
            "whole by default"
        );
        let always = RunArgs {
            split: SplitFiles::Always,
            ..args
        };
        let (files, pieces) = plan_tasks(&tasks, &moved, &always, true).split();
        assert_eq!(files, 1, "the file larger than a chunk is split");
        assert!(pieces > 1);
        assert_eq!(
            plan_tasks(&tasks, &moved, &always, false).split(),
            (0, 0),
            "no parts, no split"
        );
    }

    #[test]
    fn small_cases() {
        let p = plan(&[], 4);
        assert!(p.chunks.is_empty() && p.total_bytes == 0);
        let p = plan(&[5, 5, 5, 5], chunk_count(20, 4, 10, 100, false));
        assert_eq!(p.chunks.len(), 2);
        assert_eq!(p.largest(), 10);
        let p = plan(&[100, 1, 1, 1], chunk_count(103, 4, 10, 3, false));
        assert_eq!(p.chunks.len(), 3, "capped by max workers");
        assert_eq!(p.largest(), 100, "one big file sets the largest chunk");
        check_partition(&[100, 1, 1, 1], &p);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The chunk count never exceeds max_workers, every file lands in exactly one chunk, and
        /// when no file dominates, the largest chunk is within 5% of max(largest file, total/chunks).
        #[test]
        fn balanced(n in 1usize..20_000, max_size in 1u64..1_000_000, chunk_size in 1u64..50_000_000, workers in 1usize..200, seed in any::<u64>()) {
            let mut x = seed | 1;
            let sizes: Vec<u64> = (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x % max_size + 1 }).collect();
            let total: u64 = sizes.iter().sum();
            let p = plan(&sizes, chunk_count(total, sizes.len(), chunk_size, workers, seed % 2 == 0));
            prop_assert!(p.chunks.len() <= workers);
            check_partition(&sizes, &p);
            let largest_file = *sizes.iter().max().unwrap();
            let bound = largest_file.max(p.total_bytes.div_ceil(p.chunks.len() as u64));
            // "No single file dominates": the largest file is small next to a chunk's share.
            if largest_file * 20 <= p.ideal() {
                prop_assert!(p.largest() as f64 <= bound as f64 * 1.05, "largest {} vs bound {}", p.largest(), bound);
            }
        }
    }

    #[test]
    fn a_big_file_is_spread_when_it_may_be_split() {
        const MIB: u64 = 1 << 20;
        // The benchmark's shape: 1.5 GiB, 10 x 200 MiB, 200 small files, 8 workers.
        let mut sizes = vec![1536 * MIB];
        sizes.extend([200 * MIB; 10]);
        sizes.extend([4096; 200]);
        let whole = plan(&sizes, 8);
        assert_eq!(whole.largest(), 1536 * MIB, "unsplit, the big file is one chunk");
        let split = plan_split(&sizes, 8, MIN_PIECE, |_| true);
        check_partition(&sizes, &split);
        assert_eq!(split.chunks.len(), 8);
        assert!(
            split.largest() as f64 <= split.ideal() as f64 * 1.25,
            "largest {} vs ideal {}",
            split.largest(),
            split.ideal()
        );
        let holders = split
            .chunks
            .iter()
            .filter(|c| c.pieces.iter().any(|p| p.file == 0))
            .count();
        assert!(holders >= 4, "the big file is moved by {holders} chunks");
        // Only what may be split is split; small files never are.
        let only_big = plan_split(&sizes, 8, MIN_PIECE, |i| i == 0);
        check_partition(&sizes, &only_big);
        assert!(only_big.chunks.iter().flat_map(|c| &c.pieces).all(|p| p.file == 0));
        // One chunk: nothing to spread.
        assert!(plan_split(&sizes, 1, MIN_PIECE, |_| true).chunks[0].pieces.is_empty());
        // A 50 GB file alone spreads over every worker.
        let one = plan_split(
            &[50_000_000_000],
            chunk_count(
                50_000_000_000,
                max_pieces(50_000_000_000, true, MIN_PIECE),
                30_000_000_000,
                100,
                true,
            ),
            MIN_PIECE,
            |_| true,
        );
        check_partition(&[50_000_000_000], &one);
        assert_eq!(one.chunks.len(), 100);
        assert!(one.largest() as f64 <= one.ideal() as f64 * 1.25);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With splitting, every byte is planned once and the largest chunk stays within a
        /// quarter of the ideal (or one minimal piece) above it.
        #[test]
        fn split_plans_cover_every_byte(n in 1usize..300, max_size in 1u64..(4u64 << 30), workers in 1usize..120, seed in any::<u64>()) {
            let mut x = seed | 1;
            let sizes: Vec<u64> = (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x % max_size + 1 }).collect();
            let total: u64 = sizes.iter().sum();
            let items: usize = sizes.iter().map(|&s| max_pieces(s, true, MIN_PIECE)).sum();
            let p = plan_split(&sizes, chunk_count(total, items, 1 << 30, workers, true), MIN_PIECE, |i| i % 3 != 0);
            prop_assert!(p.chunks.len() <= workers);
            check_partition(&sizes, &p);
            let unsplit = sizes.iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, &s)| s).max().unwrap_or(0);
            let bound = (p.ideal() + (p.ideal() / 4).max(MIN_PIECE)).max(unsplit + p.ideal());
            prop_assert!(p.largest() <= bound, "largest {} vs bound {}", p.largest(), bound);
        }
    }

    #[test]
    fn chunk_counts() {
        const GIB: u64 = 1 << 30;
        assert_eq!(
            chunk_count(4 * GIB, 211, 30_000_000_000, 8, false),
            1,
            "single mode: one chunk for a small repo"
        );
        assert_eq!(
            chunk_count(4 * GIB, 211, 30_000_000_000, 8, true),
            8,
            "parallel: up to max workers"
        );
        assert_eq!(
            chunk_count(100 << 20, 50, 30_000_000_000, 8, true),
            2,
            "parallel: no tiny chunks"
        );
        assert_eq!(
            chunk_count(100 * GIB, 3, GIB, 100, true),
            3,
            "never more chunks than files"
        );
        assert_eq!(
            chunk_count(100 * GIB, 1000, GIB, 100, false),
            100,
            "never more than max workers"
        );
        assert_eq!(chunk_count(0, 0, GIB, 100, true), 1);
    }

    #[test]
    fn a_million_files_stay_balanced() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let sizes: Vec<u64> = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 50_000_000 + 1
            })
            .collect();
        let total: u64 = sizes.iter().sum();
        let p = plan(&sizes, chunk_count(total, sizes.len(), 30_000_000_000, 100, false));
        assert_eq!(p.chunks.len(), 100);
        check_partition(&sizes, &p);
        assert!(p.largest() as f64 <= p.ideal() as f64 * 1.05);
    }
}
