//! Thin async wrappers around the `git` command for bare repositories: refs, trees, blobs, logs
//! and `git fast-import` for writing commits. Git is run with no user or system config so the
//! host's settings never change what hubsim stores, and every revision or path is validated
//! before it reaches a command line.

use std::io;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A git command failed.
#[derive(Debug, thiserror::Error)]
#[error("git {args}: {message}")]
pub struct GitError {
    pub args: String,
    pub message: String,
}

impl From<io::Error> for GitError {
    fn from(e: io::Error) -> Self {
        GitError {
            args: String::new(),
            message: e.to_string(),
        }
    }
}

/// A `git` command for the bare repository at `repo`, with a clean environment.
pub fn command(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir")
        .arg(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

/// Runs git with `args`, returning stdout; a non-zero exit is an error carrying stderr.
pub async fn run(repo: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = command(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    if !out.status.success() {
        return Err(GitError {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// A new root commit holding `commit`'s tree, by `who`, with `message`: a branch's whole history
/// squashed into one commit.
pub async fn squash(repo: &Path, commit: &str, who: &str, message: &str) -> Result<String, GitError> {
    let tree = format!("{commit}^{{tree}}");
    let name = format!("user.name={who}");
    let email = format!("user.email={who}@users.noreply.huggingface.co");
    let out = run(repo, &["-c", &name, "-c", &email, "commit-tree", "-m", message, &tree]).await?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Creates a bare repository with `branch` as its default branch.
pub async fn init_bare(repo: &Path, branch: &str) -> Result<(), GitError> {
    let out = Command::new("git")
        .args(["init", "--bare", "-q", "-b", branch])
        .arg(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .await?;
    if !out.status.success() {
        return Err(GitError {
            args: "init".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Resolves a fully qualified ref or a 40-hex commit id to a commit id.
pub async fn resolve_commit(repo: &Path, spec: &str) -> Result<Option<String>, GitError> {
    let arg = format!("{spec}^{{commit}}");
    match run(repo, &["rev-parse", "--verify", "-q", "--end-of-options", &arg]).await {
        Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_string())),
        Err(_) => Ok(None),
    }
}

/// Every ref with the commit it points to (annotated tags peeled).
pub async fn refs(repo: &Path) -> Result<Vec<(String, String)>, GitError> {
    let out = run(
        repo,
        &["for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)"],
    )
    .await?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\0');
            let name = it.next()?.to_string();
            let obj = it.next()?.to_string();
            let peeled = it.next().unwrap_or("");
            Some((name, if peeled.is_empty() { obj } else { peeled.to_string() }))
        })
        .collect())
}

/// One line of `git ls-tree -r -t --long`.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub is_tree: bool,
    pub oid: String,
    pub size: u64,
    pub path: String,
}

/// Every blob and tree under `commit`, recursively, in git's path order.
pub async fn ls_tree(repo: &Path, commit: &str) -> Result<Vec<RawEntry>, GitError> {
    let out = run(
        repo,
        &["ls-tree", "-r", "-t", "-z", "--long", "--end-of-options", commit],
    )
    .await?;
    let mut entries = Vec::new();
    for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|b| *b == b'\t') else {
            continue;
        };
        let meta = String::from_utf8_lossy(&rec[..tab]);
        let path = String::from_utf8_lossy(&rec[tab + 1..]).to_string();
        let mut f = meta.split_whitespace();
        let (Some(_mode), Some(kind), Some(oid), Some(size)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        if kind == "commit" {
            continue; // submodules carry no content
        }
        entries.push(RawEntry {
            is_tree: kind == "tree",
            oid: oid.to_string(),
            size: size.parse().unwrap_or(0),
            path,
        });
    }
    Ok(entries)
}

/// A running `git cat-file --batch` that answers one object at a time.
pub struct CatFile {
    child: Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
}

impl CatFile {
    /// Starts the batch process for `repo`.
    pub fn start(repo: &Path) -> Result<Self, GitError> {
        let mut child = command(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?);
        Ok(CatFile { child, stdin, stdout })
    }

    /// Asks for `oid`; returns its size (`None` when missing). The caller must then consume
    /// exactly that many bytes with [`CatFile::read_body`] or [`CatFile::for_each_chunk`].
    pub async fn request(&mut self, oid: &str) -> Result<Option<u64>, GitError> {
        self.stdin.write_all(format!("{oid}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        read_header(&mut self.stdout).await
    }

    /// Reads a whole object body of `size` bytes (for small objects).
    pub async fn read_body(&mut self, size: u64) -> Result<Vec<u8>, GitError> {
        let mut buf = vec![0u8; size as usize];
        self.stdout.read_exact(&mut buf).await?;
        self.skip_newline().await?;
        Ok(buf)
    }

    /// Streams an object body of `size` bytes through `f` in chunks.
    pub async fn for_each_chunk(&mut self, size: u64, mut f: impl FnMut(&[u8])) -> Result<(), GitError> {
        let mut left = size;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = self.stdout.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            f(&buf[..n]);
            left -= n as u64;
        }
        self.skip_newline().await
    }

    async fn skip_newline(&mut self) -> Result<(), GitError> {
        let mut nl = [0u8; 1];
        self.stdout.read_exact(&mut nl).await?;
        Ok(())
    }

    /// Ends the batch process.
    pub async fn finish(mut self) {
        drop(self.stdin);
        let _ = self.child.wait().await;
    }
}

/// Reads one `cat-file --batch` answer header: the object's size, `None` when it is missing.
async fn read_header(stdout: &mut BufReader<tokio::process::ChildStdout>) -> Result<Option<u64>, GitError> {
    let mut header = String::new();
    stdout.read_line(&mut header).await?;
    if header.trim_end().ends_with("missing") {
        return Ok(None);
    }
    let size = header
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| GitError {
            args: "cat-file".into(),
            message: format!("bad header {header:?}"),
        })?;
    Ok(Some(size))
}

/// The contents of the blobs `oids` (`None` for a missing one), in order, read through one
/// `git cat-file --batch` whose requests are all written at once (no round trip per blob: a
/// tree of 100,000 small files is read in one pass). For small objects only.
pub async fn read_blobs(repo: &Path, oids: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, GitError> {
    let CatFile {
        mut child,
        mut stdin,
        mut stdout,
    } = CatFile::start(repo)?;
    let count = oids.len();
    let writer = tokio::spawn(async move {
        let mut requests = Vec::with_capacity(count * 41);
        for oid in &oids {
            requests.extend_from_slice(oid.as_bytes());
            requests.push(b'\n');
        }
        stdin.write_all(&requests).await
    });
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(size) = read_header(&mut stdout).await? else {
            out.push(None);
            continue;
        };
        let mut body = vec![0u8; size as usize + 1];
        stdout.read_exact(&mut body).await?;
        body.pop();
        out.push(Some(body));
    }
    writer.await.map_err(io::Error::other)??;
    let _ = child.wait().await;
    Ok(out)
}

/// Starts `git cat-file blob <oid>` and returns the child, whose stdout streams the content.
pub fn blob_child(repo: &Path, oid: &str) -> Result<Child, GitError> {
    Ok(command(repo)
        .args(["cat-file", "blob", oid])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Feeds a complete fast-import stream to `git fast-import` and waits for it.
pub async fn fast_import(repo: &Path, stream: &[u8]) -> Result<(), GitError> {
    let mut child = command(repo)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| io::Error::other("no stdin"))?;
    let write = async {
        stdin.write_all(stream).await?;
        stdin.shutdown().await?;
        drop(stdin);
        Ok::<_, io::Error>(())
    };
    let write_result = write.await;
    let out = child.wait_with_output().await?;
    if !out.status.success() || write_result.is_err() {
        return Err(GitError {
            args: "fast-import".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// One commit of a history listing.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub author: String,
    pub time: u64,
    pub title: String,
    pub message: String,
}

/// The history reachable from `commit`, newest first, `skip` then at most `limit` entries.
pub async fn log(repo: &Path, commit: &str, skip: usize, limit: usize) -> Result<Vec<CommitInfo>, GitError> {
    let skip = format!("--skip={skip}");
    let max = format!("--max-count={limit}");
    let out = run(
        repo,
        &[
            "log",
            "--format=%H%x00%an%x00%ct%x00%s%x00%b%x1e",
            &skip,
            &max,
            "--end-of-options",
            commit,
        ],
    )
    .await?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .split('\x1e')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            let mut f = rec.split('\0');
            Some(CommitInfo {
                id: f.next()?.to_string(),
                author: f.next()?.to_string(),
                time: f.next()?.parse().ok()?,
                title: f.next()?.to_string(),
                message: f.next().unwrap_or("").trim_end().to_string(),
            })
        })
        .collect())
}

/// Number of commits reachable from `commit`.
pub async fn count(repo: &Path, commit: &str) -> Result<u64, GitError> {
    let out = run(repo, &["rev-list", "--count", "--end-of-options", commit]).await?;
    Ok(String::from_utf8_lossy(&out).trim().parse().unwrap_or(0))
}

/// Points `refname` at `new`; with `old`, only if it still points there (`""` = must not exist).
pub async fn update_ref(repo: &Path, refname: &str, new: &str, old: Option<&str>) -> Result<(), GitError> {
    let mut args = vec!["update-ref", "--end-of-options", refname, new];
    if let Some(o) = old {
        args.push(o);
    }
    run(repo, &args).await.map(|_| ())
}

/// Deletes `refname`.
pub async fn delete_ref(repo: &Path, refname: &str) -> Result<(), GitError> {
    run(repo, &["update-ref", "-d", "--end-of-options", refname])
        .await
        .map(|_| ())
}

/// Creates an annotated tag object `name` on `commit` and returns the tag ref's target.
pub async fn tag(repo: &Path, name: &str, commit: &str, message: &str, who: &str) -> Result<(), GitError> {
    let mut c = command(repo);
    let email = format!("{who}@users.hubsim");
    c.env("GIT_COMMITTER_NAME", who).env("GIT_COMMITTER_EMAIL", &email);
    let msg = if message.is_empty() { name } else { message };
    let out = c
        .args(["tag", "-a", "-m", msg, "--end-of-options", name, commit])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await?;
    if !out.status.success() {
        return Err(GitError {
            args: "tag".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    Ok(())
}
