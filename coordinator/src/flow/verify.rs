//! Step 7, verify: the one comparator. What the destination lists is held against what is
//! expected of it, path by path: present, same size, same hash. Where the two sides give hashes
//! of different kinds (a sha256 here, a git blob id there), the content is read and hashed. A
//! `.gitattributes` that only gained LFS rules is the destination's bookkeeping, not a
//! difference. Used after a migration ([`migrated`]), by `verify` and `cleanup` ([`repos`]), and
//! for git destinations.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::{StreamExt, TryStreamExt};
use hubmigrate_hub::hashing::{Digests, Hashing};
use hubmigrate_hub::manifest::{FileEntry, Manifest};
use hubmigrate_proto as pb;

use crate::error::{Error, Result};
use crate::flow::resolve::{Side, Sides};
use crate::report::Mismatch;

/// A file read at one commit of one side, for the checks that need content.
struct At<'a> {
    side: &'a Side,
    commit: &'a str,
    /// Contents this run already holds (the workers' inline results), read before the side.
    inline: Option<&'a HashMap<String, pb::FileResult>>,
}

/// Whether extra files at the destination count as differences.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Extras {
    /// A migration adds or updates files; others may stay.
    Allowed,
    /// Two repos said to be copies hold the same paths (but `.gitattributes` and the files the
    /// destination hub makes in a new repo, listed here).
    Mismatch(&'static [&'static str]),
}

/// Compares `expected` (read at `source`) with `found` (read at `dest`).
async fn compare(
    expected: &[FileEntry],
    found: &[FileEntry],
    source: At<'_>,
    dest: At<'_>,
    extras: Extras,
) -> Result<Vec<Mismatch>> {
    let in_dest: HashMap<&str, &FileEntry> = found.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Vec::new();
    for f in expected {
        let Some(d) = in_dest.get(f.path.as_str()) else {
            out.push(mismatch(
                &f.path,
                "missing",
                format!("{} bytes", f.size),
                "nothing".into(),
            ));
            continue;
        };
        let differs = if d.size != f.size {
            Some(mismatch(&f.path, "size", f.size.to_string(), d.size.to_string()))
        } else {
            let (want, got) = match (&f.sha256, &d.sha256, &f.git_oid, &d.git_oid) {
                (Some(a), Some(b), _, _) => (a.clone(), b.clone()),
                (_, _, Some(a), Some(b)) if !f.lfs && !d.lfs => (a.clone(), b.clone()),
                _ => (sha256_of(&source, f).await?, sha256_of(&dest, d).await?),
            };
            (want != got).then(|| mismatch(&f.path, "hash", want, got))
        };
        let Some(differs) = differs else { continue };
        if f.path == ".gitattributes" && gitattributes_extended(&content(&source, f).await?, &content(&dest, d).await?)
        {
            tracing::info!("the destination appended LFS rules to .gitattributes; the source's rules are all there");
            continue;
        }
        out.push(differs);
    }
    if let Extras::Mismatch(made) = extras {
        let in_src: HashSet<&str> = expected.iter().map(|f| f.path.as_str()).collect();
        for d in found {
            let hubs = d.path == ".gitattributes" || made.contains(&d.path.as_str());
            if !in_src.contains(d.path.as_str()) && !hubs {
                out.push(mismatch(
                    &d.path,
                    "extra",
                    "nothing".into(),
                    format!("{} bytes", d.size),
                ));
            }
        }
    }
    Ok(out)
}

/// After a migration: the destination at `commit` against the tasks, with the hashes the workers
/// saw (a file a worker hashed is held to that hash, not to the listing's).
pub async fn migrated(
    sides: &Sides,
    source_commit: &str,
    tasks: &[pb::FileTask],
    results: &HashMap<String, pb::FileResult>,
    commit: &str,
) -> Result<Vec<Mismatch>> {
    let listing = sides.dest.hub.list(&sides.dest.repo, commit).await?;
    against(sides, source_commit, tasks, results, &listing, commit).await
}

/// The tasks (with the workers' hashes) against a destination listing taken at `dest_commit`.
pub async fn against(
    sides: &Sides,
    source_commit: &str,
    tasks: &[pb::FileTask],
    results: &HashMap<String, pb::FileResult>,
    listing: &[FileEntry],
    dest_commit: &str,
) -> Result<Vec<Mismatch>> {
    let expected = expected_files(tasks, results);
    let source = At {
        side: &sides.source,
        commit: source_commit,
        inline: Some(results),
    };
    let dest = At {
        side: &sides.dest,
        commit: dest_commit,
        inline: None,
    };
    compare(&expected, listing, source, dest, Extras::Allowed).await
}

