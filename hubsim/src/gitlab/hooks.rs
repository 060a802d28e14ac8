//! GitLab's push rules, enforced by git itself: every project's bare repo gets
//! `receive.hideRefs` for `refs/merge-requests` and `refs/pr` (git answers "deny updating a
//! hidden ref" per ref, and the other refs of a non-atomic push land) and two hook scripts that
//! run this binary (`hubsim git-hook pre-receive|post-receive`):
//!
//! - pre-receive refuses, for the whole push, deleting or force-pushing the default branch
//!   (GitLab protects it) and introducing LFS pointers whose objects are not stored and linked to
//!   the project (GitLab's LFS integrity check);
//! - post-receive points `HEAD` at a pushed branch when it names none that exists: GitLab takes
//!   the default branch from the first push.
//!
//! The hooks are one Rust implementation rather than shell so the pointer parser is the same one
//! the pull mirror uses. Hooks are synchronous: they run in their own short-lived process.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{HookArgs, HookKind};
use crate::repo::RepoId;
use crate::store::{LfsStore, Store, StoreError};
use crate::util::is_hex;

/// Refs nobody may push to (merge request heads, and the Hub's pull request refs).
pub const HIDDEN_REFS: [&str; 2] = ["refs/merge-requests", "refs/pr"];

pub const DEFAULT_BRANCH_DELETE: &str = "The default branch of a project cannot be deleted.";
pub const PROTECTED_FORCE_PUSH: &str = "You are not allowed to force push code to a protected branch on this project.";
pub const LFS_MISSING: &str =
    "LFS objects are missing. Ensure LFS is properly set up or try a manual \"git lfs push --all\".";

/// Blobs at least this large are never LFS pointers (the git-lfs spec caps pointers below it).
pub const MAX_POINTER: usize = 1024;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// An LFS pointer found in a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub oid: String,
    /// The `size` line, when the pointer has a well-formed one.
    pub size: Option<u64>,
}

/// Recognises an LFS pointer the way GitLab's integrity check does: a small blob that starts
/// with the spec's version line and names a sha256 oid. Deliberately looser than git-lfs's own
/// parser (no line-order or trailing-newline rules), so that nothing resembling a pointer slips
/// past the check.
pub fn parse_pointer(data: &[u8]) -> Option<Pointer> {
    if data.len() >= MAX_POINTER {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    if !text.starts_with("version https://git-lfs.github.com/spec/v1") {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(h) = line.strip_prefix("oid sha256:") {
            oid = is_hex(h, 64).then(|| h.to_string());
        } else if let Some(s) = line.strip_prefix("size ") {
            size = s.parse().ok();
        }
    }
    Some(Pointer { oid: oid?, size })
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir").arg(dir).env("LC_ALL", "C").stdin(Stdio::null());
    c
}

/// Runs git in `dir` feeding `input` on stdin; returns stdout, or stderr as the error.
fn pipe(dir: &Path, args: &[&str], input: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut child = git(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| io::Error::other("no stdin"))?;
    // Written from a thread: git answers while it reads, and both pipes have bounded buffers.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "git {}: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn output(dir: &Path, args: &[&str]) -> io::Result<Option<String>> {
    let out = git(dir).args(args).stderr(Stdio::null()).output()?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// The LFS pointers among the blobs that `git rev-list --objects REVS` lists (e.g. the new
/// commits of a push: `NEW... --not --all`, or every branch and tag: `--branches --tags`),
/// each oid once, in listing order.
pub fn scan_pointers(dir: &Path, revs: &[&str]) -> io::Result<Vec<Pointer>> {
    let limit = format!("--filter=blob:limit={MAX_POINTER}");
    let mut args = vec!["rev-list", "--objects", "--no-object-names", limit.as_str()];
    args.extend_from_slice(revs);
    let listed = pipe(dir, &args, Vec::new())?;
    let checked = pipe(
        dir,
        &["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        listed,
    )?;
    let mut blobs = Vec::new();
    for line in String::from_utf8_lossy(&checked).lines() {
        let mut f = line.split(' ');
        if let (Some(oid), Some("blob"), Some(size)) = (f.next(), f.next(), f.next())
            && size.parse::<usize>().is_ok_and(|s| s < MAX_POINTER && s > 40)
        {
            blobs.extend_from_slice(oid.as_bytes());
            blobs.push(b'\n');
        }
    }
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let contents = pipe(dir, &["cat-file", "--batch"], blobs)?;
    let mut out: Vec<Pointer> = Vec::new();
    let mut rest = contents.as_slice();
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        rest = &rest[nl + 1..];
        let Some(size) = header.split(' ').nth(2).and_then(|s| s.parse::<usize>().ok()) else {
            continue; // "<oid> missing"
        };
        if rest.len() < size {
            return Err(io::Error::other("git cat-file: short output"));
        }
        if let Some(p) = parse_pointer(&rest[..size])
            && !out.iter().any(|q| q.oid == p.oid)
        {
            out.push(p);
        }
        rest = rest.get(size + 1..).unwrap_or(&[]);
    }
    Ok(out)
}

/// One line of a receive hook's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub old: String,
    pub new: String,
    pub name: String,
}

fn parse_updates(input: &str) -> Vec<Update> {
    input
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Update {
                old: f.next()?.to_string(),
                new: f.next()?.to_string(),
                name: f.next()?.to_string(),
            })
        })
        .collect()
}

