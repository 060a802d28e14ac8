//! The write path of the HTTP API: `preupload` (which files go through LFS) and the NDJSON
//! `commit` (inline files, `lfsFile` references to uploaded objects, deletions), written as one
//! real git commit. `.gitattributes` gains a line for LFS paths no rule covers, as on the Hub.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, HfError, HfResult, repo_url};
use crate::glob::{add_lfs_rules, lfs_tracked, matches_attr};
use crate::http::{hv, param_bool, query_pairs, read_body};
use crate::repo::{RepoId, check_path};
use crate::store::{Op, Tree, path_conflict, tree::pointer_text};
use crate::util::is_hex;

/// Files larger than this must go through LFS (the Hub's pre-receive rule).
pub const MAX_REGULAR: u64 = 10 * 1024 * 1024;

/// The Hub's push policy as a git `pre-receive` hook: a push that adds a file over 10 MiB that
/// is not an LFS pointer is rejected, with the Hub's message.
pub fn pre_receive_hook() -> String {
    format!(
        r#"#!/bin/sh
# hubsim (Hugging Face flavor): files over 10 MiB must be stored with Git LFS.
zero=0000000000000000000000000000000000000000
status=0
while read -r old new ref; do
  [ "$new" = "$zero" ] && continue
  big=$(git rev-list --objects "$new" --not --all |
    git cat-file --batch-check='%(objecttype) %(objectsize) %(rest)' |
    awk -v limit={MAX_REGULAR} '$1 == "blob" && $2 > limit {{ sub(/^blob [0-9]+ /, ""); print "- " $0 }}')
  if [ -n "$big" ]; then
    echo "Your push was rejected because it contains files larger than 10 MiB. Please use https://git-lfs.github.com/ to store large files." >&2
    echo "Offending files: (ref: $ref)" >&2
    echo "$big" >&2
    status=1
  fi
done
exit $status
"#
    )
}
/// Binary files larger than this must go through LFS.
const MAX_REGULAR_BINARY: u64 = 1024 * 1024;

#[derive(Deserialize)]
struct PreuploadFile {
    path: String,
    sample: Option<String>,
    size: u64,
}

#[derive(Deserialize)]
struct PreuploadBody {
    files: Vec<PreuploadFile>,
    #[serde(rename = "gitIgnore")]
    git_ignore: Option<String>,
}

/// A refused path: 422 for one climbing out with backslashes (the Hub's answer to `..\ddd`),
/// 400 otherwise.
fn path_error(path: &str, e: String) -> HfError {
    let status = if path.contains('\\') {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    HfError::new(status, e)
}

/// Is the revision a ref one can commit to? Returns the full ref (`refs/heads/x` or `refs/pr/N`).
fn commit_target(rev: &str) -> HfResult<String> {
    if let Some(n) = rev.strip_prefix("refs/pr/")
        && n.parse::<u64>().is_ok()
    {
        return Ok(rev.to_string());
    }
    let branch = rev.strip_prefix("refs/heads/").unwrap_or(rev);
    if branch.starts_with("refs/") || is_hex(branch, 40) || crate::store::check_rev(branch).is_err() {
        return Err(HfError::bad_request(format!(
            "Invalid rev id: {rev}: commits go to a branch"
        )));
    }
    Ok(format!("refs/heads/{branch}"))
}

fn ignored(gitignore: &str, path: &str) -> bool {
    let mut hit = false;
    for line in gitignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (neg, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let pat = pat.trim_end_matches('/');
        if matches_attr(pat, path)
            || path
                .split('/')
                .any(|seg| !pat.contains('/') && crate::glob::glob(pat.as_bytes(), seg.as_bytes()))
        {
            hit = !neg;
        }
    }
    hit
}

/// Files one preupload call may ask about (huggingface_hub sends them in batches of 256).
const MAX_PREUPLOAD_FILES: usize = 256;

/// `POST /api/{t}s/{ns}/{n}/preupload/{rev}`.
pub async fn preupload(ctx: &Ctx, id: &RepoId, rev: &str, query: Option<&str>, body: Body) -> HfResult {
    if param_bool(&query_pairs(query), "create_pr") {
        ctx.access_for_pr(id).await?;
    } else {
        ctx.access(id, true).await?;
    }
    let bytes = read_body(&ctx.hub, body).await?;
    let req: PreuploadBody =
        serde_json::from_slice(&bytes).map_err(|e| HfError::bad_request(format!("Invalid JSON body: {e}")))?;
    if req.files.len() > MAX_PREUPLOAD_FILES {
        return Err(HfError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Too many files: at most {MAX_PREUPLOAD_FILES} per preupload request"),
        ));
    }
    let commit = ctx.commit_of(id, rev).await?;
    let tree = ctx.hub.store.tree(id, &commit).await?;
    let attrs = ctx.hub.store.gitattributes(id, &tree).await?;
    let gitignore = match (&req.git_ignore, tree.get(".gitignore")) {
        (Some(g), _) => g.clone(),
        (None, Some(e)) if !e.is_dir => {
            String::from_utf8_lossy(&ctx.hub.store.read_blob(id, &e.oid).await?.unwrap_or_default()).into_owned()
        }
        _ => String::new(),
    };
    let mut files = Vec::with_capacity(req.files.len());
    for f in &req.files {
        check_path(&f.path).map_err(|e| path_error(&f.path, e))?;
        let sample = f
            .sample
            .as_deref()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
            .transpose()
            .map_err(|_| HfError::bad_request(format!("Invalid base64 sample for {}", f.path)))?
            .unwrap_or_default();
        let binary = sample.contains(&0);
        let lfs = lfs_tracked(&attrs, &f.path) || f.size > MAX_REGULAR || (binary && f.size > MAX_REGULAR_BINARY);
        let mut v = json!({
            "path": f.path,
            "uploadMode": if lfs { "lfs" } else { "regular" },
            "shouldIgnore": ignored(&gitignore, &f.path),
        });
        if let Some(e) = tree.get(&f.path).filter(|e| !e.is_dir) {
            v["oid"] = json!(e.lfs.as_ref().map(|p| p.oid.clone()).unwrap_or_else(|| e.oid.clone()));
        }
        files.push(v);
    }
    Ok(Json(json!({"files": files, "commitOid": commit})).into_response())
}

