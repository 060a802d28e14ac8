//! Git LFS hosts (GitLab, Gitea, OpenXlab, self-hosted; also the git side of the Hugging Face
//! and ModelScope hubs): history through git smart HTTP, LFS objects through the LFS batch API,
//! and, where the host is a GitLab, the few `/api/v4` project routes (who am I, does the project
//! exist, create it, pull mirrors). The coordinator keeps one bare scratch clone per source,
//! without LFS content: pointers are read from it, and so are regular files.

pub mod gitlab;
pub mod local;
pub mod pointer;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::body::put_stream;
use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::Http;
use crate::http::enc;
use crate::lfs::ObjectError;
use crate::manifest::{FileEntry, Manifest, check_path};
use crate::redact::Secret;
use crate::reporef::RepoRef;
use crate::types::{Identity, RepoState, UploadAction};
pub use local::{GitAuth, LocalRepo, PushedRef, Remote, RemoteRefs, TreeBlob};

/// The user name git hosts accept with a token as password when no name is given.
pub const DEFAULT_USERNAME: &str = "oauth2";

/// A source checked out (without LFS content) at one commit.
#[derive(Debug)]
pub struct Snapshot {
    pub local: LocalRepo,
    pub remote_refs: RemoteRefs,
    /// The branch the revision named (or the remote's HEAD), when it named one.
    pub branch: Option<String>,
    pub commit: String,
}

/// What a store says of one object before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectStatus {
    Present,
    Needed,
    Refused(ObjectError),
}

/// A client of one Git LFS host.
#[derive(Clone, Debug)]
pub struct GitClient {
    endpoint: String,
    auth: GitAuth,
    pub(crate) http: Http,
    /// The scratch clone made by [`GitClient::manifest`], shared by clones of this client.
    snapshot: Arc<tokio::sync::Mutex<Option<Arc<Snapshot>>>>,
    /// Download actions of LFS objects by oid: one batch call an object, not one a range (the
    /// Hub counts batch calls against its api quota, the scarcest).
    downloads: crate::lfs::Downloads,
}

