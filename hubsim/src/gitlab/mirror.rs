//! Pull mirrors (and imports), carried out by hubsim itself as GitLab's Sidekiq jobs would:
//! `git fetch --prune` of the source's branches and tags, then every LFS object the mirrored
//! refs point at and the project lacks, fetched through the source's LFS batch API, hashed
//! while it is written into the store and linked to the project.
//!
//! Credentials never reach a command line or a URL that git sees: the stored user name and
//! password travel as an `http.extraHeader` through git's environment, and every error message
//! is scrubbed of them before it is stored or logged.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;

use super::Gl;
use super::hooks::{choose_default, scan_pointers};
use super::projects::{self, MirrorState};
use crate::repo::RepoId;
use crate::store::StoreError;
use crate::util::now_secs;

/// How long one git command of a mirror update may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Objects per LFS batch request.
const BATCH: usize = 100;
const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The mirrors being updated (one update per project at a time) and the HTTP client.
#[derive(Default)]
pub struct Mirrors {
    running: Mutex<HashSet<RepoId>>,
    client: OnceLock<reqwest::Client>,
}

impl Mirrors {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(300))
                .build()
                .unwrap_or_default()
        })
    }
}

async fn set_state(gl: &Gl, id: &RepoId, f: impl FnOnce(&mut MirrorState)) -> Result<(), StoreError> {
    projects::update(&gl.hub.store, id, |p| {
        let mut s = p.mirror_state();
        f(&mut s);
        p.set_mirror_state(&s);
    })
    .await
    .map(|_| ())
}

/// Schedules an update of project `id`'s mirror, unless one is already scheduled or running
/// (GitLab ignores such requests too).
pub async fn schedule(gl: &Arc<Gl>, id: &RepoId) -> Result<(), StoreError> {
    if !gl
        .mirrors
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone())
    {
        return Ok(());
    }
    if let Err(e) = set_state(gl, id, |s| s.update_status = "scheduled".into()).await {
        gl.mirrors.running.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        return Err(e);
    }
    let (gl, id) = (gl.clone(), id.clone());
    tokio::spawn(async move {
        run(&gl, &id).await;
        gl.mirrors.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    });
    Ok(())
}

async fn run(gl: &Gl, id: &RepoId) {
    let started = now_secs();
    let _ = set_state(gl, id, |s| {
        s.update_status = "started".into();
        s.last_update_started_at = Some(started);
    })
    .await;
    let result = update(gl, id).await;
    let ended = now_secs();
    match &result {
        Ok(n) => tracing::info!(project = %id.full(), lfs_objects = n, secs = ended - started, "mirror updated"),
        Err(e) => tracing::warn!(project = %id.full(), error = %e, "mirror update failed"),
    }
    let saved = set_state(gl, id, |s| {
        s.last_update_at = Some(ended);
        match result {
            Ok(_) => {
                s.update_status = "finished".into();
                s.last_successful_update_at = Some(ended);
                s.last_error = None;
            }
            Err(e) => {
                s.update_status = "failed".into();
                s.last_error = Some(e);
            }
        }
    })
    .await;
    if let Err(e) = saved {
        tracing::error!(project = %id.full(), error = %e, "could not record the mirror state");
    }
}

/// What a mirror update needs to reach the source, and what its errors must never show.
struct Source {
    url: String,
    /// `Basic ...`, when the import URL carried credentials.
    auth: Option<String>,
    secrets: Vec<String>,
}

impl Source {
    /// `text` without any trace of the credentials.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in self.secrets.iter().filter(|s| s.len() >= 3) {
            t = t.replace(s.as_str(), "*****");
        }
        t
    }

    /// A git command against the source, credentials in the environment only.
    fn git(&self, dir: &Path) -> tokio::process::Command {
        let mut c = crate::store::git::command(dir);
        c.env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_CONFIG_PARAMETERS");
        match &self.auth {
            Some(a) => c
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", format!("Authorization: {a}")),
            None => c.env("GIT_CONFIG_COUNT", "0"),
        };
        c
    }

    /// Runs git against the source; the error is git's scrubbed stderr.
    async fn run_git(&self, dir: &Path, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.git(dir);
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let what = args.first().copied().unwrap_or("git");
        let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
            Err(_) => return Err(format!("git {what} timed out after {} s", GIT_TIMEOUT.as_secs())),
            Ok(Err(e)) => return Err(format!("git {what} could not run: {e}")),
            Ok(Ok(o)) => o,
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(4)..].join("; ");
            // Git's way of saying "401 and nobody to ask for a password".
            let tail = if tail.contains("could not read Username") || tail.contains("could not read Password") {
                let who = if self.auth.is_some() {
                    "the source refused the credentials of the import URL"
                } else {
                    "the source requires credentials and the import URL has none"
                };
                format!("{who} (HTTP 401)")
            } else {
                tail
            };
            return Err(self.scrub(&format!("git {what} failed: {tail}")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The source's LFS batch endpoint (git-lfs's rule: `{url}.git/info/lfs`, or
    /// `{url}/info/lfs` when the URL already ends in `.git`).
    fn lfs_batch_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with(".git") {
            format!("{base}/info/lfs/objects/batch")
        } else {
            format!("{base}.git/info/lfs/objects/batch")
        }
    }
}

