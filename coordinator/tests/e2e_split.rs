//! End to end: large files over several connections. A file larger than a chunk is cut into
//! pieces moved by different workers into one multipart upload that the coordinator completes
//! (Hugging Face destination); a destination that takes one PUT stream (ModelScope) gets a large
//! file read over parallel ranged GETs, put back in order. Faults on the way make parts and
//! ranges retry on their own.

mod common;
use common::*;

const MIB: u64 = 1 << 20;

/// Adds `path` to `alice/big` on an HF-flavored hub as a second name for the LFS object `big`.
fn add_twin(hub: &Hubsim, big: &SeededFile, path: &str) {
    let body = format!(
        "{{\"key\":\"header\",\"value\":{{\"summary\":\"twin\"}}}}\n{{\"key\":\"lfsFile\",\"value\":{{\"path\":\"{path}\",\"algo\":\"sha256\",\"oid\":\"{}\",\"size\":{}}}}}\n",
        big.sha256, big.size
    );
    assert_eq!(hf_commit(hub, "models/alice/big", &body, ALICE), 200, "the twin commit");
}

fn seeded_big(flavor_dir: &TempDir) -> SeededFile {
    let files = seed(
        flavor_dir.path(),
        "hf",
        "alice/big",
        &[
            "--lfs-file",
            "weights/big.safetensors=40MiB",
            "--lfs-files",
            "2",
            "--lfs-size",
            "3MiB",
            "--files",
            "3",
        ],
    );
    files
        .into_iter()
        .find(|f| f.path == "weights/big.safetensors")
        .expect("the big file was seeded")
}

#[test]
fn a_large_file_is_split_across_workers_into_one_multipart_upload() {
    let src = TempDir::new("src");
    let big = seeded_big(&src);
    let source = Hubsim::start_in("hf", src, &[]);
    // The same object under a second name: one upload for both, never two for one object.
    add_twin(&source, &big, "twin/big-copy.safetensors");
    // Parts of 5 MiB; a few 5xx answers anywhere (part PUTs and the completion included).
    let dest = Hubsim::start(
        "hf",
        &[
            "--multipart-threshold",
            "8MiB",
            "--part-size",
            "5MiB",
            "--fail-5xx",
            "0.03",
        ],
    );
    let flags = [
        "--parallel",
        "--split",
        "always",
        "--max-workers",
        "4",
        "--chunk-size",
        "8MiB",
        "--streams",
        "3",
    ];
    let run = run_to("hf:alice/big", "hf", &source, &dest, &flags);
    assert_code(&run, 0);
    let out = run.output();
    assert!(
        out.contains("split   2 large file(s) cut into 10 pieces"),
        "the plan says the big file is split:\n{out}"
    );
    let (files, uploaded, verified) = summary(&run);
    assert!(verified, "{out}");
    assert_eq!(files, 2 + 2 + 3 + 1, "every file, .gitattributes included");
    assert!(uploaded >= 46 * MIB, "{uploaded}");
    assert_eq!(run.report.as_ref().unwrap()["chunks"], 4);
    // Each multipart upload (the split one; the twin's, when the object was not in yet) took
    // its 8 parts of 5 MiB once, unless a part was answered with an injected 5xx.
    let stats = dest.stats();
    let count = |group: &str, key: &str| stats[group][key].as_u64().unwrap_or(0);
    let (uploads, parts, faults) = (
        count("multipart", "completed"),
        count("multipart", "parts"),
        count("faults", "5xx"),
    );
    assert!((1..=2).contains(&uploads), "{stats}");
    assert!(
        parts >= 8 * uploads && parts <= 8 * uploads + faults,
        "{parts} part PUTs for {uploads} upload(s) with {faults} injected 5xx: {stats}"
    );
    // The assembled object is the source's file, byte for byte.
    for path in [big.path.as_str(), "twin/big-copy.safetensors"] {
        let url = format!("{}/alice/big/resolve/main/{path}", dest.url);
        assert_eq!(served_sha256(&url, ALICE), big.sha256, "{path}");
    }

    // Run again: the store holds the object, nothing is split or sent.
    let again = run_to("hf:alice/big", "hf", &source, &dest, &flags);
    assert_code(&again, 0);
    assert_eq!(summary(&again), (files, 0, true));
}

