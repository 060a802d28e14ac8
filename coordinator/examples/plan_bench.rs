//! Benchmark of the planner: plans 1,000,000 files of random sizes into 100 chunks and prints the
//! time and the balance. Run with `cargo run --release -p migrate-coord --example plan_bench`.

use std::time::Instant;

use migrate_coord::flow::plan::{chunk_count, plan};

fn main() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let sizes: Vec<u64> = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 200_000_000 + 1
        })
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        let p = plan(&sizes, chunk_count(total, sizes.len(), 30_000_000_000, 100, true));
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(p);
    }
    let p = last.expect("planned");
    println!(
        "RESULT planner: 1,000,000 files into {} chunks in {:.3} s (best of 3; goal < 2 s); largest chunk {:.4}x the ideal",
        p.chunks.len(),
        best,
        p.largest() as f64 / p.ideal() as f64
    );
}
