//! End to end: what a repo carries besides its files. A gated Hugging Face source migrates only
//! with a token that may read it, and its copy is private; a license travels under the name the
//! destination has for it (ModelScope's `License`, Hugging Face's card front matter), and one the
//! source does not name is reported, never invented. A source named by its old id (moved) or in
//! another case is found where the hub sends it.

mod common;
use common::*;

/// ModelScope's record of `repo` (`models/ns/name`) as `token` sees it.
fn ms_record(hub: &Hubsim, repo: &str) -> serde_json::Value {
    let (code, v) = get_json(&format!("{}/api/v1/{repo}", hub.url), Some(ALICE));
    assert_eq!(code, 200, "{v}");
    v["Data"].clone()
}

#[test]
fn a_gated_source_arrives_private_and_only_with_a_token_that_has_access() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/gated",
        &[
            "--gated",
            "manual",
            "--license",
            "llama3",
            "--lfs-files",
            "1",
            "--lfs-size",
            "1MiB",
        ],
    );
    let source = Hubsim::start_in("hf", src, &[]);
    let dest = Hubsim::start("ms", &[]);
    // `hf:alice/gated` to `dest` on the ModelScope hub, `token` on both sides.
    let copy_as = |dest_repo: &str, token: &str| {
        let args = ["run", "--source", "hf:alice/gated", "--dest", dest_repo];
        let ends = ["--source-endpoint", &source.url, "--dest-endpoint", &dest.url];
        migrate(
            &[&args[..], &ends[..]].concat(),
            &[("HUBMIGRATE_SOURCE_TOKEN", token), ("MODELSCOPE_TOKEN", token)],
        )
    };

    // Bob may write to his namespace but was never granted access to the gated source.
    let refused = copy_as("ms:bob/gated", BOB);
    assert_code(&refused, 2);
    assert!(
        refused
            .output()
            .contains("alice/gated is gated and this token has no access"),
        "{}",
        refused.output()
    );
    assert_eq!(
        ms_repo(&dest, "models/bob/gated", BOB),
        None,
        "the destination was created"
    );
    assert_eq!(
        answered(&source, "resolve") + answered(&source, "download"),
        0,
        "a byte moved"
    );

    // A public repo that exists already would publish the files: refused before any write.
    let public = format!("{}/api/v1/models", dest.url);
    let body = r#"{"Path": "alice", "Name": "public", "Visibility": 5, "License": "Other"}"#;
    assert_eq!(post(&public, "application/json", body, ALICE), 200);
    let into_public = copy_as("ms:alice/public", ALICE);
    assert_code(&into_public, 2);
    assert!(
        into_public.output().contains("exists and is public"),
        "{}",
        into_public.output()
    );
    assert_eq!(
        answered(&source, "resolve") + answered(&source, "download"),
        0,
        "a byte moved"
    );

    // The owner's token reads it: the copy is private, and says why.
    let run = copy_as("ms:alice/gated", ALICE);
    assert_code(&run, 0);
    assert!(summary(&run).2, "{}", run.output());
    let out = run.output();
    assert!(
        out.contains("the source is gated: its copy is created private"),
        "{out}"
    );
    assert_eq!(
        ms_repo(&dest, "models/alice/gated", ALICE),
        Some(true),
        "the copy is public"
    );
    // llama3 has no SPDX id: labelled Other, and the plan says so.
    assert_eq!(ms_record(&dest, "models/alice/gated")["License"], "Other");
    assert!(out.contains("llama3 has no SPDX id"), "{out}");
}

