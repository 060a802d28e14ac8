//! kubesim over raw HTTP, where exact codes and streams matter: watches that resume from a
//! resourceVersion and end with 410 Gone when it is too old, lists at an exact version and in
//! pages, Status objects for 404/409/422, server-side apply creating objects, foreground and
//! orphan deletion, and the events.k8s.io view of core Events. No kubectl needed.

mod support;

use serde_json::{Value, json};
use support::Sim;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn create_cm(sim: &Sim, name: &str, labels: Value) -> Value {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
                      "data": {"k": "v"}});
    let (code, text) = sim.http("POST", CM, Some("application/json"), Some(&body.to_string()));
    assert_eq!(code, 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn merge(sim: &Sim, path: &str, patch: Value) -> (u16, Value) {
    let (code, text) = sim.http(
        "PATCH",
        path,
        Some("application/merge-patch+json"),
        Some(&patch.to_string()),
    );
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

#[test]
fn watch_resumes_from_a_resource_version_and_filters_by_label() {
    let sim = Sim::start(&[]);
    let a = create_cm(&sim, "a", json!({"app": "x"}));
    let start = rv(&a);
    let events = sim.watch_events(
        &format!("{CM}?watch=true&resourceVersion={start}&labelSelector=app%3Dx"),
        3,
        || {
            create_cm(&sim, "b", json!({"app": "x"}));
            create_cm(&sim, "other", json!({"app": "y"}));
            merge(&sim, &format!("{CM}/b"), json!({"data": {"k": "2"}}));
            merge(&sim, &format!("{CM}/a"), json!({"metadata": {"labels": {"app": "z"}}}));
            let (code, _) = sim.http("DELETE", &format!("{CM}/b"), None, None);
            assert_eq!(code, 200);
        },
    );
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a"), ("DELETED", "b")]
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(seen, want);
    // Resuming from the second event's version replays only what came after it.
    let mid = rv(&events[1]["object"]);
    let replay = sim.watch_events(&format!("{CM}?watch=true&resourceVersion={mid}"), 1, || {});
    let names: Vec<&str> = replay
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"], "{replay:?}");
    // Without a resourceVersion the current state comes first, as ADDED.
    let fresh = sim.watch_events(&format!("{CM}?watch=true&timeoutSeconds=1"), 3, || {});
    let names: Vec<&str> = fresh
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(fresh.iter().all(|e| e["type"] == "ADDED"));
    assert_eq!(names, ["a", "other"]);
}

#[test]
fn too_old_resource_versions_are_gone() {
    let sim = Sim::start(&["--watch-history", "5"]);
    let first = create_cm(&sim, "c0", json!({}));
    for i in 1..10 {
        create_cm(&sim, &format!("c{i}"), json!({}));
    }
    let old = rv(&first);
    let events = sim.watch_events(&format!("{CM}?watch=true&resourceVersion={old}"), 2, || {});
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    let (code, status) = sim.get(&format!("{CM}?resourceVersion={old}&resourceVersionMatch=Exact"));
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["kind"], "Status");
    let (code, _) = sim.get(&format!("{CM}?resourceVersion=999999"));
    assert_eq!(code, 504);
}

#[test]
fn lists_at_exact_versions_and_in_pages() {
    let sim = Sim::start(&[]);
    for i in 0..5 {
        create_cm(&sim, &format!("p{i}"), json!({}));
    }
    let (_, list) = sim.get(CM);
    let at = rv(&list);
    create_cm(&sim, "late", json!({}));
    let (code, exact) = sim.get(&format!("{CM}?resourceVersion={at}&resourceVersionMatch=Exact"));
    assert_eq!(code, 200);
    assert_eq!(exact["items"].as_array().unwrap().len(), 5);
    let (_, page1) = sim.get(&format!("{CM}?limit=2"));
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page1["metadata"]["remainingItemCount"], 4);
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    create_cm(&sim, "after", json!({}));
    let mut names: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().into())
        .collect();
    let mut next = Some(token);
    while let Some(t) = next {
        let (code, page) = sim.get(&format!("{CM}?limit=2&continue={t}"));
        assert_eq!(code, 200, "{page}");
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        next = page["metadata"]["continue"].as_str().map(String::from);
    }
    // Every page reads the first page's snapshot: "after" is not there.
    assert_eq!(names, ["late", "p0", "p1", "p2", "p3", "p4"]);
}

