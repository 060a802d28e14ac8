//! End to end on Kubernetes, a large file split across worker pods: a controller killed mid-split
//! continues the same multipart upload, part URLs that expire mid-transfer are renewed, and a
//! Migration deleted mid-split stops with its Jobs and Secrets gone and nothing committed.

mod common;
use common::k8s::*;
use common::*;
use std::time::{Duration, Instant};

/// The parts a journal in the migration's uploads Secret holds ETags for.
fn acknowledged_parts(k: &Kubesim, name: &str) -> usize {
    use base64::Engine;
    let (_, data, _) = k.kubectl(
        &[
            "get",
            "secret",
            &format!("{name}-uploads"),
            "-o",
            "jsonpath={.data.uploads\\.json}",
        ],
        None,
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .unwrap_or_default();
    let saved: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    saved["reported"]
        .as_array()
        .map(|r| r.iter().map(|s| s["etags"].as_array().map_or(0, Vec::len)).sum())
        .unwrap_or(0)
}

/// A controller killed while a large file is split across workers continues the same multipart
/// upload after its restart: the parts it had ETags for are not sent again, and the run ends
/// Succeeded.
#[test]
fn a_controller_killed_mid_split_continues_the_same_upload() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/big",
        &["--lfs-file", "weights/big.safetensors=40MiB"],
    );
    let source = Hubsim::start_in("hf", src, &["--conn-rate", "4MiB"]);
    let dest = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "5MiB"]);
    let grpc = free_grpc_addr();
    let mut c = cluster_on(&grpc, &[&source, &dest]);
    let yaml = format!(
        "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: split\nspec:\n  source: hf:alice/big\n  dest: hf:alice/big\n  sourceEndpoint: {}\n  destEndpoint: {}\n  parallel: true\n  split: always\n  maxWorkers: 2\n  chunkSize: 8MiB\n  workerConcurrency: 1\n  streams: 1\n  tokensSecret: hub-tokens\n",
        source.url, dest.url
    );
    let (ok, out, err) = c.k.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(ok, "{out}{err}");
    let started = Instant::now();
    let acknowledged = loop {
        let n = acknowledged_parts(&c.k, "split");
        if n >= 3 {
            break n;
        }
        let phase = field(&c.k, "split", ".status.phase");
        assert!(
            phase != "Succeeded" && phase != "Failed",
            "ended before the kill: {phase}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no slice was journalled");
        std::thread::sleep(Duration::from_millis(100));
    };
    c.controller.kill().unwrap();
    c.controller.wait().unwrap();
    let parts = 8; // 40 MiB in parts of 5 MiB
    assert!(
        acknowledged < parts,
        "the kill came after every part was in ({acknowledged})"
    );
    std::thread::sleep(Duration::from_millis(500));
    c.controller = c.start_controller(&grpc);
    assert_verified(&c.k, "split");
    let stats = dest.stats();
    let count = |group: &str, key: &str| stats[group][key].as_u64().unwrap_or(0) as usize;
    assert_eq!(count("multipart", "completed"), 1, "one upload, continued: {stats}");
    let batches: u64 = stats["requests"]["lfs_batch"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
    // One batch opened the upload, one read the assembled object back before the commit.
    assert_eq!(batches, 2, "the restarted controller opened no new upload: {stats}");
    // Every part once, but those in flight when the controller died (one per worker: one
    // connection each; a part cut off by its worker's end is answered 400 and not counted);
    // none of the acknowledged ones again.
    let sent = count("multipart", "parts");
    assert!(
        sent >= parts && sent <= parts + 2,
        "{sent} part PUTs for {parts} parts, {acknowledged} acknowledged before the kill: {stats}"
    );
}

