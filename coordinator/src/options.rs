//! The run defaults, once: the command line's default values, `batch`, and the Kubernetes
//! controller (a Migration that leaves a field out) all take them from here.

use std::time::Duration;

use crate::cli::{ExecutorArg, RunArgs};

/// Target bytes per chunk with `--parallel`.
pub const CHUNK_SIZE: u64 = 30_000_000_000;
/// Most workers at once, and most chunks.
pub const MAX_WORKERS: u32 = 100;
/// Attempts per chunk before the run fails.
pub const MAX_ATTEMPTS: u32 = 3;
/// Files each worker moves at once.
pub const WORKER_CONCURRENCY: u32 = 4;
/// Connections each worker may open at once for the byte ranges of large files.
pub const STREAMS: u32 = 8;
/// How long `--use-remote-mirror` waits for the host to pull.
pub const MIRROR_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long a started worker may take to register (scheduling, image pulls, Pending pods).
pub const START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A registered worker not heard from for this long is presumed dead.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for RunArgs {
    /// A run of nothing yet (`source` empty) with every default of the command line.
    fn default() -> Self {
        RunArgs {
            source: String::new(),
            dest: None,
            to: None,
            repo_type: None,
            revision: None,
            source_endpoint: None,
            dest_endpoint: None,
            parallel: false,
            chunk_size: CHUNK_SIZE,
            split: crate::cli::SplitFiles::Never,
            max_workers: MAX_WORKERS,
            include: Vec::new(),
            exclude: Vec::new(),
            mirror: false,
            pointer_only: false,
            use_remote_mirror: false,
            mirror_timeout: MIRROR_TIMEOUT,
            dry_run: false,
            report: None,
            rate_cap: None,
            max_attempts: MAX_ATTEMPTS,
            worker_concurrency: WORKER_CONCURRENCY,
            streams: STREAMS,
            start_timeout: START_TIMEOUT,
            worker_bin: None,
            executor: ExecutorArg::Local,
            namespace: None,
            detach: false,
            tokens_secret: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// The command line's defaults are these defaults: a run parsed from the fewest flags equals
    /// `RunArgs::default()` with those flags set.
    #[test]
    fn the_command_line_and_the_default_agree() {
        let cli = Cli::parse_from(["migrate-coord", "run", "--source", "hf:a/b", "--to", "ms"]);
        let Command::Run(args) = cli.command else {
            panic!("not a run")
        };
        let want = super::RunArgs {
            source: "hf:a/b".into(),
            to: Some("ms".into()),
            ..Default::default()
        };
        assert_eq!(format!("{args:?}"), format!("{want:?}"));
    }
}
