//! End to end with Git LFS hosts (hubsim's GitLab-like `git` flavor): history pushed with the
//! same commit ids, checked with the real git and git-lfs; HF, ModelScope and git in every
//! direction; --mirror, --pointer-only, --use-remote-mirror, the host's LFS size limit, the git
//! fallback when a hub's API refuses to list, and no token on any git command line.

mod common;
use common::git::*;
use common::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Adds a commit to the source over git: drops `remove` (its LFS object then lives only in the
/// history) and adds notes.txt.
fn add_commit(url: &str, remove: &str) -> String {
    push_commit(url, |w| {
        git(w, &["rm", "--quiet", remove], None);
        std::fs::write(w.join("notes.txt"), "second commit\n").unwrap();
    })
}

/// Clones `url`, lets `edit` change the work tree, commits everything and pushes; the new
/// commit's id.
fn push_commit(url: &str, edit: impl FnOnce(&Path)) -> String {
    let tmp = TempDir::new("work");
    git(tmp.path(), &["clone", "--quiet", url, "w"], Some(ALICE));
    let w = tmp.path().join("w");
    edit(&w);
    git(&w, &["add", "--all"], None);
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.com"];
    git(&w, &[&who[..], &["commit", "--quiet", "-m", "edit"]].concat(), None);
    let branch = git(&w, &["rev-parse", "--abbrev-ref", "HEAD"], None);
    git(&w, &["push", "--quiet", "origin", branch.trim()], Some(ALICE));
    git(&w, &["rev-parse", "HEAD"], None).trim().to_string()
}

const LFS: &[&str] = &[
    "--files",
    "4",
    "--lfs-file",
    "old/weights.bin=1MiB",
    "--lfs-file",
    "dir with space/model [v2].safetensors=2MiB",
];

fn git_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HF_TOKEN", ALICE),
        ("MODELSCOPE_TOKEN", ALICE),
        ("TARGET_TOKEN", ALICE),
    ]
}

/// `migrate-coord run` from the HF hub's alice/m to `dest`.
fn from_hf(hf: &Hubsim, dest: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let args = [
        "run",
        "--source",
        "hf:alice/m",
        "--source-endpoint",
        &hf.url,
        "--dest",
        dest,
    ];
    migrate(&[&args[..], extra].concat(), env)
}

/// A `git` on PATH that records its arguments before running the real one.
fn recording_git(dir: &Path) -> String {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let log = dir.join("argv.log");
    let script = dir.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn hf_to_git_keeps_history_and_lfs_and_no_token_reaches_git_argv() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", &[LFS, &["--private"]].concat());
    let hf = Hubsim::start_in("hf", src, &[]);
    // A subgroup, as on GitLab.
    let gl = Hubsim::start("git", &["--org", "acme/models=alice"]);
    let src_url = format!("{}/alice/m", hf.url);
    let head = add_commit(&src_url, "old/weights.bin");
    let dest = format!("{}/acme/models/m.git", gl.url);

    let bin = TempDir::new("bin");
    let path = recording_git(bin.path());
    let mut env = git_env();
    env.push(("PATH", &path));
    let run = from_hf(&hf, &dest, &[], &env);
    assert_code(&run, 0);
    assert!(!run.output().contains(ALICE), "a token was printed");
    let argv = std::fs::read_to_string(bin.path().join("argv.log")).expect("git was run");
    assert!(argv.contains("push") && argv.contains("fetch"), "{argv}");
    assert!(!argv.contains(ALICE), "a token reached git's command line: {argv}");
    assert!(
        !argv.contains('@'),
        "credentials in a URL on git's command line: {argv}"
    );

    // Same commit ids: history preserved, not re-committed.
    let (s, d) = (refs(&format!("{src_url}.git")), refs(&dest));
    assert_eq!(d.get("refs/heads/main"), Some(&head));
    assert_eq!(s.get("refs/heads/main"), d.get("refs/heads/main"));
    let report = run.report.as_ref().expect("report");
    assert_eq!(report["dest_commit"].as_str(), Some(head.as_str()));
    // The object only the old commit points at moved too (the host checks pushed history).
    assert_eq!(report["bytes_uploaded"].as_u64(), Some(3 << 20));

    // The real git-lfs agrees, and every file matches the source.
    let tmp = TempDir::new("clones");
    let want = clone_with_lfs(&format!("{src_url}.git"), &tmp.path().join("s"));
    let got = clone_with_lfs(&dest, &tmp.path().join("d"));
    assert_eq!(want, got);
    assert!(got.contains_key("dir with space/model [v2].safetensors") && !got.contains_key("old/weights.bin"));

    // The project was created private, like the source.
    let (status, project) = get_json(&format!("{}/api/v4/projects/acme%2Fmodels%2Fm", gl.url), Some(ALICE));
    assert_eq!((status, project["visibility"].as_str()), (200, Some("private")));

    // Again: nothing to send, nothing to push.
    let again = from_hf(&hf, &dest, &[], &git_env());
    assert_code(&again, 0);
    assert_eq!(again.report.as_ref().unwrap()["bytes_uploaded"].as_u64(), Some(0));
}

