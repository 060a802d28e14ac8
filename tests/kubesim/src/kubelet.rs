//! The stand-in kubelet: runs each pod bound to this node as a local process. The first
//! container's `command` + `args` (with `$(VAR)` expansion) is started in its own process group
//! with an environment built only from the pod spec (`value`, and `valueFrom.secretKeyRef`
//! decoded from the stored Secret) plus a few host variables (`PATH`, `HOME`, ...), never the
//! environment kubesim itself runs with. A bare command name is looked up in `--bin-dir` first,
//! then `PATH`. Output goes to the pod log; Pod status moves Pending → Running →
//! Succeeded/Failed with container states, exit codes and a `containerID` of `kubesim://PID`.
//! Deleting a pod sends SIGTERM to its process group, then SIGKILL after the grace period.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::objects::{DeleteOpts, delete, modify};
use crate::state::Cluster;
use crate::store::ObjKey;
use crate::util::{meta_str, now_rfc3339};

const MANAGER: &str = "kubelet";
/// Host variables a pod process inherits from kubesim (everything else comes from the pod spec).
const HOST_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "TZ",
];

/// Why a pod's process must stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    No,
    /// The pod is being deleted: SIGTERM, grace period, SIGKILL, final status, final delete.
    Graceful,
    /// The pod object is gone: SIGKILL at once.
    Gone,
}

struct Handle {
    stop: watch::Sender<Stop>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the kubelet until the process ends.
pub async fn run(cl: Arc<Cluster>) {
    let mut changed = cl.store.subscribe();
    let mut pods: HashMap<String, Handle> = HashMap::new();
    loop {
        sync(&cl, &mut pods);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn sync(cl: &Arc<Cluster>, handles: &mut HashMap<String, Handle>) {
    let pods: Vec<Value> = cl
        .store
        .txn()
        .list("/pods", None)
        .map(|(_, v)| v.clone())
        .filter(|p| p["spec"]["nodeName"].as_str() == Some(cl.cfg.node.as_str()))
        .collect();
    handles.retain(|_, h| !h.task.is_finished());
    for p in &pods {
        let uid = meta_str(p, "uid").unwrap_or_default().to_string();
        let deleting = p["metadata"].get("deletionTimestamp").is_some();
        let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
        match handles.get(&uid) {
            Some(h) if deleting && *h.stop.borrow() == Stop::No => {
                let _ = h.stop.send(Stop::Graceful);
            }
            Some(_) => {}
            // Never started, or finished: confirm the deletion.
            None if deleting && p["metadata"]["deletionGracePeriodSeconds"].as_i64() != Some(0) => final_delete(cl, p),
            None if deleting => {}
            None if phase == "Pending" => {
                let (tx, rx) = watch::channel(Stop::No);
                let task = tokio::spawn(pod_task(cl.clone(), p.clone(), rx));
                handles.insert(uid, Handle { stop: tx, task });
            }
            None if phase == "Running" => lost(cl, p),
            None => {}
        }
    }
    for (uid, h) in handles.iter() {
        if !pods.iter().any(|p| meta_str(p, "uid") == Some(uid)) {
            let _ = h.stop.send(Stop::Gone);
        }
    }
}

fn set_status(cl: &Cluster, pod: &Value, f: impl FnOnce(&mut Value)) {
    let (ns, name) = (
        meta_str(pod, "namespace").unwrap_or(""),
        meta_str(pod, "name").unwrap_or(""),
    );
    let uid = meta_str(pod, "uid").unwrap_or("").to_string();
    let r = modify(cl, &cl.builtin("/pods"), ns, name, Some("status"), MANAGER, |p| {
        if meta_str(p, "uid") != Some(uid.as_str()) {
            return false;
        }
        let old = p["status"]["conditions"].take();
        f(&mut p["status"]);
        match p["status"].get_mut("conditions") {
            Some(new) if !new.is_null() => keep_transitions(&old, new),
            _ if !old.is_null() => p["status"]["conditions"] = old,
            _ => {}
        }
        true
    });
    if let Err(e) = r {
        tracing::warn!(pod = name, error = %e, "could not update the pod status");
    }
}

fn final_delete(cl: &Cluster, pod: &Value) {
    let (ns, name) = (
        meta_str(pod, "namespace").unwrap_or(""),
        meta_str(pod, "name").unwrap_or(""),
    );
    let opts = DeleteOpts {
        grace: Some(0),
        uid: meta_str(pod, "uid").map(String::from),
        ..DeleteOpts::default()
    };
    if let Err(e) = delete(cl, &cl.builtin("/pods"), ns, name, &opts)
        && e.code != 404
        && e.code != 409
    {
        tracing::warn!(pod = name, error = %e, "could not complete the pod deletion");
    }
}

/// A pod that claims to run but has no process here (kubesim restarted): it failed.
fn lost(cl: &Cluster, pod: &Value) {
    let name = pod["spec"]["containers"][0]["name"].clone();
    set_status(cl, pod, |st| {
        st["phase"] = json!("Failed");
        st["containerStatuses"] = json!([{"name": name, "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated"}}}]);
    });
}

/// Expands `$(VAR)` references from the container environment (`$$(` escapes).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$(") {
            out.push_str("$(");
            rest = t;
        } else if let Some(t) = tail.strip_prefix("$(")
            && let Some(end) = t.find(')')
            && let Some((_, v)) = env.iter().rev().find(|(k, _)| *k == t[..end])
        {
            out.push_str(v);
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The pod's environment: `env` entries in order, `secretKeyRef` read from the stored Secret.
fn resolve_env(cl: &Cluster, ns: &str, pod_name: &str, container: &Value) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        if let Some(r) = e["valueFrom"].get("secretKeyRef") {
            let (sname, key) = (r["name"].as_str().unwrap_or(""), r["key"].as_str().unwrap_or(""));
            let optional = r["optional"].as_bool() == Some(true);
            let secret = cl.store.txn().get(&ObjKey::new("/secrets", ns, sname)).cloned();
            let value = match secret {
                None if optional => continue,
                None => return Err(format!("secret \"{sname}\" not found")),
                Some(s) => match s["data"][key].as_str() {
                    None if optional => continue,
                    None => return Err(format!("couldn't find key {key} in Secret {ns}/{sname}")),
                    Some(b64) => base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .map_err(|e| format!("secret {ns}/{sname} key {key}: {e}"))?,
                },
            };
            env.push((name, value));
        } else if let Some(f) = e["valueFrom"].get("fieldRef") {
            let v = match f["fieldPath"].as_str().unwrap_or("") {
                "metadata.name" => pod_name.to_string(),
                "metadata.namespace" => ns.to_string(),
                "status.podIP" | "status.hostIP" => "127.0.0.1".to_string(),
                "spec.nodeName" => cl.cfg.node.clone(),
                other => return Err(format!("unsupported fieldRef {other:?} in kubesim")),
            };
            env.push((name, v));
        } else if e.get("valueFrom").is_some() {
            return Err(format!(
                "kubesim resolves only value, secretKeyRef and fieldRef (env {name})"
            ));
        } else {
            let v = e["value"].as_str().unwrap_or_default();
            let expanded = expand(v, &env);
            env.push((name, expanded));
        }
    }
    Ok(env)
}