/// One parsed NDJSON line of a commit.
enum Line {
    Header {
        summary: String,
        description: String,
        parent: Option<String>,
    },
    File {
        path: String,
        content: Vec<u8>,
    },
    LfsFile {
        path: String,
        oid: String,
        size: Option<u64>,
    },
    Delete {
        path: String,
        folder: bool,
    },
}

fn parse_line(v: &Value) -> HfResult<Line> {
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| HfError::bad_request("Each line needs a 'key'"))?;
    let val = v
        .get("value")
        .ok_or_else(|| HfError::bad_request("Each line needs a 'value'"))?;
    let s = |k: &str| val.get(k).and_then(Value::as_str).map(str::to_string);
    let path = || -> HfResult<String> {
        let p = s("path").ok_or_else(|| HfError::bad_request(format!("'{key}' needs a path")))?;
        let p = p.trim_end_matches('/').to_string();
        check_path(&p).map_err(|e| path_error(&p, e))?;
        Ok(p)
    };
    Ok(match key {
        "header" => Line::Header {
            summary: s("summary")
                .filter(|x| !x.trim().is_empty())
                .ok_or_else(|| HfError::bad_request("The commit summary is required"))?,
            description: s("description").unwrap_or_default(),
            parent: s("parentCommit"),
        },
        "file" => {
            let raw = s("content").unwrap_or_default();
            let content = match s("encoding").as_deref() {
                Some("base64") | None => base64::engine::general_purpose::STANDARD
                    .decode(raw.as_bytes())
                    .map_err(|_| HfError::bad_request("Invalid base64 content"))?,
                Some("utf-8") => raw.into_bytes(),
                Some(other) => {
                    return Err(HfError::bad_request(format!("Unknown encoding {other}")));
                }
            };
            Line::File { path: path()?, content }
        }
        "lfsFile" => {
            let oid = s("oid").ok_or_else(|| HfError::bad_request("lfsFile needs an oid"))?;
            if !is_hex(&oid, 64) {
                return Err(HfError::bad_request(format!("Invalid sha256 oid: {oid}")));
            }
            if let Some(a) = s("algo").filter(|a| a != "sha256") {
                return Err(HfError::bad_request(format!("Unsupported hash algorithm: {a}")));
            }
            Line::LfsFile {
                path: path()?,
                oid,
                size: val.get("size").and_then(Value::as_u64),
            }
        }
        "deletedFile" => Line::Delete {
            path: path()?,
            folder: false,
        },
        "deletedFolder" => Line::Delete {
            path: path()?,
            folder: true,
        },
        other => {
            return Err(HfError::bad_request(format!("Unknown commit operation: {other}")));
        }
    })
}

