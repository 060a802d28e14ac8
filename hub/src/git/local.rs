//! Running git: a bare scratch repository the coordinator reads history from, `ls-remote`, fetch
//! and push. Credentials never reach git's command line or a URL: they travel as an
//! `http.extraHeader` set through `GIT_CONFIG_*` environment variables, which no process
//! listing shows and git never echoes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::redact::Secret;

/// Who git authenticates as (HTTP Basic: a user name and the token as password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitAuth {
    pub username: String,
    pub token: Option<Secret>,
}

/// A remote repository: its URL (never with credentials) and how to authenticate.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: String,
    pub auth: GitAuth,
}

/// A git command with an isolated configuration: no system or global config, no prompts, no
/// credential helpers, LFS smudging off; the remote's token (if any) as an Authorization header
/// scoped to the remote's origin (`http.<origin>/.extraHeader`). Redirects are not followed:
/// after one, git sends every later request of the session (with the header it read for the
/// first URL) straight to the new host, so a remote that redirects is refused instead.
pub fn command(remote: Option<&Remote>) -> Command {
    let mut cmd = Command::new("git");
    let mut config: Vec<(String, String)> = vec![
        ("credential.helper".into(), String::new()),
        ("http.followRedirects".into(), "false".into()),
    ];
    if let Some(Remote {
        url,
        auth: GitAuth {
            username,
            token: Some(token),
        },
    }) = remote
    {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", token.expose()));
        config.push((
            format!("http.{}/.extraHeader", origin(url)),
            format!("Authorization: Basic {basic}"),
        ));
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_CONFIG_COUNT", config.len().to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (i, (k, v)) in config.into_iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), k)
            .env(format!("GIT_CONFIG_VALUE_{i}"), v);
    }
    cmd
}

/// `scheme://host[:port]` of a remote URL (what git matches `http.<url>.*` against).
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_string(), |u| u.origin().ascii_serialization())
}

/// Runs a git command to completion; a failure carries git's own (redacted) complaint.
async fn output(mut cmd: Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("cannot run git ({what}): {e}"))))?;
    if !out.status.success() {
        return Err(Error::Git {
            what: what.to_string(),
            message: complaint(&out.stderr),
        });
    }
    Ok(out.stdout)
}

/// The useful lines of git's stderr, with any URL redacted.
fn complaint(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    if w.contains("://") {
                        crate::redact::url(w)
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let joined = lines.join("; ");
    if joined.is_empty() { "git failed".into() } else { joined }
}

/// The refs a remote advertises, and the branch its HEAD names.
#[derive(Clone, Debug, Default)]
pub struct RemoteRefs {
    pub head: Option<String>,
    /// (ref name, object id), peeled tag entries (`^{}`) left out.
    pub refs: Vec<(String, String)>,
}

impl RemoteRefs {
    /// The object a ref points at.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.refs.iter().find(|(n, _)| n == name).map(|(_, o)| o.as_str())
    }
}

/// `git ls-remote --symref`: every ref of a remote, without fetching anything.
pub async fn ls_remote(remote: &Remote) -> Result<RemoteRefs> {
    let mut cmd = command(Some(remote));
    cmd.args(["ls-remote", "--symref", &remote.url]);
    let out = output(cmd, &format!("listing the refs of {}", crate::redact::url(&remote.url))).await?;
    let mut refs = RemoteRefs::default();
    for line in String::from_utf8_lossy(&out).lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                refs.head = Some(target.trim_start_matches("refs/heads/").to_string());
            }
        } else if name != "HEAD" && !name.ends_with("^{}") {
            refs.refs.push((name.to_string(), left.to_string()));
        }
    }
    Ok(refs)
}

/// A blob of a commit's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeBlob {
    pub path: String,
    pub oid: String,
    pub size: u64,
}

/// How a push went for one ref.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRef {
    pub name: String,
    /// Landed (created, updated or already up to date).
    pub ok: bool,
    /// git's summary: `[new branch]`, `[up to date]`, `[remote rejected] (reason)`...
    pub summary: String,
}

/// A bare scratch repository in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct LocalRepo {
    dir: PathBuf,
}

