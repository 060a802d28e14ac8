//! End to end, Hugging Face to Hugging Face (two hubsim instances): edge-case names, privacy,
//! idempotence, filters, dry runs, bad input, and faults on the source.

mod common;
use common::*;

const EDGE: &[&str] = &[
    "--files",
    "12",
    "--lfs-files",
    "2",
    "--lfs-size",
    "3MiB",
    "--lfs-file",
    "dir with space/ünï cødé [1], v2.safetensors=12MiB",
    "--lfs-file",
    "nested/a/b/c/empty.bin=0",
    "--lfs-file",
    "nested/a/b/(brackets) {x}.bin=1KiB",
];

fn hubs() -> (Hubsim, Hubsim) {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/edge", EDGE);
    seed(
        src.path(),
        "hf",
        "alice/secret",
        &["--files", "3", "--lfs-files", "1", "--lfs-size", "1MiB", "--private"],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("hf", &["--multipart-threshold", "8MiB", "--part-size", "5MiB"]);
    (source, dest)
}

#[test]
fn hf_to_hf_edge_cases_privacy_and_idempotence() {
    let (source, dest) = hubs();
    let env = [("HF_TOKEN", ALICE)];
    let common = ["--source-endpoint", &source.url, "--dest-endpoint", &dest.url];
    let run = migrate(
        &[
            &[
                "run",
                "--source",
                "hf:alice/edge",
                "--dest",
                "hf:alice/edge-copy",
                "--parallel",
                "--max-workers",
                "3",
            ],
            &common[..],
        ]
        .concat(),
        &env,
    );
    assert_code(&run, 0);
    let (files, uploaded, verified) = summary(&run);
    assert_eq!(files, 12 + 2 + 3 + 1, "every seeded file, .gitattributes included");
    assert!(verified && uploaded >= 18 << 20, "{uploaded}");
    assert_eq!(hf_repo(&dest, "models/alice/edge-copy", ALICE), Some(false));

    // A second identical run sends nothing and still verifies.
    let again = migrate(
        &[
            &["run", "--source", "hf:alice/edge", "--dest", "hf:alice/edge-copy"],
            &common[..],
        ]
        .concat(),
        &env,
    );
    assert_code(&again, 0);
    assert_eq!(summary(&again), (files, 0, true));

    // HF_TOKEN belongs to the destination (another HF host): a private source needs its own
    // token in HUBMIGRATE_SOURCE_TOKEN, and the run says so.
    let private_args = [
        &["run", "--source", "hf:alice/secret", "--dest", "hf:alice/secret-copy"],
        &common[..],
    ]
    .concat();
    let anonymous = migrate(&private_args, &env);
    assert_ne!(anonymous.code, 0, "a private source read without a token");
    assert!(
        anonymous.output().contains("HUBMIGRATE_SOURCE_TOKEN"),
        "{}",
        anonymous.output()
    );
    assert_eq!(hf_repo(&dest, "models/alice/secret-copy", ALICE), None);
    // A private source stays private.
    let private = migrate(&private_args, &[env[0], ("HUBMIGRATE_SOURCE_TOKEN", ALICE)]);
    assert_code(&private, 0);
    assert_eq!(hf_repo(&dest, "models/alice/secret-copy", ALICE), Some(true));
    assert_eq!(
        hf_repo(&dest, "models/alice/secret-copy", BOB),
        None,
        "invisible to others"
    );

    // Filters, and a dry run that creates nothing.
    let filtered = migrate(
        &[
            &[
                "run",
                "--source",
                "hf:alice/edge",
                "--dest",
                "hf:alice/only-bins",
                "--include",
                "*.bin",
                "--exclude",
                "nested/",
            ],
            &common[..],
        ]
        .concat(),
        &env,
    );
    assert_code(&filtered, 0);
    assert_eq!(summary(&filtered).0, 2, "weights/model-*.bin only");
    let dry = migrate(
        &[
            &[
                "run",
                "--dry-run",
                "--source",
                "hf:alice/edge",
                "--dest",
                "hf:alice/never",
            ],
            &common[..],
        ]
        .concat(),
        &env,
    );
    assert_code(&dry, 0);
    assert!(dry.stderr.contains("plan"), "{}", dry.output());
    assert_eq!(
        hf_repo(&dest, "models/alice/never", ALICE),
        None,
        "a dry run creates nothing"
    );

    // No token ever shows up in what the user sees or in the report.
    for r in [&run, &again, &private, &filtered, &dry] {
        assert!(!r.output().contains(ALICE), "token leaked in output");
        assert!(
            !r.report
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default()
                .contains(ALICE),
            "token leaked in report"
        );
    }
}

#[test]
fn bad_input_is_refused_before_any_byte_moves() {
    let (source, dest) = hubs();
    let common = ["--source-endpoint", &source.url, "--dest-endpoint", &dest.url];
    // (arguments, environment, what the one-line error must mention)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["run", "--source", "hf:alice/edge", "--dest", "hf:nobody-here/x"],
            vec![("HF_TOKEN", ALICE)],
            "namespace",
        ),
        (
            vec!["run", "--source", "hf:alice/edge", "--dest", "hf:carol/x"],
            vec![("HF_TOKEN", ALICE), ("HUBMIGRATE_DEST_TOKEN", CAROL)],
            "read-only",
        ),
        (
            vec!["run", "--source", "hf:alice/edge", "--dest", "hf:alice/x"],
            vec![("HF_TOKEN", "hf_not_a_token")],
            "refused",
        ),
        (
            vec!["run", "--source", "hf:alice/edge", "--dest", "hf:alice/x"],
            vec![],
            "HF_TOKEN",
        ),
        (
            vec!["run", "--source", "alice/edge", "--dest", "hf:alice/x"],
            vec![("HF_TOKEN", ALICE)],
            "hf:NAMESPACE/NAME",
        ),
        (
            vec!["run", "--source", "hf:alice/missing", "--dest", "hf:alice/x"],
            vec![("HF_TOKEN", ALICE)],
            "not found",
        ),
    ];
    for (args, env, needle) in cases {
        let run = migrate(&[&args[..], &common[..]].concat(), &env);
        assert_code(&run, 2);
        assert!(run.stderr.contains(needle), "expected {needle:?} in:\n{}", run.output());
        assert!(!run.output().contains(ALICE) && !run.output().contains(CAROL));
    }
    assert_eq!(hf_repo(&dest, "models/alice/x", ALICE), None, "nothing was created");
    assert_eq!(hf_repo(&dest, "models/carol/x", ALICE), None);
}

