//! The planner: cuts a manifest into size-balanced chunks, one worker each. Largest files first,
//! each into the currently least-loaded chunk (LPT scheduling). The chunk count never exceeds
//! `--max-workers` nor the number of files; see [`chunk_count`] for how `--parallel` and
//! `--chunk-size` choose it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One chunk: indices into the planned file list, and their total size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: u32,
    pub files: Vec<usize>,
    pub bytes: u64,
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

/// Plans `sizes` (file sizes, in manifest order) into `chunks` balanced chunks (fewer when there
/// are fewer files).
pub fn plan(sizes: &[u64], chunks: usize) -> Plan {
    let total: u64 = sizes.iter().sum();
    let n = chunks.clamp(1, sizes.len().max(1));
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // Largest first; ties by index so plans are deterministic.
    order.sort_unstable_by_key(|&i| (Reverse(sizes[i]), i));
    let mut chunks: Vec<Chunk> = (0..n)
        .map(|id| Chunk {
            id: id as u32,
            files: Vec::new(),
            bytes: 0,
        })
        .collect();
    // Min-heap of (load, chunk id): the least-loaded chunk on top.
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..n).map(|i| Reverse((0, i))).collect();
    for i in order {
        let Some(Reverse((load, c))) = heap.pop() else { break };
        chunks[c].files.push(i);
        chunks[c].bytes = load + sizes[i];
        heap.push(Reverse((chunks[c].bytes, c)));
    }
    chunks.retain(|c| !c.files.is_empty());
    for (id, c) in chunks.iter_mut().enumerate() {
        c.id = id as u32;
    }
    Plan {
        chunks,
        total_bytes: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_partition(sizes: &[u64], p: &Plan) {
        let mut seen = vec![false; sizes.len()];
        for c in &p.chunks {
            assert_eq!(c.bytes, c.files.iter().map(|&i| sizes[i]).sum::<u64>());
            for &i in &c.files {
                assert!(!seen[i], "file {i} planned twice");
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s), "every file is planned");
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
