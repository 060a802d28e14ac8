//! The write paths of the API server, generic over resources: create (`generateName`, namespace
//! existence, server-owned metadata), update (optimistic concurrency on `resourceVersion`,
//! status-subresource isolation, `metadata.generation` on spec changes, no-op detection),
//! patches of every type and server-side apply; deletes are in [`crate::delete`]. Handlers and the
//! in-process controllers both use these.

use serde_json::{Value, json};

use crate::apply::{ApplyRequest, apply, record_update};
pub use crate::delete::{DeleteOpts, Deleted, Propagation, delete, delete_in};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::kinds::{on_create, on_update};
use crate::patch::{json_patch, merge_patch, strategic_merge};
use crate::registry::{ResourceInfo, Special};
use crate::state::Cluster;
use crate::store::{ObjKey, Txn};
use crate::util::{meta_mut, meta_str, name_suffix, new_uid, now_rfc3339};
use crate::views::{view_in, view_out};

/// `?fieldValidation=`: what to do with fields the schema does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// Options and outputs of a write.
#[derive(Clone, Debug)]
pub struct WriteOpts {
    /// Field manager (`?fieldManager=`, else derived from the User-Agent).
    pub manager: String,
    /// Whether `fieldManager` was given explicitly (apply requires it).
    pub manager_explicit: bool,
    /// `?dryRun=All`: do everything but store.
    pub dry_run: bool,
    /// `?fieldValidation=`.
    pub validation: FieldValidation,
    /// `?force=true` for apply.
    pub force: bool,
    /// Warnings for the `Warning` response header.
    pub warnings: Vec<String>,
}

impl WriteOpts {
    /// Options of a write by an in-process controller.
    pub fn internal(manager: &str) -> WriteOpts {
        WriteOpts {
            manager: manager.into(),
            manager_explicit: true,
            dry_run: false,
            validation: FieldValidation::Ignore,
            force: false,
            warnings: Vec::new(),
        }
    }
}

/// The patch types of `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// The store key of a named object of `info`.
pub fn key(info: &ResourceInfo, ns: &str, name: &str) -> ObjKey {
    ObjKey::new(&info.storage(), if info.namespaced { ns } else { "" }, name)
}

fn storage_type(info: &ResourceInfo) -> (String, String) {
    match info.special {
        Special::EventV1 => ("v1".into(), "Event".into()),
        _ => (info.api_version(), info.kind.clone()),
    }
}

fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    let (api_version, kind) = storage_type(info);
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => return Err(ApiError::bad_request(format!("Object 'Kind' is missing in '{obj}'"))),
        Some(k) if k != kind => {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({k}) does not match the kind on the URL ({kind})"
            )));
        }
        _ => {}
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == api_version || (info.is_custom() && v.split('/').next() == Some(info.group.as_str())) => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({api_version})",
                other.unwrap_or("")
            )));
        }
    }
    obj["apiVersion"] = Value::String(api_version);
    Ok(())
}

pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub(crate) fn set_finalizers(obj: &mut Value, f: &[String]) {
    if f.is_empty() {
        meta_mut(obj).remove("finalizers");
    } else {
        meta_mut(obj).insert("finalizers".into(), json!(f));
    }
}

/// Drops empty metadata collections, as the API server's serialisation (`omitempty`) does.
fn tidy_meta(obj: &mut Value) {
    let m = meta_mut(obj);
    for k in [
        "finalizers",
        "ownerReferences",
        "labels",
        "annotations",
        "managedFields",
    ] {
        let empty = match m.get(k) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            m.remove(k);
        }
    }
}

fn after_write(cl: &Cluster, info: &ResourceInfo, stored: &Value) {
    if info.special == Special::Crd {
        cl.set_crd(meta_str(stored, "name").unwrap_or_default(), Some(stored));
    }
}

