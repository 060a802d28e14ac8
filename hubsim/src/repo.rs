//! Repository identity (`kind`, namespace, name) and the validation of names and file paths that
//! arrive from clients. Every path that reaches git goes through [`check_path`] first.

use std::fmt;

/// What kind of repository: the Hugging Face types; ModelScope uses models and datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoKind {
    Model,
    Dataset,
    Space,
}

impl RepoKind {
    /// `model`, `dataset`, `space`: the singular the HF create API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
            RepoKind::Space => "space",
        }
    }

    /// `models`, `datasets`, `spaces`: the plural used in API paths and on disk.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
            RepoKind::Space => "spaces",
        }
    }

    /// Parses a singular type name; `None` for anything else.
    pub fn from_singular(s: &str) -> Option<Self> {
        match s {
            "model" => Some(RepoKind::Model),
            "dataset" => Some(RepoKind::Dataset),
            "space" => Some(RepoKind::Space),
            _ => None,
        }
    }

    /// Parses a plural type name; `None` for anything else.
    pub fn from_plural(s: &str) -> Option<Self> {
        match s {
            "models" => Some(RepoKind::Model),
            "datasets" => Some(RepoKind::Dataset),
            "spaces" => Some(RepoKind::Space),
            _ => None,
        }
    }

    /// The default `.gitattributes` of a new repo (the Hub's list, models and the dataset extras).
    pub fn default_gitattributes(self) -> String {
        let mut patterns = vec![
            "*.7z",
            "*.arrow",
            "*.bin",
            "*.bz2",
            "*.ckpt",
            "*.ftz",
            "*.gz",
            "*.h5",
            "*.joblib",
            "*.lfs.*",
            "*.mlmodel",
            "*.model",
            "*.msgpack",
            "*.npy",
            "*.npz",
            "*.onnx",
            "*.ot",
            "*.parquet",
            "*.pb",
            "*.pickle",
            "*.pkl",
            "*.pt",
            "*.pth",
            "*.rar",
            "*.safetensors",
            "saved_model/**/*",
            "*.tar.*",
            "*.tar",
            "*.tflite",
            "*.tgz",
            "*.wasm",
            "*.xz",
            "*.zip",
            "*.zst",
            "*tfevents*",
        ];
        if self == RepoKind::Dataset {
            patterns.extend([
                "*.lz4", "*.pcm", "*.sam", "*.raw", "*.aac", "*.flac", "*.mp3", "*.ogg", "*.wav", "*.bmp", "*.gif",
                "*.png", "*.tiff", "*.jpg", "*.jpeg", "*.webp",
            ]);
        }
        patterns
            .iter()
            .map(|p| format!("{p} filter=lfs diff=lfs merge=lfs -text\n"))
            .collect()
    }

    /// The prefix of web, git and resolve URLs on the Hugging Face Hub (`""` for models).
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
            RepoKind::Space => "spaces/",
        }
    }
}

/// A repository: its kind, namespace (user or org) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoId {
    pub kind: RepoKind,
    pub ns: String,
    pub name: String,
}

