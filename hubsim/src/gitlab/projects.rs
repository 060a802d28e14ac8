//! Namespaces, projects and who may do what with them, as GitLab decides it.
//!
//! Namespaces are the users (`--user`, `--read-user`) and the groups (`--org`, nested ones and
//! their implied parents); their numeric ids are assigned in a fixed order from the flags.
//! A project is a (possibly nested) [`RepoId`] of kind model with GitLab's settings in its
//! metadata's `extra`: visibility, import URL, mirror flag and mirror state. Mirror credentials
//! live in a separate file readable by hubsim only and are never part of an answer.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{Caller, Users};
use crate::repo::{RepoId, RepoKind};
use crate::store::{RepoMeta, Store, StoreError};
use crate::util::{iso8601, now_secs, random_hex};

/// Who may see a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Private,
    /// Any signed-in user may read.
    Internal,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Visibility::Private),
            "internal" => Some(Visibility::Internal),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// What a caller may do with a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Read,
    Write,
}

/// The caller's level on a project of namespace `ns`: members (the user itself, members of
/// the group or of a parent group) read, and write with a write token; others read public
/// projects, and internal ones when signed in.
pub fn level(users: &Users, caller: &Caller, ns: &str, visibility: Visibility) -> Level {
    match caller.principal() {
        Some(p) if users.belongs(p, ns) => {
            if p.can_write {
                Level::Write
            } else {
                Level::Read
            }
        }
        Some(_) if visibility != Visibility::Private => Level::Read,
        None if visibility == Visibility::Public => Level::Read,
        _ => Level::None,
    }
}

/// A user or group namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub id: u64,
    pub full_path: String,
    pub is_group: bool,
    pub parent_id: Option<u64>,
}

impl Namespace {
    /// The last segment (GitLab's `path`; hubsim has no separate display names).
    pub fn path(&self) -> &str {
        self.full_path.rsplit('/').next().unwrap_or(&self.full_path)
    }

    pub fn kind(&self) -> &'static str {
        if self.is_group { "group" } else { "user" }
    }

    /// GitLab's namespace JSON.
    pub fn json(&self, base_url: &str) -> Value {
        let web = if self.is_group {
            format!("{base_url}/groups/{}", self.full_path)
        } else {
            format!("{base_url}/{}", self.full_path)
        };
        json!({
            "id": self.id,
            "name": self.path(),
            "path": self.path(),
            "kind": self.kind(),
            "full_path": self.full_path,
            "parent_id": self.parent_id,
            "avatar_url": null,
            "web_url": web,
        })
    }
}

/// Every namespace of the hub, with stable ids: users first, then groups, each sorted by path.
#[derive(Debug, Default)]
pub struct Namespaces {
    list: Vec<Namespace>,
    by_path: HashMap<String, usize>,
}

impl Namespaces {
    pub fn new(users: &Users) -> Self {
        let mut t = Namespaces::default();
        for name in users.user_names() {
            t.push(name, false);
        }
        for group in users.org_names() {
            if !t.by_path.contains_key(&group) {
                t.push(group, true);
            }
        }
        t
    }

    fn push(&mut self, full_path: String, is_group: bool) {
        let parent_id = full_path
            .rsplit_once('/')
            .and_then(|(parent, _)| self.by_path(parent))
            .map(|n| n.id);
        let ns = Namespace {
            id: self.list.len() as u64 + 1,
            full_path: full_path.clone(),
            is_group,
            parent_id,
        };
        self.by_path.insert(full_path, self.list.len());
        self.list.push(ns);
    }

    pub fn by_path(&self, path: &str) -> Option<&Namespace> {
        self.by_path.get(path).map(|i| &self.list[*i])
    }

    /// A namespace by numeric id or full path (the two forms `:id` takes in the API).
    pub fn lookup(&self, key: &str) -> Option<&Namespace> {
        match key.parse::<u64>() {
            Ok(n) if !key.starts_with('0') => self.list.iter().find(|ns| ns.id == n),
            _ => self.by_path(key),
        }
    }
}

/// Mirror progress, as `GET /projects/:id/mirror/pull` reports it (times in Unix seconds).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MirrorState {
    /// none, scheduled, started, finished or failed.
    pub update_status: String,
    pub last_error: Option<String>,
    pub last_update_at: Option<u64>,
    pub last_update_started_at: Option<u64>,
    pub last_successful_update_at: Option<u64>,
}

