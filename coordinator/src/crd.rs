//! The `Migration` custom resource (group `hubmigrate.dev`, version `v1alpha1`): its spec mirrors
//! the `run` flags, its status subresource carries what `kubectl get migrations` shows. The CRD
//! YAML in deploy/ and in the Helm chart is generated from these types (`migrate-coord crd`) and
//! a test fails when they drift.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to migrate, as `migrate-coord run` would be told.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "hubmigrate.dev",
    version = "v1alpha1",
    kind = "Migration",
    namespaced,
    status = "MigrationStatus",
    shortname = "mig",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#,
    printcolumn = r#"{"name":"Dest","type":"string","jsonPath":".spec.dest"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"ETA","type":"string","jsonPath":".status.eta","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// Source repo: `hf:NS/NAME`, `hf:datasets/NS/NAME`, `ms:NS/NAME` or a full URL.
    pub source: String,
    /// Destination repo, same forms.
    pub dest: String,
    /// `model`, `dataset` or `space`, when the references do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_type: Option<String>,
    /// Source branch, tag or commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Spread the repo over up to `maxWorkers` Jobs.
    #[serde(default)]
    pub parallel: bool,
    /// Target bytes per chunk, e.g. `30GB` or `4MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<String>,
    /// Most Jobs at once, and most chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// Only files matching these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Skip files matching these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Carry every branch and tag (git destinations).
    #[serde(default)]
    pub mirror: bool,
    /// Plan only: nothing is created or written.
    #[serde(default)]
    pub dry_run: bool,
    /// Base URLs of the hubs (default: the public hubs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// Name of a Secret whose keys are the CLI's variables: HF_TOKEN, MODELSCOPE_TOKEN,
    /// TARGET_USERNAME, TARGET_TOKEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_secret: Option<String>,
    /// Container image of the worker Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_image: Option<String>,
    /// cpu, memory and ephemeral-storage requests and limits of each worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_resources: Option<ResourceRequirements>,
}

/// Hub base URLs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub huggingface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelscope: Option<String>,
}

/// Where a Migration stands.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, JsonSchema, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Pending,
    Planning,
    Transferring,
    Committing,
    Verifying,
    Succeeded,
    Failed,
}

/// A condition, Kubernetes style.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// The verification outcome.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub files: u64,
    pub matched: u64,
    pub mismatched: u64,
    /// The first mismatching paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// What the controller reports.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub chunks_total: u32,
    #[serde(default)]
    pub chunks_running: u32,
    #[serde(default)]
    pub chunks_succeeded: u32,
    #[serde(default)]
    pub chunks_failed: u32,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: u64,
    /// `bytes_done / bytes_total` as a percentage, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Estimated time left, e.g. `3m 20s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CRD as YAML (what `migrate-coord crd` prints).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let mut out = String::from("# Generated by `migrate-coord crd`: do not edit by hand.\n");
    out.push_str(&serde_yaml::to_string(&Migration::crd()).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_with_kubernetes_field_names() {
        let yaml = "source: hf:acme/m\ndest: ms:acme/m\nrepoType: model\nchunkSize: 4MiB\nmaxWorkers: 8\ntokensSecret: hub-tokens\nendpoints:\n  huggingface: http://hub\n";
        let spec: MigrationSpec = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(spec.chunk_size.as_deref(), Some("4MiB"));
        assert_eq!(spec.max_workers, Some(8));
        assert_eq!(spec.tokens_secret.as_deref(), Some("hub-tokens"));
        let back = serde_yaml::to_string(&spec).unwrap();
        assert!(back.contains("tokensSecret: hub-tokens") && back.contains("repoType: model"));
    }

    #[test]
    fn crd_has_status_subresource_and_printer_columns() {
        let y = crd_yaml();
        for needle in [
            "group: hubmigrate.dev",
            "kind: Migration",
            "plural: migrations",
            "scope: Namespaced",
            "status: {}",
            "- mig",
            "name: Phase",
            "name: Progress",
            "v1alpha1",
        ] {
            assert!(y.contains(needle), "missing {needle:?} in\n{y}");
        }
    }
}