impl GitClient {
    /// A client for the host at `endpoint` authenticating as `username` with `token`.
    pub fn new(endpoint: &str, username: &str, token: Option<Secret>) -> Result<Self> {
        Ok(GitClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            auth: GitAuth {
                username: if username.is_empty() {
                    DEFAULT_USERNAME.into()
                } else {
                    username.into()
                },
                token,
            },
            http: Http::new()?,
            snapshot: Default::default(),
            downloads: Default::default(),
        })
    }

    /// The base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The user name git authenticates as.
    pub fn username(&self) -> &str {
        &self.auth.username
    }

    /// The repo's clone URL (no credentials).
    pub fn url(&self, repo: &RepoRef) -> String {
        format!("{}/{}.git", self.endpoint, repo.id())
    }

    /// The repo as a git remote.
    pub fn remote(&self, repo: &RepoRef) -> Remote {
        Remote {
            url: self.url(repo),
            auth: self.auth.clone(),
        }
    }

    pub(crate) fn api_auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth.token {
            // A bearer token rather than GitLab's PRIVATE-TOKEN header: the HTTP client drops
            // Authorization on a redirect to another origin, and would keep a custom header.
            Some(t) => rb.bearer_auth(t.expose()),
            None => rb,
        }
    }

    fn basic(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth.token {
            Some(t) => rb.basic_auth(&self.auth.username, Some(t.expose())),
            None => rb,
        }
    }

    /// A GitLab API GET: `Ok(None)` on 404, the JSON otherwise.
    pub(crate) async fn api_get(&self, what: &str, path: &str) -> Result<Option<Value>> {
        let url = format!("{}/api/v4/{path}", self.endpoint);
        let resp = self
            .http
            .send_with(
                what,
                || self.api_auth(self.http.client.get(&url)),
                |resp| async move {
                    if resp.status() == StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    if !resp.status().is_success() {
                        return Err((crate::http::error_from(what, resp).await, ()));
                    }
                    Ok(Some(resp))
                },
                |e, _| e.is_retryable(),
            )
            .await
            .map_err(|(e, ())| e)?;
        match resp {
            None => Ok(None),
            Some(r) => Ok(Some(crate::http::json_capped(what, r).await?)),
        }
    }

    /// Whose token this is (GitLab's `/api/v4/user`). Hosts without that API get the benefit of
    /// the doubt: the first git or LFS request checks the token.
    pub async fn whoami(&self) -> Result<Identity> {
        let fallback = Identity {
            name: self.auth.username.clone(),
            orgs: Vec::new(),
            can_write: true,
        };
        let Some(_) = &self.auth.token else {
            return Err(Error::Auth("no token for the git host: set TARGET_TOKEN".into()));
        };
        match self.api_get("checking the git host token", "user").await {
            Ok(Some(v)) => Ok(Identity {
                name: v["username"].as_str().unwrap_or(&self.auth.username).to_string(),
                orgs: Vec::new(),
                can_write: true,
            }),
            Err(Error::Http { status: 401, .. }) => Err(Error::Auth(format!(
                "the git host {} refused the token (401)",
                self.endpoint
            ))),
            Ok(None) | Err(Error::Protocol(_)) => {
                tracing::debug!(host = %self.endpoint, "no GitLab user API: the token is checked by the first request");
                Ok(fallback)
            }
            Err(e) => Err(e),
        }
    }

    /// The project as GitLab's API describes it; `Ok(None)` when it does not exist or when the
    /// host has no such API (then `ls-remote` decides).
    async fn project(&self, repo: &RepoRef) -> Result<Option<Value>> {
        match self
            .api_get("looking the project up", &format!("projects/{}", enc(&repo.id())))
            .await
        {
            Ok(v) => Ok(v.filter(|v| v.get("id").is_some())),
            Err(Error::Protocol(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Existence and visibility: the GitLab API when there is one, else whether git can list
    /// the refs (anonymously: public; only with the token: private).
    pub async fn repo_state(&self, repo: &RepoRef) -> Result<Option<RepoState>> {
        if let Some(p) = self.project(repo).await? {
            return Ok(Some(RepoState {
                private: p["visibility"].as_str() != Some("public"),
                gated: false,
            }));
        }
        let anonymous = Remote {
            url: self.url(repo),
            auth: GitAuth {
                username: self.auth.username.clone(),
                token: None,
            },
        };
        if local::ls_remote(&anonymous).await.is_ok() {
            return Ok(Some(RepoState::default()));
        }
        match local::ls_remote(&self.remote(repo)).await {
            Ok(_) => Ok(Some(RepoState {
                private: true,
                gated: false,
            })),
            Err(Error::Git { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the project through GitLab's API (`Ok(false)` when it existed). Hosts without
    /// the API cannot receive LFS objects before the project exists: they get a clear error.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool) -> Result<bool> {
        if self.project(repo).await?.is_some() {
            return Ok(false);
        }
        let ns = match self
            .api_get(
                "looking the namespace up",
                &format!("namespaces/{}", enc(&repo.namespace)),
            )
            .await
        {
            Ok(Some(v)) => v["id"].clone(),
            Ok(None) => {
                return Err(Error::Auth(format!(
                    "namespace {:?} does not exist at {} or the token cannot see it",
                    repo.namespace, self.endpoint
                )));
            }
            Err(Error::Protocol(_)) => {
                return Err(Error::Input(format!(
                    "{} has no GitLab API to create {}: create the project first, then run again",
                    self.endpoint,
                    repo.id()
                )));
            }
            Err(e) => return Err(e),
        };
        let body = json!({
            "path": repo.name, "name": repo.name, "namespace_id": ns,
            "visibility": if private { "private" } else { "public" },
        });
        let url = format!("{}/api/v4/projects", self.endpoint);
        let what = format!("creating {}", repo.id());
        let resp = self
            .http
            .send(&what, || self.api_auth(self.http.client.post(&url)).json(&body))
            .await;
        match resp {
            Ok(_) => Ok(true),
            Err(Error::Http {
                status: 400, message, ..
            }) if message.contains("taken") => Ok(false),
            Err(Error::Http {
                status: 403, message, ..
            }) => Err(Error::Auth(format!(
                "the token may not create projects in {:?} ({message})",
                repo.namespace
            ))),
            Err(e) => Err(e),
        }
    }

    /// Clones the repo (no LFS content) and pins `revision` (a branch, tag or commit; default:
    /// the remote's HEAD). The refs `extra_refs` picks from the remote's list are fetched too
    /// (for `--mirror`); one `ls-remote` serves both.
    pub async fn snapshot(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        extra_refs: &(dyn Fn(&RemoteRefs) -> Vec<String> + Sync),
    ) -> Result<Arc<Snapshot>> {
        let remote = self.remote(repo);
        let remote_refs = local::ls_remote(&remote).await.map_err(|e| match e {
            Error::Git { message, .. } => Error::Input(format!("cannot read {} over git: {message}", repo.id())),
            e => e,
        })?;
        let wanted = revision.map(str::to_string).or_else(|| remote_refs.head.clone());
        let branch = wanted
            .as_deref()
            .filter(|w| remote_refs.get(&format!("refs/heads/{w}")).is_some())
            .map(str::to_string);
        let mut specs: Vec<String> = extra_refs(&remote_refs).iter().map(|r| format!("+{r}:{r}")).collect();
        match (&branch, &wanted) {
            (Some(b), _) => specs.push(format!("+refs/heads/{b}:refs/heads/{b}")),
            (None, Some(w)) if remote_refs.get(&format!("refs/tags/{w}")).is_some() => {
                specs.push(format!("+refs/tags/{w}:refs/tags/{w}"))
            }
            (None, Some(w)) if w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit()) => {
                // A commit id: fetch every branch, then look for it.
                specs.push("+refs/heads/*:refs/heads/*".into())
            }
            (None, Some(w)) => {
                return Err(Error::Input(format!(
                    "{} has no branch, tag or commit {w:?}",
                    repo.id()
                )));
            }
            (None, None) => return Err(Error::Input(format!("{} is empty: nothing to migrate", repo.id()))),
        }
        specs.sort();
        specs.dedup();
        let local = LocalRepo::init().await?;
        local.fetch(&remote, &specs).await?;
        let rev = wanted.unwrap_or_default();
        let commit = local
            .commit_of(&rev)
            .await?
            .ok_or_else(|| Error::Input(format!("{} has no revision {rev:?}", repo.id())))?;
        Ok(Arc::new(Snapshot {
            local,
            remote_refs,
            branch,
            commit,
        }))
    }

    /// Every file at the pinned commit: LFS files from their pointers, regular files hashed
    /// from the scratch clone.
    pub async fn manifest(&self, repo: &RepoRef, revision: Option<&str>) -> Result<Manifest> {
        let snap = self.snapshot(repo, revision, &|_| Vec::new()).await?;
        let files = files_at(&snap.local, &snap.commit).await?;
        let private = self.repo_state(repo).await?.is_none_or(|s| s.private);
        let commit = snap.commit.clone();
        *self.snapshot.lock().await = Some(snap);
        Ok(Manifest {
            repo: repo.clone(),
            commit,
            private,
            gated: false,
            license: None,
            files,
        })
    }

    /// Every file at `commit` as the host holds it: the refs pointing at it are fetched into a
    /// fresh scratch clone (so nothing is taken from the source's clone), and LFS files whose
    /// object the host cannot serve are left out (the comparison then calls them missing).
    pub async fn list(&self, repo: &RepoRef, commit: &str) -> Result<Vec<FileEntry>> {
        let remote = self.remote(repo);
        let refs = local::ls_remote(&remote).await?;
        let specs: Vec<String> = refs
            .refs
            .iter()
            .filter(|(_, oid)| oid == commit)
            .map(|(name, _)| format!("+{name}:{name}"))
            .take(1)
            .collect();
        if specs.is_empty() {
            return Err(Error::Protocol(format!(
                "no branch or tag of {} points at {commit}",
                repo.id()
            )));
        }
        let scratch = LocalRepo::init().await?;
        scratch.fetch(&remote, &specs).await?;
        let mut files = files_at(&scratch, commit).await?;
        let objects: Vec<(String, u64)> = files
            .iter()
            .filter(|f| f.lfs)
            .filter_map(|f| Some((f.sha256.clone()?, f.size)))
            .collect();
        let present = self.has_objects(repo, &objects).await?;
        let missing: std::collections::HashSet<&str> = objects
            .iter()
            .zip(&present)
            .filter(|(_, ok)| !**ok)
            .map(|((oid, _), _)| oid.as_str())
            .collect();
        if !missing.is_empty() {
            let missing: std::collections::HashSet<String> = missing.into_iter().map(str::to_string).collect();
            files.retain(|f| !(f.lfs && f.sha256.as_ref().is_some_and(|s| missing.contains(s))));
        }
        Ok(files)
    }

    /// The scratch clone of the last [`GitClient::manifest`] (or one set with
    /// [`GitClient::adopt`]).
    pub async fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.lock().await.clone()
    }

    /// Makes `snap` the clone regular files are read from.
    pub async fn adopt(&self, snap: Arc<Snapshot>) {
        *self.snapshot.lock().await = Some(snap);
    }

    /// The batch answer for `objects` in one operation.
    async fn batch(
        &self,
        repo: &RepoRef,
        operation: &str,
        branch: Option<&str>,
        objects: &[(String, u64)],
    ) -> Result<Vec<Value>> {
        let url = format!("{}/info/lfs/objects/batch", self.url(repo));
        let auth = |rb| self.basic(rb);
        let branch = branch.map(|b| format!("refs/heads/{b}"));
        crate::lfs::batch(
            &self.http,
            &url,
            &auth,
            operation,
            &["basic"],
            branch.as_deref(),
            objects,
        )
        .await
        .map_err(|e| match e {
            Error::Http {
                status: 401 | 403,
                message,
                ..
            } => Error::Auth(format!(
                "{} refused the token for the LFS {operation} of {} ({message})",
                self.endpoint,
                repo.id()
            )),
            e => e,
        })
    }

    /// Asks the store about each object without sending anything: present, needed, or
    /// refused (413: over the host's LFS object size limit).
    pub async fn check_objects(
        &self,
        repo: &RepoRef,
        branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<ObjectStatus>> {
        let entries = self.batch(repo, "upload", Some(branch), objects).await?;
        Ok(entries
            .iter()
            .map(|o| match crate::lfs::object_error(o) {
                Some(e) => ObjectStatus::Refused(e),
                None if o["actions"]["upload"].is_object() => ObjectStatus::Needed,
                None => ObjectStatus::Present,
            })
            .collect())
    }

    /// Which of `objects` the store can serve (download batch): `false` for missing ones.
    pub async fn has_objects(&self, repo: &RepoRef, objects: &[(String, u64)]) -> Result<Vec<bool>> {
        let entries = self.batch(repo, "download", None, objects).await?;
        Ok(entries
            .iter()
            .map(|o| crate::lfs::object_error(o).is_none() && o["actions"]["download"]["href"].is_string())
            .collect())
    }

    /// Where LFS object `oid` can be read as the store holds it (committed or not).
    pub async fn object_download(&self, repo: &RepoRef, oid: &str, size: u64) -> Result<crate::lfs::Download> {
        let entries = self.batch(repo, "download", None, &[(oid.to_string(), size)]).await?;
        crate::lfs::download_action(&entries[0])
    }

    /// The upload action of each object (basic transfers: the only kind Git LFS hosts share).
    pub async fn prepare_uploads(
        &self,
        repo: &RepoRef,
        branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        let entries = self.batch(repo, "upload", Some(branch), objects).await?;
        entries.iter().map(crate::lfs::upload_action).collect()
    }

    /// PUTs an object with the action's headers.
    pub async fn put(
        &self,
        url: &str,
        headers: &[(String, Secret)],
        len: u64,
        body: ByteStream,
    ) -> Result<Option<String>> {
        let rb = crate::lfs::with_headers(
            self.http
                .client
                .put(url)
                .header("content-type", "application/octet-stream"),
            headers,
        );
        put_stream("uploading to the destination's LFS store", rb, len, body)
            .await
            .map_err(|e| match e {
                Error::Http {
                    status: 413, message, ..
                } => Error::Input(format!(
                    "the destination refused the object as larger than its LFS object size limit (HTTP 413: {message})"
                )),
                e => e,
            })?;
        Ok(None)
    }

    /// The verify action.
    pub async fn verify_upload(&self, url: &str, oid: &str, size: u64) -> Result<()> {
        let body = json!({"oid": oid, "size": size});
        self.http
            .send("verifying an upload", || {
                // Our credentials go to our host only; a verify action elsewhere gets none.
                let rb = self.http.client.post(url);
                let rb = if crate::http::same_origin(url, &self.endpoint) {
                    self.basic(rb)
                } else {
                    rb
                };
                rb.header("content-type", "application/vnd.git-lfs+json")
                    .body(body.to_string())
            })
            .await?;
        Ok(())
    }

    /// Streams `len` bytes from `offset`: an LFS object (`oid`) through the batch API, a regular
    /// file from the scratch clone.
    pub async fn download(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        object: Option<(&str, u64)>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        if let Some((oid, size)) = object.filter(|o| o.0.len() == 64) {
            let what = format!("downloading {path}");
            return self
                .downloads
                .fetch(&self.http, oid, &what, offset, len, || {
                    self.object_download(repo, oid, size)
                })
                .await;
        }
        let mut content = self
            .read_many(commit, &[path])
            .await
            .map_err(|e| match e {
                Error::Protocol(_) => e,
                _ => Error::Input(format!("{path} is not in {commit}")),
            })?
            .remove(path)
            .unwrap_or_default();
        let end = (offset + len).min(content.len() as u64) as usize;
        content.truncate(end);
        let bytes = bytes::Bytes::from(content).slice(offset.min(end as u64) as usize..);
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }
}

impl GitClient {
    /// Regular files `paths` at `commit` from the coordinator's clone, in one `git cat-file`
    /// (`COMMIT:PATH` names each blob directly: no listing per file).
    pub async fn read_many(&self, commit: &str, paths: &[&str]) -> Result<std::collections::HashMap<String, Vec<u8>>> {
        let snap = self.current().await.ok_or_else(|| {
            Error::Protocol("regular files of a git source are read from the coordinator's clone".into())
        })?;
        let specs: Vec<String> = paths.iter().map(|p| format!("{commit}:{p}")).collect();
        let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let mut blobs = snap.local.read_small(&refs).await?;
        Ok(paths
            .iter()
            .zip(&specs)
            .filter_map(|(p, spec)| blobs.remove(spec).map(|b| (p.to_string(), b)))
            .collect())
    }
}

/// Every file of `commit` in a scratch clone: pointers parsed, regular files hashed.
pub async fn files_at(local: &LocalRepo, commit: &str) -> Result<Vec<FileEntry>> {
    let blobs = local.ls_tree(commit).await?;
    for b in &blobs {
        check_path(&b.path)?;
    }
    let pointers = pointers_of(local, &blobs).await?;
    let regular: Vec<&str> = blobs
        .iter()
        .filter(|b| !pointers.contains_key(&b.oid))
        .map(|b| b.oid.as_str())
        .collect();
    let mut hashes: HashMap<String, String> = HashMap::new();
    let mut hasher = Sha256::new();
    local
        .each_blob(&regular, |oid, chunk, last| {
            hasher.update(chunk);
            if last {
                let h = std::mem::take(&mut hasher);
                hashes.insert(oid.to_string(), hex::encode(h.finalize()));
            }
        })
        .await?;
    Ok(blobs
        .into_iter()
        .map(|b| match pointers.get(&b.oid) {
            Some(p) => FileEntry {
                path: b.path,
                size: p.size,
                lfs: true,
                sha256: Some(p.oid.clone()),
                git_oid: None,
            },
            None => FileEntry {
                sha256: hashes.get(&b.oid).cloned(),
                path: b.path,
                size: b.size,
                lfs: false,
                git_oid: Some(b.oid),
            },
        })
        .collect())
}

/// The LFS pointers among `blobs`, by blob id.
pub async fn pointers_of(local: &LocalRepo, blobs: &[TreeBlob]) -> Result<HashMap<String, pointer::Pointer>> {
    let small: Vec<&str> = blobs
        .iter()
        .filter(|b| b.size < pointer::MAX_POINTER_SIZE)
        .map(|b| b.oid.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let contents = local.read_small(&small).await?;
    Ok(contents
        .into_iter()
        .filter_map(|(oid, c)| Some((oid, pointer::parse(&c)?)))
        .collect())
}
