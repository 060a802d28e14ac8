//! The `Migration` custom resource (group `hubmigrate.dev`, version `v1alpha1`): its spec mirrors
//! the `run` flags, its status subresource carries what `kubectl get migrations` shows. The CRD
//! YAML in deploy/ and in the Helm chart is generated from these types (`migrate-coord crd`) and
//! a test fails when they drift.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;

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
    printcolumn = r#"{"name":"Detail","type":"string","jsonPath":".status.detail"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!self.source.matches('://[^/?#]*@') && !self.dest.matches('://[^/?#]*@')",
        "message": "credentials inside a repo URL: put them in the tokens Secret (TARGET_USERNAME, TARGET_TOKEN)"
    },
    {
        "rule": "!(has(self.pointerOnly) && has(self.useRemoteMirror) && self.pointerOnly && self.useRemoteMirror)",
        "message": "pointerOnly and useRemoteMirror exclude each other"
    },
    {
        "rule": "!has(self.endpoints) || ((!has(self.endpoints.huggingface) || !self.endpoints.huggingface.matches('://[^/?#]*@')) && (!has(self.endpoints.modelscope) || !self.endpoints.modelscope.matches('://[^/?#]*@')))",
        "message": "credentials inside an endpoint URL: put tokens in the tokens Secret"
    }
]))]
pub struct MigrationSpec {
    /// Source repo: `hf:NS/NAME`, `hf:datasets/NS/NAME`, `ms:NS/NAME` or a full URL.
    #[schemars(length(min = 3, max = 512), regex(pattern = NO_SPACE))]
    pub source: String,
    /// Destination repo, same forms.
    #[schemars(length(min = 3, max = 512), regex(pattern = NO_SPACE))]
    pub dest: String,
    /// `model`, `dataset` or `space`, when the references do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["model", "dataset", "space"]))]
    pub repo_type: Option<String>,
    /// Source branch, tag or commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = NO_SPACE))]
    pub revision: Option<String>,
    /// Spread the repo over up to `maxWorkers` Jobs.
    #[serde(default)]
    pub parallel: bool,
    /// Target bytes per chunk, e.g. `30GB` or `4MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SIZE))]
    pub chunk_size: Option<String>,
    /// Most Jobs at once, and most chunks (1 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
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
    /// Push history only, no LFS content (git destinations that already hold the objects).
    #[serde(default)]
    pub pointer_only: bool,
    /// Have a GitLab destination pull the source itself (a pull mirror) instead of moving bytes.
    #[serde(default)]
    pub use_remote_mirror: bool,
    /// How long `useRemoteMirror` waits for the host to pull, e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub mirror_timeout: Option<String>,
    /// Plan only: nothing is created or written.
    #[serde(default)]
    pub dry_run: bool,
    /// Base URLs of the hubs by platform (default: the public hubs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// Base URL of the source hub (over `endpoints`), e.g. between two HF-compatible hubs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = URL))]
    pub source_endpoint: Option<String>,
    /// Base URL of the destination hub (over `endpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = URL))]
    pub dest_endpoint: Option<String>,
    /// Files larger than a chunk's share: `never` (default) keeps every file whole in one
    /// worker, `always` splits each across workers (read back before the commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::cli::SplitFiles>,
    /// Attempts per chunk before the migration fails (default 3, at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub max_attempts: Option<u32>,
    /// Files each worker moves at once (default 4, at most 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub worker_concurrency: Option<u32>,
    /// Connections each worker opens at once for large files' byte ranges (default 8, at most 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub streams: Option<u32>,
    /// What the hubs allow overall per second, e.g. `200MiB` (feeds the ETA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SIZE))]
    pub rate_cap: Option<String>,
    /// How long a worker pod may take to start (scheduling, image pulls), e.g. `15m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub start_timeout: Option<String>,
    /// Name of a Secret whose keys are the CLI's variables: HF_TOKEN, MODELSCOPE_TOKEN,
    /// TARGET_USERNAME, TARGET_TOKEN. It must carry the label `hubmigrate.dev/tokens: "true"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub tokens_secret: Option<String>,
    /// Container image of the worker Jobs: the controller's, or one it allows
    /// (`--allowed-worker-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = NO_SPACE))]
    pub worker_image: Option<String>,
    /// cpu, memory and ephemeral-storage requests and limits of each worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_resources: Option<ResourceRequirements>,
}

/// Hub base URLs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = URL))]
    pub huggingface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = URL))]
    pub modelscope: Option<String>,
}

/// A size as `parse_size` reads it: `4096`, `64KiB`, `1.5GiB`, `30GB`, `10mb`.
const SIZE: &str = r"^[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$";
/// A duration as `parse_duration` reads it: `50ms`, `90s`, `30m`, `2h`.
const DURATION: &str = r"^[0-9]+(\.[0-9]+)?\s*(ms|s|m|h)?$";
/// An http(s) URL.
const URL: &str = r"^https?://[^\s/?#]+(/[^\s]*)?$";
/// A DNS subdomain (a Secret's name).
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// No white space at all.
const NO_SPACE: &str = r"^[^\s]+$";

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
    /// What is happening now, in a few words (e.g. why workers are Pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The destination commit written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_commit: Option<String>,
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