impl MirrorState {
    pub fn status(&self) -> &str {
        if self.update_status.is_empty() {
            "none"
        } else {
            &self.update_status
        }
    }
}

/// Credentials of an import URL, kept out of the metadata and out of every answer.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

/// A project: its id and metadata.
#[derive(Clone, Debug)]
pub struct Project {
    pub id: RepoId,
    pub meta: RepoMeta,
}

impl Project {
    pub fn visibility(&self) -> Visibility {
        self.meta
            .extra
            .get("visibility")
            .and_then(Value::as_str)
            .and_then(Visibility::parse)
            .unwrap_or(if self.meta.private {
                Visibility::Private
            } else {
                Visibility::Public
            })
    }

    /// The import URL, without credentials.
    pub fn import_url(&self) -> Option<&str> {
        self.meta.extra.get("import_url").and_then(Value::as_str)
    }

    pub fn mirror(&self) -> bool {
        self.meta.extra.get("mirror").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn mirror_state(&self) -> MirrorState {
        self.meta
            .extra
            .get("mirror_state")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn set_visibility(&mut self, v: Visibility) {
        self.meta.private = v == Visibility::Private;
        self.meta.extra.insert("visibility".into(), json!(v.as_str()));
    }

    pub fn set_mirror_state(&mut self, s: &MirrorState) {
        self.meta
            .extra
            .insert("mirror_state".into(), serde_json::to_value(s).unwrap_or(Value::Null));
    }
}

/// The project at `id`, if it exists.
pub async fn load(store: &Store, id: &RepoId) -> Result<Option<Project>, StoreError> {
    Ok(store.meta(id).await?.map(|meta| Project { id: id.clone(), meta }))
}

/// The project with numeric id `num`, if any (a walk over all projects: hubsim is small).
pub async fn load_by_num(store: &Store, num: u64) -> Result<Option<Project>, StoreError> {
    for id in store.list_nested(RepoKind::Model).await? {
        if let Some(p) = load(store, &id).await?
            && p.meta.num_id == num
        {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Re-reads a project under its lock, changes it with `f` and saves it.
pub async fn update<F>(store: &Store, id: &RepoId, f: F) -> Result<Project, StoreError>
where
    F: FnOnce(&mut Project),
{
    let _guard = store.lock(id).await;
    let mut p = load(store, id).await?.ok_or(StoreError::NotFound)?;
    f(&mut p);
    store.save_meta(id, &p.meta).await?;
    Ok(p)
}

fn credentials_path(store: &Store, id: &RepoId) -> PathBuf {
    store.repo_dir(id).join("hubsim-mirror-credentials")
}

/// Stores (or, with `None`, removes) the credentials of a project's import URL, readable by
/// the hubsim user only.
pub async fn save_credentials(store: &Store, id: &RepoId, creds: Option<&Credentials>) -> Result<(), StoreError> {
    let path = credentials_path(store, id);
    let Some(c) = creds else {
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => return Ok(()),
        }
    };
    let tmp = path.with_extension("tmp");
    {
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, &serde_json::to_vec(c)?).await?;
    }
    tokio::fs::rename(&tmp, &path).await?;
    Ok(())
}

/// The stored credentials of a project's import URL.
pub async fn load_credentials(store: &Store, id: &RepoId) -> Result<Option<Credentials>, StoreError> {
    match tokio::fs::read(credentials_path(store, id)).await {
        Ok(b) => Ok(Some(serde_json::from_slice(&b)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The next free numeric project id.
async fn next_num_id(store: &Store) -> Result<u64, StoreError> {
    let mut max = 0;
    for id in store.list_nested(RepoKind::Model).await? {
        if let Some(m) = store.meta(&id).await? {
            max = max.max(m.num_id);
        }
    }
    Ok(max + 1)
}

/// Creates an empty project (bare repo with `HEAD` on `main`, no commit) with GitLab's push
/// rules installed. Callers serialise creations (numeric ids are the next free one).
pub async fn create(store: &Store, id: &RepoId, visibility: Visibility) -> Result<Project, StoreError> {
    let _guard = store.lock(id).await;
    if store.meta(id).await?.is_some() {
        return Err(StoreError::Exists);
    }
    let mut p = Project {
        id: id.clone(),
        meta: RepoMeta {
            id: random_hex(12),
            num_id: next_num_id(store).await?,
            private: true,
            gated: None,
            granted: Default::default(),
            created: now_secs(),
            default_branch: "main".into(),
            next_pr: 1,
            extra: Default::default(),
        },
    };
    p.set_visibility(visibility);
    store.create_empty(id, &p.meta).await?;
    super::hooks::prepare(store, id).await?;
    tracing::info!(project = %id.full(), num_id = p.meta.num_id, visibility = visibility.as_str(), "created project");
    Ok(p)
}

/// The branch `HEAD` names, when that branch exists (GitLab's `default_branch`).
pub async fn default_branch(store: &Store, id: &RepoId) -> Result<Option<String>, StoreError> {
    let dir = store.repo_dir(id);
    let Ok(out) = crate::store::git::run(&dir, &["symbolic-ref", "-q", "HEAD"]).await else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&out).trim().to_string();
    let Some(branch) = head.strip_prefix("refs/heads/") else {
        return Ok(None);
    };
    Ok(store.branch_head(id, branch).await?.map(|_| branch.to_string()))
}

/// True when the project has no branch (GitLab's `empty_repo`).
pub async fn is_empty(store: &Store, id: &RepoId) -> Result<bool, StoreError> {
    Ok(!store.refs(id).await?.iter().any(|(r, _)| r.starts_with("refs/heads/")))
}

/// GitLab's project JSON (the fields hubsim models).
pub async fn json(store: &Store, namespaces: &Namespaces, base_url: &str, p: &Project) -> Result<Value, StoreError> {
    let full = p.id.full();
    let ns = namespaces.by_path(&p.id.ns);
    let state = p.mirror_state();
    let import_status = if p.import_url().is_some() {
        state.status().to_string()
    } else {
        "none".to_string()
    };
    let created = iso8601(p.meta.created);
    Ok(json!({
        "id": p.meta.num_id,
        "description": null,
        "name": p.id.name,
        "name_with_namespace": full.replace('/', " / "),
        "path": p.id.name,
        "path_with_namespace": full,
        "created_at": created,
        "last_activity_at": created,
        "default_branch": default_branch(store, &p.id).await?,
        "visibility": p.visibility().as_str(),
        "http_url_to_repo": format!("{base_url}/{full}.git"),
        "web_url": format!("{base_url}/{full}"),
        "namespace": ns.map(|n| n.json(base_url)),
        "empty_repo": is_empty(store, &p.id).await?,
        "archived": false,
        "mirror": p.mirror(),
        "import_url": p.import_url(),
        "import_status": import_status,
        "import_error": state.last_error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let u = Users::from_flags(
            &["alice=ta".into(), "bob=tb".into()],
            &["carol=tc".into()],
            &["acme=alice,carol".into(), "acme/ml=bob".into()],
        )
        .unwrap();
        let (alice, bob, carol) = (u.caller(Some("ta")), u.caller(Some("tb")), u.caller(Some("tc")));
        let anon = Caller::Anonymous;
        use Visibility::*;
        assert_eq!(level(&u, &alice, "acme/ml", Private), Level::Write);
        assert_eq!(level(&u, &bob, "acme/ml", Private), Level::Write);
        assert_eq!(level(&u, &bob, "acme", Private), Level::None);
        assert_eq!(level(&u, &bob, "acme", Internal), Level::Read);
        assert_eq!(level(&u, &carol, "acme/ml", Private), Level::Read);
        assert_eq!(level(&u, &anon, "acme", Internal), Level::None);
        assert_eq!(level(&u, &anon, "acme", Public), Level::Read);
    }

    #[test]
    fn namespace_ids_are_stable() {
        let u = Users::from_flags(
            &["bob=tb".into(), "alice=ta".into()],
            &[],
            &["acme/ml=bob".into(), "acme=alice".into()],
        )
        .unwrap();
        let t = Namespaces::new(&u);
        let ids: Vec<(u64, &str, &str)> = t.list.iter().map(|n| (n.id, n.full_path.as_str(), n.kind())).collect();
        assert_eq!(
            ids,
            [
                (1, "alice", "user"),
                (2, "bob", "user"),
                (3, "acme", "group"),
                (4, "acme/ml", "group")
            ]
        );
        assert_eq!(t.lookup("4").unwrap().parent_id, Some(3));
        assert_eq!(t.lookup("acme/ml").unwrap().path(), "ml");
        assert!(t.lookup("007").is_none() && t.lookup("9").is_none() && t.lookup("nope").is_none());
    }
}
