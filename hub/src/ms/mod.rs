//! The ModelScope client (../shared/protocols/modelscope.md): whoami through the OpenAPI, repo
//! metadata, commit pinning, file listings (`repo/files` for models, re-walked per directory
//! because the service silently truncates at 3000 entries; paged `repo/tree` for datasets),
//! downloads with Range, repo creation (JSON for models, multipart for datasets), the LFS
//! "validate" batch, single-PUT blob uploads and batched JSON commits.
//!
//! The token goes out as `Authorization: Bearer` and as the `m_session_id` cookie, and only to
//! the endpoint's own host (or its `lfs.`/`pre-lfs.` sibling): a presigned URL elsewhere gets none.
//!
//! This module owns [`MsClient`] itself: construction, credential scoping, URL building, whoami,
//! repo metadata and revision pinning, downloads, repo creation and blob PUTs. The rest lives in
//! submodules: `listing` (file listings, including the walk that undoes the truncation),
//! `commit` (the LFS batch and batched commits) and `wire` (reading ModelScope's answers: the
//! legacy envelope, business codes, one-line messages, the multipart form body).

mod commit;
mod listing;
mod wire;

use reqwest::header::{CONTENT_TYPE, COOKIE, RANGE};
use serde_json::{Value, json};

use crate::body::{put_stream, ranged_body};
use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::enc;
use crate::http::{Http, is_denied};
use crate::manifest::Manifest;
use crate::redact::Secret;
use crate::reporef::{RepoRef, RepoType};
use crate::types::{Identity, RepoState};

use wire::{Failure, already_exists, boundary, data, multipart_body, one_line, private_of};

/// A ModelScope client.
#[derive(Clone, Debug)]
pub struct MsClient {
    http: Http,
    endpoint: String,
    /// Host and effective port of the endpoint: the only places the token is sent.
    host: String,
    port: Option<u16>,
    token: Option<Secret>,
}

