//! End to end within the strict hub of 2026 (issue #14): 100,000 files from Hugging Face and
//! from ModelScope to Hugging Face on the free plan's quotas, in many commits and without one
//! 429, listed back by the official client; and a run killed between two commits of a series,
//! whose re-run commits only the rest.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const FILES: usize = 100_000;
const LFS: usize = 3;

/// Every answer of `hub` with status 429, over all its route classes.
fn refusals(hub: &Hubsim) -> u64 {
    let stats = hub.stats();
    stats["requests"]
        .as_object()
        .map(|classes| classes.values().filter_map(|c| c["429"].as_u64()).sum())
        .unwrap_or(0)
}

/// The files the official `huggingface_hub` client lists in model `repo` on `hub`, through the
/// Python venv tests/run.sh makes ($HUBMIGRATE_VENV, else .venv at the workspace root). The
/// token goes in the environment, never on a command line.
fn official_hf_files(hub: &Hubsim, repo: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("HUBMIGRATE_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let venv = if venv.is_absolute() { venv } else { root.join(venv) };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python venv with huggingface_hub at {}: run tests/run.sh once (it makes one)",
        venv.display()
    );
    let home = TempDir::new("hf-home");
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom huggingface_hub import HfApi\nprint(json.dumps(HfApi().list_repo_files(sys.argv[1])))",
            repo,
        ])
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_TOKEN", ALICE)
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HOME", home.path())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "huggingface_hub could not list {repo}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of paths")
}

/// 100,000 small regular files and a few LFS objects from `flavor` to a Hugging Face hub on the
/// free plan's quotas: read in one git fetch, committed in many parts under the hourly commit
/// quota, verified, listed in full by huggingface_hub, and not one request answered 429.
fn a_hundred_thousand_files_from(flavor: &str) {
    let src = TempDir::new("src");
    let files = FILES.to_string();
    let lfs = LFS.to_string();
    seed(
        src.path(),
        flavor,
        "alice/many",
        &[
            "--files",
            &files,
            "--file-size",
            "64",
            "--lfs-files",
            &lfs,
            "--lfs-size",
            "4KiB",
        ],
    );
    let source = Hubsim::start_in(flavor, src, &[]);
    // The Hub's commit costs scaled down 300 times (its timeout too): 100,000 files go in about
    // a hundred commits of up to 1,000, within its 128 commits an hour.
    let dest = Hubsim::start("hf", &["--commit-op-cost", "0.1ms", "--commit-timeout", "2s"]);
    let run = migrate(
        &[
            "run",
            "--source",
            &format!("{flavor}:alice/many"),
            "--dest",
            "hf:alice/many-copy",
            "--parallel",
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
        ],
        &[
            ("HF_TOKEN", ALICE),
            ("MODELSCOPE_TOKEN", ALICE),
            ("HUBMIGRATE_SOURCE_TOKEN", ALICE),
        ],
    );
    assert_code(&run, 0);
    let total = FILES + LFS + 1; // the seed adds .gitattributes
    let (listed, _, verified) = summary(&run);
    assert_eq!(listed, total as u64, "{}", run.output());
    assert!(verified, "{}", run.output());
    assert!(
        run.output().contains("reading them with one git fetch"),
        "{}",
        run.output()
    );
    let parts = run.stderr.matches("committed a part").count();
    assert!(
        parts >= 100,
        "{parts} commits for {total} files: more than 1,000 files in one commit"
    );
    let seen = official_hf_files(&dest, "alice/many-copy");
    assert_eq!(seen.len(), total, "huggingface_hub lists {} files", seen.len());
    assert!(seen.iter().any(|p| p == ".gitattributes"));
    assert_eq!(seen.iter().filter(|p| p.starts_with("weights/")).count(), LFS);
    assert_eq!(refusals(&source), 0, "the source answered 429: {}", source.stats());
    assert_eq!(refusals(&dest), 0, "the destination answered 429: {}", dest.stats());
    let resolves = answered(&source, "resolve");
    assert!(
        resolves <= 2 * LFS as u64,
        "{resolves} resolves: regular files were read one by one"
    );
}

#[test]
fn a_hundred_thousand_files_from_hugging_face_within_the_free_quotas() {
    a_hundred_thousand_files_from("hf");
}

#[test]
fn a_hundred_thousand_files_from_modelscope_within_the_free_quotas() {
    a_hundred_thousand_files_from("ms");
}

/// "files X-Y of N)" in a commit title: how many files the part carried.
fn part_files(title: &str) -> Option<usize> {
    let rest = &title[title.find(" files ")? + 7..];
    let (range, _) = rest.split_once(" of ")?;
    let (from, to) = range.split_once('-')?;
    Some(to.parse::<usize>().ok()? + 1 - from.parse::<usize>().ok()?)
}

