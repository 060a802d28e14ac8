//! `verify` (the cross-hub check of two existing repos, path by path, and with `--content` byte
//! by byte) and `cleanup` (delete the source only after a fresh content verify passed, the
//! destination is not older than the source's head, and someone confirmed).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use hubmigrate_hub::manifest::Manifest;

use crate::cli::{CleanupArgs, RunArgs};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::flow::manifest::source_manifest;
use crate::flow::resolve::{Side, Sides, sides};
use crate::flow::verdict;
use crate::report::Report;

/// `migrate-coord verify`: exit 0 when both repos hold the same files, 3 otherwise; `content`
/// reads every destination file back too.
pub async fn verify_command(args: &RunArgs, content: bool, env: &Env) -> i32 {
    let started = Instant::now();
    let mut report = Report::started(&args.source, args.dest.as_deref());
    let result = match sides(args, env) {
        Ok(mut sides) => check(&mut sides, args.revision.as_deref(), content, &mut report).await,
        Err(e) => Err(e),
    };
    report.conclude(started, result.as_ref().err(), "verified");
    super::finish(&report, true, args.report.as_deref())
}

/// Lists both repos and compares them, and with `content` reads every destination file back;
/// fills the report (`Err(Error::Mismatch)` when they differ).
pub async fn check(sides: &mut Sides, revision: Option<&str>, content: bool, report: &mut Report) -> Result<()> {
    let src = source_manifest(sides, revision).await?;
    let dest = sides
        .dest
        .hub
        .manifest(&sides.dest.repo, None)
        .await
        .map_err(|e| match e {
            hubmigrate_hub::Error::Http { status: 404, .. } => {
                Error::Input(format!("{} does not exist", sides.dest.repo))
            }
            e => e.into(),
        })?;
    report.source = sides.source.repo.to_string();
    report.dest = sides.dest.repo.to_string();
    report.source_commit = src.commit.clone();
    report.dest_commit = Some(dest.commit.clone());
    report.files = src.files.len();
    report.bytes = src.total_bytes();
    // What a migration writes: the card as rewritten for the destination, where it is.
    let src = crate::flow::verify::as_migrated(sides, &src).await?;
    let mut mismatches = crate::flow::verify::repos(sides, &src, &dest).await?;
    if content {
        let listed: HashSet<String> = mismatches.iter().map(|m| m.path.clone()).collect();
        let read = read_back(sides, &src, &dest).await?;
        mismatches.extend(read.into_iter().filter(|m| !listed.contains(&m.path)));
    }
    verdict(report, mismatches)
}

/// Reads the destination's files back, with progress.
async fn read_back(sides: &Sides, src: &Manifest, dest: &Manifest) -> Result<Vec<crate::report::Mismatch>> {
    let total: u64 = dest.files.iter().map(|f| f.size).sum();
    eprintln!(
        "reading back {} files ({}) of {} to hash them",
        dest.files.len(),
        crate::fmt::bytes(total),
        sides.dest.repo
    );
    let read = Arc::new(AtomicU64::new(0));
    let _progress = crate::terminal::ByteProgress::follow("reading back", total, read.clone());
    crate::flow::verify::contents(&sides.dest, &dest.commit, &src.files, &dest.files, read).await
}

/// `migrate-coord cleanup`: verify, check ages, confirm, delete the source. Nothing is deleted
/// unless every check passed.
pub async fn cleanup_command(args: &CleanupArgs, env: &Env) -> i32 {
    let run_args = args.pair.run_args();
    let started = Instant::now();
    let mut report = Report::started(&run_args.source, run_args.dest.as_deref());
    let result = cleanup(&run_args, args.yes, env, &mut report).await;
    report.conclude(started, result.as_ref().err(), "deleted");
    super::finish(&report, true, run_args.report.as_deref())
}

async fn cleanup(args: &RunArgs, yes: bool, env: &Env, report: &mut Report) -> Result<()> {
    let mut sides = sides(args, env)?;
    let source = sides.source.clone();
    if !source.hub.capabilities().deletes_repos {
        // ModelScope and git hosts refuse here, before anything is read or deleted.
        source
            .hub
            .delete_repo(&source.repo)
            .await
            .map_err(|e| Error::Refused(format!("cleanup refused, nothing deleted: {e}")))?;
    }
    if let Err(e) = check(&mut sides, args.revision.as_deref(), true, report).await {
        eprintln!(
            "cleanup refused, nothing deleted: {} does not match {} ({} mismatch(es))",
            sides.dest.repo,
            source.repo,
            report.mismatches.len()
        );
        return Err(e);
    }
    let branch = args.revision.as_deref().unwrap_or(source.hub.default_branch());
    let src_time = source.hub.head_time(&source.repo, branch).await?;
    let dest_branch = sides.dest.hub.default_branch();
    let dest_time = sides.dest.hub.head_time(&sides.dest.repo, dest_branch).await?;
    if let (Some(s), Some(d)) = (src_time, dest_time)
        && d < s
    {
        return Err(Error::Refused(format!(
            "cleanup refused, nothing deleted: the destination's last commit is older than the source's head ({}s earlier): migrate again first",
            s - d
        )));
    }
    if !yes && !confirm(&source)? {
        return Err(Error::Refused("not confirmed: nothing deleted".into()));
    }
    source.hub.delete_repo(&source.repo).await?;
    eprintln!(
        "deleted {} (its {} files were verified at {} commit {})",
        source.repo,
        report.files,
        sides.dest.repo,
        report.dest_commit.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// Asks on the terminal for the repo id; without a terminal, `--yes` is required.
fn confirm(source: &Side) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Input(
            "cleanup deletes the source repo: pass --yes when there is no terminal to confirm on".into(),
        ));
    }
    eprint!(
        "Delete {} permanently? Type its id ({}) to confirm: ",
        source.repo,
        source.repo.id()
    );
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the confirmation", e))?;
    Ok(line.trim() == source.repo.id())
}
