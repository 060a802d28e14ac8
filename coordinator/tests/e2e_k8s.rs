//! End to end on Kubernetes, through kubesim and the real kubectl: a Migration applied with
//! kubectl goes Pending to Succeeded with one Job per chunk and the destination verified; a bad
//! source ends Failed with a clear condition and no Jobs; deleting a Migration removes its Jobs
//! and Secret; no token appears in any object but the tokens Secret.

mod common;
use common::k8s::*;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_migration_applied_with_kubectl_runs_as_jobs_and_verifies() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "6", "--lfs-files", "4", "--lfs-size", "1MiB", "--private"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let c = cluster(&[&hf, &ms]);
    let k = &c.k;

    let (ok, out, err) = k.kubectl(
        &["apply", "-f", "-"],
        Some(&migration("demo", "hf:alice/m", "ms:alice/m", &hf.url, &ms.url)),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(wait_phase(k, "demo", &["Succeeded", "Failed"]), "Succeeded");
    let (_, table, _) = k.kubectl(&["get", "migrations"], None);
    assert!(
        table.contains("PHASE") && table.contains("Succeeded") && table.contains("100%"),
        "{table}"
    );
    let (_, jobs, _) = k.kubectl(
        &["get", "jobs", "-l", "hubmigrate.dev/migration=demo", "-o", "name"],
        None,
    );
    assert!(jobs.lines().count() >= 2, "one Job per chunk: {jobs}");
    // The workers dialed the controller over TLS, trusting the CA of its certificate's Secret.
    let job = jobs.lines().next().unwrap();
    let env = |var: &str| {
        let path = format!("jsonpath={{.spec.template.spec.containers[0].env[?(@.name==\"{var}\")].value}}");
        k.kubectl(&["get", job, "-o", &path], None).1
    };
    assert!(
        env("HUBMIGRATE_COORDINATOR").starts_with("https://127.0.0.1:"),
        "{}",
        env("HUBMIGRATE_COORDINATOR")
    );
    let ca = controller_ca(k);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(env("HUBMIGRATE_COORDINATOR_CA").trim(), ca.trim());
    let (_, logs, _) = k.kubectl(&["logs", "-l", "hubmigrate.dev/migration=demo", "--tail", "-1"], None);
    assert!(
        logs.contains("\"migration\":\"demo\"") && logs.contains("\"chunk\""),
        "worker logs carry ids: {logs}"
    );
    let (_, verification, _) = k.kubectl(
        &[
            "get",
            "migration",
            "demo",
            "-o",
            "jsonpath={.status.verification.mismatched}",
        ],
        None,
    );
    assert_eq!(verification, "0");
    assert_eq!(
        ms_repo(&ms, "models/alice/m", ALICE),
        Some(true),
        "private stays private"
    );

    // No token in any stored object except the tokens Secret: read kubesim's own store.
    let (_, all, _) = k.kubectl(&["get", "migrations,jobs,pods,events", "-o", "json"], None);
    assert!(!all.contains(ALICE), "a token reached a Kubernetes object");
    let mut stack = vec![k.data()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().contains("secrets") {
                files += 1;
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
                assert!(!text.contains(ALICE), "a token is stored in {}", path.display());
            }
        }
    }
    assert!(files > 3, "kubesim stored objects on disk to check");

    // Deleting the Migration removes its Jobs and its gRPC Secret.
    let (ok, _, err) = k.kubectl(&["delete", "migration", "demo"], None);
    assert!(ok, "{err}");
    let started = Instant::now();
    loop {
        let (_, left, _) = k.kubectl(&["get", "jobs,secrets", "-o", "name"], None);
        if !left.contains("job") && !left.contains("demo-grpc") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "left behind: {left}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_bad_source_fails_with_a_clear_condition_and_no_jobs() {
    let hf = Hubsim::start("hf", &[]);
    let ms = Hubsim::start("ms", &[]);
    let c = cluster(&[&hf, &ms]);
    let k = &c.k;
    let (ok, _, err) = k.kubectl(
        &["apply", "-f", "-"],
        Some(&migration(
            "broken",
            "hf:alice/does-not-exist",
            "ms:alice/x",
            &hf.url,
            &ms.url,
        )),
    );
    assert!(ok, "{err}");
    assert_eq!(wait_phase(k, "broken", &["Succeeded", "Failed"]), "Failed");
    let (_, message, _) = k.kubectl(
        &[
            "get",
            "migration",
            "broken",
            "-o",
            "jsonpath={.status.conditions[0].message}",
        ],
        None,
    );
    assert!(message.contains("not found"), "{message}");
    let (_, jobs, _) = k.kubectl(&["get", "jobs", "-o", "name"], None);
    assert!(
        jobs.trim().is_empty(),
        "no Jobs for a migration that never planned: {jobs}"
    );
}

