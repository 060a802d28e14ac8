//! The coordinator's gRPC service: workers register and get their chunk, then stream progress,
//! per-file results and heartbeats. Calls without the per-migration secret are refused; events
//! from stale attempts or for unknown chunks are ignored. The run loop learns of completions and
//! failures through a channel and reads progress from the shared state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use hubmigrate_proto as pb;
use pb::coordinator_server::{Coordinator, CoordinatorServer};
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
    chunks: Vec<ChunkState>,
    results: HashMap<pb::TaskKey, pb::FileResult>,
    done_bytes: u64,
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
}

/// State shared by the service and the run loop.
pub struct Shared {
    pub migration_id: String,
    source: pb::Side,
    dest: pb::Side,
    tasks: Vec<Vec<pb::FileTask>>,
    concurrency: u32,
    streams: u32,
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
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            chunks: tasks.iter().map(|_| ChunkState::default()).collect(),
            ..Default::default()
        };
        let (cancel, _) = watch::channel(None);
        (
            Arc::new(Shared {
                migration_id,
                source,
                dest,
                tasks,
                concurrency,
                streams,
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
        self.tasks.len()
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
        let total = self
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
            let Some((i, task)) = self
                .tasks
                .iter()
                .enumerate()
                .find_map(|(i, tasks)| tasks.iter().find(|t| t.key() == key).map(|t| (i, t)))
            else {
                continue;
            };
            if !g.results.contains_key(&key) {
                g.record(i, task.bytes(), r);
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

    /// The tasks of `chunk` for a new attempt: slices an earlier attempt already reported are
    /// not sent again (their parts are in, and their upload may be completed already).
    fn tasks_for(&self, chunk: usize) -> Vec<pb::FileTask> {
        let g = self.lock();
        self.tasks[chunk]
            .iter()
            .filter(|t| t.slice.is_none() || !g.results.contains_key(&t.key()))
            .cloned()
            .collect()
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
                let Some(task) = self.tasks[i].iter().find(|t| t.key() == key) else {
                    tracing::warn!(chunk = i, task = %key, "a worker reported a file outside its chunk; ignored");
                    return;
                };
                let bytes = task.bytes();
                let new = !g.results.contains_key(&key);
                if new && let Some(l) = self.listener.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    // The listener completes multipart uploads: it needs the ETags, not the
                    // contents of regular files.
                    let content = std::mem::take(&mut f.content);
                    let _ = l.send(f.clone());
                    f.content = content;
                }
                g.record(i, bytes, f);
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

    /// The migration a call is for, if its metadata names a known one and carries its secret
    /// (compared in constant time).
    fn authorize<T>(&self, req: &Request<T>) -> Result<Arc<Shared>, Status> {
        let md = req.metadata();
        let id = md.get(pb::MIGRATION_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        let given = md.get(pb::SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some((shared, secret)) = self.get(id) else {
            return Err(Status::unauthenticated("missing or wrong migration secret"));
        };
        let same =
            given.len() == secret.len() && given.bytes().zip(secret.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if same {
            Ok(shared)
        } else {
            Err(Status::unauthenticated("missing or wrong migration secret"))
        }
    }
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
        let shared = self.registry.authorize(&req)?;
        let r = req.into_inner();
        let s = &shared;
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
            streams: s.streams,
        }))
    }

    type ReportStream = CommandStream;

    async fn report(&self, req: Request<Streaming<pb::WorkerEvent>>) -> Result<Response<CommandStream>, Status> {
        let shared = self.registry.authorize(&req)?;
        let mut inbound = req.into_inner();
        let cancel_rx = shared.cancel.subscribe();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = inbound.next().await {
                shared.apply(ev);
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

/// Starts the gRPC server on `addr` (port 0 picks one) for the migrations in `registry`;
/// returns the bound address.
pub async fn serve(
    registry: Arc<Registry>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let incoming = TcpIncoming::bind(addr)?;
    let bound = incoming.local_addr()?;
    let svc = CoordinatorServer::new(Service { registry }).max_decoding_message_size(64 << 20);
    let handle = tokio::spawn(async move {
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "the gRPC server stopped");
        }
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(path: &str, first_part: u32) -> pb::FileTask {
        pb::FileTask {
            path: path.into(),
            size: 100,
            lfs: true,
            slice: (first_part > 0).then(|| pb::Slice {
                part_size: 10,
                first_part,
                urls: vec!["u".into(); 5],
            }),
            ..Default::default()
        }
    }

    fn reported(shared: &Shared, attempt: u32, path: &str, first_part: u32) {
        shared.apply(pb::WorkerEvent {
            migration_id: "m".into(),
            chunk_id: 0,
            attempt,
            event: Some(pb::worker_event::Event::File(pb::FileResult {
                path: path.into(),
                size: 100,
                first_part,
                etags: vec!["e".into(); 5],
                ..Default::default()
            })),
        });
    }

    #[test]
    fn a_retried_chunk_is_not_sent_the_slices_it_reported() {
        let tasks = vec![vec![task("a.bin", 1), task("a.bin", 6), task("b.bin", 0)]];
        let (shared, _events) = Shared::new("m".into(), Default::default(), Default::default(), tasks, 1, 1);
        let mut listener = shared.subscribe();
        shared.start_attempt(0, 1);
        reported(&shared, 1, "a.bin", 6);
        reported(&shared, 1, "b.bin", 0);
        assert_eq!(shared.bytes_done(), 50 + 100, "a slice counts its own bytes");
        assert_eq!(listener.try_recv().map(|r| r.first_part).ok(), Some(6));
        shared.start_attempt(0, 2);
        let again: Vec<pb::TaskKey> = shared.tasks_for(0).iter().map(|t| t.key()).collect();
        assert_eq!(
            again,
            vec![pb::TaskKey::new("a.bin", 1), pb::TaskKey::new("b.bin", 0)],
            "the reported slice is left out; whole files are sent again (the store skips them)"
        );
        // A stale attempt is not heard, and a result already in is not copied twice.
        reported(&shared, 1, "a.bin", 1);
        reported(&shared, 2, "a.bin", 6);
        assert_eq!(listener.try_recv().map(|r| r.first_part).ok(), Some(0));
        assert!(listener.try_recv().is_err());
    }
}
