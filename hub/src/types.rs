//! The vocabulary every hub client shares: who a token is, how an object gets uploaded, what a
//! commit holds, what a hub can do. It depends on no client, so the clients and [`crate::hub`]
//! import it without importing each other.

use crate::redact::Secret;
use crate::reporef::RepoRef;

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// Organisations the user belongs to (where the hub tells).
    pub orgs: Vec<String>,
    /// Whether the token may write at all (read-only tokens may not).
    pub can_write: bool,
}

/// How one LFS object gets to the destination's object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadAction {
    /// Already stored: send nothing.
    Present,
    /// One PUT of the whole object to `href` (a presigned URL, or one the `headers` authorise).
    Basic {
        href: String,
        headers: Vec<(String, Secret)>,
        verify: Option<String>,
    },
    /// Parts of `chunk_size` bytes PUT to `parts[i]`, then a completion POST to `complete`.
    Multipart {
        chunk_size: u64,
        parts: Vec<String>,
        complete: String,
        verify: Option<String>,
    },
}

/// A file of the single destination commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitFile {
    /// A regular file, committed inline.
    Inline { path: String, content: Vec<u8> },
    /// An LFS file whose object is already in the destination's store.
    Lfs { path: String, sha256: String, size: u64 },
}

impl CommitFile {
    /// The file's path.
    pub fn path(&self) -> &str {
        match self {
            CommitFile::Inline { path, .. } | CommitFile::Lfs { path, .. } => path,
        }
    }
}

/// A repo's existence and visibility.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepoState {
    pub private: bool,
    /// Gated (Hugging Face): its files are read only by users granted access.
    pub gated: bool,
}

/// What a hub can do. Code outside this crate asks these instead of matching on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Multipart uploads whose parts anyone holding the presigned part URLs may send, so one
    /// file may be split across workers (Hugging Face).
    pub multipart_parts: bool,
    /// A destination of this kind receives the source's git history itself (one push, the same
    /// commit ids) rather than commits made through an API (Git LFS hosts).
    pub git_history: bool,
    /// Whether a token must belong to the destination namespace (user or member of the org)
    /// for writing, even when the hub does not list the token's organisations.
    pub namespace_must_match: bool,
    /// Repos can be deleted through the API (ModelScope's API refuses, and git hosts are not
    /// deleted by hubmigrate).
    pub deletes_repos: bool,
    /// Its git smart-HTTP credential is the account name with the token (Hugging Face);
    /// otherwise `oauth2` with the token.
    pub git_user_is_account: bool,
    /// The largest object it takes the way hubmigrate uploads (Hugging Face's LFS path: 50 GB,
    /// storage-limits.md; larger files need Xet), when it has a documented one.
    pub max_object_size: Option<u64>,
    /// Files the hub writes into a repo it creates (ModelScope's template card), besides
    /// `.gitattributes`: a copy that holds one the source lacks is no different for it.
    pub made_files: &'static [&'static str],
}

/// The largest object the Hugging Face Hub takes over its LFS path (storage-limits.md).
pub const HF_MAX_LFS_OBJECT: u64 = 50_000_000_000;

/// One repo of an owner listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRepo {
    pub repo: RepoRef,
    pub private: bool,
}
