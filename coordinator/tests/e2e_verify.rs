//! `verify` and `cleanup` against hubsim: identical repos across hubs (hashes of different kinds
//! compared through content), missing, extra, size and hash differences, and every refusal of
//! cleanup (ModelScope, mismatches, an older destination, no confirmation) before a deletion.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{ALICE}"));
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"))
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Commits `edit` (run in a clone of the HF source) and pushes it.
fn change_source(hf: &Hubsim, edit: impl FnOnce(&Path)) {
    let tmp = TempDir::new("work");
    git(tmp.path(), &["clone", "--quiet", &format!("{}/alice/m", hf.url), "w"]);
    let w = tmp.path().join("w");
    edit(&w);
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "--quiet", "--allow-empty", "-m", "change"]);
    git(&w, &["push", "--quiet", "origin", "main"]);
}

fn env() -> [(&'static str, &'static str); 2] {
    [("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)]
}

/// An HF source alice/m migrated to ModelScope.
fn migrated() -> (Hubsim, Hubsim, Vec<SeededFile>) {
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "5", "--lfs-files", "2", "--lfs-size", "1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let run = run_to("hf:alice/m", "ms", &hf, &ms, &[]);
    assert_code(&run, 0);
    (hf, ms, files)
}

fn pair<'a>(hf: &'a Hubsim, ms: &'a Hubsim) -> Vec<&'a str> {
    vec![
        "--source",
        "hf:alice/m",
        "--to",
        "ms",
        "--source-endpoint",
        &hf.url,
        "--dest-endpoint",
        &ms.url,
    ]
}

#[test]
fn verify_finds_nothing_then_every_kind_of_difference() {
    let (hf, ms, files) = migrated();
    let ok = reported(&[&["verify"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&ok, 0);
    let report = ok.report.as_ref().expect("report");
    assert_eq!(report["verified"].as_bool(), Some(true));
    assert_eq!(report["files"].as_u64(), Some(files.len() as u64));

    let regular: Vec<&SeededFile> = files.iter().filter(|f| !f.lfs && f.path != ".gitattributes").collect();
    let (grown, flipped, dropped) = (&regular[0].path, &regular[1].path, &regular[2].path);
    change_source(&hf, |w| {
        let mut g = std::fs::read(w.join(grown)).unwrap();
        g.push(b'!');
        std::fs::write(w.join(grown), g).unwrap();
        let mut f = std::fs::read(w.join(flipped)).unwrap();
        f[0] ^= 0xff;
        std::fs::write(w.join(flipped), f).unwrap();
        std::fs::remove_file(w.join(dropped)).unwrap();
        std::fs::write(w.join("new.txt"), "new\n").unwrap();
    });
    let bad = reported(&[&["verify"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&bad, 3);
    let mismatches = bad.report.as_ref().unwrap()["mismatches"].as_array().unwrap().clone();
    let kind = |p: &str| {
        mismatches
            .iter()
            .find(|m| m["path"].as_str() == Some(p))
            .and_then(|m| m["kind"].as_str())
            .map(str::to_string)
    };
    assert_eq!(kind(grown).as_deref(), Some("size"), "{mismatches:?}");
    // Same size, other bytes: HF gives a git blob id, ModelScope a sha256; content decides.
    assert_eq!(kind(flipped).as_deref(), Some("hash"), "{mismatches:?}");
    assert_eq!(kind(dropped).as_deref(), Some("extra"), "{mismatches:?}");
    assert_eq!(kind("new.txt").as_deref(), Some("missing"), "{mismatches:?}");
    assert_eq!(mismatches.len(), 4, "{mismatches:?}");
    assert!(bad.output().contains("MISMATCHES"));

    let missing = reported(
        &[
            "verify",
            "--source",
            "hf:alice/nope",
            "--to",
            "ms",
            "--source-endpoint",
            &hf.url,
            "--dest-endpoint",
            &ms.url,
        ],
        &env(),
    );
    assert_code(&missing, 2);
}

#[test]
fn cleanup_refuses_until_everything_holds_then_deletes() {
    let (hf, ms, _) = migrated();
    // ModelScope cannot delete with a token: said plainly, nothing happens.
    let from_ms = reported(
        &[
            "cleanup",
            "--source",
            "ms:alice/m",
            "--to",
            "hf",
            "--source-endpoint",
            &ms.url,
            "--dest-endpoint",
            &hf.url,
            "--yes",
        ],
        &env(),
    );
    assert_code(&from_ms, 1);
    assert!(
        from_ms.stderr.contains("ModelScope") && from_ms.stderr.contains("nothing deleted"),
        "{}",
        from_ms.stderr
    );
    assert_eq!(ms_repo(&ms, "models/alice/m", ALICE), Some(false));

    // No terminal and no --yes: refused after verifying.
    let unconfirmed = reported(&[&["cleanup"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&unconfirmed, 2);
    assert!(unconfirmed.stderr.contains("--yes"), "{}", unconfirmed.stderr);
    assert!(hf_repo(&hf, "models/alice/m", ALICE).is_some());

    // A source commit after the migration that changes no file: verification passes, but the
    // destination is older than the source's head.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    change_source(&hf, |_| {});
    let older = reported(&[&["cleanup", "--yes"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&older, 1);
    assert!(older.stderr.contains("older"), "{}", older.stderr);
    assert!(hf_repo(&hf, "models/alice/m", ALICE).is_some());

    // A real change: verification fails, nothing deleted.
    change_source(&hf, |w| std::fs::write(w.join("late.txt"), "late\n").unwrap());
    let mismatch = reported(&[&["cleanup", "--yes"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&mismatch, 3);
    assert!(hf_repo(&hf, "models/alice/m", ALICE).is_some());

    // Migrated again: verified, newer, confirmed: deleted, and said so.
    let again = run_to("hf:alice/m", "ms", &hf, &ms, &[]);
    assert_code(&again, 0);
    let done = reported(&[&["cleanup", "--yes"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&done, 0);
    assert!(done.stderr.contains("deleted hf:alice/m"), "{}", done.stderr);
    assert_eq!(hf_repo(&hf, "models/alice/m", ALICE), None);
    assert_eq!(ms_repo(&ms, "models/alice/m", ALICE), Some(false));
}

/// An LFS object damaged on the destination's disk after the migration (same size, one byte
/// flipped): the listings still agree, so only reading the bytes back finds it; `verify
/// --content` names the file and `cleanup` refuses to delete the source.
#[test]
fn a_destination_object_damaged_on_disk_is_found_by_reading_it_back() {
    let (hf, ms, files) = migrated();
    let lfs = files.iter().find(|f| f.lfs).expect("an LFS file");
    damage_object(ms.data(), &lfs.sha256);

    let listed = reported(&[&["verify"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&listed, 0);

    let read = reported(&[&["verify", "--content"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&read, 3);
    let mismatches = read.report.as_ref().unwrap()["mismatches"].as_array().unwrap().clone();
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert_eq!(mismatches[0]["path"], lfs.path.as_str());
    assert_eq!(mismatches[0]["kind"], "content");
    assert!(read.stderr.contains(&lfs.path), "{}", read.stderr);

    let cleanup = reported(&[&["cleanup", "--yes"][..], &pair(&hf, &ms)].concat(), &env());
    assert_code(&cleanup, 3);
    assert!(cleanup.stderr.contains("nothing deleted"), "{}", cleanup.stderr);
    assert!(
        hf_repo(&hf, "models/alice/m", ALICE).is_some(),
        "the source is still there"
    );
}

/// An object the destination already holds (from an earlier run) is read back before a new
/// commit names it: damaged on the destination's disk, it fails the run naming the file, and
/// the destination's branch stays where it was.
#[test]
fn an_object_the_destination_holds_already_is_read_back_before_a_commit_names_it() {
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "2", "--lfs-files", "2", "--lfs-size", "1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("hf", &[]);
    assert_code(&run_to("hf:alice/m", "hf", &hf, &dest, &[]), 0);
    let lfs = files.iter().find(|f| f.lfs).expect("an LFS file");
    damage_object(dest.data(), &lfs.sha256);
    let head = |hub: &Hubsim| get_json(&format!("{}/api/models/alice/m", hub.url), Some(ALICE)).1["sha"].clone();
    let before = head(&dest);

    change_source(&hf, |w| std::fs::write(w.join("NEW.md"), "a new file\n").unwrap());
    let again = run_to("hf:alice/m", "hf", &hf, &dest, &[]);
    assert_code(&again, 1);
    assert!(
        again.stderr.contains(&lfs.path) && again.stderr.contains("reading it back gave"),
        "names the damaged file:\n{}",
        again.output()
    );
    assert_eq!(head(&dest), before, "nothing was committed");
}
