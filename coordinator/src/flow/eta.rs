//! The plan's ETA from a throughput model: every connection runs at the per-connection rate
//! (measured by a short probe download from the source before the plan is printed, or assumed),
//! a worker moves `concurrency` files at once and reads a large file (or piece) over up to
//! `streams` connections, chunks run on at most `max_workers` workers at once, and
//! the whole is capped by `--rate-cap` when the hubs' allowance is known. During the run the
//! progress display replaces it with the measured rate.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hubmigrate_proto as pb;

use crate::cli::RunArgs;
use crate::flow::plan::Plan;
use crate::flow::resolve::{Side, Sides};

/// Per-connection rate assumed when nothing could be measured (bytes per second).
pub const ASSUMED_RATE: f64 = 50.0 * 1024.0 * 1024.0;
/// The probe reads at most this much...
const PROBE_BYTES: u64 = 8 << 20;
/// ... for at most this long after its first byte.
const PROBE_WINDOW: Duration = Duration::from_millis(300);
/// Files smaller than this say more about latency than bandwidth: no probe.
const PROBE_MIN: u64 = 1 << 20;

/// The model's inputs.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// Bytes per second of one file stream.
    pub per_connection: f64,
    /// Whether `per_connection` was measured (else assumed).
    pub measured: bool,
    /// Files a worker moves at once.
    pub concurrency: usize,
    /// Connections a worker opens at once for the ranges of its large files.
    pub streams: usize,
    /// Whether the destination takes objects in parallel parts; otherwise each object is one PUT
    /// stream, as fast as one connection, however fast it is read.
    pub multipart: bool,
    /// Workers at once.
    pub max_workers: usize,
    /// Bytes per second allowed overall, when known.
    pub cap: Option<f64>,
    /// Seconds before a file's first byte (request latency), measured with the rate.
    pub latency: f64,
}

/// Objects from this size on are assumed to go in parts of [`PART`] bytes, one connection each,
/// where the destination takes parts; a smaller object is one PUT. The hub chooses both when
/// asked to store an object: these are hubsim's defaults.
const PARTS_FROM: u64 = 64 << 20;
const PART: u64 = 16 << 20;

/// Starting workers, then committing and verifying: paid once per run (seconds).
const FIXED_SECS: f64 = 0.6;

/// Connections a split file is read back over by the coordinator before it is committed (its
/// read-back budget of 8 connections lets one file open 4 spans at once).
const READBACK_STREAMS: f64 = 4.0;

/// Largest-first onto `lanes` lanes; returns the longest lane.
fn makespan(mut jobs: Vec<f64>, lanes: usize) -> f64 {
    jobs.sort_by(|a, b| b.total_cmp(a));
    let mut lane = vec![0.0f64; lanes.max(1)];
    for j in jobs {
        if let Some(min) = lane.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *min += j;
        }
    }
    lane.into_iter().fold(0.0, f64::max)
}

impl Model {
    /// Seconds one chunk takes: its `jobs` (bytes, and whether they go in parts) `concurrency`
    /// at a time; a job in parts goes over as many connections as it has ranges (at most
    /// `streams`), and those all share the worker's `streams` connections; any other job is
    /// one PUT stream.
    pub fn chunk_secs(&self, jobs: &[(u64, bool)]) -> f64 {
        let streams = self.streams.max(1) as u64;
        let ranges = |&(s, parts): &(u64, bool)| {
            if parts {
                s.div_ceil(PART).clamp(1, streams) as f64
            } else {
                1.0
            }
        };
        let secs = jobs
            .iter()
            .map(|j| self.latency + j.0 as f64 / (self.per_connection * ranges(j)))
            .collect();
        let shared: u64 = jobs.iter().filter(|j| j.1).map(|j| j.0).sum();
        makespan(secs, self.concurrency).max(shared as f64 / (self.per_connection * streams as f64))
    }

    /// The ETA of the whole transfer.
    pub fn eta(&self, plan: &Plan, tasks: &[pb::FileTask]) -> Duration {
        // Pieces of split files always go in parts; whole files when large enough.
        let jobs = |c: &crate::flow::plan::Chunk| -> Vec<(u64, bool)> {
            let whole = c
                .files
                .iter()
                .map(|&i| (tasks[i].size, self.multipart && tasks[i].size >= PARTS_FROM));
            whole.chain(c.pieces.iter().map(|p| (p.len, true))).collect()
        };
        let chunks: Vec<f64> = plan.chunks.iter().map(|c| self.chunk_secs(&jobs(c))).collect();
        let total: u64 = plan.chunks.iter().map(|c| c.bytes).sum();
        let secs = makespan(chunks, self.max_workers);
        let capped = self.cap.map(|c| total as f64 / c.max(1.0)).unwrap_or(0.0);
        let fixed = if plan.chunks.is_empty() { 0.0 } else { FIXED_SECS };
        Duration::from_secs_f64(fixed + secs.max(capped) + self.readback_secs(plan, tasks))
    }

