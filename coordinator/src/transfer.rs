//! The transfer phase: serve gRPC, start one worker per chunk (at most `max_workers` at once),
//! watch heartbeats and exits, retry failed or dead chunks a bounded number of times, and show
//! progress. Workers never commit; their per-file results come back here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hubmigrate_proto as pb;

use crate::executor::{Executor, LocalExecutor, WorkerEnv, WorkerHandle};
use crate::progress::Progress;
use crate::report::exit;
use crate::run::Failure;
use crate::server::{Event, Registry, Shared, serve};
use std::sync::Arc;

/// A worker not heard from for this long is presumed dead.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker that exited cleanly gets this long for its last report to arrive.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What the transfer needs.
pub struct Transfer {
    pub migration_id: String,
    pub source: pb::Side,
    pub dest: pb::Side,
    pub chunks: Vec<Vec<pb::FileTask>>,
    pub total_bytes: u64,
    pub max_workers: usize,
    pub max_attempts: u32,
    pub concurrency: u32,
    pub streams: u32,
    /// The destination, and the multipart uploads of files split across workers, which the
    /// coordinator completes as their parts come in.
    pub uploads: (hubmigrate_hub::hub::Hub, Vec<crate::split::Upload>),
}

struct Running<W> {
    worker: W,
    exited_at: Option<(Instant, bool)>,
}

/// Runs every chunk to completion with local worker processes, completing split files' uploads
/// on the way, and returns the per-file results by path.
pub async fn run(t: Transfer, bin: PathBuf, mut env: WorkerEnv) -> Result<HashMap<String, pb::FileResult>, Failure> {
    let n = t.chunks.len();
    let all: Vec<pb::TaskKey> = t.chunks.iter().flatten().map(|f| f.key()).collect();
    let (shared, mut events) = Shared::new(
        t.migration_id.clone(),
        t.source,
        t.dest,
        t.chunks,
        t.concurrency,
        t.streams,
    );
    let (dest, uploads) = t.uploads;
    let completer = crate::split::Completer::start(dest, uploads, &shared);
    let registry = Arc::new(Registry::default());
    registry.add(shared.clone(), env.secret.clone());
    let (addr, server) = serve(registry, ([127, 0, 0, 1], 0).into()).await.map_err(|e| Failure {
        code: exit::FAILURE,
        message: format!("cannot start the gRPC server: {e}"),
    })?;
    env.coordinator = format!("http://{addr}");
    let exec = LocalExecutor { bin, env };
    tracing::info!(migration = %t.migration_id, chunks = n, grpc = %addr, "transfer starting");
    let mut progress = Progress::new(t.total_bytes);
    let limits = Limits {
        max_workers: t.max_workers,
        max_attempts: t.max_attempts,
    };
    let outcome = drive(
        &shared,
        &mut events,
        &exec,
        limits,
        Vec::new(),
        &mut |s: Snapshot| progress.update(&s),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    progress.finish();
    server.abort();
    if let Err(f) = outcome {
        completer.abort();
        return Err(f);
    }
    let results = shared.results();
    if let Some(missing) = all.iter().find(|k| !results.contains_key(*k)) {
        completer.abort();
        return Err(Failure {
            code: exit::FAILURE,
            message: format!("no worker reported {missing}; nothing was committed"),
        });
    }
    completer.finish(&shared, results).await
}

/// Bounds of a transfer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_workers: usize,
    pub max_attempts: u32,
}

/// A progress snapshot.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub bytes_done: u64,
    pub running: usize,
    pub finished: usize,
    pub chunks: usize,
    pub per_chunk: ChunkBytes,
}

/// Bytes (done, total) of each running chunk, for per-worker bars.
pub type ChunkBytes = Vec<(u32, u64, u64)>;

/// A chunk found already started (after a controller restart): its attempt, and its worker while
/// it still runs (`None`: it has finished).
pub struct Adopted<W> {
    pub chunk: u32,
    pub attempt: u32,
    pub worker: Option<W>,
}

