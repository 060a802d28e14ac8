//! Step 5, the transfer: serve gRPC, start one worker per chunk (at most `max_workers` at once),
//! watch registrations, heartbeats and exits, retry failed or dead chunks a bounded number of
//! times, and report progress. Workers never commit; their per-file results come back here.
//!
//! Where workers run is a [`Runtime`]: local processes ([`executor::Local`]) or Kubernetes Jobs
//! (`crate::k8s::runtime`). The loop ([`drive`]) does not know which one it drives.

pub(crate) mod executor;
pub(crate) mod grpc;
pub(crate) mod multipart;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubmigrate_proto as pb;

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::flow::resolve::Sides;
use executor::{Executor, WorkerHandle};
use grpc::{Event, Shared};

/// A worker that exited cleanly gets this long for its last report to arrive.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Where workers run: starts serving a transfer's workers, launches them, and says when the run
/// must stop.
pub trait Runtime: Send {
    type Exec: Executor + Send + Sync;
    /// The id the workers of the next transfer report under.
    fn migration_id(&self) -> String;
    /// Starts answering `shared`'s workers (gRPC) and returns the executor that launches them,
    /// with the chunks an earlier coordinator already started (after a restart).
    fn start(
        &mut self,
        shared: &Arc<Shared>,
        sides: &Sides,
    ) -> impl Future<Output = Result<Started<Self::Exec>>> + Send;
    /// The multipart uploads an earlier coordinator of this migration opened (after a restart),
    /// and where to keep them from now on. By default, nothing is kept.
    fn journal(&mut self) -> impl Future<Output = Result<Resumed>> + Send {
        async { Ok((None, None)) }
    }
    /// Resolves when the transfer must stop (an interrupt, the Migration deleted).
    fn stop(&self) -> impl Future<Output = ()> + Send + 'static;
    /// The transfer is over: stop answering its workers.
    fn finish(&mut self, shared: &Arc<Shared>);
}

/// What [`Runtime::journal`] gives: the uploads an earlier coordinator opened, and where to keep
/// them from now on.
pub type Resumed = (Option<multipart::Saved>, Option<Arc<dyn multipart::Journal>>);

/// What [`Runtime::start`] gives.
pub struct Started<E: Executor> {
    pub exec: E,
    pub adopted: Vec<Adopted<E::Worker>>,
}

/// What the transfer needs.
pub struct Transfer {
    pub migration_id: String,
    pub source: pb::Side,
    pub dest: pb::Side,
    pub chunks: Vec<Vec<pb::FileTask>>,
    pub limits: Limits,
    pub concurrency: u32,
    pub streams: u32,
    /// The destination branch: the coordinator completes the multipart uploads of files split
    /// across workers as their parts come in, and opens one again when its URLs expired.
    pub branch: String,
    /// Those uploads, with what an earlier coordinator had of them.
    pub saved: multipart::Saved,
    /// Where the uploads' state is kept across restarts.
    pub journal: Option<Arc<dyn multipart::Journal>>,
}

struct Running<W> {
    worker: W,
    launched: Instant,
    exited_at: Option<(Instant, bool)>,
}

/// Runs every chunk to completion with `runtime`'s workers, completing split files' uploads on
/// the way, and returns the per-file results by path.
pub async fn run<R: Runtime>(
    t: Transfer,
    runtime: &mut R,
    sides: &Sides,
    progress: &mut (dyn FnMut(Snapshot) + Send),
) -> Result<HashMap<String, pb::FileResult>> {
    let n = t.chunks.len();
    let (shared, mut events) = Shared::new(
        t.migration_id.clone(),
        t.source,
        t.dest,
        t.chunks,
        t.concurrency,
        t.streams,
        t.limits.max_workers,
    );
    let saved = t.saved;
    // Slices an earlier coordinator has ETags for are done: not sent again.
    shared.preload(saved.reported.iter().map(|r| pb::FileResult {
        path: r.path.clone(),
        first_part: r.first_part,
        etags: r.etags.clone(),
        ..Default::default()
    }));
    let dest = multipart::Dest {
        hub: sides.dest.hub.clone(),
        repo: sides.dest.repo.clone(),
        branch: t.branch,
    };
    let completer = multipart::Completer::start(dest, saved, &shared, t.journal);
    let started = match runtime.start(&shared, sides).await {
        Ok(s) => s,
        Err(e) => {
            completer.abort();
            return Err(e);
        }
    };
    tracing::info!(migration = %t.migration_id, chunks = n, "transfer starting");
    // Chunks an earlier coordinator saw finish: their results were not heard here.
    let finished_before: HashSet<u32> = started
        .adopted
        .iter()
        .filter(|a| a.worker.is_none())
        .map(|a| a.chunk)
        .collect();
    let stop = runtime.stop();
    let outcome = drive(
        &shared,
        &mut events,
        &started.exec,
        t.limits,
        started.adopted,
        progress,
        stop,
    )
    .await;
    runtime.finish(&shared);
    if let Err(e) = outcome {
        completer.abort();
        return Err(e);
    }
    if let Some(missing) = shared.missing(&finished_before) {
        completer.abort();
        return Err(Error::Transfer(format!(
            "no worker reported {missing}; nothing was committed"
        )));
    }
    completer.finish(&shared, shared.results()).await
}

