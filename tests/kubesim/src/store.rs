//! The object store: JSON objects keyed by (storage resource, namespace, name), one global
//! `resourceVersion` counter bumped by every write, and a bounded log of the changes that
//! watches replay and that lists at an exact older `resourceVersion` rewind. Objects are also
//! written to `DATA/objects/` (one JSON file each) so a restarted kubesim keeps its state and
//! tests can inspect what was stored.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::util::meta_mut;

/// Where an object lives: storage resource (`group/resource`, `/pods` for core), namespace
/// (empty for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// `group/resource` (see [`crate::registry::ResourceInfo::storage`]).
    pub storage: String,
    /// Namespace, empty for cluster-scoped objects.
    pub ns: String,
    /// Object name.
    pub name: String,
}

impl ObjKey {
    /// Builds a key.
    pub fn new(storage: &str, ns: &str, name: &str) -> Self {
        ObjKey {
            storage: storage.into(),
            ns: ns.into(),
            name: name.into(),
        }
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of the store.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// What happened.
    pub ty: EventType,
    /// Which object.
    pub key: ObjKey,
    /// The object after the change (for `Deleted`, its last state, stamped with `rv`).
    pub object: Value,
    /// The object before the change (for `Modified` and `Deleted`).
    pub old: Option<Value>,
}

/// The history needed is gone (answered as 410 Gone).
#[derive(Debug, Clone, Copy)]
pub struct Compacted {
    /// Oldest resourceVersion still answerable.
    pub oldest: u64,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<ObjKey, Value>,
    log: VecDeque<Arc<Change>>,
    capacity: usize,
    /// Changes with `rv <= compacted` are no longer in the log.
    compacted: u64,
    dir: Option<PathBuf>,
}

/// The store; cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    notify: tokio::sync::watch::Sender<u64>,
}

/// Exclusive access to the store; watchers are woken when it is dropped after writes.
pub struct Txn<'a> {
    guard: MutexGuard<'a, Inner>,
    start_rv: u64,
    notify: &'a tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// An empty store that keeps `capacity` changes for watches; with `dir`, objects are
    /// persisted there and loaded from it.
    pub fn open(dir: Option<&Path>, capacity: usize) -> std::io::Result<Store> {
        let mut inner = Inner {
            rv: 1,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            capacity: capacity.max(1),
            compacted: 1,
            dir: dir.map(Path::to_path_buf),
        };
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
            load(dir, &mut inner)?;
        }
        let (notify, _) = tokio::sync::watch::channel(inner.rv);
        Ok(Store {
            inner: Mutex::new(inner),
            notify,
        })
    }

    /// Locks the store for reads and writes.
    pub fn txn(&self) -> Txn<'_> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let start_rv = guard.rv;
        Txn {
            guard,
            start_rv,
            notify: &self.notify,
        }
    }

    /// A receiver that changes whenever the store is written.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.guard.rv != self.start_rv {
            self.notify.send_replace(self.guard.rv);
        }
    }
}

