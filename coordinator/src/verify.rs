//! `verify` (the cross-hub check of two existing repos, path by path) and `cleanup` (delete the
//! source only after a fresh verify passed, the destination is not older than the source's head,
//! and someone confirmed).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Instant;

use hubmigrate_hub::Error;
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::manifest::{FileEntry, Manifest};
use sha2::{Digest, Sha256};

use crate::cli::{CleanupArgs, RunArgs};
use crate::config::{Resolved, Side, Sides, resolve};
use crate::envfile::Env;
use crate::report::{Mismatch, Report, exit};
use crate::run::{Failure, conclude, source_manifest, verdict};

/// `migrate-coord verify`: exit 0 when both repos hold the same files, 3 otherwise.
pub async fn verify_command(args: &RunArgs, env: &Env) -> i32 {
    let started = Instant::now();
    let mut report = Report::started(&args.source, args.dest.as_deref());
    let result = match sides_of(args, env) {
        Ok(mut sides) => check(&mut sides, args.revision.as_deref(), &mut report).await,
        Err(f) => Err(f),
    };
    conclude(report, result, started, "verified", true, args.report.as_deref()).code
}

pub fn sides_of(args: &RunArgs, env: &Env) -> Result<Sides, Failure> {
    match resolve(args, env)? {
        Resolved::Migrate(s) => Ok(*s),
        Resolved::Skip(reason) => Err(Error::Input(reason).into()),
    }
}

/// Lists both repos and compares them; fills the report and returns the exit code.
pub async fn check(sides: &mut Sides, revision: Option<&str>, report: &mut Report) -> Result<i32, Failure> {
    let src = source_manifest(sides, revision).await?;
    let dest = sides
        .dest
        .hub
        .manifest(&sides.dest.repo, None)
        .await
        .map_err(|e| match e {
            Error::Http { status: 404, .. } => Error::Input(format!("{} does not exist", sides.dest.repo)),
            e => e,
        })?;
    report.source = sides.source.repo.to_string();
    report.dest = sides.dest.repo.to_string();
    report.source_commit = src.commit.clone();
    report.dest_commit = Some(dest.commit.clone());
    report.files = src.files.len();
    report.bytes = src.total_bytes();
    let mismatches = compare(sides, &src, &dest).await?;
    Ok(verdict(report, mismatches))
}

/// Path by path: missing, size, hash (content hashed here when the hubs give hashes of different
/// kinds), then the destination's extra files. A `.gitattributes` that only gained LFS rules is
/// the destination's bookkeeping, not a difference; so is one the source lacks.
pub async fn compare(sides: &Sides, src: &Manifest, dest: &Manifest) -> Result<Vec<Mismatch>, Failure> {
    let in_dest: HashMap<&str, &FileEntry> = dest.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Vec::new();
    for f in &src.files {
        let Some(d) = in_dest.get(f.path.as_str()) else {
            out.push(mismatch(
                &f.path,
                "missing",
                format!("{} bytes", f.size),
                "nothing".into(),
            ));
            continue;
        };
        if d.size != f.size {
            out.push(mismatch(&f.path, "size", f.size.to_string(), d.size.to_string()));
            continue;
        }
        let (want, got) = match (&f.sha256, &d.sha256, &f.git_oid, &d.git_oid) {
            (Some(a), Some(b), _, _) => (a.clone(), b.clone()),
            (_, _, Some(a), Some(b)) if !f.lfs && !d.lfs => (a.clone(), b.clone()),
            _ => (
                sha256_of(&sides.source, &src.commit, f).await?,
                sha256_of(&sides.dest, &dest.commit, d).await?,
            ),
        };
        if want != got {
            if f.path == ".gitattributes" {
                let a = content(&sides.source, &src.commit, f).await?;
                let b = content(&sides.dest, &dest.commit, d).await?;
                if crate::finish::gitattributes_extended(&a, &b) {
                    continue;
                }
            }
            out.push(mismatch(&f.path, "hash", want, got));
        }
    }
    let in_src: std::collections::HashSet<&str> = src.files.iter().map(|f| f.path.as_str()).collect();
    for d in &dest.files {
        if !in_src.contains(d.path.as_str()) && d.path != ".gitattributes" {
            out.push(mismatch(
                &d.path,
                "extra",
                "nothing".into(),
                format!("{} bytes", d.size),
            ));
        }
    }
    Ok(out)
}

