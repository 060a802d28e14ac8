//! The coordinator's gRPC service: workers register and get their chunk, then stream progress,
//! per-file results and heartbeats. Every call carries its chunk's secret (derived from the
//! per-migration one, [`chunk_secret`]) and is checked before its body is decoded; a worker
//! speaks only for its own chunk, and events from stale attempts are ignored. The run loop learns
//! of completions and failures through a channel and reads progress from the shared state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use hubmigrate_proto as pb;
use pb::coordinator_server::{Coordinator, CoordinatorServer};
use sha2::Digest;
use tokio::sync::{mpsc, watch};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// What the run loop hears from workers.
#[derive(Debug)]
pub enum Event {
    Done {
        chunk: u32,
        attempt: u32,
    },
    Failed {
        chunk: u32,
        attempt: u32,
        error: String,
        retryable: bool,
    },
    /// A split file's upload was opened again (its URLs expired): `chunk` holds parts of it,
    /// and must run (again) to send them under the new URLs.
    Reopened {
        chunk: u32,
    },
    /// The multipart completions cannot go on: the transfer stops.
    Fatal {
        error: String,
    },
}

/// Per-chunk bookkeeping.
#[derive(Debug, Default)]
struct ChunkState {
    /// The attempt currently allowed to report (0: none running).
    attempt: u32,
    last_seen: Option<Instant>,
    /// Bytes of files (and slices) in flight in the current attempt.
    in_flight: HashMap<pb::TaskKey, u64>,
    /// Bytes of this chunk's finished files.
    done: u64,
}

#[derive(Default)]
struct Inner {
    /// The tasks of each chunk (a reopened upload moves a split file's slices).
    tasks: Vec<Vec<pb::FileTask>>,
    chunks: Vec<ChunkState>,
    results: HashMap<pb::TaskKey, pb::FileResult>,
    done_bytes: u64,
    /// Slice results handed to the listener and not yet dealt with, plus the completions and
    /// reopenings it runs: while any is, the transfer is not over.
    busy: usize,
}

impl Inner {
    /// Records `result` of a task of chunk `i` worth `bytes`; its bytes count once, however
    /// often it is reported. Returns whether it is new.
    fn record(&mut self, i: usize, bytes: u64, result: pb::FileResult) -> bool {
        let key = result.key();
        self.chunks[i].in_flight.remove(&key);
        let new = !self.results.contains_key(&key);
        if new {
            self.done_bytes += bytes;
            self.chunks[i].done += bytes;
        }
        self.results.insert(key, result);
        new
    }

    /// Forgets the result of `key` in chunk `i` (its upload was opened again).
    fn unrecord(&mut self, i: usize, bytes: u64, key: &pb::TaskKey) {
        if self.results.remove(key).is_some() {
            self.done_bytes = self.done_bytes.saturating_sub(bytes);
            self.chunks[i].done = self.chunks[i].done.saturating_sub(bytes);
        }
    }

    /// The task of chunk `i` with this key.
    fn task(&self, i: usize, key: &pb::TaskKey) -> Option<&pb::FileTask> {
        self.tasks.get(i)?.iter().find(|t| &t.key() == key)
    }
}

/// Connections for each chunk's worker: `streams` for the largest chunk, and for the others in
/// proportion to their bytes (rounded up, at least 1). When per-connection speed limits a
/// transfer, every chunk then ends when the largest would anyway; when the hubs share one total
/// allowance among connections, the largest chunk gets the share its bytes call for instead of
/// waiting alone at the end with a fraction of the connections it had.
pub fn chunk_streams(tasks: &[Vec<pb::FileTask>], streams: u32) -> Vec<u32> {
    let bytes: Vec<u64> = tasks.iter().map(|c| c.iter().map(|t| t.bytes()).sum()).collect();
    let largest = bytes.iter().copied().max().unwrap_or(0).max(1);
    let streams = streams.max(1);
    bytes
        .iter()
        .map(|&b| ((u128::from(b) * u128::from(streams)).div_ceil(u128::from(largest)) as u32).clamp(1, streams))
        .collect()
}