#[test]
fn a_single_put_destination_gets_a_large_file_read_over_parallel_ranges() {
    let src = TempDir::new("src");
    let big = seeded_big(&src);
    // Cut bodies on the source: each range resumes where it broke.
    let source = Hubsim::start_in("hf", src, &["--truncate", "0.05"]);
    let dest = Hubsim::start("ms", &[]);
    let run = run_to("hf:alice/big", "ms", &source, &dest, &["--streams", "4"]);
    assert_code(&run, 0);
    let (_, uploaded, verified) = summary(&run);
    assert!(verified && uploaded >= 46 * MIB, "{}", run.output());
    // ModelScope's own listing: the object it stored hashes to the source's sha256.
    let (code, v) = get_json(
        &format!(
            "{}/api/v1/models/alice/big/repo/files?Revision=master&Recursive=true",
            dest.url
        ),
        Some(ALICE),
    );
    assert_eq!(code, 200);
    let listed = v["Data"]["Files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["Path"] == big.path.as_str()))
        .unwrap_or_else(|| panic!("{} listed: {v}", big.path));
    assert_eq!(listed["Sha256"], big.sha256.as_str());
    assert_eq!(listed["Size"], 40 * MIB);
}

#[test]
fn regular_files_from_a_source_that_ignores_range_are_read_as_one_stream() {
    // ModelScope serves regular files whole, whatever range is asked: a 20 MiB regular file
    // becomes an LFS object at both destinations, read once from its start.
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "ms",
        "alice/plain",
        &["--files", "2", "--file-size", "20MiB"],
    );
    assert!(files.iter().filter(|f| f.size == 20 * MIB).all(|f| !f.lfs));
    let source = Hubsim::start_in("ms", src, &[]);
    let to_ms = Hubsim::start("ms", &[]);
    let to_hf = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "5MiB"]);
    for (to, dest) in [("ms", &to_ms), ("hf", &to_hf)] {
        let run = run_to(
            "ms:alice/plain",
            to,
            &source,
            dest,
            &["--parallel", "--split", "always", "--chunk-size", "8MiB"],
        );
        assert_code(&run, 0);
        let (n, uploaded, verified) = summary(&run);
        assert!(verified, "{to}: {}", run.output());
        assert_eq!(n as usize, files.len());
        assert!(uploaded >= 40 * MIB, "{to}: {uploaded}");
        assert!(
            !run.output().contains("split "),
            "regular files are not split:\n{}",
            run.output()
        );
    }
}

/// Two 48 MiB files (each larger than a chunk), each cut into three pieces for three workers,
/// each worker moving one piece at a time over a source capped at 4 MiB/s per connection: a
/// worker's second piece starts its parts 4 to 8 s after the uploads were opened, while the
/// destination's presigned URLs live 6 s. The coordinator opens that upload again and its three
/// pieces go again under the new URLs (about 4 s); the run ends verified and the objects are the
/// source's.
#[test]
fn part_urls_that_expire_mid_transfer_are_renewed() {
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "hf",
        "alice/slow",
        &["--lfs-file", "a.bin=48MiB", "--lfs-file", "b.bin=48MiB", "--files", "1"],
    );
    let source = Hubsim::start_in("hf", src, &["--conn-rate", "4MiB"]);
    let dest = Hubsim::start(
        "hf",
        &[
            "--multipart-threshold",
            "8MiB",
            "--part-size",
            "4MiB",
            "--url-ttl",
            "6s",
        ],
    );
    let flags = [
        "--parallel",
        "--split",
        "always",
        "--max-workers",
        "3",
        "--chunk-size",
        "16MiB",
        "--worker-concurrency",
        "1",
        "--streams",
        "1",
    ];
    let run = run_to("hf:alice/slow", "hf", &source, &dest, &flags);
    assert_code(&run, 0);
    let out = run.output();
    assert!(out.contains("split   2 large file(s) cut into 6 pieces"), "{out}");
    let (_, _, verified) = summary(&run);
    assert!(verified, "{out}");
    let stats = dest.stats();
    let count = |group: &str, key: &str| stats[group][key].as_u64().unwrap_or(0);
    assert!(count("refused", "expired_url") >= 1, "no URL expired: {stats}");
    assert!(
        out.contains("the upload was opened again"),
        "the run says it opened the upload again:\n{out}"
    );
    // Each file's upload completed once; the renewed one took its parts again.
    assert_eq!(count("multipart", "completed"), 2, "{stats}");
    assert!(count("multipart", "parts") > 24, "{stats}");
    let big: Vec<_> = files.iter().filter(|f| f.size == 48 * MIB).collect();
    assert_served(&dest, "alice/slow", &big);
}

