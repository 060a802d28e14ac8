//! Field ownership (`metadata.managedFields`) and server-side apply. Every write records which
//! manager set which fields; an apply merges the manager's configuration, removes the fields it
//! applied before and no longer does (unless another manager owns them), and refuses to change
//! fields another manager owns (409 Conflict) unless `force` is set, which takes them over.
//! Fields are tracked down to scalars; lists are atomic (owned as a whole).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::util::now_rfc3339;

/// A field: the keys leading to it.
pub type FieldPath = Vec<String>;

const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

fn tracked(path: &[String]) -> bool {
    match path {
        [] => false,
        [k] if k == "apiVersion" || k == "kind" => false,
        [m, k, ..] if m == "metadata" => !SERVER_META.contains(&k.as_str()),
        _ => true,
    }
}

/// The owned leaves of a value: scalars and lists (atomic), not empty objects.
pub fn leaves(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    path.push(k.clone());
                    walk(c, path, out);
                    path.pop();
                }
            }
            Value::Null => {}
            _ => {
                if tracked(path) {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// `fieldsV1` for a set of fields.
pub fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            cur = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("object");
        }
    }
    Value::Object(root)
}

/// The fields of a `fieldsV1` (entries other than `f:` make their parent a leaf).
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Some(m) = v.as_object() else { return };
        let named: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if (m.is_empty() || named.len() < m.iter().filter(|(k, _)| *k != ".").count()) && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, c) in named {
            path.push(k[2..].to_string());
            walk(c, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    sub: Option<String>,
    fields: BTreeSet<FieldPath>,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().into(),
            operation: e["operation"].as_str().unwrap_or("Update").into(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
            time: e["time"].as_str().unwrap_or_default().into(),
            sub: e["subresource"].as_str().map(String::from),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn store_entries(obj: &mut Value, list: Vec<Entry>) {
    let arr: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = e.sub {
                v["subresource"] = Value::String(s);
            }
            v
        })
        .collect();
    let meta = crate::util::meta_mut(obj);
    if arr.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(arr));
    }
}

fn upsert<'a>(
    list: &'a mut Vec<Entry>,
    manager: &str,
    op: &str,
    sub: Option<&str>,
    api_version: &str,
) -> &'a mut Entry {
    let pos = list
        .iter()
        .position(|e| e.manager == manager && e.operation == op && e.sub.as_deref() == sub);
    let i = match pos {
        Some(i) => i,
        None => {
            list.push(Entry {
                manager: manager.into(),
                operation: op.into(),
                api_version: api_version.into(),
                time: String::new(),
                sub: sub.map(String::from),
                fields: BTreeSet::new(),
            });
            list.len() - 1
        }
    };
    let e = &mut list[i];
    e.time = now_rfc3339();
    e.api_version = api_version.into();
    e
}

/// Records an `Update` by `manager` from `old` (absent on create) to `new`: the changed fields
/// become the manager's and leave every other manager.
/// With `status_split` (resources with a status subresource), a status write only owns status
/// fields and a main-resource write none.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    sub: Option<&str>,
    api_version: &str,
    status_split: bool,
) {
    let empty = Value::Null;
    let old = old.unwrap_or(&empty);
    let mut list = entries(old);
    let all: BTreeSet<FieldPath> = leaves(old).union(&leaves(new)).cloned().collect();
    let in_scope = |p: &FieldPath| !status_split || (p[0] == "status") == (sub == Some("status"));
    let changed: Vec<FieldPath> = all
        .into_iter()
        .filter(|p| in_scope(p) && get(old, p) != get(new, p))
        .collect();
    if changed.is_empty() {
        store_entries(new, list);
        return;
    }
    for e in list.iter_mut() {
        e.fields.retain(|f| !changed.iter().any(|c| overlaps(c, f)));
    }
    let mine = upsert(&mut list, manager, "Update", sub, api_version);
    for c in changed {
        if get(new, &c).is_some() {
            mine.fields.insert(c);
        }
    }
    store_entries(new, list);
}

