//! One Job per chunk attempt: labels to find it again (`hubmigrate.dev/migration`,
//! `hubmigrate.dev/chunk`), an owner reference to its Migration (deleting the Migration deletes
//! its Jobs), bounded runtime and retries, resource requests and limits, and every secret (hub
//! tokens, the per-migration gRPC secret) through `secretKeyRef`: never in args or plain values.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::crd::Migration;

/// Label holding the Migration's name.
pub const LABEL_MIGRATION: &str = "hubmigrate.dev/migration";
/// Label holding the chunk number.
pub const LABEL_CHUNK: &str = "hubmigrate.dev/chunk";
/// Label holding the attempt number.
pub const LABEL_ATTEMPT: &str = "hubmigrate.dev/attempt";
/// A Job may run at most a day.
pub const ACTIVE_DEADLINE_SECONDS: i64 = 86_400;
/// Finished Jobs linger an hour for `kubectl logs`, then go.
pub const TTL_AFTER_FINISHED_SECONDS: i32 = 3_600;
/// Pod restarts within one attempt (a killed pod is retried by its Job).
pub const BACKOFF_LIMIT: i32 = 2;
/// The unprivileged user workers run as (the image's `nonroot`).
pub const WORKER_UID: i64 = 65532;
/// Size of the worker's writable scratch space (`/tmp`, an emptyDir: the root is read-only).
pub const WORKER_TMP: &str = "256Mi";
/// Key of the gRPC secret in the per-migration Secret (read by the controller only).
pub const GRPC_SECRET_KEY: &str = "grpc-secret";

/// Key of one chunk's secret in the per-migration Secret (what that chunk's pods get).
pub fn chunk_key(chunk: u32) -> String {
    format!("chunk-{chunk}")
}

/// What the Job needs besides the Migration.
#[derive(Clone, Debug)]
pub struct JobParams {
    /// Address the pods dial, e.g. `http://hubmigrate-controller.ns.svc:50051`.
    pub coordinator: String,
    /// The CA (PEM) the worker verifies the coordinator's certificate with.
    pub coordinator_ca: Option<String>,
    /// The worker image (the policy's choice for this Migration).
    pub image: String,
    /// Requests and limits when the Migration names none (the controller's default).
    pub resources: Option<ResourceRequirements>,
    /// The Secret holding the gRPC secret (created per migration).
    pub grpc_secret_name: String,
    /// Token variables the workers need, as (worker variable, key in the tokens Secret).
    pub token_keys: Vec<(String, String)>,
}

/// The (chunk, attempt) a Job or pod is for, from its labels.
pub fn chunk_attempt(meta: &ObjectMeta) -> Option<(u32, u32)> {
    let labels = meta.labels.as_ref()?;
    let number = |key: &str| labels.get(key).and_then(|v| v.parse::<u32>().ok());
    Some((number(LABEL_CHUNK)?, number(LABEL_ATTEMPT)?))
}

/// The per-migration gRPC Secret's name.
pub fn grpc_secret_name(migration: &str) -> String {
    format!("{migration}-grpc")
}

/// The Job's name: `<migration>-c<chunk>-a<attempt>`, within Kubernetes' 63 characters.
pub fn job_name(migration: &str, chunk: u32, attempt: u32) -> String {
    let suffix = format!("-c{chunk}-a{attempt}");
    let keep = 63usize.saturating_sub(suffix.len());
    let base: String = migration.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

fn value(name: &str, v: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(v.into()),
        ..Default::default()
    }
}

fn from_secret(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(optional),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Requests and limits as JSON (`--worker-resources`, the chart's `workerResources`).
pub fn parse_resources(json: &str) -> Result<ResourceRequirements, String> {
    serde_json::from_str(json).map_err(|e| format!("--worker-resources is not requests and limits: {e}"))
}

fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), q("250m")),
            ("memory".into(), q("128Mi")),
            ("ephemeral-storage".into(), q("256Mi")),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".into(), q("2")),
            ("memory".into(), q("512Mi")),
            ("ephemeral-storage".into(), q("1Gi")),
        ])),
        ..Default::default()
    }
}

