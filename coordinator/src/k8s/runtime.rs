//! The Kubernetes runtime of the pipeline: workers are Jobs (one per chunk attempt) that dial the
//! controller's gRPC server, which answers for every active Migration at once. The per-migration
//! gRPC secret lives in a Secret the Migration owns, so a restarted controller reads it back
//! and adopts the Jobs its Migration owns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::crd::Migration;
use super::executor::{JobState, KubeExecutor};
use super::job::{GRPC_SECRET_KEY, JobParams, chunk_key, grpc_secret_name, owner_ref};
use crate::error::{Error, Result};
use crate::flow::resolve::Sides;
use crate::flow::transfer::grpc::{Registry, Shared, chunk_secret};
use crate::flow::transfer::{Adopted, Resumed, Runtime, Started, multipart};

/// What the controller shares with every Migration's runtime.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub registry: Arc<Registry>,
    /// The address worker pods dial (`https://` when the controller serves TLS).
    pub advertise: String,
    /// The CA (PEM) that signed the controller's gRPC certificate, which workers verify.
    pub coordinator_ca: Option<String>,
    /// What Migrations may ask for (images, endpoints).
    pub policy: Arc<super::policy::Policy>,
    /// Default requests and limits of a worker container (`--worker-resources`).
    pub worker_resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
}

/// One Migration's workers as Jobs.
pub struct KubeRuntime {
    cluster: Cluster,
    mig: Migration,
    ns: String,
    name: String,
}

impl KubeRuntime {
    pub fn new(cluster: Cluster, mig: Migration) -> Self {
        let ns = mig.namespace().unwrap_or_else(|| "default".into());
        let name = mig.name_any();
        KubeRuntime { cluster, mig, ns, name }
    }

    /// The per-migration gRPC secret, created once (owned by the Migration) and read back after
    /// a controller restart, with one key per chunk holding that chunk's secret (a worker pod
    /// gets only its own, [`chunk_key`]).
    async fn grpc_secret(&self, chunks: usize) -> Result<String> {
        let secrets: Api<Secret> = Api::namespaced(self.cluster.client.clone(), &self.ns);
        let name = grpc_secret_name(&self.name);
        let keys = |value: &str| -> BTreeMap<String, String> {
            (0..chunks as u32)
                .map(|c| (chunk_key(c), chunk_secret(value, c)))
                .chain([(GRPC_SECRET_KEY.to_string(), value.to_string())])
                .collect()
        };
        if let Ok(s) = secrets.get(&name).await {
            let data = s.data.unwrap_or_default();
            if let Some(v) = data.get(GRPC_SECRET_KEY) {
                let value = String::from_utf8_lossy(&v.0).into_owned();
                if (0..chunks as u32).any(|c| !data.contains_key(&chunk_key(c))) {
                    let patch = serde_json::json!({ "stringData": keys(&value) });
                    secrets
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| Error::kube(format!("cannot update the Secret {name}"), e))?;
                }
                return Ok(value);
            }
        }
        let value = crate::ids::random_hex(24);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                owner_references: Some(vec![owner_ref(&self.mig)]),
                ..Default::default()
            },
            string_data: Some(keys(&value)),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| Error::kube(format!("cannot create the Secret {name}"), e))?;
        Ok(value)
    }
}

/// Key of the journal in the per-migration uploads Secret.
const UPLOADS_KEY: &str = "uploads.json";

/// The per-migration uploads Secret's name.
fn uploads_secret_name(migration: &str) -> String {
    format!("{migration}-uploads")
}

/// Keeps a migration's open multipart uploads in a Secret it owns (the part URLs are
/// capabilities): one writer task, the latest state wins.
struct SecretJournal {
    latest: tokio::sync::watch::Sender<Option<Vec<u8>>>,
}

impl multipart::Journal for SecretJournal {
    fn save(&self, saved: &multipart::Saved) {
        let _ = self.latest.send(serde_json::to_vec(saved).ok());
    }
}