fn mismatch(path: &str, kind: &'static str, expected: String, found: String) -> Mismatch {
    Mismatch {
        path: path.to_string(),
        kind,
        expected,
        found,
    }
}

/// A file's bytes at `commit` (small regular files: `.gitattributes`, configs).
async fn content(side: &Side, commit: &str, f: &FileEntry) -> Result<Vec<u8>, Failure> {
    use futures_util::TryStreamExt;
    let object = f.sha256.as_deref().filter(|_| f.lfs).map(|s| (s, f.size));
    let stream = hubmigrate_hub::transfer::open_resuming(&side.hub, &side.repo, commit, &f.path, object, 0, f.size);
    stream.map_ok(|b| b.to_vec()).try_concat().await.map_err(|e| Failure {
        code: exit::FAILURE,
        message: format!("reading {} from {}: {e}", f.path, side.repo),
    })
}

/// The sha256 the listing gives, or one computed from the content.
async fn sha256_of(side: &Side, commit: &str, f: &FileEntry) -> Result<String, Failure> {
    if let Some(s) = &f.sha256 {
        return Ok(s.clone());
    }
    Ok(hex::encode(Sha256::digest(content(side, commit, f).await?)))
}

/// `migrate-coord cleanup`: verify, check ages, confirm, delete the source. Nothing is deleted
/// unless every check passed.
pub async fn cleanup_command(args: &CleanupArgs, env: &Env) -> i32 {
    let run_args = args.pair.run_args();
    let started = Instant::now();
    let mut report = Report::started(&run_args.source, run_args.dest.as_deref());
    let result = cleanup(&run_args, args.yes, env, &mut report).await;
    conclude(report, result, started, "deleted", true, run_args.report.as_deref()).code
}

async fn cleanup(args: &RunArgs, yes: bool, env: &Env, report: &mut Report) -> Result<i32, Failure> {
    let mut sides = sides_of(args, env)?;
    let source = sides.source.clone();
    if !matches!(source.hub, Hub::Hf(_)) {
        // ModelScope and git hosts refuse here, before anything is read or deleted.
        source.hub.delete_repo(&source.repo).await.map_err(|e| Failure {
            code: exit::FAILURE,
            message: format!("cleanup refused, nothing deleted: {e}"),
        })?;
    }
    let code = check(&mut sides, args.revision.as_deref(), report).await?;
    if code != exit::OK {
        return Err(Failure {
            code,
            message: format!(
                "cleanup refused, nothing deleted: {} does not match {} ({} mismatch(es))",
                sides.dest.repo,
                source.repo,
                report.mismatches.len()
            ),
        });
    }
    let branch = args.revision.as_deref().unwrap_or(source.hub.default_branch());
    let src_time = source.hub.head_time(&source.repo, branch).await?;
    let dest_branch = sides.dest.hub.default_branch();
    let dest_time = sides.dest.hub.head_time(&sides.dest.repo, dest_branch).await?;
    if let (Some(s), Some(d)) = (src_time, dest_time)
        && d < s
    {
        return Err(Failure {
            code: exit::FAILURE,
            message: format!(
                "cleanup refused, nothing deleted: the destination's last commit is older than the source's head ({}s earlier): migrate again first",
                s - d
            ),
        });
    }
    if !yes && !confirm(&source)? {
        return Err(Failure {
            code: exit::FAILURE,
            message: "not confirmed: nothing deleted".into(),
        });
    }
    source.hub.delete_repo(&source.repo).await?;
    eprintln!(
        "deleted {} (its {} files were verified at {} commit {})",
        source.repo,
        report.files,
        sides.dest.repo,
        report.dest_commit.as_deref().unwrap_or("?")
    );
    Ok(exit::OK)
}

/// Asks on the terminal for the repo id; without a terminal, `--yes` is required.
fn confirm(source: &Side) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Input(
            "cleanup deletes the source repo: pass --yes when there is no terminal to confirm on".into(),
        )
        .into());
    }
    eprint!(
        "Delete {} permanently? Type its id ({}) to confirm: ",
        source.repo,
        source.repo.id()
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| Failure {
        code: exit::FAILURE,
        message: e.to_string(),
    })?;
    Ok(line.trim() == source.repo.id())
}
