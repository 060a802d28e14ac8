//! How objects are served and stored per resource: `events.k8s.io/v1` Events are a converted
//! view of the stored `v1` Events (validated as the newer API requires), and custom resources are
//! served with the `apiVersion` of the version asked for.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::registry::{ResourceInfo, Special};
use crate::util::meta_str;

fn invalid(info: &ResourceInfo, obj: &Value, errs: Vec<FieldError>) -> ApiResult<()> {
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        &info.group,
        &info.kind,
        meta_str(obj, "name").unwrap_or(""),
        errs,
    ))
}

/// The stored form of an object written through `info` (`events.k8s.io/v1` Events become `v1`).
pub fn view_in(info: &ResourceInfo, obj: Value) -> ApiResult<Value> {
    if info.special != Special::EventV1 {
        return Ok(obj);
    }
    let mut errs = Vec::new();
    for f in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if obj.get(f).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            errs.push(FieldError::required(f, ""));
        }
    }
    if let Some(t) = obj.get("type")
        && !["Normal", "Warning"].contains(&t.as_str().unwrap_or_default())
    {
        errs.push(FieldError::unsupported("type", t, &["Normal", "Warning"]));
    }
    if obj["note"].as_str().is_some_and(|n| n.len() > 1024) {
        errs.push(FieldError {
            kind: "FieldValueTooLong",
            field: "note".into(),
            message: "Too long: may not be more than 1024 bytes".into(),
        });
    }
    invalid(info, &obj, errs)?;
    let mut core = Map::new();
    core.insert("apiVersion".into(), json!("v1"));
    core.insert("kind".into(), json!("Event"));
    for (v1, c) in EVENT_FIELDS {
        if let Some(v) = obj.get(*v1).filter(|v| !v.is_null()) {
            core.insert((*c).into(), v.clone());
        }
    }
    Ok(Value::Object(core))
}

/// (events.k8s.io/v1 field, v1 field).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("metadata", "metadata"),
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("type", "type"),
    ("reason", "reason"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
];

/// An object as served through `info`: the `apiVersion` of the version asked for, Events
/// converted for `events.k8s.io/v1`.
pub fn view_out(info: &ResourceInfo, obj: &Value) -> Value {
    if info.special == Special::EventV1 {
        let mut v1 = Map::new();
        v1.insert("apiVersion".into(), json!("events.k8s.io/v1"));
        v1.insert("kind".into(), json!("Event"));
        for (f, c) in EVENT_FIELDS {
            if let Some(v) = obj.get(*c).filter(|v| !v.is_null()) {
                v1.insert((*f).into(), v.clone());
            }
        }
        return Value::Object(v1);
    }
    let mut out = obj.clone();
    if info.is_custom()
        && let Some(m) = out.as_object_mut()
    {
        m.insert("apiVersion".into(), Value::String(info.api_version()));
    }
    out
}