fn deep_merge(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    t.remove(k);
                } else {
                    deep_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

fn remove_field(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(Value::Object(m)) = parents.iter().try_fold(&mut *obj, |v, k| v.get_mut(k)) {
        m.remove(last);
    }
    // Drop maps the removal emptied, below the top level.
    for depth in (2..path.len()).rev() {
        let parent = &path[..depth];
        if get(obj, parent).and_then(Value::as_object).is_some_and(Map::is_empty) {
            remove_field_shallow(obj, parent);
        }
    }
}

fn remove_field_shallow(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(Value::Object(m)) = parents.iter().try_fold(&mut *obj, |v, k| v.get_mut(k)) {
        m.remove(last);
    }
}

/// What an apply request asks for.
pub struct ApplyRequest<'a> {
    /// The field manager (required for apply).
    pub manager: &'a str,
    /// `Some("status")` for the status subresource.
    pub sub: Option<&'a str>,
    /// Take over conflicting fields.
    pub force: bool,
    /// apiVersion of the request.
    pub api_version: &'a str,
}

/// Server-side apply of `config` onto `current` (an empty object when the object is missing).
/// Returns the merged object, or the conflicts as (manager, field) pairs.
pub fn apply(current: &Value, config: &Value, req: &ApplyRequest) -> Result<Value, Vec<(String, String)>> {
    let mut list = entries(current);
    let applied = leaves(config);
    let mut conflicts = Vec::new();
    for e in &list {
        if e.manager == req.manager && e.operation == "Apply" && e.sub.as_deref() == req.sub {
            continue;
        }
        for f in &e.fields {
            for p in applied.iter().filter(|p| overlaps(p, f)) {
                let at = if p.len() <= f.len() { p } else { f };
                if get(current, at) != get(config, at) {
                    conflicts.push((e.manager.clone(), format!(".{}", p.join("."))));
                }
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        conflicts.sort();
        conflicts.dedup();
        return Err(conflicts);
    }
    let mut obj = current.clone();
    let previous: BTreeSet<FieldPath> = list
        .iter()
        .find(|e| e.manager == req.manager && e.operation == "Apply" && e.sub.as_deref() == req.sub)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for e in list.iter_mut() {
        if !(e.manager == req.manager && e.operation == "Apply" && e.sub.as_deref() == req.sub) {
            e.fields.retain(|f| !applied.iter().any(|p| overlaps(p, f)));
        }
    }
    for gone in previous.difference(&applied) {
        let owned_elsewhere = list.iter().any(|e| {
            !(e.manager == req.manager && e.operation == "Apply") && e.fields.iter().any(|f| overlaps(f, gone))
        });
        if !owned_elsewhere && !applied.iter().any(|p| overlaps(p, gone)) {
            remove_field(&mut obj, gone);
        }
    }
    let mut cfg = config.clone();
    if let Some(m) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    deep_merge(&mut obj, &cfg);
    upsert(&mut list, req.manager, "Apply", req.sub, req.api_version).fields = applied;
    store_entries(&mut obj, list);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager: m,
            sub: None,
            force,
            api_version: "v1",
        }
    }

    #[test]
    fn apply_owns_removes_and_conflicts() {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}},
                         "data": {"x": "1", "y": "2"}});
        let obj = apply(&json!({}), &cfg, &req("one", false)).unwrap();
        assert_eq!(obj["data"]["y"], "2");
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "one");
        assert_eq!(mf["operation"], "Apply");
        assert!(mf["fieldsV1"]["f:data"]["f:x"].is_object());
        // Dropping y from the config removes it.
        let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
        let obj2 = apply(&obj, &cfg2, &req("one", false)).unwrap();
        assert!(obj2["data"].get("y").is_none());
        assert!(obj2["metadata"].get("labels").is_none());
        // Another manager changing x conflicts, unless forced.
        let cfg3 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "9"}});
        let err = apply(&obj2, &cfg3, &req("two", false)).unwrap_err();
        assert_eq!(err, vec![("one".to_string(), ".data.x".to_string())]);
        let obj3 = apply(&obj2, &cfg3, &req("two", true)).unwrap();
        assert_eq!(obj3["data"]["x"], "9");
        // The same value is shared, not a conflict.
        let cfg4 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "9"}});
        assert!(apply(&obj3, &cfg4, &req("three", false)).is_ok());
    }

    #[test]
    fn updates_take_fields_over() {
        let mut new = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
        record_update(None, &mut new, "kubectl", None, "v1", false);
        let old = new.clone();
        let mut newer = old.clone();
        newer["spec"]["x"] = json!(2);
        record_update(Some(&old), &mut newer, "other", None, "v1", false);
        let mf = newer["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0]["manager"], "other");
    }
}
