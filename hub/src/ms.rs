//! The ModelScope client (being written: see the helper's report).

use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::hub::{CommitFile, Identity, RepoState, UploadAction};
use crate::manifest::{FileEntry, Manifest};
use crate::redact::Secret;
use crate::reporef::RepoRef;

/// A ModelScope client.
#[derive(Clone, Debug)]
pub struct MsClient {
    endpoint: String,
    #[allow(dead_code)]
    token: Option<Secret>,
}

fn todo() -> Error {
    Error::Protocol("the ModelScope client is not implemented yet".into())
}

impl MsClient {
    pub fn new(endpoint: &str, token: Option<Secret>) -> Result<Self> {
        Ok(MsClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
        })
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub async fn whoami(&self) -> Result<Identity> {
        Err(todo())
    }
    pub async fn repo_state(&self, _repo: &RepoRef) -> Result<Option<RepoState>> {
        Err(todo())
    }
    pub async fn manifest(&self, _repo: &RepoRef, _revision: Option<&str>) -> Result<Manifest> {
        Err(todo())
    }
    pub async fn list(&self, _repo: &RepoRef, _commit: &str) -> Result<Vec<FileEntry>> {
        Err(todo())
    }
    pub async fn download(
        &self,
        _repo: &RepoRef,
        _commit: &str,
        _path: &str,
        _offset: u64,
        _len: u64,
    ) -> Result<ByteStream> {
        Err(todo())
    }
    pub async fn create_repo(&self, _repo: &RepoRef, _private: bool) -> Result<bool> {
        Err(todo())
    }
    pub async fn prepare_uploads(
        &self,
        _repo: &RepoRef,
        _branch: &str,
        _objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        Err(todo())
    }
    pub async fn put(&self, _url: &str, _len: u64, _body: ByteStream) -> Result<Option<String>> {
        Err(todo())
    }
    pub async fn complete_multipart(
        &self,
        _url: &str,
        _oid: &str,
        _etags: &[String],
    ) -> Result<()> {
        Err(todo())
    }
    pub async fn verify_upload(&self, _url: &str, _oid: &str, _size: u64) -> Result<()> {
        Err(todo())
    }
    pub async fn commit(
        &self,
        _repo: &RepoRef,
        _branch: &str,
        _message: &str,
        _files: &[CommitFile],
    ) -> Result<String> {
        Err(todo())
    }
}
