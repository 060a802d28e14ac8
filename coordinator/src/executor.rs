//! Executors start one worker per chunk attempt. The run loop only sees this trait; the local
//! executor spawns `migrate-worker` processes on this machine (the Kubernetes one creates Jobs).
//! Everything a worker needs arrives in its environment: tokens never go on a command line.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts workers.
pub trait Executor {
    type Worker: WorkerHandle;
    /// Starts the worker for `attempt` of `chunk`.
    fn launch(&self, chunk: u32, attempt: u32) -> anyhow::Result<Self::Worker>;
}

/// A started worker.
pub trait WorkerHandle: Send {
    /// `Some(success)` once the worker has exited.
    fn exited(&mut self) -> Option<bool>;
    /// Stops the worker (dead, hung or cancelled).
    fn kill(&mut self);
    /// The worker's last log line, to explain a death the worker could not report itself.
    fn last_words(&self) -> Option<String>;
}

/// Environment shared by every worker of a run.
#[derive(Clone)]
pub struct WorkerEnv {
    pub coordinator: String,
    pub migration_id: String,
    pub secret: String,
    pub source_token: Option<String>,
    pub dest_token: Option<String>,
    pub log_format: &'static str,
}

/// Spawns `migrate-worker` processes.
pub struct LocalExecutor {
    pub bin: PathBuf,
    pub env: WorkerEnv,
}

impl LocalExecutor {
    /// The worker binary next to the running coordinator, unless given.
    pub fn worker_bin(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
        let bin = match explicit {
            Some(b) => b,
            None => std::env::current_exe()?.with_file_name("migrate-worker"),
        };
        anyhow::ensure!(
            bin.is_file(),
            "the worker binary {} does not exist (build it, or pass --worker-bin)",
            bin.display()
        );
        Ok(bin)
    }
}

/// A worker process.
pub struct LocalWorker {
    child: Child,
    last_line: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Executor for LocalExecutor {
    type Worker = LocalWorker;

    fn launch(&self, chunk: u32, attempt: u32) -> anyhow::Result<LocalWorker> {
        let e = &self.env;
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HUBMIGRATE_COORDINATOR", &e.coordinator)
            .env("HUBMIGRATE_MIGRATION_ID", &e.migration_id)
            .env("HUBMIGRATE_CHUNK_ID", chunk.to_string())
            .env("HUBMIGRATE_ATTEMPT", attempt.to_string())
            .env("HUBMIGRATE_SECRET", &e.secret)
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
            .map_err(|err| anyhow::anyhow!("cannot start {}: {err}", self.bin.display()))?;
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
