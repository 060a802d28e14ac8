//! A repository's file tree at one commit, as the hub APIs present it: files with their git blob
//! id, real size and (for LFS files) the pointer's sha256, plus the directories between them.
//! Trees are immutable per commit, so the store caches them.

use std::collections::HashMap;

/// An LFS pointer read from a blob (git-lfs spec v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsPointer {
    pub oid: String,
    pub size: u64,
    /// Byte length of the pointer blob itself.
    pub pointer_size: u64,
}

/// Largest blob that is checked for being a pointer (the spec caps pointers at 1024 bytes).
pub const MAX_POINTER: u64 = 1024;

const VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1\n";

/// Parses an LFS pointer; `None` when `data` is not one.
pub fn parse_pointer(data: &[u8]) -> Option<LfsPointer> {
    if data.len() as u64 > MAX_POINTER {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let rest = text.strip_prefix(VERSION_LINE)?;
    if !rest.ends_with('\n') {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in rest.trim_end_matches('\n').split('\n') {
        let (k, v) = line.split_once(' ')?;
        match k {
            "oid" => oid = Some(v.strip_prefix("sha256:")?.to_string()),
            "size" => size = Some(v.parse::<u64>().ok()?),
            _ if k.starts_with("ext-") => {}
            _ => return None,
        }
    }
    let oid = oid?;
    if !crate::util::is_hex(&oid, 64) {
        return None;
    }
    Some(LfsPointer {
        oid,
        size: size?,
        pointer_size: data.len() as u64,
    })
}

/// The canonical pointer text for an object.
pub fn pointer_text(oid: &str, size: u64) -> String {
    format!("{VERSION_LINE}oid sha256:{oid}\nsize {size}\n")
}

/// A file or directory in a tree.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub is_dir: bool,
    /// Git object id: blob id for files (of the pointer for LFS files), tree id for directories.
    pub oid: String,
    /// Content size: the LFS object's size for LFS files, the blob size otherwise, 0 for dirs.
    pub size: u64,
    pub lfs: Option<LfsPointer>,
}

impl Entry {
    /// The final path segment.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The parent directory (`""` at the root).
    pub fn parent(&self) -> &str {
        self.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
    }
}

/// All entries of a commit, in git path order, with an index by path.
#[derive(Debug, Default)]
pub struct Tree {
    pub commit: String,
    pub entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Tree {
    /// Builds the tree and its index.
    pub fn new(commit: String, entries: Vec<Entry>) -> Self {
        let index = entries.iter().enumerate().map(|(i, e)| (e.path.clone(), i)).collect();
        Tree { commit, entries, index }
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.index.get(path).map(|i| &self.entries[*i])
    }

    /// Files only.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.is_dir)
    }

    /// Entries under directory `dir` (`""` = root): all descendants when `recursive`, else
    /// the direct children only.
    pub fn under<'a>(&'a self, dir: &'a str, recursive: bool) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| {
            let inside = dir.is_empty() || e.path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
            inside && (recursive || e.parent() == dir)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip() {
        let oid = "a".repeat(64);
        let text = pointer_text(&oid, 440473133);
        let p = parse_pointer(text.as_bytes()).unwrap();
        assert_eq!(p.oid, oid);
        assert_eq!(p.size, 440473133);
        assert_eq!(p.pointer_size, 134, "125 + number of digits, as the Hub reports");
        assert!(parse_pointer(b"hello").is_none());
        assert!(parse_pointer(text.trim_end().as_bytes()).is_none());
    }

    #[test]
    fn children_and_descendants() {
        let mk = |p: &str, d: bool| Entry {
            path: p.into(),
            is_dir: d,
            oid: String::new(),
            size: 0,
            lfs: None,
        };
        let t = Tree::new(
            "c".into(),
            vec![
                mk("a", true),
                mk("a/b", true),
                mk("a/b/c.txt", false),
                mk("ab.txt", false),
            ],
        );
        let root: Vec<_> = t.under("", false).map(|e| e.path.as_str()).collect();
        assert_eq!(root, ["a", "ab.txt"]);
        let a: Vec<_> = t.under("a", true).map(|e| e.path.as_str()).collect();
        assert_eq!(a, ["a/b", "a/b/c.txt"]);
    }
}
