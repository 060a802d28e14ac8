//! End to end under faults: a worker killed mid-chunk, 5xx and 429 answers, truncated and
//! corrupted source bodies. Each run must still end verified, or, when corruption persists, fail
//! without committing anything and name the file.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn source(flags: &[&str], seed_args: &[&str]) -> Hubsim {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", seed_args);
    Hubsim::start_in("hf", src, flags)
}

fn run_args<'a>(source: &'a Hubsim, dest: &'a Hubsim, to: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--source",
        "hf:alice/m",
        "--dest",
        to,
        "--source-endpoint",
        &source.url,
        "--dest-endpoint",
        &dest.url,
    ]
}

/// Pids of running `migrate-worker` processes, and whether the arguments of any hubmigrate or git
/// process hold `needle` (hubsim itself is given the test users on its command line).
fn scan_processes(needle: &str) -> (Vec<u32>, bool) {
    let mut workers = Vec::new();
    let mut leaked = false;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("migrate-") || text.starts_with("git") {
            leaked |= text.contains(needle);
        }
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if String::from_utf8_lossy(argv0).ends_with("migrate-worker") {
            workers.push(pid);
        }
    }
    (workers, leaked)
}

#[test]
fn a_worker_killed_mid_chunk_is_retried_and_the_run_verifies() {
    let source = source(
        &["--conn-rate", "3MiB"],
        &["--lfs-files", "4", "--lfs-size", "4MiB", "--files", "5"],
    );
    let dest = Hubsim::start("hf", &[]);
    let mut args = run_args(&source, &dest, "hf:alice/killed");
    args.extend(["--worker-concurrency", "1"]);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-coord"));
    let report = TempDir::new("report");
    let report_path = report.path().join("r.json");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HF_TOKEN", ALICE)
        .args(&args)
        .arg("--report")
        .arg(&report_path)
        .arg("--worker-bin")
        .arg(bin("migrate-worker"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let mut killed = false;
    let mut leaked = false;
    while started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none() {
        let (workers, leak) = scan_processes(ALICE);
        leaked |= leak;
        if !killed && started.elapsed() > Duration::from_millis(1000) && !workers.is_empty() {
            for pid in workers {
                std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    assert!(killed, "the run ended before a worker could be killed");
    assert!(!leaked, "a token appeared in some process's arguments");
    assert!(
        status.success(),
        "the run did not recover from a killed worker: {status:?}"
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(r["verified"], true);
}

#[test]
fn errors_throttling_and_truncation_are_retried() {
    let source = source(
        &["--fail-5xx", "0.1", "--fail-429", "0.1", "--truncate", "0.3"],
        // Enough requests (about 70) that each kind of fault is injected at the source.
        &["--lfs-files", "3", "--lfs-size", "2MiB", "--files", "60"],
    );
    let dest = Hubsim::start("hf", &["--fail-5xx", "0.1", "--fail-429", "0.1"]);
    let run = migrate(&run_args(&source, &dest, "hf:alice/flaky"), &[("HF_TOKEN", ALICE)]);
    assert_code(&run, 0);
    assert!(summary(&run).2, "verified");
    // The faults happened: the source says it injected each kind, and the run still verified.
    // (The destination sees too few requests for a count that could not be zero by chance.)
    let (from, into) = (source.stats(), dest.stats());
    for kind in ["5xx", "429", "truncated"] {
        assert!(
            from["faults"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} injected: {from}"
        );
    }
    assert_eq!(
        into["commits"].as_u64(),
        Some(1),
        "one commit, however many retries: {into}"
    );
}

#[test]
fn occasional_corruption_is_retried_and_persistent_corruption_commits_nothing() {
    // Enough bodies (about 60) that a 10% corruption rate corrupts some (all but 0.2% of
    // runs), while a file corrupted on all of its 5 attempts stays rarer (0.06% of runs).
    let seed_args = ["--lfs-files", "2", "--lfs-size", "1MiB", "--files", "60"];
    let dest = Hubsim::start("hf", &[]);
    let flaky = source(&["--corrupt", "0.1"], &seed_args);
    let ok = migrate(&run_args(&flaky, &dest, "hf:alice/sometimes"), &[("HF_TOKEN", ALICE)]);
    assert_code(&ok, 0);
    assert!(summary(&ok).2);
    let corrupted = flaky.stats()["faults"]["corrupted"].as_u64().unwrap_or(0);
    assert!(corrupted > 0, "no body was corrupted: {}", flaky.stats());

    let broken = source(&["--corrupt", "1.0"], &seed_args);
    let run = migrate(&run_args(&broken, &dest, "hf:alice/never"), &[("HF_TOKEN", ALICE)]);
    assert_code(&run, 1);
    assert!(run.stderr.contains("nothing was committed"), "{}", run.output());
    assert!(broken.stats()["faults"]["corrupted"].as_u64().unwrap_or(0) > 0);
    assert!(
        run.stderr.contains("integrity check failed for")
            && [".bin", ".txt", ".gitattributes"]
                .iter()
                .any(|f| run.stderr.contains(f)),
        "names the file:\n{}",
        run.output()
    );
    let (code, tree) = get_json(
        &format!("{}/api/models/alice/never/tree/main?recursive=true", dest.url),
        Some(ALICE),
    );
    assert_eq!(code, 200);
    let paths: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [".gitattributes"],
        "only the initial commit's file: nothing was committed"
    );
}

/// An HF hub taking multipart uploads of 1 MiB parts and assembling them without checking
/// their sha256 (as a plain S3 bucket does).
fn unchecked_dest() -> Hubsim {
    Hubsim::start(
        "hf",
        &[
            "--multipart-threshold",
            "1MiB",
            "--part-size",
            "1MiB",
            "--unchecked-multipart",
        ],
    )
}

/// The paths at the destination's main branch.
fn dest_paths(dest: &Hubsim, repo: &str) -> Vec<String> {
    let (code, tree) = get_json(
        &format!("{}/api/models/{repo}/tree/main?recursive=true", dest.url),
        Some(ALICE),
    );
    assert_eq!(code, 200, "{tree}");
    tree.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str().map(str::to_string))
        .collect()
}

/// A source whose object does not hash to its oid (damaged on its disk) and a destination whose
/// store assembles multipart uploads without checking them (as a plain S3 bucket does): only
/// hubmigrate's own hash of the parts, in order, stands between the damage and a commit. The
/// parts are sent three times in all, the upload is never completed, nothing is committed.
#[test]
fn multipart_parts_are_hashed_in_order_before_the_upload_is_completed() {
    let src = TempDir::new("src");
    let files = seed(src.path(), "hf", "alice/m", &["--lfs-file", "weights.bin=6MiB"]);
    let weights = files.iter().find(|f| f.path == "weights.bin").unwrap();
    damage_object(src.path(), &weights.sha256);
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = unchecked_dest();
    let run = migrate(&run_args(&source, &dest, "hf:alice/copy"), &[("HF_TOKEN", ALICE)]);
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("weights.bin") && run.stderr.contains("hashing to"),
        "names the file and the hash:\n{}",
        run.output()
    );
    assert!(run.stderr.contains("nothing was committed"), "{}", run.output());
    let stats = dest.stats();
    assert_eq!(stats["multipart"]["completed"], 0, "never completed: {stats}");
    assert_eq!(
        stats["multipart"]["parts"],
        3 * 6,
        "every part sent again, a bounded number of times: {stats}"
    );
    assert_eq!(dest_paths(&dest, "alice/copy"), [".gitattributes"]);
}

/// A file split across workers: no worker sees every byte, so the coordinator reads the
/// assembled object back from the destination before the commit names it. A healthy split file
/// is read back once (the destination serves its bytes) and commits; a damaged one (the source's
/// copy damaged on its disk, the destination's store not checking assemblies) is caught by the
/// read-back and nothing is committed.
#[test]
fn a_file_split_across_workers_is_read_back_before_the_commit_names_it() {
    let src = TempDir::new("src");
    let good = seed(src.path(), "hf", "alice/good", &["--lfs-file", "good.bin=12MiB"]);
    let bad = seed(src.path(), "hf", "alice/bad", &["--lfs-file", "bad.bin=12MiB"]);
    let bad_oid = &bad.iter().find(|f| f.path == "bad.bin").unwrap().sha256;
    assert_ne!(&good.iter().find(|f| f.path == "good.bin").unwrap().sha256, bad_oid);
    damage_object(src.path(), bad_oid);
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = unchecked_dest();
    let split = [
        "--parallel",
        "--split",
        "always",
        "--max-workers",
        "3",
        "--chunk-size",
        "4MiB",
    ];
    let args = |repo: &'static str| {
        vec![
            "run",
            "--source",
            repo,
            "--dest",
            repo,
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
        ]
    };
    let ok = migrate(
        &[&args("hf:alice/good")[..], &split[..]].concat(),
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&ok, 0);
    assert!(ok.stderr.contains("split file read back"), "{}", ok.output());
    let served = dest.stats()["bytes_by_route"]["download"]["sent"].as_u64().unwrap_or(0);
    assert!(
        served >= 12 << 20,
        "the destination served the split file back: {served}"
    );

    let run = migrate(
        &[&args("hf:alice/bad")[..], &split[..]].concat(),
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("bad.bin") && run.stderr.contains("reading it back gave"),
        "names the file and what the store holds:\n{}",
        run.output()
    );
    assert!(
        dest.stats()["multipart"]["completed"].as_u64().unwrap_or(0) >= 2,
        "the damaged upload was completed by the store, then caught"
    );
    assert_eq!(dest_paths(&dest, "alice/bad"), [".gitattributes"]);
}
