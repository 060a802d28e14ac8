//! What a user sees while a migration runs: on a terminal, an overall bar and one bar per running
//! worker; the plan's ETA says whether the rate behind it was measured.

mod common;
use common::*;

use std::process::Command;

#[test]
fn a_terminal_shows_overall_and_per_worker_bars() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", &["--lfs-files", "4", "--lfs-size", "2MiB"]);
    // Slow enough (1 MiB/s per connection: about 2 s) for the bars to be drawn a few times.
    let hf = Hubsim::start_in("hf", src, &["--conn-rate", "1MiB"]);
    let dst = Hubsim::start("hf", &[]);
    let cmd = format!(
        "'{}' run --source hf:alice/m --dest hf:alice/copy --source-endpoint {} --dest-endpoint {} --worker-bin '{}'",
        env!("CARGO_BIN_EXE_migrate-coord"),
        hf.url,
        dst.url,
        bin("migrate-worker").display()
    );
    // `script` gives the run a pseudo-terminal, as an interactive shell would.
    let out = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env("HF_TOKEN", ALICE)
        .env("TERM", "xterm")
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chunk    0"), "no per-worker bar: {text}");
    // The overall bar moves: it is drawn with several different byte counts below the total.
    let mut shown: Vec<&str> = text
        .split(['\r', '\n'])
        .filter_map(|l| l.split_once("/8.00 MiB").map(|(before, _)| before))
        .filter_map(|before| before.rsplit(' ').nth(1).map(|n| n.trim()))
        .filter(|n| !n.is_empty() && *n != "8.00")
        .collect();
    shown.dedup();
    assert!(shown.len() >= 2, "the bar did not move: {shown:?}\n{text}");
    assert!(
        text.contains("per connection (measured)"),
        "the plan's ETA rests on a probe: {text}"
    );
    assert!(text.contains("verified"), "{text}");
    // On a terminal the plan, bars and summary speak; the log stays out of them unless -v.
    assert!(!text.contains(" INFO "), "log lines among the bars: {text}");
}