    /// Seconds to read every split file back from the destination: no worker saw all of one, so
    /// the coordinator hashes it before a commit names it (counted after the transfer: the last
    /// split file completes with its last piece).
    pub fn readback_secs(&self, plan: &Plan, tasks: &[pb::FileTask]) -> f64 {
        let split: std::collections::BTreeSet<usize> = plan
            .chunks
            .iter()
            .flat_map(|c| c.pieces.iter().map(|p| p.file))
            .collect();
        let bytes: u64 = split.iter().map(|&i| tasks[i].size).sum();
        let rate = (self.per_connection * READBACK_STREAMS).min(self.cap.unwrap_or(f64::INFINITY));
        bytes as f64 / rate.max(1.0)
    }

    /// The model before anything is measured: `args`' workers, connections and cap, and the
    /// assumed per-connection rate.
    pub fn assumed(args: &RunArgs, multipart: bool) -> Model {
        Model {
            per_connection: ASSUMED_RATE,
            latency: 0.0,
            measured: false,
            concurrency: args.worker_concurrency.max(1) as usize,
            streams: args.streams.max(1) as usize,
            multipart,
            max_workers: args.max_workers.max(1) as usize,
            cap: args.rate_cap.map(|c| c as f64),
        }
    }

    /// One line for the plan.
    pub fn describe(&self) -> String {
        format!(
            "{}/s per connection ({}), {} files and {} connections per worker{}{}",
            crate::fmt::bytes(self.per_connection as u64),
            if self.measured { "measured" } else { "assumed" },
            self.concurrency,
            self.streams,
            if self.multipart { "" } else { ", one PUT per object" },
            self.cap
                .map(|c| format!(", capped at {}/s", crate::fmt::bytes(c as u64)))
                .unwrap_or_default()
        )
    }
}

/// What the probe measured: bytes per second of one stream once it flows, and the seconds
/// before its first byte.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub rate: f64,
    pub latency: f64,
}

/// Measures one stream by reading the start of the largest file the workers will move: at most
/// [`PROBE_BYTES`], and for at most [`PROBE_WINDOW`] once the first byte is in, so a slow link
/// costs the run a fraction of a second, not the seconds 8 MiB would take. The rate is the slope
/// over the second half of what was read: a server's initial burst (a token bucket starting full:
/// hubsim's holds a tenth of a second of traffic) stays out of it.
pub async fn probe(source: &Side, commit: &str, tasks: &[pb::FileTask], plan: &Plan) -> Option<Probe> {
    let t = plan
        .chunks
        .iter()
        .flat_map(|c| c.files.iter().copied().chain(c.pieces.iter().map(|p| p.file)))
        .map(|i| &tasks[i])
        .filter(|t| t.size >= PROBE_MIN)
        .max_by_key(|t| t.size)?;
    let len = t.size.min(PROBE_BYTES);
    let object = (t.lfs && t.sha256.len() == 64).then_some((t.sha256.as_str(), t.size));
    let started = Instant::now();
    let mut body = source
        .hub
        .download(&source.repo, commit, &t.path, object, 0, len)
        .await
        .ok()?;
    // (bytes so far, when) after every piece of the body.
    let mut seen: Vec<(u64, Instant)> = Vec::with_capacity(256);
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        got += chunk.ok()?.len() as u64;
        let now = Instant::now();
        seen.push((got, now));
        if now.duration_since(seen[0].1) >= PROBE_WINDOW || got >= len {
            break;
        }
    }
    drop(body);
    let first = seen.first()?.1;
    let latency = first.duration_since(started).as_secs_f64();
    let (end, last) = *seen.last()?;
    let (mid, at) = seen.iter().copied().find(|&(b, _)| b >= end / 2)?;
    let secs = last.duration_since(at).as_secs_f64();
    let rate = if end > mid && secs > 1e-3 {
        (end - mid) as f64 / secs
    } else {
        end as f64 / last.duration_since(started).as_secs_f64().max(1e-3)
    };
    tracing::info!(
        rate = %crate::fmt::bytes(rate as u64),
        bytes = end,
        latency_ms = (latency * 1e3) as u64,
        took_ms = started.elapsed().as_millis() as u64,
        "ETA probe"
    );
    // A few pieces of a slow stream say little; too little to trust: the assumed rate.
    (end >= PROBE_MIN / 4 && seen.len() >= 4).then_some(Probe { rate, latency })
}

