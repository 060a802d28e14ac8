//! `migrate-coord controller`: reconciles `Migration` objects. Each active Migration gets one
//! runner task that plans it, runs one Job per chunk through the Kubernetes executor (serving the
//! workers' gRPC on the controller's port), commits, verifies, and writes the status subresource
//! and Events as it goes. A restarted controller adopts the Jobs it finds by label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::executor::{JobState, KubeExecutor};
use super::job::{GRPC_SECRET_KEY, JobParams, grpc_secret_name};
use crate::cli::{ControllerArgs, RunArgs};
use crate::crd::{Migration, Phase};
use crate::envfile::Env;
use crate::server::{Registry, Shared};
use crate::transfer::{Adopted, Limits, Snapshot, drive};

/// What every reconcile needs.
pub struct Context {
    client: Client,
    registry: Arc<Registry>,
    advertise: String,
    image: String,
    runners: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    recorder: Recorder,
}

/// Runs the controller until SIGINT/SIGTERM.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API: {e}"))?;
    let registry = Arc::new(Registry::default());
    let (bound, _server) = crate::server::serve(registry.clone(), args.grpc_listen.parse()?).await?;
    let advertise = match &args.grpc_advertise {
        Some(a) if a.contains(':') => format!("http://{a}"),
        Some(a) => format!("http://{a}:{}", bound.port()),
        None => format!("http://{}:{}", bound.ip(), bound.port()),
    };
    tracing::info!(grpc = %bound, advertise = %advertise, "controller serving workers");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "hubmigrate".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        registry,
        advertise,
        image: args.worker_image.clone(),
        runners: Mutex::default(),
        recorder,
    });
    let (migrations, jobs): (Api<Migration>, Api<Job>) = match &args.namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client, ns)),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    Controller::new(migrations, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile error");
            }
        })
        .await;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileError(String);