/// State shared by the service and the run loop.
pub struct Shared {
    pub migration_id: String,
    source: pb::Side,
    dest: pb::Side,
    concurrency: u32,
    /// Connections each chunk's worker may open: see [`chunk_streams`].
    streams: Vec<u32>,
    /// Workers running at once, who share the user's quotas at the hubs.
    quota_share: u32,
    inner: Mutex<Inner>,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Sender<Option<String>>,
    /// Where each new per-task result is copied, while someone listens.
    listener: Mutex<Option<mpsc::UnboundedSender<pb::FileResult>>>,
}

impl Shared {
    /// Sets up the state for `tasks` (one list per chunk); events go to the returned receiver.
    pub fn new(
        migration_id: String,
        source: pb::Side,
        dest: pb::Side,
        tasks: Vec<Vec<pb::FileTask>>,
        concurrency: u32,
        streams: u32,
        max_workers: usize,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let streams = chunk_streams(&tasks, streams);
        let quota_share = tasks.len().clamp(1, max_workers.max(1)) as u32;
        let inner = Inner {
            chunks: tasks.iter().map(|_| ChunkState::default()).collect(),
            tasks,
            ..Default::default()
        };
        let (cancel, _) = watch::channel(None);
        (
            Arc::new(Shared {
                migration_id,
                source,
                dest,
                concurrency,
                streams,
                quota_share,
                inner: Mutex::new(inner),
                events: tx,
                cancel,
                listener: Mutex::new(None),
            }),
            rx,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Marks `attempt` of `chunk` as the one allowed to report from now on.
    pub fn start_attempt(&self, chunk: u32, attempt: u32) {
        let mut g = self.lock();
        if let Some(c) = g.chunks.get_mut(chunk as usize) {
            c.attempt = attempt;
            // Heard from only once its worker registers: the heartbeat deadline starts there.
            c.last_seen = None;
            c.in_flight.clear();
        }
    }

    /// When the chunk's worker was last heard from.
    pub fn last_seen(&self, chunk: u32) -> Option<Instant> {
        self.lock().chunks.get(chunk as usize).and_then(|c| c.last_seen)
    }

    /// Bytes moved so far: finished files plus files in flight.
    pub fn bytes_done(&self) -> u64 {
        let g = self.lock();
        g.done_bytes + g.chunks.iter().flat_map(|c| c.in_flight.values()).sum::<u64>()
    }

    /// Bytes moved and bytes in all, of one chunk.
    pub fn chunk_bytes(&self, chunk: u32) -> (u64, u64) {
        let g = self.lock();
        let total = g
            .tasks
            .get(chunk as usize)
            .map(|t| t.iter().map(|f| f.bytes()).sum())
            .unwrap_or(0);
        let done = g
            .chunks
            .get(chunk as usize)
            .map(|c| c.done + c.in_flight.values().sum::<u64>())
            .unwrap_or(0);
        (done.min(total), total)
    }

    /// The per-task results, taken once the transfer is over (regular files' contents are held
    /// once: they move out of here): by path, and by first part for the slices of split files.
    pub fn results(&self) -> HashMap<pb::TaskKey, pb::FileResult> {
        std::mem::take(&mut self.lock().results)
    }

    /// Takes results an earlier coordinator had (the slices it journalled) as reported: their
    /// bytes count as done and a new attempt is not sent them. Unknown ones are ignored.
    pub fn preload(&self, results: impl IntoIterator<Item = pb::FileResult>) {
        let mut g = self.lock();
        for r in results {
            let key = r.key();
            let Some((i, bytes)) = (0..g.tasks.len()).find_map(|i| g.task(i, &key).map(|t| (i, t.bytes()))) else {
                continue;
            };
            if !g.results.contains_key(&key) {
                g.record(i, bytes, r);
            }
        }
    }

    /// A copy of every per-task result reported from now on, until [`Shared::unsubscribe`].
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<pb::FileResult> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    /// Ends the copies: the subscriber's receiver ends.
    pub fn unsubscribe(&self) {
        self.listener.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The tasks of `chunk` for a new attempt: what an earlier attempt already reported is not
    /// sent again (a slice's parts are in, and its upload may be completed already).
    fn tasks_for(&self, chunk: usize) -> Vec<pb::FileTask> {
        let g = self.lock();
        g.tasks[chunk]
            .iter()
            .filter(|t| !g.results.contains_key(&t.key()))
            .cloned()
            .collect()
    }

    /// Whether `chunk` has a task (with `slices`, a slice) no attempt reported.
    pub fn has_unreported(&self, chunk: u32, slices: bool) -> bool {
        let g = self.lock();
        g.tasks.get(chunk as usize).is_some_and(|t| {
            t.iter()
                .any(|t| (!slices || t.slice.is_some()) && !g.results.contains_key(&t.key()))
        })
    }

    /// A task no attempt reported, outside the chunks in `skip`.
    pub fn missing(&self, skip: &std::collections::HashSet<u32>) -> Option<pb::TaskKey> {
        let g = self.lock();
        (0..)
            .zip(&g.tasks)
            .filter(|(c, _)| !skip.contains(c))
            .flat_map(|(_, t)| t.iter().map(pb::FileTask::key))
            .find(|k| !g.results.contains_key(k))
    }

    /// Whether the listener still has work that may send chunks back to run.
    pub fn busy(&self) -> bool {
        self.lock().busy > 0
    }

    /// The listener starts (`true`) or ends (`false`) a piece of work: a completion, a reopening.
    pub fn work(&self, started: bool) {
        let mut g = self.lock();
        g.busy = if started { g.busy + 1 } else { g.busy.saturating_sub(1) };
    }

    /// The upload of `path` was opened again as `upload` (`None`: the store holds the object
    /// now, nothing to send): what was reported of its slices is forgotten, each slice takes the
    /// new URLs of its parts, and every chunk holding one is told to run (again).
    pub fn reopen(&self, path: &str, upload: Option<&super::multipart::Upload>) {
        let mut g = self.lock();
        let mut holders = Vec::new();
        for i in 0..g.tasks.len() {
            let keys: Vec<(pb::TaskKey, u64)> = g.tasks[i]
                .iter()
                .filter(|t| t.path == path && t.slice.is_some())
                .map(|t| (t.key(), t.bytes()))
                .collect();
            if keys.is_empty() {
                continue;
            }
            for (key, bytes) in &keys {
                g.unrecord(i, *bytes, key);
                g.chunks[i].in_flight.remove(key);
            }
            match upload {
                None => g.tasks[i].retain(|t| t.path != path || t.slice.is_none()),
                Some(u) => {
                    for t in g.tasks[i].iter_mut().filter(|t| t.path == path) {
                        if let Some(s) = t.slice.as_mut() {
                            let first = s.first_part.max(1) as usize - 1;
                            let end = (first + s.urls.len()).min(u.urls.len());
                            s.urls = u.urls[first.min(end)..end].to_vec();
                            s.upload = u.generation;
                        }
                    }
                    holders.push(i as u32);
                }
            }
        }
        drop(g);
        for chunk in holders {
            let _ = self.events.send(Event::Reopened { chunk });
        }
    }

    /// The listener cannot go on: the transfer stops with `error`.
    pub fn fatal(&self, error: String) {
        let _ = self.events.send(Event::Fatal { error });
    }

    /// Tells every worker to stop.
    pub fn cancel(&self, reason: &str) {
        let _ = self.cancel.send(Some(reason.to_string()));
    }

    /// Checks an event's ids; `Some(chunk index)` when it comes from the current attempt.
    fn current(&self, migration: &str, chunk: u32, attempt: u32) -> Option<usize> {
        if migration != self.migration_id {
            return None;
        }
        let g = self.lock();
        g.chunks
            .get(chunk as usize)
            .filter(|c| c.attempt == attempt && attempt > 0)
            .map(|_| chunk as usize)
    }

    fn apply(&self, ev: pb::WorkerEvent) {
        let Some(i) = self.current(&ev.migration_id, ev.chunk_id, ev.attempt) else {
            tracing::debug!(
                chunk = ev.chunk_id,
                attempt = ev.attempt,
                "ignoring an event from a stale or unknown attempt"
            );
            return;
        };
        // Inline content is hashed here, before the state is locked.
        let inline = match &ev.event {
            Some(pb::worker_event::Event::File(f)) if f.outcome() == pb::FileOutcome::Inline => Some((
                hubmigrate_hub::hashing::sha256_hex(&f.content),
                hubmigrate_hub::hashing::git_blob_id(&f.content),
            )),
            _ => None,
        };
        let mut g = self.lock();
        g.chunks[i].last_seen = Some(Instant::now());
        use pb::worker_event::Event as E;
        match ev.event {
            Some(E::Heartbeat(_)) | None => {}
            Some(E::Progress(p)) => {
                g.chunks[i]
                    .in_flight
                    .insert(pb::TaskKey::new(&p.path, p.first_part), p.bytes);
            }
            Some(E::File(mut f)) => {
                let key = f.key();
                let current = g.task(i, &key).map(|t| (t.bytes(), t.slice.as_ref().map(|s| s.upload)));
                let bytes = match current {
                    // A slice of an upload opened again since: its parts are void.
                    None if f.first_part > 0 => {
                        tracing::debug!(chunk = i, task = %key, "ignoring a slice of a reopened upload");
                        g.chunks[i].in_flight.remove(&key);
                        return;
                    }
                    Some((_, Some(upload))) if upload != f.upload => {
                        tracing::debug!(chunk = i, task = %key, "ignoring a slice of a reopened upload");
                        g.chunks[i].in_flight.remove(&key);
                        return;
                    }
                    None => {
                        tracing::warn!(chunk = i, task = %key, "a worker reported a file outside its chunk; ignored");
                        return;
                    }
                    Some((bytes, _)) => bytes,
                };
                if let Some(why) = g.task(i, &key).and_then(|t| differs_from_manifest(t, &f, inline)) {
                    // Not recorded: the chunk fails (retryable), so the file is sent again by a
                    // new attempt, and the run fails naming it once attempts run out.
                    g.chunks[i].in_flight.remove(&key);
                    drop(g);
                    tracing::warn!(chunk = i, task = %key, %why, "a worker result does not match the manifest");
                    let _ = self.events.send(Event::Failed {
                        chunk: ev.chunk_id,
                        attempt: ev.attempt,
                        error: why,
                        retryable: true,
                    });
                    return;
                }
                let expired = f.outcome() == pb::FileOutcome::Expired;
                let new = !g.results.contains_key(&key);
                if (new || expired)
                    && let Some(l) = self.listener.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
                {
                    // The listener completes multipart uploads: it needs the ETags, not the
                    // contents of regular files.
                    let content = std::mem::take(&mut f.content);
                    if l.send(f.clone()).is_ok() && f.first_part > 0 {
                        g.busy += 1;
                    }
                    f.content = content;
                }
                if expired {
                    // Nothing of it counts: the chunk runs again once the upload is reopened.
                    g.chunks[i].in_flight.remove(&key);
                } else {
                    g.record(i, bytes, f);
                }
            }
            Some(E::Done(_)) => {
                drop(g);
                let _ = self.events.send(Event::Done {
                    chunk: ev.chunk_id,
                    attempt: ev.attempt,
                });
            }
            Some(E::Failed(f)) => {
                drop(g);
                let _ = self.events.send(Event::Failed {
                    chunk: ev.chunk_id,
                    attempt: ev.attempt,
                    error: f.error,
                    retryable: f.retryable,
                });
            }
        }
    }
}

/// Why a worker's result for `task` cannot be committed, if it cannot: its size or hashes differ
/// from the manifest's, or the content it carries (a regular file, committed inline) does not
/// hash to what the manifest says: `inline` holds its sha256 and git blob id, hashed by the
/// coordinator itself.
fn differs_from_manifest(task: &pb::FileTask, f: &pb::FileResult, inline: Option<(String, String)>) -> Option<String> {
    let whole = f.first_part == 0 && task.slice.is_none();
    if f.outcome() == pb::FileOutcome::Expired || !whole {
        return None;
    }
    let path = &task.path;
    let (sha, oid) = if let Some(digests) = inline {
        if f.content.len() as u64 != task.size {
            return Some(format!(
                "{path}: the worker sent {} bytes, the manifest says {}",
                f.content.len(),
                task.size
            ));
        }
        digests
    } else {
        if f.size != task.size {
            return Some(format!(
                "{path}: the worker read {} bytes, the manifest says {}",
                f.size, task.size
            ));
        }
        (f.sha256.clone(), f.git_oid.clone())
    };
    let differs = |want: &str, got: &str| !want.is_empty() && !got.is_empty() && want != got;
    if differs(&task.sha256, &sha) {
        return Some(format!(
            "{path}: the bytes read hash to sha256 {sha}, the manifest says {}",
            task.sha256
        ));
    }
    if differs(&task.git_oid, &oid) {
        return Some(format!(
            "{path}: the bytes read are git blob {oid}, the manifest says {}",
            task.git_oid
        ));
    }
    None
}

/// The migrations a gRPC server answers for, each with its own secret: one entry for a local
/// run, one per active Migration in the controller.
#[derive(Default)]
pub struct Registry {
    inner: std::sync::RwLock<HashMap<String, (Arc<Shared>, String)>>,
}

impl Registry {
    /// Starts answering for `shared`'s migration, with `secret`.
    pub fn add(&self, shared: Arc<Shared>, secret: String) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.insert(shared.migration_id.clone(), (shared, secret));
    }

    /// Stops answering for a migration.
    pub fn remove(&self, migration_id: &str) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(migration_id);
    }

    fn get(&self, migration_id: &str) -> Option<(Arc<Shared>, String)> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(migration_id)
            .cloned()
    }

