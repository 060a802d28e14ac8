//! What the API server does per kind on writes: defaulting (Pods, Jobs, Services, Secrets,
//! Namespaces, CRDs), normalisation (`stringData` into `data`), validation and immutability, the
//! CRD status the server maintains, and custom resources against their schema. Pods and Jobs are
//! in [`crate::workloads`].

use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::objects::{FieldValidation, WriteOpts};
use crate::registry::{ResourceInfo, Special};
use crate::state::Cluster;
use crate::util::{meta_str, now_rfc3339};
use crate::validate::{NameRule, metadata_errors};
use crate::workloads::{default_job, default_pod_spec, job_errors, pod_spec_errors, pod_spec_mutable_part, qos_class};

fn name_rule(info: &ResourceInfo) -> NameRule {
    match info.special {
        Special::Namespace => NameRule::Label,
        Special::Service => NameRule::Dns1035,
        _ => NameRule::Subdomain,
    }
}

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

/// Defaults, normalises and validates a new object.
pub fn on_create(cl: &Cluster, info: &ResourceInfo, obj: &mut Value, w: &mut WriteOpts) -> ApiResult<()> {
    match info.special {
        Special::Pod => default_pod_spec(&mut obj["spec"]),
        Special::Job => default_job(obj),
        Special::Secret => secret_data(info, obj)?,
        Special::Service => default_service(cl, obj),
        Special::Namespace => {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = Value::String(name);
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        Special::Crd => default_crd(obj),
        _ => {}
    }
    if info.special == Special::Pod {
        obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])});
        schedule(cl, obj);
    }
    validate(info, None, obj, w)
}

/// The scheduler: binds a new pod to the node, unless `--unschedulable-pods` selects it (then
/// it stays Pending with the condition the real scheduler reports).
fn schedule(cl: &Cluster, obj: &mut Value) {
    if obj["spec"].get("nodeName").is_some_and(|n| n.as_str() != Some("")) {
        return;
    }
    if cl.cfg.unschedulable.as_ref().is_some_and(|sel| sel.matches(obj)) {
        obj["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "False", "lastProbeTime": null, "lastTransitionTime": now_rfc3339(),
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
                        1 No preemption victims found for incoming pod.",
        }]);
    } else {
        obj["spec"]["nodeName"] = json!(cl.cfg.node);
    }
}

/// Normalises and validates an update of `old` to `new`.
pub fn on_update(_cl: &Cluster, info: &ResourceInfo, old: &Value, new: &mut Value, w: &mut WriteOpts) -> ApiResult<()> {
    match info.special {
        Special::Secret => secret_data(info, new)?,
        Special::Pod => default_pod_spec(&mut new["spec"]),
        Special::Job => {
            if let Some(tpl) = new["spec"].get_mut("template") {
                default_pod_spec(&mut tpl["spec"]);
            }
        }
        Special::Crd => default_crd(new),
        _ => {}
    }
    validate(info, Some(old), new, w)
}

fn validate(info: &ResourceInfo, old: Option<&Value>, obj: &mut Value, w: &mut WriteOpts) -> ApiResult<()> {
    let mut errs = metadata_errors(obj, name_rule(info));
    match info.special {
        Special::Pod => {
            errs.extend(pod_spec_errors("spec", &obj["spec"], &["Always", "OnFailure", "Never"]));
            if let Some(old) = old
                && pod_spec_mutable_part(&old["spec"]) != pod_spec_mutable_part(&obj["spec"])
            {
                errs.push(FieldError::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        Special::Job => errs.extend(job_errors(old, obj)),
        Special::Secret => errs.extend(secret_errors(old, obj)),
        Special::Service => errs.extend(service_errors(old, obj)),
        Special::Crd => errs.extend(crd_errors(obj)),
        Special::Custom => {
            if let Some(schema) = &info.schema {
                let out = crate::schema::process(obj, schema);
                if !out.unknown.is_empty() {
                    match w.validation {
                        FieldValidation::Strict => {
                            let fields: Vec<String> =
                                out.unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                            return Err(ApiError::bad_request(format!(
                                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                                info.kind,
                                info.version,
                                info.kind,
                                fields.join(", ")
                            )));
                        }
                        FieldValidation::Warn => w
                            .warnings
                            .extend(out.unknown.iter().map(|f| format!("unknown field \"{f}\""))),
                        FieldValidation::Ignore => {}
                    }
                }
                errs.extend(out.errors);
            }
        }
        _ => {}
    }
    invalid(info, obj, errs)
}

fn secret_data(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        for (k, v) in sd {
            let text = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
            obj["data"][k] = Value::String(b64.encode(text));
        }
    }
    for (_, v) in obj["data"].as_object().into_iter().flatten() {
        let ok = v.as_str().map(|s| b64.decode(s));
        if let Some(Err(e)) = ok {
            return Err(ApiError::bad_request(format!(
                "{} in version \"v1\" cannot be handled as a {}: illegal base64 data: {e}",
                info.kind, info.kind
            )));
        }
        if ok.is_none() && !v.is_null() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"v1\" cannot be handled as a {}: json: cannot unmarshal {} into Go struct field Secret.data of type []uint8",
                info.kind, info.kind, v
            )));
        }
    }
    if obj["type"].as_str().is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

