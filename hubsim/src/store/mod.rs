//! hubsim's storage: bare git repositories (real commits, LFS files as pointer blobs) under
//! `DATA/repos/{models,datasets,spaces}/NS/NAME.git`, a small JSON metadata file in each, and the
//! content-addressed LFS object store shared by all repos. Which objects a repo may reference is
//! recorded per repo (`hubsim-lfs/<oid>` markers), so a commit can only name objects that were
//! uploaded to that repo, as on the Hugging Face Hub.

pub mod git;
pub mod lfs;
mod read;
pub mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::repo::{RepoId, RepoKind};
pub use git::GitError;
pub use lfs::LfsStore;
pub use tree::{Entry, Tree};

/// Storage errors surfaced to handlers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("repository already exists")]
    Exists,
    #[error("repository not found")]
    NotFound,
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad metadata: {0}")]
    Meta(#[from] serde_json::Error),
}

/// Per-repo settings that git does not hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoMeta {
    /// Opaque id (24 hex, like the Hub's Mongo ids).
    pub id: String,
    /// Numeric id (ModelScope exposes one for datasets).
    pub num_id: u64,
    pub private: bool,
    /// `None` (not gated), `"auto"` or `"manual"`.
    #[serde(default)]
    pub gated: Option<String>,
    /// Users given access to the gated repo besides its namespace's members.
    #[serde(default)]
    pub granted: std::collections::BTreeSet<String>,
    pub created: u64,
    pub default_branch: String,
    /// Next pull-request number (`refs/pr/N`).
    #[serde(default = "one")]
    pub next_pr: u64,
    /// Flavor-specific settings (space sdk, license, ModelScope visibility code...).
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn one() -> u64 {
    1
}

/// One change of a commit.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create or replace a file with this blob content (pointer text for LFS files).
    Put { path: String, data: Vec<u8> },
    /// Remove a file or a whole directory.
    Delete { path: String },
}

/// Checks that applying `ops` to `tree` leaves no path that is both a file and a directory
/// (git cannot represent it; the hubs refuse such commits). Returns the offending path.
pub fn path_conflict(tree: &Tree, ops: &[Op]) -> Option<String> {
    // Ordered, so "is anything under dir/" is one range lookup (a commit of 1,000 files into a
    // repo of 100,000 must not compare every pair).
    let mut files: std::collections::BTreeSet<&str> = tree.files().map(|e| e.path.as_str()).collect();
    for op in ops {
        match op {
            Op::Put { path, .. } => {
                files.insert(path);
            }
            Op::Delete { path } => {
                let dir = format!("{path}/");
                let under: Vec<&str> = files
                    .range::<str, _>((std::ops::Bound::Included(dir.as_str()), std::ops::Bound::Unbounded))
                    .take_while(|f| f.starts_with(&dir))
                    .copied()
                    .collect();
                for f in under {
                    files.remove(f);
                }
                files.remove(path.as_str());
            }
        }
    }
    for op in ops {
        let Op::Put { path, .. } = op else { continue };
        let mut prefix = path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.contains(parent) {
                return Some(parent.to_string());
            }
            prefix = parent;
        }
        let dir = format!("{path}/");
        if files
            .range::<str, _>((std::ops::Bound::Included(dir.as_str()), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|f| f.starts_with(&dir))
        {
            return Some(path.clone());
        }
    }
    None
}

/// The storage root.
pub struct Store {
    root: PathBuf,
    pub lfs: LfsStore,
    locks: Mutex<HashMap<RepoId, Arc<tokio::sync::Mutex<()>>>>,
    trees: Mutex<HashMap<(PathBuf, String), Arc<Tree>>>,
    sha256s: Mutex<HashMap<String, String>>,
    /// Whether a small blob (by git oid: content-addressed, so for every repo) is an LFS pointer.
    pointers: Mutex<HashMap<String, Option<tree::LfsPointer>>>,
    last: Mutex<HashMap<(PathBuf, String), LastCommits>>,
}

/// Path to the newest commit that touched it, for one commit's history.
pub type LastCommits = Arc<HashMap<String, LastCommit>>;

/// The newest commit that touched a path (ModelScope lists it per file).
#[derive(Debug, Clone)]
pub struct LastCommit {
    pub id: String,
    pub time: u64,
    pub author: String,
    pub title: String,
}

const TREE_CACHE: usize = 64;
/// Small blobs whose pointer-or-not is remembered before the memory is given back.
const POINTER_CACHE: usize = 2_000_000;