/// Runs a hook (`hubsim git-hook ...`) and returns its exit code.
pub fn run(args: &HookArgs) -> i32 {
    let dir = PathBuf::from(std::env::var_os("GIT_DIR").unwrap_or_else(|| ".".into()));
    let mut input = String::new();
    if let Err(e) = io::stdin().read_to_string(&mut input) {
        eprintln!("GitLab: internal error: {e}");
        return 1;
    }
    let updates = parse_updates(&input);
    match args.hook {
        HookKind::PreReceive => match pre_receive(&dir, &args.data, &updates) {
            Ok(None) => 0,
            Ok(Some(message)) => {
                eprintln!("GitLab: {message}");
                1
            }
            Err(e) => {
                // Fail closed: a push the checks could not inspect is refused.
                eprintln!("GitLab: internal error while checking the push: {e}");
                1
            }
        },
        HookKind::PostReceive => {
            if let Err(e) = post_receive(&dir, &updates) {
                eprintln!("GitLab: could not set the default branch: {e}");
            }
            0
        }
    }
}

/// The refusal message for a push, if any.
fn pre_receive(dir: &Path, data: &Path, updates: &[Update]) -> io::Result<Option<String>> {
    let head = output(dir, &["symbolic-ref", "-q", "HEAD"])?.unwrap_or_default();
    for u in updates.iter().filter(|u| u.name == head) {
        if u.new == ZERO {
            return Ok(Some(DEFAULT_BRANCH_DELETE.into()));
        }
        if u.old != ZERO {
            let ff = git(dir)
                .args(["merge-base", "--is-ancestor", &u.old, &u.new])
                .stderr(Stdio::null())
                .status()?;
            match ff.code() {
                Some(0) => {}
                Some(1) => return Ok(Some(PROTECTED_FORCE_PUSH.into())),
                _ => return Err(io::Error::other("git merge-base failed")),
            }
        }
    }
    let news: Vec<&str> = updates
        .iter()
        .filter(|u| u.new != ZERO)
        .map(|u| u.new.as_str())
        .collect();
    if news.is_empty() {
        return Ok(None);
    }
    let mut revs = news;
    revs.extend(["--not", "--all"]);
    let lfs = LfsStore::open(data)?;
    for p in scan_pointers(dir, &revs)? {
        let linked = dir.join("hubsim-lfs").join(&p.oid).is_file();
        if !linked || !lfs.path(&p.oid).is_file() {
            return Ok(Some(LFS_MISSING.into()));
        }
    }
    Ok(None)
}

/// Picks the default branch for a repo whose `HEAD` names no existing branch: `main`, else
/// `master`, else the first of `candidates`.
pub fn choose_default(candidates: &[String]) -> Option<&String> {
    candidates
        .iter()
        .find(|b| *b == "refs/heads/main")
        .or_else(|| candidates.iter().find(|b| *b == "refs/heads/master"))
        .or_else(|| candidates.first())
}