#[test]
fn errors_are_status_objects() {
    let sim = Sim::start(&[]);
    let (code, s) = sim.get(&format!("{CM}/missing"));
    assert_eq!(
        (code, s["kind"].as_str(), s["reason"].as_str()),
        (404, Some("Status"), Some("NotFound"))
    );
    assert_eq!(s["message"], "configmaps \"missing\" not found");
    create_cm(&sim, "dup", json!({}));
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}});
    let (code, text) = sim.http("POST", CM, Some("application/json"), Some(&body.to_string()));
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("AlreadyExists"));
    let (code, s) = merge(
        &sim,
        &format!("{CM}/dup"),
        json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}),
    );
    assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
    let (code, s) = merge(
        &sim,
        &format!("{CM}/dup"),
        json!({"metadata": {"labels": {"bad key": "x"}}}),
    );
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.labels");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                     "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "command": ["true"],
                               "resources": {"requests": {"memory": "30GB"}}}]}}}});
    let (code, text) = sim.http(
        "POST",
        "/apis/batch/v1/namespaces/default/jobs",
        Some("application/json"),
        Some(&job.to_string()),
    );
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains("restartPolicy") && text.contains("requests[memory]"),
        "{text}"
    );
    let (code, _) = sim.http(
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        Some("application/json"),
        Some(&body.to_string()),
    );
    assert_eq!(code, 404);
}

#[test]
fn server_side_apply_creates_and_keeps_status_apart() {
    let sim = Sim::start(&[]);
    let path = "/api/v1/namespaces/default/services/svc";
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                     "spec": {"ports": [{"port": 50051}], "selector": {"app": "coord"}}});
    let (code, _) = sim.http(
        "PATCH",
        path,
        Some("application/apply-patch+yaml"),
        Some(&cfg.to_string()),
    );
    assert_eq!(code, 422, "apply without a field manager must fail");
    let (code, text) = sim.http(
        "PATCH",
        &format!("{path}?fieldManager=ctl"),
        Some("application/apply-patch+yaml"),
        Some(&cfg.to_string()),
    );
    assert_eq!(code, 201, "{text}");
    let svc: Value = serde_json::from_str(&text).unwrap();
    assert!(svc["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    assert_eq!(svc["metadata"]["managedFields"][0]["manager"], "ctl");
    let (code, _) = sim.http(
        "PATCH",
        &format!("{path}?fieldManager=ctl"),
        Some("application/apply-patch+yaml"),
        Some(&cfg.to_string()),
    );
    assert_eq!(code, 200);
    let status = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                        "spec": {"type": "NodePort"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
    let (code, text) = sim.http(
        "PATCH",
        &format!("{path}/status?fieldManager=lb&force=true"),
        Some("application/apply-patch+yaml"),
        Some(&status.to_string()),
    );
    assert_eq!(code, 200, "{text}");
    let (_, svc) = sim.get(path);
    assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ip"], "1.2.3.4");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
}

#[test]
fn foreground_and_orphan_deletion() {
    let sim = Sim::start(&[]);
    let owner = create_cm(&sim, "owner", json!({}));
    let uid = owner["metadata"]["uid"].as_str().unwrap();
    let dep = json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "dep", "finalizers": ["example.com/hold"],
                                  "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid,
                                                       "blockOwnerDeletion": true}]}});
    let (code, _) = sim.http("POST", CM, Some("application/json"), Some(&dep.to_string()));
    assert_eq!(code, 201);
    let (code, text) = sim.http(
        "DELETE",
        &format!("{CM}/owner?propagationPolicy=Foreground"),
        None,
        None,
    );
    assert_eq!(code, 200, "{text}");
    let wait = |f: &dyn Fn() -> bool| {
        for _ in 0..100 {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("timed out");
    };
    // The owner waits for its dependent, which waits for its finalizer.
    wait(&|| sim.get(&format!("{CM}/dep")).1["metadata"]["deletionTimestamp"].is_string());
    let (code, o) = sim.get(&format!("{CM}/owner"));
    assert_eq!(code, 200);
    assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    merge(&sim, &format!("{CM}/dep"), json!({"metadata": {"finalizers": null}}));
    wait(&|| sim.get(&format!("{CM}/owner")).0 == 404);
    // Orphan: the dependent stays, without the reference.
    let owner = create_cm(&sim, "owner2", json!({}));
    let dep = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dep2", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner["metadata"]["uid"]}]}});
    sim.http("POST", CM, Some("application/json"), Some(&dep.to_string()));
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"});
    sim.http(
        "DELETE",
        &format!("{CM}/owner2"),
        Some("application/json"),
        Some(&opts.to_string()),
    );
    wait(&|| sim.get(&format!("{CM}/owner2")).0 == 404);
    let (code, d) = sim.get(&format!("{CM}/dep2"));
    assert_eq!(code, 200);
    assert!(d["metadata"].get("ownerReferences").is_none(), "{d}");
}

