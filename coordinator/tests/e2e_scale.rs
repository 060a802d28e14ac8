//! End to end, at scale on one machine (issue #7): a 2,000-file repo cut into 100 chunks, moved
//! by 100 local worker processes at once between two Hugging Face hubs, committed once and
//! verified file by file; the destination's own (paginated) listing holds every file, and no
//! worker outlives the run.

mod common;
use common::*;
use std::collections::BTreeMap;

const REGULAR: usize = 1900;
const LFS: usize = 100;
const WORKERS: u64 = 100;

/// Every entry of an HF-flavored hub's recursive tree listing of `repo` (`models/ns/name`) at
/// `main`, following the `Link: <...>; rel="next"` pages as `huggingface_hub` does.
fn hf_tree(hub: &Hubsim, repo: &str, token: &str) -> Vec<serde_json::Value> {
    let mut next = Some(format!("{}/api/{repo}/tree/main?recursive=true", hub.url));
    let mut entries = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        assert!(pages < 100, "the listing of {repo} does not end");
        let out = curl(&["-sf", "-D", "/dev/stderr", &url], Some(token));
        assert!(out.status.success(), "GET {url} failed");
        let headers = String::from_utf8_lossy(&out.stderr);
        next = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("link:") && l.contains("rel=\"next\""))
            .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()));
        let page: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("tree page json");
        entries.extend(page);
    }
    entries
}

/// Processes still running with this migration's id in their environment (its workers).
fn workers_alive(migration_id: &str) -> Vec<u32> {
    let needle = format!("HUBMIGRATE_MIGRATION_ID={migration_id}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn a_hundred_workers_move_a_two_thousand_file_repo_and_verify() {
    let src = TempDir::new("src");
    let regular = REGULAR.to_string();
    let lfs = LFS.to_string();
    let seeded = seed(
        src.path(),
        "hf",
        "alice/scale",
        &[
            "--files",
            &regular,
            "--file-size",
            "1KiB",
            "--lfs-files",
            &lfs,
            "--lfs-size",
            "4KiB",
        ],
    );
    assert_eq!(seeded.len(), REGULAR + LFS + 1, "the seed adds .gitattributes");
    assert_eq!(seeded.iter().filter(|f| f.lfs).count(), LFS);
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("hf", &[]);

    // Chunks of 1 KiB: the chunk count is capped by --max-workers, so 100 chunks, 100 workers.
    let started = std::time::Instant::now();
    let run = run_to(
        "hf:alice/scale",
        "hf",
        &source,
        &dest,
        &["--parallel", "--max-workers", "100", "--chunk-size", "1KiB"],
    );
    let took = started.elapsed();
    assert_code(&run, 0);
    let out = run.output();
    let report = run.report.as_ref().expect("report");
    let (files, uploaded, verified) = summary(&run);
    assert!(verified, "{out}");
    assert_eq!(report["status"], "verified", "{out}");
    assert_eq!(
        report["chunks"], WORKERS,
        "one chunk per worker, capped by --max-workers:\n{out}"
    );
    assert_eq!(
        files as usize,
        seeded.len(),
        "every seeded file, .gitattributes included"
    );
    let bytes: u64 = seeded.iter().map(|f| f.size).sum();
    assert_eq!(report["bytes"], bytes);
    // A fresh destination: every byte is sent but .gitattributes, which the new repo holds as
    // the source has it (only files the destination lacks are committed).
    let attributes = seeded.iter().find(|f| f.path == ".gitattributes").map_or(0, |f| f.size);
    assert_eq!(
        uploaded,
        bytes - attributes,
        "a fresh destination: every other byte is sent"
    );
    assert!(
        out.contains(&format!("verified   all {} files match the source", seeded.len())),
        "the summary says so:\n{out}"
    );
    assert!(report["mismatches"].as_array().is_none_or(|m| m.is_empty()), "{report}");
    eprintln!("100 workers, {} files: {:.1} s", seeded.len(), took.as_secs_f64());

    // No worker outlives the run.
    let id = report["migration_id"].as_str().expect("migration id");
    assert_eq!(workers_alive(id), Vec::<u32>::new(), "workers of {id} still running");

    // The destination's own listing, page by page: every path, size, and LFS object id.
    let listed: BTreeMap<String, serde_json::Value> = hf_tree(&dest, "models/alice/scale", ALICE)
        .into_iter()
        .filter(|e| e["type"] == "file")
        .map(|e| (e["path"].as_str().unwrap_or_default().to_string(), e))
        .collect();
    assert_eq!(
        listed.len(),
        seeded.len(),
        "the destination lists every file and nothing else"
    );
    for f in &seeded {
        let e = listed
            .get(&f.path)
            .unwrap_or_else(|| panic!("{} missing at the destination", f.path));
        assert_eq!(e["size"], f.size, "{}", f.path);
        if f.lfs {
            assert_eq!(
                e["lfs"]["oid"],
                f.sha256.as_str(),
                "{} is an LFS file there too",
                f.path
            );
        } else {
            assert!(e["lfs"].is_null(), "{} stays a regular file", f.path);
        }
    }
}
