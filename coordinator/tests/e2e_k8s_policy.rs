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

/// The controller renews a certificate of its own near its end; workers verify the controller
/// before they send anything: with a certificate its CA did not sign (a stand-in for anyone else answering on the controller's address), no worker registers,
/// no byte leaves the source and nothing reaches the destination.
#[test]
fn workers_that_cannot_verify_the_controller_send_nothing() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "2", "--lfs-files", "2", "--lfs-size", "64KiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let grpc = free_grpc_addr();
    let mut c = cluster_on(&grpc, &[&hf, &ms]);
    let made = controller_ca(&c.k);
    assert!(
        made.starts_with("-----BEGIN CERTIFICATE-----"),
        "the controller made its certificate"
    );
    // A certificate of its own near its end is renewed when the controller starts.
    c.controller.kill().unwrap();
    c.controller.wait().unwrap();
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let (ok, out, err) = c.k.kubectl(
        &[
            "annotate",
            "secret",
            "hubmigrate-grpc-tls",
            &format!("hubmigrate.dev/expires-day={}", today + 10),
            "--overwrite",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    c.controller = c.start_controller(&grpc);
    let started = std::time::Instant::now();
    while controller_ca(&c.k) == made {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "a certificate 10 days from its end was not renewed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    c.controller.kill().unwrap();
    c.controller.wait().unwrap();
    // The admin's Secret: a certificate for the right host, and a CA that did not sign it.
    let served = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let indent = |pem: String| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hubmigrate-grpc-tls\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}  ca.crt: |\n{}",
        indent(served.cert.pem()),
        indent(served.signing_key.serialize_pem()),
        indent(other.cert.pem()),
    );
    let k = &c.k;
    let (ok, out, err) = k.kubectl(&["delete", "secret", "hubmigrate-grpc-tls"], None);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&secret));
    assert!(ok, "{out}{err}");
    c.controller = c.start_controller(&grpc);
    let k = &c.k;
    let (ok, out, err) = k.kubectl(
        &["apply", "-f", "-"],
        Some(&migration("unverified", "hf:alice/m", "ms:alice/m", &hf.url, &ms.url)),
    );
    assert!(ok, "{out}{err}");
    let started = std::time::Instant::now();
    let logs = loop {
        let (_, logs, _) = k.kubectl(
            &["logs", "-l", "hubmigrate.dev/migration=unverified", "--tail", "-1"],
            None,
        );
        if logs.contains("certificate") {
            break logs;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no worker refused the certificate: {logs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(logs.contains("cannot reach the coordinator"), "{logs}");
    assert_ne!(field(k, "unverified", ".status.phase"), "Succeeded");
    let count = |hub: &Hubsim, classes: &[&str]| -> u64 {
        let stats = hub.stats();
        classes
            .iter()
            .filter_map(|c| stats["requests"][c].as_object().cloned())
            .flat_map(|m| m.into_iter().filter_map(|(_, v)| v.as_u64()))
            .sum()
    };
    assert_eq!(count(&hf, &["resolve", "download"]), 0, "a worker read the source");
    assert_eq!(
        count(&ms, &["upload", "part", "commit"]),
        0,
        "a worker wrote to the destination"
    );
}
