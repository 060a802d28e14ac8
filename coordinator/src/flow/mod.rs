//! The flow of one migration, written once, in the order of DESIGN.md:
//!
//! | step | module |
//! |---|---|
//! | 1. resolve the references, check every token | [`resolve`] |
//! | 2. list the source at one pinned commit | [`manifest`] (git sources: [`git`]) |
//! | 3. cut it into size-balanced chunks, estimate | [`plan`], [`eta`] |
//! | 4. prepare the destination repo | [`prepare`] |
//! | 5. one worker per chunk, over gRPC | [`transfer`] |
//! | 6. one committer (git destinations: one push) | [`commit`] ([`git`]) |
//! | 7. every file proved at the destination | [`verify`] |
//!
//! [`Pipeline`] carries one migration from its arguments to a verified report. It is driven
//! through two seams: a [`transfer::Runtime`] (where workers run: local processes, Kubernetes
//! Jobs) and an [`Observer`] (where progress goes: a terminal, a Migration's status). `run`,
//! `batch` and the Kubernetes controller all call it; nothing of the flow is written elsewhere.

pub(crate) mod commit;
pub(crate) mod eta;
pub(crate) mod git;
pub(crate) mod limits;
pub(crate) mod manifest;
pub(crate) mod metadata;
pub mod plan;
pub(crate) mod planned;
pub(crate) mod prepare;
pub(crate) mod resolve;
pub(crate) mod transfer;
pub(crate) mod verify;

pub use planned::{Planned, plan_migration};

use std::collections::HashMap;
use std::time::Instant;

use hubmigrate_proto as pb;

use crate::cli::RunArgs;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::report::{Mismatch, Report};
use transfer::{Runtime, Snapshot};

/// The steps an observer hears of, in order (a run may skip some).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Planning,
    Preparing,
    Transferring,
    Committing,
    Verifying,
}

/// Where a migration's progress goes: a terminal, or a Migration's status and Events. Every
/// method has a default that ignores it.
pub trait Observer: Send {
    /// A step begins; `note` says what it does, in a few words.
    fn step(&mut self, _step: Step, _note: &str) {}
    /// The plan is made (before anything is written).
    fn planned(&mut self, _p: &Planned, _args: &RunArgs) {}
    /// The transfer moved on (about twice a second).
    fn progress(&mut self, _s: &Snapshot) {}
}

/// How a migration ended.
pub struct Outcome {
    /// The finished report (duration, status and exit code filled in).
    pub report: Report,
    pub result: Result<()>,
    /// Set when there was nothing to migrate, with the reason.
    pub skipped: Option<String>,
}

impl Outcome {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        self.report.exit_code
    }
}

/// One migration, from its arguments to a verified report.
pub struct Pipeline<'a, R, O> {
    args: &'a RunArgs,
    env: &'a Env,
    runtime: R,
    observer: O,
}

impl<'a, R: Runtime, O: Observer> Pipeline<'a, R, O> {
    /// A pipeline for `args` whose workers `runtime` starts and whose progress `observer` hears.
    pub fn new(args: &'a RunArgs, env: &'a Env, runtime: R, observer: O) -> Self {
        Pipeline {
            args,
            env,
            runtime,
            observer,
        }
    }

    /// Runs the migration (with `args.dry_run`, only plans it).
    pub async fn run(mut self) -> Outcome {
        let started = Instant::now();
        let mut report = Report::started(&self.args.source, self.args.dest.as_deref());
        let mut skipped = None;
        let result = self.execute(&mut report, &mut skipped).await;
        let status_ok = if self.args.dry_run { "planned" } else { "verified" };
        report.conclude(started, result.as_ref().err(), status_ok);
        Outcome {
            report,
            result,
            skipped,
        }
    }