impl SecretJournal {
    fn start(secrets: Api<Secret>, mig: &Migration) -> Self {
        let (latest, mut rx) = tokio::sync::watch::channel(None::<Vec<u8>>);
        let name = uploads_secret_name(&mig.name_any());
        let owner = owner_ref(mig);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(bytes) = rx.borrow_and_update().clone() else {
                    continue;
                };
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    data: Some([(UPLOADS_KEY.to_string(), k8s_openapi::ByteString(bytes))].into()),
                    ..Default::default()
                };
                let written = match secrets.create(&PostParams::default(), &secret).await {
                    Err(kube::Error::Api(e)) if e.code == 409 => secrets
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&secret))
                        .await
                        .map(|_| ()),
                    other => other.map(|_| ()),
                };
                if let Err(e) = written {
                    tracing::warn!(secret = %name, error = %crate::error::kube_message(&e), "cannot journal the open uploads");
                }
            }
        });
        SecretJournal { latest }
    }
}

impl Runtime for KubeRuntime {
    type Exec = KubeExecutor;

    async fn journal(&mut self) -> Result<Resumed> {
        let secrets: Api<Secret> = Api::namespaced(self.cluster.client.clone(), &self.ns);
        let name = uploads_secret_name(&self.name);
        let saved = match secrets.get(&name).await {
            Ok(s) => {
                let owned = s
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| Some(&o.uid) == self.mig.metadata.uid.as_ref());
                let data = s.data.unwrap_or_default();
                match data.get(UPLOADS_KEY).filter(|_| owned) {
                    Some(bytes) => match serde_json::from_slice::<multipart::Saved>(&bytes.0) {
                        Ok(saved) => {
                            tracing::info!(migration = %self.name, uploads = saved.uploads.len(), slices = saved.reported.len(), "resuming the open multipart uploads");
                            Some(saved)
                        }
                        Err(e) => {
                            tracing::warn!(secret = %name, error = %e, "the uploads journal is unreadable: opening new uploads");
                            None
                        }
                    },
                    None => None,
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => return Err(Error::kube(format!("cannot read the Secret {name}"), e)),
        };
        let journal: Arc<dyn multipart::Journal> = Arc::new(SecretJournal::start(secrets, &self.mig));
        Ok((saved, Some(journal)))
    }

    fn migration_id(&self) -> String {
        self.name.clone()
    }

    async fn start(&mut self, shared: &Arc<Shared>, sides: &Sides) -> Result<Started<KubeExecutor>> {
        let secret = self.grpc_secret(shared.chunks()).await?;
        self.cluster.registry.add(shared.clone(), secret);
        // Workers read the same keys of the tokens Secret that resolved each side's token.
        let mut token_keys = Vec::new();
        for (var, side) in [
            ("HUBMIGRATE_SOURCE_TOKEN", &sides.source),
            ("HUBMIGRATE_DEST_TOKEN", &sides.dest),
        ] {
            if let Some(key) = &side.token_var {
                token_keys.push((var.to_string(), key.clone()));
            }
        }
        let params = JobParams {
            coordinator: self.cluster.advertise.clone(),
            coordinator_ca: self.cluster.coordinator_ca.clone(),
            image: self.cluster.policy.image(&self.mig.spec).map_err(Error::Input)?,
            resources: self.cluster.worker_resources.clone(),
            grpc_secret_name: grpc_secret_name(&self.name),
            token_keys,
        };
        let jobs: Api<Job> = Api::namespaced(self.cluster.client.clone(), &self.ns);
        let pods: Api<Pod> = Api::namespaced(self.cluster.client.clone(), &self.ns);
        let exec = KubeExecutor::new(jobs, pods, self.mig.clone(), params);
        let adopted: Vec<Adopted<_>> = exec
            .existing()
            .await
            .map_err(|e| Error::kube("cannot list this migration's Jobs", e))?
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
        Ok(Started { exec, adopted })
    }

    fn stop(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let api: Api<Migration> = Api::namespaced(self.cluster.client.clone(), &self.ns);
        let (name, uid) = (self.name.clone(), self.mig.uid());
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                match api.get(&name).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => break,
                    // Deleted and created again under the same name: not ours any more.
                    Ok(m) if m.uid() != uid || m.metadata.deletion_timestamp.is_some() => break,
                    _ => {}
                }
            }
            tracing::info!(migration = %name, "the Migration was deleted: stopping");
        }
    }

    fn finish(&mut self, shared: &Arc<Shared>) {
        self.cluster.registry.remove(&shared.migration_id);
    }
}
