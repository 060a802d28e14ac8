//! The terminal observer: what a person running `migrate-coord` sees. The plan, then progress (a
//! bar overall and one per running worker on a terminal, a periodic line otherwise: pod logs,
//! CI), each with a rate and an ETA from what was measured so far; the summary is printed by the
//! command when the run ends.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::flow::transfer::Snapshot;
use crate::flow::{Observer, Planned, Step};
use crate::fmt::{bytes, duration};

/// Prints the plan and shows the transfer's progress.
#[derive(Default)]
pub struct Terminal {
    progress: Option<Progress>,
    total: u64,
}

impl Observer for Terminal {
    fn step(&mut self, step: Step, _note: &str) {
        match step {
            Step::Transferring => self.progress = Some(Progress::new(self.total)),
            _ => {
                if let Some(p) = self.progress.take() {
                    p.finish();
                }
            }
        }
    }

    fn planned(&mut self, p: &Planned, args: &RunArgs) {
        self.total = p.bytes_moved();
        eprint!("{}", plan_text(p, args));
    }

    fn progress(&mut self, s: &Snapshot) {
        if let Some(p) = &mut self.progress {
            p.update(s);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}

/// The plan: files, bytes, chunks, the largest chunk against the ideal, and the ETA.
pub fn plan_text(p: &Planned, args: &RunArgs) -> String {
    let (sides, manifest, plan, exists) = (&p.sides, &p.manifest, &p.plan, p.dest_exists.is_some());
    let vis = if manifest.private { "private" } else { "public" };
    let short = manifest.commit.get(..12).unwrap_or(&manifest.commit);
    let mut out = format!(
        "source  {} @ {short} ({vis}): {} files, {}\n",
        sides.source.repo,
        manifest.files.len(),
        bytes(manifest.total_bytes())
    );
    out.push_str(&format!(
        "dest    {} ({})\n",
        sides.dest.repo,
        if exists {
            "exists: files are added or updated"
        } else {
            if p.metadata.private && !manifest.private {
                "will be created private"
            } else {
                "will be created with the same visibility"
            }
        }
    ));
    out.push_str(&format!(
        "plan    {} chunk(s), largest {} (ideal {}), ETA ~{} at {}\n",
        plan.chunks.len(),
        bytes(plan.largest()),
        bytes(plan.ideal()),
        duration(p.eta),
        p.model.describe()
    ));
    let (files, pieces) = plan.split();
    if files > 0 {
        out.push_str(&format!(
            "split   {files} large file(s) cut into {pieces} pieces spread over the chunks (multipart uploads)\n"
        ));
    }
    for w in &p.warnings {
        out.push_str(&format!("warning {w}\n"));
    }
    for m in &p.metadata.notes {
        out.push_str(&format!("meta    {m}\n"));
    }
    if let Some(git) = &p.git {
        out.push_str(&format!(
            "history {} ref(s) to push; {} LFS object(s) in that history, {}{}\n",
            git.pushes.len(),
            p.tasks.len(),
            bytes(p.tasks.iter().map(|t| t.size).sum()),
            if args.pointer_only {
                " (--pointer-only: none sent)"
            } else if args.use_remote_mirror {
                " (--use-remote-mirror: the destination pulls them)"
            } else {
                ""
            }
        ));
    }
    out
}

/// The transfer's progress display.
pub struct Progress {
    bars: Option<Bars>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

/// On a terminal: the overall bar, and one bar per running worker.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    workers: BTreeMap<u32, ProgressBar>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress {
    /// Bars when stderr is a terminal, periodic log lines otherwise.
    pub fn new(total: u64) -> Self {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(style(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            ));
            overall.enable_steady_tick(Duration::from_millis(200));
            Bars {
                multi,
                overall,
                workers: BTreeMap::new(),
            }
        });
        Progress {
            bars,
            total,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Updates the display from a snapshot of the transfer.
    pub fn update(&mut self, s: &Snapshot) {
        let msg = format!("workers {} running, chunks {}/{}", s.running, s.finished, s.chunks);
        if let Some(b) = &mut self.bars {
            b.overall.set_position(s.bytes_done.min(self.total));
            b.overall.set_message(msg);
            let running: Vec<u32> = s.per_chunk.iter().map(|c| c.0).collect();
            b.workers.retain(|chunk, bar| {
                let keep = running.contains(chunk);
                if !keep {
                    bar.finish_and_clear();
                    b.multi.remove(bar);
                }
                keep
            });
            for &(chunk, done, total) in &s.per_chunk {
                let bar = b.workers.entry(chunk).or_insert_with(|| {
                    let bar = b.multi.add(ProgressBar::new(total));
                    bar.set_style(style(
                        "  chunk {prefix:>4} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                    ));
                    bar.set_prefix(chunk.to_string());
                    bar
                });
                bar.set_position(done);
            }
            return;
        }
        if self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = s.bytes_done as f64 / secs;
            let eta = if rate > 0.0 {
                duration(Duration::from_secs_f64(
                    (self.total.saturating_sub(s.bytes_done)) as f64 / rate,
                ))
            } else {
                "?".into()
            };
            tracing::info!(
                "progress {} / {} ({:.0}%), {}/s, ETA {eta}, {msg}",
                bytes(s.bytes_done),
                bytes(self.total),
                100.0 * s.bytes_done as f64 / self.total.max(1) as f64,
                bytes(rate as u64)
            );
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            for bar in b.workers.values() {
                bar.finish_and_clear();
            }
            b.overall.finish_and_clear();
        }
    }
}

/// Progress of one long read counted in bytes (`verify --content`): a bar on a terminal, a line
/// every 10 s otherwise. Follows `counter` until dropped.
pub struct ByteProgress {
    bar: Option<ProgressBar>,
    ticker: tokio::task::JoinHandle<()>,
}

impl ByteProgress {
    pub fn follow(label: &str, total: u64, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(style(&format!(
                "{label} {{wide_bar}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} ETA {{eta}}"
            )));
            bar
        });
        let shown = bar.clone();
        let label = label.to_string();
        let ticker = tokio::spawn(async move {
            let every = if shown.is_some() { 200 } else { 10_000 };
            let mut tick = tokio::time::interval(Duration::from_millis(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = counter.load(std::sync::atomic::Ordering::Relaxed);
                match &shown {
                    Some(b) => b.set_position(n),
                    None => eprintln!("{label}: {} of {}", bytes(n), bytes(total)),
                }
            }
        });
        ByteProgress { bar, ticker }
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        self.ticker.abort();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_every_five_seconds_off_a_terminal() {
        let mut p = Progress::new(100);
        p.bars = None;
        p.last_line = Instant::now() - Duration::from_secs(6);
        p.update(&Snapshot {
            bytes_done: 50,
            ..Default::default()
        });
        assert!(
            p.last_line.elapsed() < Duration::from_secs(1),
            "a line was due and written"
        );
    }
}
