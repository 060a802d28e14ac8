//! The hubmigrate coordinator. The layout follows the flow of one migration
//! (../shared/DESIGN.md, The flow of one migration; docs/architecture.md):
//!
//! | module | owns |
//! |---|---|
//! | [`flow`] | the pipeline: resolve, manifest, plan, prepare, transfer, commit, verify |
//! | [`commands`] | one thin file per subcommand |
//! | [`k8s`] | the Migration resource, its controller, the Kubernetes runtime and observer |
//! | [`terminal`] | the terminal observer: plan, progress bars or lines |
//! | [`error`] | the one error type and its exit codes |
//! | [`options`] | the run defaults |
//! | [`cli`], [`env`] | the command line, the environment and `.env` |
//! | [`report`], [`fmt`], [`ids`] | the JSON report and summary, how numbers look, random ids |

pub mod cli;
pub mod commands;
pub mod env;
pub(crate) mod error;
pub mod flow;
pub(crate) mod fmt;
pub(crate) mod ids;
pub mod k8s;
pub(crate) mod options;
pub(crate) mod report;
pub(crate) mod terminal;