/// A run killed (SIGKILL) right after the first commit of a series: the destination is left at
/// that complete commit, and a re-run commits only the files not yet there. No object is sent
/// twice, no file is committed twice, no commit is empty.
#[test]
fn a_run_killed_between_commits_resumes_with_the_rest() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/series",
        &[
            "--files",
            "1200",
            "--file-size",
            "100",
            "--lfs-files",
            "2",
            "--lfs-size",
            "64KiB",
        ],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    // 10 ms an operation: the first part (250 files) takes 2.5 s, the next one longer, so the
    // kill lands while the second commit is in flight.
    let dest = Hubsim::start("hf", &["--commit-op-cost", "10ms"]);
    let worker = bin("migrate-worker");
    let args = [
        "run",
        "--source",
        "hf:alice/series",
        "--dest",
        "hf:alice/series-copy",
        "--source-endpoint",
        &source.url,
        "--dest-endpoint",
        &dest.url,
        "--worker-bin",
        worker.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_migrate-coord"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HF_TOKEN", ALICE)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start migrate-coord");
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.expect("the coordinator's output");
        let first = line.contains("committed a part");
        seen.push(line);
        if first {
            child.kill().expect("kill the coordinator");
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success() && seen.last().is_some_and(|l| l.contains("committed a part")),
        "the run was not killed after its first commit:\n{}",
        seen.join("\n")
    );
    let sent = answered(&dest, "upload");
    assert!(sent >= 2, "the two objects were uploaded before the first commit");
    let before = commit_titles(&dest, "alice/series-copy");

    let again = migrate(&args[..args.len() - 2], &[("HF_TOKEN", ALICE)]);
    assert_code(&again, 0);
    let (files, _, verified) = summary(&again);
    assert!(verified && files == 1203, "{}", again.output());
    assert_eq!(
        answered(&dest, "upload"),
        sent,
        "an object already at the destination was sent again"
    );
    let titles = commit_titles(&dest, "alice/series-copy");
    assert!(titles.len() > before.len(), "the re-run committed nothing: {titles:?}");
    // Every part carries files, and together they carry each file once (whether the commit in
    // flight at the kill landed or not).
    let parts: Vec<usize> = titles.iter().filter_map(|t| part_files(t)).collect();
    assert!(parts.iter().all(|n| *n > 0), "{titles:?}");
    assert_eq!(
        parts.iter().sum::<usize>(),
        1202,
        "files committed twice or not at all: {titles:?}"
    );
}

/// A source read over git (100 regular files or more) serves its LFS objects through the batch
/// API, which the Hub counts against its api quota: one batch call an object, however many
/// ranges the object is read in, and not one resolve.
#[test]
fn a_source_read_over_git_asks_the_batch_api_once_an_object() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/parts",
        &[
            "--files",
            "120",
            "--file-size",
            "64",
            "--lfs-files",
            "1",
            "--lfs-size",
            "24MiB",
        ],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    // Parts of 5 MiB: the object is read in five ranges, one a part.
    let dest = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "5MiB"]);
    let run = run_between("hf:alice/parts", "hf:alice/parts-copy", &source, &dest, &["--parallel"]);
    assert_code(&run, 0);
    assert!(summary(&run).2, "{}", run.output());
    assert!(
        run.output().contains("reading them with one git fetch"),
        "{}",
        run.output()
    );
    let ranges = answered(&source, "download");
    let batches = answered(&source, "lfs_batch");
    assert!(
        ranges >= 5,
        "{ranges} ranged reads of a 24 MiB object in 5 MiB parts: {}",
        source.stats()
    );
    assert!(
        batches <= 2,
        "{batches} batch calls for one object read in {ranges} ranges: {}",
        source.stats()
    );
    assert_eq!(answered(&source, "resolve"), 0, "{}", source.stats());
}

/// Where an object's ranges are read, shared by all of them, dies with its URLs: a range opened
/// after they expired (here: one connection reads the parts one after another, 2.5 s each,
/// from a source whose URLs live 1 s) is located anew, and the run verifies. Both ways a
/// Hugging Face source is read: over git (120 regular files; the LFS batch answer is renewed)
/// and through the API (2 regular files; the `/resolve` is renewed).
#[test]
fn a_shared_download_location_is_renewed_when_its_urls_expire() {
    for (files, renewed) in [("120", "lfs_batch"), ("2", "resolve")] {
        let src = TempDir::new("src");
        seed(
            src.path(),
            "hf",
            "alice/slow",
            &[
                "--files",
                files,
                "--file-size",
                "64",
                "--lfs-files",
                "1",
                "--lfs-size",
                "12MiB",
            ],
        );
        let source = Hubsim::start_in("hf", src, &["--url-ttl", "1s", "--conn-rate", "2MiB"]);
        let dest = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "5MiB"]);
        let run = run_between(
            "hf:alice/slow",
            "hf:alice/slow-copy",
            &source,
            &dest,
            &["--parallel", "--streams", "1"],
        );
        assert_code(&run, 0);
        assert!(summary(&run).2, "{files} files: {}", run.output());
        let stats = source.stats();
        assert!(
            stats["refused"]["expired_url"].as_u64().unwrap_or(0) >= 1,
            "{files} files: no range met an expired URL: {stats}"
        );
        // Located once by the ETA probe's process and once by the worker, then once more.
        let asked = answered(&source, renewed);
        let regular = if renewed == "resolve" { 3 } else { 0 };
        assert!(
            asked >= 3 + regular,
            "{files} files: {asked} {renewed} calls, never renewed: {stats}"
        );
    }
}