/// Finds a bare command in `bin_dir`, then `PATH`; paths are used as given.
pub fn resolve_program(cmd: &str, bin_dir: &Path) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Some(PathBuf::from(cmd));
    }
    let local = bin_dir.join(cmd);
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| p.is_file())
}

fn setpriv() -> Option<PathBuf> {
    resolve_program("setpriv", Path::new("/nonexistent"))
}

fn terminated(code: i32, reason: &str, message: Option<&str>, started: &str, pid: Option<u32>) -> Value {
    let mut t = json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_rfc3339()});
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    if let Some(pid) = pid {
        t["containerID"] = json!(format!("kubesim://{pid}"));
    }
    t
}

fn conditions(ready: bool, reason: Option<&str>, cname: &Value) -> Value {
    let now = now_rfc3339();
    let r = if ready { "True" } else { "False" };
    let mut ready_c = json!({"type": "Ready", "status": r, "lastProbeTime": null, "lastTransitionTime": now});
    let mut cr = json!({"type": "ContainersReady", "status": r, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(reason) = reason {
        ready_c["reason"] = json!(reason);
        cr["reason"] = json!(reason);
        if reason == "ContainersNotReady" {
            let msg = format!("containers with unready status: [{}]", cname.as_str().unwrap_or(""));
            ready_c["message"] = json!(msg);
            cr["message"] = json!(msg);
        }
    }
    json!([
        {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        ready_c, cr,
        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
    ])
}

/// Keeps a condition's `lastTransitionTime` while its status does not change, as the kubelet does.
fn keep_transitions(old: &Value, new: &mut Value) {
    for c in new.as_array_mut().into_iter().flatten() {
        let same = old.as_array().into_iter().flatten().find(|o| o["type"] == c["type"]);
        if let Some(o) = same.filter(|o| o["status"] == c["status"] && o.get("lastTransitionTime").is_some()) {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
        }
    }
}

async fn append_log(file: &tokio::sync::Mutex<tokio::fs::File>, line: &str) {
    let mut f = file.lock().await;
    let _ = f.write_all(crate::logs::stored_line(line).as_bytes()).await;
}

async fn signal_group(pid: u32, sig: &str) {
    let _ = tokio::process::Command::new("kill")
        .args(["-s", sig, "--", &format!("-{pid}")])
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

async fn pod_task(cl: Arc<Cluster>, pod: Value, mut stop: watch::Receiver<Stop>) {
    let ns = meta_str(&pod, "namespace").unwrap_or_default().to_string();
    let name = meta_str(&pod, "name").unwrap_or_default().to_string();
    let container = pod["spec"]["containers"][0].clone();
    let cname = container["name"].clone();
    let image = container["image"].clone();
    let restart = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
    let grace = pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    let deadline = pod["spec"]["activeDeadlineSeconds"].as_u64().map(Duration::from_secs);
    let pod_start = now_rfc3339();

    // `--pod-start-delay`: the node is still creating the container (sandbox, image pull).
    if !cl.cfg.pod_start_delay.is_zero() {
        set_status(&cl, &pod, |st| {
            st["startTime"] = json!(pod_start);
            st["hostIP"] = json!("127.0.0.1");
            st["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            let mut conds = conditions(false, Some("ContainersNotReady"), &cname);
            conds[0]["status"] = json!("False");
            st["conditions"] = conds;
            st["containerStatuses"] = json!([{"name": cname, "image": image, "imageID": "", "lastState": {},
                "ready": false, "restartCount": 0, "started": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]);
        });
        tokio::select! {
            _ = tokio::time::sleep(cl.cfg.pod_start_delay) => {}
            _ = stop.changed() => {
                if *stop.borrow() == Stop::Graceful { final_delete(&cl, &pod); }
                return;
            }
        }
    }

    // Environment (a missing Secret keeps the pod waiting, as on a node).
    let env = loop {
        match resolve_env(&cl, &ns, &name, &container) {
            Ok(env) => break env,
            Err(msg) => {
                set_status(&cl, &pod, |st| {
                    st["startTime"] = json!(pod_start);
                    st["containerStatuses"] = json!([{"name": cname, "image": image, "ready": false, "restartCount": 0,
                        "started": false, "state": {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}}]);
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {
                        if *stop.borrow() == Stop::Graceful { final_delete(&cl, &pod); }
                        return;
                    }
                }
            }
        }
    };
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().map(|s| expand(s, &env)))
        .collect();
    let log_path = cl.log_path(&ns, &name);
    let workdir = cl.cfg.data.join("pods").join(&ns).join(&name);
    let _ = tokio::fs::create_dir_all(&workdir).await;
    if let Some(dir) = log_path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    let Ok(file) = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await
    else {
        tracing::warn!(pod = %name, "cannot open the pod log");
        return;
    };
    let log = Arc::new(tokio::sync::Mutex::new(file));
    let mut restarts = 0u32;
    loop {
        let started = now_rfc3339();
        let program = if container["command"].as_array().is_none_or(Vec::is_empty) {
            Err("kubesim cannot run image entrypoints: the container needs a command".to_string())
        } else {
            resolve_program(&argv[0], &cl.cfg.bin_dir)
                .ok_or_else(|| format!("exec: \"{}\": executable file not found in $PATH", argv[0]))
        };
        let spawned = program.and_then(|prog| {
            let (exe, mut args): (PathBuf, Vec<String>) = match setpriv() {
                Some(sp) => (
                    sp,
                    vec![
                        "--pdeathsig".into(),
                        "KILL".into(),
                        "--".into(),
                        prog.display().to_string(),
                    ],
                ),
                None => (prog, vec![]),
            };
            args.extend(argv.iter().skip(1).cloned());
            let mut cmd = tokio::process::Command::new(exe);
            cmd.args(&args)
                .env_clear()
                .current_dir(&workdir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            for k in HOST_ENV {
                if let Some(v) = std::env::var_os(k) {
                    cmd.env(k, v);
                }
            }
            cmd.env("HOSTNAME", &name).env("KUBERNETES_SERVICE_HOST", "127.0.0.1");
            cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            cmd.spawn().map_err(|e| format!("failed to start {}: {e}", argv[0]))
        });
        let mut child = match spawned {
            Ok(c) => c,
            Err(msg) => {
                append_log(&log, &msg).await;
                set_status(&cl, &pod, |st| {
                    st["phase"] = json!("Failed");
                    st["startTime"] = json!(pod_start);
                    st["conditions"] = conditions(false, Some("PodFailed"), &cname);
                    st["containerStatuses"] = json!([{"name": cname, "image": image, "ready": false, "restartCount": restarts,
                        "started": false, "state": {"terminated": terminated(128, "StartError", Some(&msg), &started, None)}}]);
                });
                if *stop.borrow() == Stop::Graceful {
                    final_delete(&cl, &pod);
                }
                return;
            }
        };
        let pid = child.id();
        if let Some(p) = pid {
            cl.pids.lock().unwrap_or_else(|e| e.into_inner()).insert(p);
        }
        let mut readers = Vec::new();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            readers.push(tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(out);
                let mut buf = Vec::new();
                while reader.read_until(b'\n', &mut buf).await.unwrap_or(0) > 0 {
                    let line = String::from_utf8_lossy(&buf);
                    append_log(&log, line.trim_end_matches(['\n', '\r'])).await;
                    buf.clear();
                }
            }));
        }
        set_status(&cl, &pod, |st| {
            st["phase"] = json!("Running");
            st["startTime"] = json!(pod_start);
            st["hostIP"] = json!("127.0.0.1");
            st["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            st["podIP"] = json!("127.0.0.1");
            st["podIPs"] = json!([{"ip": "127.0.0.1"}]);
            st["conditions"] = conditions(true, None, &cname);
            st["containerStatuses"] = json!([{"name": cname, "image": image, "imageID": image, "ready": true, "started": true,
                "restartCount": restarts, "containerID": pid.map(|p| format!("kubesim://{p}")),
                "state": {"running": {"startedAt": started}}}]);
        });
        tracing::info!(pod = %name, namespace = %ns, pid = ?pid, command = ?argv, "container started");
        let mut reason: Option<(&str, &str)> = None;
        let sleep_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep_deadline);
        let status = loop {
            tokio::select! {
                s = child.wait() => break s,
                _ = &mut sleep_deadline, if reason.is_none() => {
                    reason = Some(("DeadlineExceeded", "Pod was active on the node longer than the specified deadline"));
                    if let Some(p) = pid { signal_group(p, "KILL").await; }
                }
                r = stop.changed() => {
                    let what = if r.is_err() { Stop::Gone } else { *stop.borrow() };
                    match (what, pid) {
                        (Stop::Graceful, Some(p)) => {
                            signal_group(p, "TERM").await;
                            if tokio::time::timeout(Duration::from_secs(grace), child.wait()).await.is_err() {
                                signal_group(p, "KILL").await;
                            }
                        }
                        (Stop::Gone, Some(p)) => signal_group(p, "KILL").await,
                        _ => {}
                    }
                }
            }
        };
        if let Some(p) = pid {
            cl.pids.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
        }
        for r in readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
        let code = match &status {
            Ok(s) => s
                .code()
                .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(s).unwrap_or(9)),
            Err(_) => 137,
        };
        let what = *stop.borrow();
        tracing::info!(pod = %name, namespace = %ns, code, "container exited");
        if what == Stop::Gone {
            return;
        }
        let again =
            what == Stop::No && reason.is_none() && (restart == "Always" || (restart == "OnFailure" && code != 0));
        let term_reason = if code == 0 { "Completed" } else { "Error" };
        let term = terminated(code, term_reason, None, &started, pid);
        if again {
            restarts += 1;
            set_status(&cl, &pod, |st| {
                st["containerStatuses"] = json!([{"name": cname, "image": image, "ready": false, "started": false,
                    "restartCount": restarts, "lastState": {"terminated": term},
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off restarting failed container {}", cname.as_str().unwrap_or(""))}}}]);
                st["conditions"] = conditions(false, Some("ContainersNotReady"), &cname);
            });
            let wait = Duration::from_secs((1u64 << restarts.min(4)).min(10));
            tokio::select! {
                _ = tokio::time::sleep(wait) => continue,
                _ = stop.changed() => {
                    if *stop.borrow() == Stop::Graceful { final_delete(&cl, &pod); }
                    return;
                }
            }
        }
        set_status(&cl, &pod, |st| {
            st["phase"] = json!(if code == 0 && reason.is_none() {
                "Succeeded"
            } else {
                "Failed"
            });
            if let Some((r, m)) = reason {
                st["reason"] = json!(r);
                st["message"] = json!(m);
            }
            st["conditions"] = conditions(false, Some("PodCompleted"), &cname);
            st["containerStatuses"] = json!([{"name": cname, "image": image, "imageID": image, "ready": false,
                "started": false, "restartCount": restarts, "containerID": pid.map(|p| format!("kubesim://{p}")),
                "state": {"terminated": term}}]);
        });
        if what == Stop::Graceful {
            final_delete(&cl, &pod);
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references() {
        let env = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$(C)-$$(A)-$", &env), "1-x-$(C)-$(A)-$");
    }
}
