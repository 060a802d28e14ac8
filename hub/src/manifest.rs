//! The manifest: every file of the source at one pinned commit (path, size, kind, hashes), the
//! repo's visibility, and the `--include`/`--exclude` filter applied before planning. Paths from a
//! listing are validated here: a hostile listing cannot make anyone write outside the repo.

use crate::error::{Error, Result};
use crate::reporef::RepoRef;

/// One file of a repo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    /// Stored with LFS (pointer in git, bytes in the object store).
    pub lfs: bool,
    /// sha256 of the content when the listing gives it (LFS oid; ModelScope gives it for all).
    pub sha256: Option<String>,
    /// Git blob id when the listing gives it (Hugging Face regular files).
    pub git_oid: Option<String>,
}

/// The source at one commit.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub repo: RepoRef,
    /// The pinned commit every byte is read at.
    pub commit: String,
    pub private: bool,
    /// Gated (Hugging Face): its files are read only by users granted access, so its copy is
    /// private.
    pub gated: bool,
    /// The license as the source names it (a Hugging Face license id, ModelScope's `License`),
    /// when it says one.
    pub license: Option<String>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Whether the copy must be private: the source is private, or gated (a public copy would
    /// hand its files to anyone, past the gate).
    pub fn copy_private(&self) -> bool {
        self.private || self.gated
    }

    /// Sum of file sizes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Keeps files matching any `include` (all when empty) and no `exclude` glob.
    pub fn filter(&mut self, include: &[String], exclude: &[String]) {
        self.files.retain(|f| {
            (include.is_empty() || include.iter().any(|g| glob(g, &f.path)))
                && !exclude.iter().any(|g| glob(g, &f.path))
        });
    }
}

/// Rejects unsafe paths from a listing: empty, absolute, `..` or `.` segments (split on `/` or
/// `\`), NUL. A backslash is an ordinary character of a name on the hubs (the Hub stores
/// `a\b.txt`), and nothing here writes a path to disk, so such a file migrates.
pub fn check_path(p: &str) -> Result<()> {
    let bad = p.is_empty()
        || p.starts_with('/')
        || p.contains('\0')
        || p.split('/').any(str::is_empty)
        || p.split(['/', '\\']).any(|s| s == "." || s == "..");
    if bad {
        return Err(Error::Protocol(format!(
            "the source listing has an unsafe path {p:?}; refusing to migrate it"
        )));
    }
    // A newline or other control character breaks line-framed plumbing (git's among others)
    // and no hub shows such a name sanely: refused before anything is sent.
    if p.chars().any(char::is_control) {
        return Err(Error::Input(format!(
            "the source has a file whose name holds a control character, {p:?}: hubmigrate does \
             not migrate such names; rename it in the source first"
        )));
    }
    Ok(())
}

/// `fnmatch`-style matching as `huggingface_hub`'s `allow_patterns` does it: `*` matches any run
/// of characters (slashes included), `?` one character, `[...]` a class; a pattern ending in `/`
/// matches everything below that folder.
pub fn glob(pattern: &str, path: &str) -> bool {
    let owned;
    let pattern = if pattern.ends_with('/') {
        owned = format!("{pattern}*");
        owned.as_str()
    } else {
        pattern
    };
    fnmatch(pattern.as_bytes(), path.as_bytes())
}

fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    // Iterative with single-star backtracking: linear in practice, no recursion blow-up.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some(pi);
                    mark = si;
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&p[pi..], s[si])
                        && matched
                    {
                        pi += len;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some(st) => {
                pi = st + 1;
                mark += 1;
                si = mark;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches one character against the class at the start of `p`; returns (hit, class length).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let neg = matches!(p.get(1), Some(b'!') | Some(b'^'));
    let start = if neg { 2 } else { 1 };
    let end = start + p.get(start + 1..)?.iter().position(|&b| b == b']')? + 1;
    let body = &p[start..end];
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    Some((hit != neg, end + 1))
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-23T08:00:00.000Z`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+', '.']).next()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times() {
        assert_eq!(super::parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(super::parse_rfc3339("2026-11-23T08:00:00.000Z"), Some(1_795_420_800));
        assert_eq!(super::parse_rfc3339("2000-03-01T00:00:01Z"), Some(951_868_801));
        assert_eq!(super::parse_rfc3339("nope"), None);
    }

    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.safetensors", "a/b/model.safetensors"));
        assert!(glob("weights/", "weights/x/y.bin"));
        assert!(!glob("weights/", "other/weights.bin"));
        assert!(glob("file[0-9].txt", "file3.txt") && !glob("file[!0-9].txt", "file3.txt"));
        assert!(glob("*", "") && !glob("a", ""));
        assert!(glob("a*b*c", "a--b--c") && !glob("a*b*c", "a--b--"));
    }

    #[test]
    fn unsafe_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a\0b",
            "a\\..\\b",
            "..\\ddd",
            "a\nb",
            "a\tb",
            "a\u{7f}",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("dir with space/ünï [1].txt").is_ok());
        assert!(check_path("windows\\style.txt").is_ok());
    }
}
