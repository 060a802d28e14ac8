//! One type for "a hub": what a migration needs from a source and a destination, implemented by
//! the Hugging Face and ModelScope clients. Callers never branch on the platform.

use std::collections::HashMap;

use crate::error::Result;
use crate::git::GitClient;
use crate::hashing::ByteStream;
use crate::hf::HfClient;
use crate::manifest::{FileEntry, Manifest};
use crate::ms::MsClient;
use crate::redact::Secret;
use crate::reporef::{Platform, RepoRef};

pub use crate::types::{Capabilities, CommitFile, Identity, ListedRepo, RepoState, UploadAction};

/// A hub client.
#[derive(Clone, Debug)]
pub enum Hub {
    Hf(HfClient),
    Ms(MsClient),
    Git(GitClient),
}

macro_rules! dispatch {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Hub::Hf($c) => $e,
            Hub::Ms($c) => $e,
            Hub::Git($c) => $e,
        }
    };
}

impl Hub {
    /// A client for `platform` at `endpoint` (base URL) with an optional token.
    pub fn new(platform: Platform, endpoint: &str, token: Option<Secret>) -> Result<Self> {
        Ok(match platform {
            Platform::Hf => Hub::Hf(HfClient::new(endpoint, token)?),
            Platform::Ms => Hub::Ms(MsClient::new(endpoint, token)?),
            Platform::Git => Hub::Git(GitClient::new(endpoint, crate::git::DEFAULT_USERNAME, token)?),
        })
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        match self {
            Hub::Hf(_) => Platform::Hf,
            Hub::Ms(_) => Platform::Ms,
            Hub::Git(_) => Platform::Git,
        }
    }

    /// What this hub can do.
    pub fn capabilities(&self) -> Capabilities {
        let hf = matches!(self, Hub::Hf(_));
        Capabilities {
            multipart_parts: hf,
            git_history: matches!(self, Hub::Git(_)),
            namespace_must_match: hf,
            deletes_repos: hf,
            git_user_is_account: hf,
            max_object_size: hf.then_some(crate::types::HF_MAX_LFS_OBJECT),
            made_files: if matches!(self, Hub::Ms(_)) {
                &["README.md"]
            } else {
                &[]
            },
        }
    }

    /// The base URL.
    pub fn endpoint(&self) -> &str {
        dispatch!(self, c => c.endpoint())
    }

