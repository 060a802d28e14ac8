//! The Job controller (batch/v1, `NonIndexed` completion mode): creates pods from the template
//! (`generateName`, the template's labels, a controlling ownerReference, the
//! `batch.kubernetes.io/job-tracking` finalizer), counts each finished pod once in
//! `status.succeeded`/`failed` before releasing its finalizer (a deleted running pod counts as
//! failed and is replaced, `podReplacementPolicy: TerminatingOrFailed`), replaces failed pods
//! after an exponential backoff until `backoffLimit` is exceeded, enforces
//! `activeDeadlineSeconds`, and sets `startTime`, `completionTime` and the conditions
//! (`SuccessCriteriaMet` + `Complete`, `FailureTarget` + `Failed`) of Kubernetes 1.31+.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::objects::{DeleteOpts, Propagation, create_internal, delete, modify};
use crate::state::Cluster;
use crate::util::{meta_str, now_rfc3339, now_secs, parse_rfc3339};

const MANAGER: &str = "job-controller";
/// The finalizer the Job controller puts on its pods until it has counted them.
pub const TRACKING: &str = "batch.kubernetes.io/job-tracking";

/// In-memory state of the controller (like the real one's backoff store).
#[derive(Default)]
struct Backoff {
    /// Job uid -> when the last failure was counted.
    last_failure: HashMap<String, Instant>,
}