impl MsClient {
    /// A client for the hub at `endpoint`.
    pub fn new(endpoint: &str, token: Option<Secret>) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&endpoint).map_err(|e| {
            Error::Input(format!(
                "invalid ModelScope endpoint {:?}: {e}",
                crate::redact::url(&endpoint)
            ))
        })?;
        let host = url
            .host_str()
            .ok_or_else(|| {
                Error::Input(format!(
                    "invalid ModelScope endpoint {:?}: no host",
                    crate::redact::url(&endpoint)
                ))
            })?
            .to_ascii_lowercase();
        Ok(MsClient {
            http: Http::new()?,
            port: url.port_or_known_default(),
            endpoint,
            host,
            token: token.filter(|t| !t.expose().is_empty()),
        })
    }

    /// The base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// May the token go to `url`? Only to the endpoint's host (same port) or its `lfs.` and
    /// `pre-lfs.` siblings, as the official client decides.
    fn trusted(&self, url: &str) -> bool {
        let Ok(u) = reqwest::Url::parse(url) else {
            return false;
        };
        let Some(host) = u.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let same_host =
            host == self.host || host == format!("lfs.{}", self.host) || host == format!("pre-lfs.{}", self.host);
        same_host && u.port_or_known_default() == self.port
    }

    /// Adds the credentials when `url` may receive them.
    fn auth(&self, url: &str, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) if self.trusted(url) => rb
                .bearer_auth(t.expose())
                .header(COOKIE, format!("m_session_id={}", t.expose())),
            _ => rb,
        }
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.auth(url, self.http.client.get(url))
    }

    fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.auth(url, self.http.client.post(url))
    }

    /// The path segment of a repo type: `models` or `datasets`.
    fn kind(repo: &RepoRef) -> Result<&'static str> {
        match repo.repo_type {
            RepoType::Model => Ok("models"),
            RepoType::Dataset => Ok("datasets"),
            RepoType::Space => Err(Error::Input(format!(
                "{repo}: ModelScope studios have no file API; only models and datasets can be \
                 migrated to or from ModelScope"
            ))),
        }
    }

    /// `{endpoint}/api/v1/{models|datasets}/{owner}/{name}`.
    fn api(&self, repo: &RepoRef) -> Result<String> {
        Ok(format!(
            "{}/api/v1/{}/{}/{}",
            self.endpoint,
            Self::kind(repo)?,
            enc(&repo.namespace),
            enc(&repo.name)
        ))
    }

    /// `{endpoint}/api/v1/repos/{models|datasets}/{owner}/{name}` (uploads and commits).
    fn repos_api(&self, repo: &RepoRef) -> Result<String> {
        Ok(format!(
            "{}/api/v1/repos/{}/{}/{}",
            self.endpoint,
            Self::kind(repo)?,
            enc(&repo.namespace),
            enc(&repo.name)
        ))
    }

    /// Makes an error's message one line, with no token and no full URL.
    fn tidy(&self, e: Error) -> Error {
        match e {
            Error::Http {
                what,
                status,
                message,
                retry_after,
            } => Error::Http {
                what,
                status,
                message: one_line(&message, self.token.as_ref()),
                retry_after,
            },
            other => other,
        }
    }

    async fn get_json(&self, what: &str, url: &str) -> Result<Value> {
        let resp = self.http.send(what, || self.get(url)).await.map_err(|e| self.tidy(e))?;
        crate::http::json_capped(what, resp).await
    }

    /// `GET /openapi/v1/users/me`. The API never tells a token's tier, so `can_write` is true:
    /// a read-only token fails later, at the first write, with a clear error.
    pub async fn whoami(&self) -> Result<Identity> {
        if self.token.is_none() {
            return Err(Error::Auth(format!(
                "no ModelScope token for {}: set MODELSCOPE_TOKEN",
                self.endpoint
            )));
        }
        let url = format!("{}/openapi/v1/users/me", self.endpoint);
        let v = self
            .get_json("checking the ModelScope token", &url)
            .await
            .map_err(|e| match e {
                Error::Http { status, message, .. } if is_denied(status) => Error::Auth(format!(
                    "the ModelScope token was refused by {}/openapi/v1/users/me (HTTP {status}: \
                     {message})",
                    self.endpoint
                )),
                other => other,
            })?;
        let d = data(&v);
        let name = [
            "Username",
            "username",
            "name",
            "Name",
            "preferred_username",
            "user_name",
            "login",
            "nickname",
        ]
        .iter()
        .find_map(|k| d.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .ok_or_else(|| Error::Protocol("users/me answer without a username".into()))?
        .to_string();
        Ok(Identity {
            name,
            orgs: Vec::new(),
            can_write: true,
        })
    }

    /// Visibility of `repo` from the legacy metadata route (`Visibility` 5 public, 1 private,
    /// 3 internal, taken as private); `None` when missing or invisible.
    pub async fn repo_state(&self, repo: &RepoRef) -> Result<Option<RepoState>> {
        Ok(self.info(repo).await?.map(|v| RepoState {
            private: private_of(&v),
            gated: false,
        }))
    }

    /// The repo's metadata record (`Data`), `None` when missing or invisible.
    async fn info(&self, repo: &RepoRef) -> Result<Option<Value>> {
        let url = self.api(repo)?;
        match self.get_json("reading repo info", &url).await {
            Ok(v) => Ok(Some(data(&v).clone())),
            Err(Error::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When the head commit of `rev` was made (seconds since the epoch).
    pub async fn head_time(&self, repo: &RepoRef, rev: &str) -> Result<Option<i64>> {
        let v = self.head_commit(repo, rev).await?;
        Ok(v["CommittedDate"].as_i64().filter(|t| *t > 0))
    }

    /// The head commit of `rev` (`commits?Ref=`).
    async fn head(&self, repo: &RepoRef, rev: &str) -> Result<String> {
        let not_found = || {
            Error::Input(format!(
                "{repo} at revision {rev:?} was not found on {} or is not visible with this token",
                self.endpoint
            ))
        };
        self.head_commit(repo, rev).await?["Id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(not_found)
    }

    /// The head commit record of `rev`.
    async fn head_commit(&self, repo: &RepoRef, rev: &str) -> Result<serde_json::Value> {
        let url = format!("{}/commits?Ref={}&PageNumber=1&PageSize=1", self.api(repo)?, enc(rev));
        let not_found = |detail: &str| {
            Error::Input(format!(
                "{repo} at revision {rev:?} was not found on {} or is not visible with this \
                 token{detail}",
                self.endpoint
            ))
        };
        let v = self
            .get_json("resolving the revision", &url)
            .await
            .map_err(|e| match e {
                Error::Http {
                    status: 404, message, ..
                } => not_found(&format!(" ({message})")),
                Error::Http {
                    status: 401, message, ..
                } => Error::Auth(format!(
                    "the ModelScope token was refused by {} (HTTP 401: {message})",
                    self.endpoint
                )),
                other => other,
            })?;
        let c = &data(&v)["Commit"][0];
        if c.is_null() {
            return Err(not_found(""));
        }
        Ok(c.clone())
    }

    /// The manifest of `repo` at `revision` (default `master`), pinned to its commit.
    pub async fn manifest(&self, repo: &RepoRef, revision: Option<&str>) -> Result<Manifest> {
        let rev = revision.unwrap_or("master");
        let commit = self.head(repo, rev).await?;
        let info = match self.info(repo).await? {
            Some(info) => info,
            None => {
                return Err(Error::Input(format!(
                    "{repo} was not found on {} or is not visible with this token",
                    self.endpoint
                )));
            }
        };
        let files = self.list(repo, &commit).await?;
        Ok(Manifest {
            repo: repo.clone(),
            commit,
            private: private_of(&info),
            gated: false,
            license: info["License"]
                .as_str()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
            files,
        })
    }

    fn download_url(&self, repo: &RepoRef, commit: &str, path: &str) -> Result<String> {
        Ok(format!(
            "{}/repo?Revision={}&FilePath={}",
            self.api(repo)?,
            enc(commit),
            enc(path)
        ))
    }

    /// Streams `len` bytes of `path` at `commit` from `offset`.
    pub async fn download(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let url = self.download_url(repo, commit, path)?;
        let range = format!("bytes={offset}-{}", offset + len - 1);
        let what = format!("downloading {path}");
        // LFS files redirect to the object CDN: reqwest follows and drops the credentials on
        // another origin. Regular files come straight back with 200, Range ignored.
        let resp = self
            .http
            .send(&what, || self.get(&url).header(RANGE, &range))
            .await
            .map_err(|e| self.tidy(e))?;
        ranged_body(resp, offset, len)
    }

    /// `POST /api/v1/models` (JSON) or `POST /api/v1/datasets` (multipart form) with `license`
    /// as its `License` (`Other` when none is known: a license is never invented); `Ok(false)`
    /// when the repo exists already.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool, license: Option<&str>) -> Result<bool> {
        let license = license.unwrap_or("Other");
        let kind = Self::kind(repo)?;
        let visibility = if private { 1 } else { 5 };
        let url = format!("{}/api/v1/{kind}", self.endpoint);
        let what = "creating the destination repo";
        let result = if kind == "models" {
            let body = json!({
                "Path": repo.namespace, "Name": repo.name, "Visibility": visibility,
                "License": license,
            });
            self.send_coded(what, || self.post(&url).json(&body), |e, _| e.is_retryable())
                .await
        } else {
            let vis = visibility.to_string();
            let fields = [
                ("Owner", repo.namespace.as_str()),
                ("Name", repo.name.as_str()),
                ("Visibility", vis.as_str()),
                ("License", license),
            ];
            let b = boundary(&fields.map(|f| f.1));
            let body = multipart_body(&b, &fields);
            let ctype = format!("multipart/form-data; boundary={b}");
            self.send_coded(
                what,
                || self.post(&url).header(CONTENT_TYPE, &ctype).body(body.clone()),
                |e, _| e.is_retryable(),
            )
            .await
        };
        match result {
            Ok(_) => Ok(true),
            Err(Failure {
                error: Error::Http { status, message, .. },
                code,
            }) if already_exists(status, code, &message) => Ok(false),
            Err(Failure {
                error: Error::Http { status, message, .. },
                ..
            }) if is_denied(status) => Err(Error::Auth(format!(
                "cannot create {repo}: the ModelScope token may not write to namespace {:?} \
                 (HTTP {status}: {message})",
                repo.namespace
            ))),
            Err(f) => Err(f.error),
        }
    }

    /// PUTs `len` bytes to an upload href in one streaming request (not retried: the body is
    /// consumed). Credentials go along only when the href is on the endpoint's own host.
    pub async fn put(&self, url: &str, len: u64, body: ByteStream) -> Result<Option<String>> {
        let what = "uploading to the destination's object store";
        let resp = put_stream(what, self.auth(url, self.http.client.put(url)), len, body)
            .await
            .map_err(|e| self.tidy(e))?;
        // The old SDK's contract: a JSON answer, when there is one, carries Code 200.
        let text = crate::http::text_capped(what, resp).await.unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let code = v.get("Code").map(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
            if let Some(c) = code
                && c != Some(200)
            {
                let msg = v["Message"].as_str().unwrap_or("upload refused");
                return Err(Error::Protocol(format!(
                    "{what}: the store answered {}: {}",
                    v["Code"],
                    one_line(msg, self.token.as_ref())
                )));
            }
        }
        Ok(None)
    }

    /// ModelScope has no multipart uploads.
    pub async fn complete_multipart(&self, _url: &str, _oid: &str, _etags: &[String]) -> Result<()> {
        Err(Error::Protocol(
            "ModelScope has no multipart uploads to complete".into(),
        ))
    }

    /// ModelScope has no verify action: the commit checks that objects exist.
    pub async fn verify_upload(&self, _url: &str, _oid: &str, _size: u64) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_home() {
        let c = MsClient::new("https://modelscope.cn/", Some(Secret::new("t"))).unwrap();
        assert_eq!(c.endpoint(), "https://modelscope.cn");
        assert!(c.trusted("https://modelscope.cn/api/v1/models"));
        assert!(c.trusted("https://lfs.modelscope.cn/up/x?sig=1"));
        assert!(c.trusted("https://pre-lfs.modelscope.cn/up/x"));
        assert!(c.trusted("https://MODELSCOPE.cn:443/x"));
        assert!(!c.trusted("https://bucket.oss-cn-hangzhou.aliyuncs.com/x"));
        assert!(!c.trusted("https://modelscope.cn.evil.com/x"));
        assert!(!c.trusted("https://modelscope.cn:8443/x"));
        assert!(!c.trusted("not a url"));
        let local = MsClient::new("http://127.0.0.1:8000", None).unwrap();
        assert!(local.trusted("http://127.0.0.1:8000/x"));
        assert!(!local.trusted("http://127.0.0.1:8001/upload/x"));
        assert!(MsClient::new("not a url", None).is_err());
        let space = RepoRef {
            platform: crate::reporef::Platform::Ms,
            credentials: None,
            repo_type: RepoType::Space,
            namespace: "a".into(),
            name: "b".into(),
            explicit_type: true,
            endpoint: None,
        };
        assert!(MsClient::kind(&space).is_err());
    }
}