impl Store {
    /// Opens (creating if needed) the store under `data`.
    pub fn open(data: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(data.join("repos"))?;
        Ok(Store {
            root: data.to_path_buf(),
            lfs: LfsStore::open(data)?,
            locks: Mutex::new(HashMap::new()),
            trees: Mutex::new(HashMap::new()),
            sha256s: Mutex::new(HashMap::new()),
            pointers: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bare repository directory of `id`.
    pub fn repo_dir(&self, id: &RepoId) -> PathBuf {
        self.root
            .join("repos")
            .join(id.kind.plural())
            .join(&id.ns)
            .join(format!("{}.git", id.name))
    }

    /// The directory git http-backend serves for repos of `kind`.
    pub fn kind_root(&self, kind: RepoKind) -> PathBuf {
        self.root.join("repos").join(kind.plural())
    }

    /// Serialises writers of one repo. Hold the guard across read-check-write sequences.
    pub async fn lock(&self, id: &RepoId) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id.clone()).or_default().clone()
        };
        m.lock_owned().await
    }

    /// The repo's metadata, or `None` when it does not exist.
    pub async fn meta(&self, id: &RepoId) -> Result<Option<RepoMeta>, StoreError> {
        match tokio::fs::read(self.repo_dir(id).join("hubsim.json")).await {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether repo `id` is stored (its metadata file exists): one `stat`, for lookups made on
    /// every request.
    pub async fn exists(&self, id: &RepoId) -> Result<bool, StoreError> {
        Ok(tokio::fs::try_exists(self.repo_dir(id).join("hubsim.json")).await?)
    }

    /// Rewrites the repo's metadata (atomically).
    pub async fn save_meta(&self, id: &RepoId, meta: &RepoMeta) -> Result<(), StoreError> {
        let dir = self.repo_dir(id);
        let tmp = dir.join("hubsim.json.tmp");
        tokio::fs::write(&tmp, serde_json::to_vec_pretty(meta)?).await?;
        tokio::fs::rename(&tmp, dir.join("hubsim.json")).await?;
        Ok(())
    }

    /// Creates a repo with an initial commit of `files` on `meta.default_branch`.
    /// The caller holds the repo lock.
    pub async fn create(
        &self,
        id: &RepoId,
        meta: &RepoMeta,
        files: Vec<(String, Vec<u8>)>,
        author: &str,
        message: &str,
    ) -> Result<String, StoreError> {
        let dir = self.repo_dir(id);
        if tokio::fs::metadata(dir.join("hubsim.json")).await.is_ok() {
            return Err(StoreError::Exists);
        }
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let _ = tokio::fs::remove_dir_all(&dir).await; // a half-created leftover
        git::init_bare(&dir, &meta.default_branch).await?;
        let ops: Vec<Op> = files.into_iter().map(|(path, data)| Op::Put { path, data }).collect();
        let target = format!("refs/heads/{}", meta.default_branch);
        let commit = self.write_commit(id, &target, None, &ops, author, message).await?;
        self.save_meta(id, meta).await?;
        Ok(commit)
    }

    /// Creates an empty repo (no commit, `HEAD` naming `meta.default_branch`), as GitLab's new
    /// projects are. The caller holds the repo lock.
    pub async fn create_empty(&self, id: &RepoId, meta: &RepoMeta) -> Result<(), StoreError> {
        let dir = self.repo_dir(id);
        if tokio::fs::metadata(dir.join("hubsim.json")).await.is_ok() {
            return Err(StoreError::Exists);
        }
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let _ = tokio::fs::remove_dir_all(&dir).await; // a half-created leftover
        git::init_bare(&dir, &meta.default_branch).await?;
        self.save_meta(id, meta).await
    }

    /// Installs a `pre-receive` hook script: the push policy git enforces on `git push`.
    pub async fn install_pre_receive(&self, id: &RepoId, script: &str) -> Result<(), StoreError> {
        self.install_hook(id, "pre-receive", script).await
    }

    /// Installs the hook script `name` (`pre-receive`, `post-receive`, ...).
    pub async fn install_hook(&self, id: &RepoId, name: &str, script: &str) -> Result<(), StoreError> {
        let hooks = self.repo_dir(id).join("hooks");
        tokio::fs::create_dir_all(&hooks).await?;
        let path = hooks.join(name);
        tokio::fs::write(&path, script).await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).await?;
        }
        Ok(())
    }

