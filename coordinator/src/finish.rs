//! Commit once, then verify: one committer writes every file to the destination (skipped when the
//! destination already holds exactly these files), then the destination is listed at the new
//! commit and every manifest path compared by size and hash.

use std::collections::HashMap;

use hubmigrate_hub::hub::CommitFile;
use hubmigrate_hub::manifest::{FileEntry, Manifest};
use hubmigrate_proto as pb;

use crate::config::Sides;
use crate::report::{Mismatch, exit};
use crate::run::Failure;

/// Compares the destination's listing with what was migrated.
pub fn compare(
    tasks: &[pb::FileTask],
    results: &HashMap<String, pb::FileResult>,
    listing: &[FileEntry],
) -> Vec<Mismatch> {
    let by_path: HashMap<&str, &FileEntry> = listing.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut out = Vec::new();
    for t in tasks {
        let r = results.get(&t.path);
        let Some(e) = by_path.get(t.path.as_str()) else {
            out.push(Mismatch {
                path: t.path.clone(),
                kind: "missing",
                expected: format!("{} bytes", t.size),
                found: "nothing".into(),
            });
            continue;
        };
        if e.size != t.size {
            out.push(Mismatch {
                path: t.path.clone(),
                kind: "size",
                expected: t.size.to_string(),
                found: e.size.to_string(),
            });
            continue;
        }
        let want_sha = r
            .map(|r| r.sha256.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(&t.sha256);
        let want_git = r
            .map(|r| r.git_oid.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(&t.git_oid);
        let (expected, found) = match (&e.sha256, &e.git_oid) {
            (Some(found), _) if !want_sha.is_empty() => (want_sha, found.as_str()),
            (_, Some(found)) if !want_git.is_empty() && !e.lfs => (want_git, found.as_str()),
            _ => {
                out.push(Mismatch {
                    path: t.path.clone(),
                    kind: "hash",
                    expected: "a comparable hash".into(),
                    found: "none the destination reports".into(),
                });
                continue;
            }
        };
        if expected != found {
            out.push(Mismatch {
                path: t.path.clone(),
                kind: "hash",
                expected: expected.to_string(),
                found: found.to_string(),
            });
        }
    }
    out
}

/// Hubs append a `filter=lfs` rule to `.gitattributes` for LFS paths no rule covers (the Hugging
/// Face Hub does; so does hubsim). The destination's copy then differs from the source's only by
/// such appended lines, which is the destination's own bookkeeping, not a migration error.
pub fn gitattributes_extended(source: &[u8], dest: &[u8]) -> bool {
    let src = String::from_utf8_lossy(source);
    let dst = String::from_utf8_lossy(dest);
    let base = src.trim_end_matches('\n');
    let Some(rest) = dst.strip_prefix(base) else {
        return false;
    };
    rest.lines().all(|l| l.trim().is_empty() || l.contains("filter=lfs"))
}

/// Drops a `.gitattributes` mismatch when the destination only appended LFS rules to it.
async fn settle_gitattributes(
    sides: &Sides,
    commit: &str,
    results: &HashMap<String, pb::FileResult>,
    mismatches: &mut Vec<Mismatch>,
) -> Result<(), Failure> {
    let Some(pos) = mismatches
        .iter()
        .position(|m| m.path == ".gitattributes" && m.kind != "missing")
    else {
        return Ok(());
    };
    let Some(source) = results
        .get(".gitattributes")
        .filter(|r| r.outcome() == pb::FileOutcome::Inline)
    else {
        return Ok(());
    };
    let dest = &sides.dest;
    let len = dest
        .hub
        .list(&dest.repo, commit)
        .await?
        .iter()
        .find(|e| e.path == ".gitattributes")
        .map(|e| e.size)
        .unwrap_or(0);
    use futures_util::TryStreamExt;
    let body = dest
        .hub
        .download(&dest.repo, commit, ".gitattributes", None, 0, len)
        .await?;
    let content: Vec<u8> = body.map_ok(|b| b.to_vec()).try_concat().await.map_err(|e| Failure {
        code: exit::FAILURE,
        message: e.to_string(),
    })?;
    if gitattributes_extended(&source.content, &content) {
        tracing::info!("the destination appended LFS rules to .gitattributes; the source's rules are all there");
        mismatches.remove(pos);
    }
    Ok(())
}

/// The destination commit's files.
fn commit_files(tasks: &[pb::FileTask], results: &HashMap<String, pb::FileResult>) -> Result<Vec<CommitFile>, Failure> {
    tasks
        .iter()
        .map(|t| {
            let r = results.get(&t.path).ok_or_else(|| Failure {
                code: exit::FAILURE,
                message: format!("no result for {}", t.path),
            })?;
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
                    content: r.content.clone(),
                }
            })
        })
        .collect()
}

