//! kubesim through kube-rs, the client the controller uses: the kubeconfig kubesim writes,
//! discovery, server-side apply of a CRD, a custom resource as a `DynamicObject`, a `watcher`
//! (list then watch), status by forced apply, a Job awaited with `is_job_completed`, pod logs,
//! conflicts, and cascade deletion.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::{Sim, fixture};

async fn client(sim: &Sim) -> kube::Client {
    let kc = Kubeconfig::read_from(&sim.kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_controller_flows() {
    let sim = Sim::start(&[]);
    let client = client(&sim).await;
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(discovery.groups().any(|g| g.name() == "batch"));

    // A CRD created by server-side apply, then a Migration.
    let crd: CustomResourceDefinition =
        serde_yaml_ng::from_str(&std::fs::read_to_string(fixture("migration-crd.yaml")).unwrap()).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "migrations.hubmigrate.dev",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    let gvk = GroupVersionKind::gvk("hubmigrate.dev", "v1alpha1", "Migration");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "migrations");
    let migs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(migs.clone(), watcher::Config::default()).applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(obj)) = stream.next().await {
            let phase = obj.data["status"]["phase"].as_str().unwrap_or("").to_string();
            if tx.send(phase).is_err() {
                return;
            }
        }
    });
    let mig: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "hubmigrate.dev/v1alpha1", "kind": "Migration",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"source": "hf://a/b", "dest": "ms://a/b", "parallel": 2}
    }))
    .unwrap();
    let created = migs.create(&PostParams::default(), &mig).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    migs.patch_status(
        "demo",
        &PatchParams::apply("hubmigrate-controller").force(),
        &Patch::Apply(json!({"apiVersion": "hubmigrate.dev/v1alpha1", "kind": "Migration",
                             "status": {"phase": "Planning", "chunksTotal": 1}})),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(p) = rx.recv().await {
            if p == "Planning" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "the watcher saw the status change");
    let got = migs.get("demo").await.unwrap();
    assert_eq!(got.data["status"]["phase"], "Planning");
    assert_eq!(got.metadata.generation, Some(1));

    // A stale replace is a 409 kube-rs reports as such.
    let mut stale = created.clone();
    stale.data["spec"]["parallel"] = json!(3);
    match migs.replace("demo", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("expected a conflict, got {other:?}"),
    }

    // A Job owned by the Migration runs, completes, and logs.
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "demo-chunk-0", "labels": {"hubmigrate.dev/migration": "demo", "hubmigrate.dev/chunk": "0"},
                     "ownerReferences": [{"apiVersion": "hubmigrate.dev/v1alpha1", "kind": "Migration", "name": "demo",
                                          "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"backoffLimit": 1, "template": {"metadata": {"labels": {"hubmigrate.dev/migration": "demo"}},
                 "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "hubmigrate/worker",
                          "command": ["sh", "-c", "echo chunk 0 done"]}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(jobs.clone(), "demo-chunk-0", conditions::is_job_completed()),
    )
    .await
    .expect("job completes in time")
    .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let list = pods
        .list(&ListParams::default().labels("hubmigrate.dev/migration=demo"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let pod = list.items[0].metadata.name.clone().unwrap();
    let logs = pods.logs(&pod, &LogParams::default()).await.unwrap();
    assert_eq!(logs, "chunk 0 done\n");

    // Deleting the Migration collects its Job and pod.
    migs.delete("demo", &DeleteParams::background()).await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let j = jobs.get_opt("demo-chunk-0").await.unwrap();
            let p = pods
                .list(&ListParams::default().labels("hubmigrate.dev/migration=demo"))
                .await
                .unwrap();
            if j.is_none() && p.items.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "dependents collected; log:\n{}", sim.log());
}