    /// Deletes a repo and everything in its directory. The caller holds the repo lock.
    pub async fn delete(&self, id: &RepoId) -> Result<(), StoreError> {
        let dir = self.repo_dir(id);
        if self.meta(id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        tokio::fs::remove_dir_all(&dir).await?;
        Ok(())
    }

    /// Every repo of `kind`, optionally only in namespace `ns`.
    pub async fn list(&self, kind: RepoKind, ns: Option<&str>) -> Result<Vec<RepoId>, StoreError> {
        let base = self.kind_root(kind);
        let mut out = Vec::new();
        let namespaces: Vec<String> = match ns {
            Some(n) => vec![n.to_string()],
            None => read_names(&base).await?,
        };
        for n in namespaces {
            for name in read_names(&base.join(&n)).await? {
                if let Some(stem) = name.strip_suffix(".git")
                    && let Ok(id) = RepoId::new(kind, &n, stem)
                    && self.meta(&id).await?.is_some()
                {
                    out.push(id);
                }
            }
        }
        out.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
        Ok(out)
    }

    /// Every repo of `kind` whose namespace may be nested (GitLab's groups and subgroups),
    /// sorted by full path.
    pub async fn list_nested(&self, kind: RepoKind) -> Result<Vec<RepoId>, StoreError> {
        let base = self.kind_root(kind);
        let mut out = Vec::new();
        // (directory, namespace path below `base`), depth first.
        let mut todo: Vec<(PathBuf, String)> = vec![(base, String::new())];
        while let Some((dir, ns)) = todo.pop() {
            for name in read_names(&dir).await? {
                let child = dir.join(&name);
                if let Some(stem) = name.strip_suffix(".git") {
                    if !ns.is_empty()
                        && let Ok(id) = RepoId::nested(kind, &ns, stem)
                        && self.meta(&id).await?.is_some()
                    {
                        out.push(id);
                    }
                } else if crate::repo::check_name(&name).is_ok()
                    && ns.split('/').count() < crate::repo::MAX_DEPTH
                    && tokio::fs::metadata(&child).await.is_ok_and(|m| m.is_dir())
                {
                    let sub = if ns.is_empty() { name } else { format!("{ns}/{name}") };
                    todo.push((child, sub));
                }
            }
        }
        out.sort_by_key(|id| id.full());
        Ok(out)
    }

    /// Writes one commit on `target` (a full ref) with parent `base` (`None`: a root commit) and
    /// returns its id. The caller holds the repo lock and has validated every path.
    pub async fn write_commit(
        &self,
        id: &RepoId,
        target: &str,
        base: Option<&str>,
        ops: &[Op],
        author: &str,
        message: &str,
    ) -> Result<String, StoreError> {
        let dir = self.repo_dir(id);
        let stream = fast_import_stream(target, base, ops, author, message, crate::util::now_secs());
        git::fast_import(&dir, &stream).await?;
        git::resolve_commit(&dir, target).await?.ok_or_else(|| {
            StoreError::Git(GitError {
                args: "fast-import".into(),
                message: "ref not written".into(),
            })
        })
    }

    /// True when LFS object `oid` was uploaded to (or pushed into) this repo and is stored.
    pub async fn repo_has_object(&self, id: &RepoId, oid: &str) -> bool {
        crate::util::is_hex(oid, 64)
            && tokio::fs::metadata(self.repo_dir(id).join("hubsim-lfs").join(oid))
                .await
                .is_ok()
            && self.lfs.size(oid).await.is_some()
    }

    /// The LFS objects this repo may reference, with when each was linked (seconds since the
    /// epoch), sorted by oid.
    pub async fn objects_of(&self, id: &RepoId) -> Result<Vec<(String, u64)>, StoreError> {
        let dir = self.repo_dir(id).join("hubsim-lfs");
        let mut out = Vec::new();
        for oid in read_names(&dir).await? {
            let at = tokio::fs::metadata(dir.join(&oid))
                .await?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            out.push((oid, at));
        }
        out.sort();
        Ok(out)
    }

    /// Forgets that this repo may reference LFS object `oid` (the store keeps the bytes for
    /// other repos).
    pub async fn unlink_object(&self, id: &RepoId, oid: &str) -> Result<(), StoreError> {
        if crate::util::is_hex(oid, 64) {
            match tokio::fs::remove_file(self.repo_dir(id).join("hubsim-lfs").join(oid)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Records that this repo may reference LFS object `oid`.
    pub async fn link_object(&self, id: &RepoId, oid: &str) -> Result<(), StoreError> {
        let dir = self.repo_dir(id).join("hubsim-lfs");
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(oid), b"").await?;
        Ok(())
    }
}

/// The file left where a moved repo was, naming where it went.
const MOVED: &str = "hubsim-moved";

impl Store {
    /// Moves repo `from` to `to` (its git data, LFS membership and metadata), leaving a note
    /// at the old place so that its URLs can be sent to the new one until a repo takes the name.
    /// The caller holds both repos' locks.
    pub async fn rename(&self, from: &RepoId, to: &RepoId) -> Result<(), StoreError> {
        let (old, new) = (self.repo_dir(from), self.repo_dir(to));
        if let Some(parent) = new.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let _ = tokio::fs::remove_dir_all(&new).await; // an earlier move's note
        tokio::fs::rename(&old, &new).await?;
        tokio::fs::create_dir_all(&old).await?;
        tokio::fs::write(old.join(MOVED), format!("{}/{}", to.ns, to.name)).await?;
        Ok(())
    }

    /// Where the repo once at `id` was moved, if it was (and no repo took its name since);
    /// a repo moved on again is followed, a few moves at most.
    pub async fn moved_to(&self, id: &RepoId) -> Result<Option<RepoId>, StoreError> {
        let mut at = id.clone();
        for _ in 0..8 {
            let note = match tokio::fs::read_to_string(self.repo_dir(&at).join(MOVED)).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let Some(to) = note
                .trim()
                .rsplit_once('/')
                .and_then(|(ns, name)| RepoId::new(id.kind, ns, name).ok())
            else {
                return Ok(None);
            };
            if self.exists(&to).await? {
                return Ok(Some(to));
            }
            at = to;
        }
        Ok(None)
    }

    /// The stored repo whose id is `id` ignoring ASCII case (the Hub's repo ids are
    /// case-insensitive): `id` itself when it is stored.
    pub async fn canonical(&self, id: &RepoId) -> Result<Option<RepoId>, StoreError> {
        if self.exists(id).await? {
            return Ok(Some(id.clone()));
        }
        let base = self.kind_root(id.kind);
        for ns in read_names(&base).await? {
            if !ns.eq_ignore_ascii_case(&id.ns) {
                continue;
            }
            for name in read_names(&base.join(&ns)).await? {
                if let Some(stem) = name.strip_suffix(".git")
                    && stem.eq_ignore_ascii_case(&id.name)
                    && let Ok(found) = RepoId::new(id.kind, &ns, stem)
                    && self.exists(&found).await?
                {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }
}

async fn read_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(ent) = rd.next_entry().await? {
        if let Some(n) = ent.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

/// Checks a revision or branch name from a client before it goes near git.
pub fn check_rev(rev: &str) -> Result<(), String> {
    let ok = !rev.is_empty()
        && rev.len() <= 255
        && !rev.starts_with('-')
        && !rev.starts_with('/')
        && !rev.ends_with('/')
        && !rev.ends_with(".lock")
        && !rev.contains("..")
        && !rev.contains("//")
        && !rev.contains("@{")
        && rev.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid rev id: {rev}"))
    }
}

/// C-style quoting for fast-import paths (always quoted, so spaces and unicode are safe).
fn quote_path(p: &str) -> String {
    let mut s = String::with_capacity(p.len() + 2);
    s.push('"');
    for c in p.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Builds the `git fast-import` input for one commit.
fn fast_import_stream(target: &str, base: Option<&str>, ops: &[Op], author: &str, message: &str, time: u64) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(format!("commit {target}\n").as_bytes());
    s.extend_from_slice(format!("committer {author} <{author}@users.hubsim> {time} +0000\n").as_bytes());
    s.extend_from_slice(format!("data {}\n{message}\n", message.len()).as_bytes());
    if let Some(b) = base {
        s.extend_from_slice(format!("from {b}\n").as_bytes());
    }
    for op in ops {
        match op {
            Op::Put { path, data } => {
                s.extend_from_slice(format!("M 100644 inline {}\ndata {}\n", quote_path(path), data.len()).as_bytes());
                s.extend_from_slice(data);
                s.push(b'\n');
            }
            Op::Delete { path } => s.extend_from_slice(format!("D {}\n", quote_path(path)).as_bytes()),
        }
    }
    s.extend_from_slice(b"\ndone\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::random_hex;

    fn meta() -> RepoMeta {
        RepoMeta {
            id: random_hex(12),
            num_id: 1,
            private: false,
            gated: None,
            granted: Default::default(),
            created: 0,
            default_branch: "main".into(),
            next_pr: 1,
            extra: Default::default(),
        }
    }

    #[tokio::test]
    async fn commits_trees_and_pointers() {
        let data = std::env::temp_dir().join(format!("hubsim-store-{}", random_hex(4)));
        let store = Store::open(&data).unwrap();
        let id = RepoId::new(RepoKind::Model, "alice", "m1").unwrap();
        let first = store
            .create(
                &id,
                &meta(),
                vec![(
                    ".gitattributes".into(),
                    b"*.bin filter=lfs diff=lfs merge=lfs -text\n".to_vec(),
                )],
                "system",
                "initial commit",
            )
            .await
            .unwrap();
        assert!(matches!(
            store.create(&id, &meta(), vec![], "x", "y").await,
            Err(StoreError::Exists)
        ));
        let oid = crate::util::sha256_hex(b"weights");
        let ops = vec![
            Op::Put {
                path: "dir with space/ünï [1].txt".into(),
                data: b"hi".to_vec(),
            },
            Op::Put {
                path: "w/model.bin".into(),
                data: tree::pointer_text(&oid, 7).into_bytes(),
            },
            Op::Put {
                path: "empty".into(),
                data: vec![],
            },
        ];
        let second = store
            .write_commit(&id, "refs/heads/main", Some(&first), &ops, "alice", "upload")
            .await
            .unwrap();
        assert_eq!(
            store.resolve(&id, "main").await.unwrap().as_deref(),
            Some(second.as_str())
        );
        assert_eq!(
            store.resolve(&id, &first).await.unwrap().as_deref(),
            Some(first.as_str())
        );
        assert_eq!(store.resolve(&id, "nope").await.unwrap(), None);
        let t = store.tree(&id, &second).await.unwrap();
        assert_eq!(t.get("dir with space/ünï [1].txt").unwrap().size, 2);
        let bin = t.get("w/model.bin").unwrap();
        assert_eq!(bin.lfs.as_ref().unwrap().oid, oid);
        assert_eq!(bin.size, 7);
        assert!(t.get("w").unwrap().is_dir);
        let refs: Vec<&Entry> = t.files().collect();
        let hashes = store.content_sha256(&id, &refs).await.unwrap();
        assert_eq!(hashes["empty"], crate::util::sha256_hex(b""));
        assert_eq!(hashes["w/model.bin"], oid);
        let third = store
            .write_commit(
                &id,
                "refs/heads/main",
                Some(&second),
                &[Op::Delete { path: "w".into() }],
                "alice",
                "rm",
            )
            .await
            .unwrap();
        assert!(store.tree(&id, &third).await.unwrap().get("w/model.bin").is_none());
        let last = store.last_commits(&id, &third).await.unwrap();
        assert_eq!(last["empty"].id, second);
        assert_eq!(last["w/model.bin"].id, third, "deleted in the newest commit");
        assert_eq!(last[".gitattributes"].title, "initial commit");
        let log = git::log(&store.repo_dir(&id), &third, 0, 10).await.unwrap();
        assert_eq!(
            log.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(),
            ["rm", "upload", "initial commit"]
        );
        std::fs::remove_dir_all(data).unwrap();
    }

    #[test]
    fn file_directory_conflicts() {
        let mk = |p: &str, d: bool| Entry {
            path: p.into(),
            is_dir: d,
            oid: String::new(),
            size: 0,
            lfs: None,
        };
        let tree = Tree::new(
            "c".into(),
            vec![mk("a", true), mk("a/b.txt", false), mk("f.txt", false)],
        );
        let put = |p: &str| Op::Put {
            path: p.into(),
            data: vec![],
        };
        assert_eq!(path_conflict(&tree, &[put("a")]), Some("a".into()));
        assert_eq!(path_conflict(&tree, &[put("f.txt/x")]), Some("f.txt".into()));
        assert_eq!(path_conflict(&tree, &[put("n"), put("n/x")]), Some("n".into()));
        assert_eq!(path_conflict(&tree, &[Op::Delete { path: "a".into() }, put("a")]), None);
        assert_eq!(path_conflict(&tree, &[put("a/c.txt"), put("g/h")]), None);
    }

    #[test]
    fn revisions_are_checked() {
        assert!(check_rev("main").is_ok() && check_rev("refs/pr/1").is_ok() && check_rev("v1.0").is_ok());
        for bad in ["", "-x", "a..b", "a b", "x@{1}", "/x", "--output=x"] {
            assert!(check_rev(bad).is_err(), "{bad}");
        }
    }
}