/// Completes the results of chunks that finished under an earlier controller: their LFS objects
/// are at the destination already (content-addressed), and their regular files, small by
/// construction, are read again from the source here.
pub async fn fill_results(
    sides: &Sides,
    source_commit: &str,
    tasks: &[pb::FileTask],
    mut results: HashMap<String, pb::FileResult>,
) -> Result<HashMap<String, pb::FileResult>, Failure> {
    use futures_util::TryStreamExt;
    use hubmigrate_hub::hashing::Hashing;
    let missing: Vec<&pb::FileTask> = tasks.iter().filter(|t| !results.contains_key(&t.path)).collect();
    for t in missing {
        let mut r = pb::FileResult {
            path: t.path.clone(),
            size: t.size,
            sha256: t.sha256.clone(),
            ..Default::default()
        };
        if t.lfs {
            r.set_outcome(pb::FileOutcome::AlreadyPresent);
        } else {
            let stream = hubmigrate_hub::transfer::open_resuming(
                &sides.source.hub,
                &sides.source.repo,
                source_commit,
                &t.path,
                None,
                0,
                t.size,
            );
            let (body, slot) = Hashing::new(stream, Some(t.size), Default::default());
            r.content = body.map_ok(|b| b.to_vec()).try_concat().await.map_err(|e| Failure {
                code: exit::FAILURE,
                message: e.to_string(),
            })?;
            let d = slot.finish();
            r.sha256 = d.sha256;
            r.git_oid = d.git_oid.unwrap_or_default();
            r.set_outcome(pb::FileOutcome::Inline);
        }
        results.insert(t.path.clone(), r);
    }
    Ok(results)
}

/// Commits (unless already up to date) and verifies. Returns the destination commit, the
/// mismatches, and the inline bytes the commit carried.
pub async fn commit_and_verify(
    sides: &Sides,
    manifest: &Manifest,
    tasks: &[pb::FileTask],
    results: &HashMap<String, pb::FileResult>,
    branch: &str,
) -> Result<(String, Vec<Mismatch>, u64), Failure> {
    let dest = &sides.dest;
    let files = commit_files(tasks, results)?;
    let current = dest.hub.manifest(&dest.repo, Some(branch)).await?;
    let mut before = compare(tasks, results, &current.files);
    settle_gitattributes(sides, &current.commit, results, &mut before).await?;
    let (commit, inline_bytes) = if before.is_empty() {
        tracing::info!(repo = %dest.repo, "the destination already holds every file: nothing to commit");
        (current.commit, 0)
    } else {
        let short = manifest.commit.get(..12).unwrap_or(&manifest.commit);
        let message = format!("Migrate {} at {short} with hubmigrate", manifest.repo);
        let inline: u64 = files
            .iter()
            .map(|f| {
                if let CommitFile::Inline { content, .. } = f {
                    content.len() as u64
                } else {
                    0
                }
            })
            .sum();
        let commit = dest.hub.commit(&dest.repo, branch, &message, &files).await?;
        tracing::info!(repo = %dest.repo, %commit, files = files.len(), "committed");
        (commit, inline)
    };
    let listing = dest.hub.list(&dest.repo, &commit).await?;
    let mut mismatches = compare(tasks, results, &listing);
    settle_gitattributes(sides, &commit, results, &mut mismatches).await?;
    Ok((commit, mismatches, inline_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(path: &str, size: u64, lfs: bool, sha: &str) -> pb::FileTask {
        pb::FileTask {
            path: path.into(),
            size,
            sha256: sha.into(),
            git_oid: String::new(),
            lfs,
            slice: None,
            source_lfs: lfs,
        }
    }

    #[test]
    fn gitattributes_may_only_gain_lfs_rules() {
        let src = b"*.bin filter=lfs diff=lfs merge=lfs -text\n";
        assert!(gitattributes_extended(src, src));
        assert!(gitattributes_extended(
            src,
            b"*.bin filter=lfs diff=lfs merge=lfs -text\nx[[:space:]]y.json filter=lfs diff=lfs merge=lfs -text\n"
        ));
        assert!(!gitattributes_extended(
            src,
            b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.txt text\n"
        ));
        assert!(!gitattributes_extended(src, b"*.md filter=lfs\n"));
    }

    #[test]
    fn finds_missing_size_and_hash_mismatches() {
        let tasks = [
            task("a", 1, true, "aa"),
            task("b", 2, true, "bb"),
            task("c", 3, true, "cc"),
            task("d", 4, false, ""),
        ];
        let mut results = HashMap::new();
        results.insert(
            "d".to_string(),
            pb::FileResult {
                path: "d".into(),
                git_oid: "g1".into(),
                ..Default::default()
            },
        );
        let listing = vec![
            FileEntry {
                path: "a".into(),
                size: 1,
                lfs: true,
                sha256: Some("aa".into()),
                git_oid: None,
            },
            FileEntry {
                path: "b".into(),
                size: 9,
                lfs: true,
                sha256: Some("bb".into()),
                git_oid: None,
            },
            FileEntry {
                path: "d".into(),
                size: 4,
                lfs: false,
                sha256: None,
                git_oid: Some("g2".into()),
            },
        ];
        let m = compare(&tasks, &results, &listing);
        let kinds: Vec<(&str, &str)> = m.iter().map(|m| (m.path.as_str(), m.kind)).collect();
        assert_eq!(kinds, [("b", "size"), ("c", "missing"), ("d", "hash")]);
        let ok = vec![FileEntry {
            path: "d".into(),
            size: 4,
            lfs: false,
            sha256: None,
            git_oid: Some("g1".into()),
        }];
        assert!(compare(&tasks[3..], &results, &ok).is_empty());
    }
}