/// One mirror update; returns how many LFS objects it linked. Errors are readable sentences
/// without credentials.
async fn update(gl: &Gl, id: &RepoId) -> Result<usize, String> {
    let store = &gl.hub.store;
    let internal = |e: StoreError| format!("internal error: {e}");
    let p = projects::load(store, id)
        .await
        .map_err(internal)?
        .ok_or("the project no longer exists")?;
    let url = p.import_url().ok_or("the project has no import URL")?.to_string();
    let creds = projects::load_credentials(store, id).await.map_err(internal)?;
    let source = match creds {
        None => Source {
            url,
            auth: None,
            secrets: Vec::new(),
        },
        Some(c) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            Source {
                url,
                auth: Some(format!("Basic {b64}")),
                secrets: vec![b64, c.password],
            }
        }
    };
    let dir = store.repo_dir(id);
    let was_empty = projects::is_empty(store, id).await.map_err(internal)?;
    let listing = source
        .run_git(
            &dir,
            &["ls-remote", "--symref", "--end-of-options", &source.url, "HEAD"],
        )
        .await?;
    let remote_head = listing
        .lines()
        .find_map(|l| l.strip_prefix("ref: ")?.split('\t').next().map(str::to_string));
    source
        .run_git(
            &dir,
            &[
                "fetch",
                "--prune",
                "--no-write-fetch-head",
                "--quiet",
                "--end-of-options",
                &source.url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
        )
        .await?;
    let linked = copy_lfs(gl, id, &dir, &source).await?;
    set_head(gl, id, &dir, was_empty, remote_head.as_deref())
        .await
        .map_err(internal)?;
    Ok(linked)
}