/// Drives every chunk of `shared` to completion with `exec`: starts workers (at most
/// `max_workers` at once), watches their reports, heartbeats and exits, and retries failed
/// chunks up to `max_attempts`. `stop` ends the transfer early (interrupt, deletion).
pub async fn drive<E: Executor>(
    shared: &Arc<Shared>,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    exec: &E,
    limits: Limits,
    adopted: Vec<Adopted<E::Worker>>,
    progress: &mut (dyn FnMut(Snapshot) + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), Failure> {
    let n = shared.chunks();
    let mut attempts = vec![0u32; n];
    let mut running: HashMap<u32, Running<E::Worker>> = HashMap::new();
    let mut done: HashSet<u32> = HashSet::new();
    for a in adopted {
        if let Some(at) = attempts.get_mut(a.chunk as usize) {
            *at = a.attempt;
            shared.start_attempt(a.chunk, a.attempt);
            match a.worker {
                Some(worker) => {
                    running.insert(
                        a.chunk,
                        Running {
                            worker,
                            exited_at: None,
                        },
                    );
                }
                None => {
                    done.insert(a.chunk);
                }
            }
        }
    }
    let mut pending: VecDeque<u32> = (0..n as u32)
        .filter(|c| !done.contains(c) && !running.contains_key(c))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tokio::pin!(stop);

    let outcome: Result<(), Failure> = 'run: loop {
        while running.len() < limits.max_workers.max(1) {
            let Some(c) = pending.pop_front() else { break };
            attempts[c as usize] += 1;
            shared.start_attempt(c, attempts[c as usize]);
            match exec.launch(c, attempts[c as usize]) {
                Ok(worker) => {
                    running.insert(
                        c,
                        Running {
                            worker,
                            exited_at: None,
                        },
                    );
                }
                Err(e) => break 'run Err(e.into()),
            }
        }
        if done.len() == n {
            break Ok(());
        }
        // Failures noticed in this round: (chunk, reason, retryable).
        let mut failed: Vec<(u32, String, bool)> = Vec::new();
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Done { chunk, attempt }) if attempts.get(chunk as usize) == Some(&attempt) && running.contains_key(&chunk) => {
                    tracing::info!(chunk, attempt, "chunk done");
                    running.remove(&chunk);
                    done.insert(chunk);
                }
                Some(Event::Failed { chunk, attempt, error, retryable }) if attempts.get(chunk as usize) == Some(&attempt) && running.contains_key(&chunk) => {
                    failed.push((chunk, error, retryable));
                }
                Some(_) => {}
                None => break Err(Failure { code: exit::FAILURE, message: "the gRPC service stopped".into() }),
            },
            _ = tick.tick() => {
                for (&c, r) in running.iter_mut() {
                    if r.exited_at.is_none() && let Some(ok) = r.worker.exited() {
                        r.exited_at = Some((Instant::now(), ok));
                    }
                    match r.exited_at {
                        Some((_, false)) => {
                            let why = r.worker.last_words().map(|l| format!(": {l}")).unwrap_or_default();
                            failed.push((c, format!("the worker process died{why}"), true));
                        }
                        Some((at, true)) if at.elapsed() > EXIT_GRACE => failed.push((c, "the worker exited without finishing its chunk".into(), true)),
                        _ => {}
                    }
                    if shared.last_seen(c).is_some_and(|t| t.elapsed() > HEARTBEAT_TIMEOUT) {
                        failed.push((c, format!("no heartbeat for {}s", HEARTBEAT_TIMEOUT.as_secs()), true));
                    }
                }
                let mut per_chunk: ChunkBytes = running.keys().map(|&c| { let (d, t) = shared.chunk_bytes(c); (c, d, t) }).collect();
                per_chunk.sort_unstable();
                progress(Snapshot { bytes_done: shared.bytes_done(), running: running.len(), finished: done.len(), chunks: n, per_chunk });
            }
            _ = &mut stop => {
                break Err(Failure { code: exit::FAILURE, message: "interrupted: workers stopped, nothing was committed".into() });
            }
        }
        let mut fatal = None;
        for (c, error, retryable) in failed {
            let Some(mut r) = running.remove(&c) else { continue };
            r.worker.kill();
            let attempt = attempts[c as usize];
            if retryable && attempt < limits.max_attempts {
                tracing::warn!(chunk = c, attempt, %error, "chunk failed; retrying");
                pending.push_back(c);
            } else {
                fatal.get_or_insert(Failure {
                    code: exit::FAILURE,
                    message: format!("chunk {c} failed after {attempt} attempt(s): {error}; nothing was committed"),
                });
            }
        }
        if let Some(f) = fatal {
            break Err(f);
        }
    };
    if outcome.is_err() {
        shared.cancel("the migration stopped");
        for r in running.values_mut() {
            r.worker.kill();
        }
    }
    outcome
}
