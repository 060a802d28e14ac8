//! The shared state of one running kubesim: the store, the resource registry and the settings
//! the API handlers, the garbage collector, the job controller and the kubelet read.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::registry::{Registry, ResourceInfo};
use crate::selector::LabelSelector;
use crate::store::Store;

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data directory (objects, pod logs).
    pub data: PathBuf,
    /// Where bare container commands are looked up before `PATH`.
    pub bin_dir: PathBuf,
    /// Base delay before a failed Job pod is replaced (doubles per failure, capped at 6 minutes).
    pub job_backoff: Duration,
    /// Interval of BOOKMARK events on watches that ask for them.
    pub bookmark_interval: Duration,
    /// The node name pods are bound to.
    pub node: String,
    /// How long a pod waits in `ContainerCreating` before its container starts.
    pub pod_start_delay: Duration,
    /// Pods matching this selector are never scheduled.
    pub unschedulable: Option<LabelSelector>,
}

/// Everything the handlers and controllers share.
pub struct Cluster {
    /// The objects.
    pub store: Store,
    registry: RwLock<Registry>,
    /// Settings.
    pub cfg: Config,
    /// Process (group) ids of running pod processes, killed when kubesim stops.
    pub pids: Mutex<HashSet<u32>>,
    next_ip: AtomicU32,
}

impl Cluster {
    /// Assembles a cluster around a store.
    pub fn new(store: Store, cfg: Config) -> Cluster {
        let cluster = Cluster {
            store,
            registry: RwLock::new(Registry::default()),
            cfg,
            next_ip: AtomicU32::new(10),
            pids: Mutex::new(HashSet::new()),
        };
        // Custom resources of CRDs loaded from disk.
        let crds: Vec<(String, serde_json::Value)> = {
            let txn = cluster.store.txn();
            txn.list("apiextensions.k8s.io/customresourcedefinitions", None)
                .map(|(k, v)| (k.name.clone(), v.clone()))
                .collect()
        };
        for (name, crd) in crds {
            cluster.set_crd(&name, Some(&crd));
        }
        cluster
    }

    /// The resource served at `group/version/resource` (a copy: no lock is held).
    pub fn resource(&self, group: &str, version: &str, resource: &str) -> Option<ResourceInfo> {
        self.registry().find(group, version, resource).cloned()
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Registry {
        self.registry.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Registers (or with `None` removes) the resources of a CRD.
    pub fn set_crd(&self, name: &str, crd: Option<&serde_json::Value>) {
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_crd(name, crd);
    }

    /// The resource stored under a storage key, if still served.
    pub fn by_storage(&self, storage: &str) -> Option<ResourceInfo> {
        self.registry().by_storage(storage).cloned()
    }

    /// The built-in resource of a storage key (`/pods`, `batch/jobs`).
    pub fn builtin(&self, storage: &str) -> ResourceInfo {
        let (group, resource) = storage.split_once('/').unwrap_or(("", storage));
        self.resource(group, "v1", resource).expect("built-in resource")
    }

    /// The file a pod's container log is captured to.
    pub fn log_path(&self, ns: &str, pod: &str) -> PathBuf {
        self.cfg.data.join("logs").join(ns).join(format!("{pod}.log"))
    }

    /// A fresh cluster IP for a Service.
    pub fn next_cluster_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }
}
