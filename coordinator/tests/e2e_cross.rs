//! End to end across hubs: Hugging Face to ModelScope and back, models and datasets, ModelScope
//! to ModelScope with more than 3000 files, and spaces (100,000 small files: e2e_quota.rs).

mod common;
use common::*;

const EDGE: &[&str] = &[
    "--files",
    "8",
    "--lfs-files",
    "2",
    "--lfs-size",
    "2MiB",
    "--lfs-file",
    "dir with space/ünï cødé [1], v2.safetensors=3MiB",
    "--lfs-file",
    "nested/a/empty.bin=0",
    // No default rule covers *.json: the destination appends one to .gitattributes.
    "--lfs-file",
    "tokenizer/vocab [v2].json=1MiB",
];

fn env() -> [(&'static str, &'static str); 2] {
    [("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)]
}

#[test]
fn hf_to_ms_and_back_keeps_files_and_privacy() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", &[EDGE, &["--private"]].concat());
    seed(
        src.path(),
        "hf",
        "alice/d",
        &[
            "--repo-type",
            "dataset",
            "--files",
            "30",
            "--lfs-files",
            "2",
            "--lfs-size",
            "1MiB",
        ],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let to_ms = ["--source-endpoint", &hf.url, "--dest-endpoint", &ms.url];
    let to_hf = ["--source-endpoint", &ms.url, "--dest-endpoint", &hf.url];

    let run = migrate(
        &[
            &["run", "--source", "hf:alice/m", "--to", "ms", "--parallel"],
            &to_ms[..],
        ]
        .concat(),
        &env(),
    );
    assert_code(&run, 0);
    let (files, uploaded, verified) = summary(&run);
    assert_eq!(files, 8 + 2 + 3 + 1, "every seeded file, .gitattributes included");
    assert!(verified && uploaded >= 8 << 20, "{uploaded}");
    assert_eq!(
        ms_repo(&ms, "models/alice/m", ALICE),
        Some(true),
        "private stays private"
    );
    assert_eq!(ms_repo(&ms, "models/alice/m", BOB), None);

    let back = migrate(
        &[
            &["run", "--source", "ms:alice/m", "--dest", "hf:alice/m-back"],
            &to_hf[..],
        ]
        .concat(),
        &env(),
    );
    assert_code(&back, 0);
    assert!(summary(&back).2);
    assert_eq!(hf_repo(&hf, "models/alice/m-back", ALICE), Some(true));

    let ds = migrate(
        &[&["run", "--source", "hf:datasets/alice/d", "--to", "ms"], &to_ms[..]].concat(),
        &env(),
    );
    assert_code(&ds, 0);
    assert_eq!(summary(&ds).0, 33);
    let ds_back = migrate(
        &[
            &[
                "run",
                "--source",
                "ms:datasets/alice/d",
                "--dest",
                "hf:datasets/alice/d-back",
            ],
            &to_hf[..],
        ]
        .concat(),
        &env(),
    );
    assert_code(&ds_back, 0);
    assert!(summary(&ds_back).2);
    for r in [&run, &back, &ds, &ds_back] {
        assert!(!r.output().contains(ALICE), "token leaked");
    }
}

#[test]
fn ms_to_ms_with_more_than_3000_files() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "ms",
        "alice/many",
        &["--files", "3100", "--file-size", "64"],
    );
    let source = Hubsim::start_in("ms", src, &[]);
    let dest = Hubsim::start("ms", &[]);
    let run = migrate(
        &[
            "run",
            "--source",
            "ms:alice/many",
            "--dest",
            "ms:alice/many-copy",
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
        ],
        &env(),
    );
    assert_code(&run, 0);
    assert_eq!(
        summary(&run).0,
        3101,
        "every file, past the listing's 3000-entry truncation"
    );
    assert!(summary(&run).2);
}

#[test]
fn spaces_go_to_modelscope_only_as_models() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/app", &["--repo-type", "space", "--files", "3"]);
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let args = [
        "run",
        "--source",
        "hf:spaces/alice/app",
        "--to",
        "ms",
        "--source-endpoint",
        &hf.url,
        "--dest-endpoint",
        &ms.url,
    ];
    let skipped = coord(&args, &env());
    assert_code(&skipped, 0);
    assert!(skipped.stderr.contains("skipped"), "{}", skipped.output());
    assert_eq!(ms_repo(&ms, "models/alice/app", ALICE), None);
    let moved = migrate(&[&args[..], &["--repo-type", "model"]].concat(), &env());
    assert_code(&moved, 0);
    assert_eq!(ms_repo(&ms, "models/alice/app", ALICE), Some(false));
}
