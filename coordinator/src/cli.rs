//! `migrate-coord`'s command line (clap derive): one struct per command, with the ecosystem's
//! own environment variables for endpoints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::options;

/// Migrate model and dataset repositories between Hugging Face, ModelScope and Git LFS hosts
/// (GitLab, Gitea, self-hosted), cloud to cloud: parallel workers stream every file from the
/// source into the destination's object store, the coordinator commits once (or, for a git
/// destination, pushes the source's history), then checks every file's sha256 at the destination.
///
/// Tokens come from the environment (or --env-file, default ./.env): HF_TOKEN for Hugging Face,
/// MODELSCOPE_TOKEN for ModelScope, TARGET_USERNAME/TARGET_TOKEN for a git host destination;
/// HUBMIGRATE_SOURCE_TOKEN and HUBMIGRATE_DEST_TOKEN override per side. A token goes only to the
/// host it is for: a platform's variable to that platform's public hub, the host of its endpoint
/// variable (HF_ENDPOINT, MODELSCOPE_ENDPOINT) or an endpoint named for that side. When source
/// and destination are two hosts of the same platform, the platform's variable is the
/// destination's; the source takes HUBMIGRATE_SOURCE_TOKEN (or is read without a token). A git
/// source takes HUBMIGRATE_SOURCE_TOKEN only. Tokens never appear in output, logs or arguments.
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
    /// Show the log on a terminal too (-v: info, -vv: debug). Off a terminal, and with
    /// --log-format json, the info log is always on. HUBMIGRATE_LOG (e.g. `debug`) overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The longest wait a hub's quota may impose (a 429's Retry-After or RateLimit reset, e.g.
    /// the Hub's hourly commit quota), announced with when it ends and a countdown; a longer one
    /// stops the run cleanly, and running it again continues from what was done (e.g. 2h, 30m).
    #[arg(long, global = true, default_value = "2h", value_parser = hubmigrate_common::parse_duration)]
    pub max_wait: std::time::Duration,
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
    /// Migrate many repos, a few at a time (--source a/x,b/y --to ms, or --from-file)
    ///
    /// The file has `SOURCE [DEST]` lines. Destinations that already verify are skipped (unless
    /// --on-existing update); interrupted ones are completed. Ends with a table and, with
    /// --report, a JSON report.
    Batch(BatchArgs),
    /// Compare two existing repos path by path (missing, extra, size, sha256)
    ///
    /// Compares the two listings; with --content, also reads every destination file back and
    /// hashes it. The same report and exit codes as `run` (0 identical, 3 mismatches, each
    /// named).
    Verify(VerifyArgs),
    /// Delete the source repo, only after a fresh `verify --content` against the destination passed
    ///
    /// Every destination file is read back and hashed first (a listing alone could hide a
    /// damaged copy). Asks for confirmation unless --yes; refuses when the destination is older
    /// than the source's head, and on ModelScope, whose API cannot delete repos.
    Cleanup(CleanupArgs),
    /// Print the Migration CustomResourceDefinition (YAML) for `kubectl apply -f -`.
    Crd,
    /// Run the Migration operator: reconcile Migrations with one Job per chunk (in a cluster, or
    /// against any API server the kubeconfig names).
    Controller(ControllerArgs),
    /// List every repo of a user or organisation: visibility, files, bytes, last commit.
    Inventory(InventoryArgs),
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
    /// The Secret ([NAMESPACE/]NAME, default namespace: the controller's own) with the gRPC
    /// server certificate: a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt (e.g.
    /// from cert-manager), used as it is. If it does not exist the controller makes a private CA
    /// and a certificate for the advertised host (valid a year, renewed at start 30 days before
    /// its end) and stores them there. Workers get the CA and verify the controller before they
    /// send anything.
    #[arg(long, env = "HUBMIGRATE_GRPC_TLS_SECRET", default_value = "hubmigrate-grpc-tls")]
    pub grpc_tls_secret: String,
    /// Serve the workers' gRPC in clear (only where the pod network is encrypted otherwise, e.g.
    /// a service mesh): presigned upload URLs and hub endpoints cross it.
    #[arg(long)]
    pub grpc_plaintext: bool,
    /// Only watch Migrations in this namespace (default: all namespaces).
    #[arg(long, env = "HUBMIGRATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// The worker image: what every Migration's Jobs run unless it names one of
    /// --allowed-worker-image.
    #[arg(long, env = "HUBMIGRATE_WORKER_IMAGE", default_value = concat!("ghcr.io/hubmigrate/hubmigrate:", env!("CARGO_PKG_VERSION")))]
    pub worker_image: String,
    /// Another image a Migration may name in spec.workerImage (repeatable). Any other image is
    /// refused: the worker sees the Migration's tokens.
    #[arg(long = "allowed-worker-image", value_name = "IMAGE")]
    pub allowed_worker_images: Vec<String>,
    /// A hub origin (scheme://host[:port]) a Migration may name besides the public hubs
    /// (huggingface.co, hf.co, modelscope.cn), in its endpoints or as a URL source or
    /// destination (repeatable). Anything else is refused before any request leaves.
    #[arg(long = "allowed-endpoint", value_name = "URL")]
    pub allowed_endpoints: Vec<String>,
    /// Requests and limits of each worker container, as JSON (e.g. the chart's
    /// workerResources); a Migration's spec.workerResources wins.
    #[arg(long, value_name = "JSON")]
    pub worker_resources: Option<String>,
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
    #[arg(long, default_value_t = options::CHUNK_SIZE, value_parser = parse_size)]
    pub chunk_size: u64,
    /// Files larger than a chunk's share, where the destination takes parts: `never` (the
    /// default) keeps every file whole in one worker, over all its connections; `always` splits
    /// each across workers into one multipart upload, which the coordinator reads back from the
    /// destination and hashes before committing (no worker saw all of it): a second pass.
    #[arg(long, value_enum, default_value = "never")]
    pub split: SplitFiles,
    /// Most workers at once, and most chunks.
    #[arg(long, default_value_t = options::MAX_WORKERS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
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
    /// What the hubs allow overall, bytes per second (e.g. 200MiB), when known: caps the ETA.
    #[arg(long, value_parser = parse_size)]
    pub rate_cap: Option<u64>,
    /// Attempts per chunk before the run fails.
    #[arg(long, default_value_t = options::MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Files each worker moves at once (a large one over several connections: --streams).
    #[arg(long, default_value_t = options::WORKER_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub worker_concurrency: u32,
    /// Connections each worker may open at once for the byte ranges of its large files: parallel
    /// ranged reads, and multipart parts where the destination takes them.
    #[arg(long, default_value_t = options::STREAMS, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub streams: u32,
    /// How long a started worker may take to register before it is given up on and its chunk
    /// retried: scheduling, image pulls and Pending pods on a cluster (e.g. 15m, 90s).
    #[arg(long, default_value = "15m", value_parser = hubmigrate_common::parse_duration)]
    pub start_timeout: std::time::Duration,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    #[default]
    Local,
    Kubernetes,
}