/// A hub that cannot be reached is named with the cause, after the retries it got.
#[test]
fn an_unreachable_hub_is_named_with_its_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let run = migrate(
        &[
            "run",
            "--source",
            "hf:alice/m",
            "--dest",
            "hf:alice/x",
            "--source-endpoint",
            &nowhere,
            "--dest-endpoint",
            &nowhere,
        ],
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&run, 1);
    let want = format!("cannot reach 127.0.0.1:{port}: connection refused");
    assert!(run.stderr.contains(&want), "expected {want:?} in:\n{}", run.output());
    assert!(run.stderr.contains("(tried 6 times)"), "{}", run.output());
}

#[test]
fn validate_tokens_plan_and_json_logs() {
    let (source, dest) = hubs();
    let hf = ["--hf-endpoint", &source.url];
    let ok = coord(
        &[&["validate-tokens", "--namespace", "acme"], &hf[..]].concat(),
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&ok, 0);
    assert!(
        ok.stdout.contains("user alice") && ok.stdout.contains("can write to acme"),
        "{}",
        ok.output()
    );
    let ro = coord(
        &[&["validate-tokens", "--namespace", "acme"], &hf[..]].concat(),
        &[("HF_TOKEN", CAROL)],
    );
    assert_code(&ro, 2);
    assert!(
        ro.stdout.contains("read-only") && ro.stdout.contains("CANNOT write to acme"),
        "{}",
        ro.output()
    );
    let bad = coord(&[&["validate-tokens"], &hf[..]].concat(), &[("HF_TOKEN", "hf_nope")]);
    assert_code(&bad, 2);
    assert!(bad.stdout.contains("INVALID"));
    for r in [&ok, &ro, &bad] {
        assert!(!r.output().contains(ALICE) && !r.output().contains(CAROL) && !r.output().contains("hf_nope"));
    }

    let plan = coord(
        &[
            "--log-format",
            "json",
            "plan",
            "--source",
            "hf:alice/edge",
            "--dest",
            "hf:alice/p",
            "--parallel",
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
        ],
        &[("HF_TOKEN", ALICE)],
    );
    assert_code(&plan, 0);
    assert!(
        plan.stderr.contains("18 files") && plan.stderr.contains("chunk(s)") && plan.stderr.contains("ETA"),
        "{}",
        plan.output()
    );
    let json_lines: Vec<&str> = plan.stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!json_lines.is_empty(), "{}", plan.stderr);
    for l in json_lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
    assert_eq!(hf_repo(&dest, "models/alice/p", ALICE), None, "planning writes nothing");
}