/// The plan's ETA: a probe of the source's per-connection rate, then the throughput model.
pub async fn estimate(
    sides: &Sides,
    commit: &str,
    tasks: &[pb::FileTask],
    plan: &Plan,
    args: &RunArgs,
) -> (Duration, Model) {
    let probed = probe(&sides.source, commit, tasks, plan).await;
    let model = Model {
        per_connection: probed.map(|p| p.rate).unwrap_or(ASSUMED_RATE),
        latency: probed.map(|p| p.latency).unwrap_or(0.0),
        measured: probed.is_some(),
        ..Model::assumed(args, sides.dest.hub.capabilities().multipart_parts)
    };
    (model.eta(plan, tasks), model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::plan::plan;
    use crate::flow::plan::tests::lfs;

    fn task(size: u64) -> pb::FileTask {
        pb::FileTask {
            size,
            ..Default::default()
        }
    }

    #[test]
    fn the_model_follows_streams_workers_and_caps() {
        let tasks: Vec<pb::FileTask> = [100, 100, 100, 100, 400].map(task).to_vec();
        let sizes: Vec<u64> = tasks.iter().map(|t| t.size).collect();
        let p = plan(&sizes, 2);
        let m = Model {
            per_connection: 100.0,
            measured: true,
            concurrency: 1,
            streams: 1,
            multipart: true,
            max_workers: 2,
            cap: None,
            latency: 0.0,
        };
        let secs = |m: &Model| m.eta(&p, &tasks).as_secs_f64() - FIXED_SECS;
        // Chunks of 400 and 4x100: each 4 s on one stream.
        assert!((secs(&m) - 4.0).abs() < 1e-9);
        // Four streams: the 100-byte files go at once; the big file still takes 4 s.
        assert!((secs(&Model { concurrency: 4, ..m }) - 4.0).abs() < 1e-9);
        // One worker: both chunks one after the other.
        assert!((secs(&Model { max_workers: 1, ..m }) - 8.0).abs() < 1e-9);
        // A 50 B/s cap on 800 bytes: 16 s.
        assert!((secs(&Model { cap: Some(50.0), ..m }) - 16.0).abs() < 1e-9);
        // Half a second before each file's first byte: four files on one stream pay it four times.
        assert!((secs(&Model { latency: 0.5, ..m }) - 6.0).abs() < 1e-9);
    }

    #[test]
    fn a_large_file_goes_over_several_connections() {
        let tasks = vec![task(64 * PART), task(PART / 2)];
        let p = plan(&[64 * PART, PART / 2], 1);
        let m = Model {
            per_connection: PART as f64,
            measured: true,
            concurrency: 2,
            streams: 1,
            multipart: true,
            max_workers: 1,
            cap: None,
            latency: 0.0,
        };
        let secs = |m: &Model| m.eta(&p, &tasks).as_secs_f64() - FIXED_SECS;
        assert!((secs(&m) - 64.0).abs() < 1e-9, "one connection: 64 s");
        assert!(
            (secs(&Model { streams: 8, ..m }) - 8.0).abs() < 1e-9,
            "eight connections: 8 s"
        );
    }

    const MIB: u64 = 1 << 20;

    fn split_model() -> Model {
        Model {
            per_connection: (4 * MIB) as f64,
            measured: true,
            concurrency: 4,
            streams: 8,
            multipart: true,
            max_workers: 4,
            cap: None,
            latency: 0.0,
        }
    }

    #[test]
    fn a_split_file_moves_as_pieces_in_parallel_and_is_read_back() {
        // 256 MiB cut into four 64 MiB pieces on four workers: each piece is four 16 MiB parts,
        // one connection each, so 64 MiB at 16 MiB/s: 4 s; then read back over four connections
        // at 4 MiB/s: 256 / 16 s.
        let tasks = vec![lfs(256 * MIB)];
        let p = crate::flow::plan::plan_split(&[256 * MIB], 4, 64 * MIB, |_| true);
        assert_eq!(p.split(), (1, 4));
        let m = split_model();
        let readback = 256.0 / 16.0;
        assert!((m.readback_secs(&p, &tasks) - readback).abs() < 1e-9);
        let secs = |m: &Model| m.eta(&p, &tasks).as_secs_f64() - FIXED_SECS - readback;
        assert!((secs(&m) - 4.0).abs() < 1e-9, "four pieces at once: {}", secs(&m));
        // Two workers at once: two rounds of pieces.
        assert!((secs(&Model { max_workers: 2, ..m }) - 8.0).abs() < 1e-9);
        // Not split: one worker, sixteen parts over its eight connections: 8 s.
        let whole = plan(&[256 * MIB], 1);
        assert!((m.eta(&whole, &tasks).as_secs_f64() - FIXED_SECS - 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_total_cap_bounds_the_rate_of_split_pieces() {
        let tasks = vec![lfs(256 * MIB)];
        let p = crate::flow::plan::plan_split(&[256 * MIB], 4, 64 * MIB, |_| true);
        let m = split_model();
        let secs = |m: &Model| m.eta(&p, &tasks).as_secs_f64() - FIXED_SECS - m.readback_secs(&p, &tasks);
        // Sixteen connections at 4 MiB/s would make 64 MiB/s; 8 MiB/s in all: 32 s.
        let capped = Model {
            cap: Some((8 * MIB) as f64),
            ..m
        };
        assert!((secs(&capped) - 32.0).abs() < 1e-9, "capped: {}", secs(&capped));
        // A cap above what the connections make changes nothing.
        let loose = Model {
            cap: Some((1024 * MIB) as f64),
            ..m
        };
        assert!((secs(&loose) - 4.0).abs() < 1e-9);
    }
}