/// The source's files as a migration leaves them at the destination: README.md pointed at the
/// license the destination reads, where a migration rewrites it (flow::metadata), so that
/// `verify` and `cleanup` hold a copy to what was written.
pub async fn as_migrated(sides: &Sides, src: &Manifest) -> Result<Manifest> {
    let mut out = src.clone();
    let carried = crate::flow::metadata::carried(src, sides.source.repo.platform, sides.dest.repo.platform);
    let card = crate::flow::metadata::CARD;
    let Some(entry) = out.files.iter_mut().find(|f| f.path == card && !f.lfs) else {
        return Ok(out);
    };
    if carried.card.is_none() {
        return Ok(out);
    }
    let at = At {
        side: &sides.source,
        commit: &src.commit,
        inline: None,
    };
    let text = String::from_utf8(content(&at, entry).await?).unwrap_or_default();
    if let Some(new) = crate::flow::metadata::rewritten_card(&carried, &text) {
        entry.size = new.len() as u64;
        entry.sha256 = Some(hubmigrate_hub::hashing::sha256_hex(new.as_bytes()));
        entry.git_oid = Some(hubmigrate_hub::hashing::git_blob_id(new.as_bytes()));
    }
    Ok(out)
}

/// Two existing repos: `src` (at its commit) against `dest` (at its commit).
pub async fn repos(sides: &Sides, src: &Manifest, dest: &Manifest) -> Result<Vec<Mismatch>> {
    let source = At {
        side: &sides.source,
        commit: &src.commit,
        inline: None,
    };
    let at_dest = At {
        side: &sides.dest,
        commit: &dest.commit,
        inline: None,
    };
    let made = sides.dest.hub.capabilities().made_files;
    compare(&src.files, &dest.files, source, at_dest, Extras::Mismatch(made)).await
}

/// Reads every file `dest` lists at `commit` back whole (streamed, `PARALLEL_READS` at a time)
/// and hashes it, against what `expected` (the source's manifest) says of it: `verify --content`
/// and `cleanup`, which trust no listing. Only files both sides list are read (the listing check
/// reports the others); `.gitattributes` is left to that check, as the destination may extend it.
/// `read` counts the bytes read, for progress.
pub async fn contents(
    side: &Side,
    commit: &str,
    expected: &[FileEntry],
    found: &[FileEntry],
    read: Arc<AtomicU64>,
) -> Result<Vec<Mismatch>> {
    let in_dest: HashMap<&str, &FileEntry> = found.iter().map(|f| (f.path.as_str(), f)).collect();
    let pairs = expected
        .iter()
        .filter(|f| f.path != ".gitattributes")
        .filter_map(|f| Some((f, *in_dest.get(f.path.as_str())?)));
    let checks = futures_util::stream::iter(pairs).map(|(want, d)| {
        let read = read.clone();
        async move {
            let object = d.sha256.as_deref().filter(|_| d.lfs).map(|s| (s, d.size));
            let stream =
                hubmigrate_hub::resume::open_resuming(&side.hub, &side.repo, commit, &d.path, object, 0, d.size);
            let git_size = (want.sha256.is_none()).then_some(d.size);
            let (hashing, slot) = Hashing::new(stream, git_size, read);
            hashing
                .try_for_each(|_| std::future::ready(Ok(())))
                .await
                .map_err(|e| Error::Transfer(format!("reading {} back from {}: {e}", d.path, side.repo)))?;
            let got = slot.finish();
            Ok::<_, Error>(read_back_differs(want, &got))
        }
    });
    let found: Vec<Option<Mismatch>> = checks.buffer_unordered(PARALLEL_READS).try_collect().await?;
    let mut out: Vec<Mismatch> = found.into_iter().flatten().collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Files read back at once by [`contents`].
const PARALLEL_READS: usize = 8;

/// How the bytes read back differ from what the source says, if they do.
fn read_back_differs(want: &FileEntry, got: &Digests) -> Option<Mismatch> {
    if got.bytes != want.size {
        return Some(mismatch(
            &want.path,
            "content",
            format!("{} bytes", want.size),
            format!("{} bytes", got.bytes),
        ));
    }
    let (expected, found) = match (&want.sha256, &want.git_oid, &got.git_oid) {
        (Some(sha), _, _) => (sha, &got.sha256),
        (None, Some(oid), Some(read)) => (oid, read),
        _ => return None,
    };
    (expected != found).then(|| mismatch(&want.path, "content", expected.clone(), found.clone()))
}

/// What the destination should list for each task: its size, and the hashes the worker saw
/// (else the source's).
fn expected_files(tasks: &[pb::FileTask], results: &HashMap<String, pb::FileResult>) -> Vec<FileEntry> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    tasks
        .iter()
        .map(|t| {
            let r = results.get(&t.path);
            let sha = r.and_then(|r| some(&r.sha256)).or_else(|| some(&t.sha256));
            let oid = r.and_then(|r| some(&r.git_oid)).or_else(|| some(&t.git_oid));
            FileEntry {
                path: t.path.clone(),
                // A regular file's size is what was committed (README.md may be rewritten).
                size: r.filter(|_| !t.lfs).map_or(t.size, |r| r.size),
                lfs: t.lfs,
                sha256: sha,
                git_oid: oid,
            }
        })
        .collect()
}

