//! Reading a stored repo: revisions to commits, refs, trees (cached per commit), the content
//! sha256 of regular files, the last commit of each path, and small blobs.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;

impl Store {
    /// Resolves a client revision (branch, tag, full ref, 40-hex commit id, or a unique prefix of
    /// one of at least 7 hex digits, as the Hub takes) to a commit id.
    pub async fn resolve(&self, id: &RepoId, rev: &str) -> Result<Option<String>, StoreError> {
        if check_rev(rev).is_err() {
            return Ok(None);
        }
        let dir = self.repo_dir(id);
        let candidates: Vec<String> = if crate::util::is_hex(rev, 40) || rev.starts_with("refs/") {
            vec![rev.to_string()]
        } else if (7..40).any(|n| crate::util::is_hex(rev, n)) {
            vec![format!("refs/heads/{rev}"), format!("refs/tags/{rev}"), rev.to_string()]
        } else {
            vec![format!("refs/heads/{rev}"), format!("refs/tags/{rev}")]
        };
        for c in candidates {
            if let Some(commit) = git::resolve_commit(&dir, &c).await? {
                return Ok(Some(commit));
            }
        }
        Ok(None)
    }

    /// The head commit of branch `branch`, if the branch exists.
    pub async fn branch_head(&self, id: &RepoId, branch: &str) -> Result<Option<String>, StoreError> {
        if check_rev(branch).is_err() {
            return Ok(None);
        }
        Ok(git::resolve_commit(&self.repo_dir(id), &format!("refs/heads/{branch}")).await?)
    }

    /// Every ref of the repo with its commit.
    pub async fn refs(&self, id: &RepoId) -> Result<Vec<(String, String)>, StoreError> {
        Ok(git::refs(&self.repo_dir(id)).await?)
    }

    /// The file tree at `commit` (cached: commits are immutable).
    pub async fn tree(&self, id: &RepoId, commit: &str) -> Result<Arc<Tree>, StoreError> {
        let dir = self.repo_dir(id);
        let key = (dir.clone(), commit.to_string());
        if let Some(t) = self.trees.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let raw = git::ls_tree(&dir, commit).await?;
        let mut entries: Vec<Entry> = raw
            .iter()
            .map(|r| Entry {
                path: r.path.clone(),
                is_dir: r.is_tree,
                oid: r.oid.clone(),
                size: if r.is_tree { 0 } else { r.size },
                lfs: None,
            })
            .collect();
        // Small blobs may be LFS pointers: each is read once (its oid names its content), so a
        // new commit of a large repo reads only the blobs it added.
        let small = |e: &Entry| !e.is_dir && e.size <= tree::MAX_POINTER && e.size > 40;
        let mut found: HashMap<String, Option<tree::LfsPointer>> = HashMap::new();
        let mut unknown = Vec::new();
        let mut asked = std::collections::HashSet::new();
        {
            let known = self.pointers.lock().unwrap_or_else(|e| e.into_inner());
            for e in entries.iter().filter(|e| small(e)) {
                if !asked.insert(e.oid.as_str()) {
                    continue;
                }
                match known.get(&e.oid) {
                    Some(p) => {
                        found.insert(e.oid.clone(), p.clone());
                    }
                    None => unknown.push(e.oid.clone()),
                }
            }
        }
        if !unknown.is_empty() {
            let bodies = git::read_blobs(&dir, unknown.clone()).await?;
            let mut known = self.pointers.lock().unwrap_or_else(|e| e.into_inner());
            if known.len() > POINTER_CACHE {
                known.clear();
            }
            for (oid, body) in unknown.into_iter().zip(bodies) {
                // A blob missing from this repo is not remembered: another repo may hold it.
                if let Some(body) = body {
                    let p = tree::parse_pointer(&body);
                    known.insert(oid.clone(), p.clone());
                    found.insert(oid, p);
                }
            }
        }
        for e in entries.iter_mut() {
            if let Some(Some(p)) = found.get(&e.oid).filter(|_| small(e)) {
                e.size = p.size;
                e.lfs = Some(p.clone());
            }
        }
        let t = Arc::new(Tree::new(commit.to_string(), entries));
        let mut cache = self.trees.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= TREE_CACHE {
            cache.clear();
        }
        cache.insert(key, t.clone());
        Ok(t)
    }