    async fn execute(&mut self, report: &mut Report, skipped: &mut Option<String>) -> Result<()> {
        let args = self.args;
        // 1-3. Resolve, validate, manifest, plan.
        self.observer
            .step(Step::Planning, "listing the source and planning chunks");
        let p = match plan_migration(args, self.env).await? {
            Ok(p) => p,
            Err(reason) => {
                tracing::warn!("{reason}");
                *skipped = Some(reason);
                return Ok(());
            }
        };
        report.source = p.sides.source.repo.to_string();
        report.dest = p.sides.dest.repo.to_string();
        report.source_commit = p.manifest.commit.clone();
        report.files = p.manifest.files.len();
        report.bytes = p.manifest.total_bytes();
        report.chunks = p.plan.chunks.len();
        report.eta_secs = p.eta.as_secs_f64();
        report.metadata = p.metadata.notes.clone();
        self.observer.planned(&p, args);
        if args.dry_run {
            return Ok(());
        }

        // 4. Prepare the destination.
        self.observer
            .step(Step::Preparing, "creating or checking the destination");
        prepare::ensure_repo(&p.sides, &p.metadata, p.dest_exists).await?;
        if p.git.is_some() {
            return self.git_destination(&p, report).await;
        }

        // 5. Transfer (files split across workers get their multipart uploads opened first and
        // completed as their parts come in).
        let (resumed, journal) = self.runtime.journal().await?;
        let opened = transfer::multipart::open(&p, resumed).await?;
        let results = self.transfer(&p, opened, journal, report).await?;
        let mut results = commit::fill_results(&p.sides, &p.manifest.commit, &p.tasks, results).await?;
        report.bytes_uploaded = results.values().map(|r| r.bytes_sent).sum();
        report.files_already_present = results
            .values()
            .filter(|r| r.outcome() == pb::FileOutcome::AlreadyPresent)
            .count();

        // 6. Commit (the card naming the license the destination reads), then 7. verify.
        if let Some(before) = metadata::rewrite_card(&p.metadata, &mut results) {
            let after = &results[metadata::CARD].sha256;
            tracing::info!(source_sha256 = %before, sha256 = %after, "{} names the license the destination reads", metadata::CARD);
            report.metadata.push(format!(
                "{} rewritten: sha256 {before} at the source, {after} here",
                metadata::CARD
            ));
        }
        self.observer.step(Step::Committing, "writing the destination commit");
        let committed = commit::commit(&p.sides, &p.manifest, &p.tasks, &mut results, &p.branch).await?;
        report.bytes_uploaded += committed.inline_bytes;
        report.dest_commit = Some(committed.commit.clone());
        self.observer
            .step(Step::Verifying, "comparing every file at the destination");
        let mismatches = verify::migrated(&p.sides, &p.manifest.commit, &p.tasks, &results, &committed.commit).await?;
        verdict(report, mismatches)
    }

    /// A git destination: objects first (workers), then the history (one push), then
    /// verification.
    async fn git_destination(&mut self, p: &Planned, report: &mut Report) -> Result<()> {
        let (args, sides, plan) = (self.args, &p.sides, p.git.as_ref().expect("a git plan"));
        let commit = if args.use_remote_mirror {
            self.observer
                .step(Step::Transferring, "the destination pulls the source (remote mirror)");
            git::remote_mirror(sides, plan, &p.branch, args.mirror_timeout).await?
        } else {
            let present = git::check_destination(sides, &p.branch, &p.tasks, args.pointer_only).await?;
            if !p.plan.chunks.is_empty() && present < p.tasks.len() {
                let opened = transfer::multipart::Opened {
                    chunks: p.chunk_tasks(),
                    saved: Default::default(),
                };
                let results = self.transfer(p, opened, None, report).await?;
                report.bytes_uploaded = results.values().map(|r| r.bytes_sent).sum();
            }
            report.files_already_present = present;
            self.observer.step(Step::Committing, "pushing the source's history");
            let pushed = git::push(sides, plan, &p.branch).await?;
            tracing::info!(refs = pushed.refs.len(), commit = %pushed.commit, "history pushed");
            report.refs_pushed = pushed.refs;
            report.refs_skipped = plan.skipped.iter().cloned().chain(pushed.rejected).collect();
            pushed.commit
        };
        report.dest_commit = Some(commit.clone());
        self.observer
            .step(Step::Verifying, "comparing every file at the destination");
        let mismatches = git::verify(sides, &p.manifest, &p.tasks, &commit).await?;
        verdict(report, mismatches)
    }

    /// Step 5: one worker per chunk (`opened`: each one's tasks, and the uploads of split files,
    /// kept in `journal` as they change); returns the per-file results by path.
    async fn transfer(
        &mut self,
        p: &Planned,
        opened: transfer::multipart::Opened,
        journal: Option<std::sync::Arc<dyn transfer::multipart::Journal>>,
        report: &mut Report,
    ) -> Result<HashMap<String, pb::FileResult>> {
        let migration_id = self.runtime.migration_id();
        report.migration_id = migration_id.clone();
        self.observer.step(
            Step::Transferring,
            &format!("{} chunk(s), one worker each", opened.chunks.len()),
        );
        let (source, dest) = p.sides_pb();
        let t = transfer::Transfer {
            migration_id,
            source,
            dest,
            chunks: opened.chunks,
            branch: p.branch.clone(),
            saved: opened.saved,
            journal,
            limits: transfer::Limits::of(self.args),
            concurrency: self.args.worker_concurrency,
            streams: self.args.streams,
        };
        let observer = &mut self.observer;
        transfer::run(t, &mut self.runtime, &p.sides, &mut |s| observer.progress(&s)).await
    }
}

/// Records the verification in the report: `Err(Error::Mismatch)` when any file differs.
pub fn verdict(report: &mut Report, mismatches: Vec<Mismatch>) -> Result<()> {
    report.verified = mismatches.is_empty();
    let n = mismatches.len();
    report.mismatches = mismatches;
    if n == 0 {
        Ok(())
    } else {
        Err(Error::Mismatch {
            mismatched: n,
            files: report.files,
        })
    }
}