#[test]
fn revision_pins_the_source_and_env_files_carry_tokens() {
    let (source, dest) = hubs();
    // A branch on the source with one file fewer: create it, then delete a file on main.
    let api = format!("{}/api/models/alice/edge", source.url);
    let (code, info) = get_json(&api, Some(ALICE));
    assert_eq!(code, 200);
    let main_before = info["sha"].as_str().unwrap().to_string();
    let body = "{\"key\":\"header\",\"value\":{\"summary\":\"rm\"}}\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"files/part-000/file-00000.txt\"}}\n";
    assert_eq!(hf_commit(&source, "models/alice/edge", body, ALICE), 200);

    // Tokens from ./.env (the default env file), none in the environment.
    let dir = TempDir::new("envfile");
    std::fs::write(dir.path().join(".env"), format!("# test tokens\nHF_TOKEN={ALICE}\n")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-coord"));
    let out = cmd
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .args([
            "run",
            "--source",
            "hf:alice/edge",
            "--dest",
            "hf:alice/pinned",
            "--revision",
            &main_before,
        ])
        .args([
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
            "--report",
            "r.json",
            "--worker-bin",
        ])
        .arg(bin("migrate-worker"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["source_commit"], main_before.as_str());
    assert_eq!(report["files"], 18, "the pinned revision still has the deleted file");
    assert!(!stderr.contains(ALICE));
}

/// The destination's HF_TOKEN never reaches the source host (another HF-compatible hub): a
/// recording server stands in for the source and sees every request the run sends it.
#[test]
fn the_destination_token_is_never_sent_to_the_source_host() {
    let dest = Hubsim::start("hf", &[]);
    let source = Recorder::start(|_| Reply::new(404));
    let sides = ["--source-endpoint", &source.url, "--dest-endpoint", &dest.url];
    let args = [
        &["run", "--source", "hf:alice/edge", "--dest", "hf:alice/edge-copy"],
        &sides[..],
    ]
    .concat();
    let run = migrate(&args, &[("HF_TOKEN", ALICE)]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(!source.seen().is_empty(), "the run asked the source something");
    let leaked = source.credentials_seen(ALICE);
    assert!(
        leaked.is_empty(),
        "the source host received the destination's token: {leaked:?}"
    );
    assert!(!run.output().contains(ALICE), "{}", run.output());
}

/// A repo more than one commit can carry (the server times out a commit of over 40 files) lands
/// in several commits sized down from the timeouts, is verified, and a re-run commits nothing.
#[test]
fn a_repo_over_the_hubs_commit_limits_lands_in_several_commits() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/wide",
        &[
            "--files",
            "150",
            "--file-size",
            "200",
            "--lfs-files",
            "2",
            "--lfs-size",
            "64KiB",
        ],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start(
        "hf",
        &[
            "--commit-op-cost",
            "1ms",
            "--commit-timeout",
            "1s",
            "--max-commit-ops",
            "40",
        ],
    );
    let args = [
        "run",
        "--source",
        "hf:alice/wide",
        "--dest",
        "hf:alice/wide-copy",
        "--source-endpoint",
        &source.url,
        "--dest-endpoint",
        &dest.url,
    ];
    let run = migrate(&args, &[("HF_TOKEN", ALICE)]);
    assert_code(&run, 0);
    let (files, _, verified) = summary(&run);
    assert!(verified && files == 153, "{files} files, verified {verified}");
    let timeouts = dest.stats()["requests"]["commit"]["504"].as_u64().unwrap_or(0);
    assert!(timeouts >= 1, "no commit was too large for the server");
    let titles = commit_titles(&dest, "alice/wide-copy");
    let parts: Vec<&String> = titles.iter().filter(|t| t.contains("(part ")).collect();
    // About 150 files at most 40 a commit: at least 4 parts, each one saying which files.
    assert!(parts.len() >= 4, "{titles:?}");
    assert!(
        parts.iter().all(|t| t.contains(" files ") && t.contains(" of ")),
        "{titles:?}"
    );

    let again = migrate(&args, &[("HF_TOKEN", ALICE)]);
    assert_code(&again, 0);
    assert_eq!(
        commit_titles(&dest, "alice/wide-copy"),
        titles,
        "a re-run made a commit (the destination held every file)"
    );
}

/// The plan says, before any byte moves, what the Hub only recommends and this migration
/// exceeds: a crowded folder at a Hugging Face destination, and a large source read without a
/// token (an anonymous reader's quota is 3,000 files per 5 minutes).
#[test]
fn the_plan_warns_of_crowded_folders_and_anonymous_reads() {
    let src = TempDir::new("src");
    // The seed puts LFS files side by side in weights/.
    seed(
        src.path(),
        "hf",
        "alice/many",
        &["--files", "0", "--lfs-files", "10001", "--lfs-size", "1"],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("hf", &[]);
    let plan = |env: &[(&str, &str)]| {
        coord(
            &[
                "plan",
                "--source",
                "hf:alice/many",
                "--dest",
                "hf:alice/many-copy",
                "--source-endpoint",
                &source.url,
                "--dest-endpoint",
                &dest.url,
            ],
            env,
        )
    };
    // HF to HF: HF_TOKEN is the destination's, the public source is read anonymously.
    let anonymous = plan(&[("HF_TOKEN", ALICE)]);
    assert_code(&anonymous, 0);
    let warnings: Vec<&str> = anonymous.stderr.lines().filter(|l| l.starts_with("warning ")).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("without a token") && w.contains("HUBMIGRATE_SOURCE_TOKEN")),
        "{}",
        anonymous.output()
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("entries: the Hub recommends under 10000 per folder")),
        "{}",
        anonymous.output()
    );
    let as_alice = plan(&[("HF_TOKEN", ALICE), ("HUBMIGRATE_SOURCE_TOKEN", ALICE)]);
    assert_code(&as_alice, 0);
    assert!(!as_alice.stderr.contains("without a token"), "{}", as_alice.output());
    assert_eq!(
        hf_repo(&dest, "models/alice/many-copy", ALICE),
        None,
        "planning writes nothing"
    );
}