/// Whether files larger than a chunk are split across workers (`--split`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SplitFiles {
    /// Every file larger than a chunk's share (where the destination takes parts).
    Always,
    /// Never: every file whole in one worker.
    #[default]
    Never,
}

/// What `batch` does with a destination that exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OnExisting {
    /// Skip it when it already verifies against the source (complete it when it does not).
    #[default]
    Skip,
    /// Migrate again (adds and updates files).
    Update,
}

#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// Comma-separated sources: NS/NAME (the hub that is not --to) or full references.
    #[arg(long, value_delimiter = ',', required_unless_present = "from_file")]
    pub source: Vec<String>,
    /// A file of `SOURCE [DEST]` lines (blank lines and `#` comments ignored); DEST may name
    /// another namespace. Lines without DEST need --to.
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    pub from_file: Option<PathBuf>,
    /// Destination hub for sources without their own DEST (the same NS/NAME there).
    #[arg(long, value_name = "HUB")]
    pub to: Option<String>,
    /// Repo type, when the references do not say.
    #[arg(long, value_enum)]
    pub repo_type: Option<RepoTypeArg>,
    /// Repos migrated at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_repos: u32,
    /// A destination that exists: skip it when it verifies, or migrate again.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_existing: OnExisting,
    /// Base URL of the source hub.
    #[arg(long)]
    pub source_endpoint: Option<String>,
    /// Base URL of the destination hub.
    #[arg(long)]
    pub dest_endpoint: Option<String>,
    /// Split each repo across workers (see `run --parallel`).
    #[arg(long)]
    pub parallel: bool,
    /// Workers at once per repo.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_workers: u32,
    /// Write the batch's JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The migrate-worker binary (default: next to migrate-coord).
    #[arg(long, value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,
}