    /// The migration and chunk a call is for, if its metadata names a known migration and one
    /// of its chunks, and carries that chunk's secret (compared in constant time).
    fn authorize<T>(&self, req: &Request<T>) -> Result<(Arc<Shared>, u32), Status> {
        let md = req.metadata();
        let text = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        let refused = || Status::unauthenticated("missing or wrong migration secret");
        let Some((shared, secret)) = self.get(text(pb::MIGRATION_HEADER)) else {
            return Err(refused());
        };
        let chunk: u32 = text(pb::CHUNK_HEADER).parse().map_err(|_| refused())?;
        let (want, given) = (chunk_secret(&secret, chunk), text(pb::SECRET_HEADER));
        let same = given.len() == want.len() && given.bytes().zip(want.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if same && (chunk as usize) < shared.chunks() {
            Ok((shared, chunk))
        } else {
            Err(refused())
        }
    }
}

/// The secret of one chunk: HMAC-SHA256 of its number under the per-migration secret, so a
/// worker holds only its own and cannot derive another chunk's or the migration's.
pub fn chunk_secret(secret: &str, chunk: u32) -> String {
    use sha2::Sha256;
    let mut key = [0u8; 64];
    if secret.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(secret.as_bytes()));
    } else {
        key[..secret.len()].copy_from_slice(secret.as_bytes());
    }
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(format!("hubmigrate chunk {chunk}"))
        .finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

