//! The hubmigrate worker: registers with the coordinator over gRPC (with the per-migration
//! secret), receives its chunk, moves every file, and streams heartbeats, progress and per-file
//! results back. It never commits. Everything it needs comes from its environment.

mod files;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use hubmigrate_hub::hub::{Hub, UploadAction};
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use hubmigrate_proto as pb;
use pb::coordinator_client::CoordinatorClient;
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;

/// How often a worker reports the bytes of its files in flight.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The worker's configuration, from `HUBMIGRATE_*` variables.
pub struct Config {
    pub coordinator: String,
    /// The CA (PEM) that signed the coordinator's certificate: with it the coordinator must be
    /// `https://` and prove itself before the worker sends its secret.
    pub coordinator_ca: Option<String>,
    pub migration_id: String,
    pub chunk_id: u32,
    pub attempt: u32,
    pub secret: String,
    pub source_token: Option<Secret>,
    pub dest_token: Option<Secret>,
}

impl Config {
    /// Reads the configuration; a missing variable is named in the error.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var(k).with_context(|| format!("{k} is not set (workers are started by migrate-coord)"))
        };
        let opt = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).map(Secret::new);
        Ok(Config {
            coordinator: var("HUBMIGRATE_COORDINATOR")?,
            coordinator_ca: std::env::var("HUBMIGRATE_COORDINATOR_CA")
                .ok()
                .filter(|v| !v.is_empty()),
            migration_id: var("HUBMIGRATE_MIGRATION_ID")?,
            chunk_id: var("HUBMIGRATE_CHUNK_ID")?.parse().context("HUBMIGRATE_CHUNK_ID")?,
            attempt: var("HUBMIGRATE_ATTEMPT")?.parse().context("HUBMIGRATE_ATTEMPT")?,
            secret: var("HUBMIGRATE_SECRET")?,
            source_token: opt("HUBMIGRATE_SOURCE_TOKEN"),
            dest_token: opt("HUBMIGRATE_DEST_TOKEN"),
        })
    }
}

fn side(s: Option<&pb::Side>, token: Option<Secret>) -> anyhow::Result<(Hub, RepoRef, String)> {
    let s = s.context("the assignment lacks a side")?;
    let platform = Platform::parse(&s.platform)?;
    if platform == Platform::Git {
        let repo = RepoRef::parse(&format!("git:{}/{}.git", s.endpoint, s.repo_id), RepoType::Model)?;
        let hub = Hub::Git(hubmigrate_hub::git::GitClient::new(&s.endpoint, &s.username, token)?);
        return Ok((hub, repo, s.revision.clone()));
    }
    let repo = RepoRef::parse(
        &format!(
            "{}:{}/{}",
            s.platform,
            RepoType::parse(&s.repo_type)?.plural(),
            s.repo_id
        ),
        RepoType::Model,
    )?;
    let hub = Hub::new(platform, &s.endpoint, token)?;
    Ok((hub, repo, s.revision.clone()))
}

type Client =
    CoordinatorClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, SecretInterceptor>>;

/// Adds the migration id, the chunk and the chunk's secret to every call.
#[derive(Clone)]
pub struct SecretInterceptor {
    migration: MetadataValue<tonic::metadata::Ascii>,
    secret: MetadataValue<tonic::metadata::Ascii>,
    chunk: MetadataValue<tonic::metadata::Ascii>,
}

impl tonic::service::Interceptor for SecretInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert(pb::MIGRATION_HEADER, self.migration.clone());
        req.metadata_mut().insert(pb::SECRET_HEADER, self.secret.clone());
        req.metadata_mut().insert(pb::CHUNK_HEADER, self.chunk.clone());
        Ok(req)
    }
}

/// The coordinator's endpoint: over TLS, verified with the CA the worker was given, when it was
/// given one (Kubernetes); in clear otherwise (local runs, on loopback). A CA with a plain URL,
/// or an `https` URL without a CA, is refused: the secret never goes out unverified by mistake.
fn endpoint(cfg: &Config) -> anyhow::Result<tonic::transport::Endpoint> {
    let endpoint = tonic::transport::Endpoint::from_shared(cfg.coordinator.clone())
        .with_context(|| format!("HUBMIGRATE_COORDINATOR {} is not a URL", cfg.coordinator))?
        .connect_timeout(Duration::from_secs(10));
    let https = cfg.coordinator.starts_with("https://");
    match (&cfg.coordinator_ca, https) {
        (Some(ca), true) => {
            let tls =
                tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca));
            Ok(endpoint
                .tls_config(tls)
                .context("the coordinator's CA (HUBMIGRATE_COORDINATOR_CA)")?)
        }
        (None, false) => Ok(endpoint),
        (Some(_), false) => anyhow::bail!(
            "HUBMIGRATE_COORDINATOR_CA is set but the coordinator {} is not https: refusing to talk in clear",
            cfg.coordinator
        ),
        (None, true) => anyhow::bail!(
            "the coordinator {} is https but HUBMIGRATE_COORDINATOR_CA (the CA to verify it with) is not set",
            cfg.coordinator
        ),
    }
}

