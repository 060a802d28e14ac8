//! Progress on long work: a bar on a terminal, a periodic line otherwise (pod logs, CI), both with
//! a rate and an ETA from what was actually measured so far.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::transfer::Snapshot;

/// Human-readable bytes (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Human-readable duration (`1h 02m`, `3m 20s`, `42s`).
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(Duration::from_secs(200)), "3m 20s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 02m");
    }
}