impl Txn<'_> {
    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.guard.rv
    }

    /// The oldest resourceVersion from which the history is complete.
    pub fn compacted(&self) -> u64 {
        self.guard.compacted
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.guard.objects.get(key)
    }

    /// The objects of a storage resource, optionally of one namespace, in key order.
    pub fn list<'s>(&'s self, storage: &'s str, ns: Option<&'s str>) -> impl Iterator<Item = (&'s ObjKey, &'s Value)> {
        let start = ObjKey::new(storage, ns.unwrap_or(""), "");
        self.guard
            .objects
            .range(start..)
            .take_while(move |(k, _)| k.storage == storage && ns.is_none_or(|n| k.ns == n))
    }

    /// Every object of the store.
    pub fn all(&self) -> impl Iterator<Item = (&ObjKey, &Value)> {
        self.guard.objects.iter()
    }

    fn record(&mut self, change: Change) {
        let inner = &mut *self.guard;
        inner.log.push_back(Arc::new(change));
        while inner.log.len() > inner.capacity {
            if let Some(c) = inner.log.pop_front() {
                inner.compacted = c.rv;
            }
        }
    }

    /// Stores an object (create or replace), stamping a new resourceVersion; returns it.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.guard.rv += 1;
        let rv = self.guard.rv;
        meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let old = self.guard.objects.insert(key.clone(), obj.clone());
        persist(&self.guard.dir, &key, Some(&obj));
        let ty = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change {
            rv,
            ty,
            key,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Removes an object; returns its last state, stamped with the deletion's resourceVersion.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let old = self.guard.objects.remove(key)?;
        self.guard.rv += 1;
        let rv = self.guard.rv;
        let mut last = old.clone();
        meta_mut(&mut last).insert("resourceVersion".into(), Value::String(rv.to_string()));
        persist(&self.guard.dir, key, None);
        self.record(Change {
            rv,
            ty: EventType::Deleted,
            key: key.clone(),
            object: last.clone(),
            old: Some(old),
        });
        Some(last)
    }

    /// The changes of `storage` after `rv`, oldest first.
    pub fn changes_since(&self, storage: &str, rv: u64) -> Result<Vec<Arc<Change>>, Compacted> {
        if rv < self.guard.compacted {
            return Err(Compacted {
                oldest: self.guard.compacted,
            });
        }
        let log = &self.guard.log;
        let start = log.partition_point(|c| c.rv <= rv);
        Ok(log
            .range(start..)
            .filter(|c| c.key.storage == storage)
            .cloned()
            .collect())
    }

    /// The objects of `storage` (optionally one namespace) as they were at `rv`, by rewinding
    /// the change log from the current state.
    pub fn list_at(&self, storage: &str, ns: Option<&str>, rv: u64) -> Result<Vec<(ObjKey, Value)>, Compacted> {
        if rv < self.guard.compacted {
            return Err(Compacted {
                oldest: self.guard.compacted,
            });
        }
        let mut state: BTreeMap<ObjKey, Value> = self.list(storage, ns).map(|(k, v)| (k.clone(), v.clone())).collect();
        for c in self.guard.log.iter().rev().take_while(|c| c.rv > rv) {
            if c.key.storage != storage || ns.is_some_and(|n| c.key.ns != n) {
                continue;
            }
            match (&c.ty, &c.old) {
                (EventType::Added, _) => {
                    state.remove(&c.key);
                }
                (_, Some(old)) => {
                    state.insert(c.key.clone(), old.clone());
                }
                _ => {}
            }
        }
        Ok(state.into_iter().collect())
    }
}

fn file_of(dir: &Path, key: &ObjKey) -> PathBuf {
    let (group, resource) = key.storage.split_once('/').unwrap_or(("", &key.storage));
    let group = if group.is_empty() { "core" } else { group };
    let ns = if key.ns.is_empty() { "_cluster" } else { &key.ns };
    dir.join(group)
        .join(resource)
        .join(ns)
        .join(format!("{}.json", key.name))
}

fn persist(dir: &Option<PathBuf>, key: &ObjKey, obj: Option<&Value>) {
    let Some(dir) = dir else { return };
    let path = file_of(dir, key);
    let result = match obj {
        Some(obj) => path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| std::fs::write(&path, serde_json::to_vec_pretty(obj).unwrap_or_default())),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "could not persist object");
    }
}

fn load(dir: &Path, inner: &mut Inner) -> std::io::Result<()> {
    let read = |p: &Path| -> std::io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        v.sort();
        Ok(v)
    };
    for g in read(dir)? {
        for r in read(&g)? {
            for n in read(&r)? {
                for f in read(&n)? {
                    let Some(name) = f
                        .file_name()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.strip_suffix(".json"))
                    else {
                        continue;
                    };
                    let Ok(obj) = serde_json::from_slice::<Value>(&std::fs::read(&f)?) else {
                        continue;
                    };
                    let group = g.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                    let group = if group == "core" { "" } else { group };
                    let resource = r.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                    let ns = n.file_name().and_then(|s| s.to_str()).unwrap_or_default();
                    let ns = if ns == "_cluster" { "" } else { ns };
                    let rv = crate::util::meta_str(&obj, "resourceVersion")
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0);
                    inner.rv = inner.rv.max(rv);
                    inner
                        .objects
                        .insert(ObjKey::new(&format!("{group}/{resource}"), ns, name), obj);
                }
            }
        }
    }
    inner.compacted = inner.rv;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewinds_and_compacts() {
        let store = Store::open(None, 3).unwrap();
        let k = ObjKey::new("/pods", "default", "a");
        let mut t = store.txn();
        t.put(k.clone(), json!({"metadata": {"name": "a"}, "v": 1}));
        let rv1 = t.rv();
        t.put(k.clone(), json!({"metadata": {"name": "a"}, "v": 2}));
        let at = t.list_at("/pods", None, rv1).unwrap();
        assert_eq!(at[0].1["v"], 1);
        t.remove(&k);
        assert!(t.list_at("/pods", None, t.rv()).unwrap().is_empty());
        assert_eq!(t.changes_since("/pods", rv1).unwrap().len(), 2);
        t.put(ObjKey::new("/pods", "default", "b"), json!({}));
        assert!(t.changes_since("/pods", 1).is_err());
    }
}
