//! The subcommands, one file each, thin: they turn arguments into a [`crate::flow::Pipeline`]
//! (or a check) and its outcome into output and an exit code.

pub mod batch;
pub mod inventory;
pub mod run;
pub mod tokens;
pub mod verify;

use crate::error::exit;
use crate::report::Report;

/// Ends a command that made a report: prints the error (with its causes) and, unless the input
/// was bad or `summary` is off, the summary; writes the report to `path`. Returns the exit code.
pub fn finish(report: &Report, summary: bool, path: Option<&std::path::Path>) -> i32 {
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
    }
    if summary && report.exit_code != exit::BAD_INPUT {
        eprint!("{}", report.summary());
    }
    if let Some(path) = path
        && let Err(e) = report.write(path)
    {
        eprintln!("error: {}", e.chain());
        return exit::FAILURE;
    }
    report.exit_code
}