    /// sha256 of the content of each file entry: the pointer's oid for LFS files, the blob
    /// content's hash (computed once per blob, then cached) for regular files.
    pub async fn content_sha256(&self, id: &RepoId, entries: &[&Entry]) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.sha256s.lock().unwrap_or_else(|e| e.into_inner());
            for e in entries.iter().filter(|e| !e.is_dir) {
                if let Some(p) = &e.lfs {
                    out.insert(e.path.clone(), p.oid.clone());
                } else if let Some(h) = cache.get(&e.oid) {
                    out.insert(e.path.clone(), h.clone());
                } else {
                    missing.push(*e);
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut cat = git::CatFile::start(&self.repo_dir(id))?;
        let mut computed = Vec::new();
        for e in missing {
            let Some(size) = cat.request(&e.oid).await? else {
                continue;
            };
            let mut h = Sha256::new();
            cat.for_each_chunk(size, |c| h.update(c)).await?;
            let hex = hex::encode(h.finalize());
            computed.push((e.oid.clone(), hex.clone()));
            out.insert(e.path.clone(), hex);
        }
        cat.finish().await;
        let mut cache = self.sha256s.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 1_000_000 {
            cache.clear();
        }
        cache.extend(computed);
        Ok(out)
    }

    /// For every path changed in the history of `commit`, the newest commit that touched it
    /// (one `git log` walk per commit, cached).
    pub async fn last_commits(&self, id: &RepoId, commit: &str) -> Result<LastCommits, StoreError> {
        let dir = self.repo_dir(id);
        let key = (dir.clone(), commit.to_string());
        if let Some(m) = self.last.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(m.clone());
        }
        let out = git::run(
            &dir,
            &[
                "log",
                "--name-only",
                "--no-renames",
                "-z",
                "--format=%x01%H%x02%ct%x02%an%x02%s",
                "--end-of-options",
                commit,
            ],
        )
        .await?;
        let mut map = HashMap::new();
        let mut current: Option<LastCommit> = None;
        for tok in out.split(|b| *b == 0) {
            let tok = String::from_utf8_lossy(tok);
            let tok = tok.trim_start_matches('\n');
            if let Some(h) = tok.strip_prefix('\x01') {
                let mut f = h.split('\x02');
                current = Some(LastCommit {
                    id: f.next().unwrap_or("").to_string(),
                    time: f.next().and_then(|t| t.parse().ok()).unwrap_or(0),
                    author: f.next().unwrap_or("").to_string(),
                    title: f.next().unwrap_or("").to_string(),
                });
            } else if !tok.is_empty()
                && let Some(c) = &current
            {
                map.entry(tok.to_string()).or_insert_with(|| c.clone());
            }
        }
        let map = Arc::new(map);
        let mut cache = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= TREE_CACHE {
            cache.clear();
        }
        cache.insert(key, map.clone());
        Ok(map)
    }

    /// The text of `.gitattributes` in `tree` (empty when there is none).
    pub async fn gitattributes(&self, id: &RepoId, tree: &Tree) -> Result<String, StoreError> {
        match tree.get(".gitattributes") {
            Some(e) if !e.is_dir && e.lfs.is_none() => {
                let data = self.read_blob(id, &e.oid).await?.unwrap_or_default();
                Ok(String::from_utf8_lossy(&data).into_owned())
            }
            _ => Ok(String::new()),
        }
    }

    /// Reads a whole (small) blob.
    pub async fn read_blob(&self, id: &RepoId, oid: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cat = git::CatFile::start(&self.repo_dir(id))?;
        let body = match cat.request(oid).await? {
            Some(size) => Some(cat.read_body(size).await?),
            None => None,
        };
        cat.finish().await;
        Ok(body)
    }
}
