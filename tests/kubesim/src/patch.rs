//! The patch formats clients send: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch. The strategic form knows the merge keys of the lists the project's
//! types use (containers and env by name, ports, volumes, conditions by type, ownerReferences by
//! uid, finalizers as a set) and the directives `kubectl apply` emits (`$patch`,
//! `$setElementOrder/…`, `$deleteFromPrimitiveList/…`, `$retainKeys`); other lists are replaced.

use serde_json::{Map, Value};

/// RFC 7386 merge patch: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(vec![]);
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {pointer:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String], path: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in &toks[..toks.len() - 1] {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path:?}: missing value"))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let toks = tokens(path)?;
    let Some(last) = toks.last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, &toks, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|e| e.to_string())?
            };
            if i > a.len() {
                return Err(format!("add operation does not apply: doc is missing path: {path:?}"));
            }
            a.insert(i, value);
        }
        _ => return Err(format!("add operation does not apply: doc is missing path: {path:?}")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let toks = tokens(path)?;
    let last = toks.last().ok_or("cannot remove the whole document")?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path:?}");
    match parent_mut(doc, &toks, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            if i < a.len() { Ok(a.remove(i)) } else { Err(missing()) }
        }
        _ => Err(missing()),
    }
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<Option<&'a Value>, String> {
    Ok(doc.pointer(path).or(if path.is_empty() { Some(doc) } else { None }))
}

/// RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let kind = op["op"].as_str().ok_or("operation is missing \"op\"")?;
        let path = op["path"].as_str().ok_or("operation is missing \"path\"")?;
        match kind {
            "add" => add(
                doc,
                path,
                op.get("value").cloned().ok_or("add operation is missing \"value\"")?,
            )?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or("replace operation is missing \"value\"")?;
                if get(doc, path)?.is_none() {
                    return Err(format!("replace operation does not apply: doc is missing key: {path}"));
                }
                if path.is_empty() {
                    *doc = value;
                } else {
                    remove(doc, path)?;
                    add(doc, path, value)?;
                }
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("operation is missing \"from\"")?;
                let value = if kind == "move" {
                    remove(doc, from)?
                } else {
                    get(doc, from)?
                        .cloned()
                        .ok_or_else(|| format!("copy from missing path {from:?}"))?
                };
                add(doc, path, value)?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                if get(doc, path)?.cloned().unwrap_or(Value::Null) != want {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

/// The merge key of a list field, for strategic merge patch.
fn merge_key(field: &str, path: &[String]) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => "name",
        "ports" if path.iter().any(|p| p.ends_with("ontainers")) => "containerPort",
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge patch of `patch` into `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    smp(target, patch, &mut Vec::new())
}

fn smp(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Array(items) if is_set_list(k) => {
                let mut list = slot.as_array().cloned().unwrap_or_default();
                for i in items {
                    if !list.contains(i) {
                        list.push(i.clone());
                    }
                }
                *slot = Value::Array(list);
            }
            Value::Array(items) => match merge_key(k, path) {
                Some(key) if items.iter().all(Value::is_object) => merge_list(slot, items, key, path)?,
                _ => *slot = Value::Array(items.iter().filter(|i| i.get("$patch").is_none()).cloned().collect()),
            },
            Value::Object(_) => smp(slot, v, path)?,
            _ => *slot = v.clone(),
        }
        if slot.is_null() {
            t.remove(k);
        }
        path.pop();
    }
    Ok(())
}

fn merge_list(slot: &mut Value, items: &[Value], key: &str, path: &mut Vec<String>) -> Result<(), String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *slot = Value::Array(items.iter().filter(|i| i.get("$patch").is_none()).cloned().collect());
        return Ok(());
    }
    let mut list = slot.as_array().cloned().unwrap_or_default();
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(format!("map: {item} does not contain declared merge key: {key}"));
        };
        let pos = list.iter().position(|e| e.get(key) == Some(id));
        match (pos, item.get("$patch").and_then(Value::as_str)) {
            (Some(i), Some("delete")) => {
                list.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => smp(&mut list[i], item, path)?,
            (None, _) => {
                let mut fresh = Value::Object(Map::new());
                smp(&mut fresh, item, path)?;
                list.push(fresh);
            }
        }
    }
    *slot = Value::Array(list);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut d = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut d, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(d, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"metadata": {"finalizers": ["a"]}, "spec": {"x": 1}});
        json_patch(
            &mut d,
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": ["a"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
                {"op": "replace", "path": "/spec/x", "value": 2},
                {"op": "move", "from": "/spec/x", "path": "/spec/y"},
                {"op": "remove", "path": "/metadata/finalizers/0"}
            ]),
        )
        .unwrap();
        assert_eq!(d, json!({"metadata": {"finalizers": ["b"]}, "spec": {"y": 2}}));
        assert!(json_patch(&mut d, &json!([{"op": "test", "path": "/spec/y", "value": 3}])).is_err());
    }

    #[test]
    fn strategic_merges_lists_by_key() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}],
                                     "tolerations": [{"key": "k"}]},
                           "metadata": {"finalizers": ["f1"]}});
        strategic_merge(
            &mut d,
            &json!({"$setElementOrder/containers": [{"name": "a"}],
                    "spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]},
                                            {"name": "b", "image": "y"}],
                             "tolerations": [{"key": "j"}]},
                    "metadata": {"finalizers": ["f2"], "$deleteFromPrimitiveList/finalizers": ["f1"]}}),
        )
        .unwrap();
        assert_eq!(d["spec"]["containers"][0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(d["spec"]["containers"][1]["name"], "b");
        assert_eq!(d["spec"]["tolerations"], json!([{"key": "j"}]));
        assert_eq!(d["metadata"]["finalizers"], json!(["f2"]));
    }
}
