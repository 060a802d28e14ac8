//! Command-line interface of `hubsim` (clap derive): `serve` runs a hub, `seed` builds a
//! synthetic repo on disk for a hub to serve.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::state::Flavor;
use crate::util::{parse_duration, parse_share, parse_size};

/// A local Hugging Face / ModelScope hub for tests, demos and benchmarks.
///
/// hubsim stores repos as real bare git repositories and LFS objects in a content-addressed
/// store, and speaks the hubs' own protocols, so the official clients, git and git-lfs work
/// against it unchanged.
#[derive(Parser, Debug)]
#[command(name = "hubsim", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve a hub until killed; prints its base URL as the first line of stdout.
    Serve(Box<ServeArgs>),
    /// Build a synthetic repo with deterministic content directly in a data directory.
    Seed(SeedArgs),
    /// A git server hook of the git flavor (run by git itself, not by people).
    #[command(hide = true)]
    GitHook(HookArgs),
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn size(s: &str) -> Result<u64, String> {
    parse_size(s)
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// A URL lifetime: a duration (`90s`, `30m`) or hours (`24h`), at least one second.
fn ttl(s: &str) -> Result<Duration, String> {
    let d = match s.strip_suffix('h').map(str::parse::<f64>) {
        Some(Ok(hours)) => {
            Duration::try_from_secs_f64(hours * 3600.0).map_err(|e| format!("invalid duration {s:?}: {e}"))?
        }
        _ => parse_duration(s)?,
    };
    if d < Duration::from_secs(1) {
        return Err(format!("URL lifetime {s:?} is under one second"));
    }
    Ok(d)
}

fn share(s: &str) -> Result<f64, String> {
    parse_share(s)
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Which hub protocol to speak.
    #[arg(long, value_enum)]
    pub flavor: Flavor,
    /// Port to listen on; 0 picks a free one (the URL printed first on stdout tells which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Data directory: repos, LFS objects and temporary uploads live here.
    #[arg(long)]
    pub data: PathBuf,
    /// A user with write access to its own namespace and its orgs: NAME=TOKEN (repeatable).
    #[arg(long = "user", value_name = "NAME=TOKEN")]
    pub users: Vec<String>,
    /// A user whose token may only read: NAME=TOKEN (repeatable).
    #[arg(long = "read-user", value_name = "NAME=TOKEN")]
    pub read_users: Vec<String>,
    /// An organisation and its members: ORG=USER1,USER2 (repeatable).
    #[arg(long = "org", value_name = "ORG=USERS")]
    pub orgs: Vec<String>,
    /// LFS objects at or above this size are offered the multipart transfer (HF flavor).
    #[arg(long, default_value = "64MiB", value_parser = size)]
    pub multipart_threshold: u64,
    /// Part size of multipart transfers.
    #[arg(long, default_value = "16MiB", value_parser = size)]
    pub part_size: u64,
    /// Entries per page of tree listings (the Hub uses 1000).
    #[arg(long, default_value_t = 1000)]
    pub tree_page_size: usize,
    /// Largest API request body; bigger ones get 413 (LFS object uploads are not limited).
    #[arg(long, default_value = "256MiB", value_parser = size)]
    pub max_request_body: u64,
    /// Bandwidth cap per connection, bytes per second, both directions (e.g. 40MiB).
    #[arg(long, value_parser = size)]
    pub conn_rate: Option<u64>,
    /// Bandwidth cap over all connections, bytes per second, both directions (e.g. 400MiB).
    #[arg(long, value_parser = size)]
    pub total_rate: Option<u64>,
    /// Latency added to every request (e.g. 50ms).
    #[arg(long, value_parser = duration)]
    pub latency: Option<Duration>,
    /// Share of requests answered 429 with Retry-After (0 to 1).
    #[arg(long = "fail-429", default_value = "0", value_parser = share)]
    pub fail_429: f64,
    /// Share of requests answered with a 5xx error (0 to 1).
    #[arg(long = "fail-5xx", default_value = "0", value_parser = share)]
    pub fail_5xx: f64,
    /// Share of download bodies cut short (0 to 1).
    #[arg(long, default_value = "0", value_parser = share)]
    pub truncate: f64,
    /// Share of downloads with one byte flipped (0 to 1).
    #[arg(long, default_value = "0", value_parser = share)]
    pub corrupt: f64,
    /// Refuse the API listing routes with 403 while git and download routes keep working.
    #[arg(long = "api-403")]
    pub api_403: bool,
    /// Commits allowed per repo per --commit-window. Default: 128 on the HF flavor (the figure
    /// users of the Hub hit), none elsewhere; 0: no limit. ModelScope answers it as its
    /// commit-frequency limit (429 "Commit frequency limit exceeded", SDK code E1021).
    #[arg(long)]
    pub commit_limit: Option<u32>,
    /// The sliding window of --commit-limit.
    #[arg(long, default_value = "1h", value_parser = ttl)]
    pub commit_window: Duration,
    /// HF flavor: the server's time per commit operation (a commit answers after it).
    #[arg(long, default_value = "30ms", value_parser = duration)]
    pub commit_op_cost: Duration,
    /// HF flavor: the server's time per MiB of inline (regular file) content in a commit.
    #[arg(long, default_value = "100ms", value_parser = duration)]
    pub commit_mib_cost: Duration,
    /// HF flavor: the server's timeout on a commit: one that would take longer fails with 504
    /// after this long, and nothing is committed (the Hub's is 60 s; with the default costs a
    /// commit of 2,000 operations times out).
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub commit_timeout: Duration,
    /// HF flavor: commits with more operations time out as above whatever their cost.
    #[arg(long)]
    pub max_commit_ops: Option<usize>,
    /// HF flavor: the plan whose request quotas apply to every user (rate-limits.md: free 1,000
    /// api / 5,000 resolvers / 200 pages requests per 5 minutes; pro 2,500 / 12,000 / 400; team
    /// 3,000 / 20,000 / 400; enterprise 6,000 / 50,000 / 600). Anonymous callers get 500 / 3,000
    /// / 100 per IP address.
    #[arg(long, value_enum, default_value = "free")]
    pub tier: crate::quota::Tier,
    /// HF flavor: api requests per user and window, instead of the tier's.
    #[arg(long)]
    pub api_quota: Option<u64>,
    /// HF flavor: resolver requests (URLs with /resolve/) per user and window, instead of the tier's.
    #[arg(long)]
    pub resolve_quota: Option<u64>,
    /// HF flavor: page requests per user and window, instead of the tier's.
    #[arg(long)]
    pub pages_quota: Option<u64>,
    /// HF flavor: the fixed window the quotas count over (whole seconds, at least 1s).
    #[arg(long, default_value = "300s", value_parser = duration)]
    pub quota_window: Duration,
    /// Largest LFS object an upload may announce (e.g. 100MiB). Default: 50 GB on the HF flavor
    /// (larger files need Xet there), no limit elsewhere.
    #[arg(long, value_parser = size)]
    pub max_lfs_object_size: Option<u64>,
    /// A reverse proxy's body limit in front of the object store (nginx's client_max_body_size):
    /// object uploads larger than this get the proxy's 413 although the batch API accepted them.
    #[arg(long, value_parser = size)]
    pub proxy_max_body: Option<u64>,
    /// Lifetime of the presigned URLs the hub hands out (LFS uploads, multipart parts, object
    /// downloads); used later they get S3's 403 "Request has expired".
    #[arg(long, default_value = "24h", value_parser = ttl)]
    pub url_ttl: Duration,
    /// Assemble multipart uploads without checking the object's sha256 against its oid, as a
    /// plain S3 bucket does (only the size is checked): whatever bytes the parts carried are
    /// stored under the oid. For testing that clients hash what they send.
    #[arg(long)]
    pub unchecked_multipart: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Data directory of the hub that will serve the repo.
    #[arg(long)]
    pub data: PathBuf,
    /// Which hub's conventions to follow (default branch, .gitattributes).
    #[arg(long, value_enum)]
    pub flavor: Flavor,
    /// The repo to create: NAMESPACE/NAME (git flavor: GROUP[/SUBGROUP...]/NAME).
    #[arg(long)]
    pub repo: String,
    /// Repo type.
    #[arg(long, default_value = "model", value_parser = ["model", "dataset", "space"])]
    pub repo_type: String,
    /// Number of small regular files.
    #[arg(long, default_value_t = 0)]
    pub files: u64,
    /// Size of each small regular file.
    #[arg(long, default_value = "1KiB", value_parser = size)]
    pub file_size: u64,
    /// Number of LFS files of --lfs-size each.
    #[arg(long, default_value_t = 0)]
    pub lfs_files: u64,
    /// Size of each of the --lfs-files.
    #[arg(long, default_value = "1MiB", value_parser = size)]
    pub lfs_size: u64,
    /// An LFS file with an exact path and size: PATH=SIZE (repeatable).
    #[arg(long = "lfs-file", value_name = "PATH=SIZE")]
    pub lfs_file: Vec<String>,
    /// Make the repo private.
    #[arg(long)]
    pub private: bool,
    /// Gate the repo (Hugging Face flavor): users outside its namespace need to be granted
    /// access to read its files.
    #[arg(long, value_parser = ["auto", "manual"])]
    pub gated: Option<String>,
    /// The repo's license: a README.md whose front matter says `license: ID` (and, on the
    /// ModelScope flavor, the repo's `License` field).
    #[arg(long, value_name = "ID")]
    pub license: Option<String>,
    /// Write the list of files (path, size, sha256, lfs) as JSON to this file.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Seed of the deterministic content generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Which hook git is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HookKind {
    PreReceive,
    PostReceive,
}

#[derive(Args, Debug)]
pub struct HookArgs {
    /// The hook git runs.
    #[arg(value_enum)]
    pub hook: HookKind,
    /// Data directory of the hub (where the LFS object store lives).
    #[arg(long)]
    pub data: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lifetimes() {
        assert_eq!(ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(ttl("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(ttl("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(ttl("30m"), Ok(Duration::from_secs(1_800)));
        assert!(ttl("500ms").is_err() && ttl("0").is_err() && ttl("xh").is_err());
    }
}