/// The owner reference every object a Migration owns carries (its Jobs, its gRPC Secret):
/// deleting the Migration deletes them, and a restarted controller adopts only Jobs whose owner
/// is this very Migration (by UID).
pub fn owner_ref(mig: &Migration) -> OwnerReference {
    OwnerReference {
        api_version: "hubmigrate.dev/v1alpha1".into(),
        kind: "Migration".into(),
        name: mig.metadata.name.clone().unwrap_or_default(),
        uid: mig.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The Job for `attempt` of `chunk` of `mig`.
pub fn job_for_chunk(mig: &Migration, chunk: u32, attempt: u32, p: &JobParams) -> Job {
    let name = mig.metadata.name.clone().unwrap_or_default();
    let labels = BTreeMap::from([
        (LABEL_MIGRATION.to_string(), name.clone()),
        (LABEL_CHUNK.to_string(), chunk.to_string()),
        (LABEL_ATTEMPT.to_string(), attempt.to_string()),
    ]);
    let mut env = vec![
        value("HUBMIGRATE_COORDINATOR", &p.coordinator),
        value("HUBMIGRATE_MIGRATION_ID", &name),
        value("HUBMIGRATE_CHUNK_ID", chunk.to_string()),
        value("HUBMIGRATE_ATTEMPT", attempt.to_string()),
        value("HUBMIGRATE_LOG_FORMAT", "json"),
        value("TMPDIR", "/tmp"),
        from_secret("HUBMIGRATE_SECRET", &p.grpc_secret_name, &chunk_key(chunk), false),
    ];
    if let Some(ca) = &p.coordinator_ca {
        env.push(value("HUBMIGRATE_COORDINATOR_CA", ca));
    }
    if let Some(tokens) = &mig.spec.tokens_secret {
        for (var, key) in &p.token_keys {
            env.push(from_secret(var, tokens, key, true));
        }
    }
    let owner = owner_ref(mig);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, chunk, attempt)),
            namespace: mig.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            active_deadline_seconds: Some(ACTIVE_DEADLINE_SECONDS),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED_SECONDS),
            backoff_limit: Some(BACKOFF_LIMIT),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    // A worker needs no Kubernetes API: no service account token in the pod.
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(WORKER_UID),
                        run_as_group: Some(WORKER_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            size_limit: Some(Quantity(WORKER_TMP.into())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    containers: vec![Container {
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            run_as_non_root: Some(true),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "tmp".into(),
                            mount_path: "/tmp".into(),
                            ..Default::default()
                        }]),
                        name: "worker".into(),
                        image: Some(p.image.clone()),
                        command: Some(vec!["migrate-worker".into()]),
                        env: Some(env),
                        resources: Some(
                            mig.spec
                                .worker_resources
                                .clone()
                                .or_else(|| p.resources.clone())
                                .unwrap_or_else(default_resources),
                        ),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::crd::MigrationSpec;

    fn migration() -> Migration {
        let mut m = Migration::new(
            "demo-model",
            MigrationSpec {
                source: "hf:acme/m".into(),
                dest: "ms:acme/m".into(),
                tokens_secret: Some("hub-tokens".into()),
                ..Default::default()
            },
        );
        m.metadata.namespace = Some("ml".into());
        m.metadata.uid = Some("uid-1".into());
        m
    }

    fn params() -> JobParams {
        JobParams {
            coordinator: "https://hubmigrate.ml.svc:50051".into(),
            coordinator_ca: Some("-----BEGIN CERTIFICATE-----\n".into()),
            image: "ghcr.io/hubmigrate/worker:0.1".into(),
            resources: None,
            grpc_secret_name: grpc_secret_name("demo-model"),
            token_keys: vec![
                ("HUBMIGRATE_SOURCE_TOKEN".into(), "HF_TOKEN".into()),
                ("HUBMIGRATE_DEST_TOKEN".into(), "MODELSCOPE_TOKEN".into()),
            ],
        }
    }

    #[test]
    fn worker_resources_come_from_the_charts_values_unless_the_migration_names_them() {
        let values: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../../../helm/hubmigrate/values.yaml")).unwrap();
        let chart = parse_resources(&values["workerResources"].to_string()).unwrap();
        let p = JobParams {
            resources: Some(chart.clone()),
            ..params()
        };
        let mut m = migration();
        let pod = |m: &Migration| job_for_chunk(m, 0, 1, &p).spec.unwrap().template.spec.unwrap();
        assert_eq!(pod(&m).containers[0].resources.as_ref(), Some(&chart));
        let own = parse_resources(r#"{"limits":{"memory":"2Gi"}}"#).unwrap();
        m.spec.worker_resources = Some(own.clone());
        assert_eq!(pod(&m).containers[0].resources.as_ref(), Some(&own));
        assert!(parse_resources("{\"limits\": 3}").is_err());
    }

    #[test]
    fn jobs_are_labelled_owned_bounded_and_keep_secrets_in_secret_refs() {
        let job = job_for_chunk(&migration(), 3, 2, &params());
        let meta = &job.metadata;
        assert_eq!(meta.name.as_deref(), Some("demo-model-c3-a2"));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_MIGRATION], "demo-model");
        assert_eq!(labels[LABEL_CHUNK], "3");
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Migration", "uid-1", Some(true))
        );
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(86_400));
        assert!(spec.ttl_seconds_after_finished.is_some() && spec.backoff_limit.is_some());
        let pod = spec.template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.args, None, "nothing secret, or anything at all, in args");
        let resources = c.resources.as_ref().unwrap();
        for key in ["cpu", "memory", "ephemeral-storage"] {
            assert!(
                resources.requests.as_ref().unwrap().contains_key(key)
                    && resources.limits.as_ref().unwrap().contains_key(key)
            );
        }
        assert_eq!(c.image.as_deref(), Some("ghcr.io/hubmigrate/worker:0.1"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!((psc.run_as_non_root, psc.run_as_user), (Some(true), Some(WORKER_UID)));
        assert_eq!(psc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(
            (sc.read_only_root_filesystem, sc.allow_privilege_escalation),
            (Some(true), Some(false))
        );
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/tmp");
        let env = c.env.as_ref().unwrap();
        for secret_var in ["HUBMIGRATE_SECRET", "HUBMIGRATE_SOURCE_TOKEN", "HUBMIGRATE_DEST_TOKEN"] {
            let e = env
                .iter()
                .find(|e| e.name == secret_var)
                .unwrap_or_else(|| panic!("{secret_var} missing"));
            assert!(e.value.is_none(), "{secret_var} must not be a plain value");
            assert!(e.value_from.as_ref().unwrap().secret_key_ref.is_some());
        }
        assert_eq!(
            env.iter()
                .find(|e| e.name == "HUBMIGRATE_CHUNK_ID")
                .unwrap()
                .value
                .as_deref(),
            Some("3")
        );
        let grpc = env.iter().find(|e| e.name == "HUBMIGRATE_SECRET").unwrap();
        let key = &grpc.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().key;
        assert_eq!(key, "chunk-3", "a pod gets its chunk's secret, not the migration's");
    }

    #[test]
    fn job_names_fit_kubernetes_limits() {
        let long = "m".repeat(80);
        let n = job_name(&long, 12, 3);
        assert!(n.len() <= 63 && n.ends_with("-c12-a3"));
    }
}
