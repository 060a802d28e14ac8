//! `migrate-coord`'s command line (clap derive): one struct per command, with the ecosystem's
//! own environment variables for endpoints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Migrate model and dataset repositories between Hugging Face and ModelScope, cloud to cloud:
/// parallel workers stream every file from the source into the destination's object store, the
/// coordinator commits once, then checks every file's sha256 at the destination.
///
/// Tokens come from the environment (or --env-file): HF_TOKEN for Hugging Face, MODELSCOPE_TOKEN
/// for ModelScope; when both sides are on the same hub, HUBMIGRATE_SOURCE_TOKEN and
/// HUBMIGRATE_DEST_TOKEN override per side. Tokens never appear in output, logs or arguments.
///
/// Exit codes: 0 migrated and verified, 1 failure, 2 bad input or credentials, 3 migrated but
/// verification found mismatches.
#[derive(Parser, Debug)]
#[command(name = "migrate-coord", version, propagate_version = true)]
pub struct Cli {
    /// Read KEY=VALUE lines (HF_TOKEN, MODELSCOPE_TOKEN, ...) from this file; default ./.env when present.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Log format on stderr: text for terminals, json for clusters.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate one repository.
    Run(RunArgs),
    /// Show what `run` would do (manifest, plan, ETA) without writing anything.
    Plan(RunArgs),
    /// Check the configured tokens: whose they are and whether they can write.
    ValidateTokens(ValidateArgs),
    /// Print the Migration CustomResourceDefinition (YAML) for `kubectl apply -f -`.
    Crd,
    /// Run the Migration operator: reconcile Migrations with one Job per chunk (in a cluster, or
    /// against any API server the kubeconfig names).
    Controller(ControllerArgs),
}

#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Where the workers' gRPC server listens (port 0 picks a free one).
    #[arg(long, default_value = "0.0.0.0:50051")]
    pub grpc_listen: String,
    /// The address worker pods dial: HOST or HOST:PORT (port defaults to the bound one). In a
    /// cluster the Helm chart sets the controller Service's name.
    #[arg(long, env = "HUBMIGRATE_GRPC_ADVERTISE")]
    pub grpc_advertise: Option<String>,
    /// Only watch Migrations in this namespace (default: all namespaces).
    #[arg(long, env = "HUBMIGRATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Worker image for Migrations that do not name one.
    #[arg(long, env = "HUBMIGRATE_WORKER_IMAGE", default_value = concat!("ghcr.io/hubmigrate/hubmigrate:", env!("CARGO_PKG_VERSION")))]
    pub worker_image: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RepoTypeArg {
    Model,
    Dataset,
    Space,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The source repo: hf:NS/NAME, hf:datasets/NS/NAME, ms:NS/NAME, or a full URL; a Git LFS
    /// host by its project URL (https://host/group/sub/proj.git, or git:URL).
    #[arg(long)]
    pub source: String,
    /// The destination repo (same forms as --source); or use --to. A Git LFS host destination
    /// gets the source's git history (same commit ids), its LFS objects sent first; its
    /// credentials come from TARGET_USERNAME/TARGET_TOKEN or the URL (never shown).
    #[arg(long, conflicts_with = "to")]
    pub dest: Option<String>,
    /// Shorthand destination: the same NS/NAME on the other hub (hf or ms).
    #[arg(long, value_name = "HUB")]
    pub to: Option<String>,
    /// Repo type, when the references do not say (a space to ModelScope needs `model`).
    #[arg(long, value_enum)]
    pub repo_type: Option<RepoTypeArg>,
    /// Source branch, tag or commit to migrate (default: the source's default branch).
    #[arg(long)]
    pub revision: Option<String>,
    /// Base URL of the source hub (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT or the public hub).
    #[arg(long)]
    pub source_endpoint: Option<String>,
    /// Base URL of the destination hub (same defaults).
    #[arg(long)]
    pub dest_endpoint: Option<String>,
    /// Split the repo across workers by --chunk-size (otherwise one worker unless the repo is large).
    #[arg(long)]
    pub parallel: bool,
    /// Target bytes per chunk with --parallel (e.g. 30GB, 512MiB).
    #[arg(long, default_value = "30GB", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Most workers at once, and most chunks.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_workers: u32,
    /// Only files matching this glob (repeatable; `*` crosses folders, `dir/` means everything below).
    #[arg(long = "include", value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Git destinations: carry every branch and tag (refs/pr/*, refs/convert/* and refs the host
    /// rejects are skipped and listed; nothing is ever deleted or force-pushed).
    #[arg(long)]
    pub mirror: bool,
    /// Git destinations: push history only, no LFS content; refused before pushing when the
    /// destination lacks an object the history needs.
    #[arg(long, conflicts_with = "use_remote_mirror")]
    pub pointer_only: bool,
    /// GitLab destinations: configure a pull mirror of the source through the GitLab API and wait
    /// until the mirrored head equals the source's, then verify. The source's token is handed to
    /// GitLab inside the mirror URL (GitLab stores it; it is never printed).
    #[arg(long)]
    pub use_remote_mirror: bool,
    /// How long --use-remote-mirror waits for the host to finish pulling.
    #[arg(long, default_value = "30m", value_parser = hubmigrate_common::parse_duration)]
    pub mirror_timeout: std::time::Duration,
    /// Print the manifest summary, plan and ETA, then stop: nothing is created or written.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Attempts per chunk before the run fails.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Parallel transfers inside each worker.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub worker_concurrency: u32,
    /// The migrate-worker binary (default: next to migrate-coord).
    #[arg(long, value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,
    /// Where workers run: local processes, or Kubernetes Jobs (through a Migration object that the
    /// in-cluster controller carries out; the kubeconfig's cluster is used).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: ExecutorArg,
    /// Kubernetes namespace of the Migration (default: the kubeconfig's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// With --executor kubernetes: create the Migration and return at once.
    #[arg(long)]
    pub detach: bool,
    /// With --executor kubernetes: the Secret holding the hub tokens (keys HF_TOKEN,
    /// MODELSCOPE_TOKEN); without it, one is created from this environment's tokens.
    #[arg(long)]
    pub tokens_secret: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    Local,
    Kubernetes,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Also check write access to this namespace (user or organisation).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Hugging Face base URL (default: HF_ENDPOINT or https://huggingface.co).
    #[arg(long)]
    pub hf_endpoint: Option<String>,
    /// ModelScope base URL (default: MODELSCOPE_ENDPOINT or https://modelscope.cn).
    #[arg(long)]
    pub ms_endpoint: Option<String>,
}

/// Parses sizes like `30GB`, `512MiB`, `4096` (at least one byte).
pub fn parse_size(text: &str) -> Result<u64, String> {
    match hubmigrate_common::parse_size(text)? {
        0 => Err(format!("size {text:?} must be at least one byte")),
        n if n > 1_000_000_000_000_000_000 => Err(format!("size {text:?} is out of range")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("30GB"), Ok(30_000_000_000));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert!(parse_size("0").is_err() && parse_size("ten").is_err());
    }
}