/// A worker asks the store for its whole files' uploads when it starts; one file at a time over
/// a capped source, the later files find those URLs dead and ask again.
#[test]
fn upload_urls_that_expire_before_a_worker_gets_to_them_are_renewed() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/many",
        &["--lfs-files", "5", "--lfs-size", "3MiB", "--files", "1"],
    );
    let source = Hubsim::start_in("hf", src, &["--conn-rate", "3MiB"]);
    let dest = Hubsim::start("hf", &["--url-ttl", "2s"]);
    let run = run_to(
        "hf:alice/many",
        "hf",
        &source,
        &dest,
        &["--worker-concurrency", "1", "--streams", "1"],
    );
    assert_code(&run, 0);
    let out = run.output();
    let (files, uploaded, verified) = summary(&run);
    assert!(verified, "{out}");
    assert_eq!(files, 5 + 1 + 1, "{out}");
    assert!(uploaded >= 15 * MIB, "{uploaded}");
    let stats = dest.stats();
    assert!(
        stats["refused"]["expired_url"].as_u64().unwrap_or(0) >= 1,
        "no URL expired: {stats}"
    );
}

/// A large LFS file costs one `/resolve/` a process that reads it (the Hub counts every resolve
/// against the user's quota: the ranges go where the first resolve led, the CDN), and goes in
/// ranges of 64 MiB to a destination that takes one PUT stream (ModelScope: 3 ranges for 150
/// MiB). Before, every range and every part was a resolve: 3 to ModelScope, 30 when the file
/// went whole to a Hugging Face destination in 5 MiB parts, 10 or more when split in pieces.
#[test]
fn a_large_file_costs_one_resolve_a_reader_and_goes_in_64_mib_ranges() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/wide",
        &["--lfs-file", "big.bin=150MiB", "--files", "1"],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    let parts = ["--multipart-threshold", "8MiB", "--part-size", "5MiB"];
    let to_hf_split = Hubsim::start("hf", &parts);
    let to_hf_whole = Hubsim::start("hf", &parts);
    let to_ms = Hubsim::start("ms", &[]);
    // Split: two workers of one connection each, a piece's ten parts one GET (with more
    // connections than parts, each part is its own GET, for speed). Whole: one worker hashes
    // the 30 parts in order, one GET a part.
    let split = [
        "--parallel",
        "--split",
        "always",
        "--max-workers",
        "2",
        "--chunk-size",
        "64MiB",
        "--streams",
        "1",
    ];
    let whole = ["--split", "never"];
    let cases = [
        ("ms", &to_ms, &[][..], 1, 3..=8),
        ("hf", &to_hf_split, &split[..], 2, 3..=8),
        ("hf", &to_hf_whole, &whole[..], 1, 30..=36),
    ];
    for (to, dest, flags, readers, gets) in cases {
        let (resolves_before, cdn_before) = (answered(&source, "resolve"), answered(&source, "download"));
        let run = run_to("hf:alice/wide", to, &source, dest, flags);
        assert_code(&run, 0);
        assert!(summary(&run).2, "{to} {flags:?}: {}", run.output());
        let resolves = answered(&source, "resolve") - resolves_before;
        let cdn = answered(&source, "download") - cdn_before;
        // The ETA probe's process and each worker that reads the big file resolve it once;
        // the two regular files (.gitattributes and one more) are a resolve each.
        assert!(
            resolves <= 1 + readers + 2,
            "{to} {flags:?}: {resolves} resolves for one 150 MiB file and two small ones"
        );
        assert!(
            gets.contains(&cdn),
            "{to} {flags:?}: {cdn} GETs of the object's bytes, expected {gets:?}"
        );
    }
    for dest in [&to_hf_split, &to_hf_whole] {
        assert!(
            answered(dest, "part") >= 30,
            "the HF destination took the file in 5 MiB parts"
        );
    }
}