/// The service.
#[derive(Clone)]
pub struct Service {
    registry: Arc<Registry>,
}

type CommandStream = Pin<Box<dyn Stream<Item = Result<pb::Command, Status>> + Send>>;

#[tonic::async_trait]
impl Coordinator for Service {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::Assignment>, Status> {
        let (shared, chunk) = self.registry.authorize(&req)?;
        let r = req.into_inner();
        let s = &shared;
        if r.chunk_id != chunk {
            return Err(Status::permission_denied(format!(
                "a worker of chunk {chunk} cannot register for chunk {}",
                r.chunk_id
            )));
        }
        let Some(i) = s.current(&r.migration_id, r.chunk_id, r.attempt) else {
            return Err(Status::failed_precondition(format!(
                "chunk {} attempt {} of migration {} is not expected",
                r.chunk_id, r.attempt, r.migration_id
            )));
        };
        tracing::info!(chunk = r.chunk_id, attempt = r.attempt, worker = %r.worker, "worker registered");
        s.lock().chunks[i].last_seen = Some(Instant::now());
        Ok(Response::new(pb::Assignment {
            migration_id: s.migration_id.clone(),
            chunk_id: r.chunk_id,
            source: Some(s.source.clone()),
            dest: Some(s.dest.clone()),
            files: s.tasks_for(i),
            heartbeat_ms: 2000,
            concurrency: s.concurrency,
            streams: s.streams.get(i).copied().unwrap_or(1),
            quota_share: s.quota_share,
            max_wait_secs: hubmigrate_hub::quota::max_wait().as_secs(),
        }))
    }

