//! git and git-lfs, as the end-to-end tests use them to look at what a migration pushed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use super::*;

/// A git command with isolated config; `token` (alice's) goes in an Authorization header.
pub fn git_cmd(token: Option<&str>) -> Command {
    let mut c = Command::new("git");
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_LFS_SKIP_SMUDGE", "1");
    if let Some(t) = token {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{t}"));
        c.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {basic}"));
    }
    c
}

pub fn git(dir: &Path, args: &[&str], token: Option<&str>) -> String {
    let out = git_cmd(token).current_dir(dir).args(args).output().expect("git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every ref of a remote: name -> object.
pub fn refs(url: &str) -> BTreeMap<String, String> {
    let out = git(Path::new("."), &["ls-remote", url], Some(ALICE));
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, n)| *n != "HEAD" && !n.ends_with("^{}"))
        .map(|(o, n)| (n.to_string(), o.to_string()))
        .collect()
}

/// Clones `url` with LFS content (the real git-lfs smudging), runs `git lfs fsck`, and returns
/// every file's sha256.
pub fn clone_with_lfs(url: &str, into: &Path) -> BTreeMap<String, String> {
    let out = git_cmd(Some(ALICE))
        .env_remove("GIT_LFS_SKIP_SMUDGE")
        .args([
            "-c",
            "filter.lfs.process=git-lfs filter-process",
            "-c",
            "filter.lfs.required=true",
            "-c",
            "filter.lfs.smudge=git-lfs smudge -- %f",
            "-c",
            "filter.lfs.clean=git-lfs clean -- %f",
            "clone",
            "--quiet",
            url,
        ])
        .arg(into)
        .output()
        .expect("git clone");
    assert!(
        out.status.success(),
        "clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fsck = git_cmd(Some(ALICE))
        .current_dir(into)
        .args(["lfs", "fsck"])
        .output()
        .expect("git lfs fsck");
    assert!(
        fsck.status.success(),
        "git lfs fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let mut files = BTreeMap::new();
    let listed = git(into, &["ls-files", "-z"], None);
    for path in listed.split('\0').filter(|p| !p.is_empty()) {
        let data = std::fs::read(into.join(path)).expect("read file");
        files.insert(path.to_string(), hex::encode(Sha256::digest(&data)));
    }
    files
}
