//! The gRPC protocol between the coordinator and its workers (`proto/migration.proto`): the
//! generated messages and the `Coordinator` service's client and server, plus the metadata key
//! that carries the per-migration secret.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("hubmigrate.v1");

/// Metadata key of the secret every call carries: the worker's chunk's own, derived from the
/// per-migration secret (a worker can speak only for its chunk).
pub const SECRET_HEADER: &str = "x-hubmigrate-secret";
/// Metadata key of the chunk a call speaks for (its secret is that chunk's).
pub const CHUNK_HEADER: &str = "x-hubmigrate-chunk";
/// Metadata key naming the migration a call is for (one server may serve several).
pub const MIGRATION_HEADER: &str = "x-hubmigrate-migration";

impl Slice {
    /// The byte range `(offset, len)` of the slice within a file of `size` bytes.
    pub fn range(&self, size: u64) -> (u64, u64) {
        let offset = (u64::from(self.first_part.max(1)) - 1).saturating_mul(self.part_size);
        let end = offset
            .saturating_add(self.part_size.saturating_mul(self.urls.len() as u64))
            .min(size);
        (offset.min(size), end.saturating_sub(offset.min(size)))
    }
}

impl FileTask {
    /// The bytes this task moves: the whole file, or its slice.
    pub fn bytes(&self) -> u64 {
        self.slice.as_ref().map_or(self.size, |s| s.range(self.size).1)
    }

    /// The slice's first part, 0 for a whole file.
    pub fn first_part(&self) -> u32 {
        self.slice.as_ref().map_or(0, |s| s.first_part)
    }

    /// What identifies the task within a migration: its path, plus the first part for a slice.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.path, self.first_part())
    }
}

impl FileResult {
    /// The key of the task this result answers.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.path, self.first_part)
    }
}

/// A task's identity: a path and, for a slice of a file split across workers, its first part.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    pub path: String,
    pub first_part: u32,
}

impl TaskKey {
    pub fn new(path: &str, first_part: u32) -> Self {
        TaskKey {
            path: path.to_string(),
            first_part,
        }
    }
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.first_part {
            0 => f.write_str(&self.path),
            n => write!(f, "{} (from part {n})", self.path),
        }
    }
}
