//! The ModelScope client (../shared/protocols/modelscope.md): whoami through the OpenAPI, repo
//! metadata, commit pinning, file listings (`repo/files` for models, re-walked per directory
//! because the service silently truncates at 3000 entries; paged `repo/tree` for datasets),
//! downloads with Range, repo creation (JSON for models, multipart for datasets), the LFS
//! "validate" batch, single-PUT blob uploads and batched JSON commits.
//!
//! The token goes out as `Authorization: Bearer` and as the `m_session_id` cookie, and only to
//! the endpoint's own host (or its `lfs.`/`pre-lfs.` sibling): a presigned URL elsewhere gets none.

use std::collections::{BTreeMap, HashSet, VecDeque};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, COOKIE, RANGE};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::hashing::ByteStream;
use crate::hf::enc;
use crate::http::{Http, error_from, is_denied, retry_after};
use crate::hub::{CommitFile, Identity, RepoState, UploadAction};
use crate::manifest::{FileEntry, Manifest, check_path};
use crate::redact::Secret;
use crate::reporef::{RepoRef, RepoType};
use crate::transfer::ranged_body;

/// `repo/files` never answers more entries than this (silently, with no marker).
pub const FILES_LIMIT: usize = 3000;
/// Most `repo/files` requests one listing may make.
const MAX_LIST_REQUESTS: usize = 5000;
/// Concurrent `repo/files` requests while re-walking a truncated listing.
const WALK_WORKERS: usize = 8;
/// Entries per page of the dataset `repo/tree` listing.
const TREE_PAGE_SIZE: usize = 200;
/// Objects per LFS batch request.
const BATCH_OBJECTS: usize = 64;
/// Actions per commit request (the service refuses more than [`MAX_COMMIT_ACTIONS`]).
pub const COMMIT_ACTIONS: usize = 256;
/// The service's hard limit of actions per commit.
pub const MAX_COMMIT_ACTIONS: usize = 2000;
const _: () = assert!(COMMIT_ACTIONS <= MAX_COMMIT_ACTIONS);
/// Target size of one commit request's JSON.
pub const COMMIT_BYTES: usize = 8 * 1024 * 1024;
/// Business code of "commit rejected by repository policy" (transient).
const CODE_COMMIT_POLICY: i64 = 10030000001;
/// Business codes meaning "the repo already exists" (model cn, dataset cn, international).
const CODES_EXISTS: [i64; 3] = [10010101001, 10020101001, 10010202004];
/// sha256 of no bytes.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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

/// One entry of a `repo/files` or `repo/tree` listing (the fields a migration needs).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct RawEntry {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Path", default)]
    path: String,
    #[serde(rename = "Size", default)]
    size: Option<u64>,
    #[serde(rename = "IsLFS", default)]
    is_lfs: Option<bool>,
    #[serde(rename = "Sha256", default)]
    sha256: Option<String>,
}

impl RawEntry {
    fn is_blob(&self) -> bool {
        self.kind == "blob"
    }

    fn is_tree(&self) -> bool {
        self.kind == "tree"
    }

    /// The manifest entry of a blob, after the path check.
    fn into_file(self) -> Result<FileEntry> {
        check_path(&self.path)?;
        let sha256 = self
            .sha256
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty());
        Ok(FileEntry {
            path: self.path,
            size: self.size.unwrap_or(0),
            lfs: self.is_lfs.unwrap_or(false),
            sha256,
            git_oid: None,
        })
    }
}

/// The entries of a listing answer: `Data.Files` (null or missing for an empty repo), also
/// accepted without the `Data` wrapper.
fn parse_listing(v: &Value) -> Result<Vec<RawEntry>> {
    let files = &data(v)["Files"];
    if files.is_null() {
        return Ok(Vec::new());
    }
    serde_json::from_value(files.clone()).map_err(|e| Error::Protocol(format!("file listing: {e}")))
}

/// The payload of either envelope: `Data` (legacy), `data` (OpenAPI), or the body itself.
fn data(v: &Value) -> &Value {
    v.get("Data").or_else(|| v.get("data")).unwrap_or(v)
}

/// One `repo/files` request of a listing walk.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listing {
    /// Directory (`""` for the whole repo).
    root: String,
    recursive: bool,
}

/// The walk over a model's `repo/files` listings that undoes the service's silent truncation at
/// [`FILES_LIMIT`] entries: the whole repo first; when an answer is full, the same directory
/// non-recursively, then each of its subdirectories recursively, and so on down. Blobs are
/// collected by path, so entries seen twice (a truncated answer, then a narrower one) count once.
struct Walk {
    pending: VecDeque<Listing>,
    blobs: BTreeMap<String, RawEntry>,
    requests: usize,
}