impl MigrationSpec {
    /// The `run` arguments this spec says; every field left out takes the run's default
    /// ([`crate::options`]). An invalid value is a one-line error.
    pub fn run_args(&self) -> Result<RunArgs, String> {
        use crate::cli::RepoTypeArg;
        let repo_type = match self.repo_type.as_deref() {
            None => None,
            Some("model") => Some(RepoTypeArg::Model),
            Some("dataset") => Some(RepoTypeArg::Dataset),
            Some("space") => Some(RepoTypeArg::Space),
            Some(other) => return Err(format!("invalid repoType {other:?}: use model, dataset or space")),
        };
        let duration = |field: &str, v: &Option<String>, default| match v {
            Some(text) => hubmigrate_common::parse_duration(text).map_err(|e| format!("invalid {field}: {e}")),
            None => Ok(default),
        };
        if self.pointer_only && self.use_remote_mirror {
            return Err("pointerOnly and useRemoteMirror exclude each other".into());
        }
        let d = RunArgs::default();
        Ok(RunArgs {
            source: self.source.clone(),
            dest: Some(self.dest.clone()),
            repo_type,
            revision: self.revision.clone(),
            source_endpoint: self.source_endpoint.clone(),
            dest_endpoint: self.dest_endpoint.clone(),
            parallel: self.parallel,
            chunk_size: match &self.chunk_size {
                Some(s) => crate::cli::parse_size(s).map_err(|e| format!("invalid chunkSize: {e}"))?,
                None => d.chunk_size,
            },
            max_workers: self.max_workers.unwrap_or(d.max_workers).clamp(1, 1000),
            split: self.split.unwrap_or(d.split),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            mirror: self.mirror,
            pointer_only: self.pointer_only,
            use_remote_mirror: self.use_remote_mirror,
            mirror_timeout: duration("mirrorTimeout", &self.mirror_timeout, d.mirror_timeout)?,
            dry_run: self.dry_run,
            rate_cap: match &self.rate_cap {
                Some(s) => Some(crate::cli::parse_size(s).map_err(|e| format!("invalid rateCap: {e}"))?),
                None => None,
            },
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts).clamp(1, 20),
            worker_concurrency: self.worker_concurrency.unwrap_or(d.worker_concurrency).clamp(1, 64),
            streams: self.streams.unwrap_or(d.streams).clamp(1, 64),
            start_timeout: duration("startTimeout", &self.start_timeout, d.start_timeout)?,
            ..d
        })
    }
}

/// The CRD as YAML (what `migrate-coord crd` prints).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let mut out = String::from("# Generated by `migrate-coord crd`: do not edit by hand.\n");
    out.push_str(&serde_yaml_ng::to_string(&Migration::crd()).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_with_kubernetes_field_names() {
        let yaml = "source: hf:acme/m\ndest: ms:acme/m\nrepoType: model\nchunkSize: 4MiB\nmaxWorkers: 8\ntokensSecret: hub-tokens\nendpoints:\n  huggingface: http://hub\n";
        let spec: MigrationSpec = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(spec.chunk_size.as_deref(), Some("4MiB"));
        assert_eq!(spec.max_workers, Some(8));
        assert_eq!(spec.tokens_secret.as_deref(), Some("hub-tokens"));
        let back = serde_yaml_ng::to_string(&spec).unwrap();
        assert!(back.contains("tokensSecret: hub-tokens") && back.contains("repoType: model"));
    }

    #[test]
    fn a_spec_says_what_run_can_and_defaults_the_rest() {
        let yaml = "source: hf:acme/m\ndest: hf:acme/m\nsourceEndpoint: http://a\ndestEndpoint: http://b\nstreams: 2\nstartTimeout: 90s\npointerOnly: true\n";
        let spec: MigrationSpec = serde_yaml_ng::from_str(yaml).unwrap();
        let args = spec.run_args().unwrap();
        assert_eq!(args.source_endpoint.as_deref(), Some("http://a"));
        assert_eq!(args.dest_endpoint.as_deref(), Some("http://b"));
        assert_eq!(args.streams, 2);
        assert!(args.pointer_only);
        assert_eq!(args.start_timeout, std::time::Duration::from_secs(90));
        let d = RunArgs::default();
        assert_eq!(
            (
                args.chunk_size,
                args.max_workers,
                args.max_attempts,
                args.worker_concurrency
            ),
            (d.chunk_size, d.max_workers, d.max_attempts, d.worker_concurrency)
        );
        let bad = MigrationSpec {
            chunk_size: Some("lots".into()),
            ..spec
        };
        assert!(bad.run_args().unwrap_err().contains("chunkSize"));
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
