//! Step 6, commit: one committer writes every file to the destination (skipped when the
//! destination already holds exactly these files). Nothing enters a commit that was not hashed
//! against the source: LFS objects were checked by the workers as they streamed (or read back
//! from the destination: split files, objects it held already), regular files travel inline
//! with the hash the worker computed and the coordinator checked. Git destinations get a push instead
//! ([`crate::flow::git::push`]).

use std::collections::HashMap;

use futures_util::TryStreamExt;
use hubmigrate_hub::hashing::Hashing;
use hubmigrate_hub::hub::CommitFile;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_proto as pb;

use crate::error::{Error, Result};
use crate::flow::resolve::Sides;
use crate::flow::verify;

/// What the commit step did.
pub struct Committed {
    /// The destination commit holding the migrated files.
    pub commit: String,
    /// Bytes of regular files the commit carried inline (0 when nothing was committed).
    pub inline_bytes: u64,
}

/// The destination commit's files. Regular files' contents move out of `results`: they are held
/// once, from the worker's report to the commit.
fn commit_files(tasks: &[pb::FileTask], results: &mut HashMap<String, pb::FileResult>) -> Result<Vec<CommitFile>> {
    tasks
        .iter()
        .map(|t| {
            let r = results
                .get_mut(&t.path)
                .ok_or_else(|| Error::Transfer(format!("no result for {}; nothing was committed", t.path)))?;
            Ok(if t.lfs {
                let sha256 = if r.sha256.is_empty() {
                    t.sha256.clone()
                } else {
                    r.sha256.clone()
                };
                CommitFile::Lfs {
                    path: t.path.clone(),
                    sha256,
                    size: t.size,
                }
            } else {
                CommitFile::Inline {
                    path: t.path.clone(),
                    content: std::mem::take(&mut r.content),
                }
            })
        })
        .collect()
}

/// Completes the results the transfer did not produce: regular files of a git source (read here
/// from its clone), and files of chunks that finished under an earlier controller. An LFS object
/// is recorded as already present only when the destination says it holds it; regular files,
/// small by construction, are read again from the source and hashed.
pub async fn fill_results(
    sides: &Sides,
    source_commit: &str,
    tasks: &[pb::FileTask],
    mut results: HashMap<String, pb::FileResult>,
) -> Result<HashMap<String, pb::FileResult>> {
    let missing: Vec<&pb::FileTask> = tasks.iter().filter(|t| !results.contains_key(&t.path)).collect();
    let objects: Vec<(String, u64)> = missing
        .iter()
        .filter(|t| t.lfs)
        .map(|t| (t.sha256.clone(), t.size))
        .collect();
    let present = if objects.is_empty() {
        Vec::new()
    } else {
        let dest = &sides.dest;
        let branch = dest.hub.default_branch();
        dest.hub.prepare_uploads(&dest.repo, branch, &objects).await?
    };
    let mut present = present.into_iter();
    // A git source keeps a clone: its regular files are read in one pass, not one each.
    let regular: Vec<&str> = missing.iter().filter(|t| !t.lfs).map(|t| t.path.as_str()).collect();
    let mut from_clone = match sides.source.hub.read_many(source_commit, &regular).await {
        Ok(read) => read.unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e, "reading the regular files in one pass failed; one at a time");
            HashMap::new()
        }
    };
    let mut read_back = Vec::new();
    for t in missing {
        let mut r = pb::FileResult {
            path: t.path.clone(),
            size: t.size,
            sha256: t.sha256.clone(),
            ..Default::default()
        };
        if t.lfs {
            match present.next() {
                Some(hubmigrate_hub::hub::UploadAction::Present) => {
                    r.set_outcome(pb::FileOutcome::AlreadyPresent);
                    read_back.push((t.path.clone(), t.sha256.clone(), t.size));
                }
                _ => {
                    return Err(Error::Transfer(format!(
                        "{}: no worker reported it and the destination does not hold its object; nothing was committed (run again to send it)",
                        t.path
                    )));
                }
            }
        } else {
            let stream: hubmigrate_hub::hashing::ByteStream = match from_clone.remove(&t.path) {
                Some(content) => Box::pin(futures_util::stream::iter([Ok(content.into())])),
                None => hubmigrate_hub::resume::open_resuming(
                    &sides.source.hub,
                    &sides.source.repo,
                    source_commit,
                    &t.path,
                    None,
                    0,
                    t.size,
                ),
            };
            let (body, slot) = Hashing::new(stream, Some(t.size), Default::default());
            r.content = body
                .map_ok(|b| b.to_vec())
                .try_concat()
                .await
                .map_err(|e| Error::Transfer(format!("reading {} from the source: {e}", t.path)))?;
            let d = slot.finish();
            r.sha256 = d.sha256;
            r.git_oid = d.git_oid.unwrap_or_default();
            r.set_outcome(pb::FileOutcome::Inline);
        }
        results.insert(t.path.clone(), r);
    }
    // Nobody here sent these objects in this run: they are read back and hashed first.
    hubmigrate_hub::readback::objects(&sides.dest.hub, &sides.dest.repo, read_back).await?;
    Ok(results)
}

/// Commits the migrated files to `branch`, unless the destination already holds exactly them.
pub async fn commit(
    sides: &Sides,
    manifest: &Manifest,
    tasks: &[pb::FileTask],
    results: &mut HashMap<String, pb::FileResult>,
    branch: &str,
) -> Result<Committed> {
    let dest = &sides.dest;
    let current = dest.hub.manifest(&dest.repo, Some(branch)).await?;
    let before = verify::against(sides, &manifest.commit, tasks, results, &current.files, &current.commit).await?;
    if before.is_empty() {
        tracing::info!(repo = %dest.repo, "the destination already holds every file: nothing to commit");
        return Ok(Committed {
            commit: current.commit,
            inline_bytes: 0,
        });
    }
    // Only what differs is committed: a re-run after an interrupted series of commits sends
    // the rest, and no commit repeats files the destination holds already.
    let differ: std::collections::HashSet<&str> = before.iter().map(|m| m.path.as_str()).collect();
    let todo: Vec<pb::FileTask> = tasks
        .iter()
        .filter(|t| differ.contains(t.path.as_str()))
        .cloned()
        .collect();
    if todo.is_empty() {
        // Only files the source lacks differ (a commit adds, it does not delete): no empty commit.
        return Ok(Committed {
            commit: current.commit,
            inline_bytes: 0,
        });
    }
    let files = commit_files(&todo, results)?;
    let inline_bytes = files
        .iter()
        .map(|f| match f {
            CommitFile::Inline { content, .. } => content.len() as u64,
            CommitFile::Lfs { .. } => 0,
        })
        .sum();
    let short = manifest.commit.get(..12).unwrap_or(&manifest.commit);
    let message = format!("Migrate {} at {short} with hubmigrate", manifest.repo);
    let count = files.len();
    let commit = dest.hub.commit(&dest.repo, branch, &message, files.into()).await?;
    tracing::info!(repo = %dest.repo, %commit, files = count, "committed");
    Ok(Committed { commit, inline_bytes })
}
