//! Executors start one worker per chunk attempt. The run loop only sees this trait; the local
//! runtime spawns `migrate-worker` processes on this machine (the Kubernetes one creates Jobs).
//! Everything a worker needs arrives in its environment: tokens never go on a command line.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::grpc::{Registry, Shared, serve};
use super::{Runtime, Started};
use crate::error::{Error, Result};
use crate::flow::resolve::Sides;

/// Starts workers.
pub trait Executor {
    type Worker: WorkerHandle;
    /// Starts the worker for `attempt` of `chunk`.
    fn launch(&self, chunk: u32, attempt: u32) -> Result<Self::Worker>;
}

/// A started worker.
pub trait WorkerHandle: Send {
    /// `Some(success)` once the worker has exited.
    fn exited(&mut self) -> Option<bool>;
    /// Stops the worker (dead, hung or cancelled).
    fn kill(&mut self);
    /// The worker's last log line, to explain a death the worker could not report itself.
    fn last_words(&self) -> Option<String>;
    /// Why a started worker is not running yet (a Pending pod's reason), when known.
    fn waiting(&self) -> Option<String> {
        None
    }
}

/// Environment shared by every worker of a run.
#[derive(Clone)]
struct WorkerEnv {
    coordinator: String,
    migration_id: String,
    secret: String,
    source_token: Option<String>,
    dest_token: Option<String>,
    log_format: &'static str,
}

/// The local runtime: a gRPC server on loopback for this run alone, and `migrate-worker`
/// processes on this machine; Ctrl-C stops the run.
pub struct Local {
    bin: Option<PathBuf>,
    log_format: &'static str,
    migration_id: String,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Local {
    /// Workers from `bin` (default: `migrate-worker` next to the running coordinator; checked
    /// when the transfer starts, so that planning needs no worker).
    pub fn new(bin: Option<PathBuf>, log_format: &'static str) -> Self {
        Local {
            bin,
            log_format,
            migration_id: format!("m-{}", crate::ids::random_hex(6)),
            server: None,
        }
    }

    fn worker_bin(&self) -> Result<PathBuf> {
        let bin = match &self.bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::io("cannot find the running binary", e))?
                .with_file_name("migrate-worker"),
        };
        if !bin.is_file() {
            return Err(Error::Input(format!(
                "the worker binary {} does not exist (build it, or pass --worker-bin)",
                bin.display()
            )));
        }
        Ok(bin)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

impl Runtime for Local {
    type Exec = LocalExecutor;

    fn migration_id(&self) -> String {
        self.migration_id.clone()
    }

    async fn start(&mut self, shared: &Arc<Shared>, sides: &Sides) -> Result<Started<LocalExecutor>> {
        let bin = self.worker_bin()?;
        let secret = crate::ids::random_hex(24);
        let registry = Arc::new(Registry::default());
        registry.add(shared.clone(), secret.clone());
        let (addr, server) = serve(registry, ([127, 0, 0, 1], 0).into(), None)
            .await
            .map_err(|e| Error::io("cannot start the gRPC server", e))?;
        if let Some(old) = self.server.replace(server) {
            old.abort();
        }
        tracing::debug!(grpc = %addr, "serving workers");
        let env = WorkerEnv {
            coordinator: format!("http://{addr}"),
            migration_id: shared.migration_id.clone(),
            secret,
            source_token: sides.source.token.as_ref().map(|t| t.expose().to_string()),
            dest_token: sides.dest.token.as_ref().map(|t| t.expose().to_string()),
            log_format: self.log_format,
        };
        Ok(Started {
            exec: LocalExecutor { bin, env },
            adopted: Vec::new(),
        })
    }

    #[allow(clippy::manual_async_fn)] // the trait asks for a future that borrows nothing
    fn stop(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    fn finish(&mut self, _shared: &Arc<Shared>) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

/// Spawns `migrate-worker` processes.
pub struct LocalExecutor {
    bin: PathBuf,
    env: WorkerEnv,
}

/// A worker process.
pub struct LocalWorker {
    child: Child,
    last_line: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Executor for LocalExecutor {
    type Worker = LocalWorker;

    fn launch(&self, chunk: u32, attempt: u32) -> Result<LocalWorker> {
        let e = &self.env;
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HUBMIGRATE_COORDINATOR", &e.coordinator)
            .env("HUBMIGRATE_MIGRATION_ID", &e.migration_id)
            .env("HUBMIGRATE_CHUNK_ID", chunk.to_string())
            .env("HUBMIGRATE_ATTEMPT", attempt.to_string())
            .env("HUBMIGRATE_SECRET", super::grpc::chunk_secret(&e.secret, chunk))
            .env("HUBMIGRATE_LOG_FORMAT", e.log_format)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in ["HOME", "TMPDIR", "HUBMIGRATE_LOG", "SSL_CERT_FILE", "SSL_CERT_DIR"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        if let Some(t) = &e.source_token {
            cmd.env("HUBMIGRATE_SOURCE_TOKEN", t);
        }
        if let Some(t) = &e.dest_token {
            cmd.env("HUBMIGRATE_DEST_TOKEN", t);
        }
        let mut child = cmd
            .spawn()
            .map_err(|err| Error::io(format!("cannot start {}", self.bin.display()), err))?;
        let last_line = std::sync::Arc::new(std::sync::Mutex::new(None));
        if let Some(stderr) = child.stderr.take() {
            let last = last_line.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(target: "worker", chunk, attempt, "{line}");
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
                }
            });
        }
        tracing::debug!(chunk, attempt, pid = child.id(), "worker started");
        Ok(LocalWorker { child, last_line })
    }
}

impl WorkerHandle for LocalWorker {
    fn exited(&mut self) -> Option<bool> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.success()),
            Ok(None) => None,
            Err(_) => Some(false),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    fn last_words(&self) -> Option<String> {
        self.last_line.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
