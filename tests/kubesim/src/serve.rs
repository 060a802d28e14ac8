//! `kubesim serve`: opens the store, creates the standard namespaces, binds, writes the
//! kubeconfig, prints the URL, starts the in-process controllers and serves until SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::objects::{WriteOpts, create};
use crate::selector::LabelSelector;
use crate::state::{Cluster, Config};
use crate::store::{ObjKey, Store};

/// The kubeconfig kubesim writes: one cluster, one context (namespace `default`), no auth.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: {url}
contexts:
- name: kubesim
  context:
    cluster: kubesim
    namespace: default
    user: kubesim
current-context: kubesim
users:
- name: kubesim
  user: {{}}
preferences: {{}}
"
    )
}

fn default_bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Creates the namespaces every cluster has.
fn standard_namespaces(cl: &Cluster) -> anyhow::Result<()> {
    let info = cl.builtin("/namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let exists = cl.store.txn().get(&ObjKey::new("/namespaces", "", ns)).is_some();
        if !exists {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            create(cl, &info, "", obj, &mut WriteOpts::internal("kube-apiserver"))
                .map_err(|e| anyhow::anyhow!("cannot create namespace {ns}: {e}"))?;
        }
    }
    Ok(())
}

/// Runs kubesim until a shutdown signal.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create data directory {}", args.data.display()))?;
    let store = Store::open(Some(&args.data.join("objects")), args.watch_history)
        .with_context(|| format!("cannot open data directory {}", args.data.display()))?;
    let listener = TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| format!("cannot bind {}:{}", args.bind, args.port))?;
    let host = if args.bind == "0.0.0.0" {
        "127.0.0.1".to_string()
    } else {
        args.bind.clone()
    };
    let url = format!("http://{host}:{}", listener.local_addr()?.port());
    let cfg = Config {
        data: args.data.clone(),
        bin_dir: args.bin_dir.clone().unwrap_or_else(default_bin_dir),
        job_backoff: args.job_backoff,
        bookmark_interval: args.bookmark_interval,
        node: args.node.clone(),
        pod_start_delay: args.pod_start_delay,
        unschedulable: match &args.unschedulable_pods {
            Some(sel) => Some(
                LabelSelector::parse(sel)
                    .map_err(|e| anyhow::anyhow!("invalid --unschedulable-pods selector {sel:?}: {e}"))?,
            ),
            None => None,
        },
    };
    let cl = Arc::new(Cluster::new(store, cfg));
    standard_namespaces(&cl)?;
    if let Some(path) = &args.kubeconfig {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, kubeconfig(&url)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::controllers::start(cl.clone());

    println!("{url}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(url = %url, data = %args.data.display(), bin_dir = %cl.cfg.bin_dir.display(), "kubesim serving");

    // Watches stream for up to half an hour, so shutting down does not wait for connections.
    tokio::select! {
        r = axum::serve(listener, crate::api::router(cl.clone())) => r?,
        _ = shutdown_signal() => {}
    }
    crate::controllers::stop(&cl).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
