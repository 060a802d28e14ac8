//! End to end on Kubernetes: what a Migration may not ask of the controller on a shared cluster.
//! A Secret that did not opt in as a tokens Secret, a worker image the admin did not allow, a hub
//! that is neither public nor on the controller's allowlist, and credentials inside a URL each end
//! `Failed` with a one-line condition; no Job is created and the foreign hub sees no request.

mod common;
use common::k8s::*;
use common::*;

#[test]
fn a_migration_cannot_take_tokens_run_images_or_reach_hubs_it_was_not_given() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "2", "--lfs-files", "1", "--lfs-size", "64KiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    // Not on the controller's allowlist: it must never hear from the controller or a worker.
    let foreign = Hubsim::start("hf", &[]);
    let c = cluster(&[&hf, &ms]);
    let k = &c.k;
    let unlabelled = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: someone-elses\nstringData:\n  HF_TOKEN: {ALICE}\n  MODELSCOPE_TOKEN: {ALICE}\n"
    );
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&unlabelled));
    assert!(ok, "{out}{err}");
    let doc = |name: &str, secret: &str, extra: &str| {
        format!(
            "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: {name}\nspec:\n  source: hf:alice/m\n  dest: ms:alice/m\n  tokensSecret: {secret}\n{extra}"
        )
    };
    let ours = format!(
        "  endpoints:\n    huggingface: {}\n    modelscope: {}\n",
        hf.url, ms.url
    );
    // (name, manifest, what the condition must say)
    let cases = [
        (
            "unlabelled-secret",
            doc("unlabelled-secret", "someone-elses", &ours),
            "hubmigrate.dev/tokens=true",
        ),
        (
            "other-image",
            doc(
                "other-image",
                "hub-tokens",
                &format!("{ours}  workerImage: attacker.example/steal:latest\n"),
            ),
            "workerImage \"attacker.example/steal:latest\" is not allowed",
        ),
        (
            "foreign-endpoint",
            doc(
                "foreign-endpoint",
                "hub-tokens",
                &format!(
                    "  endpoints:\n    huggingface: {}\n    modelscope: {}\n",
                    foreign.url, ms.url
                ),
            ),
            "endpoints.huggingface",
        ),
        (
            "foreign-dest",
            doc(
                "foreign-dest",
                "hub-tokens",
                &format!("{ours}  destEndpoint: {}\n", foreign.url),
            ),
            "destEndpoint",
        ),
        (
            "credentials-in-url",
            format!(
                "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: credentials-in-url\nspec:\n  source: hf:alice/m\n  dest: {}\n  tokensSecret: hub-tokens\n{ours}",
                hf.url.replace("http://", "http://root:hunter2@") + "/alice/m.git"
            ),
            "credentials",
        ),
    ];
    assert_refused(k, &cases, &["hunter2", ALICE]);
    let (_, jobs, _) = k.kubectl(&["get", "jobs", "-o", "name"], None);
    assert!(jobs.trim().is_empty(), "Jobs for refused migrations: {jobs}");
    let requests = foreign.stats()["requests"].clone();
    let sent: u64 = requests
        .as_object()
        .map(|classes| {
            classes
                .values()
                .filter_map(|by_status| by_status.as_object())
                .flat_map(|m| m.values().filter_map(|v| v.as_u64()))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(sent, 0, "the foreign hub was sent requests: {requests}");

    // The same spec with the tokens Secret opted in, the allowed image and our hubs runs.
    let ok_doc = doc("allowed", "hub-tokens", &ours);
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&ok_doc));
    assert!(ok, "{out}{err}");
    assert_verified(k, "allowed");
}