async fn connect(cfg: &Config) -> anyhow::Result<Client> {
    let endpoint = endpoint(cfg)?;
    let mut last = None;
    for attempt in 0..5u64 {
        match endpoint.connect().await {
            Ok(channel) => {
                let secret = MetadataValue::try_from(cfg.secret.as_str()).context("invalid secret")?;
                let migration = MetadataValue::try_from(cfg.migration_id.as_str()).context("invalid migration id")?;
                let chunk = MetadataValue::from(cfg.chunk_id);
                return Ok(CoordinatorClient::with_interceptor(
                    channel,
                    SecretInterceptor {
                        migration,
                        secret,
                        chunk,
                    },
                )
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20));
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
    }
    let why = last
        .map(|e| format!("{:#}", anyhow::Error::from(e)))
        .unwrap_or_default();
    Err(anyhow::anyhow!(
        "cannot reach the coordinator at {}: {why}",
        cfg.coordinator
    ))
}

/// Runs the worker's chunk to the end.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let mut client = connect(&cfg).await?;
    let assignment = client
        .register(pb::RegisterRequest {
            migration_id: cfg.migration_id.clone(),
            chunk_id: cfg.chunk_id,
            attempt: cfg.attempt,
            worker: format!("pid {}", std::process::id()),
        })
        .await
        .context("registering with the coordinator")?
        .into_inner();
    tracing::info!(files = assignment.files.len(), "assignment received");

    let (tx, rx) = mpsc::channel::<pb::WorkerEvent>(256);
    let outbound = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) });
    let mut commands = client
        .report(outbound)
        .await
        .context("opening the report stream")?
        .into_inner();
    let envelope = {
        let (m, c, a) = (cfg.migration_id.clone(), cfg.chunk_id, cfg.attempt);
        move |event: pb::worker_event::Event| pb::WorkerEvent {
            migration_id: m.clone(),
            chunk_id: c,
            attempt: a,
            event: Some(event),
        }
    };

    let active: Arc<Mutex<HashMap<pb::TaskKey, Arc<AtomicU64>>>> = Arc::default();
    let done_bytes = Arc::new(AtomicU64::new(0));
    let beat = {
        let (tx, active, envelope) = (tx.clone(), active.clone(), envelope.clone());
        let every = Duration::from_millis(u64::from(assignment.heartbeat_ms.max(200)));
        let total: u64 = assignment.files.iter().map(|f| f.bytes()).sum();
        let files = assignment.files.len();
        let done_bytes = done_bytes.clone();
        let task = async move {
            let mut last_line = std::time::Instant::now();
            let mut last_beat = std::time::Instant::now();
            // Progress goes out twice a second (bars move on a terminal); the heartbeat at the
            // coordinator's pace.
            let tick = every.min(PROGRESS_EVERY);
            loop {
                tokio::time::sleep(tick).await;
                let snapshot: Vec<(pb::TaskKey, u64)> = active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(p, b)| (p.clone(), b.load(Ordering::Relaxed)))
                    .collect();
                // A progress line every few seconds, so pod logs read as a story.
                if last_line.elapsed() >= Duration::from_secs(5) {
                    last_line = std::time::Instant::now();
                    let moving: u64 = snapshot.iter().map(|(_, b)| *b).sum();
                    let finished = done_bytes.load(Ordering::Relaxed);
                    tracing::info!(
                        bytes_done = finished + moving,
                        bytes_total = total,
                        files,
                        in_flight = snapshot.len(),
                        "progress"
                    );
                }
                for (key, bytes) in snapshot {
                    let _ = tx
                        .send(envelope(pb::worker_event::Event::Progress(pb::Progress {
                            path: key.path,
                            bytes,
                            first_part: key.first_part,
                        })))
                        .await;
                }
                if last_beat.elapsed() + tick / 2 < every {
                    continue;
                }
                last_beat = std::time::Instant::now();
                if tx
                    .send(envelope(pb::worker_event::Event::Heartbeat(pb::Heartbeat {})))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        };
        tokio::spawn(tracing::Instrument::instrument(task, tracing::Span::current()))
    };

    let work = move_files(&cfg, &assignment, &tx, &envelope, &active, &done_bytes);
    let cancelled = async {
        while let Some(Ok(cmd)) = commands.next().await {
            if let Some(pb::command::Command::Cancel(c)) = cmd.command {
                return c.reason;
            }
        }
        "the coordinator went away".to_string()
    };
    let outcome = tokio::select! {
        r = work => r,
        reason = cancelled => Err(anyhow::anyhow!("cancelled: {reason}")),
    };
    beat.abort();
    let event = match &outcome {
        Ok(()) => pb::worker_event::Event::Done(pb::ChunkDone {}),
        Err(e) => {
            let retryable = e
                .downcast_ref::<hubmigrate_hub::Error>()
                .is_none_or(|h| h.is_retryable());
            pb::worker_event::Event::Failed(pb::ChunkFailed {
                error: format!("{e:#}"),
                retryable,
            })
        }
    };
    let _ = tx.send(envelope(event)).await;
    drop(tx);
    // The coordinator ends its command stream once it has read ours to the end.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while commands.next().await.is_some() {}
    })
    .await;
    outcome
}

