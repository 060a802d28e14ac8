//! The content-addressed object store for LFS objects: `objects/ab/cd/<sha256>`. Every object is
//! written to a temporary file while its sha256 is computed, and renamed into place only when the
//! hash and size match what the client announced, so a stored object is always what its name says.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::util::{is_hex, random_hex};

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("invalid oid {0:?}: expected 64 lowercase hex characters")]
    BadOid(String),
    #[error("object size mismatch: expected {expected} bytes, received {got}")]
    Size { expected: u64, got: u64 },
    #[error("object hash mismatch: expected sha256 {expected}, content hashes to {got}")]
    Hash { expected: String, got: String },
    #[error("upload interrupted: {0}")]
    Body(io::Error),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// The object store under one data directory.
#[derive(Clone, Debug)]
pub struct LfsStore {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LfsStore {
    /// Opens (creating if needed) the store under `data`.
    pub fn open(data: &Path) -> io::Result<Self> {
        let objects = data.join("lfs").join("objects");
        let tmp = data.join("tmp");
        std::fs::create_dir_all(&objects)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(LfsStore { objects, tmp })
    }

    /// Where object `oid` lives (whether or not it exists).
    pub fn path(&self, oid: &str) -> PathBuf {
        let (a, b) = (oid.get(0..2).unwrap_or("00"), oid.get(2..4).unwrap_or("00"));
        self.objects.join(a).join(b).join(oid)
    }

    /// The size of object `oid`, or `None` when it is not stored.
    pub async fn size(&self, oid: &str) -> Option<u64> {
        if !is_hex(oid, 64) {
            return None;
        }
        fs::metadata(self.path(oid)).await.ok().map(|m| m.len())
    }

    /// A fresh temporary path inside the data directory (same filesystem, so renames are atomic).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        self.tmp.join(format!("{what}-{}", random_hex(8)))
    }

    /// Stores a streamed body as object `oid` after checking its size and sha256. Storing an
    /// object that already exists re-verifies the body and keeps the existing file.
    pub async fn put_stream<S>(&self, oid: &str, size: u64, body: S) -> Result<(), PutError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
    {
        if !is_hex(oid, 64) {
            return Err(PutError::BadOid(oid.to_string()));
        }
        let tmp = self.temp_path("put");
        let res = write_hashed(&tmp, size, body).await;
        let got = match res {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if got != oid {
            let _ = fs::remove_file(&tmp).await;
            return Err(PutError::Hash {
                expected: oid.to_string(),
                got,
            });
        }
        self.commit_temp(&tmp, oid).await
    }

    /// Stores the file at `assembled` (a multipart upload's parts, written in place at their
    /// offsets) as object `oid` after checking its size and (when `checked`) its sha256: one
    /// read, no copy.
    pub async fn put_assembled(&self, oid: &str, size: u64, assembled: &Path, checked: bool) -> Result<(), PutError> {
        if !is_hex(oid, 64) {
            return Err(PutError::BadOid(oid.to_string()));
        }
        let path = assembled.to_path_buf();
        let result = tokio::task::spawn_blocking(move || -> Result<String, PutError> {
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?;
            let got = f.metadata()?.len();
            if got != size {
                return Err(PutError::Size { expected: size, got });
            }
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hex::encode(hasher.finalize()))
        })
        .await
        .unwrap_or_else(|e| Err(PutError::Io(io::Error::other(e))))?;
        if checked && result != oid {
            return Err(PutError::Hash {
                expected: oid.to_string(),
                got: result,
            });
        }
        self.commit_temp(assembled, oid).await
    }

    async fn commit_temp(&self, tmp: &Path, oid: &str) -> Result<(), PutError> {
        let dest = self.path(oid);
        if fs::metadata(&dest).await.is_ok() {
            fs::remove_file(tmp).await?;
            return Ok(());
        }
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).await?;
        }
        fs::rename(tmp, &dest).await?;
        Ok(())
    }
}

/// Writes `body` to `path`, returning the sha256 hex; fails unless exactly `size` bytes arrive.
pub async fn write_hashed<S>(path: &Path, size: u64, body: S) -> Result<String, PutError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    write_body(fs::File::create(path).await?, size, body, true).await
}

/// Writes `body` (a multipart part, not hashed: the whole object is, once assembled) into the
/// file at `path` from byte `offset` on, creating the file if needed and leaving the rest of it
/// alone; fails unless exactly `size` bytes arrive.
pub async fn write_at<S>(path: &Path, offset: u64, size: u64, body: S) -> Result<(), PutError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await?;
    file.seek(io::SeekFrom::Start(offset)).await?;
    write_body(file, size, body, false).await.map(drop)
}

async fn write_body<S>(file: fs::File, size: u64, mut body: S, hash: bool) -> Result<String, PutError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    // Buffered: request bodies arrive in small chunks, each of which would otherwise be one
    // blocking file operation.
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(PutError::Body)?;
        total += chunk.len() as u64;
        if total > size {
            return Err(PutError::Size {
                expected: size,
                got: total,
            });
        }
        if hash {
            hasher.update(&chunk);
        }
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    if total != size {
        return Err(PutError::Size {
            expected: size,
            got: total,
        });
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::sha256_hex;

    fn body(data: &'static [u8]) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        futures_util::stream::iter(data.chunks(3).map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn verifies_hash_and_size() {
        let dir = std::env::temp_dir().join(format!("hubsim-lfs-{}", random_hex(4)));
        let store = LfsStore::open(&dir).unwrap();
        let data: &'static [u8] = b"hello lfs world";
        let oid = sha256_hex(data);
        let wrong = sha256_hex(b"other");
        assert!(matches!(
            store.put_stream(&wrong, 15, body(data)).await,
            Err(PutError::Hash { .. })
        ));
        assert!(matches!(
            store.put_stream(&oid, 14, body(data)).await,
            Err(PutError::Size { .. })
        ));
        assert!(matches!(
            store.put_stream(&oid, 16, body(data)).await,
            Err(PutError::Size { .. })
        ));
        assert_eq!(store.size(&oid).await, None);
        store.put_stream(&oid, 15, body(data)).await.unwrap();
        assert_eq!(store.size(&oid).await, Some(15));
        assert_eq!(std::fs::read(store.path(&oid)).unwrap(), data);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