/// Two existing repos.
#[derive(Args, Debug, Clone)]
pub struct PairArgs {
    /// The source repo (hf:NS/NAME, ms:NS/NAME, a full URL, a git project URL).
    #[arg(long)]
    pub source: String,
    /// The destination repo (same forms); or use --to.
    #[arg(long, conflicts_with = "to")]
    pub dest: Option<String>,
    /// Shorthand destination: the same NS/NAME on the other hub (hf or ms).
    #[arg(long, value_name = "HUB")]
    pub to: Option<String>,
    /// Repo type, when the references do not say.
    #[arg(long, value_enum)]
    pub repo_type: Option<RepoTypeArg>,
    /// Source branch, tag or commit (default: the source's default branch).
    #[arg(long)]
    pub revision: Option<String>,
    /// Base URL of the source hub (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT or the public hub).
    #[arg(long)]
    pub source_endpoint: Option<String>,
    /// Base URL of the destination hub (same defaults).
    #[arg(long)]
    pub dest_endpoint: Option<String>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

impl PairArgs {
    /// The same references as `run` arguments.
    pub fn run_args(&self) -> RunArgs {
        RunArgs {
            source: self.source.clone(),
            dest: self.dest.clone(),
            to: self.to.clone(),
            repo_type: self.repo_type,
            revision: self.revision.clone(),
            source_endpoint: self.source_endpoint.clone(),
            dest_endpoint: self.dest_endpoint.clone(),
            report: self.report.clone(),
            ..Default::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    /// Also read every destination file back in full and hash it (sha256 or git blob id)
    /// against the source's listing, instead of trusting the destination's listing.
    #[arg(long)]
    pub content: bool,
}

#[derive(Args, Debug)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    /// Delete without asking (for scripts); otherwise the repo id must be typed to confirm.
    #[arg(long)]
    pub yes: bool,
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
    /// A Git LFS host (GitLab) to check TARGET_USERNAME/TARGET_TOKEN against, e.g.
    /// https://gitlab.example.com.
    #[arg(long)]
    pub git_endpoint: Option<String>,
}

/// Parses sizes like `30GB`, `512MiB`, `4096` (at least one byte).
pub fn parse_size(text: &str) -> Result<u64, String> {
    match hubmigrate_common::parse_size(text)? {
        0 => Err(format!("size {text:?} must be at least one byte")),
        n if n > 1_000_000_000_000_000_000 => Err(format!("size {text:?} is out of range")),
        n => Ok(n),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryHub {
    Hf,
    Ms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryType {
    Model,
    Dataset,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Which hub: hf (Hugging Face) or ms (ModelScope).
    #[arg(long, value_enum)]
    pub platform: InventoryHub,
    /// The user or organisation whose repos to list (private ones show when the token may see
    /// them: HF_TOKEN or MODELSCOPE_TOKEN).
    #[arg(long)]
    pub owner: String,
    /// Only models or only datasets (default: both).
    #[arg(long, value_enum)]
    pub repo_type: Option<InventoryType>,
    /// Print a JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the hub (default: HF_ENDPOINT / MODELSCOPE_ENDPOINT or the public hub).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Repos per listing request (default: 500 on Hugging Face, 50 on ModelScope).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,
    /// Repos whose files are listed at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub concurrency: u32,
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