impl Drop for LocalRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl LocalRepo {
    /// Creates an empty bare repository under the system's temporary directory.
    pub async fn init() -> Result<Self> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hubmigrate-git-{}-{nanos}-{seq}", std::process::id()));
        let repo = LocalRepo { dir };
        let mut cmd = command(None);
        cmd.args(["init", "--bare", "--quiet"]).arg(&repo.dir);
        output(cmd, "creating a scratch repository").await?;
        Ok(repo)
    }

    /// The repository's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn git(&self, remote: Option<&Remote>) -> Command {
        let mut cmd = command(remote);
        cmd.arg("--git-dir").arg(&self.dir);
        cmd
    }

    /// Fetches `refspecs` from `remote` (forced updates, no tags beyond those asked for).
    pub async fn fetch(&self, remote: &Remote, refspecs: &[String]) -> Result<()> {
        for batch in refspecs.chunks(500) {
            let mut cmd = self.git(Some(remote));
            cmd.args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", &remote.url])
                .args(batch);
            output(cmd, &format!("fetching from {}", crate::redact::url(&remote.url))).await?;
        }
        Ok(())
    }

    /// The commit a revision names here, if any.
    pub async fn commit_of(&self, rev: &str) -> Result<Option<String>> {
        let mut cmd = self.git(None);
        cmd.args([
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ]);
        match output(cmd, "resolving a revision").await {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_string())),
            Err(Error::Git { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every blob of `commit`'s tree (submodules, which have no content here, are left out).
    pub async fn ls_tree(&self, commit: &str) -> Result<Vec<TreeBlob>> {
        let mut cmd = self.git(None);
        cmd.args(["ls-tree", "-r", "-l", "-z", "--full-tree", commit]);
        let out = output(cmd, "listing a commit").await?;
        let mut blobs = Vec::new();
        for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8(rec.to_vec())
                .map_err(|_| Error::Protocol("a path in the source history is not UTF-8".into()))?;
            let (meta, path) = rec
                .split_once('\t')
                .ok_or_else(|| Error::Protocol(format!("unexpected ls-tree line {rec:?}")))?;
            let f: Vec<&str> = meta.split_whitespace().collect();
            if let [_, "blob", oid, size] = f.as_slice() {
                blobs.push(TreeBlob {
                    path: path.to_string(),
                    oid: oid.to_string(),
                    size: size
                        .parse()
                        .map_err(|_| Error::Protocol(format!("bad size in {rec:?}")))?,
                });
            }
        }
        Ok(blobs)
    }

    /// Every blob reachable from `tips` (their whole history), with a path it appears under.
    pub async fn history_blobs(&self, tips: &[String]) -> Result<Vec<TreeBlob>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = self.git(None);
        cmd.args(["rev-list", "--objects", "--end-of-options"]).args(tips);
        let listed = output(cmd, "walking the history").await?;
        let mut cmd = self.git(None);
        cmd.args([
            "cat-file",
            "--batch-check=%(objecttype) %(objectname) %(objectsize) %(rest)",
        ]);
        let checked = feed(cmd, listed, "sizing the history's objects").await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&checked).lines() {
            let mut f = line.splitn(4, ' ');
            if f.next() != Some("blob") {
                continue;
            }
            let (Some(oid), Some(size)) = (f.next(), f.next().and_then(|s| s.parse().ok())) else {
                continue;
            };
            out.push(TreeBlob {
                path: f.next().unwrap_or("").to_string(),
                oid: oid.to_string(),
                size,
            });
        }
        Ok(out)
    }

    /// Reads blobs whole (use for small ones: pointers, `.gitattributes`).
    pub async fn read_small(&self, oids: &[&str]) -> Result<HashMap<String, Vec<u8>>> {
        let mut out = HashMap::new();
        self.each_blob(oids, |oid, chunk, _| {
            out.entry(oid.to_string())
                .or_insert_with(Vec::new)
                .extend_from_slice(chunk);
        })
        .await?;
        Ok(out)
    }

    /// Streams the content of each blob through `f(oid, chunk, is_last)`, one blob after the
    /// other, with bounded memory (one `git cat-file --batch`).
    pub async fn each_blob(&self, oids: &[&str], mut f: impl FnMut(&str, &[u8], bool)) -> Result<()> {
        if oids.is_empty() {
            return Ok(());
        }
        let mut cmd = self.git(None);
        cmd.args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Protocol("git: no stdin".into()))?;
        let input: Vec<u8> = oids.iter().flat_map(|o| format!("{o}\n").into_bytes()).collect();
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
        let mut out = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| Error::Protocol("git: no stdout".into()))?,
        );
        let mut buf = vec![0u8; 64 * 1024];
        for oid in oids {
            let mut header = String::new();
            out.read_line(&mut header).await?;
            let fields: Vec<&str> = header.split_whitespace().collect();
            let size: u64 = match fields.as_slice() {
                [_, "blob", size] => size.parse().map_err(|_| Error::Protocol(format!("git: {header:?}")))?,
                _ => {
                    return Err(Error::Protocol(format!(
                        "git cannot read blob {oid}: {}",
                        header.trim()
                    )));
                }
            };
            let mut left = size;
            if left == 0 {
                f(oid, &[], true);
            }
            while left > 0 {
                let n = (left as usize).min(buf.len());
                out.read_exact(&mut buf[..n]).await?;
                left -= n as u64;
                f(oid, &buf[..n], left == 0);
            }
            let mut nl = [0u8; 1];
            out.read_exact(&mut nl).await?;
        }
        let _ = writer.await;
        let _ = child.wait().await;
        Ok(())
    }

    /// Pushes `refspecs` (not atomically: each ref lands or is refused on its own) and says how
    /// each went. An error only when git could not talk to the remote at all.
    pub async fn push(&self, remote: &Remote, refspecs: &[String]) -> Result<Vec<PushedRef>> {
        let mut cmd = self.git(Some(remote));
        cmd.args(["push", "--porcelain", "--no-verify", &remote.url])
            .args(refspecs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().await?;
        let results = parse_porcelain(&String::from_utf8_lossy(&out.stdout));
        if results.is_empty() && !out.status.success() {
            return Err(Error::Git {
                what: format!("pushing to {}", crate::redact::url(&remote.url)),
                message: complaint(&out.stderr),
            });
        }
        let hook = complaint(&out.stderr);
        Ok(results
            .into_iter()
            .map(|mut r| {
                if !r.ok && r.summary.contains("pre-receive hook declined") {
                    r.summary = format!("{} ({hook})", r.summary);
                }
                r
            })
            .collect())
    }
}

