//! Deletes: preconditions (uid, resourceVersion), propagation policies (`Background`, the default
//! except for batch/v1 Jobs, which orphan by default for compatibility; `Foreground` and `Orphan`
//! through their finalizers), objects held by finalizers, and graceful pod deletion (the pod
//! stays, with `deletionTimestamp`, until the kubelet has stopped it).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, success_status};
use crate::objects::{finalizers, key, on_removed, set_finalizers, should_remove};
use crate::registry::{ResourceInfo, Special};
use crate::state::Cluster;
use crate::store::{ObjKey, Txn};
use crate::util::{meta_mut, meta_str, now_secs, rfc3339};
use crate::views::view_out;

/// `propagationPolicy` of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// Options of a delete (query parameters and `DeleteOptions` body).
#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    /// `propagationPolicy` (or `orphanDependents`); `None` uses the resource's default.
    pub propagation: Option<Propagation>,
    /// `gracePeriodSeconds` (pods).
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub rv: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The outcome of a delete.
#[derive(Debug)]
pub enum Deleted {
    /// Removed; the last state (or a success `Status`, per resource).
    Gone(Value),
    /// Marked for deletion (finalizers, graceful termination); the current object.
    Pending(Value),
}

/// Deletes an object with its preconditions and propagation policy.
pub fn delete(cl: &Cluster, info: &ResourceInfo, ns: &str, name: &str, opts: &DeleteOpts) -> ApiResult<Deleted> {
    let mut txn = cl.store.txn();
    delete_in(cl, &mut txn, info, &key(info, ns, name), opts)
}

/// [`delete`] inside a transaction.
pub fn delete_in(
    cl: &Cluster,
    txn: &mut Txn,
    info: &ResourceInfo,
    k: &ObjKey,
    opts: &DeleteOpts,
) -> ApiResult<Deleted> {
    let name = k.name.as_str();
    let old = txn
        .get(k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.resource, name))?;
    let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
    if let Some(want) = opts.uid.as_deref().filter(|u| *u != uid) {
        return Err(ApiError::conflict(
            &info.group,
            &info.resource,
            name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    let rv = meta_str(&old, "resourceVersion").unwrap_or_default();
    if let Some(want) = opts.rv.as_deref().filter(|r| *r != rv) {
        return Err(ApiError::conflict(
            &info.group,
            &info.resource,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    let policy = opts.propagation.unwrap_or(if info.orphan_by_default {
        Propagation::Orphan
    } else {
        Propagation::Background
    });
    let mut obj = old.clone();
    let mut fins = finalizers(&obj);
    let being_deleted = obj["metadata"].get("deletionTimestamp").is_some();
    let extra = match policy {
        Propagation::Orphan => Some("orphan"),
        Propagation::Foreground => Some("foregroundDeletion"),
        Propagation::Background => None,
    };
    if let Some(f) = extra
        && !fins.iter().any(|x| x == f)
        && !being_deleted
    {
        fins.push(f.to_string());
    }
    let grace = if info.special == Special::Pod {
        let phase = obj["status"]["phase"].as_str().unwrap_or("Pending");
        // Like the real server: a finished pod, or one never scheduled, goes at once.
        let unscheduled = obj["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
        let terminal = phase == "Succeeded" || phase == "Failed" || unscheduled;
        let g = opts
            .grace
            .unwrap_or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30));
        if terminal { 0 } else { g.max(0) }
    } else {
        0
    };
    let pending = !fins.is_empty() || grace > 0 || info.special == Special::Namespace;
    if opts.dry_run {
        return Ok(if pending {
            Deleted::Pending(view_out(info, &obj))
        } else {
            Deleted::Gone(view_out(info, &obj))
        });
    }
    if pending {
        if !being_deleted {
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(rfc3339(now_secs() + grace)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if info.special == Special::Namespace {
                obj["status"]["phase"] = json!("Terminating");
            }
        } else if info.special == Special::Pod && grace == 0 {
            meta_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        set_finalizers(&mut obj, &fins);
        if should_remove(info, &obj) {
            let last = txn.remove(k).expect("present");
            return Ok(Deleted::Gone(view_out(info, &last)));
        }
        if obj != old {
            obj = txn.put(k.clone(), obj);
        }
        return Ok(Deleted::Pending(view_out(info, &obj)));
    }
    let last = txn.remove(k).expect("present");
    on_removed(cl, txn, info, &last);
    if info.is_custom() || info.special == Special::Crd {
        Ok(Deleted::Gone(view_out(info, &last)))
    } else {
        Ok(Deleted::Gone(success_status(&info.group, &info.resource, name, &uid)))
    }
}