/// Called when an object left the store: a CRD takes its custom resources with it.
pub(crate) fn on_removed(cl: &Cluster, txn: &mut Txn, info: &ResourceInfo, last: &Value) {
    if info.special == Special::Crd {
        let name = meta_str(last, "name").unwrap_or_default();
        let storage = format!(
            "{}/{}",
            last["spec"]["group"].as_str().unwrap_or(""),
            last["spec"]["names"]["plural"].as_str().unwrap_or("")
        );
        let keys: Vec<ObjKey> = txn.list(&storage, None).map(|(k, _)| k.clone()).collect();
        for k in keys {
            txn.remove(&k);
        }
        cl.set_crd(name, None);
    }
}

/// Reads one object as served through `info`.
pub fn get(cl: &Cluster, info: &ResourceInfo, ns: &str, name: &str) -> ApiResult<Value> {
    let txn = cl.store.txn();
    txn.get(&key(info, ns, name))
        .map(|o| view_out(info, o))
        .ok_or_else(|| ApiError::not_found(&info.group, &info.resource, name))
}

/// Creates an object (POST).
pub fn create(cl: &Cluster, info: &ResourceInfo, ns: &str, body: Value, w: &mut WriteOpts) -> ApiResult<Value> {
    let mut txn = cl.store.txn();
    let obj = view_in(info, body)?;
    create_in(cl, &mut txn, info, ns, obj, w, false)
}

fn create_in(
    cl: &Cluster,
    txn: &mut Txn,
    info: &ResourceInfo,
    ns: &str,
    mut obj: Value,
    w: &mut WriteOpts,
    applied: bool,
) -> ApiResult<Value> {
    check_type(info, &mut obj)?;
    let meta = meta_mut(&mut obj);
    if info.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(ns));
            }
            Some(n) if n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    } else {
        meta.remove("namespace");
    }
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(k);
    }
    if !applied {
        meta.remove("managedFields");
    }
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    if info.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let explicit = meta.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if explicit.is_empty() && generate.is_empty() {
        let errs = vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
        return Err(ApiError::invalid(&info.group, &info.kind, "", errs));
    }
    if info.namespaced {
        match txn.get(&ObjKey::new("/namespaces", "", ns)) {
            None => return Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n["metadata"].get("deletionTimestamp").is_some() => {
                return Err(ApiError::forbidden(format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being \
                     terminated",
                    crate::error::qualified(&info.group, &info.resource),
                    if explicit.is_empty() { &generate } else { &explicit }
                )));
            }
            _ => {}
        }
    }
    let name = if explicit.is_empty() {
        (0..8)
            .map(|_| format!("{generate}{}", name_suffix()))
            .find(|n| txn.get(&key(info, ns, n)).is_none())
            .ok_or_else(|| ApiError::internal("could not generate a unique name"))?
    } else {
        explicit
    };
    meta_mut(&mut obj).insert("name".into(), json!(name));
    if info.status && !matches!(info.special, Special::Crd | Special::Namespace) {
        obj.as_object_mut().expect("object").remove("status");
    }
    tidy_meta(&mut obj);
    on_create(cl, info, &mut obj, w)?;
    let k = key(info, ns, &name);
    if txn.get(&k).is_some() {
        return Err(ApiError::already_exists(&info.group, &info.resource, &name));
    }
    if !applied {
        record_update(None, &mut obj, &w.manager, None, &info.api_version(), info.status);
    }
    if w.dry_run {
        return Ok(view_out(info, &obj));
    }
    let stored = txn.put(k, obj);
    after_write(cl, info, &stored);
    Ok(view_out(info, &stored))
}

/// Replaces an object (PUT), or its status with `sub = Some("status")`.
pub fn update(
    cl: &Cluster,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    body: Value,
    sub: Option<&str>,
    w: &mut WriteOpts,
) -> ApiResult<Value> {
    let mut txn = cl.store.txn();
    let k = key(info, ns, name);
    let old = txn
        .get(&k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.resource, name))?;
    let new = view_in(info, body)?;
    if info.is_custom() && meta_str(&new, "resourceVersion").is_none_or(str::is_empty) {
        let errs = vec![FieldError::invalid(
            "metadata.resourceVersion",
            &json!("0x0"),
            "must be specified for an update",
        )];
        return Err(ApiError::invalid(&info.group, &info.kind, name, errs));
    }
    update_in(cl, &mut txn, info, &k, &old, new, sub, w, false)
}

