//! `migrate-coord run` and `plan`: one migration through the pipeline, workers as local
//! processes, progress on this terminal.

use crate::cli::RunArgs;
use crate::env::Env;
use crate::flow::transfer::executor::Local;
use crate::flow::{Outcome, Pipeline};
use crate::terminal::Terminal;

/// Runs (or with `args.dry_run`, plans) one migration; prints the error and summary, writes
/// `--report`, and returns the outcome with its final exit code.
pub async fn run(args: &RunArgs, env: &Env, log_format: &'static str) -> Outcome {
    let local = Local::new(args.worker_bin.clone(), log_format);
    let mut outcome = Pipeline::new(args, env, local, Terminal::default()).run().await;
    // A report that cannot be written turns success into failure.
    outcome.report.exit_code = super::finish(&outcome.report, !args.dry_run, args.report.as_deref());
    outcome
}
