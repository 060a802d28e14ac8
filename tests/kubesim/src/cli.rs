//! Command-line interface of `kubesim` (clap derive): `serve` runs the API server, its garbage
//! collector, job controller and kubelet until killed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A Kubernetes API-server stand-in with a local kubelet, for tests without a cluster.
///
/// kubesim serves the Kubernetes API over plain HTTP (discovery, CRUD, patches, server-side
/// apply, list and watch, CustomResourceDefinitions, Tables for kubectl) and runs each Job's pods
/// as local processes.
#[derive(Parser, Debug)]
#[command(name = "kubesim", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve until killed; prints the server URL as the first line of stdout.
    Serve(ServeArgs),
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub use hubmigrate_common::parse_duration;

/// Options of `kubesim serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on; 0 picks a free one (the URL printed first on stdout tells which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Data directory: stored objects (objects/) and captured pod logs (logs/).
    #[arg(long)]
    pub data: PathBuf,
    /// Write a kubeconfig for kubectl and kube-rs here (context `kubesim`, namespace `default`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Where bare container commands (e.g. `migrate-worker`) are looked up before PATH
    /// [default: the directory holding the kubesim binary].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Changes kept for watches; a watch from an older resourceVersion gets 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    pub watch_history: usize,
    /// Base delay before a failed Job pod is replaced (doubled per failure, capped at 6m); a real
    /// cluster waits 10s.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub job_backoff: Duration,
    /// Interval of BOOKMARK events on watches that allow them.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub bookmark_interval: Duration,
    /// How long every pod stays Pending with its container `ContainerCreating` (as while a node
    /// pulls the image) before its container starts, e.g. 500ms, 45s, 2m.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub pod_start_delay: Duration,
    /// Pods the scheduler never places (Pending, `PodScheduled=False`, reason `Unschedulable`):
    /// those matching this label selector, or every pod when given without a value.
    #[arg(long, value_name = "SELECTOR", num_args = 0..=1, default_missing_value = "")]
    pub unschedulable_pods: Option<String>,
    /// Name of the node pods are bound to.
    #[arg(long, default_value = "kubesim")]
    pub node: String,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}