#[test]
fn ms_to_git_then_git_to_hf_and_ms() {
    let src = TempDir::new("src");
    seed(src.path(), "ms", "alice/m", LFS);
    let ms = Hubsim::start_in("ms", src, &[]);
    let gl = Hubsim::start("git", &[]);
    let hf = Hubsim::start("hf", &[]);
    let dest = format!("{}/alice/m.git", gl.url);
    let run = migrate(
        &[
            "run",
            "--source",
            "ms:alice/m",
            "--source-endpoint",
            &ms.url,
            "--dest",
            &dest,
        ],
        &git_env(),
    );
    assert_code(&run, 0);
    assert_eq!(
        refs(&format!("{}/alice/m.git", ms.url)).get("refs/heads/master"),
        refs(&dest).get("refs/heads/master")
    );
    let tmp = TempDir::new("clones");
    let files = clone_with_lfs(&dest, &tmp.path().join("d"));
    assert_eq!(files.len(), 4 + 2 + 1, "{files:?}");

    // Git host to git host (another one): same commits, same files per the real git-lfs.
    let source = [("HUBMIGRATE_SOURCE_TOKEN", ALICE)];
    let env: Vec<(&str, &str)> = git_env().into_iter().chain(source).collect();
    let gl2 = Hubsim::start("git", &[]);
    let copy = format!("{}/acme/copy.git", gl2.url);
    assert_code(&migrate(&["run", "--source", &dest, "--dest", &copy], &env), 0);
    assert_eq!(
        refs(&copy).get("refs/heads/master"),
        refs(&dest).get("refs/heads/master")
    );
    assert_eq!(clone_with_lfs(&copy, &tmp.path().join("c")), files);

    // Back out of the git host, to both hubs; the source token goes with the source.
    let to_hf = migrate(
        &[
            "run",
            "--source",
            &dest,
            "--dest",
            "hf:alice/back",
            "--dest-endpoint",
            &hf.url,
        ],
        &env,
    );
    assert_code(&to_hf, 0);
    assert!(to_hf.output().contains("verified"), "{}", to_hf.output());
    let to_ms = migrate(
        &[
            "run",
            "--source",
            &dest,
            "--dest",
            "ms:alice/back",
            "--dest-endpoint",
            &ms.url,
        ],
        &env,
    );
    assert_code(&to_ms, 0);
    // Same content on both hubs: every file's sha256 from the hubs' own listings.
    let (_, tree) = get_json(
        &format!("{}/api/models/alice/back/tree/main?recursive=true", hf.url),
        Some(ALICE),
    );
    let lfs: BTreeSet<String> = tree
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["lfs"]["oid"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".bin") || p.ends_with(".safetensors"))
        .map(|(_, s)| s.clone())
        .collect();
    assert_eq!(lfs, want);
}

#[test]
fn mirror_carries_branches_and_tags_and_lists_what_it_skips() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "2", "--lfs-file", "w.bin=1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let gl = Hubsim::start("git", &[]);
    let src_url = format!("{}/alice/m.git", hf.url);
    let main = refs(&src_url)["refs/heads/main"].clone();
    let tmp = TempDir::new("work");
    git(tmp.path(), &["clone", "--quiet", &src_url, "w"], Some(ALICE));
    let w = tmp.path().join("w");
    for spec in [
        "HEAD:refs/heads/dev",
        "HEAD:refs/tags/v1",
        "HEAD:refs/pr/1",
        "HEAD:refs/merge-requests/7/head",
    ] {
        git(&w, &["push", "--quiet", "origin", spec], Some(ALICE));
    }
    let dest = format!("{}/acme/m.git", gl.url);
    let run = from_hf(&hf, &dest, &["--mirror"], &git_env());
    assert_code(&run, 0);
    let got: BTreeSet<String> = refs(&dest).into_keys().collect();
    let want: BTreeSet<String> = ["refs/heads/main", "refs/heads/dev", "refs/tags/v1"]
        .map(String::from)
        .into();
    assert_eq!(got, want, "refs on the destination");
    assert_eq!(refs(&dest)["refs/heads/main"], main);
    let out = run.output();
    assert!(out.contains("refs/pr/1"), "skipped refs are listed: {out}");
    assert!(
        out.contains("refs/merge-requests/7/head"),
        "rejected refs are listed: {out}"
    );
    let skipped = run.report.as_ref().unwrap()["refs_skipped"].as_array().unwrap().len();
    assert_eq!(skipped, 2);
}