/// Bounds of a transfer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_workers: usize,
    pub max_attempts: u32,
    /// How long a launched worker may take to register (scheduling, image pulls).
    pub start_timeout: Duration,
    /// How long a registered worker may stay silent.
    pub heartbeat_timeout: Duration,
}

impl Limits {
    /// The limits a run's arguments set.
    pub fn of(args: &RunArgs) -> Self {
        Limits {
            max_workers: args.max_workers.max(1) as usize,
            max_attempts: args.max_attempts.max(1),
            start_timeout: args.start_timeout,
            heartbeat_timeout: crate::options::HEARTBEAT_TIMEOUT,
        }
    }
}

/// A progress snapshot.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub bytes_done: u64,
    pub running: usize,
    pub finished: usize,
    pub chunks: usize,
    pub per_chunk: ChunkBytes,
    /// Workers launched but not registered yet, and why (e.g. a pod's waiting reason).
    pub waiting: Vec<(u32, String)>,
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
) -> Result<()> {
    let n = shared.chunks();
    let mut attempts = vec![0u32; n];
    let mut running: HashMap<u32, Running<E::Worker>> = HashMap::new();
    let mut done: HashSet<u32> = HashSet::new();
    // Running chunks given parts of a reopened upload: they run again once done.
    let mut rerun: HashSet<u32> = HashSet::new();
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
                            launched: Instant::now(),
                            exited_at: None,
                        },
                    );
                }
                // A slice this coordinator has no ETags for (its upload was opened again) is
                // sent again.
                None if shared.has_unreported(a.chunk, true) => {}
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

    let outcome: Result<()> = 'run: loop {
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
                            launched: Instant::now(),
                            exited_at: None,
                        },
                    );
                }
                Err(e) => break 'run Err(e),
            }
        }
        // Over when every chunk is done and no completion or reopening may send one back.
        if done.len() == n && !shared.busy() {
            break Ok(());
        }
        // Failures noticed in this round: (chunk, reason, retryable).
        let mut failed: Vec<(u32, String, bool)> = Vec::new();
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Done { chunk, attempt }) if attempts.get(chunk as usize) == Some(&attempt) && running.contains_key(&chunk) => {
                    tracing::info!(chunk, attempt, "chunk done");
                    running.remove(&chunk);
                    if rerun.remove(&chunk) && shared.has_unreported(chunk, false) {
                        pending.push_front(chunk);
                    } else {
                        done.insert(chunk);
                    }
                }
                Some(Event::Reopened { chunk }) => {
                    if done.remove(&chunk) {
                        pending.push_front(chunk);
                    } else if running.contains_key(&chunk) {
                        rerun.insert(chunk);
                    }
                }
                Some(Event::Fatal { error }) => break Err(Error::Transfer(error)),
                Some(Event::Failed { chunk, attempt, error, retryable }) if attempts.get(chunk as usize) == Some(&attempt) && running.contains_key(&chunk) => {
                    failed.push((chunk, error, retryable));
                }
                Some(_) => {}
                None => break Err(Error::Transfer("the gRPC service stopped".into())),
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
                    // The heartbeat deadline runs from registration; before it, the start deadline
                    // covers scheduling and image pulls.
                    match shared.last_seen(c) {
                        Some(t) if t.elapsed() > limits.heartbeat_timeout => failed.push((
                            c,
                            format!("no heartbeat for {}", crate::fmt::duration(limits.heartbeat_timeout)),
                            true,
                        )),
                        None if r.launched.elapsed() > limits.start_timeout => {
                            let why = r.worker.waiting().map(|w| format!(" ({w})")).unwrap_or_default();
                            failed.push((c, format!("the worker did not start within {}{why}", crate::fmt::duration(limits.start_timeout)), true));
                        }
                        _ => {}
                    }
                }
                let mut per_chunk: ChunkBytes = running.keys().map(|&c| { let (d, t) = shared.chunk_bytes(c); (c, d, t) }).collect();
                per_chunk.sort_unstable();
                let mut waiting: Vec<(u32, String)> = running
                    .iter()
                    .filter(|(c, _)| shared.last_seen(**c).is_none())
                    .map(|(&c, r)| (c, r.worker.waiting().unwrap_or_else(|| "starting".into())))
                    .collect();
                waiting.sort_unstable();
                progress(Snapshot { bytes_done: shared.bytes_done(), running: running.len(), finished: done.len(), chunks: n, per_chunk, waiting });
            }
            _ = &mut stop => {
                break Err(Error::Interrupted);
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
                fatal.get_or_insert(Error::Transfer(format!(
                    "chunk {c} failed after {attempt} attempt(s): {error}; nothing was committed"
                )));
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
