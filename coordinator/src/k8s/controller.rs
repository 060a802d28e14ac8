//! `migrate-coord controller`: reconciles `Migration` objects. Each active Migration gets one
//! runner task that drives it through the pipeline ([`crate::flow::Pipeline`]) with the
//! Kubernetes runtime (a Job per chunk attempt, served on the controller's gRPC port) and the
//! status observer (the status subresource and Events). A restarted controller adopts the Jobs
//! its Migrations own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::crd::{Migration, MigrationStatus, Phase, Verification};
use super::policy::{Policy, TOKENS_LABEL};
use super::runtime::{Cluster, KubeRuntime};
use super::status::{KubeObserver, StatusWriter, condition};
use crate::cli::ControllerArgs;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::flow::Pipeline;
use crate::flow::transfer::grpc::{Registry, serve};

/// What every reconcile needs.
pub struct Context {
    cluster: Cluster,
    runners: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    recorder: Recorder,
}

/// Runs the controller until SIGINT/SIGTERM.
pub async fn run(args: ControllerArgs) -> Result<()> {
    let policy =
        Policy::new(&args.worker_image, &args.allowed_worker_images, &args.allowed_endpoints).map_err(Error::Input)?;
    let worker_resources = match &args.worker_resources {
        Some(json) => Some(super::job::parse_resources(json).map_err(Error::Input)?),
        None => None,
    };
    let client = Client::try_default()
        .await
        .map_err(|e| Error::kube("cannot reach the Kubernetes API", e))?;
    let registry = Arc::new(Registry::default());
    let listen: std::net::SocketAddr = args
        .grpc_listen
        .parse()
        .map_err(|e| Error::Input(format!("--grpc-listen {}: {e}", args.grpc_listen)))?;
    // The host workers dial, which the certificate must name.
    let host = match &args.grpc_advertise {
        Some(a) => super::tls::host_of(a).to_string(),
        None => listen.ip().to_string(),
    };
    let tls = match args.grpc_plaintext {
        true => None,
        false => {
            let (ns, name) = match args.grpc_tls_secret.split_once('/') {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => (own_namespace(&args), args.grpc_tls_secret.clone()),
            };
            Some(super::tls::load_or_create(&client, &ns, &name, &host).await?)
        }
    };
    let (bound, _server) = serve(registry.clone(), listen, tls.as_ref().map(|m| m.identity()))
        .await
        .map_err(|e| Error::io(format!("cannot serve gRPC on {}", args.grpc_listen), e))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let has_port = |a: &str| match a.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => a.contains(':'),
    };
    let advertise = match &args.grpc_advertise {
        Some(a) if has_port(a) => format!("{scheme}://{a}"),
        Some(a) => format!("{scheme}://{a}:{}", bound.port()),
        None => format!("{scheme}://{}", std::net::SocketAddr::new(bound.ip(), bound.port())),
    };
    tracing::info!(grpc = %bound, advertise = %advertise, tls = tls.is_some(), "controller serving workers");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "hubmigrate".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Context {
        cluster: Cluster {
            client: client.clone(),
            registry,
            advertise,
            coordinator_ca: tls.as_ref().map(|m| m.ca_pem.clone()),
            policy: Arc::new(policy),
            worker_resources,
        },
        runners: Mutex::default(),
        recorder,
    });
    let (migrations, jobs): (Api<Migration>, Api<Job>) = match &args.namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client, ns)),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let controller = Controller::new(migrations, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile error");
            }
        });
    // A certificate the controller made is renewed at start: near its end the controller stops
    // so that its Deployment starts it again (adopting every Job).
    let renew_in = tls
        .and_then(|m| m.renew_at)
        .map(|at| at.duration_since(std::time::SystemTime::now()).unwrap_or_default());
    tokio::select! {
        () = controller => Ok(()),
        () = sleep_or_forever(renew_in) => Err(Error::Refused(
            "the controller's gRPC certificate is due for renewal: stopping so that a restart renews it".into(),
        )),
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The controller's own namespace: the pod's (POD_NAMESPACE, set by the chart), else the one
/// it watches, else `default`.
fn own_namespace(args: &ControllerArgs) -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| args.namespace.clone())
        .unwrap_or_else(|| "default".into())
}