#[test]
fn pointer_only_pushes_history_only_when_the_objects_are_there() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "2", "--lfs-file", "w.bin=1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let gl = Hubsim::start("git", &[]);
    let dest = format!("{}/alice/p.git", gl.url);
    let refused = from_hf(&hf, &dest, &["--pointer-only"], &git_env());
    assert_code(&refused, 2);
    assert!(
        refused.stderr.contains("w.bin") && refused.stderr.contains("--pointer-only"),
        "{}",
        refused.stderr
    );
    assert!(refs(&dest).is_empty(), "nothing was pushed");
    // With the objects in place (a full run), a new source commit goes over pointer-only.
    assert_code(&from_hf(&hf, &dest, &[], &git_env()), 0);
    let head = add_commit(&format!("{}/alice/m", hf.url), "w.bin");
    let run = from_hf(&hf, &dest, &["--pointer-only"], &git_env());
    assert_code(&run, 0);
    assert_eq!(refs(&dest)["refs/heads/main"], head);
    assert_eq!(run.report.as_ref().unwrap()["bytes_uploaded"].as_u64(), Some(0));
}

#[test]
fn remote_mirror_has_the_host_pull_the_source() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "3", "--lfs-file", "w.bin=1MiB", "--private"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let gl = Hubsim::start("git", &[]);
    let dest = format!("{}/acme/pulled.git", gl.url);
    let env: Vec<(&str, &str)> = git_env()
        .into_iter()
        .chain([("HUBMIGRATE_SOURCE_TOKEN", ALICE)])
        .collect();
    let run = from_hf(&hf, &dest, &["--use-remote-mirror"], &env);
    assert_code(&run, 0);
    assert!(!run.output().contains(ALICE));
    assert_eq!(
        refs(&format!("{}/alice/m.git", hf.url))["refs/heads/main"],
        refs(&dest)["refs/heads/main"]
    );
    let (_, mirror) = get_json(
        &format!("{}/api/v4/projects/acme%2Fpulled/mirror/pull", gl.url),
        Some(ALICE),
    );
    assert_eq!(mirror["update_status"].as_str(), Some("finished"));
    assert!(!mirror.to_string().contains(ALICE), "the host echoes no credentials");
    let tmp = TempDir::new("clones");
    assert!(clone_with_lfs(&dest, tmp.path()).contains_key("w.bin"));
}

#[test]
fn the_hosts_lfs_size_limit_is_checked_before_any_transfer() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &[
            "--files",
            "2",
            "--lfs-file",
            "big/model.bin=3MiB",
            "--lfs-file",
            "s.bin=1KiB",
        ],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let gl = Hubsim::start("git", &["--max-lfs-object-size", "2MiB"]);
    let dest = format!("{}/alice/m.git", gl.url);
    // Credentials in the URL this time (and no TARGET_TOKEN): never shown.
    let with_creds = dest.replacen("://", &format!("://alice:{ALICE}@"), 1);
    let run = from_hf(&hf, &with_creds, &[], &[("HF_TOKEN", ALICE)]);
    assert_code(&run, 2);
    assert!(!run.output().contains(ALICE), "{}", run.output());
    assert!(!run.report.as_ref().unwrap().to_string().contains(ALICE));
    assert!(
        run.stderr.contains("big/model.bin") && run.stderr.contains("size limit"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("s.bin ("),
        "only the oversized file is named: {}",
        run.stderr
    );
    assert!(refs(&dest).is_empty(), "nothing was pushed");
}