fn mismatch(path: &str, kind: &'static str, expected: String, found: String) -> Mismatch {
    Mismatch {
        path: path.to_string(),
        kind,
        expected,
        found,
    }
}

/// A file's bytes (small files: `.gitattributes`, regular files whose hashes are of other kinds).
async fn content(at: &At<'_>, f: &FileEntry) -> Result<Vec<u8>> {
    let held = at.inline.and_then(|m| m.get(&f.path)).filter(|r| !r.content.is_empty());
    if let Some(r) = held {
        return Ok(r.content.clone());
    }
    let object = f.sha256.as_deref().filter(|_| f.lfs).map(|s| (s, f.size));
    let side = at.side;
    let stream = hubmigrate_hub::resume::open_resuming(&side.hub, &side.repo, at.commit, &f.path, object, 0, f.size);
    stream
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .map_err(|e| Error::Transfer(format!("reading {} from {}: {e}", f.path, side.repo)))
}

/// The sha256 the listing gives, or one computed from the content.
async fn sha256_of(at: &At<'_>, f: &FileEntry) -> Result<String> {
    if let Some(s) = &f.sha256 {
        return Ok(s.clone());
    }
    Ok(hubmigrate_hub::hashing::sha256_hex(&content(at, f).await?))
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn task(path: &str, size: u64, lfs: bool, sha: &str) -> pb::FileTask {
        pb::FileTask {
            path: path.into(),
            size,
            sha256: sha.into(),
            lfs,
            source_lfs: lfs,
            ..Default::default()
        }
    }

    #[test]
    fn the_workers_hashes_take_precedence_over_the_listing() {
        let tasks = [task("a", 1, true, "aa"), task("d", 4, false, "")];
        let mut results = HashMap::new();
        results.insert(
            "d".to_string(),
            pb::FileResult {
                path: "d".into(),
                git_oid: "g1".into(),
                ..Default::default()
            },
        );
        let e = expected_files(&tasks, &results);
        assert_eq!(e[0].sha256.as_deref(), Some("aa"));
        assert_eq!((e[1].sha256.as_deref(), e[1].git_oid.as_deref()), (None, Some("g1")));
    }

    fn side(repo: &str) -> Side {
        use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
        Side {
            repo: RepoRef::parse(repo, RepoType::Model).unwrap(),
            endpoint: "http://127.0.0.1:9".into(),
            token: None,
            token_var: None,
            username: String::new(),
            hub: hubmigrate_hub::hub::Hub::new(Platform::Hf, "http://127.0.0.1:9", None).unwrap(),
        }
    }

    fn entry(path: &str, size: u64, lfs: bool, sha: Option<&str>, oid: Option<&str>) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            lfs,
            sha256: sha.map(Into::into),
            git_oid: oid.map(Into::into),
        }
    }

    /// Missing, size and hash differences, and extras only when asked (no content is read: the
    /// hashes are of the same kinds).
    #[tokio::test]
    async fn finds_missing_size_hash_and_extra_files() {
        let (a, b) = (side("hf:o/a"), side("hf:o/b"));
        let expected = [
            entry("a", 1, true, Some("aa"), None),
            entry("b", 2, true, Some("bb"), None),
            entry("c", 3, true, Some("cc"), None),
            entry("d", 4, false, None, Some("g1")),
        ];
        let found = [
            entry("a", 1, true, Some("aa"), None),
            entry("b", 9, true, Some("bb"), None),
            entry("d", 4, false, None, Some("g2")),
            entry("e", 5, false, None, Some("g3")),
        ];
        let at = |s| At {
            side: s,
            commit: "c0",
            inline: None,
        };
        let m = compare(&expected, &found, at(&a), at(&b), Extras::Allowed)
            .await
            .unwrap();
        let kinds: Vec<(&str, &str)> = m.iter().map(|m| (m.path.as_str(), m.kind)).collect();
        assert_eq!(kinds, [("b", "size"), ("c", "missing"), ("d", "hash")]);
        let m = compare(&expected, &found, at(&a), at(&b), Extras::Mismatch(&[]))
            .await
            .unwrap();
        assert_eq!(m.last().map(|m| (m.path.as_str(), m.kind)), Some(("e", "extra")));
        assert!(
            compare(&expected[..1], &found, at(&a), at(&b), Extras::Allowed)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
