//! The in-process control plane: starts the garbage collector, the job controller and the
//! kubelet, and stops the pod processes when kubesim stops.

use std::sync::Arc;

use crate::state::Cluster;

/// Starts the controllers.
pub fn start(cl: Arc<Cluster>) {
    tokio::spawn(crate::gc::run(cl.clone()));
    tokio::spawn(crate::jobs::run(cl.clone()));
    tokio::spawn(crate::kubelet::run(cl));
}

/// Kills the process groups of the pods still running.
pub async fn stop(cl: &Cluster) {
    let pids: Vec<u32> = cl.pids.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
    for pid in pids {
        let _ = tokio::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
}