fn secret_errors(old: Option<&Value>, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut size = 0;
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            errs.push(FieldError::invalid("data", &Value::String(k.clone()), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
        }
        size += v.as_str().map(|s| s.len() * 3 / 4).unwrap_or(0);
    }
    if size > 1024 * 1024 {
        errs.push(FieldError {
            kind: "FieldValueTooLong",
            field: "data".into(),
            message: "Too long: must have at most 1048576 bytes".into(),
        });
    }
    if let Some(old) = old {
        if old["type"] != obj["type"] {
            errs.push(FieldError::immutable("type", &obj["type"]));
        }
        if old["immutable"].as_bool() == Some(true) {
            if old["data"] != obj["data"] {
                errs.push(FieldError::forbidden(
                    "data",
                    "field is immutable when `immutable` is set",
                ));
            }
            if obj["immutable"].as_bool() != Some(true) {
                errs.push(FieldError::forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errs
}

fn default_service(cl: &Cluster, obj: &mut Value) {
    let spec = &mut obj["spec"];
    let Some(s) = spec.as_object_mut() else { return };
    s.entry("type").or_insert(json!("ClusterIP"));
    s.entry("sessionAffinity").or_insert(json!("None"));
    s.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
    s.entry("ipFamilies").or_insert(json!(["IPv4"]));
    s.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
    if s.get("clusterIP").and_then(Value::as_str).is_none_or(str::is_empty) {
        s.insert("clusterIP".into(), json!(cl.next_cluster_ip()));
    }
    let ip = s["clusterIP"].clone();
    s.insert("clusterIPs".into(), json!([ip]));
    for p in s.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(p) = p.as_object_mut() {
            p.entry("protocol").or_insert(json!("TCP"));
            let port = p.get("port").cloned().unwrap_or(Value::Null);
            p.entry("targetPort").or_insert(port);
        }
    }
    obj["status"] = json!({"loadBalancer": {}});
}

fn service_errors(old: Option<&Value>, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
    for (i, p) in ports.iter().enumerate() {
        if p["port"].as_i64().is_none_or(|n| !(1..=65535).contains(&n)) {
            errs.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                &p["port"],
                "must be between 1 and 65535, inclusive",
            ));
        }
        if ports.len() > 1 && p["name"].as_str().is_none_or(str::is_empty) {
            errs.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
        }
    }
    if let Some(old) = old
        && obj["spec"]["clusterIP"].as_str().is_some_and(|s| !s.is_empty())
        && old["spec"]["clusterIP"] != obj["spec"]["clusterIP"]
    {
        errs.push(FieldError::immutable("spec.clusterIP", &obj["spec"]["clusterIP"]));
    }
    errs
}

fn default_crd(obj: &mut Value) {
    let names = &mut obj["spec"]["names"];
    if let Some(n) = names.as_object_mut() {
        let kind = n.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        n.entry("singular").or_insert(json!(kind.to_ascii_lowercase()));
        n.entry("listKind").or_insert(json!(format!("{kind}List")));
    }
    let names = obj["spec"]["names"].clone();
    let stored: Vec<Value> = obj["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let now = now_rfc3339();
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts",
             "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted"}
        ]
    });
}

fn crd_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let name = meta_str(obj, "name").unwrap_or_default();
    if name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &obj["metadata"]["name"],
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    for f in ["plural", "kind"] {
        if spec["names"][f].as_str().is_none_or(str::is_empty) {
            errs.push(FieldError::required(format!("spec.names.{f}"), ""));
        }
    }
    if !["Namespaced", "Cluster"].contains(&spec["scope"].as_str().unwrap_or_default()) {
        errs.push(FieldError::unsupported(
            "spec.scope",
            &spec["scope"],
            &["Cluster", "Namespaced"],
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else if versions.iter().filter(|v| v["storage"].as_bool() == Some(true)).count() != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            &spec["versions"],
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v["schema"].get("openAPIV3Schema").is_none() {
            errs.push(FieldError::required(
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        } else if v["schema"]["openAPIV3Schema"]["type"].as_str() != Some("object") {
            errs.push(FieldError::invalid(
                format!("spec.versions[{i}].schema.openAPIV3Schema.type"),
                &v["schema"]["openAPIV3Schema"]["type"],
                "must be object at the root",
            ));
        }
    }
    errs
}
