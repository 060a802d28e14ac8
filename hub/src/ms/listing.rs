//! ModelScope file listings: the entries of `repo/files` (models) and the paged `repo/tree`
//! (datasets), the [`Walk`] that undoes `repo/files`' silent truncation at [`FILES_LIMIT`] entries
//! by listing folder by folder, and the download probe for files listed with size 0.

use std::collections::{BTreeMap, HashSet, VecDeque};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MsClient;
use super::wire::{data, private_of};
use crate::error::{Error, Result};
use crate::http::enc;
use crate::manifest::{FileEntry, check_path};
use crate::reporef::{RepoRef, RepoType};
use crate::types::ListedRepo;

/// `repo/files` never answers more entries than this (silently, with no marker).
pub const FILES_LIMIT: usize = 3000;
/// Most `repo/files` requests one listing may make.
const MAX_LIST_REQUESTS: usize = 5000;
/// Concurrent `repo/files` requests while re-walking a truncated listing.
const WALK_WORKERS: usize = 8;
/// Entries per page of the dataset `repo/tree` listing.
const TREE_PAGE_SIZE: usize = 200;
/// sha256 of no bytes.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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

/// A listed size of 0 for content whose hash is not the empty one: the service's "unknown size".
fn size_unknown(f: &FileEntry) -> bool {
    f.size == 0 && f.sha256.as_deref().is_some_and(|s| s != EMPTY_SHA256)
}

impl MsClient {
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
}

/// Most pages an owner listing may take: a guard against a hub that never ends a listing.
const MAX_REPO_PAGES: usize = 10_000;

impl MsClient {
    /// Every model or dataset of `owner` that the token may see, through the legacy listings,
    /// which authenticate like the site and so include private repos (the OpenAPI search lists
    /// public ones only): `PUT /api/v1/models/` with `{"Path","PageNumber","PageSize"}`, and
    /// `GET /api/v1/datasets?owner=&PageNumber=&PageSize=`. Pages are read until `TotalCount`
    /// entries arrived, a page comes back short or empty, or (datasets) the service says the page
    /// starts past the end.
    pub async fn list_repos(&self, owner: &str, repo_type: RepoType, page_size: usize) -> Result<Vec<ListedRepo>> {
        if repo_type == RepoType::Space {
            return Err(Error::Input(
                "ModelScope studios have no file API: list models or datasets".into(),
            ));
        }
        let what = format!("listing the repos of {owner}");
        let mut out: Vec<ListedRepo> = Vec::new();
        for page in 1..=MAX_REPO_PAGES {
            let answer = if repo_type == RepoType::Model {
                let url = format!("{}/api/v1/models/", self.endpoint);
                let body = json!({"Path": owner, "PageNumber": page, "PageSize": page_size});
                let put = || self.auth(&url, self.http.client.put(&url)).json(&body);
                self.send_coded(&what, put, |e, _| e.is_retryable()).await
            } else {
                let url = format!(
                    "{}/api/v1/datasets?owner={}&PageNumber={page}&PageSize={page_size}",
                    self.endpoint,
                    enc(owner)
                );
                self.send_coded(&what, || self.get(&url), |e, _| e.is_retryable()).await
            };
            let v = match answer {
                Ok(v) => v,
                Err(f) if past_the_end(&f.error) => return Ok(out),
                Err(f) => return Err(self.tidy(f.error)),
            };
            let (items, total) = match repo_type {
                RepoType::Model => (&data(&v)["Models"], &data(&v)["TotalCount"]),
                _ => (data(&v), &v["TotalCount"]),
            };
            let items = match items {
                Value::Null => &Vec::new(),
                Value::Array(a) => a,
                _ => return Err(Error::Protocol(format!("{what}: the listing is not a list"))),
            };
            for item in items {
                let listed = ms_listed_repo(item, owner, repo_type)?;
                if !out.iter().any(|r| r.repo == listed.repo) {
                    out.push(listed);
                }
            }
            let total = total.as_u64().map_or(usize::MAX, |t| t as usize);
            if items.len() < page_size || out.len() >= total {
                return Ok(out);
            }
        }
        Err(Error::Protocol(format!(
            "{what}: the listing goes on past {MAX_REPO_PAGES} pages"
        )))
    }
}

/// The service's answer to a page that starts past the end (a Java `subList` complaint).
fn past_the_end(e: &Error) -> bool {
    matches!(e, Error::Http { status: 400, message, .. } if message.contains("fromIndex") && message.contains("toIndex"))
}

/// One entry of a legacy owner listing, checked: `Name` must be a valid repo name and the
/// owner (`Path`, `Owner` or `Namespace`) must be `owner`.
fn ms_listed_repo(item: &Value, owner: &str, repo_type: RepoType) -> Result<ListedRepo> {
    let name = item["Name"]
        .as_str()
        .ok_or_else(|| Error::Protocol("a repo listing entry without a Name".into()))?;
    let ns = ["Path", "Owner", "Namespace"]
        .iter()
        .find_map(|k| item[*k].as_str())
        .unwrap_or(owner);
    if !ns.eq_ignore_ascii_case(owner) {
        return Err(Error::Protocol(format!(
            "the repo listing of {owner} names {ns}/{name}, which is not theirs"
        )));
    }
    let repo = RepoRef::parse(&format!("ms:{ns}/{name}"), repo_type)
        .map_err(|e| Error::Protocol(format!("the repo listing names {ns}/{name}: {e}")))?;
    Ok(ListedRepo {
        repo,
        private: private_of(item),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn owner_listing_entries() {
        let e = json!({"Name": "m", "Path": "acme", "Visibility": 1});
        let listed = ms_listed_repo(&e, "acme", RepoType::Dataset).unwrap();
        assert!(listed.private && listed.repo.id() == "acme/m" && listed.repo.repo_type == RepoType::Dataset);
        let public = json!({"Name": "m", "Owner": "acme", "Visibility": 5});
        assert!(!ms_listed_repo(&public, "acme", RepoType::Model).unwrap().private);
        assert!(ms_listed_repo(&json!({"Name": "m", "Path": "eve"}), "acme", RepoType::Model).is_err());
        assert!(ms_listed_repo(&json!({"Name": "../m", "Path": "acme"}), "acme", RepoType::Model).is_err());
        assert!(ms_listed_repo(&json!({"Path": "acme"}), "acme", RepoType::Model).is_err());
        let past = Error::Http {
            what: "x".into(),
            status: 400,
            message: "fromIndex(100) > toIndex(7)".into(),
            retry_after: None,
        };
        assert!(past_the_end(&past));
    }
}