    type ReportStream = CommandStream;

    async fn report(&self, req: Request<Streaming<pb::WorkerEvent>>) -> Result<Response<CommandStream>, Status> {
        let (shared, chunk) = self.registry.authorize(&req)?;
        let mut inbound = req.into_inner();
        let cancel_rx = shared.cancel.subscribe();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = inbound.next().await {
                if ev.chunk_id == chunk {
                    shared.apply(ev);
                } else {
                    tracing::warn!(
                        chunk,
                        claimed = ev.chunk_id,
                        "a worker spoke for another chunk; ignored"
                    );
                }
            }
            let _ = ended_tx.send(());
        });
        // One command at most (cancel); the stream ends when the worker's stream ends, which
        // tells the worker that everything it sent has been read.
        let mut cancel = cancel_rx;
        let commands = futures_util::stream::once(async move {
            tokio::select! {
                r = cancel.wait_for(|c| c.is_some()) => {
                    let reason = r.ok().and_then(|c| c.clone()).unwrap_or_default();
                    Some(Ok(pb::Command { command: Some(pb::command::Command::Cancel(pb::Cancel { reason })) }))
                }
                _ = ended_rx => None,
            }
        })
        .filter_map(std::future::ready);
        Ok(Response::new(Box::pin(commands)))
    }
}

/// Starts the gRPC server on `addr` (port 0 picks one) for the migrations in `registry`, over
/// TLS with `tls` (the controller's certificate) or in clear (local runs, on loopback); returns
/// the bound address.
pub async fn serve(
    registry: Arc<Registry>,
    addr: SocketAddr,
    tls: Option<tonic::transport::Identity>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let incoming = TcpIncoming::bind(addr)?;
    let bound = incoming.local_addr()?;
    // The interceptor checks every call's credentials before its body is decoded (a body may be
    // up to 64 MiB: a result carries the content of a regular file).
    let check = registry.clone();
    let svc = tonic::service::interceptor::InterceptedService::new(
        CoordinatorServer::new(Service { registry }).max_decoding_message_size(64 << 20),
        move |req: Request<()>| check.authorize(&req).map(|_| req),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("the gRPC certificate: {e}")))?;
    }
    let handle = tokio::spawn(async move {
        if let Err(e) = builder.add_service(svc).serve_with_incoming(incoming).await {
            tracing::error!(error = %e, "the gRPC server stopped");
        }
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests;