#[test]
fn a_413_during_the_transfer_is_reported_as_the_size_limit() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "1", "--lfs-file", "big/model.bin=2MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    // The batch API accepts the object; a proxy in front of the store refuses the upload.
    let gl = Hubsim::start("git", &["--proxy-max-body", "1MiB"]);
    let dest = format!("{}/alice/m.git", gl.url);
    let run = from_hf(&hf, &dest, &[], &git_env());
    assert_code(&run, 1);
    let out = run.output();
    assert!(
        out.contains("big/model.bin") && out.contains("LFS object size limit") && out.contains("413"),
        "{out}"
    );
    assert!(refs(&dest).is_empty(), "nothing was pushed");
}

#[test]
fn a_hub_refusing_to_list_is_read_over_git() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", &[LFS, &["--private"]].concat());
    let hf = Hubsim::start_in("hf", src, &["--api-403"]);
    let ms = Hubsim::start("ms", &[]);
    let run = migrate(
        &[
            "run",
            "--source",
            "hf:alice/m",
            "--source-endpoint",
            &hf.url,
            "--to",
            "ms",
            "--dest-endpoint",
            &ms.url,
        ],
        &git_env(),
    );
    assert_code(&run, 0);
    assert_eq!(
        run.output().matches("falling back to git").count(),
        1,
        "{}",
        run.output()
    );
    assert!(run.output().contains("403"));
    assert_eq!(
        ms_repo(&ms, "models/alice/m", ALICE),
        Some(true),
        "private stays private"
    );
    let (files, _, verified) = summary(&run);
    assert_eq!((files, verified), (4 + 2 + 1, true));
}

#[test]
fn validate_tokens_checks_the_git_host_token() {
    let gl = Hubsim::start("git", &[]);
    let ok = coord(
        &["validate-tokens", "--git-endpoint", &gl.url],
        &[("TARGET_TOKEN", ALICE), ("TARGET_USERNAME", "alice")],
    );
    assert_code(&ok, 0);
    assert!(
        ok.stdout.contains("TARGET_TOKEN: valid") && ok.stdout.contains("user alice"),
        "{}",
        ok.stdout
    );
    // The same from an env file (the seed tools' variables).
    let dir = TempDir::new("envfile");
    let file = dir.path().join("hub.env");
    std::fs::write(&file, format!("TARGET_USERNAME=alice\nTARGET_TOKEN={ALICE}\n")).unwrap();
    let from_file = coord(
        &[
            "--env-file",
            file.to_str().unwrap(),
            "validate-tokens",
            "--git-endpoint",
            &gl.url,
        ],
        &[],
    );
    assert_code(&from_file, 0);
    assert!(from_file.stdout.contains("user alice"), "{}", from_file.stdout);
    let bad = coord(
        &["validate-tokens", "--git-endpoint", &gl.url],
        &[("TARGET_TOKEN", "nope")],
    );
    assert_code(&bad, 2);
    assert!(
        bad.stdout.contains("INVALID") && !bad.output().contains("nope"),
        "{}",
        bad.output()
    );
}

/// A file name with a newline (legal in git, fatal to line-framed plumbing) is refused with a
/// clear error before anything reaches the destination, read over git or over the Hub's API.
#[test]
fn a_file_name_with_a_newline_is_refused_before_anything_is_sent() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/m", &["--files", "2"]);
    let hf = Hubsim::start_in("hf", src, &[]);
    let url = format!("{}/alice/m.git", hf.url);
    push_commit(&url, |w| std::fs::write(w.join("two\nlines.txt"), "x\n").unwrap());

    let gl = Hubsim::start("git", &[]);
    let env: Vec<(&str, &str)> = git_env()
        .into_iter()
        .chain([("HUBMIGRATE_SOURCE_TOKEN", ALICE)])
        .collect();
    let over_git = ["--source", url.as_str()];
    let over_api = ["--source", "hf:alice/m", "--source-endpoint", &hf.url];
    for (source, dest) in [(&over_git[..], "acme/over-git"), (&over_api[..], "acme/over-api")] {
        let dest = format!("{}/{dest}.git", gl.url);
        let run = migrate(&[&["run", "--dest", &dest], source].concat(), &env);
        assert_ne!(run.code, 0, "{}", run.output());
        assert!(
            run.output().contains("control character") && run.output().contains("two\\nlines.txt"),
            "{}",
            run.output()
        );
        let listed = git_cmd(Some(ALICE)).args(["ls-remote", &dest]).output().unwrap();
        assert!(listed.stdout.is_empty(), "{source:?}: the destination got refs");
    }
}
