//! The garbage collector, run after every change like the controller-manager's: objects whose
//! owners (by uid, in the same namespace or cluster-scoped) are all gone are deleted in the
//! background; dangling references to gone owners beside live ones are dropped; owners deleted
//! with `Foreground` wait (finalizer `foregroundDeletion`) until their dependents are gone, and
//! with `Orphan` (finalizer `orphan`) release them first; terminating namespaces are emptied and
//! then removed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::objects::{DeleteOpts, Propagation, delete, modify};
use crate::state::Cluster;
use crate::store::ObjKey;
use crate::util::meta_str;

const MANAGER: &str = "garbage-collector";

/// Runs the collector until the process ends.
pub async fn run(cl: Arc<Cluster>) {
    let mut changed = cl.store.subscribe();
    loop {
        collect(&cl);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect()
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"].get("deletionTimestamp").is_some()
}

fn remove_finalizer(cl: &Cluster, key: &ObjKey, f: &str) {
    let Some(info) = cl.by_storage(&key.storage) else {
        return;
    };
    let _ = modify(cl, &info, &key.ns, &key.name, None, MANAGER, |o| {
        let Some(list) = o["metadata"]["finalizers"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|x| x != f);
        before != list.len()
    });
}

fn delete_background(cl: &Cluster, key: &ObjKey) {
    let Some(info) = cl.by_storage(&key.storage) else {
        return;
    };
    let opts = DeleteOpts {
        propagation: Some(Propagation::Background),
        ..DeleteOpts::default()
    };
    if let Err(e) = delete(cl, &info, &key.ns, &key.name, &opts)
        && e.code != 404
    {
        tracing::warn!(object = ?key, error = %e, "garbage collector could not delete");
    }
}

/// One pass of the collector.
pub fn collect(cl: &Cluster) {
    let objects: Vec<(ObjKey, Value)> = cl.store.txn().all().map(|(k, v)| (k.clone(), v.clone())).collect();
    let by_uid: HashMap<&str, &ObjKey> = objects
        .iter()
        .filter_map(|(k, v)| meta_str(v, "uid").map(|u| (u, k)))
        .collect();
    let mut dependents: HashMap<&str, Vec<&ObjKey>> = HashMap::new();
    for (k, v) in &objects {
        for uid in v["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["uid"].as_str())
        {
            dependents.entry(uid).or_default().push(k);
        }
    }
    let owner_alive = |dep: &ObjKey, uid: &str| {
        by_uid
            .get(uid)
            .is_some_and(|owner| owner.ns.is_empty() || owner.ns == dep.ns)
    };

    // Owners deleted with Orphan or Foreground.
    for (k, v) in objects.iter().filter(|(_, v)| deleting(v)) {
        let uid = meta_str(v, "uid").unwrap_or_default();
        let deps = dependents.get(uid).cloned().unwrap_or_default();
        if has_finalizer(v, "orphan") {
            for d in &deps {
                if let Some(info) = cl.by_storage(&d.storage) {
                    let _ = modify(cl, &info, &d.ns, &d.name, None, MANAGER, |o| {
                        let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() else {
                            return false;
                        };
                        refs.retain(|r| r["uid"] != uid);
                        if refs.is_empty() {
                            o["metadata"].as_object_mut().map(|m| m.remove("ownerReferences"));
                        }
                        true
                    });
                }
            }
            remove_finalizer(cl, k, "orphan");
        } else if has_finalizer(v, "foregroundDeletion") {
            let live: Vec<&&ObjKey> = deps
                .iter()
                .filter(|d| objects.iter().any(|(k2, _)| k2 == **d))
                .collect();
            if live.is_empty() {
                remove_finalizer(cl, k, "foregroundDeletion");
            }
            for d in live {
                if objects.iter().any(|(k2, o)| k2 == *d && !deleting(o)) {
                    delete_background(cl, d);
                }
            }
        }
    }

    // Dependents whose owners are gone.
    for (k, v) in &objects {
        let owners = owner_uids(v);
        if owners.is_empty() {
            continue;
        }
        let alive: HashSet<&str> = owners
            .iter()
            .map(String::as_str)
            .filter(|u| owner_alive(k, u))
            .collect();
        if alive.is_empty() {
            if !deleting(v) {
                tracing::info!(object = ?k, "garbage collecting: all owners are gone");
                delete_background(cl, k);
            }
        } else if alive.len() < owners.len()
            && let Some(info) = cl.by_storage(&k.storage)
        {
            let _ = modify(cl, &info, &k.ns, &k.name, None, MANAGER, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str().is_some_and(|u| alive.contains(u)));
                }
                true
            });
        }
    }

    // Terminating namespaces.
    for (k, _) in objects
        .iter()
        .filter(|(k, v)| k.storage == "/namespaces" && deleting(v))
    {
        let content: Vec<&(ObjKey, Value)> = objects.iter().filter(|(ok, _)| ok.ns == k.name).collect();
        if content.is_empty() {
            let mut txn = cl.store.txn();
            txn.remove(k);
            continue;
        }
        for (ok, o) in content {
            if !deleting(o) {
                delete_background(cl, ok);
            }
        }
    }
}