/// Why a reconcile failed (it is retried by [`error_policy`]).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot write the status of {name}: {}", crate::error::kube_message(.source))]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Starts a runner for an active Migration that has none; a spec that cannot run, or asks for
/// what the policy refuses (an image, an endpoint), ends `Failed` here, before anything else
/// happens.
async fn reconcile(mig: Arc<Migration>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let phase = mig.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if matches!(phase, Phase::Succeeded | Phase::Failed) || mig.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (ns, name) = (mig.namespace().unwrap_or_default(), mig.name_any());
    let refused = match mig.spec.run_args() {
        Err(why) => Some(("InvalidSpec", why)),
        Ok(_) => ctx.cluster.policy.check(&mig.spec).err().map(|why| ("NotAllowed", why)),
    };
    if let Some((reason, why)) = refused {
        let api: Api<Migration> = Api::namespaced(ctx.cluster.client.clone(), &ns);
        let status = MigrationStatus {
            phase: Phase::Failed,
            conditions: vec![condition(Phase::Failed, reason, &why)],
            observed_generation: mig.metadata.generation,
            finish_time: Some(super::rfc3339_now()),
            ..Default::default()
        };
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map_err(|source| ReconcileError::Status { name, source })?;
        return Ok(Action::await_change());
    }
    let key = format!("{ns}/{name}");
    let mut runners = ctx.runners.lock().unwrap_or_else(|e| e.into_inner());
    if runners.get(&key).is_none_or(|h| h.is_finished()) {
        tracing::info!(migration = %key, ?phase, "starting a runner");
        let (m, c) = ((*mig).clone(), ctx.clone());
        runners.insert(key, tokio::spawn(run_migration(m, c)));
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn error_policy(_mig: Arc<Migration>, err: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Carries one Migration from Pending to Succeeded or Failed.
async fn run_migration(mig: Migration, ctx: Arc<Context>) {
    let ns = mig.namespace().unwrap_or_else(|| "default".into());
    let api: Api<Migration> = Api::namespaced(ctx.cluster.client.clone(), &ns);
    let (writer, task) = StatusWriter::start(api, &mig, ctx.recorder.clone());
    match execute(&mig, &ctx, &ns, &writer).await {
        Ok(outcome) => conclude(&writer, &outcome),
        Err(e) => writer.phase(Phase::Failed, "Failed", &e.chain()),
    }
    writer.close(task).await;
}

/// The pipeline, with this Migration's environment and arguments.
async fn execute(mig: &Migration, ctx: &Context, ns: &str, writer: &StatusWriter) -> Result<crate::flow::Outcome> {
    let args = mig.spec.run_args().map_err(Error::Input)?;
    let env = environment(mig, &ctx.cluster.client, ns).await?;
    let runtime = KubeRuntime::new(ctx.cluster.clone(), mig.clone());
    let observer = KubeObserver(writer.clone());
    Ok(Pipeline::new(&args, &env, runtime, observer).run().await)
}

/// The final phase from the pipeline's outcome, with the verification summary.
fn conclude(writer: &StatusWriter, outcome: &crate::flow::Outcome) {
    let r = &outcome.report;
    if let Some(reason) = &outcome.skipped {
        writer.phase(Phase::Succeeded, "Skipped", reason);
        return;
    }
    if r.status == "planned" {
        writer.phase(
            Phase::Succeeded,
            "Planned",
            &format!("dry run: {} files, {} chunks", r.files, r.chunks),
        );
        return;
    }
    if r.verified || !r.mismatches.is_empty() {
        let (files, mismatched) = (r.files as u64, r.mismatches.len() as u64);
        let verification = Verification {
            files,
            matched: files.saturating_sub(mismatched),
            mismatched,
            examples: r
                .mismatches
                .iter()
                .take(5)
                .map(|m| format!("{} ({})", m.path, m.kind))
                .collect(),
        };
        let commit = r.dest_commit.clone();
        writer.set(|s| {
            s.verification = Some(verification);
            s.dest_commit = commit;
            if mismatched == 0 {
                s.bytes_done = s.bytes_total;
                s.progress = Some("100%".into());
            }
        });
    }
    match &outcome.result {
        Ok(()) => writer.phase(
            Phase::Succeeded,
            "Verified",
            &format!(
                "{} files verified at {}",
                r.files,
                r.dest_commit.as_deref().unwrap_or("?")
            ),
        ),
        Err(e) => {
            let reason = match e {
                Error::Mismatch { .. } => "Mismatch",
                Error::Input(_) => "InvalidInput",
                Error::Hub(h) if h.is_user_error() => "InvalidInput",
                _ => "Failed",
            };
            writer.phase(Phase::Failed, reason, &e.chain());
        }
    }
}

/// The run's environment: the tokens Secret's keys, and the endpoints of the spec.
async fn environment(mig: &Migration, client: &Client, ns: &str) -> Result<Env> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(name) = &mig.spec.tokens_secret {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let s = secrets
            .get(name)
            .await
            .map_err(|e| Error::kube(format!("cannot read the tokens Secret {name}"), e))?;
        if s.labels().get(TOKENS_LABEL).map(String::as_str) != Some("true") {
            return Err(Error::Input(format!(
                "the Secret {name} is not a tokens Secret: a Secret opts in with the label {TOKENS_LABEL}=true"
            )));
        }
        for (k, v) in s.data.unwrap_or_default() {
            pairs.push((k, String::from_utf8_lossy(&v.0).into_owned()));
        }
    }
    if let Some(e) = &mig.spec.endpoints {
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
