//! kubesim proven by the real `kubectl`: CRDs and custom resources with printer columns, the
//! status subresource, generations, optimistic concurrency, server-side apply, label selectors,
//! Jobs run by the stand-in kubelet with logs and secrets, backoff, garbage collection, watches.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Sim, fixture_str};

fn with_crd() -> Sim {
    let sim = Sim::start(&[]);
    let out = sim.ok(&["apply", "-f", &fixture_str("migration-crd.yaml")]);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/migrations.hubmigrate.dev created"),
        "{out}"
    );
    sim
}

fn job_manifest(name: &str, labels: &str, script: &str, extra_spec: &str, env: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  labels: {labels}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: example.invalid/worker:1
        command: [\"sh\", \"-c\", {script:?}]
{env}"
    )
}

#[test]
fn crd_migration_printer_columns_and_json() {
    require_kubectl!();
    let sim = with_crd();
    let out = sim.ok(&["apply", "-f", &fixture_str("migration.yaml")]);
    assert!(out.contains("migration.hubmigrate.dev/demo created"), "{out}");
    let table = sim.ok(&["get", "migrations"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "PROGRESS", "AGE"], "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("demo"), "{table}");
    // Short name, and the status columns once status is set.
    sim.ok(&[
        "patch",
        "mig",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Transferring","progress":"3/10"}}"#,
    ]);
    let table = sim.ok(&["get", "mig"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["demo", "Transferring", "3/10"], "{table}");
    let obj = sim.get_json(&["migrations", "demo"]);
    assert_eq!(obj["apiVersion"], "hubmigrate.dev/v1alpha1");
    assert_eq!(obj["spec"]["source"], "hf://org/model");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert!(obj["metadata"]["uid"].as_str().unwrap().len() == 36);
    let list = sim.get_json(&["migrations"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Discovery knows the resource with its short name.
    let resources = sim.ok(&["api-resources", "--api-group=hubmigrate.dev"]);
    assert!(
        resources.contains("migrations") && resources.contains("mig") && resources.contains("Migration"),
        "{resources}"
    );
    // A second apply of the same manifest changes nothing.
    let out = sim.ok(&["apply", "-f", &fixture_str("migration.yaml")]);
    assert!(out.contains("unchanged"), "{out}");
    sim.ok(&["delete", "migration", "demo"]);
    assert!(sim.ok(&["get", "migrations"]).is_empty());
}

#[test]
fn status_subresource_is_isolated_and_generation_tracks_spec() {
    require_kubectl!();
    let sim = with_crd();
    sim.ok(&["apply", "-f", &fixture_str("migration.yaml")]);
    // A status patch that also tries to change spec only changes status.
    sim.ok(&[
        "patch",
        "migration",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Planning"},"spec":{"parallel":99}}"#,
    ]);
    let obj = sim.get_json(&["migration", "demo"]);
    assert_eq!(obj["status"]["phase"], "Planning");
    assert_eq!(obj["spec"]["parallel"], 4);
    assert_eq!(obj["metadata"]["generation"], 1);
    // The main resource ignores status; a spec change bumps the generation.
    sim.ok(&[
        "patch",
        "migration",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"parallel":8},"status":{"phase":"Hacked"}}"#,
    ]);
    let obj = sim.get_json(&["migration", "demo"]);
    assert_eq!(obj["spec"]["parallel"], 8);
    assert_eq!(obj["status"]["phase"], "Planning");
    assert_eq!(obj["metadata"]["generation"], 2);
    // Metadata-only changes do not.
    sim.ok(&["label", "migration", "demo", "extra=yes"]);
    assert_eq!(sim.get_json(&["migration", "demo"])["metadata"]["generation"], 2);
    // Schema validation and strict field validation.
    let err = sim.fails(&[
        "patch",
        "migration",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"parallel":"many"}}"#,
    ]);
    assert!(err.contains("must be of type integer"), "{err}");
    let err = sim.fails(&[
        "patch",
        "migration",
        "demo",
        "--type=strategic",
        "-p",
        r#"{"spec":{"parallel":3}}"#,
    ]);
    assert!(err.contains("not supported") || err.contains("unknown format"), "{err}");
}

#[test]
fn stale_resource_version_is_a_conflict() {
    require_kubectl!();
    let sim = with_crd();
    sim.ok(&["apply", "-f", &fixture_str("migration.yaml")]);
    let old = sim.ok(&["get", "migration", "demo", "-o", "json"]);
    sim.ok(&[
        "patch",
        "migration",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"parallel":5}}"#,
    ]);
    let mut edited: Value = serde_json::from_str(&old).unwrap();
    edited["spec"]["parallel"] = 6.into();
    let path = sim.dir.join("old.json");
    std::fs::write(&path, edited.to_string()).unwrap();
    let err = sim.fails(&["replace", "-f", path.to_str().unwrap()]);
    assert!(
        err.contains("Conflict") && err.contains("the object has been modified"),
        "{err}"
    );
    assert_eq!(sim.get_json(&["migration", "demo"])["spec"]["parallel"], 5);
    // With the current resourceVersion the replace goes through.
    let mut fresh = sim.get_json(&["migration", "demo"]);
    fresh["spec"]["parallel"] = 6.into();
    std::fs::write(&path, fresh.to_string()).unwrap();
    sim.ok(&["replace", "-f", path.to_str().unwrap()]);
    assert_eq!(sim.get_json(&["migration", "demo"])["spec"]["parallel"], 6);
}