async fn move_files(
    cfg: &Config,
    a: &pb::Assignment,
    tx: &mpsc::Sender<pb::WorkerEvent>,
    envelope: &(impl Fn(pb::worker_event::Event) -> pb::WorkerEvent + Clone),
    active: &Arc<Mutex<HashMap<pb::TaskKey, Arc<AtomicU64>>>>,
    done_bytes: &AtomicU64,
) -> anyhow::Result<()> {
    let (source, source_repo, commit) = side(a.source.as_ref(), cfg.source_token.clone())?;
    let (dest, dest_repo, branch) = side(a.dest.as_ref(), cfg.dest_token.clone())?;
    // Older coordinators send no stream count: one connection per file stream, as before.
    let streams = if a.streams == 0 { a.concurrency } else { a.streams };
    hubmigrate_hub::quota::set_share(a.quota_share);
    if a.max_wait_secs > 0 {
        hubmigrate_hub::quota::set_max_wait(Duration::from_secs(a.max_wait_secs));
    }
    let sides = files::Sides {
        source,
        source_repo,
        commit,
        dest,
        dest_repo,
        branch: branch.clone(),
        budget: hubmigrate_hub::parallel::Budget::new(
            streams.max(1) as usize,
            hubmigrate_hub::parallel::BUFFER_BUDGET,
            hubmigrate_hub::parallel::SPAN,
        ),
    };
    for t in &a.files {
        anyhow::ensure!(
            hubmigrate_hub::manifest::check_path(&t.path).is_ok(),
            "unsafe path {:?} in the assignment",
            t.path
        );
    }
    // Slices already have their upload (the coordinator opened it); whole LFS files ask the store.
    let lfs: Vec<&pb::FileTask> = a.files.iter().filter(|t| t.lfs && t.slice.is_none()).collect();
    for t in &lfs {
        anyhow::ensure!(t.sha256.len() == 64, "{} has no sha256 to upload it under", t.path);
    }
    let objects: Vec<(String, u64)> = lfs.iter().map(|t| (t.sha256.clone(), t.size)).collect();
    let actions: Vec<UploadAction> = if objects.is_empty() {
        Vec::new()
    } else {
        sides.dest.prepare_uploads(&sides.dest_repo, &branch, &objects).await?
    };
    let mut action_of: HashMap<&str, &UploadAction> = HashMap::new();
    for (t, act) in lfs.iter().zip(&actions) {
        action_of.entry(t.path.as_str()).or_insert(act);
    }
    let jobs = a.files.iter().map(|t| {
        let progress = Arc::new(AtomicU64::new(0));
        active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.key(), progress.clone());
        let action = action_of.get(t.path.as_str()).copied();
        let sides = &sides;
        async move {
            let r = match (&t.slice, action) {
                (Some(slice), _) => files::move_slice(sides, t, slice, progress).await,
                (None, Some(act)) => files::move_lfs(sides, t, act, progress).await,
                (None, None) => files::read_regular(sides, t, progress).await,
            };
            (t, r)
        }
    });
    let mut results = futures_util::stream::iter(jobs).buffer_unordered(a.concurrency.max(1) as usize);
    while let Some((t, r)) = results.next().await {
        active.lock().unwrap_or_else(|e| e.into_inner()).remove(&t.key());
        let r = r.with_context(|| format!("moving {}", t.key()))?;
        done_bytes.fetch_add(t.bytes(), Ordering::Relaxed);
        tracing::info!(path = %t.path, first_part = t.first_part(), outcome = ?r.outcome(), bytes = r.bytes_sent, "file done");
        tx.send(envelope(pb::worker_event::Event::File(r)))
            .await
            .context("the coordinator stopped listening")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(coordinator: &str, ca: Option<&str>) -> Config {
        Config {
            coordinator: coordinator.into(),
            coordinator_ca: ca.map(String::from),
            migration_id: "m".into(),
            chunk_id: 0,
            attempt: 1,
            secret: "s".into(),
            source_token: None,
            dest_token: None,
        }
    }

    #[test]
    fn a_worker_given_a_ca_talks_only_tls_and_a_tls_url_needs_a_ca() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        assert!(endpoint(&cfg("http://127.0.0.1:1", None)).is_ok());
        assert!(endpoint(&cfg("https://controller.ns.svc:50051", Some(pem))).is_ok());
        let clear = endpoint(&cfg("http://controller.ns.svc:50051", Some(pem))).unwrap_err();
        assert!(format!("{clear:#}").contains("refusing to talk in clear"), "{clear:#}");
        let no_ca = endpoint(&cfg("https://controller.ns.svc:50051", None)).unwrap_err();
        assert!(format!("{no_ca:#}").contains("HUBMIGRATE_COORDINATOR_CA"), "{no_ca:#}");
    }
}
