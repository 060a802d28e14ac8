//! Progress on long work: a bar on a terminal, a periodic line otherwise (pod logs, CI), both with
//! a rate and an ETA from what was actually measured so far.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

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
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, periodic log lines otherwise.
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            total,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Updates the display with bytes done and the workers' state.
    pub fn update(&mut self, done: u64, running: usize, finished: usize, chunks: usize) {
        let msg = format!("workers {running} running, chunks {finished}/{chunks}");
        if let Some(b) = &self.bar {
            b.set_position(done.min(self.total));
            b.set_message(msg);
            return;
        }
        if self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 {
                duration(Duration::from_secs_f64((self.total.saturating_sub(done)) as f64 / rate))
            } else {
                "?".into()
            };
            tracing::info!(
                "progress {} / {} ({:.0}%), {}/s, ETA {eta}, {msg}",
                bytes(done),
                bytes(self.total),
                100.0 * done as f64 / self.total.max(1) as f64,
                bytes(rate as u64)
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
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