#[test]
fn a_license_travels_under_the_destinations_name_for_it() {
    // Hugging Face -> ModelScope: the card's id becomes the SPDX id.
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/nc",
        &["--license", "cc-by-nc-4.0", "--files", "2"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let run = run_to("hf:alice/nc", "ms", &hf, &ms, &[]);
    assert_code(&run, 0);
    assert!(summary(&run).2, "{}", run.output());
    assert_eq!(ms_record(&ms, "models/alice/nc")["License"], "CC-BY-NC-4.0");
    assert!(
        run.output().contains("license cc-by-nc-4.0 -> CC-BY-NC-4.0"),
        "{}",
        run.output()
    );

    // ModelScope -> Hugging Face: `License: MIT` and a card saying `license: MIT`, which the
    // Hub refuses; the card is rewritten to `mit` and verified as rewritten.
    let src = TempDir::new("src");
    seed(src.path(), "ms", "alice/mit", &["--license", "MIT", "--files", "2"]);
    let ms = Hubsim::start_in("ms", src, &[]);
    let hf = Hubsim::start("hf", &[]);
    let run = run_to("ms:alice/mit", "hf", &ms, &hf, &[]);
    assert_code(&run, 0);
    assert!(summary(&run).2, "{}", run.output());
    let (code, info) = get_json(&format!("{}/api/models/alice/mit", hf.url), Some(ALICE));
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["cardData"]["license"], "mit", "{info}");
    let url = format!("{}/alice/mit/resolve/main/README.md", hf.url);
    let card = curl(&["-sfL", &url], Some(ALICE)).stdout;
    let card = String::from_utf8_lossy(&card);
    assert!(card.starts_with("---\nlicense: mit\n---\n"), "{card}");
    let report = run.report.expect("a report");
    let notes = report["metadata"].to_string();
    assert!(notes.contains("README.md rewritten"), "{report}");
    assert!(notes.contains("license MIT -> mit"), "{report}");
    // `verify` (listing and contents) holds the copy to what the migration wrote: the card as
    // rewritten, every other byte the source's.
    for content in [&[][..], &["--content"][..]] {
        let args = ["verify", "--source", "ms:alice/mit", "--dest", "hf:alice/mit"];
        let ends = ["--source-endpoint", &ms.url, "--dest-endpoint", &hf.url];
        let verify = reported(
            &[&args[..], content, &ends[..]].concat(),
            &[("HF_TOKEN", ALICE), ("MODELSCOPE_TOKEN", ALICE)],
        );
        assert_code(&verify, 0);
    }
}

#[test]
fn a_license_the_source_does_not_name_is_reported_and_not_invented() {
    let src = TempDir::new("src");
    seed(src.path(), "hf", "alice/none", &["--files", "2"]);
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let plan = run_to("hf:alice/none", "ms", &hf, &ms, &["--dry-run"]);
    assert_code(&plan, 0);
    assert!(
        plan.output().contains("license not determined: the source names none"),
        "{}",
        plan.output()
    );
    let run = run_to("hf:alice/none", "ms", &hf, &ms, &[]);
    assert_code(&run, 0);
    assert_eq!(ms_record(&ms, "models/alice/none")["License"], "Other");
}

#[test]
fn a_moved_source_and_one_named_in_another_case_are_found() {
    let src = TempDir::new("src");
    let files = seed(
        src.path(),
        "hf",
        "alice/old",
        &["--lfs-files", "1", "--lfs-size", "1MiB", "--files", "2"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let body = r#"{"fromRepo": "alice/old", "toRepo": "alice/renamed", "type": "model"}"#;
    let url = format!("{}/api/repos/move", hf.url);
    assert_eq!(post(&url, "application/json", body, ALICE), 200, "the move");
    for (name, source) in [("by-old-id", "hf:alice/old"), ("by-case", "hf:ALICE/Renamed")] {
        let ms = Hubsim::start("ms", &[]);
        let run = run_between(source, &format!("ms:alice/{name}"), &hf, &ms, &[]);
        assert_code(&run, 0);
        assert!(summary(&run).2, "{source}: {}", run.output());
        // The run verified every file; the listing shows the LFS object by its sha256 too.
        let url = format!(
            "{}/api/v1/models/alice/{name}/repo/files?Revision=master&Recursive=True",
            ms.url
        );
        let (code, listing) = get_json(&url, Some(ALICE));
        assert_eq!(code, 200, "{listing}");
        let listed = listing["Data"]["Files"].to_string();
        for f in files.iter().filter(|f| f.lfs) {
            assert!(listed.contains(&f.sha256), "{source}: {} missing from {listed}", f.path);
        }
    }
}
