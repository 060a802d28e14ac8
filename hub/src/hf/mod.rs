//! The Hugging Face Hub client (../shared/protocols/huggingface.md): whoami, repo info, paginated
//! tree listings, `/resolve` downloads with Range, repo creation, the LFS batch API (basic and
//! multipart); NDJSON commits in [`commit`]. Works against any HF-compatible endpoint.

mod commit;

use reqwest::header::RANGE;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{put_stream, ranged_body};
use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::http::{Http, is_denied};
use crate::http::{enc, enc_path};
use crate::manifest::{FileEntry, Manifest, check_path};
use crate::pages::Pages;
use crate::redact::Secret;
use crate::reporef::{RepoRef, RepoType};
use crate::types::{Identity, ListedRepo, RepoState, UploadAction};

/// Whether a repo info's `gated` (`false`, `"auto"` or `"manual"`) says the repo is gated.
fn is_gated(v: &Value) -> bool {
    v.as_str().is_some() || v.as_bool() == Some(true)
}

/// A Hugging Face Hub client.
#[derive(Clone, Debug)]
pub struct HfClient {
    pub(crate) http: Http,
    endpoint: String,
    token: Option<Secret>,
    /// Where LFS files' `/resolve` URLs lead (the CDN), by pinned URL: one resolve a file, not
    /// one a range (the Hub counts every `/resolve/` against the user's quota).
    downloads: crate::lfs::Downloads,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl HfClient {
    /// A client for the hub at `endpoint`.
    pub fn new(endpoint: &str, token: Option<Secret>) -> Result<Self> {
        Ok(HfClient {
            http: Http::new()?,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            downloads: Default::default(),
        })
    }

    /// The base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t.expose()),
            None => rb,
        }
    }

    fn api(&self, repo: &RepoRef) -> String {
        format!("{}/api/{}/{}", self.endpoint, repo.repo_type.plural(), repo.id())
    }

    fn web(&self, repo: &RepoRef) -> String {
        let prefix = match repo.repo_type {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        };
        format!("{}/{prefix}{}", self.endpoint, repo.id())
    }

    async fn get_json(&self, what: &str, url: &str) -> Result<(Value, reqwest::header::HeaderMap)> {
        self.get_typed(what, url).await
    }

    /// GETs a JSON document into `T`, reading only what `T` holds (a large answer's other fields
    /// are skipped, not kept).
    async fn get_typed<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
    ) -> Result<(T, reqwest::header::HeaderMap)> {
        let resp = self.http.send(what, || self.auth(self.http.client.get(url))).await?;
        let headers = resp.headers().clone();
        let v = crate::http::json_capped(what, resp).await?;
        Ok((v, headers))
    }

    /// `GET /api/whoami-v2`.
    pub async fn whoami(&self) -> Result<Identity> {
        if self.token.is_none() {
            return Err(Error::Auth(format!(
                "no Hugging Face token for {}: set HF_TOKEN",
                self.endpoint
            )));
        }
        let (v, _) = self
            .get_json(
                "checking the Hugging Face token",
                &format!("{}/api/whoami-v2", self.endpoint),
            )
            .await
            .map_err(|e| match e {
                Error::Http { status, message, .. } if is_denied(status) => Error::Auth(format!(
                    "the Hugging Face token was refused by {} (HTTP {status}: {message})",
                    self.endpoint
                )),
                other => other,
            })?;
        let name = v["name"]
            .as_str()
            .ok_or_else(|| Error::Protocol("whoami without a name".into()))?
            .to_string();
        let orgs = v["orgs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let role = v["auth"]["accessToken"]["role"].as_str().unwrap_or("write");
        Ok(Identity {
            name,
            orgs,
            can_write: role != "read",
        })
    }

    /// Visibility of `repo`, `None` when missing or invisible.
    pub async fn repo_state(&self, repo: &RepoRef) -> Result<Option<RepoState>> {
        match self.get_json("reading repo info", &self.api(repo)).await {
            Ok((v, _)) => Ok(Some(RepoState {
                private: v["private"].as_bool().unwrap_or(false),
                gated: is_gated(&v["gated"]),
            })),
            Err(Error::Http { status: 401 | 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When the head commit of `rev` was made (seconds since the epoch).
    pub async fn head_time(&self, repo: &RepoRef, rev: &str) -> Result<Option<i64>> {
        let url = format!("{}/commits/{}?limit=1", self.api(repo), enc(rev));
        let (v, _) = self.get_json("reading the head commit", &url).await?;
        Ok(v[0]["date"].as_str().and_then(crate::manifest::parse_rfc3339))
    }

    /// `DELETE /api/repos/delete`: removes the repo for good.
    pub async fn delete_repo(&self, repo: &RepoRef) -> Result<()> {
        let body = json!({"type": repo.repo_type.as_str(), "name": repo.name, "organization": repo.namespace});
        let url = format!("{}/api/repos/delete", self.endpoint);
        self.http
            .send(&format!("deleting {repo}"), || {
                self.auth(self.http.client.delete(&url)).json(&body)
            })
            .await?;
        Ok(())
    }

    /// The manifest of `repo` at `revision` (default `main`), pinned to its commit.
    pub async fn manifest(&self, repo: &RepoRef, revision: Option<&str>) -> Result<Manifest> {
        let rev = revision.unwrap_or("main");
        let url = format!("{}/revision/{}", self.api(repo), enc(rev));
        // The revision's info lists every file ("siblings"): only two fields are kept, so a
        // million-file repo does not hold its whole listing twice.
        #[derive(serde::Deserialize)]
        struct Info {
            sha: Option<String>,
            private: Option<bool>,
            #[serde(default)]
            gated: Value,
            #[serde(default, rename = "cardData")]
            card_data: Value,
        }
        let (info, _): (Info, _) = self
            .get_typed("reading the source repo", &url)
            .await
            .map_err(|e| match e {
                Error::Http {
                    status: 401 | 404,
                    message,
                    ..
                } => Error::Input(format!(
                    "{repo} at revision {rev:?} was not found on {} or is not visible with this token ({message})",
                    self.endpoint
                )),
                other => other,
            })?;
        let commit = info
            .sha
            .ok_or_else(|| Error::Protocol("repo info without a sha".into()))?;
        let gated = is_gated(&info.gated);
        if gated {
            self.auth_check(repo).await?;
        }
        let files = self.list(repo, &commit).await?;
        Ok(Manifest {
            repo: repo.clone(),
            commit,
            private: info.private.unwrap_or(false),
            gated,
            license: crate::license::of_card(&info.card_data),
            files,
        })
    }

    /// `GET /api/{type}s/{id}/auth-check`: whether the token may read the repo's files. A gated
    /// repo the token has no access to is the user's to fix, before any byte moves.
    pub async fn auth_check(&self, repo: &RepoRef) -> Result<()> {
        let url = format!("{}/auth-check", self.api(repo));
        match self
            .http
            .send("checking access to the source", || {
                self.auth(self.http.client.get(&url))
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Http { status, message, .. }) if is_denied(status) => Err(Error::Auth(format!(
                "{repo} is gated and this token has no access to its files ({message}); ask for access \
                 on the repo's page, then give the token of an account that has it{}",
                if self.token.is_none() { " (none was given)" } else { "" }
            ))),
            Err(e) => Err(e),
        }
    }

    /// Every file at `commit`, following the tree listing's `Link` pages.
    pub async fn list(&self, repo: &RepoRef, commit: &str) -> Result<Vec<FileEntry>> {
        let mut url = Some(format!(
            "{}/tree/{}?recursive=true&expand=false",
            self.api(repo),
            enc(commit)
        ));
        let mut files = Vec::new();
        let mut pages = Pages::new(&self.endpoint, &format!("the file listing of {repo}"), MAX_TREE_PAGES);
        while let Some(u) = url.take() {
            let (entries, headers): (Vec<TreeEntry>, _) = self.get_typed("listing files", &u).await?;
            for e in entries.into_iter().filter(|e| e.kind == "file") {
                check_path(&e.path)?;
                files.push(match e.lfs {
                    Some(l) => FileEntry {
                        path: e.path,
                        size: l.size,
                        lfs: true,
                        sha256: Some(l.oid),
                        git_oid: None,
                    },
                    None => FileEntry {
                        path: e.path,
                        size: e.size,
                        lfs: false,
                        sha256: None,
                        git_oid: e.oid,
                    },
                });
            }
            url = pages.next(&headers)?;
        }
        Ok(files)
    }

    /// Streams `len` bytes of `path` at `commit` from `offset`. An LFS file (`object` names its
    /// sha256) is resolved once and its ranges read where the Hub sent the first (reused while
    /// fresh, resolved again when refused there); a regular file is one resolve a range.
    pub async fn download(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        object: Option<(&str, u64)>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let url = format!("{}/resolve/{}/{}", self.web(repo), enc(commit), enc_path(path));
        let what = format!("downloading {path}");
        if object.is_some_and(|(oid, _)| oid.len() == 64) {
            let locate = || self.locate(&url, &what);
            return self.downloads.fetch(&self.http, &url, &what, offset, len, locate).await;
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        // reqwest follows the redirect to the CDN and drops Authorization on a different origin.
        let resp = self
            .http
            .send(&what, || self.auth(self.http.client.get(&url)).header(RANGE, &range))
            .await?;
        ranged_body(resp, offset, len)
    }

    /// Where the `/resolve` URL `url` of an LFS file leads: the CDN it redirects to, read with
    /// no credentials (ours are the Hub's alone), or the URL itself with them when the Hub
    /// answers it without leaving its origin.
    async fn locate(&self, url: &str, what: &str) -> Result<crate::lfs::Download> {
        let resp = self
            .http
            .send(what, || self.auth(self.http.client.get(url)).header(RANGE, "bytes=0-0"))
            .await?;
        let at = resp.url().to_string();
        // The one byte asked for is read, so the connection goes back to the pool; a store that
        // ignores the range gets its connection closed instead of being read whole.
        if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            let _ = resp.bytes().await;
        }
        if !crate::http::same_origin(&at, &self.endpoint) {
            return Ok(crate::lfs::Download {
                href: at,
                headers: Vec::new(),
            });
        }
        let headers = self
            .token
            .iter()
            .map(|t| {
                (
                    "authorization".to_string(),
                    Secret::new(format!("Bearer {}", t.expose())),
                )
            })
            .collect();
        Ok(crate::lfs::Download {
            href: url.to_string(),
            headers,
        })
    }

    /// `POST /api/repos/create`; `Ok(false)` when the repo exists already.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool) -> Result<bool> {
        let mut body = json!({
            "name": repo.name, "organization": repo.namespace,
            "private": private, "visibility": if private { "private" } else { "public" },
        });
        if repo.repo_type != RepoType::Model {
            body["type"] = json!(repo.repo_type.as_str());
        }
        if repo.repo_type == RepoType::Space {
            body["sdk"] = json!("static");
        }
        let url = format!("{}/api/repos/create", self.endpoint);
        let result = self
            .http
            .send("creating the destination repo", || {
                self.auth(self.http.client.post(&url)).json(&body)
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(Error::Http { status: 409, .. }) => Ok(false),
            Err(Error::Http { status, message, .. }) if is_denied(status) => Err(Error::Auth(format!(
                "cannot create {repo}: the token may not write to namespace {:?} ({message})",
                repo.namespace
            ))),
            Err(e) => Err(e),
        }
    }

    /// Where LFS object `oid` can be read as the store holds it (committed or not): the LFS
    /// batch API's download operation.
    pub async fn object_download(&self, repo: &RepoRef, oid: &str, size: u64) -> Result<crate::lfs::Download> {
        let url = format!("{}.git/info/lfs/objects/batch", self.web(repo));
        let auth = |rb| self.auth(rb);
        let objects = [(oid.to_string(), size)];
        let entries = crate::lfs::batch(&self.http, &url, &auth, "download", &["basic"], None, &objects).await?;
        crate::lfs::download_action(&entries[0])
    }

    /// The LFS batch API: which objects must be sent, and where.
    pub async fn prepare_uploads(
        &self,
        repo: &RepoRef,
        branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        let url = format!("{}.git/info/lfs/objects/batch", self.web(repo));
        let auth = |rb| self.auth(rb);
        let entries = crate::lfs::batch(
            &self.http,
            &url,
            &auth,
            "upload",
            &["basic", "multipart"],
            Some(branch),
            objects,
        )
        .await?;
        entries.iter().map(crate::lfs::upload_action).collect()
    }

    /// PUTs `len` bytes to a presigned URL (no Authorization: the URL carries its own, or the
    /// action's `headers` do).
    pub async fn put(
        &self,
        url: &str,
        headers: &[(String, Secret)],
        len: u64,
        body: ByteStream,
    ) -> Result<Option<String>> {
        let what = "uploading to the destination's object store";
        let rb = crate::lfs::with_headers(self.http.client.put(url), headers);
        let resp = put_stream(what, rb, len, body).await?;
        Ok(resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// The multipart completion call (no Authorization, like the official client).
    pub async fn complete_multipart(&self, url: &str, oid: &str, etags: &[String]) -> Result<()> {
        let parts: Vec<Value> = etags
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"partNumber": i + 1, "etag": e}))
            .collect();
        let body = json!({"oid": oid, "parts": parts});
        self.http
            .send("completing a multipart upload", || {
                self.http
                    .client
                    .post(url)
                    .header("accept", "application/vnd.git-lfs+json")
                    .header("content-type", "application/vnd.git-lfs+json")
                    .body(body.to_string())
            })
            .await?;
        Ok(())
    }

    /// The batch API's verify action.
    pub async fn verify_upload(&self, url: &str, oid: &str, size: u64) -> Result<()> {
        let body = json!({"oid": oid, "size": size});
        self.http
            .send("verifying an upload", || {
                // The token goes to the Hub's own origin only (as huggingface_hub sends it there).
                let rb = self.http.client.post(url);
                let rb = if crate::http::same_origin(url, &self.endpoint) {
                    self.auth(rb)
                } else {
                    rb
                };
                rb.header("content-type", "application/vnd.git-lfs+json")
                    .body(body.to_string())
            })
            .await?;
        Ok(())
    }
}

/// Most pages an owner listing may take: a guard against a hub whose `Link` never ends.
const MAX_REPO_PAGES: usize = 10_000;

impl HfClient {
    /// `GET /api/{models,datasets,spaces}?author=OWNER&limit=PAGE`, following `Link` pages (the
    /// Hub takes `limit` as the page size, as huggingface.js uses it). Private repos appear when
    /// the token may see them. Entries of another owner, or a `Link` to another origin (which
    /// would receive the token), are protocol errors.
    pub async fn list_repos(&self, owner: &str, repo_type: RepoType, page_size: usize) -> Result<Vec<ListedRepo>> {
        let mut url = Some(format!(
            "{}/api/{}?author={}&limit={page_size}",
            self.endpoint,
            repo_type.plural(),
            enc(owner)
        ));
        let mut out: Vec<ListedRepo> = Vec::new();
        let mut pages = Pages::new(&self.endpoint, &format!("the repo listing of {owner}"), MAX_REPO_PAGES);
        while let Some(u) = url.take() {
            let (v, headers) = self.get_json(&format!("listing the repos of {owner}"), &u).await?;
            let items = v
                .as_array()
                .ok_or_else(|| Error::Protocol("the repo listing is not a JSON array".into()))?;
            for item in items {
                let listed = listed_repo(item, owner, repo_type)?;
                if !out.iter().any(|r| r.repo == listed.repo) {
                    out.push(listed);
                }
            }
            url = pages.next(&headers)?;
        }
        Ok(out)
    }
}

/// One entry of a repo listing, checked: its id must be a valid `OWNER/NAME` of `owner`.
fn listed_repo(item: &Value, owner: &str, repo_type: RepoType) -> Result<ListedRepo> {
    let id = item["id"]
        .as_str()
        .ok_or_else(|| Error::Protocol("a repo listing entry without an id".into()))?;
    let repo = RepoRef::parse(&format!("hf:{id}"), repo_type)
        .map_err(|e| Error::Protocol(format!("the repo listing names {id:?}: {e}")))?;
    if repo.repo_type != repo_type || !repo.namespace.eq_ignore_ascii_case(owner) {
        return Err(Error::Protocol(format!(
            "the repo listing of {owner} names {id:?}, which is not theirs"
        )));
    }
    Ok(ListedRepo {
        repo,
        private: item["private"].as_bool().unwrap_or(false),
    })
}

/// Most pages a file listing may take (the Hub pages its tree by 1000 entries or so).
const MAX_TREE_PAGES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lfs::upload_action;

    #[test]
    fn links_and_actions() {
        let entry = json!({"id": "acme/m", "private": true});
        let listed = listed_repo(&entry, "acme", RepoType::Model).unwrap();
        assert!(listed.private && listed.repo.id() == "acme/m");
        assert!(listed_repo(&json!({"id": "eve/m"}), "acme", RepoType::Model).is_err());
        assert!(listed_repo(&json!({"id": "acme/../x"}), "acme", RepoType::Model).is_err());
        assert!(listed_repo(&json!({"private": false}), "acme", RepoType::Model).is_err());
        assert_eq!(
            upload_action(&json!({"oid": "a", "size": 1})).unwrap(),
            UploadAction::Present
        );
        let mp = json!({"oid": "a", "size": 12, "actions": {"upload": {"href": "done", "header": {"chunk_size": "5", "00002": "p2", "00001": "p1", "00003": "p3"}}}});
        assert_eq!(
            upload_action(&mp).unwrap(),
            UploadAction::Multipart {
                chunk_size: 5,
                parts: vec!["p1".into(), "p2".into(), "p3".into()],
                complete: "done".into(),
                verify: None
            }
        );
        assert!(upload_action(&json!({"oid": "a", "error": {"code": 422, "message": "bad"}})).is_err());
        assert_eq!(enc_path("dir x/ü [1].txt"), "dir%20x/%C3%BC%20%5B1%5D.txt");
    }
}
