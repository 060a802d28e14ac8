//! Discovery as clients read it: `/version`, the legacy documents (`/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}`), the aggregated `apidiscovery.k8s.io/v2` form
//! `kubectl` 1.32 asks for first, and OpenAPI v3 (`/openapi/v3` and one document per group
//! version) with the PATCH operations and `fieldValidation` parameter `kubectl apply` looks for
//! before trusting the server to validate, and the CRD schemas `kubectl explain` reads.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceInfo};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The Kubernetes version kubesim reports.
pub const KUBE_VERSION: &str = "v1.32.0";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": format!("{KUBE_VERSION}+kubesim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Orders versions as Kubernetes does: GA before beta before alpha, higher first.
pub fn version_priority(v: &str) -> (u8, i64, i64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let Ok(major) = rest[..digits].parse::<i64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits..];
    let (kind, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        return (0, 0, 0);
    };
    (kind, major, minor)
}

fn sorted_versions(mut versions: Vec<String>) -> Vec<String> {
    versions.sort_by(|a, b| version_priority(b).cmp(&version_priority(a)).then(a.cmp(b)));
    versions
}

/// `/api` (legacy form).
pub fn api_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = sorted_versions(versions.to_vec())
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

/// `/apis` (legacy form).
pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let (_, vs) = reg.groups().into_iter().find(|(g, _)| g == group && !g.is_empty())?;
    let mut doc = group_doc(group, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn storage_version_hash(r: &ResourceInfo) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}/{}/{}", r.group, r.version, r.kind).bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&h.to_be_bytes()[..8])[..11].to_string()
}

fn sub_verbs(sub: &str) -> Vec<&'static str> {
    if sub == "log" {
        vec!["get"]
    } else {
        vec!["get", "patch", "update"]
    }
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let infos = reg.of_group_version(group, version);
    if infos.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in infos {
        let mut doc = json!({
            "name": r.resource, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": VERBS, "storageVersionHash": storage_version_hash(r),
        });
        if !r.short_names.is_empty() {
            doc["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            doc["categories"] = json!(r.categories);
        }
        resources.push(doc);
        for sub in r.subresources() {
            resources.push(json!({"name": format!("{}/{sub}", r.resource), "singularName": "",
                                  "namespaced": r.namespaced, "kind": r.kind, "verbs": sub_verbs(sub)}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// The aggregated discovery document (`apidiscovery.k8s.io/{version}`) of the core group
/// (`core = true`, for `/api`) or of the named groups (`/apis`).
pub fn aggregated(reg: &Registry, core: bool, api_version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in reg.groups() {
        if group.is_empty() != core {
            continue;
        }
        let mut vs = Vec::new();
        for v in sorted_versions(versions) {
            let resources: Vec<Value> = reg
                .of_group_version(&group, &v)
                .into_iter()
                .map(|r| {
                    let rk = json!({"group": r.group, "version": r.version, "kind": r.kind});
                    let subs: Vec<Value> = r
                        .subresources()
                        .into_iter()
                        .map(|s| json!({"subresource": s, "responseKind": rk, "verbs": sub_verbs(s)}))
                        .collect();
                    let mut doc = json!({
                        "resource": r.resource, "responseKind": rk,
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular, "verbs": VERBS,
                    });
                    if !r.short_names.is_empty() {
                        doc["shortNames"] = json!(r.short_names);
                    }
                    if !r.categories.is_empty() {
                        doc["categories"] = json!(r.categories);
                    }
                    if !subs.is_empty() {
                        doc["subresources"] = json!(subs);
                    }
                    doc
                })
                .collect();
            vs.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        let mut meta = json!({"creationTimestamp": null});
        if !core {
            meta["name"] = json!(group);
        }
        items.push(json!({"metadata": meta, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A short stable hash of a document (the `?hash=` of OpenAPI v3 URLs).
pub fn doc_hash(doc: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc.to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: the group versions and their document URLs.
pub fn openapi_v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let doc = openapi_v3_doc(reg, &group, &v).unwrap_or(Value::Null);
            let p = gv_path(&group, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", doc_hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        r.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{}.{}", r.version, r.kind)
}

fn param(name: &str, inside: &str) -> Value {
    json!({"name": name, "in": inside, "schema": {"type": "string", "uniqueItems": true},
           "required": inside == "path"})
}

/// The OpenAPI v3 document of one group version.
pub fn openapi_v3_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let infos = reg.of_group_version(group, version);
    if infos.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in infos {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let name = schema_name(r);
        let mut schema = r
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(name.clone(), schema);
        let reference = json!({"schema": {"$ref": format!("#/components/schemas/{name}")}});
        let body = json!({"content": {
            "application/json-patch+json": reference, "application/merge-patch+json": reference,
            "application/apply-patch+yaml": reference}});
        let write_params = vec![
            param("dryRun", "query"),
            param("fieldManager", "query"),
            param("fieldValidation", "query"),
        ];
        let mut patch_params = write_params.clone();
        patch_params.push(param("force", "query"));
        let ok = json!({"200": {"description": "OK", "content": {"application/json": reference}}});
        let prefix = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let base = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.resource)
        } else {
            format!("{prefix}/{}", r.resource)
        };
        let mut path_params = vec![param("name", "path")];
        if r.namespaced {
            path_params.push(param("namespace", "path"));
        }
        let op = |action: &str, params: &Vec<Value>, with_body: bool| {
            let mut o = json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                               "parameters": params, "responses": ok});
            if with_body {
                o["requestBody"] = if action == "patch" {
                    body.clone()
                } else {
                    json!({"content": {"application/json": reference}})
                };
            }
            o
        };
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"get": op("get", &vec![], false), "put": op("put", &write_params, true),
                   "patch": op("patch", &patch_params, true), "delete": op("delete", &vec![], false),
                   "parameters": path_params}),
        );
        let mut coll_params = vec![];
        if r.namespaced {
            coll_params.push(param("namespace", "path"));
        }
        paths.insert(
            base.clone(),
            json!({"get": op("list", &vec![], false), "post": op("post", &write_params, true),
                   "parameters": coll_params}),
        );
        if r.status {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({"get": op("get", &vec![], false), "put": op("put", &write_params, true),
                       "patch": op("patch", &patch_params, true), "parameters": path_params}),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let v = sorted_versions(vec!["v1alpha1".into(), "v1".into(), "v2beta1".into(), "v1beta2".into()]);
        assert_eq!(v, vec!["v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
