//! Pods and Jobs on write: the defaults the API server fills (restart policy, grace period,
//! image pull policy, Job selector and template labels), QoS class, validation of pod specs
//! (containers, env, `secretKeyRef`, resources, restart policy) and of Jobs, and the fields of
//! both that cannot change.

use serde_json::{Value, json};

use crate::error::FieldError;
use crate::util::meta_str;
use crate::validate::{env_name_ok, resources_errors};

/// Fills the defaults of a pod spec the way the API server does.
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else { return };
    s.entry("restartPolicy").or_insert(json!("Always"));
    s.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("schedulerName").or_insert(json!("default-scheduler"));
    s.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        for c in s.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let Some(c) = c.as_object_mut() else { continue };
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let tag = image.rsplit('/').next().unwrap_or_default();
            let latest = !tag.contains(':') || tag.ends_with(":latest");
            let policy = if latest && !image.contains('@') {
                "Always"
            } else {
                "IfNotPresent"
            };
            c.entry("imagePullPolicy").or_insert(json!(policy));
        }
    }
}

/// The QoS class of a pod spec.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"].as_array().into_iter().flatten().collect();
    let any = containers.iter().any(|c| {
        c["resources"]["requests"].as_object().is_some_and(|m| !m.is_empty())
            || c["resources"]["limits"].as_object().is_some_and(|m| !m.is_empty())
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let r = &c["resources"];
        ["cpu", "memory"]
            .iter()
            .all(|k| r["limits"].get(k).is_some() && r["requests"].get(k).is_none_or(|q| Some(q) == r["limits"].get(k)))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

/// The part of a pod spec that may not change after creation.
pub fn pod_spec_mutable_part(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
        m.remove("nodeName");
        for list in ["containers", "initContainers"] {
            for c in m.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    s
}

/// Errors of a pod spec (also a Job's template).
pub fn pod_spec_errors(field: &str, spec: &Value, policies: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{field}.containers"), ""));
    }
    let mut names = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let f = format!("{field}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => errs.push(FieldError::required(format!("{f}.name"), "")),
            Some(n) if !crate::validate::is_dns_label(n) => {
                errs.push(FieldError::invalid(format!("{f}.name"), &c["name"], "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"))
            }
            Some(n) if names.contains(&n) => {
                errs.push(FieldError { kind: "FieldValueDuplicate", field: format!("{f}.name"), message: format!("Duplicate value: {n:?}") })
            }
            Some(n) => names.push(n),
        }
        if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
            errs.push(FieldError::required(format!("{f}.image"), ""));
        }
        for list in ["command", "args"] {
            if let Some(v) = c.get(list)
                && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            {
                errs.push(FieldError::invalid(
                    format!("{f}.{list}"),
                    v,
                    "must be a list of strings",
                ));
            }
        }
        for (j, e) in c["env"].as_array().into_iter().flatten().enumerate() {
            let ef = format!("{f}.env[{j}]");
            let name = e["name"].as_str().unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(format!("{ef}.name"), ""));
            } else if !env_name_ok(name) {
                errs.push(FieldError::invalid(format!("{ef}.name"), &e["name"], "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"));
            }
            if let Some(from) = e.get("valueFrom") {
                if e.get("value").and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
                    errs.push(FieldError::invalid(
                        format!("{ef}.valueFrom"),
                        from,
                        "may not be specified when `value` is not empty",
                    ));
                }
                let sources = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"];
                let n = sources.iter().filter(|s| from.get(**s).is_some()).count();
                if n != 1 {
                    errs.push(FieldError::invalid(
                        format!("{ef}.valueFrom"),
                        from,
                        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                    ));
                }
                if let Some(r) = from.get("secretKeyRef") {
                    for k in ["name", "key"] {
                        if r[k].as_str().is_none_or(str::is_empty) {
                            errs.push(FieldError::required(format!("{ef}.valueFrom.secretKeyRef.{k}"), ""));
                        }
                    }
                }
            }
        }
        if let Some(r) = c.get("resources") {
            errs.extend(resources_errors(&format!("{f}.resources"), r));
        }
    }
    let rp = &spec["restartPolicy"];
    if !rp.as_str().is_some_and(|p| policies.contains(&p)) {
        errs.push(FieldError::unsupported(format!("{field}.restartPolicy"), rp, policies));
    }
    if let Some(d) = spec.get("activeDeadlineSeconds")
        && d.as_i64().is_none_or(|d| d <= 0)
    {
        errs.push(FieldError::invalid(
            format!("{field}.activeDeadlineSeconds"),
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    errs
}

/// Fills a Job's defaults: counts, selector and template labels (from its uid and name).
pub fn default_job(obj: &mut Value) {
    let uid = meta_str(obj, "uid").unwrap_or_default().to_string();
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let spec = &mut obj["spec"];
    let Some(s) = spec.as_object_mut() else { return };
    s.entry("parallelism").or_insert(json!(1));
    s.entry("completions").or_insert(json!(1));
    s.entry("backoffLimit").or_insert(json!(6));
    s.entry("completionMode").or_insert(json!("NonIndexed"));
    s.entry("suspend").or_insert(json!(false));
    s.entry("podReplacementPolicy").or_insert(json!("TerminatingOrFailed"));
    if s.get("manualSelector").and_then(Value::as_bool) != Some(true) {
        s.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let tpl = s.entry("template").or_insert(json!({}));
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            tpl["metadata"]["labels"][k] = Value::String(v.clone());
        }
    }
    if let Some(tpl) = s.get_mut("template") {
        default_pod_spec(&mut tpl["spec"]);
    }
}

/// Errors of a Job (and of an update from `old`).
pub fn job_errors(old: Option<&Value>, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &obj["spec"];
    let name = meta_str(obj, "name").unwrap_or_default();
    if name.len() > 63 {
        errs.push(FieldError::invalid(
            "metadata.name",
            &obj["metadata"]["name"],
            "must be no more than 63 characters",
        ));
    }
    errs.extend(pod_spec_errors(
        "spec.template.spec",
        &spec["template"]["spec"],
        &["OnFailure", "Never"],
    ));
    for (f, min) in [
        ("backoffLimit", 0),
        ("parallelism", 0),
        ("completions", 0),
        ("ttlSecondsAfterFinished", 0),
        ("activeDeadlineSeconds", 1),
    ] {
        if let Some(v) = spec.get(f)
            && !v.is_null()
            && v.as_i64().is_none_or(|n| n < min)
        {
            let msg = if min == 0 {
                "must be greater than or equal to 0"
            } else {
                "must be greater than 0"
            };
            errs.push(FieldError::invalid(format!("spec.{f}"), v, msg));
        }
    }
    let selector = crate::selector::LabelSelector::from_object(&spec["selector"]);
    let tpl = json!({"metadata": {"labels": spec["template"]["metadata"]["labels"].clone()}});
    if !selector.matches(&tpl) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            &spec["template"]["metadata"]["labels"],
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old {
        for f in ["selector", "template", "completionMode", "podFailurePolicy"] {
            if old["spec"].get(f) != spec.get(f) {
                errs.push(FieldError::immutable(format!("spec.{f}"), &spec[f]));
            }
        }
        if old["spec"]["completions"] != spec["completions"] {
            errs.push(FieldError::immutable("spec.completions", &spec["completions"]));
        }
    }
    errs
}
