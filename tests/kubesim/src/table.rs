//! Server-side printing: `Table` responses (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`)
//! as `kubectl get` asks for them. Custom resources get `Name` plus the CRD's
//! `additionalPrinterColumns` (evaluated as simple JSONPath, dates printed as ages); built-ins get
//! the columns kubectl shows for them; anything else gets `Name` and `Age`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::registry::{Column, ResourceInfo, Special, age_column};
use crate::util::{age, get_path, human_duration, meta_str, now_secs, parse_rfc3339};

/// What a Table row carries as `object` (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

fn col(name: &str, ty: &str, priority: i64) -> Column {
    Column {
        name: name.into(),
        ty: ty.into(),
        format: String::new(),
        description: String::new(),
        priority,
        json_path: String::new(),
    }
}

/// The columns of a resource's Table, `Name` first.
pub fn columns(info: &ResourceInfo) -> Vec<Column> {
    let mut name = col("Name", "string", 0);
    name.format = "name".into();
    name.description = "Name must be unique within a namespace. Is required when creating resources, although some \
                        resources may allow a client to request the generation of an appropriate name automatically. \
                        Name is primarily intended for creation idempotence and configuration definition. Cannot be \
                        updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
        .into();
    let rest = match (info.special, info.resource.as_str()) {
        (Special::Custom, _) => info.columns.clone(),
        (Special::Pod, _) => vec![
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            col("Age", "string", 0),
            col("IP", "string", 1),
            col("Node", "string", 1),
        ],
        (Special::Job, _) => vec![
            col("Status", "string", 0),
            col("Completions", "string", 0),
            col("Duration", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        (Special::Secret, _) => vec![
            col("Type", "string", 0),
            col("Data", "string", 0),
            col("Age", "string", 0),
        ],
        (Special::Service, _) => vec![
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            col("Age", "string", 0),
            col("Selector", "string", 1),
        ],
        (Special::Namespace, _) => vec![col("Status", "string", 0), col("Age", "string", 0)],
        (Special::Crd, _) => vec![col("Created At", "date", 0)],
        (Special::Event | Special::EventV1, _) => {
            return vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ];
        }
        (_, "configmaps") => vec![col("Data", "string", 0), col("Age", "string", 0)],
        _ => vec![age_column()],
    };
    std::iter::once(name).chain(rest).collect()
}

/// Evaluates a simple JSONPath (`.a.b`, `.a[0]`, `.a['x.y']`, `.a[?(@.type=="Ready")].status`).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}').trim();
    let mut cur = obj;
    let mut rest = p.strip_prefix('$').unwrap_or(p);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if !key.is_empty() {
                cur = cur.get(key)?;
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs) = filter.split_once("==")?;
                let field = lhs.trim().strip_prefix("@.")?;
                let want = rhs.trim().trim_matches(['"', '\'']);
                cur = cur.as_array()?.iter().find(|e| match get_path(e, field) {
                    Some(Value::String(s)) => s == want,
                    Some(v) => serde_json::from_str::<Value>(want).ok().as_ref() == Some(v),
                    None => false,
                })?;
            } else if inner == "*" {
                cur = cur.as_array()?.first()?;
            } else if let Ok(i) = inner.parse::<usize>() {
                cur = cur.get(i)?;
            } else {
                cur = cur.get(inner.trim_matches(['"', '\'']))?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn custom_cell(c: &Column, obj: &Value) -> Value {
    let Some(v) = json_path(obj, &c.json_path) else {
        return Value::Null;
    };
    match c.ty.as_str() {
        "date" => match v.as_str() {
            Some(s) if parse_rfc3339(s).is_some() => Value::String(age(Some(s))),
            _ => Value::String("<invalid>".into()),
        },
        "integer" | "number" if v.is_number() => v.clone(),
        "boolean" if v.is_boolean() => v.clone(),
        "string" => match v {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
        _ => v.clone(),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let total = obj["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
    let statuses: Vec<&Value> = obj["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let ready = statuses.iter().filter(|c| c["ready"].as_bool() == Some(true)).count();
    let restarts: i64 = statuses.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
    let mut status = obj["status"]["reason"]
        .as_str()
        .unwrap_or(obj["status"]["phase"].as_str().unwrap_or("Pending"))
        .to_string();
    for c in &statuses {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            status = r.into();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            status = r.into();
        }
    }
    if obj["metadata"].get("deletionTimestamp").is_some() {
        status = "Terminating".into();
    }
    vec![
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        json!(age(meta_str(obj, "creationTimestamp"))),
        json!(obj["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(obj["spec"]["nodeName"].as_str().unwrap_or("<none>")),
    ]
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

fn job_cells(obj: &Value) -> Vec<Value> {
    let st = &obj["status"];
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj["metadata"].get("deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if obj["spec"]["suspend"].as_bool() == Some(true) {
        "Suspended"
    } else {
        "Running"
    };
    let completions = match obj["spec"]["completions"].as_i64() {
        Some(c) => format!("{}/{c}", st["succeeded"].as_i64().unwrap_or(0)),
        None => format!(
            "{}/1 of {}",
            st["succeeded"].as_i64().unwrap_or(0),
            obj["spec"]["parallelism"].as_i64().unwrap_or(1)
        ),
    };
    let start = st["startTime"].as_str().and_then(parse_rfc3339);
    let end = st["completionTime"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or_else(now_secs);
    let duration = start
        .map(|s0| human_duration(Duration::from_secs((end - s0).max(0) as u64)))
        .unwrap_or_default();
    let containers = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| s(&c["image"])).collect();
    let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    vec![
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(meta_str(obj, "creationTimestamp"))),
        json!(names.join(",")),
        json!(images.join(",")),
        json!(selector.join(",")),
    ]
}

fn service_cells(obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
        .collect();
    let selector: Vec<String> = spec["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    vec![
        json!(spec["type"].as_str().unwrap_or("ClusterIP")),
        json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
        json!("<none>"),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(age(meta_str(obj, "creationTimestamp"))),
        json!(if selector.is_empty() {
            "<none>".to_string()
        } else {
            selector.join(",")
        }),
    ]
}

fn event_cells(obj: &Value) -> Vec<Value> {
    let regarding = if obj.get("regarding").is_some() {
        &obj["regarding"]
    } else {
        &obj["involvedObject"]
    };
    let last = obj["lastTimestamp"]
        .as_str()
        .or(obj["deprecatedLastTimestamp"].as_str())
        .or(obj["eventTime"].as_str())
        .or(obj["series"]["lastObservedTime"].as_str())
        .or(meta_str(obj, "creationTimestamp"));
    let message = obj["message"].as_str().or(obj["note"].as_str()).unwrap_or_default();
    vec![
        json!(age(last)),
        json!(s(&obj["type"])),
        json!(s(&obj["reason"])),
        json!(format!(
            "{}/{}",
            s(&regarding["kind"]).to_ascii_lowercase(),
            s(&regarding["name"])
        )),
        json!(message),
    ]
}

/// The cells of one object's row (without the leading name).
fn cells(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    let created = meta_str(obj, "creationTimestamp");
    match (info.special, info.resource.as_str()) {
        (Special::Custom, _) => info.columns.iter().map(|c| custom_cell(c, obj)).collect(),
        (Special::Pod, _) => pod_cells(obj),
        (Special::Job, _) => job_cells(obj),
        (Special::Event | Special::EventV1, _) => event_cells(obj),
        (Special::Service, _) => service_cells(obj),
        (Special::Secret, _) => vec![
            json!(s(&obj["type"])),
            json!(obj["data"].as_object().map(|d| d.len()).unwrap_or(0)),
            json!(age(created)),
        ],
        (Special::Namespace, _) => vec![
            json!(obj["status"]["phase"].as_str().unwrap_or("Active")),
            json!(age(created)),
        ],
        (Special::Crd, _) => vec![json!(created.unwrap_or_default())],
        (_, "configmaps") => vec![
            json!(
                obj["data"].as_object().map(|d| d.len()).unwrap_or(0)
                    + obj["binaryData"].as_object().map(|d| d.len()).unwrap_or(0)
            ),
            json!(age(created)),
        ],
        _ => vec![json!(age(created))],
    }
}

/// A Table row for an object (as served).
pub fn row(info: &ResourceInfo, obj: &Value, include: Include) -> Value {
    let mut cells_out = Vec::new();
    if !matches!(info.special, Special::Event | Special::EventV1) {
        cells_out.push(json!(meta_str(obj, "name").unwrap_or_default()));
    }
    cells_out.extend(cells(info, obj));
    let mut r = json!({"cells": cells_out});
    match include {
        Include::None => {}
        Include::Object => r["object"] = obj.clone(),
        Include::Metadata => r["object"] = partial_metadata(obj),
    }
    r
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"].clone()})
}

/// The column definitions of a Table.
pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    columns(info)
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "type": if c.ty == "date" { "string".to_string() } else { c.ty.clone() },
                   "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect()
}

/// A Table of objects.
pub fn table(info: &ResourceInfo, objs: &[Value], meta: Value, include: Include) -> Value {
    let rows: Vec<Value> = objs.iter().map(|o| row(info, o, include)).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
           "columnDefinitions": column_definitions(info), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let o = json!({"status": {"phase": "Running", "conditions": [{"type": "A", "status": "False"},
                                                                       {"type": "Ready", "status": "True"}]},
                       "metadata": {"labels": {"a.b/c": "x"}}});
        assert_eq!(json_path(&o, ".status.phase"), Some(&json!("Running")));
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&o, ".status.conditions[0].type"), Some(&json!("A")));
        assert_eq!(json_path(&o, ".metadata.labels['a.b/c']"), Some(&json!("x")));
        assert_eq!(json_path(&o, ".status.missing"), None);
    }
}