/// Points `HEAD` at the source's default branch when the project was empty, and at some
/// existing branch when it names none.
async fn set_head(
    gl: &Gl,
    id: &RepoId,
    dir: &Path,
    was_empty: bool,
    remote_head: Option<&str>,
) -> Result<(), StoreError> {
    let store = &gl.hub.store;
    let branches: Vec<String> = store
        .refs(id)
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r.starts_with("refs/heads/"))
        .collect();
    let target = match remote_head {
        Some(h) if was_empty && branches.iter().any(|b| b == h) => Some(h.to_string()),
        _ if projects::default_branch(store, id).await?.is_none() => choose_default(&branches).cloned(),
        _ => None,
    };
    if let Some(t) = target {
        crate::store::git::run(dir, &["symbolic-ref", "HEAD", &t]).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct BatchError {
    code: Option<u16>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Action {
    href: String,
    #[serde(default)]
    header: std::collections::HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Actions {
    download: Option<Action>,
}

#[derive(Deserialize)]
struct BatchObject {
    oid: String,
    #[serde(default)]
    actions: Option<Actions>,
    error: Option<BatchError>,
}

#[derive(Deserialize)]
struct BatchResponse {
    transfer: Option<String>,
    objects: Vec<BatchObject>,
}

/// Copies the LFS objects the mirrored refs need into the project.
async fn copy_lfs(gl: &Gl, id: &RepoId, dir: &Path, source: &Source) -> Result<usize, String> {
    let store = &gl.hub.store;
    let scan_dir = dir.to_path_buf();
    let pointers = tokio::task::spawn_blocking(move || scan_pointers(&scan_dir, &["--branches", "--tags"]))
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .map_err(|e| format!("could not list the LFS pointers: {e}"))?;
    let mut wanted: Vec<(String, u64)> = Vec::new();
    let mut linked = 0;
    for p in pointers {
        if store.repo_has_object(id, &p.oid).await {
            continue;
        }
        let size = p
            .size
            .ok_or_else(|| format!("the LFS pointer of object {} has no valid size", p.oid))?;
        if let Some(limit) = gl.hub.cfg.max_lfs_object_size.filter(|l| size > *l) {
            return Err(crate::lfs_api::too_large_message(&p.oid, limit));
        }
        if store.lfs.size(&p.oid).await == Some(size) {
            // Stored for another project already: GitLab links the existing object.
            store
                .link_object(id, &p.oid)
                .await
                .map_err(|e| format!("internal error: {e}"))?;
            linked += 1;
        } else {
            wanted.push((p.oid, size));
        }
    }
    let endpoint = source.lfs_batch_url();
    for chunk in wanted.chunks(BATCH) {
        let batch = request_batch(gl, source, &endpoint, chunk).await?;
        for (oid, size) in chunk {
            let obj = batch
                .objects
                .iter()
                .find(|o| &o.oid == oid)
                .ok_or_else(|| format!("the source's LFS server did not answer for object {oid}"))?;
            if let Some(e) = &obj.error {
                return Err(source.scrub(&format!(
                    "LFS object {oid} is not available at the source: [{}] {}",
                    e.code.unwrap_or(0),
                    e.message.as_deref().unwrap_or("")
                )));
            }
            let action = obj
                .actions
                .as_ref()
                .and_then(|a| a.download.as_ref())
                .ok_or_else(|| format!("the source's LFS server gave no download action for object {oid}"))?;
            download(gl, source, action, oid, *size).await?;
            store
                .link_object(id, oid)
                .await
                .map_err(|e| format!("internal error: {e}"))?;
            linked += 1;
        }
    }
    Ok(linked)
}

async fn request_batch(
    gl: &Gl,
    source: &Source,
    endpoint: &str,
    objects: &[(String, u64)],
) -> Result<BatchResponse, String> {
    let body = json!({
        "operation": "download",
        "transfers": ["basic"],
        "objects": objects.iter().map(|(oid, size)| json!({"oid": oid, "size": size})).collect::<Vec<_>>(),
        "hash_algo": "sha256",
    });
    let mut req = gl
        .mirrors
        .client()
        .post(endpoint)
        .header("accept", LFS_JSON)
        .header("content-type", LFS_JSON)
        .body(body.to_string());
    if let Some(a) = &source.auth {
        req = req.header("authorization", a);
    }
    let fail = |what: String| source.scrub(&format!("LFS batch request to {endpoint} failed: {what}"));
    let resp = req.send().await.map_err(|e| fail(e.without_url().to_string()))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| fail(e.without_url().to_string()))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        return Err(fail(format!("HTTP {}: {message}", status.as_u16())));
    }
    let batch: BatchResponse = serde_json::from_str(&text).map_err(|e| fail(format!("unreadable answer: {e}")))?;
    if let Some(t) = batch.transfer.as_deref().filter(|t| *t != "basic") {
        return Err(fail(format!("the server chose the unsupported transfer {t:?}")));
    }
    Ok(batch)
}

/// Streams one object from its download action into the store (hashed and size-checked).
async fn download(gl: &Gl, source: &Source, action: &Action, oid: &str, size: u64) -> Result<(), String> {
    let mut req = gl.mirrors.client().get(&action.href);
    for (k, v) in &action.header {
        req = req.header(k.as_str(), v.as_str());
    }
    let fail = |what: String| source.scrub(&format!("downloading LFS object {oid} failed: {what}"));
    let resp = req.send().await.map_err(|e| fail(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    let stream = Box::pin(resp.bytes_stream().map_err(std::io::Error::other));
    gl.hub
        .store
        .lfs
        .put_stream(oid, size, stream)
        .await
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(url: &str) -> Source {
        Source {
            url: url.into(),
            auth: Some("Basic YWxpY2U6czNjcjN0".into()),
            secrets: vec!["YWxpY2U6czNjcjN0".into(), "s3cr3t".into()],
        }
    }

    #[test]
    fn lfs_endpoints() {
        assert_eq!(
            source("http://h:1/alice/m").lfs_batch_url(),
            "http://h:1/alice/m.git/info/lfs/objects/batch"
        );
        assert_eq!(
            source("http://h:1/alice/m.git").lfs_batch_url(),
            "http://h:1/alice/m.git/info/lfs/objects/batch"
        );
        assert_eq!(
            source("http://h:1/a/b/m/").lfs_batch_url(),
            "http://h:1/a/b/m.git/info/lfs/objects/batch"
        );
    }

    #[test]
    fn errors_are_scrubbed() {
        let s = source("http://h/x");
        assert_eq!(
            s.scrub("auth s3cr3t failed with YWxpY2U6czNjcjN0"),
            "auth ***** failed with *****"
        );
    }
}