/// Parses `git push --porcelain` lines: `<flag>\t<src>:<dst>\t<summary>`.
pub fn parse_porcelain(text: &str) -> Vec<PushedRef> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let flag = f.next()?;
            let spec = f.next()?;
            let summary = f.next().unwrap_or("").to_string();
            let name = spec.rsplit_once(':').map(|(_, d)| d).unwrap_or(spec).to_string();
            let ok = matches!(flag, " " | "+" | "-" | "*" | "=");
            (flag.len() == 1).then_some(PushedRef { name, ok, summary })
        })
        .collect()
}

/// Runs `cmd` with `input` on stdin and returns its stdout.
async fn feed(mut cmd: Command, input: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Protocol("git: no stdin".into()))?;
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let out = child.wait_with_output().await?;
    let _ = writer.await;
    if !out.status.success() {
        return Err(Error::Git {
            what: what.into(),
            message: complaint(&out.stderr),
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_results() {
        let text = "To http://h/a.git\n=\trefs/heads/main:refs/heads/main\t[up to date]\n!\trefs/heads/x:refs/merge-requests/1\t[remote rejected] (deny updating a hidden ref)\n*\trefs/tags/v1:refs/tags/v1\t[new tag]\nDone\n";
        let r = parse_porcelain(text);
        assert_eq!(r.len(), 3);
        assert!(r[0].ok && !r[1].ok && r[2].ok);
        assert_eq!(r[1].name, "refs/merge-requests/1");
        assert!(r[1].summary.contains("hidden ref"));
    }

    #[test]
    fn git_complaints_lose_credentials() {
        let m = complaint(b"fatal: unable to access 'https://u:tok@h/x.git/': 403\nhint: foo\n");
        assert!(!m.contains("tok") && m.contains("***@h"), "{m}");
    }
}