#[test]
fn server_side_apply_creates_records_managers_and_conflicts() {
    require_kubectl!();
    let sim = with_crd();
    let out = sim.ok(&["apply", "--server-side", "-f", &fixture_str("migration.yaml")]);
    assert!(out.contains("serverside-applied"), "{out}");
    let obj = sim.get_json(&["migration", "demo", "--show-managed-fields"]);
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        mf.iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "{mf:?}"
    );
    // Another manager changing an owned field conflicts, unless forced.
    let changed = std::fs::read_to_string(support::fixture("migration.yaml"))
        .unwrap()
        .replace("parallel: 4", "parallel: 9");
    let out = sim.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&changed),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict with \"kubectl\"") && err.contains(".spec.parallel"),
        "{err}"
    );
    let out = sim.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&changed),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sim.get_json(&["migration", "demo"])["spec"]["parallel"], 9);
}

#[test]
fn job_runs_with_secret_env_and_logs() {
    require_kubectl!();
    let sim = Sim::start(&[]);
    let secret = sim.ok(&[
        "create",
        "secret",
        "generic",
        "tokens",
        "--from-literal=HF_TOKEN=s3cr3t-value",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    sim.apply(&secret);
    let env = "        env:
        - name: HF_TOKEN
          valueFrom:
            secretKeyRef:
              name: tokens
              key: HF_TOKEN
        - name: PLAIN
          value: plain-value
";
    sim.apply(&job_manifest(
        "hello",
        "{app: greeter}",
        "echo hello; echo token=$HF_TOKEN plain=$PLAIN; exit 0",
        "",
        env,
    ));
    sim.ok(&["wait", "--for=condition=complete", "job/hello", "--timeout=30s"]);
    let logs = sim.ok(&["logs", "job/hello"]);
    assert!(logs.contains("hello"), "{logs}");
    assert!(logs.contains("token=s3cr3t-value plain=plain-value"), "{logs}");
    let pods = sim.get_json(&["pods", "-l", "job-name=hello"]);
    let pod = &pods["items"][0];
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    let pod_name = pod["metadata"]["name"].as_str().unwrap();
    assert!(sim.ok(&["logs", pod_name]).contains("hello"));
    let job = sim.get_json(&["job", "hello"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["startTime"].is_string() && job["status"]["completionTime"].is_string());
    let table = sim.ok(&["get", "jobs", "-l", "app=greeter"]);
    assert!(
        table.contains("hello") && table.contains("Complete") && table.contains("1/1"),
        "{table}"
    );
    // Nothing from kubesim's own environment leaks into pods.
    assert!(!logs.contains("KUBESIM_LOG"));
}

#[test]
fn label_selectors_filter_lists() {
    require_kubectl!();
    let sim = Sim::start(&[]);
    for (name, labels) in [("a", "{app: ax, tier: web}"), ("b", "{app: bx}"), ("c", "{tier: db}")] {
        sim.apply(&job_manifest(name, labels, "exit 0", "", ""));
    }
    let names = |sel: &str| -> Vec<String> {
        let v = sim.get_json(&["jobs", "-l", sel]);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("app=ax"), ["a"]);
    assert_eq!(names("app in (ax,bx)"), ["a", "b"]);
    assert_eq!(names("app notin (ax)"), ["b", "c"]);
    assert_eq!(names("!app"), ["c"]);
    assert_eq!(names("tier,app!=bx"), ["a", "c"]);
    let table = sim.ok(&["get", "jobs", "-l", "tier=db"]);
    assert!(table.contains('c') && !table.contains("\na "), "{table}");
    let err = sim.fails(&["get", "jobs", "-l", "app in x"]);
    assert!(
        err.contains("unable to parse requirement") || err.contains("parse"),
        "{err}"
    );
}

#[test]
fn failing_job_retries_until_backoff_limit() {
    require_kubectl!();
    let sim = Sim::start(&[]);
    sim.apply(&job_manifest(
        "flaky",
        "{app: flaky}",
        "echo attempt; exit 3",
        "  backoffLimit: 2\n",
        "",
    ));
    sim.ok(&["wait", "--for=condition=failed", "job/flaky", "--timeout=30s"]);
    let job = sim.get_json(&["job", "flaky"]);
    assert_eq!(job["status"]["failed"], 3, "{job}");
    let reasons: Vec<&str> = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"BackoffLimitExceeded"), "{reasons:?}");
    let pods = sim.get_json(&["pods", "-l", "job-name=flaky"]);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
    assert!(
        pods.iter()
            .all(|p| p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3)
    );
    assert!(sim.ok(&["get", "job", "flaky"]).contains("Failed"));
}

#[test]
fn deleting_an_owner_deletes_its_dependents() {
    require_kubectl!();
    let sim = with_crd();
    sim.ok(&["apply", "-f", &fixture_str("migration.yaml")]);
    let uid = sim.get_json(&["migration", "demo"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = format!(
        "  ownerReferences:\n  - apiVersion: hubmigrate.dev/v1alpha1\n    kind: Migration\n    name: demo\n    uid: {uid}\n    controller: true\n    blockOwnerDeletion: true\n"
    );
    let job = job_manifest(
        "demo-chunk-0",
        "{hubmigrate.dev/migration: demo, hubmigrate.dev/chunk: \"0\"}",
        "sleep 30",
        "",
        "",
    )
    .replacen("  labels:", &format!("{owner}  labels:"), 1);
    sim.apply(&job);
    sim.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: demo-grpc\n{owner}stringData:\n  secret: abc\n"
    ));
    sim.wait_until(20, "the chunk pod to run", || {
        sim.get_json(&["pods", "-l", "job-name=demo-chunk-0"])["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["status"]["phase"] == "Running"))
    });
    let table = sim.ok(&["get", "jobs", "-l", "hubmigrate.dev/migration=demo"]);
    assert!(table.contains("demo-chunk-0") && table.contains("Running"), "{table}");
    sim.ok(&["delete", "migration", "demo"]);
    sim.wait_until(30, "the dependents to be collected", || {
        sim.ok(&["get", "jobs,secrets,pods", "-o", "name"]).trim().is_empty()
    });
    // The killed pod's process is gone too.
    assert!(sim.log().contains("container exited"), "{}", sim.log());
}

#[test]
fn deleting_a_running_pod_is_retried_by_its_job() {
    require_kubectl!();
    let sim = Sim::start(&[]);
    sim.apply(&job_manifest(
        "retry",
        "{app: retry}",
        "if [ -f done ]; then echo second; exit 0; fi; touch done; echo first; sleep 60",
        "",
        "",
    ));
    let first = std::cell::RefCell::new(String::new());
    sim.wait_until(20, "the first pod to run", || {
        let pods = sim.get_json(&["pods", "-l", "job-name=retry"]);
        match pods["items"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["status"]["phase"] == "Running"))
        {
            Some(p) => {
                *first.borrow_mut() = p["metadata"]["name"].as_str().unwrap().to_string();
                true
            }
            None => false,
        }
    });
    sim.ok(&["delete", "pod", &first.borrow(), "--grace-period=1"]);
    // Each pod has its own working directory, so the replacement starts afresh and sleeps too:
    // the job keeps one active pod and counts the deleted one as failed.
    sim.wait_until(20, "the replacement pod", || {
        let job = sim.get_json(&["job", "retry"]);
        job["status"]["failed"] == 1 && job["status"]["active"] == 1
    });
    let pods = sim.get_json(&["pods", "-l", "job-name=retry"]);
    assert!(
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["metadata"]["name"] != first.borrow().as_str())
    );
}