#[test]
fn events_are_served_through_both_apis() {
    let sim = Sim::start(&[]);
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
                    "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "hubmigrate.dev/controller",
                    "reportingInstance": "c-1", "action": "Reconcile", "reason": "Planning", "type": "Normal",
                    "note": "planned 3 chunks", "regarding": {"kind": "Migration", "name": "demo", "namespace": "default"}});
    let (code, text) = sim.http(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some("application/json"),
        Some(&ev.to_string()),
    );
    assert_eq!(code, 201, "{text}");
    let (_, core) = sim.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Ddemo");
    let item = &core["items"][0];
    assert_eq!(item["message"], "planned 3 chunks");
    assert_eq!(item["involvedObject"]["kind"], "Migration");
    assert_eq!(item["reportingComponent"], "hubmigrate.dev/controller");
    let bad = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"}, "reason": "x"});
    let (code, _) = sim.http(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some("application/json"),
        Some(&bad.to_string()),
    );
    assert_eq!(code, 422);
}

#[test]
fn bare_commands_resolve_from_the_bin_dir_and_env_is_isolated() {
    let bin = std::env::temp_dir().join(format!("kubesim-bin-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("migrate-worker");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"worker $1 chunk=$CHUNK leak=${KUBESIM_TEST_LEAK:-none}\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    // kubesim runs with a variable that pods must not see.
    let sim = Sim::start_with_env(
        &["--bin-dir", bin.to_str().unwrap()],
        &[("KUBESIM_TEST_LEAK", "secret")],
    );
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "w"},
                     "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "worker", "image": "hubmigrate/worker", "command": ["migrate-worker"],
                         "args": ["$(MODE)"], "env": [{"name": "CHUNK", "value": "7"}, {"name": "MODE", "value": "run"}]}]}}}});
    let (code, text) = sim.http(
        "POST",
        "/apis/batch/v1/namespaces/default/jobs",
        Some("application/json"),
        Some(&job.to_string()),
    );
    assert_eq!(code, 201, "{text}");
    let mut logs = String::new();
    for _ in 0..100 {
        let (_, pods) = sim.get("/api/v1/namespaces/default/pods?labelSelector=job-name%3Dw");
        if let Some(p) = pods["items"].as_array().and_then(|a| a.first())
            && p["status"]["phase"] == "Succeeded"
        {
            let name = p["metadata"]["name"].as_str().unwrap();
            logs = sim
                .http(
                    "GET",
                    &format!("/api/v1/namespaces/default/pods/{name}/log"),
                    None,
                    None,
                )
                .1;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs, "worker run chunk=7 leak=none\n");
    let _ = std::fs::remove_dir_all(&bin);
}