fn post_receive(dir: &Path, updates: &[Update]) -> io::Result<()> {
    if output(dir, &["rev-parse", "-q", "--verify", "HEAD"])?.is_some() {
        return Ok(());
    }
    let mut candidates: Vec<String> = updates
        .iter()
        .filter(|u| u.new != ZERO && u.name.starts_with("refs/heads/"))
        .map(|u| u.name.clone())
        .collect();
    if candidates.is_empty() {
        let all = output(dir, &["for-each-ref", "--format=%(refname)", "refs/heads/"])?.unwrap_or_default();
        candidates = all.lines().map(str::to_string).collect();
    }
    if let Some(branch) = choose_default(&candidates) {
        git(dir).args(["symbolic-ref", "HEAD", branch]).status()?;
    }
    Ok(())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn hook_script(hook: &str, exe: &Path, data: &Path) -> String {
    let exe = exe.to_string_lossy();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
    format!(
        "#!/bin/sh\n# hubsim (git flavor): GitLab's push rules. Generated by hubsim; do not edit.\nexec {} git-hook {hook} --data {}\n",
        sh_quote(exe),
        sh_quote(&data.to_string_lossy())
    )
}

/// Gives a project's bare repo GitLab's push rules: hidden refs and the two hooks.
pub async fn prepare(store: &Store, id: &RepoId) -> Result<(), StoreError> {
    let dir = store.repo_dir(id);
    let _ = crate::store::git::run(&dir, &["config", "--unset-all", "receive.hideRefs"]).await;
    for r in HIDDEN_REFS {
        crate::store::git::run(&dir, &["config", "--add", "receive.hideRefs", r]).await?;
    }
    let exe = std::env::current_exe()?;
    let data = tokio::fs::canonicalize(store.root()).await?;
    for hook in ["pre-receive", "post-receive"] {
        store.install_hook(id, hook, &hook_script(hook, &exe, &data)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn pointers() {
        let canonical = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        assert_eq!(
            parse_pointer(canonical.as_bytes()),
            Some(Pointer {
                oid: OID.into(),
                size: Some(12345)
            })
        );
        // Looser than git-lfs: no trailing newline, CRLF, extension lines, any order.
        let loose = format!(
            "version https://git-lfs.github.com/spec/v1\r\nsize 7\r\next-0-foo sha256:{OID}\r\noid sha256:{OID}"
        );
        assert_eq!(parse_pointer(loose.as_bytes()).map(|p| p.size), Some(Some(7)));
        let no_size = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\n");
        assert_eq!(parse_pointer(no_size.as_bytes()).unwrap().size, None);
        for bad in [
            "hello".to_string(),
            format!("oid sha256:{OID}\nsize 1\n"),
            format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 1\n",
                &OID[..63]
            ),
            format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 1\n",
                OID.to_uppercase()
            ),
            format!("version https://git-lfs.github.com/spec/v1\noid md5:{OID}\nsize 1\n"),
        ] {
            assert_eq!(parse_pointer(bad.as_bytes()), None, "{bad:?}");
        }
        let mut big = canonical.clone().into_bytes();
        big.resize(MAX_POINTER, b'\n');
        assert_eq!(
            parse_pointer(&big),
            None,
            "blobs of 1024 bytes or more are never pointers"
        );
        big.truncate(MAX_POINTER - 1);
        assert!(parse_pointer(&big).is_some());
    }

    #[test]
    fn updates_and_default_branch() {
        let u = parse_updates(&format!(
            "{ZERO} {OID_C} refs/heads/dev\n{ZERO} {OID_C} refs/heads/main\n"
        ));
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].name, "refs/heads/main");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = names(&["refs/heads/dev", "refs/heads/master", "refs/heads/main"]);
        assert_eq!(choose_default(&c).map(String::as_str), Some("refs/heads/main"));
        let c = names(&["refs/heads/dev", "refs/heads/master"]);
        assert_eq!(choose_default(&c).map(String::as_str), Some("refs/heads/master"));
        let c = names(&["refs/heads/dev", "refs/heads/x"]);
        assert_eq!(choose_default(&c).map(String::as_str), Some("refs/heads/dev"));
        assert_eq!(choose_default(&[]), None);
    }

    const OID_C: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn hook_scripts_quote_paths() {
        let s = hook_script("pre-receive", Path::new("/opt/it's/hubsim"), Path::new("/data dir"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("exec '/opt/it'\\''s/hubsim' git-hook pre-receive --data '/data dir'\n"));
    }
}