impl RepoId {
    /// Builds an id after checking both name parts.
    pub fn new(kind: RepoKind, ns: &str, name: &str) -> Result<Self, String> {
        check_name(ns)?;
        check_name(name)?;
        Ok(RepoId {
            kind,
            ns: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Builds an id whose namespace may be nested (`group/sub`, GitLab's subgroups): every
    /// segment is checked, and the whole path has at most [`MAX_DEPTH`] segments.
    pub fn nested(kind: RepoKind, ns: &str, name: &str) -> Result<Self, String> {
        check_namespace(ns)?;
        check_name(name)?;
        Ok(RepoId {
            kind,
            ns: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Parses a full path `group[/sub...]/name` into a (possibly nested) id.
    pub fn from_full_path(kind: RepoKind, path: &str) -> Result<Self, String> {
        let (ns, name) = path
            .rsplit_once('/')
            .ok_or_else(|| format!("invalid path {path:?}: expected NAMESPACE/NAME"))?;
        Self::nested(kind, ns, name)
    }

    /// `ns/name`.
    pub fn full(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s/{}/{}", self.kind.as_str(), self.ns, self.name)
    }
}

/// Most segments a full project path may have (GitLab allows 20 levels of groups and subgroups).
pub const MAX_DEPTH: usize = 20;

/// Checks a namespace that may be nested (`group/sub/subsub`): each segment is a [`check_name`].
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.split('/').count() >= MAX_DEPTH {
        return Err(format!(
            "invalid namespace {ns:?}: more than {} segments",
            MAX_DEPTH - 1
        ));
    }
    ns.split('/').try_for_each(check_name)
}

/// Namespace and repo names: `[A-Za-z0-9._-]`, 1 to 96 characters, not starting with `.` or `-`,
/// never `.git`-suffixed (the suffix is URL syntax, not part of a name).
pub fn check_name(s: &str) -> Result<(), String> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if s.is_empty() || s.len() > 96 || !ok_chars {
        return Err(format!(
            "invalid name {s:?}: use letters, digits, '.', '_' or '-' (at most 96)"
        ));
    }
    if s.starts_with('.') || s.starts_with('-') || s.ends_with(".git") || s.contains("..") {
        return Err(format!("invalid name {s:?}"));
    }
    Ok(())
}

/// Checks a repo-relative file path from a client: non-empty, relative, `/`-separated, no empty,
/// `.` or `..` segments, no NUL or newline, no `.git` segment, at most 4096 bytes.
pub fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 4096 {
        return Err("invalid path: empty or longer than 4096 bytes".into());
    }
    if p.starts_with('/') {
        return Err(format!("invalid path {p:?}: must be relative"));
    }
    if p.contains('\0') || p.contains('\n') || p.contains('\r') {
        return Err(format!("invalid path {p:?}: contains a forbidden character"));
    }
    // A backslash is an ordinary character of a name (the Hub stores `a\b.txt`), but not a
    // way to climb out of the repo (`..\ddd` is refused).
    if p.split('\\').any(|s| s == "." || s == "..") {
        return Err(format!("invalid path {p:?}: '.' or '..' between backslashes"));
    }
    for seg in p.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!("invalid path {p:?}: empty, '.' or '..' segment"));
        }
        if seg.eq_ignore_ascii_case(".git") {
            return Err(format!("invalid path {p:?}: '.git' is reserved"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("bert-base_v1.2").is_ok());
        for bad in ["", "a/b", ".x", "-x", "x.git", "a..b", "ü"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nested_namespaces() {
        let id = RepoId::from_full_path(RepoKind::Model, "acme/research/bert").unwrap();
        assert_eq!((id.ns.as_str(), id.name.as_str()), ("acme/research", "bert"));
        assert_eq!(id.full(), "acme/research/bert");
        assert!(
            RepoId::new(RepoKind::Model, "acme/research", "bert").is_err(),
            "new() stays flat"
        );
        for bad in [
            "bert",
            "acme//bert",
            "/acme/bert",
            "acme/../bert",
            "acme/.x/bert",
            "acme/b.git/c",
        ] {
            assert!(RepoId::from_full_path(RepoKind::Model, bad).is_err(), "{bad}");
        }
        let deep = vec!["g"; MAX_DEPTH].join("/");
        assert!(RepoId::from_full_path(RepoKind::Model, &deep).is_ok());
        assert!(RepoId::from_full_path(RepoKind::Model, &format!("{deep}/x")).is_err());
    }

    #[test]
    fn paths() {
        assert!(check_path("dir with space/ünï cødé [1].txt").is_ok());
        assert!(check_path("windows\\style.txt").is_ok());
        for bad in [
            "..\\ddd",
            "a\\.\\b",
            "",
            "/abs",
            "a/../b",
            "..",
            "a//b",
            "a/./b",
            "a\0b",
            ".git/config",
            "a\nb",
            "a/",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