/// The Hub's hourly commit quota (here 1 commit per 15 s window): a run whose second commit is
/// refused waits the `Retry-After` the hub sent, saying so, and finishes verified. With a
/// `--max-wait` shorter than that wait it stops after its first commit, saying why, and a re-run
/// commits only the rest: no empty commit, no object sent again.
#[test]
fn the_hourly_commit_quota_is_waited_for_up_to_max_wait() {
    let src = TempDir::new("src");
    let shape = [
        "--files",
        "600",
        "--file-size",
        "100",
        "--lfs-files",
        "2",
        "--lfs-size",
        "64KiB",
    ];
    seed(src.path(), "hf", "alice/many", &shape);
    let source = Hubsim::start_in("hf", src, &[]);
    let quota = [
        "--commit-limit",
        "1",
        "--commit-window",
        "15s",
        "--commit-op-cost",
        "1ms",
    ];
    let args = |dest: &Hubsim, repo: &str| -> Vec<String> {
        [
            "run",
            "--source",
            "hf:alice/many",
            "--dest",
            repo,
            "--source-endpoint",
            &source.url,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--dest-endpoint".to_string(), dest.url.clone()])
        .collect()
    };
    let env = [("HF_TOKEN", ALICE)];

    // Waits: 600 files go in two commits (250 first), the second after the window turns over.
    let dest = Hubsim::start("hf", &quota);
    let a = args(&dest, "hf:alice/many-copy");
    let run = migrate(&a.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_code(&run, 0);
    let (files, _, verified) = summary(&run);
    assert!(verified && files == 603, "{files} files, verified {verified}");
    assert!(run.output().contains("hub quota: waiting "), "{}", run.output());
    assert!(dest.stats()["requests"]["commit"]["429"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(
        commit_titles(&dest, "alice/many-copy").len(),
        3,
        "the initial commit and two parts"
    );

    // Stops at --max-wait, then a re-run continues.
    let dest = Hubsim::start("hf", &quota);
    let mut short = args(&dest, "hf:alice/many-copy");
    short.extend(["--max-wait".to_string(), "3s".to_string()]);
    let stopped = migrate(&short.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_code(&stopped, 1);
    assert!(
        stopped.output().contains("longer than --max-wait (3 s)") && stopped.output().contains("run again later"),
        "{}",
        stopped.output()
    );
    let first = commit_titles(&dest, "alice/many-copy");
    assert_eq!(first.len(), 2, "the first part landed before the stop: {first:?}");
    let sent = answered(&dest, "upload");
    assert!(sent >= 2, "the two objects were uploaded before the stop");
    let a = args(&dest, "hf:alice/many-copy");
    let again = migrate(&a.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_code(&again, 0);
    assert!(summary(&again).2, "{}", again.output());
    // Newest first: the re-run's commits carry the 352 files the first run did not commit.
    let titles = commit_titles(&dest, "alice/many-copy");
    let new = &titles[..titles.len() - first.len()];
    assert!(
        !new.is_empty() && new.iter().all(|t| t.contains(" of 352)")),
        "{titles:?}"
    );
    assert_eq!(
        answered(&dest, "upload"),
        sent,
        "an object already at the destination was sent again"
    );
}

/// A file larger than the Hub takes over LFS (50 GB) is an error before anything is written:
/// `run` exits 2 naming it, the destination repo is not created, and no byte of the source is
/// read. The source's pointer names a 60 GB object its store does not hold: only the listing
/// is read.
#[test]
fn a_file_over_the_hubs_object_limit_stops_the_run_before_any_write() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/huge",
        &["--files", "2", "--lfs-files", "1", "--lfs-size", "1KiB"],
    );
    let bare = src.path().join("repos/models/alice/huge.git");
    let index = src.path().join("huge.index");
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 60000000000\n",
        "ab".repeat(32)
    );
    let script = r#"set -e
blob=$(printf '%s' "$POINTER" | git hash-object -w --stdin)
git read-tree main
git update-index --add --cacheinfo "100644,$blob,weights/huge.safetensors"
tree=$(git write-tree)
commit=$(git -c user.name=t -c user.email=t@t commit-tree "$tree" -p main -m "a 60 GB file")
git update-ref refs/heads/main "$commit""#;
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .env("GIT_DIR", &bare)
        .env("GIT_INDEX_FILE", &index)
        .env("POINTER", &pointer)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("hf", &[]);
    let run = migrate(
        &[
            "run",
            "--source",
            "hf:alice/huge",
            "--dest",
            "hf:alice/huge-copy",
            "--source-endpoint",
            &source.url,
            "--dest-endpoint",
            &dest.url,
        ],
        &[("HF_TOKEN", ALICE), ("HUBMIGRATE_SOURCE_TOKEN", ALICE)],
    );
    assert_code(&run, 2);
    assert!(
        run.output().contains(
            "weights/huge.safetensors is 60000000000 bytes: the destination takes objects of at most 50000000000 bytes"
        ),
        "{}",
        run.output()
    );
    assert_eq!(
        hf_repo(&dest, "models/alice/huge-copy", ALICE),
        None,
        "the destination was created"
    );
    let stats = source.stats();
    for class in ["resolve", "download"] {
        assert!(
            stats["requests"][class].as_object().is_none_or(|m| m.is_empty()),
            "{class}: {stats}"
        );
    }
}
