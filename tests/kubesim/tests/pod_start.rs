//! Pods that do not start at once: `--pod-start-delay` keeps each pod Pending with its container
//! `ContainerCreating` (seen by kubectl, a label-selected kubectl watch and kube-rs), and
//! `--unschedulable-pods` keeps selected pods Pending as `Unschedulable`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::Sim;

fn job(name: &str, migration: &str, script: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {{hubmigrate.dev/migration: {migration}}}
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: example.invalid/worker:1
        command: [\"sh\", \"-c\", {script:?}]
"
    )
}

fn condition<'a>(pod: &'a Value, ty: &str) -> &'a Value {
    let list = pod["status"]["conditions"].as_array().expect("conditions");
    list.iter()
        .find(|c| c["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {pod:#}"))
}

fn only_pod(sim: &Sim, selector: &str) -> Value {
    let list = sim.get_json(&["pods", "-l", selector]);
    let items = list["items"].as_array().unwrap();
    assert!(items.len() <= 1, "{list:#}");
    items.first().cloned().unwrap_or(Value::Null)
}

#[test]
fn delayed_pod_is_container_creating_then_runs() {
    require_kubectl!();
    let sim = Sim::start(&["--pod-start-delay", "2s"]);
    let mut watch = Command::new(support::kubectl_path().unwrap())
        .args(["get", "pods", "-l", "hubmigrate.dev/migration=x", "--watch"])
        .env("KUBECONFIG", &sim.kubeconfig)
        .env("HOME", sim.dir.join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sim.apply(&job("delayed", "x", "echo started"));
    sim.apply(&job("other", "y", "exit 0"));
    let mut pod = Value::Null;
    sim.wait_until(5, "the pod in ContainerCreating", || {
        pod = only_pod(&sim, "hubmigrate.dev/migration=x");
        pod["status"]["containerStatuses"].is_array()
    });
    let seen = Instant::now();
    let table = sim.ok(&["get", "pods", "-l", "hubmigrate.dev/migration=x"]);
    let job_status = sim.get_json(&["job", "delayed"])["status"].clone();
    let logs = sim.fails(&["logs", "job/delayed"]);
    assert!(
        seen.elapsed() < Duration::from_millis(1500),
        "checks were too slow to test the delay"
    );

    let st = &pod["status"];
    assert_eq!(st["phase"], "Pending", "{pod:#}");
    assert_eq!(st["hostIP"], "127.0.0.1");
    assert!(st["startTime"].is_string() && st.get("podIP").is_none(), "{pod:#}");
    let c = &st["containerStatuses"][0];
    assert_eq!(
        c["state"],
        json!({"waiting": {"reason": "ContainerCreating"}}),
        "{pod:#}"
    );
    assert_eq!(
        (&c["ready"], &c["restartCount"], &c["started"]),
        (&json!(false), &json!(0), &json!(false))
    );
    assert_eq!(
        (&c["name"], &c["image"]),
        (&json!("worker"), &json!("example.invalid/worker:1"))
    );
    assert_eq!(condition(&pod, "PodScheduled")["status"], "True");
    assert_eq!(condition(&pod, "Initialized")["status"], "True");
    assert_eq!(condition(&pod, "PodReadyToStartContainers")["status"], "False");
    for ty in ["Ready", "ContainersReady"] {
        let c = condition(&pod, ty);
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("False"), &json!("ContainersNotReady"))
        );
        assert_eq!(c["message"], "containers with unready status: [worker]");
    }
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[1..4], ["0/1", "ContainerCreating", "0"], "{table}");
    assert_eq!(table.lines().count(), 2, "only the selected pod: {table}");
    assert_eq!(job_status["active"], 1, "{job_status:#}");
    assert_eq!(job_status["ready"], 0, "{job_status:#}");
    assert!(logs.contains("is waiting to start: ContainerCreating"), "{logs}");

    // After the delay the container runs as usual.
    sim.ok(&["wait", "--for=condition=complete", "job/delayed", "--timeout=30s"]);
    assert!(seen.elapsed() >= Duration::from_millis(500), "the pod waited");
    let pod = only_pod(&sim, "hubmigrate.dev/migration=x");
    assert_eq!(pod["status"]["phase"], "Succeeded", "{pod:#}");
    assert_eq!(
        condition(&pod, "PodScheduled")["lastTransitionTime"],
        st["conditions"][4]["lastTransitionTime"]
    );
    assert_eq!(sim.ok(&["logs", "job/delayed"]), "started\n");
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let statuses: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert!(statuses.contains(&"ContainerCreating"), "{text}");
    assert!(statuses.contains(&"Completed"), "{text}");
    assert!(!text.contains("other-"), "the watch is label-selected: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_sees_container_creating_through_a_label_selected_watch() {
    let sim = Sim::start(&["--pod-start-delay", "1s"]);
    let kc = Kubeconfig::read_from(&sim.kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let jobs: Api<Job> = Api::default_namespaced(client);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = watcher::Config::default().labels("hubmigrate.dev/migration=k");
    let stream = watcher(pods.clone(), cfg).applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(p)) = stream.next().await {
            let st = p.status.unwrap_or_default();
            let waiting = st.container_statuses.unwrap_or_default().first().and_then(|c| {
                let w = c.state.as_ref()?.waiting.as_ref()?;
                w.reason.clone()
            });
            if tx.send((st.phase.unwrap_or_default(), waiting)).is_err() {
                return;
            }
        }
    });
    let manifest: Job = serde_yaml_ng::from_str(&job("kr", "k", "exit 0")).unwrap();
    jobs.create(&PostParams::default(), &manifest).await.unwrap();
    let mut seen = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(s) = rx.recv().await {
            let creating = s == ("Pending".to_string(), Some("ContainerCreating".to_string()));
            if creating {
                let job = jobs.get("kr").await.unwrap().status.unwrap();
                assert_eq!((job.active, job.ready), (Some(1), Some(0)), "{job:?}");
            }
            seen.push(s.clone());
            if s.0 == "Succeeded" {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "saw {seen:?}; log:\n{}", sim.log());
    let creating = seen.iter().position(|s| s.1.as_deref() == Some("ContainerCreating"));
    let running = seen.iter().position(|s| s.0 == "Running" || s.0 == "Succeeded");
    assert!(creating.is_some() && creating < running, "{seen:?}");
    let list = pods
        .list(&ListParams::default().labels("hubmigrate.dev/migration=k"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let other = pods
        .list(&ListParams::default().labels("hubmigrate.dev/migration=nope"))
        .await
        .unwrap();
    assert!(other.items.is_empty());
}

#[test]
fn unschedulable_pods_stay_pending() {
    require_kubectl!();
    let sim = Sim::start(&["--unschedulable-pods", "hubmigrate.dev/migration=stuck"]);
    sim.apply(&job("stuck", "stuck", "exit 0"));
    sim.apply(&job("fine", "fine", "exit 0"));
    sim.ok(&["wait", "--for=condition=complete", "job/fine", "--timeout=30s"]);
    let pod = only_pod(&sim, "hubmigrate.dev/migration=stuck");
    assert_eq!(pod["status"]["phase"], "Pending", "{pod:#}");
    assert!(pod["spec"].get("nodeName").is_none(), "{pod:#}");
    assert!(pod["status"].get("containerStatuses").is_none(), "{pod:#}");
    let c = condition(&pod, "PodScheduled");
    assert_eq!((&c["status"], &c["reason"]), (&json!("False"), &json!("Unschedulable")));
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with("0/1 nodes are available: 1 Insufficient cpu.")
    );
    let table = sim.ok(&["get", "pods", "-l", "hubmigrate.dev/migration=stuck", "-o", "wide"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[2], row[5], row[6]), ("Pending", "<none>", "<none>"), "{table}");
    let job_status = sim.get_json(&["job", "stuck"])["status"].clone();
    assert_eq!((&job_status["active"], &job_status["ready"]), (&json!(1), &json!(0)));
    // An unscheduled pod is deleted at once, without a kubelet to confirm it.
    let name = pod["metadata"]["name"].as_str().unwrap();
    sim.ok(&["delete", "job", "stuck", "--wait=true", "--timeout=20s"]);
    sim.wait_until(10, "the stuck pod gone", || {
        !sim.ok(&["get", "pods", "-o", "name"]).contains(name)
    });
}

#[test]
fn unschedulable_pods_without_a_selector_means_all() {
    let sim = Sim::start(&["--unschedulable-pods", "--pod-start-delay", "45s"]);
    let (code, body) = sim.http(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some("application/json"),
        Some(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","command":["true"]}]}}"#),
    );
    assert_eq!(code, 201, "{body}");
    std::thread::sleep(Duration::from_millis(700));
    let (_, pod) = sim.get("/api/v1/namespaces/default/pods/p");
    assert_eq!(condition(&pod, "PodScheduled")["reason"], "Unschedulable", "{pod:#}");
    assert!(pod["status"].get("containerStatuses").is_none(), "{pod:#}");
}