/// Runs the controller until the process ends.
pub async fn run(cl: Arc<Cluster>) {
    let mut changed = cl.store.subscribe();
    let mut backoff = Backoff::default();
    loop {
        reconcile_all(&cl, &mut backoff);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

fn condition(obj: &Value, ty: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .and_then(|r| r["uid"].as_str())
}

fn terminal(pod: &Value) -> bool {
    matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn has_tracking(pod: &Value) -> bool {
    pod["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f == TRACKING))
}

fn release(cl: &Cluster, pod: &Value) {
    let info = cl.builtin("/pods");
    let (ns, name) = (
        meta_str(pod, "namespace").unwrap_or(""),
        meta_str(pod, "name").unwrap_or(""),
    );
    let r = modify(cl, &info, ns, name, None, MANAGER, |p| {
        let Some(list) = p["metadata"]["finalizers"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|f| f != TRACKING);
        before != list.len()
    });
    if let Err(e) = r {
        tracing::warn!(pod = name, error = %e, "could not release the job-tracking finalizer");
    }
}

fn reconcile_all(cl: &Cluster, backoff: &mut Backoff) {
    let (jobs, pods): (Vec<Value>, Vec<Value>) = {
        let txn = cl.store.txn();
        (
            txn.list("batch/jobs", None).map(|(_, v)| v.clone()).collect(),
            txn.list("/pods", None).map(|(_, v)| v.clone()).collect(),
        )
    };
    let mut by_job: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in &pods {
        if let Some(uid) = controller_uid(p) {
            by_job.entry(uid).or_default().push(p);
        }
    }
    for job in &jobs {
        let uid = meta_str(job, "uid").unwrap_or_default();
        let owned = by_job.remove(uid).unwrap_or_default();
        reconcile(cl, job, &owned, backoff);
    }
    // Pods whose Job is gone are no longer tracked.
    for pods in by_job.values() {
        for p in pods.iter().filter(|p| has_tracking(p)) {
            release(cl, p);
        }
    }
    backoff
        .last_failure
        .retain(|uid, _| jobs.iter().any(|j| meta_str(j, "uid") == Some(uid)));
}

fn job_condition(ty: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({"type": ty, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
           "reason": reason, "message": message})
}

fn reconcile(cl: &Cluster, job: &Value, pods: &[&Value], backoff: &mut Backoff) {
    let info = cl.builtin("batch/jobs");
    let ns = meta_str(job, "namespace").unwrap_or_default().to_string();
    let name = meta_str(job, "name").unwrap_or_default().to_string();
    let uid = meta_str(job, "uid").unwrap_or_default().to_string();
    let spec = &job["spec"];
    let finished = condition(job, "Complete") || condition(job, "Failed");
    // Count finished pods once, then release them.
    let newly: Vec<&&Value> = pods
        .iter()
        .filter(|p| has_tracking(p) && (terminal(p) || p["metadata"].get("deletionTimestamp").is_some()))
        .collect();
    if finished {
        expire(cl, job);
        for p in pods
            .iter()
            .filter(|p| has_tracking(p) && (terminal(p) || p["metadata"].get("deletionTimestamp").is_some()))
        {
            release(cl, p);
        }
        return;
    }
    if job["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let new_succeeded = newly.iter().filter(|p| p["status"]["phase"] == "Succeeded").count() as i64;
    let new_failed = newly.len() as i64 - new_succeeded;
    if new_failed > 0 {
        backoff.last_failure.insert(uid.clone(), Instant::now());
    }
    let succeeded = job["status"]["succeeded"].as_i64().unwrap_or(0) + new_succeeded;
    let failed = job["status"]["failed"].as_i64().unwrap_or(0) + new_failed;
    let active: Vec<&&Value> = pods
        .iter()
        .filter(|p| !terminal(p) && p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| !terminal(p) && p["metadata"].get("deletionTimestamp").is_some())
        .count();
    let ready = active
        .iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count();
    let completions = spec["completions"].as_i64().unwrap_or(1);
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let suspended = spec["suspend"].as_bool() == Some(true);
    let start = job["status"]["startTime"].as_str().and_then(parse_rfc3339);
    let deadline_passed = match (spec["activeDeadlineSeconds"].as_i64(), start) {
        (Some(d), Some(s)) => now_secs() - s >= d,
        _ => false,
    };
    let mut conditions: Vec<Value> = Vec::new();
    let outcome = if succeeded >= completions {
        Some((
            "Complete",
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ))
    } else if failed > backoff_limit {
        Some((
            "Failed",
            "FailureTarget",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline_passed {
        Some((
            "Failed",
            "FailureTarget",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if let Some((last, target, reason, message)) = outcome {
        conditions.push(job_condition(target, reason, message));
        conditions.push(job_condition(last, reason, message));
        for p in &active {
            let _ = delete(
                cl,
                &cl.builtin("/pods"),
                &ns,
                meta_str(p, "name").unwrap_or(""),
                &DeleteOpts::default(),
            );
        }
        match last {
            "Complete" => record_event(cl, job, "Normal", "Completed", "Job completed"),
            _ => record_event(cl, job, "Warning", reason, message),
        }
    }
    let mut created = 0i64;
    if outcome.is_none() && !suspended {
        let want = parallelism.min(completions - succeeded) - active.len() as i64;
        let delay = if failed > 0 {
            let factor = 1u32 << (failed - 1).clamp(0, 16) as u32;
            (cl.cfg.job_backoff * factor).min(Duration::from_secs(360))
        } else {
            Duration::ZERO
        };
        let waited = backoff.last_failure.get(&uid).is_none_or(|t| t.elapsed() >= delay);
        if want > 0 && waited {
            for _ in 0..want {
                match create_internal(cl, &cl.builtin("/pods"), &ns, pod_for(job), MANAGER) {
                    Ok(p) => {
                        created += 1;
                        let msg = format!("Created pod: {}", meta_str(&p, "name").unwrap_or(""));
                        record_event(cl, job, "Normal", "SuccessfulCreate", &msg);
                    }
                    Err(e) => {
                        tracing::warn!(job = %name, error = %e, "could not create a pod");
                        break;
                    }
                }
            }
        }
    }
    let outcome_done = outcome.is_some();
    let active_now = if outcome_done { 0 } else { active.len() as i64 + created };
    let r = modify(cl, &info, &ns, &name, Some("status"), MANAGER, |j| {
        let st = &mut j["status"];
        if !st.is_object() {
            *st = json!({});
        }
        if st.get("startTime").is_none() && !suspended {
            st["startTime"] = json!(now_rfc3339());
        }
        st["succeeded"] = json!(succeeded);
        st["failed"] = json!(failed);
        st["ready"] = json!(ready);
        st["terminating"] = json!(terminating);
        set_or_remove(st, "active", active_now);
        if !conditions.is_empty() {
            let list = st["conditions"].as_array().cloned().unwrap_or_default();
            st["conditions"] = json!(list.into_iter().chain(conditions.iter().cloned()).collect::<Vec<_>>());
            if outcome.is_some_and(|o| o.0 == "Complete") {
                st["completionTime"] = json!(now_rfc3339());
            }
        }
        st["uncountedTerminatedPods"] = json!({});
        true
    });
    if let Err(e) = r {
        tracing::warn!(job = %name, error = %e, "could not update the job status");
        return;
    }
    for p in newly {
        release(cl, p);
    }
}

/// `ttlSecondsAfterFinished`: deletes a finished Job (and, in the foreground, its pods) once
/// the time has passed, as the TTL-after-finished controller does.
fn expire(cl: &Cluster, job: &Value) {
    let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
        return;
    };
    let finished = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .filter_map(|c| c["lastTransitionTime"].as_str().and_then(parse_rfc3339))
        .min();
    if finished.is_some_and(|t| now_secs() >= t + ttl) && job["metadata"].get("deletionTimestamp").is_none() {
        let (ns, name) = (
            meta_str(job, "namespace").unwrap_or(""),
            meta_str(job, "name").unwrap_or(""),
        );
        let opts = DeleteOpts {
            propagation: Some(Propagation::Foreground),
            uid: meta_str(job, "uid").map(String::from),
            ..DeleteOpts::default()
        };
        tracing::info!(job = name, ttl, "deleting a finished job (ttlSecondsAfterFinished)");
        let _ = delete(cl, &cl.builtin("batch/jobs"), ns, name, &opts);
    }
}

/// Records a core Event about a Job, as the controller-manager does.
fn record_event(cl: &Cluster, job: &Value, ty: &str, reason: &str, message: &str) {
    let ns = meta_str(job, "namespace").unwrap_or("default");
    let name = meta_str(job, "name").unwrap_or("");
    let now = now_rfc3339();
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{:016x}", crate::util::random_u64()), "namespace": ns},
        "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": ns,
                           "uid": meta_str(job, "uid"), "resourceVersion": meta_str(job, "resourceVersion")},
        "reason": reason, "message": message, "type": ty, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "job-controller"}, "reportingComponent": "job-controller", "reportingInstance": "",
    });
    if let Err(e) = create_internal(cl, &cl.builtin("/events"), ns, event, MANAGER) {
        tracing::warn!(job = name, error = %e, "could not record an event");
    }
}

fn set_or_remove(st: &mut Value, key: &str, n: i64) {
    if n > 0 {
        st[key] = json!(n);
    } else if let Some(m) = st.as_object_mut() {
        m.remove(key);
    }
}

/// The pod the Job controller creates from a Job's template.
pub fn pod_for(job: &Value) -> Value {
    let tpl = &job["spec"]["template"];
    let name = meta_str(job, "name").unwrap_or_default();
    let mut meta = json!({
        "generateName": format!("{name}-"),
        "labels": tpl["metadata"]["labels"].clone(),
        "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": name,
            "uid": meta_str(job, "uid").unwrap_or_default(), "controller": true, "blockOwnerDeletion": true,
        }],
        "finalizers": [TRACKING],
    });
    if let Some(a) = tpl["metadata"].get("annotations") {
        meta["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tpl["spec"].clone()})
}