impl Walk {
    fn new() -> Self {
        Walk {
            pending: VecDeque::from([Listing {
                root: String::new(),
                recursive: true,
            }]),
            blobs: BTreeMap::new(),
            requests: 0,
        }
    }

    /// Up to `n` listings to request next (none: the walk is complete).
    fn next_requests(&mut self, n: usize) -> Result<Vec<Listing>> {
        let take = n.min(self.pending.len());
        if self.requests + take > MAX_LIST_REQUESTS {
            return Err(Error::Protocol(format!(
                "listing the repo needs more than {MAX_LIST_REQUESTS} requests; giving up"
            )));
        }
        self.requests += take;
        Ok(self.pending.drain(..take).collect())
    }

    /// Takes the answer to `req`.
    fn feed(&mut self, req: &Listing, entries: Vec<RawEntry>) -> Result<()> {
        let full = entries.len() >= FILES_LIMIT;
        if full && !req.recursive {
            return Err(Error::Protocol(format!(
                "folder {:?} holds {FILES_LIMIT} or more entries, more than ModelScope's file \
                 listing can show: the listing would be incomplete",
                if req.root.is_empty() { "/" } else { &req.root }
            )));
        }
        let mut dirs = Vec::new();
        for e in entries {
            if e.is_blob() {
                self.blobs.entry(e.path.clone()).or_insert(e);
            } else if e.is_tree() && !req.recursive {
                dirs.push(e.path);
            }
        }
        if full {
            // Truncated: list this folder level by level instead.
            self.pending.push_back(Listing {
                root: req.root.clone(),
                recursive: false,
            });
        }
        let root = req.root.trim_matches('/');
        for d in dirs {
            let d = d.trim_matches('/').to_string();
            // A sane answer names subfolders of the root only; anything else would loop.
            let below = root.is_empty() || d.starts_with(&format!("{root}/"));
            if below && d != root && !d.is_empty() {
                self.pending.push_back(Listing {
                    root: d,
                    recursive: true,
                });
            }
        }
        Ok(())
    }

    fn into_blobs(self) -> Vec<RawEntry> {
        self.blobs.into_values().collect()
    }
}

/// The estimated JSON size of one commit action (base64 content counts ⌈n/3⌉·4 bytes).
fn action_bytes(f: &CommitFile) -> usize {
    const OVERHEAD: usize = 128;
    match f {
        CommitFile::Inline { path, content } => OVERHEAD + path.len() + content.len().div_ceil(3) * 4,
        CommitFile::Lfs { path, .. } => OVERHEAD + path.len() + 64,
    }
}

/// Splits `files` into consecutive commit batches of at most [`COMMIT_ACTIONS`] actions and
/// about [`COMMIT_BYTES`] of JSON; a file bigger than that on its own goes alone.
fn commit_batches(files: &[CommitFile]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let b = action_bytes(f);
        let count = i - start;
        if count > 0 && (count >= COMMIT_ACTIONS || bytes + b > COMMIT_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += b;
    }
    if start < files.len() {
        out.push(start..files.len());
    }
    out
}

/// One commit action.
fn commit_action(f: &CommitFile) -> Value {
    match f {
        CommitFile::Inline { path, content } => json!({
            "action": "create", "path": path, "type": "normal", "size": content.len(),
            "sha256": "", "content": base64::engine::general_purpose::STANDARD.encode(content),
            "encoding": "base64",
        }),
        CommitFile::Lfs { path, sha256, size } => json!({
            "action": "create", "path": path, "type": "lfs", "size": size,
            "sha256": sha256, "content": "", "encoding": "",
        }),
    }
}