#[test]
fn kubectl_get_watch_sees_changes() {
    require_kubectl!();
    let sim = Sim::start(&[]);
    let mut watch = Command::new(support::kubectl_path().unwrap())
        .args(["get", "jobs", "--watch", "--output-watch-events"])
        .env("KUBECONFIG", &sim.kubeconfig)
        .env("HOME", sim.dir.join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    sim.apply(&job_manifest("watched", "{app: w}", "exit 0", "", ""));
    sim.ok(&["wait", "--for=condition=complete", "job/watched", "--timeout=30s"]);
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ADDED") && text.contains("watched"), "{text}");
    assert!(text.contains("MODIFIED") && text.contains("Complete"), "{text}");
}

#[test]
fn the_project_manifests_apply() {
    require_kubectl!();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let (crd, example) = (deploy.join("crd.yaml"), deploy.join("examples/migration.yaml"));
    assert!(
        crd.is_file() && example.is_file(),
        "deploy/crd.yaml and deploy/examples/migration.yaml must exist"
    );
    let sim = Sim::start(&[]);
    sim.ok(&["apply", "-f", crd.to_str().unwrap()]);
    // The example's own instructions: a Secret made by `kubectl create secret generic`.
    sim.ok(&[
        "create",
        "secret",
        "generic",
        "hub-tokens",
        "--from-literal=HF_TOKEN=x",
        "--from-literal=MODELSCOPE_TOKEN=y",
    ]);
    assert_eq!(sim.get_json(&["secret", "hub-tokens"])["data"]["HF_TOKEN"], "eA==");
    let out = sim.ok(&["apply", "-f", example.to_str().unwrap()]);
    assert!(out.contains("created"), "{out}");
    let table = sim.ok(&["get", "migrations"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("PHASE") && header.ends_with("AGE"),
        "{table}"
    );
    let manifests = deploy.join("manifests.yaml");
    if manifests.is_file() {
        sim.ok(&["apply", "-f", manifests.to_str().unwrap()]);
    }
    let name = sim.ok(&["get", "migrations", "-o", "jsonpath={.items[0].metadata.name}"]);
    sim.ok(&["delete", "migration", &name]);
}