#[test]
fn run_with_the_kubernetes_executor_submits_and_follows() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/sub",
        &["--files", "3", "--lfs-files", "2", "--lfs-size", "1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let c = cluster(&[&hf, &ms]);
    let kubeconfig = c.k.kubeconfig.to_str().unwrap().to_string();
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("HF_ENDPOINT", hf.url.as_str()),
        ("MODELSCOPE_ENDPOINT", ms.url.as_str()),
        ("HF_TOKEN", ALICE),
        ("MODELSCOPE_TOKEN", ALICE),
    ];
    let followed = coord(
        &[
            "run",
            "--executor",
            "kubernetes",
            "--source",
            "hf:alice/sub",
            "--to",
            "ms",
            "--parallel",
        ],
        &env,
    );
    assert_code(&followed, 0);
    assert!(
        followed.stderr.contains("succeeded") && followed.stderr.contains("verified"),
        "{}",
        followed.output()
    );
    assert_eq!(ms_repo(&ms, "models/alice/sub", ALICE), Some(false));

    let detached = coord(
        &[
            "run",
            "--executor",
            "kubernetes",
            "--detach",
            "--source",
            "hf:alice/sub",
            "--dest",
            "ms:alice/sub2",
        ],
        &env,
    );
    assert_code(&detached, 0);
    let name = detached.stdout.trim().to_string();
    assert!(
        detached.stderr.contains(&format!("kubectl get migration {name}")),
        "{}",
        detached.output()
    );
    assert_eq!(wait_phase(&c.k, &name, &["Succeeded", "Failed"]), "Succeeded");
    for r in [&followed, &detached] {
        assert!(!r.output().contains(ALICE), "token leaked");
    }
    // The tokens Secret it created opted in as one, and goes with its Migration.
    let secret = format!("{name}-tokens");
    let (_, meta, _) = c.k.kubectl(
        &[
            "get",
            "secret",
            &secret,
            "-o",
            "jsonpath={.metadata.labels.hubmigrate\\.dev/tokens} {.metadata.ownerReferences[0].name}",
        ],
        None,
    );
    assert_eq!(meta.trim(), format!("true {name}"));
    let (ok, _, err) = c.k.kubectl(&["delete", "migration", &name], None);
    assert!(ok, "{err}");
    let started = Instant::now();
    while c.k.kubectl(&["get", "secret", &secret], None).0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{secret} outlived its Migration"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_restarted_controller_adopts_the_jobs_and_finishes() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/slow",
        &["--files", "4", "--lfs-files", "4", "--lfs-size", "3MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &["--conn-rate", "2MiB"]);
    let ms = Hubsim::start("ms", &[]);
    // A fixed gRPC port: pods keep dialing the same address across the restart, like a Service.
    let grpc = free_grpc_addr();
    let mut c = cluster_on(&grpc, &[&hf, &ms]);
    let (ok, _, err) = c.k.kubectl(
        &["apply", "-f", "-"],
        Some(&migration(
            "restart",
            "hf:alice/slow",
            "ms:alice/slow",
            &hf.url,
            &ms.url,
        )),
    );
    assert!(ok, "{err}");
    wait_phase(&c.k, "restart", &["Transferring"]);
    let started = Instant::now();
    loop {
        let (_, jobs, _) = c.k.kubectl(
            &["get", "jobs", "-l", "hubmigrate.dev/migration=restart", "-o", "name"],
            None,
        );
        if !jobs.trim().is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no Jobs were created");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca = controller_ca(&c.k);
    c.controller.kill().unwrap();
    c.controller.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.controller = c.start_controller(&grpc);
    assert_eq!(wait_phase(&c.k, "restart", &["Succeeded", "Failed"]), "Succeeded");
    assert_eq!(
        controller_ca(&c.k),
        ca,
        "the restarted controller serves the certificate it stored"
    );
    let (_, mismatched, _) = c.k.kubectl(
        &[
            "get",
            "migration",
            "restart",
            "-o",
            "jsonpath={.status.verification.mismatched}",
        ],
        None,
    );
    assert_eq!(mismatched, "0");
}

#[test]
fn a_worker_pod_killed_mid_chunk_is_retried_by_its_job() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/pod",
        &["--files", "3", "--lfs-files", "3", "--lfs-size", "4MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &["--conn-rate", "2MiB"]);
    let ms = Hubsim::start("ms", &[]);
    let c = cluster(&[&hf, &ms]);
    let k = &c.k;
    let yaml = migration("podkill", "hf:alice/pod", "ms:alice/pod", &hf.url, &ms.url)
        .replace("maxWorkers: 4", "maxWorkers: 1");
    let (ok, _, err) = k.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(ok, "{err}");
    let started = Instant::now();
    let pod = loop {
        let (_, pods, _) = k.kubectl(
            &[
                "get",
                "pods",
                "-l",
                "hubmigrate.dev/migration=podkill",
                "--field-selector=status.phase=Running",
                "-o",
                "name",
            ],
            None,
        );
        if let Some(p) = pods.lines().next() {
            break p.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no worker pod ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(700));
    let (ok, _, err) = k.kubectl(&["delete", &pod, "--wait=false"], None);
    assert!(ok, "{err}");
    assert_eq!(wait_phase(k, "podkill", &["Succeeded", "Failed"]), "Succeeded");
    let (_, pods, _) = k.kubectl(
        &["get", "pods", "-l", "hubmigrate.dev/migration=podkill", "-o", "name"],
        None,
    );
    assert!(
        pods.lines().any(|p| p != pod),
        "the Job started a new pod after {pod} was killed: {pods}"
    );
    let (_, mismatched, _) = k.kubectl(
        &[
            "get",
            "migration",
            "podkill",
            "-o",
            "jsonpath={.status.verification.mismatched}",
        ],
        None,
    );
    assert_eq!(mismatched, "0");
}

/// Git hosts through the controller: HF -> a GitLab-like host with `mirror: true` lands every
/// branch and tag with the same commit ids (checked with the real git and git-lfs), then that
/// host -> HF; each verified, no scratch clone left in the controller's temporary directory.
#[test]
fn git_hosts_migrate_through_the_controller() {
    use common::git::{clone_with_lfs, refs};
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/m",
        &["--files", "3", "--lfs-file", "w/model.safetensors=2MiB", "--private"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let gl = Hubsim::start("git", &["--org", "acme/models=alice"]);
    let c = cluster(&[&hf, &gl]);
    let k = &c.k;
    let src_git = format!("{}/alice/m.git", hf.url);
    let dest = format!("{}/acme/models/m.git", gl.url);
    let yaml = format!(
        "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: to-git\nspec:\n  source: hf:alice/m\n  dest: {dest}\n  mirror: true\n  sourceEndpoint: {}\n  tokensSecret: hub-tokens\n",
        hf.url
    );
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(ok, "{out}{err}");
    assert_verified(k, "to-git");
    let (s, d) = (refs(&src_git), refs(&dest));
    assert_eq!(s.get("refs/heads/main"), d.get("refs/heads/main"), "same commit ids");
    assert_eq!(
        field(k, "to-git", ".status.destCommit"),
        s["refs/heads/main"],
        "the status names the pushed commit"
    );
    let tmp = TempDir::new("clones");
    let want = clone_with_lfs(&src_git, &tmp.path().join("s"));
    assert_eq!(
        want,
        clone_with_lfs(&dest, &tmp.path().join("d")),
        "git lfs fsck and every file"
    );

    // Back from the git host to another HF repo, the source's token from its own key.
    let back = format!(
        "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: from-git\nspec:\n  source: {dest}\n  dest: hf:alice/back\n  destEndpoint: {}\n  parallel: true\n  chunkSize: 1MiB\n  tokensSecret: git-tokens\n",
        hf.url
    );
    let secret = tokens_secret(
        "git-tokens",
        &format!("  HF_TOKEN: {ALICE}\n  HUBMIGRATE_SOURCE_TOKEN: {ALICE}\n"),
    );
    for doc in [secret, back] {
        let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&doc));
        assert!(ok, "{out}{err}");
    }
    assert_verified(k, "from-git");
    assert_eq!(
        hf_repo(&hf, "models/alice/back", ALICE),
        Some(true),
        "private stays private"
    );
    let left: Vec<_> = std::fs::read_dir(c.scratch.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "scratch clones left behind: {left:?}");
}

/// Pods that stay Pending for 45 s (scheduling, image pulls) are normal: the run waits for them
/// to register, says why they wait, and ends Succeeded.
#[test]
fn pods_pending_for_45s_are_waited_for_and_explained() {
    let src = TempDir::new("src");
    seed(
        src.path(),
        "hf",
        "alice/p",
        &["--files", "3", "--lfs-files", "2", "--lfs-size", "1MiB"],
    );
    let hf = Hubsim::start_in("hf", src, &[]);
    let ms = Hubsim::start("ms", &[]);
    let c = cluster_with("127.0.0.1:0", &["--pod-start-delay", "45s"], &[&hf, &ms]);
    let k = &c.k;
    let (ok, out, err) = k.kubectl(
        &["apply", "-f", "-"],
        Some(&migration("pending", "hf:alice/p", "ms:alice/p", &hf.url, &ms.url)),
    );
    assert!(ok, "{out}{err}");
    let started = Instant::now();
    let table = loop {
        let (_, table, _) = k.kubectl(&["get", "migrations"], None);
        if table.contains("ContainerCreating") {
            break table;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no pending reason shown: {table}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(table.contains("DETAIL") && table.contains("waiting"), "{table}");
    let (_, reason, _) = k.kubectl(
        &[
            "get",
            "migration",
            "pending",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"WorkersRunning\")].reason}",
        ],
        None,
    );
    assert_eq!(reason, "WorkersPending");
    let started = Instant::now();
    loop {
        let phase = field(k, "pending", ".status.phase");
        if phase == "Succeeded" || phase == "Failed" {
            assert_eq!(
                phase,
                "Succeeded",
                "{}",
                field(k, "pending", ".status.conditions[0].message")
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "stuck in {phase}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(field(k, "pending", ".status.verification.mismatched"), "0");
}

/// Specs that cannot run end Failed with a one-line condition, and no Job is created for them.
#[test]
fn migrations_that_cannot_run_fail_with_one_line_and_no_jobs() {
    let hf = Hubsim::start("hf", &[]);
    let gl = Hubsim::start("git", &[]);
    let c = cluster(&[&hf, &gl]);
    let k = &c.k;
    let empty = tokens_secret("no-tokens", "  UNRELATED: x\n");
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&empty));
    assert!(ok, "{out}{err}");
    let doc = |name: &str, source: &str, dest: &str, secret: &str, extra: &str| {
        format!(
            "apiVersion: hubmigrate.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: {name}\nspec:\n  source: {source}\n  dest: {dest}\n  tokensSecret: {secret}\n  sourceEndpoint: {}\n{extra}",
            hf.url
        )
    };
    // (name, manifest, what the condition must say)
    let cases = [
        (
            "unknown-hub",
            doc("unknown-hub", "xx:alice/m", "ms:alice/m", "hub-tokens", ""),
            "unknown hub",
        ),
        (
            "no-such-secret",
            doc("no-such-secret", "hf:alice/m", "hf:alice/copy", "missing-secret", ""),
            "missing-secret",
        ),
        (
            "missing-key",
            doc(
                "missing-key",
                "hf:alice/m",
                "hf:alice/copy",
                "no-tokens",
                &format!("  destEndpoint: {}\n", hf.url),
            ),
            "HF_TOKEN",
        ),
        (
            "git-no-credentials",
            doc(
                "git-no-credentials",
                "hf:alice/m",
                &format!("{}/alice/m.git", gl.url),
                "no-tokens",
                "",
            ),
            "TARGET_TOKEN",
        ),
    ];
    assert_refused(k, &cases, &[ALICE]);
    // Fields the CRD's schema bounds are refused by the API server itself, as kubectl shows.
    let bad = doc(
        "bad-fields",
        "hf:alice/m",
        "ms:alice/m",
        "hub-tokens",
        "  chunkSize: lots\n  maxWorkers: 0\n  startTimeout: 1 week\n",
    );
    let (ok, out, err) = k.kubectl(&["apply", "-f", "-"], Some(&bad));
    assert!(!ok, "a Migration with invalid fields was accepted: {out}");
    for field in ["spec.chunkSize", "spec.maxWorkers", "spec.startTimeout"] {
        assert!(err.contains(field), "{field} not named: {err}");
    }
    let (_, jobs, _) = k.kubectl(&["get", "jobs", "-o", "name"], None);
    assert!(jobs.trim().is_empty(), "Jobs for migrations that cannot run: {jobs}");
}