/// A `multipart/form-data` body of text fields.
fn multipart_body(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

/// A fresh multipart boundary that none of `values` contains.
fn boundary(values: &[&str]) -> String {
    loop {
        let b = format!("hubmigrate-{:016x}{:016x}", random_u64(), random_u64());
        if !values.iter().any(|v| v.contains(&b)) {
            return b;
        }
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A hub message fit for one log line: whitespace collapsed, URLs redacted, the token (should a
/// hub ever echo it) removed, and at most 300 characters.
fn one_line(msg: &str, token: Option<&Secret>) -> String {
    let mut out = msg
        .split_whitespace()
        .map(|w| {
            if w.contains("://") {
                crate::redact::url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(t) = token.map(Secret::expose).filter(|t| t.len() >= 4) {
        out = out.replace(t, "***");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

/// Is this commit failure worth another attempt? 5xx, 429, transport failures, the repository
/// policy throttle (business code or message) and branch races.
fn commit_retryable(err: &Error, code: Option<i64>) -> bool {
    if err.is_retryable() {
        return true;
    }
    if code == Some(CODE_COMMIT_POLICY) {
        return true;
    }
    match err {
        Error::Http {
            status: 200..=299 | 400 | 409,
            message,
            ..
        } => {
            let m = message.to_ascii_lowercase();
            [
                "commit rejected by repository policy",
                "branch changed",
                "could not update refs",
                "please retry",
                "try again",
            ]
            .iter()
            .any(|p| m.contains(p))
        }
        _ => false,
    }
}

/// Does a create-repo failure mean "it exists already"?
fn already_exists(status: u16, code: Option<i64>, message: &str) -> bool {
    if status == 409 || code.is_some_and(|c| CODES_EXISTS.contains(&c)) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    status == 400
        && [
            "exist",
            "already",
            "can not be used",
            "not available",
            "已被注册",
            "已存在",
            "名称不可用",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// A listed size of 0 for content whose hash is not the empty one: the service's "unknown size".
fn size_unknown(f: &FileEntry) -> bool {
    f.size == 0 && f.sha256.as_deref().is_some_and(|s| s != EMPTY_SHA256)
}

/// A failed request with the legacy envelope's business code, when the answer had one.
struct Failure {
    error: Error,
    code: Option<i64>,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        f.error
    }
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
        resp.json()
            .await
            .map_err(|e| Error::Protocol(format!("{what}: {}", e.without_url())))
    }

    /// Sends the request `build` makes and reads its JSON answer, retrying while `retryable`
    /// says so (bounded by the retry policy, honouring `Retry-After`). Unlike [`Http::send`] the
    /// failure keeps the legacy envelope's business code, and a `200` whose envelope says
    /// `Success: false` is a failure too.
    async fn send_coded(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
        retryable: impl Fn(&Error, Option<i64>) -> bool,
    ) -> Result<Value, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match build().send().await {
                Ok(resp) => match self.read_coded(what, resp).await {
                    Ok(v) => return Ok(v),
                    Err(f) => f,
                },
                Err(e) => Failure {
                    error: Error::transport(what, e),
                    code: None,
                },
            };
            if !retryable(&failure.error, failure.code) || attempt >= self.http.retry.attempts {
                return Err(failure);
            }
            let ra = match &failure.error {
                Error::Http { retry_after, .. } => *retry_after,
                _ => None,
            };
            let pause = self.http.retry.delay(attempt, ra);
            tracing::debug!(what, attempt, error = %failure.error, pause_ms = pause.as_millis() as u64, "retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// The JSON answer of a response, or its failure with the business code.
    async fn read_coded(&self, what: &str, resp: reqwest::Response) -> Result<Value, Failure> {
        let status = resp.status();
        let ra = retry_after(&resp);
        let header_msg = resp
            .headers()
            .get("x-error-message")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.map_err(|e| Failure {
            error: Error::transport(what, e),
            code: None,
        })?;
        let json: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        let code = json.as_ref().and_then(|v| {
            let c = v.get("Code")?;
            c.as_i64().or_else(|| c.as_str()?.trim().parse().ok())
        });
        let envelope_failed = json.as_ref().is_some_and(|v| {
            v.get("Success").and_then(Value::as_bool) == Some(false)
                || v.get("success").and_then(Value::as_bool) == Some(false)
                || code.is_some_and(|c| c != 200)
        });
        if status.is_success() && !envelope_failed {
            return json.ok_or_else(|| Failure {
                error: Error::Protocol(format!("{what}: the answer is not JSON")),
                code: None,
            });
        }
        let body_msg = json.as_ref().and_then(|v| {
            ["Message", "message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
        });
        let mut message = header_msg
            .or(body_msg)
            .unwrap_or_else(|| text.chars().take(300).collect());
        if message.trim().is_empty() {
            message = status.canonical_reason().unwrap_or("error").to_string();
        }
        if let Some(c) = code.filter(|c| *c != i64::from(status.as_u16())) {
            message = format!("{message} (code {c})");
        }
        Err(Failure {
            error: Error::Http {
                what: what.to_string(),
                status: status.as_u16(),
                message: one_line(&message, self.token.as_ref()),
                retry_after: ra,
            },
            code,
        })
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
        let url = self.api(repo)?;
        match self.get_json("reading repo info", &url).await {
            Ok(v) => Ok(Some(RepoState {
                private: private_of(data(&v)),
            })),
            Err(Error::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The head commit of `rev` (`commits?Ref=`).
    async fn head(&self, repo: &RepoRef, rev: &str) -> Result<String> {
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
        data(&v)["Commit"][0]["Id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| not_found(""))
    }

    /// The manifest of `repo` at `revision` (default `master`), pinned to its commit.
    pub async fn manifest(&self, repo: &RepoRef, revision: Option<&str>) -> Result<Manifest> {
        let rev = revision.unwrap_or("master");
        let commit = self.head(repo, rev).await?;
        let private = match self.repo_state(repo).await? {
            Some(s) => s.private,
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
            private,
            files,
        })
    }

    /// Every file at `commit`.
    pub async fn list(&self, repo: &RepoRef, commit: &str) -> Result<Vec<FileEntry>> {
        let raw = match Self::kind(repo)? {
            "datasets" => self.list_dataset(repo, commit).await?,
            _ => self.list_model(repo, commit).await?,
        };
        let mut files = raw
            .into_iter()
            .filter(RawEntry::is_blob)
            .map(RawEntry::into_file)
            .collect::<Result<Vec<_>>>()?;
        for f in files.iter_mut().filter(|f| size_unknown(f)) {
            // The tree API sometimes lists Size 0 for a non-empty file: ask the download.
            f.size = self.probe_size(repo, commit, &f.path).await?;
        }
        Ok(files)
    }

    /// One `repo/files` request.
    async fn list_files(&self, repo: &RepoRef, commit: &str, l: &Listing) -> Result<Vec<RawEntry>> {
        let mut url = format!(
            "{}/repo/files?Revision={}&Recursive={}",
            self.api(repo)?,
            enc(commit),
            if l.recursive { "True" } else { "False" }
        );
        if !l.root.is_empty() {
            url.push_str(&format!("&Root={}", enc(&l.root)));
        }
        parse_listing(&self.get_json("listing files", &url).await?)
    }

    /// A model's files, re-walking per folder when the listing is truncated.
    async fn list_model(&self, repo: &RepoRef, commit: &str) -> Result<Vec<RawEntry>> {
        let mut walk = Walk::new();
        loop {
            let reqs = walk.next_requests(WALK_WORKERS)?;
            if reqs.is_empty() {
                break;
            }
            let answers = futures_util::future::join_all(reqs.iter().map(|l| self.list_files(repo, commit, l))).await;
            for (l, answer) in reqs.iter().zip(answers) {
                let entries = answer?;
                if entries.len() >= FILES_LIMIT {
                    tracing::debug!(root = %l.root, recursive = l.recursive, "listing truncated; walking folders");
                }
                walk.feed(l, entries)?;
            }
        }
        Ok(walk.into_blobs())
    }

    /// A dataset's files, page by page until a short page.
    async fn list_dataset(&self, repo: &RepoRef, commit: &str) -> Result<Vec<RawEntry>> {
        let base = format!("{}/repo/tree?Revision={}&Recursive=True", self.api(repo)?, enc(commit));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for page in 1..=MAX_LIST_REQUESTS {
            let url = format!("{base}&PageNumber={page}&PageSize={TREE_PAGE_SIZE}");
            let entries = parse_listing(&self.get_json("listing files", &url).await?)?;
            let n = entries.len();
            let mut new = 0;
            for e in entries {
                if seen.insert(e.path.clone()) {
                    new += 1;
                    out.push(e);
                }
            }
            // A short page ends the listing; so does a page with nothing new (paging ignored).
            if n < TREE_PAGE_SIZE || new == 0 {
                return Ok(out);
            }
        }
        Err(Error::Protocol(format!(
            "listing the dataset needs more than {MAX_LIST_REQUESTS} pages; giving up"
        )))
    }

    /// The real size of a file listed with Size 0, from its download's headers.
    async fn probe_size(&self, repo: &RepoRef, commit: &str, path: &str) -> Result<u64> {
        let url = self.download_url(repo, commit, path)?;
        let resp = self
            .http
            .send(&format!("reading the size of {path}"), || {
                self.get(&url).header(RANGE, "bytes=0-0")
            })
            .await
            .map_err(|e| self.tidy(e))?;
        let h = resp.headers();
        let total = match resp.status() {
            StatusCode::PARTIAL_CONTENT => h
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.trim().parse().ok()),
            _ => h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
        };
        total.ok_or_else(|| {
            Error::Protocol(format!(
                "{path} is listed with size 0 and its download does not tell its size"
            ))
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

    /// `POST /api/v1/models` (JSON) or `POST /api/v1/datasets` (multipart form); `Ok(false)`
    /// when the repo exists already.
    pub async fn create_repo(&self, repo: &RepoRef, private: bool) -> Result<bool> {
        let kind = Self::kind(repo)?;
        let visibility = if private { 1 } else { 5 };
        let url = format!("{}/api/v1/{kind}", self.endpoint);
        let what = "creating the destination repo";
        let result = if kind == "models" {
            let body = json!({
                "Path": repo.namespace, "Name": repo.name, "Visibility": visibility,
                "License": "Apache-2.0",
            });
            self.send_coded(what, || self.post(&url).json(&body), |e, _| e.is_retryable())
                .await
        } else {
            let vis = visibility.to_string();
            let fields = [
                ("Owner", repo.namespace.as_str()),
                ("Name", repo.name.as_str()),
                ("Visibility", vis.as_str()),
                ("License", "Apache-2.0"),
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

    /// The LFS "validate" batch: which objects the store still needs, and where to PUT them.
    /// ModelScope stores objects globally and has no multipart transfer.
    pub async fn prepare_uploads(
        &self,
        repo: &RepoRef,
        _branch: &str,
        objects: &[(String, u64)],
    ) -> Result<Vec<UploadAction>> {
        let url = format!("{}/info/lfs/objects/batch", self.repos_api(repo)?);
        let mut out = Vec::with_capacity(objects.len());
        for batch in objects.chunks(BATCH_OBJECTS) {
            let body = json!({
                "operation": "upload",
                "objects": batch.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
            });
            let resp = self
                .http
                .send("asking the destination which objects it needs", || {
                    self.post(&url).json(&body)
                })
                .await
                .map_err(|e| match self.tidy(e) {
                    Error::Http { status, message, .. } if is_denied(status) => Error::Auth(format!(
                        "cannot upload to {repo}: the ModelScope token may not write there \
                         (HTTP {status}: {message})"
                    )),
                    other => other,
                })?;
            let v: Value = resp
                .json()
                .await
                .map_err(|e| Error::Protocol(format!("LFS batch: {}", e.without_url())))?;
            let objs = data(&v)["objects"]
                .as_array()
                .ok_or_else(|| Error::Protocol("LFS batch answer without objects".into()))?;
            for (oid, _) in batch {
                let o = objs
                    .iter()
                    .find(|o| o["oid"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(oid)))
                    .ok_or_else(|| Error::Protocol(format!("LFS batch answer does not mention {oid}")))?;
                out.push(upload_action(o)?);
            }
        }
        Ok(out)
    }

    /// PUTs `len` bytes to an upload href in one streaming request (not retried: the body is
    /// consumed). Credentials go along only when the href is on the endpoint's own host.
    pub async fn put(&self, url: &str, len: u64, body: ByteStream) -> Result<Option<String>> {
        let what = "uploading to the destination's object store";
        let resp = self
            .auth(url, self.http.client.put(url))
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| Error::transport(what, e))?;
        if !resp.status().is_success() {
            return Err(self.tidy(error_from(what, resp).await));
        }
        // The old SDK's contract: a JSON answer, when there is one, carries Code 200.
        let text = resp.text().await.unwrap_or_default();
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

    /// Commits `files` to `branch` in batches (at most 256 actions and about 8 MiB of JSON
    /// each, in order) and returns the last batch's commit. No files: the branch's head.
    pub async fn commit(&self, repo: &RepoRef, branch: &str, message: &str, files: &[CommitFile]) -> Result<String> {
        if files.is_empty() {
            return self.head(repo, branch).await;
        }
        let url = format!("{}/commit/{}", self.repos_api(repo)?, enc(branch));
        let batches = commit_batches(files);
        let n = batches.len();
        let mut last = None;
        for (i, range) in batches.into_iter().enumerate() {
            let msg = if n > 1 {
                format!("{message} (batch {}/{n})", i + 1)
            } else {
                message.to_string()
            };
            let body = json!({
                "commit_message": msg,
                "actions": files[range].iter().map(commit_action).collect::<Vec<_>>(),
            });
            let what = if n > 1 {
                format!("committing batch {}/{n} to the destination", i + 1)
            } else {
                "committing to the destination".to_string()
            };
            let tries = std::sync::atomic::AtomicU32::new(0);
            let result = self
                .send_coded(
                    &what,
                    || {
                        tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.post(&url).json(&body)
                    },
                    commit_retryable,
                )
                .await;
            last = match result {
                Ok(v) => {
                    let d = data(&v);
                    ["oid", "Oid", "CommitId", "commit_id"]
                        .iter()
                        .find_map(|k| d.get(*k).and_then(Value::as_str))
                        .map(str::to_string)
                }
                Err(Failure {
                    error: Error::Http { status, message, .. },
                    ..
                }) if is_denied(status) => {
                    return Err(Error::Auth(format!(
                        "cannot commit to {repo}: the ModelScope token may not write there \
                         (HTTP {status}: {message})"
                    )));
                }
                // A retried batch whose earlier attempt landed after all.
                Err(Failure {
                    error:
                        Error::Http {
                            status: 400 | 409,
                            message,
                            ..
                        },
                    ..
                }) if tries.load(std::sync::atomic::Ordering::Relaxed) > 1
                    && message.to_ascii_lowercase().contains("already exist") =>
                {
                    None
                }
                Err(f) => return Err(f.error),
            };
        }
        match last {
            Some(oid) => Ok(oid),
            None => self.head(repo, branch).await,
        }
    }
}

/// `private` from legacy repo info: `Visibility` 5 is public, 1 and 3 (internal) private.
/// Unknown visibility counts as private: never publish what might be private.
fn private_of(d: &Value) -> bool {
    let vis = d
        .get("Visibility")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()));
    match vis {
        Some(5) => false,
        Some(_) => true,
        None => match d.get("Private").or_else(|| d.get("private")).and_then(Value::as_bool) {
            Some(p) => p,
            None => {
                tracing::warn!("repo info without Visibility: treating the repo as private");
                true
            }
        },
    }
}

/// One object of a batch answer: no `actions.upload` means "already stored".
fn upload_action(o: &Value) -> Result<UploadAction> {
    if let Some(err) = o.get("error").filter(|e| !e.is_null()) {
        return Err(Error::Protocol(format!(
            "the destination refused object {}: {} {}",
            o["oid"].as_str().unwrap_or("?"),
            err["code"],
            err["message"].as_str().unwrap_or("")
        )));
    }
    match o.get("actions").and_then(|a| a.get("upload")) {
        None | Some(Value::Null) => Ok(UploadAction::Present),
        Some(up) => Ok(UploadAction::Basic {
            href: up["href"]
                .as_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::Protocol("upload action without href".into()))?
                .to_string(),
            verify: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, path: &str) -> RawEntry {
        RawEntry {
            kind: kind.into(),
            path: path.into(),
            size: Some(1),
            is_lfs: Some(false),
            sha256: Some("AB".into()),
        }
    }

    #[test]
    fn listing_entries() {
        let v = json!({"Code": 200, "Success": true, "Data": {"Files": [
            {"CommitMessage": "m", "IsLFS": false, "Name": ".gitattributes", "Path": ".gitattributes",
             "Revision": "c", "Sha256": "C04FE798", "Size": 1630, "Type": "blob", "Mode": "33188"},
            {"IsLFS": true, "Path": "w/model.bin", "Sha256": "74a4", "Size": 491400032, "Type": "blob"},
            {"Path": "w", "Size": 0, "Type": "tree"},
            {"Path": "empty.txt", "Sha256": "", "Size": 0, "Type": "blob", "IsLFS": false}]}});
        let raw = parse_listing(&v).unwrap();
        assert_eq!(raw.len(), 4);
        let files: Vec<FileEntry> = raw
            .into_iter()
            .filter(RawEntry::is_blob)
            .map(|e| e.into_file().unwrap())
            .collect();
        assert_eq!(
            files[0],
            FileEntry {
                path: ".gitattributes".into(),
                size: 1630,
                lfs: false,
                sha256: Some("c04fe798".into()),
                git_oid: None
            }
        );
        assert!(files[1].lfs && files[1].size == 491400032);
        assert_eq!(files[2].sha256, None);
        assert!(!size_unknown(&files[2]));
        let quirk = FileEntry {
            size: 0,
            ..files[0].clone()
        };
        assert!(size_unknown(&quirk));
        // Null or missing Files: an empty repo; no Data wrapper is fine too.
        assert!(parse_listing(&json!({"Data": {"Files": null}})).unwrap().is_empty());
        assert!(parse_listing(&json!({"Data": null})).unwrap().is_empty());
        assert_eq!(
            parse_listing(&json!({"Files": [{"Path": "a", "Type": "blob"}]}))
                .unwrap()
                .len(),
            1
        );
        // Unsafe paths are refused.
        assert!(entry("blob", "../x").into_file().is_err());
        assert!(entry("blob", "/etc/passwd").into_file().is_err());
    }

    #[test]
    fn private_and_actions() {
        assert!(!private_of(&json!({"Visibility": 5})));
        assert!(private_of(&json!({"Visibility": 1})));
        assert!(private_of(&json!({"Visibility": 3})));
        assert!(private_of(&json!({"Visibility": "1"})));
        assert!(!private_of(&json!({"private": false})));
        assert!(private_of(&json!({})));
        assert_eq!(
            upload_action(&json!({"oid": "a", "size": 1})).unwrap(),
            UploadAction::Present
        );
        assert_eq!(
            upload_action(&json!({"oid": "a", "size": 1, "actions": {"upload": {"href": "h"}}})).unwrap(),
            UploadAction::Basic {
                href: "h".into(),
                verify: None
            }
        );
        assert!(upload_action(&json!({"oid": "a", "actions": {"upload": {}}})).is_err());
    }

    /// Runs the walk against a fake service holding `files` (and their folders), truncating
    /// every answer at [`FILES_LIMIT`] as the real one does; returns the blobs and requests.
    fn walk_over(files: &[String]) -> Result<(Vec<String>, usize)> {
        let mut dirs = std::collections::BTreeSet::new();
        for f in files {
            let mut p = f.as_str();
            while let Some((d, _)) = p.rsplit_once('/') {
                dirs.insert(d.to_string());
                p = d;
            }
        }
        let all: Vec<RawEntry> = dirs
            .iter()
            .map(|d| entry("tree", d))
            .chain(files.iter().map(|f| entry("blob", f)))
            .collect();
        let answer = |l: &Listing| -> Vec<RawEntry> {
            all.iter()
                .filter(|e| {
                    let rel = if l.root.is_empty() {
                        Some(e.path.as_str())
                    } else {
                        e.path.strip_prefix(&format!("{}/", l.root))
                    };
                    rel.is_some_and(|r| l.recursive || !r.contains('/'))
                })
                .take(FILES_LIMIT)
                .cloned()
                .collect()
        };
        let mut walk = Walk::new();
        let mut n = 0;
        loop {
            let reqs = walk.next_requests(3)?;
            if reqs.is_empty() {
                break;
            }
            for l in &reqs {
                n += 1;
                walk.feed(l, answer(l))?;
            }
        }
        Ok((walk.into_blobs().into_iter().map(|e| e.path).collect(), n))
    }

    #[test]
    fn walk_undoes_truncation() {
        // Small: one request.
        let small: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let (got, n) = walk_over(&small).unwrap();
        assert_eq!((got.len(), n), (10, 1));
        // 3100 files in folders of 500 below one folder, plus a top-level file.
        let mut many: Vec<String> = (0..3100)
            .map(|i| format!("files/part-{:03}/file-{i:05}.txt", i / 500))
            .collect();
        many.push(".gitattributes".into());
        let (got, n) = walk_over(&many).unwrap();
        let mut want = many.clone();
        want.sort();
        assert_eq!(got, want);
        // root (full), root flat, files (full), files flat, 7 parts.
        assert_eq!(n, 11);
        // A single folder with more entries than a listing shows cannot be listed.
        let flat: Vec<String> = (0..3001).map(|i| format!("d/f{i}")).collect();
        assert!(walk_over(&flat).is_err());
    }

    #[test]
    fn walk_is_bounded() {
        let mut walk = Walk::new();
        walk.requests = MAX_LIST_REQUESTS;
        assert!(walk.next_requests(1).is_err());
        // Folders outside the listed root are ignored (no loops on a confused answer).
        let mut walk = Walk::new();
        let l = Listing {
            root: "a".into(),
            recursive: false,
        };
        walk.next_requests(1).unwrap();
        walk.feed(&l, vec![entry("tree", "a"), entry("tree", "b"), entry("tree", "a/c")])
            .unwrap();
        assert_eq!(
            walk.next_requests(10).unwrap(),
            vec![Listing {
                root: "a/c".into(),
                recursive: true
            }]
        );
    }

    fn inline(path: &str, n: usize) -> CommitFile {
        CommitFile::Inline {
            path: path.into(),
            content: vec![b'x'; n],
        }
    }

    #[test]
    fn batches_by_count_and_size() {
        let files: Vec<CommitFile> = (0..600).map(|i| inline(&format!("f{i}"), 10)).collect();
        let b = commit_batches(&files);
        assert_eq!(b, vec![0..256, 256..512, 512..600]);
        assert!(commit_batches(&[]).is_empty());
        // 3 MiB files: base64 makes each 4 MiB, so two per batch would pass 8 MiB.
        let big: Vec<CommitFile> = (0..5).map(|i| inline(&format!("b{i}"), 3 << 20)).collect();
        assert_eq!(commit_batches(&big), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
        // An oversized file goes alone, between others.
        let mixed = vec![inline("a", 10), inline("huge", 20 << 20), inline("b", 10)];
        assert_eq!(commit_batches(&mixed), vec![0..1, 1..2, 2..3]);
        // LFS actions are small: 256 per batch.
        let lfs: Vec<CommitFile> = (0..300)
            .map(|i| CommitFile::Lfs {
                path: format!("w/{i}.bin"),
                sha256: "a".repeat(64),
                size: 1 << 40,
            })
            .collect();
        assert_eq!(commit_batches(&lfs), vec![0..256, 256..300]);
        assert_eq!(action_bytes(&inline("p", 4)), 128 + 1 + 8);
    }

    #[test]
    fn commit_actions() {
        assert_eq!(
            commit_action(&inline("a b/ü.txt", 3)),
            json!({"action": "create", "path": "a b/ü.txt", "type": "normal", "size": 3,
                   "sha256": "", "content": "eHh4", "encoding": "base64"})
        );
        assert_eq!(
            commit_action(&CommitFile::Lfs {
                path: "m.bin".into(),
                sha256: "ab".into(),
                size: 7
            }),
            json!({"action": "create", "path": "m.bin", "type": "lfs", "size": 7,
                   "sha256": "ab", "content": "", "encoding": ""})
        );
    }

    #[test]
    fn multipart_encoding() {
        let body = multipart_body("XyZ", &[("Owner", "alice"), ("Visibility", "5")]);
        assert_eq!(
            body,
            "--XyZ\r\nContent-Disposition: form-data; name=\"Owner\"\r\n\r\nalice\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"Visibility\"\r\n\r\n5\r\n--XyZ--\r\n"
        );
        let b = boundary(&["alice", "ds"]);
        assert!(b.starts_with("hubmigrate-") && b.len() == 11 + 32);
        assert_ne!(b, boundary(&[]));
    }

    #[test]
    fn error_classification() {
        let http = |status, message: &str| Error::Http {
            what: "w".into(),
            status,
            message: message.into(),
            retry_after: None,
        };
        assert!(already_exists(400, Some(10010101001), "该名称已被注册使用，请重新命名"));
        assert!(already_exists(400, None, "该名称已被注册使用，请重新命名"));
        assert!(already_exists(400, None, "name is already in use"));
        assert!(already_exists(409, None, "DuplicateEntity"));
        assert!(!already_exists(403, None, "no permission"));
        assert!(!already_exists(400, None, "invalid Visibility 7"));
        assert!(commit_retryable(&http(503, "busy"), None));
        assert!(commit_retryable(&http(429, "slow down"), None));
        assert!(commit_retryable(&http(400, "x"), Some(CODE_COMMIT_POLICY)));
        assert!(commit_retryable(
            &http(400, "Commit rejected by repository policy"),
            None
        ));
        assert!(commit_retryable(&http(409, "branch changed, try again"), None));
        assert!(!commit_retryable(&http(400, "invalid commit action"), None));
        assert!(!commit_retryable(&http(422, "exceeds actions limit"), None));
        assert!(!commit_retryable(&http(403, "try again"), None));
    }

    #[test]
    fn messages_are_one_line_and_secret_free() {
        let t = Secret::new("ms-secret-token");
        let m = one_line(
            "bad\n token ms-secret-token at https://lfs.x/obj?sig=abc\tend",
            Some(&t),
        );
        assert_eq!(m, "bad token *** at https://lfs.x/obj?*** end");
        assert!(one_line(&"x".repeat(1000), None).chars().count() <= 301);
    }

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
            repo_type: RepoType::Space,
            namespace: "a".into(),
            name: "b".into(),
            explicit_type: true,
            endpoint: None,
        };
        assert!(MsClient::kind(&space).is_err());
    }
}
