//! `migrate-coord batch` against hubsim: a file with renamed destinations, a repo that does not
//! exist (the others still migrate), skipping complete destinations, completing an interrupted
//! one, the comma form, and malformed files refused before anything runs.

mod common;
use common::*;

fn env() -> [(&'static str, &'static str); 2] {
    [("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)]
}

fn batch(hf: &Hubsim, ms: &Hubsim, extra: &[&str]) -> Run {
    let worker = bin("migrate-worker");
    let args = [
        "batch",
        "--source-endpoint",
        &hf.url,
        "--dest-endpoint",
        &ms.url,
        "--worker-bin",
        worker.to_str().unwrap(),
    ];
    reported(&[&args[..], extra].concat(), &env())
}

fn statuses(run: &Run) -> Vec<(String, String)> {
    let r = run
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no report:\n{}", run.output()));
    let mut v: Vec<(String, String)> = r["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["dest"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_batch_file_migrates_skips_and_completes() {
    let src = TempDir::new("src");
    for repo in ["acme/a", "acme/b", "alice/c"] {
        seed(
            src.path(),
            "hf",
            repo,
            &["--files", "3", "--lfs-files", "1", "--lfs-size", "1MiB"],
        );
    }
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    // An interrupted earlier migration of acme/b: only some of its files made it.
    let partial = run_to("hf:acme/b", "ms", &hf, &ms, &["--include", "*.bin"]);
    assert_code(&partial, 0);

    let dir = TempDir::new("batch");
    let file = dir.path().join("repos.txt");
    std::fs::write(
        &file,
        "# org backup\nhf:acme/a ms:alice/a-copy\nhf:acme/b\nhf:acme/missing\nalice/c   # bare id: the hub that is not --to\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let first = batch(&hf, &ms, &["--from-file", file, "--to", "ms", "--max-repos", "2"]);
    assert_code(&first, 1);
    let s = statuses(&first);
    let status = |d: &str| s.iter().find(|(dest, _)| dest.contains(d)).map(|(_, st)| st.clone());
    assert_eq!(status("alice/a-copy").as_deref(), Some("migrated"), "{s:?}");
    assert_eq!(status("acme/b").as_deref(), Some("completed"), "{s:?}");
    assert_eq!(status("alice/c").as_deref(), Some("migrated"), "{s:?}");
    assert!(
        matches!(status("acme/missing").as_deref(), Some("bad-input" | "failed")),
        "{s:?}"
    );
    let out = first.output();
    assert!(out.contains("3 of 4 repos done") && out.contains("verified"), "{out}");
    assert!(out.contains("acme/missing"), "the failure is named: {out}");
    assert_eq!(ms_repo(&ms, "models/alice/a-copy", ALICE), Some(false));

    // Again: everything complete is skipped (nothing moved), the missing repo still fails.
    let second = batch(&hf, &ms, &["--from-file", file, "--to", "ms"]);
    assert_code(&second, 1);
    let s = statuses(&second);
    assert_eq!(s.iter().filter(|(_, st)| st == "skipped").count(), 3, "{s:?}");

    // --on-existing update migrates again; the comma form works.
    let update = batch(
        &hf,
        &ms,
        &["--source", "acme/a,alice/c", "--to", "ms", "--on-existing", "update"],
    );
    assert_code(&update, 0);
    assert!(statuses(&update).iter().all(|(_, st)| st == "migrated"));
}

#[test]
fn malformed_batches_are_refused_before_anything_runs() {
    let hf = Hubsim::start("hf", &[]);
    let ms = Hubsim::start("ms", &[]);
    let dir = TempDir::new("batch");
    let file = dir.path().join("repos.txt");
    std::fs::write(&file, "hf:acme/a ms:acme/a extra-field\nnot a repo at all\n").unwrap();
    let run = batch(&hf, &ms, &["--from-file", file.to_str().unwrap(), "--to", "ms"]);
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("line 1") && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );
    std::fs::write(&file, "hf:acme/../x\n").unwrap();
    let run = batch(&hf, &ms, &["--from-file", file.to_str().unwrap(), "--to", "ms"]);
    assert_code(&run, 2);
    let run = batch(&hf, &ms, &["--source", "acme/a"]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("--to"), "{}", run.stderr);
}