/// `POST /api/{t}s/{ns}/{n}/commit/{rev}[?create_pr=1]` with an NDJSON body.
pub async fn commit(ctx: &Ctx, id: &RepoId, rev: &str, query: Option<&str>, body: Body) -> HfResult {
    let create_pr = param_bool(&query_pairs(query), "create_pr");
    let meta = if create_pr {
        ctx.access_for_pr(id).await?
    } else {
        ctx.access(id, true).await?
    };
    // A pull request opens against a branch: a commit id is no revision to open it on.
    let target = commit_target(rev).map_err(|e| if create_pr { HfError::revision_not_found(rev) } else { e })?;
    let bytes = read_body(&ctx.hub, body).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| HfError::bad_request("The commit body must be UTF-8 NDJSON"))?;
    let mut lines = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).map_err(|e| HfError::bad_request(format!("Invalid JSON line: {e}")))?;
        lines.push(parse_line(&v)?);
    }
    let Some(Line::Header {
        summary,
        description,
        parent,
    }) = lines.first()
    else {
        return Err(HfError::bad_request("The first line must be the commit header"));
    };
    let message = if description.is_empty() {
        summary.clone()
    } else {
        format!("{summary}\n\n{description}")
    };
    let parent = parent.clone();

    let mut _guard = ctx.hub.store.lock(id).await;
    // Like the Hub, commits go to existing branches only (create_branch first).
    let head = ctx
        .hub
        .store
        .resolve(id, &target)
        .await?
        .ok_or_else(|| HfError::revision_not_found(rev))?;
    if let Some(p) = &parent
        && !head.starts_with(p.as_str())
    {
        return Err(HfError::new(
            StatusCode::PRECONDITION_FAILED,
            "The branch was updated since you opened this page. Please refresh and try again.",
        ));
    }
    let tree = ctx.hub.store.tree(id, &head).await?;
    let ops = build_ops(ctx, id, &tree, &lines[1..]).await?;
    if let Err(wait) = ctx.hub.admit_commit(id) {
        let mut resp = HfError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded our hourly quotas for action: commit. We invite you to retry later.",
        )
        .into_response();
        resp.headers_mut()
            .insert(HeaderName::from_static("retry-after"), wait.into());
        return Ok(resp);
    }
    // The server's time for this commit; past its timeout the gateway gives up and nothing is
    // committed.
    let inline: u64 = lines[1..]
        .iter()
        .map(|l| match l {
            Line::File { content, .. } => content.len() as u64,
            _ => 0,
        })
        .sum();
    match ctx.hub.cfg.commit_cost.time(lines.len() - 1, inline) {
        Ok(time) => tokio::time::sleep(time).await,
        Err(timeout) => {
            tokio::time::sleep(timeout).await;
            tracing::info!(repo = %id, operations = lines.len() - 1, inline, "commit timed out");
            return Err(HfError::new(StatusCode::GATEWAY_TIMEOUT, "Gateway Time-out"));
        }
    }
    let author = ctx.caller.principal().map(|p| p.name.clone()).unwrap_or_default();
    let (write_ref, pr) = if create_pr {
        let mut meta = meta.clone();
        let n = meta.next_pr;
        meta.next_pr += 1;
        ctx.hub.store.save_meta(id, &meta).await?;
        (format!("refs/pr/{n}"), Some(n))
    } else {
        (target.clone(), None)
    };
    let oid = ctx
        .hub
        .store
        .write_commit(id, &write_ref, Some(&head), &ops, &author, &message)
        .await?;
    drop(_guard);
    tracing::info!(repo = %id, commit = %oid, files = ops.len(), "commit");
    let url = repo_url(&ctx.hub, id);
    let mut out =
        json!({"success": true, "commitOid": oid, "commitUrl": format!("{url}/commit/{oid}"), "hookOutput": ""});
    if let Some(n) = pr {
        out["pullRequestUrl"] = json!(format!("{url}/discussions/{n}"));
    }
    let mut resp = Json(out).into_response();
    resp.headers_mut()
        .insert(HeaderName::from_static("x-repo-commit"), hv(&oid));
    Ok(resp)
}