/// A Migration that splits large files across `workers` workers of one connection each.
fn split_migration(name: &str, repo: &str, source: &Hubsim, dest: &Hubsim, chunk: &str, workers: u32) -> String {
    format!(
        "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: {name}\nspec:\n  source: hf:{repo}\n  dest: hf:{repo}\n  sourceEndpoint: {}\n  destEndpoint: {}\n  parallel: true\n  split: always\n  maxWorkers: {workers}\n  chunkSize: {chunk}\n  workerConcurrency: 1\n  streams: 1\n  tokensSecret: hub-tokens\n",
        source.url, dest.url
    )
}

/// Part URLs that live 8 s, over a transfer of about 10 s through Jobs whose pods take 2 s to
/// start: two files, each split over three workers (each larger than a chunk); the second
/// file's last parts find their URLs expired, the controller opens that upload again, and the
/// rerun Jobs send its parts to the new URLs; the run ends Succeeded.
#[test]
fn part_urls_that_expire_mid_transfer_are_renewed_through_the_controller() {
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "hf",
        "alice/ttl",
        &["--lfs-file", "a.bin=48MiB", "--lfs-file", "b.bin=48MiB"],
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
            "8s",
        ],
    );
    let c = cluster_with("127.0.0.1:0", &["--pod-start-delay", "2s"], &[&source, &dest]);
    let yaml = split_migration("ttl", "alice/ttl", &source, &dest, "16MiB", 3);
    let (ok, out, err) = c.k.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(ok, "{out}{err}");
    assert_verified(&c.k, "ttl");
    let stats = dest.stats();
    let count = |group: &str, key: &str| stats[group][key].as_u64().unwrap_or(0);
    assert!(count("refused", "expired_url") >= 1, "no URL expired: {stats}");
    assert_eq!(count("multipart", "completed"), 2, "{stats}");
    assert!(
        count("multipart", "parts") > 24,
        "the renewed upload took parts again: {stats}"
    );
    assert_served(&dest, "alice/ttl", &files.iter().collect::<Vec<_>>());
}

/// Deleting a Migration while its large file is split across workers stops the transfer: the
/// worker pods, Jobs and the migration's Secrets go, no part is sent after that and nothing is
/// committed. (The Hub's LFS protocol has no call that aborts an open multipart upload: the store
/// expires the parts it holds.)
#[test]
fn a_migration_deleted_mid_split_stops_and_leaves_nothing_behind() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/gone",
        &["--lfs-file", "weights/big.safetensors=40MiB"],
    );
    let source = Hubsim::start_in("hf", src, &["--conn-rate", "2MiB"]);
    let dest = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "4MiB"]);
    let c = cluster(&[&source, &dest]);
    let k = &c.k;
    let yaml = split_migration("gone", "alice/gone", &source, &dest, "8MiB", 2);
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(ok, "{out}{err}");
    let started = Instant::now();
    while acknowledged_parts(k, "gone") < 2 {
        let phase = field(k, "gone", ".status.phase");
        assert!(
            phase != "Succeeded" && phase != "Failed",
            "ended before the delete: {phase}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no part was acknowledged");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, _, err) = k.kubectl(&["delete", "migration", "gone"], None);
    assert!(ok, "{err}");
    let started = Instant::now();
    loop {
        let (_, left, _) = k.kubectl(&["get", "jobs,pods,secrets", "-o", "name"], None);
        if !left.contains("job") && !left.contains("pod") && !left.contains("gone-") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "left behind: {left}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let parts = |d: &Hubsim| d.stats()["multipart"]["parts"].as_u64().unwrap_or(0);
    let before = parts(&dest);
    assert!(before < 10, "the transfer had ended before the delete: {before} parts");
    std::thread::sleep(Duration::from_secs(5));
    let stats = dest.stats();
    assert_eq!(parts(&dest), before, "parts were still sent after the delete: {stats}");
    assert_eq!(stats["multipart"]["completed"].as_u64().unwrap_or(0), 0, "{stats}");
    assert_eq!(stats["commits"].as_u64().unwrap_or(0), 0, "{stats}");
}