async fn reconcile(mig: Arc<Migration>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let phase = mig.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if matches!(phase, Phase::Succeeded | Phase::Failed) {
        return Ok(Action::await_change());
    }
    let key = format!("{}/{}", mig.namespace().unwrap_or_default(), mig.name_any());
    let mut runners = ctx.runners.lock().unwrap_or_else(|e| e.into_inner());
    if runners.get(&key).is_none_or(|h| h.is_finished()) {
        tracing::info!(migration = %key, ?phase, "starting a runner");
        let (m, c) = ((*mig).clone(), ctx.clone());
        runners.insert(key, tokio::spawn(async move { Runner::new(m, c).run().await }));
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn error_policy(_mig: Arc<Migration>, err: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Carries one Migration from Pending to Succeeded or Failed.
struct Runner {
    mig: Migration,
    ctx: Arc<Context>,
    api: Api<Migration>,
    ns: String,
    name: String,
}

/// A Kubernetes API error in one line: the server's own message.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn now() -> String {
    crate::k8s::rfc3339_now()
}

impl Runner {
    fn new(mig: Migration, ctx: Arc<Context>) -> Self {
        let ns = mig.namespace().unwrap_or_else(|| "default".into());
        let name = mig.name_any();
        let api = Api::namespaced(ctx.client.clone(), &ns);
        Runner {
            mig,
            ctx,
            api,
            ns,
            name,
        }
    }

    async fn patch(&self, status: Value) -> bool {
        match self
            .api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(e) => {
                tracing::warn!(migration = %self.name, error = %e, "cannot write status");
                true
            }
        }
    }

    async fn phase(&self, phase: Phase, reason: &str, note: &str) {
        let condition = json!({"type": "Ready", "status": if phase == Phase::Succeeded { "True" } else { "False" },
            "reason": reason, "message": note, "lastTransitionTime": now()});
        let mut status =
            json!({"phase": phase, "conditions": [condition], "observedGeneration": self.mig.metadata.generation});
        if matches!(phase, Phase::Succeeded | Phase::Failed) {
            status["finishTime"] = json!(now());
        }
        self.patch(status).await;
        let type_ = if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: format!("{phase:?}"),
            secondary: None,
        };
        if let Err(e) = self.ctx.recorder.publish(&ev, &self.mig.object_ref(&())).await {
            tracing::debug!(error = %e, "cannot publish an event");
        }
        tracing::info!(migration = %self.name, ?phase, reason, note, "phase");
    }

    async fn run(self) {
        if let Err(message) = self.execute().await {
            self.phase(Phase::Failed, "Failed", &message).await;
        }
        self.ctx.registry.remove(&self.name);
    }

    /// The run's environment: the tokens Secret's keys, and the endpoints of the spec.
    async fn env(&self) -> Result<Env, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(name) = &self.mig.spec.tokens_secret {
            let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.ns);
            let s = secrets
                .get(name)
                .await
                .map_err(|e| format!("cannot read the tokens Secret {name}: {}", kube_message(&e)))?;
            for (k, v) in s.data.unwrap_or_default() {
                pairs.push((k, String::from_utf8_lossy(&v.0).into_owned()));
            }
        }
        if let Some(e) = &self.mig.spec.endpoints {
            if let Some(hf) = &e.huggingface {
                pairs.push(("HF_ENDPOINT".into(), hf.clone()));
            }
            if let Some(ms) = &e.modelscope {
                pairs.push(("MODELSCOPE_ENDPOINT".into(), ms.clone()));
            }
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Env::from_pairs(&refs))
    }

    fn args(&self) -> Result<RunArgs, String> {
        let s = &self.mig.spec;
        let repo_type = match s.repo_type.as_deref() {
            None => None,
            Some("model") => Some(crate::cli::RepoTypeArg::Model),
            Some("dataset") => Some(crate::cli::RepoTypeArg::Dataset),
            Some("space") => Some(crate::cli::RepoTypeArg::Space),
            Some(other) => return Err(format!("invalid repoType {other:?}: use model, dataset or space")),
        };
        Ok(RunArgs {
            source: s.source.clone(),
            dest: Some(s.dest.clone()),
            to: None,
            repo_type,
            revision: s.revision.clone(),
            source_endpoint: None,
            dest_endpoint: None,
            parallel: s.parallel,
            chunk_size: crate::cli::parse_size(s.chunk_size.as_deref().unwrap_or("30GB"))?,
            max_workers: s.max_workers.unwrap_or(100).max(1),
            include: s.include.clone(),
            exclude: s.exclude.clone(),
            dry_run: s.dry_run,
            report: None,
            max_attempts: 3,
            worker_concurrency: 4,
            streams: 8,
            worker_bin: None,
            executor: crate::cli::ExecutorArg::Local,
            namespace: None,
            detach: false,
            tokens_secret: None,
            mirror: false,
            pointer_only: false,
            use_remote_mirror: false,
            mirror_timeout: std::time::Duration::from_secs(1800),
            rate_cap: None,
        })
    }

    /// The per-migration gRPC secret, created once (owned by the Migration) and read back after a
    /// controller restart.
    async fn grpc_secret(&self) -> Result<String, String> {
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let name = grpc_secret_name(&self.name);
        if let Ok(s) = secrets.get(&name).await
            && let Some(v) = s.data.unwrap_or_default().get(GRPC_SECRET_KEY)
        {
            return Ok(String::from_utf8_lossy(&v.0).into_owned());
        }
        let value = crate::secret::random_hex(24);
        let owner = self.owner();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                owner_references: Some(vec![owner]),
                ..Default::default()
            },
            string_data: Some([(GRPC_SECRET_KEY.to_string(), value.clone())].into()),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| format!("cannot create the Secret {name}: {}", kube_message(&e)))?;
        Ok(value)
    }

    fn owner(&self) -> OwnerReference {
        OwnerReference {
            api_version: "hubmigrate.dev/v1alpha1".into(),
            kind: "Migration".into(),
            name: self.name.clone(),
            uid: self.mig.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    async fn execute(&self) -> Result<(), String> {
        let start = self
            .mig
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or_else(now);
        self.patch(json!({"startTime": start})).await;
        self.phase(Phase::Planning, "Planning", "listing the source and planning chunks")
            .await;
        let env = self.env().await?;
        let args = self.args()?;
        let planned = match crate::run::plan_migration(&args, &env, args.dry_run).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.phase(
                    Phase::Succeeded,
                    "Skipped",
                    "nothing to migrate (see the controller log)",
                )
                .await;
                return Ok(());
            }
            Err(f) => return Err(f.message),
        };
        if planned.git.is_some() || planned.sides.source.repo.platform == hubmigrate_hub::reporef::Platform::Git {
            return Err(
                "git hosts (as destination, or as a source read over git) are migrated with `migrate-coord run` (local executor) for now"
                    .into(),
            );
        }
        let total = planned.manifest.total_bytes();
        let n = planned.plan.chunks.len();
        self.patch(json!({"bytesTotal": total, "chunksTotal": n, "progress": "0%"}))
            .await;
        if args.dry_run {
            self.phase(
                Phase::Succeeded,
                "Planned",
                &format!("dry run: {} files, {n} chunks", planned.manifest.files.len()),
            )
            .await;
            return Ok(());
        }
        crate::prepare::ensure_repo(&planned.sides, planned.manifest.private, planned.dest_exists)
            .await
            .map_err(|f| f.message)?;

        self.phase(
            Phase::Transferring,
            "Transferring",
            &format!("{n} chunk(s), one Job each"),
        )
        .await;
        let secret = self.grpc_secret().await?;
        let opened = crate::split::open(&planned).await.map_err(|f| f.message)?;
        let (source, dest) = planned.sides_pb();
        let (shared, mut events) = Shared::new(
            self.name.clone(),
            source,
            dest,
            opened.chunks,
            args.worker_concurrency,
            args.streams,
        );
        let completer = crate::split::Completer::start(planned.sides.dest.hub.clone(), opened.uploads, &shared);
        self.ctx.registry.add(shared.clone(), secret);
        let token_var = |p: hubmigrate_hub::reporef::Platform| match p {
            hubmigrate_hub::reporef::Platform::Hf => "HF_TOKEN",
            hubmigrate_hub::reporef::Platform::Ms => "MODELSCOPE_TOKEN",
            hubmigrate_hub::reporef::Platform::Git => "TARGET_TOKEN",
        };
        let params = JobParams {
            coordinator: self.ctx.advertise.clone(),
            default_image: self.ctx.image.clone(),
            grpc_secret_name: grpc_secret_name(&self.name),
            token_keys: vec![
                (
                    "HUBMIGRATE_SOURCE_TOKEN".into(),
                    token_var(planned.sides.source.repo.platform).into(),
                ),
                (
                    "HUBMIGRATE_DEST_TOKEN".into(),
                    token_var(planned.sides.dest.repo.platform).into(),
                ),
            ],
        };
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let exec = KubeExecutor::new(
            jobs,
            self.mig.clone(),
            self.mig.metadata.uid.clone().unwrap_or_default(),
            params,
        );
        let adopted: Vec<Adopted<_>> = exec
            .existing()
            .await
            .map_err(|e| format!("cannot list this migration's Jobs: {}", kube_message(&e)))?
            .into_iter()
            .map(|(chunk, attempt, state, job)| {
                tracing::info!(migration = %self.name, chunk, attempt, ?state, "adopting an existing Job");
                Adopted {
                    chunk,
                    attempt,
                    worker: (state != JobState::Succeeded).then(|| exec.handle(job)),
                }
            })
            .collect();
        let (tx, rx) = tokio::sync::watch::channel(Snapshot::default());
        let reporter = self.report_progress(rx, total);
        let deleted = self.deleted();
        let limits = Limits {
            max_workers: args.max_workers as usize,
            max_attempts: args.max_attempts,
        };
        let outcome = drive(
            &shared,
            &mut events,
            &exec,
            limits,
            adopted,
            &mut |s| {
                let _ = tx.send(s);
            },
            deleted,
        )
        .await;
        reporter.abort();
        if let Err(f) = outcome {
            completer.abort();
            return Err(f.message);
        }
        let results = completer
            .finish(&shared, shared.results())
            .await
            .map_err(|f| f.message)?;

        self.phase(Phase::Committing, "Committing", "writing the destination commit")
            .await;
        let results = crate::finish::fill_results(&planned.sides, &planned.manifest.commit, &planned.tasks, results)
            .await
            .map_err(|f| f.message)?;
        let branch = planned.sides.dest.hub.default_branch();
        self.phase(Phase::Verifying, "Verifying", "comparing every file at the destination")
            .await;
        let (commit, mismatches, _) =
            crate::finish::commit_and_verify(&planned.sides, &planned.manifest, &planned.tasks, &results, branch)
                .await
                .map_err(|f| f.message)?;
        let files = planned.tasks.len() as u64;
        let verification = json!({"files": files, "matched": files - mismatches.len() as u64, "mismatched": mismatches.len(),
            "examples": mismatches.iter().take(5).map(|m| format!("{} ({})", m.path, m.kind)).collect::<Vec<_>>()});
        self.patch(json!({"verification": verification, "bytesDone": total, "progress": "100%", "chunksRunning": 0}))
            .await;
        if mismatches.is_empty() {
            self.phase(
                Phase::Succeeded,
                "Verified",
                &format!("{files} files verified at {commit}"),
            )
            .await;
            Ok(())
        } else {
            Err(format!(
                "{} of {files} files differ at the destination (commit {commit})",
                mismatches.len()
            ))
        }
    }

    /// Writes progress to the status every two seconds.
    fn report_progress(
        &self,
        mut rx: tokio::sync::watch::Receiver<Snapshot>,
        total: u64,
    ) -> tokio::task::JoinHandle<()> {
        let (api, name) = (self.api.clone(), self.name.clone());
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if rx.has_changed().is_err() {
                    break;
                }
                let s = rx.borrow_and_update().clone();
                let pct = (s.bytes_done * 100).checked_div(total).unwrap_or(100);
                let rate = s.bytes_done as f64 / started.elapsed().as_secs_f64().max(0.001);
                let eta = (rate > 0.0).then(|| {
                    crate::progress::duration(Duration::from_secs_f64(
                        total.saturating_sub(s.bytes_done) as f64 / rate,
                    ))
                });
                let status = json!({"status": {"bytesDone": s.bytes_done, "progress": format!("{pct}%"), "eta": eta,
                    "chunksRunning": s.running, "chunksSucceeded": s.finished}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        })
    }

    /// Resolves when the Migration is deleted (its Jobs then go with it by owner reference).
    fn deleted(&self) -> impl std::future::Future<Output = ()> + use<> {
        let (api, name) = (self.api.clone(), self.name.clone());
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if let Err(kube::Error::Api(e)) = api.get(&name).await
                    && e.code == 404
                {
                    tracing::info!(migration = %name, "the Migration was deleted: stopping");
                    return;
                }
            }
        }
    }
}