    /// The branch new commits go to: `main` on Hugging Face and Git hosts, `master` on
    /// ModelScope.
    pub fn default_branch(&self) -> &'static str {
        match self {
            Hub::Hf(_) | Hub::Git(_) => "main",
            Hub::Ms(_) => "master",
        }
    }

    /// Files larger than this cannot be regular (inline) files at this hub.
    pub fn max_regular_size(&self) -> u64 {
        match self {
            // ModelScope's own SDK sends anything over 64 KiB through LFS; 10 MiB keeps inline
            // commits small while leaving small regular files regular.
            Hub::Hf(_) | Hub::Ms(_) => 10 * 1024 * 1024,
            // Git hosts take any blob; what is LFS in the source stays LFS.
            Hub::Git(_) => u64::MAX,
        }
    }

    /// Validates the token and says whose it is.
    pub async fn whoami(&self) -> Result<Identity> {
        dispatch!(self, c => c.whoami().await)
    }

    /// The repo's visibility, or `None` when it does not exist (or is invisible to the token).
    pub async fn repo_state(&self, repo: &RepoRef) -> Result<Option<RepoState>> {
        dispatch!(self, c => c.repo_state(repo).await)
    }

    /// Every file of `repo` at `revision`, pinned to the commit the revision resolves to.
    pub async fn manifest(&self, repo: &RepoRef, revision: Option<&str>) -> Result<Manifest> {
        dispatch!(self, c => c.manifest(repo, revision).await)
    }

    /// When the head commit of `rev` was made (seconds since the epoch), where the hub says.
    pub async fn head_time(&self, repo: &RepoRef, rev: &str) -> Result<Option<i64>> {
        match self {
            Hub::Hf(c) => c.head_time(repo, rev).await,
            Hub::Ms(c) => c.head_time(repo, rev).await,
            Hub::Git(_) => Ok(None),
        }
    }

    /// Deletes the repo. ModelScope's API refuses deletion with a token, and git hosts are not
    /// deleted by this tool: both are errors before anything happens.
    pub async fn delete_repo(&self, repo: &RepoRef) -> Result<()> {
        match self {
            Hub::Hf(c) => c.delete_repo(repo).await,
            Hub::Ms(_) => Err(crate::Error::Input(format!(
                "ModelScope's API does not delete repos with a token (\"the current token no longer supports deletion operations\"): delete {repo} on the ModelScope site"
            ))),
            Hub::Git(_) => Err(crate::Error::Input(format!(
                "deleting projects on git hosts is not supported: delete {repo} on the host"
            ))),
        }
    }

    /// Lists every file at `commit` (for verification after a commit).
    pub async fn list(&self, repo: &RepoRef, commit: &str) -> Result<Vec<FileEntry>> {
        match self {
            Hub::Hf(c) => c.list(repo, commit).await,
            Hub::Ms(c) => c.list(repo, commit).await,
            Hub::Git(c) => c.list(repo, commit).await,
        }
    }

    /// Streams `len` bytes of `path` at `commit` from `offset` (one request, no resume; see
    /// [`crate::resume::open_resuming`]). `object` is the LFS object (sha256, size) behind the
    /// path, when it is one: Git hosts serve objects by id, not by path.
    pub async fn download(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        object: Option<(&str, u64)>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        match self {
            Hub::Hf(c) => c.download(repo, commit, path, object, offset, len).await,
            Hub::Ms(c) => c.download(repo, commit, path, offset, len).await,
            Hub::Git(c) => c.download(repo, commit, path, object, offset, len).await,
        }
    }

    /// Regular files `paths` at `commit`, all read in one pass where the hub keeps a clone of the
    /// repo (a git source: one `git cat-file` for all, not one each); `None` for hubs that serve
    /// files one request at a time. A path missing from the answer was not found.
    pub async fn read_many(&self, commit: &str, paths: &[&str]) -> Result<Option<HashMap<String, Vec<u8>>>> {
        match self {
            Hub::Git(c) => c.read_many(commit, paths).await.map(Some),
            Hub::Hf(_) | Hub::Ms(_) => Ok(None),
        }
    }

    /// Where LFS object `oid` (`size` bytes) can be read as this hub's object store holds it,
    /// whether a commit names it yet or not; `None` where the store offers no such read
    /// (ModelScope: its store is shared by every repo and checks each object's sha256 as it
    /// takes it).
    pub async fn object_download(&self, repo: &RepoRef, oid: &str, size: u64) -> Result<Option<crate::lfs::Download>> {
        match self {
            Hub::Hf(c) => c.object_download(repo, oid, size).await.map(Some),
            Hub::Ms(_) => Ok(None),
            Hub::Git(c) => c.object_download(repo, oid, size).await.map(Some),
        }
    }

    /// Streams `len` bytes from `offset` (`len` 0: all) of an object from where
    /// [`Hub::object_download`] said.
    pub async fn fetch_object(&self, d: &crate::lfs::Download, offset: u64, len: u64) -> Result<ByteStream> {
        let http = match self {
            Hub::Hf(c) => &c.http,
            Hub::Git(c) => &c.http,
            Hub::Ms(_) => {
                return Err(crate::Error::Protocol(
                    "ModelScope's store serves no objects by id".into(),
                ));
            }
        };
        crate::lfs::fetch(http, d, "reading an object back from the destination", offset, len).await
    }

    /// Creates the repo with this visibility (and `license`, where the hub keeps one beside
    /// the files: ModelScope); `Ok(false)` when it already existed.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool, license: Option<&str>) -> Result<bool> {
        match self {
            Hub::Hf(c) => c.create_repo(repo, private).await,
            Hub::Ms(c) => c.create_repo(repo, private, license).await,
            Hub::Git(c) => c.create_repo(repo, private).await,
        }
    }

    /// Asks the object store which objects (sha256, size) it needs, and how to send them.
    pub async fn prepare_uploads(
        &self,
        repo: &RepoRef,
        branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        dispatch!(self, c => c.prepare_uploads(repo, branch, objects).await)
    }

    /// PUTs a whole object (or one part) of `len` bytes to a presigned URL, with the upload
    /// action's `headers`; returns the ETag.
    pub async fn put(
        &self,
        url: &str,
        headers: &[(String, Secret)],
        len: u64,
        body: ByteStream,
    ) -> Result<Option<String>> {
        match self {
            Hub::Hf(c) => c.put(url, headers, len, body).await,
            Hub::Ms(c) => c.put(url, len, body).await,
            Hub::Git(c) => c.put(url, headers, len, body).await,
        }
    }

    /// Completes a multipart upload with the parts' ETags (in part order).
    pub async fn complete_multipart(&self, url: &str, oid: &str, etags: &[String]) -> Result<()> {
        match self {
            Hub::Hf(c) => c.complete_multipart(url, oid, etags).await,
            Hub::Ms(c) => c.complete_multipart(url, oid, etags).await,
            Hub::Git(_) => Err(crate::Error::Protocol("Git LFS hosts take no multipart uploads".into())),
        }
    }

    /// Confirms an upload through the store's verify action.
    pub async fn verify_upload(&self, url: &str, oid: &str, size: u64) -> Result<()> {
        dispatch!(self, c => c.verify_upload(url, oid, size).await)
    }

    /// Writes `files` to `branch` (one commit where the hub allows; ModelScope in batches of at
    /// most 256 actions) and returns the resulting head commit.
    pub async fn commit(
        &self,
        repo: &RepoRef,
        branch: &str,
        message: &str,
        files: std::sync::Arc<[CommitFile]>,
    ) -> Result<String> {
        match self {
            Hub::Hf(c) => c.commit(repo, branch, message, files).await,
            Hub::Ms(c) => c.commit(repo, branch, message, &files).await,
            Hub::Git(_) => Err(crate::Error::Input(format!(
                "{repo} is a git host: its history is pushed, not committed file by file"
            ))),
        }
    }
}

impl Hub {
    /// Every `repo_type` repo of `owner` (user or organisation) that the token may see, reading
    /// the hub's listing `page_size` entries at a time.
    pub async fn list_repos(
        &self,
        owner: &str,
        repo_type: crate::reporef::RepoType,
        page_size: usize,
    ) -> Result<Vec<ListedRepo>> {
        match self {
            Hub::Hf(c) => c.list_repos(owner, repo_type, page_size).await,
            Hub::Ms(c) => c.list_repos(owner, repo_type, page_size).await,
            Hub::Git(_) => Err(crate::Error::Input(
                "listing the repos of an owner is supported on Hugging Face and ModelScope only".into(),
            )),
        }
    }
}