fn without_volatile(v: &Value) -> Value {
    let mut v = v.clone();
    let m = meta_mut(&mut v);
    m.remove("resourceVersion");
    for e in m
        .get_mut("managedFields")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(e) = e.as_object_mut() {
            e.remove("time");
        }
    }
    v
}

fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn update_in(
    cl: &Cluster,
    txn: &mut Txn,
    info: &ResourceInfo,
    k: &ObjKey,
    old: &Value,
    mut new: Value,
    sub: Option<&str>,
    w: &mut WriteOpts,
    applied: bool,
) -> ApiResult<Value> {
    check_type(info, &mut new)?;
    let name = k.name.as_str();
    {
        let meta = meta_mut(&mut new);
        match meta.get("name").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("name".into(), json!(name));
            }
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        if info.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    meta.insert("namespace".into(), json!(k.ns));
                }
                Some(n) if n != k.ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        }
        let old_rv = meta_str(old, "resourceVersion").unwrap_or_default();
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty() && rv != old_rv)
        {
            return Err(ApiError::stale(&info.group, &info.resource, name));
        }
        let old_uid = meta_str(old, "uid").unwrap_or_default();
        if let Some(uid) = meta
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty() && *u != old_uid)
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.resource,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"),
            ));
        }
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old["metadata"].get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        if !applied
            && meta
                .get("managedFields")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            match old["metadata"].get("managedFields") {
                Some(v) => meta.insert("managedFields".into(), v.clone()),
                None => meta.remove("managedFields"),
            };
        }
    }
    if sub == Some("status") {
        let mut isolated = old.clone();
        let status = new.get("status").cloned();
        let isolated_map = isolated.as_object_mut().expect("object");
        match status {
            Some(s) => isolated_map.insert("status".into(), s),
            None => isolated_map.remove("status"),
        };
        match new["metadata"].get("managedFields") {
            Some(mf) => meta_mut(&mut isolated).insert("managedFields".into(), mf.clone()),
            None => meta_mut(&mut isolated).remove("managedFields"),
        };
        new = isolated;
    } else if info.status && info.special != Special::Crd {
        let m = new.as_object_mut().expect("object");
        match old.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
    tidy_meta(&mut new);
    on_update(cl, info, old, &mut new, w)?;
    if old["metadata"].get("deletionTimestamp").is_some() {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
        if !added.is_empty() {
            let errs = vec![FieldError::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                ),
            )];
            return Err(ApiError::invalid(&info.group, &info.kind, name, errs));
        }
    }
    if info.generation && spec_part(old) != spec_part(&new) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    if !applied {
        record_update(Some(old), &mut new, &w.manager, sub, &info.api_version(), info.status);
    }
    if without_volatile(old) == without_volatile(&new) {
        return Ok(view_out(info, old));
    }
    if w.dry_run {
        return Ok(view_out(info, &new));
    }
    if should_remove(info, &new) {
        txn.put(k.clone(), new);
        let last = txn.remove(k).expect("present");
        on_removed(cl, txn, info, &last);
        return Ok(view_out(info, &last));
    }
    let stored = txn.put(k.clone(), new);
    after_write(cl, info, &stored);
    Ok(view_out(info, &stored))
}

/// Whether an object being deleted can leave the store: no finalizers and no grace period left
/// (the API server's `ShouldDeleteDuringUpdate`). Namespaces leave when the collector empties them.
pub(crate) fn should_remove(info: &ResourceInfo, obj: &Value) -> bool {
    info.special != Special::Namespace
        && obj["metadata"].get("deletionTimestamp").is_some()
        && finalizers(obj).is_empty()
        && obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
}