/// Turns commit lines into storage ops, checking files against the tree and the LFS store.
async fn build_ops(ctx: &Ctx, id: &RepoId, tree: &Tree, lines: &[Line]) -> HfResult<Vec<Op>> {
    let mut ops = Vec::new();
    let mut lfs_paths = Vec::new();
    let mut attrs: Option<String> = None;
    let mut too_big = Vec::new();
    for line in lines {
        match line {
            Line::Header { .. } => {
                return Err(HfError::bad_request("Only the first line may be a header"));
            }
            Line::File { path, content } => {
                if content.len() as u64 > MAX_REGULAR {
                    too_big.push(path.clone());
                }
                if path == ".gitattributes" {
                    attrs = Some(String::from_utf8_lossy(content).into_owned());
                }
                if path == "README.md" {
                    let verdict = super::card::validate(&String::from_utf8_lossy(content));
                    if !verdict.errors.is_empty() {
                        return Err(HfError::bad_request(format!(
                            "Invalid metadata in README.md.\n{}",
                            verdict
                                .errors
                                .iter()
                                .map(|e| format!("- {e}"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        )));
                    }
                }
                ops.push(Op::Put {
                    path: path.clone(),
                    data: content.clone(),
                });
            }
            Line::LfsFile { path, oid, size } => {
                if !ctx.hub.store.repo_has_object(id, oid).await {
                    return Err(HfError::bad_request(format!(
                        "LFS object {oid} for {path} was not uploaded to this repository"
                    )));
                }
                let stored = ctx.hub.store.lfs.size(oid).await.unwrap_or(0);
                if size.is_some_and(|s| s != stored) {
                    return Err(HfError::bad_request(format!(
                        "LFS object {oid} for {path} has size {stored}, not {}",
                        size.unwrap_or(0)
                    )));
                }
                ops.push(Op::Put {
                    path: path.clone(),
                    data: pointer_text(oid, stored).into_bytes(),
                });
                lfs_paths.push(path.clone());
            }
            Line::Delete { path, folder } => {
                match tree.get(path) {
                    // A file deletion naming a folder deletes the folder (the Hub since 2024-04).
                    Some(e) if e.is_dir == *folder || e.is_dir => {}
                    _ if *folder => {
                        return Err(HfError::new(
                            StatusCode::NOT_FOUND,
                            format!("A folder with this name doesn't exist: {path}"),
                        )
                        .code("EntryNotFound"));
                    }
                    _ => {
                        return Err(HfError::new(
                            StatusCode::NOT_FOUND,
                            format!("A file with this name doesn't exist: {path}"),
                        )
                        .code("EntryNotFound"));
                    }
                }
                ops.push(Op::Delete { path: path.clone() });
            }
        }
    }
    if !too_big.is_empty() {
        return Err(HfError::bad_request(format!(
            "Your push was rejected because it contains files larger than 10 MiB. Please use https://git-lfs.github.com/ to store large files. Offending files: {}",
            too_big.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join(" ")
        )));
    }
    let attrs = match attrs {
        Some(a) => a,
        None => ctx.hub.store.gitattributes(id, tree).await?,
    };
    if let Some(updated) = add_lfs_rules(&attrs, &lfs_paths) {
        ops.retain(|op| !matches!(op, Op::Put { path, .. } if path == ".gitattributes"));
        ops.push(Op::Put {
            path: ".gitattributes".into(),
            data: updated.into_bytes(),
        });
    }
    if let Some(p) = path_conflict(tree, &ops) {
        return Err(HfError::bad_request(format!(
            "Invalid commit: '{p}' would be both a file and a folder"
        )));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(commit_target("main").unwrap(), "refs/heads/main");
        assert_eq!(commit_target("refs/pr/3").unwrap(), "refs/pr/3");
        assert!(commit_target(&"a".repeat(40)).is_err());
        assert!(commit_target("refs/tags/v1").is_err());
    }

    #[test]
    fn gitignore() {
        assert!(ignored("*.log\n", "a/b/x.log"));
        assert!(ignored("build/\n", "build/out.txt"));
        assert!(!ignored("*.log\n!keep.log\n", "keep.log"));
        assert!(!ignored("", "x"));
    }
}