/// Patches an object (or its status); server-side apply creates a missing object. Returns the
/// object and whether it was created.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    cl: &Cluster,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    ptype: PatchType,
    patch: &Value,
    sub: Option<&str>,
    w: &mut WriteOpts,
) -> ApiResult<(Value, bool)> {
    let mut txn = cl.store.txn();
    let k = key(info, ns, name);
    let old = txn.get(&k).cloned();
    if ptype == PatchType::Apply {
        return apply_in(cl, &mut txn, info, ns, &k, old.as_ref(), patch, sub, w);
    }
    let old = old.ok_or_else(|| ApiError::not_found(&info.group, &info.resource, name))?;
    let mut view = view_out(info, &old);
    match ptype {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            merge_patch(&mut view, patch);
        }
        PatchType::Json => json_patch(&mut view, patch).map_err(ApiError::unprocessable)?,
        PatchType::Strategic => {
            if info.is_custom() {
                return Err(ApiError::unsupported_media(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]));
            }
            strategic_merge(&mut view, patch).map_err(ApiError::unprocessable)?;
        }
        PatchType::Apply => unreachable!("handled above"),
    }
    let new = view_in(info, view)?;
    Ok((update_in(cl, &mut txn, info, &k, &old, new, sub, w, false)?, false))
}

#[allow(clippy::too_many_arguments)]
fn apply_in(
    cl: &Cluster,
    txn: &mut Txn,
    info: &ResourceInfo,
    ns: &str,
    k: &ObjKey,
    old: Option<&Value>,
    config: &Value,
    sub: Option<&str>,
    w: &mut WriteOpts,
) -> ApiResult<(Value, bool)> {
    if !w.manager_explicit || w.manager.is_empty() {
        let errs = vec![FieldError::required("fieldManager", "is required for apply patch")];
        return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", errs));
    }
    let mut config = config.clone();
    if !config.is_object() {
        return Err(ApiError::bad_request("an apply configuration must be an object"));
    }
    if let Some(n) = meta_str(&config, "name").filter(|n| *n != k.name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            k.name
        )));
    }
    meta_mut(&mut config).insert("name".into(), json!(k.name));
    if let (Some(old), Some(rv)) = (old, meta_str(&config, "resourceVersion").filter(|r| !r.is_empty()))
        && Some(rv) != meta_str(old, "resourceVersion")
    {
        return Err(ApiError::stale(&info.group, &info.resource, &k.name));
    }
    let cm = config.as_object_mut().expect("object");
    if sub == Some("status") {
        cm.retain(|f, _| ["apiVersion", "kind", "metadata", "status"].contains(&f.as_str()));
        if let Some(m) = cm.get_mut("metadata").and_then(Value::as_object_mut) {
            m.retain(|f, _| f == "name" || f == "namespace");
        }
    } else if info.status {
        cm.remove("status");
    }
    let current = old.map(|o| view_out(info, o)).unwrap_or_else(|| json!({}));
    let req = ApplyRequest {
        manager: &w.manager,
        sub,
        force: w.force,
        api_version: &info.api_version(),
    };
    let merged = apply(&current, &config, &req)
        .map_err(|c| ApiError::apply_conflicts(&info.group, &info.resource, &k.name, &info.api_version(), &c))?;
    let new = view_in(info, merged)?;
    match old {
        Some(old) => Ok((update_in(cl, txn, info, k, old, new, sub, w, true)?, false)),
        None if sub.is_some() => Err(ApiError::not_found(&info.group, &info.resource, &k.name)),
        None => Ok((create_in(cl, txn, info, ns, new, w, true)?, true)),
    }
}

/// Read-modify-write of an object by an in-process controller (no conflicts: one transaction).
/// `f` returns false to leave the object unchanged. `None` if the object does not exist.
pub fn modify(
    cl: &Cluster,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    manager: &str,
    f: impl FnOnce(&mut Value) -> bool,
) -> ApiResult<Option<Value>> {
    let mut txn = cl.store.txn();
    let k = key(info, ns, name);
    let Some(old) = txn.get(&k).cloned() else {
        return Ok(None);
    };
    let mut view = view_out(info, &old);
    if !f(&mut view) {
        return Ok(Some(view));
    }
    let new = view_in(info, view)?;
    let mut w = WriteOpts::internal(manager);
    update_in(cl, &mut txn, info, &k, &old, new, sub, &mut w, false).map(Some)
}

/// Creates an object on behalf of an in-process controller.
pub fn create_internal(cl: &Cluster, info: &ResourceInfo, ns: &str, obj: Value, manager: &str) -> ApiResult<Value> {
    create(cl, info, ns, obj, &mut WriteOpts::internal(manager))
}
