//! Files split across workers. When the destination takes multipart uploads (Hugging Face), the
//! planner may cut a large file into pieces held by different chunks. Once the destination repo
//! exists, the coordinator opens one multipart upload per split file (one LFS batch call: each
//! call would open another upload), turns every piece into the run of whole parts it covers, and
//! hands each worker its parts' presigned URLs. Workers PUT the parts and report their ETags;
//! after the transfer the coordinator completes each upload (the store checks the whole object's
//! sha256 as it assembles it) and the usual verification compares what the destination lists.

use std::collections::HashMap;

use futures_util::StreamExt;
use hubmigrate_hub::Error;
use hubmigrate_hub::hub::{Hub, UploadAction};
use hubmigrate_proto as pb;

use crate::plan::Piece;
use crate::run::{Failure, Planned};

/// Whether files may be split across workers for this destination: it must take multipart
/// uploads whose parts anyone holding their URLs may send.
pub fn splittable(dest: &Hub) -> bool {
    matches!(dest, Hub::Hf(_))
}

/// A multipart upload the coordinator opened and completes.
#[derive(Clone, Debug)]
pub struct Upload {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub parts: u32,
    pub complete: String,
    pub verify: Option<String>,
}

/// The work of each chunk, and the uploads to complete after the transfer.
pub struct Opened {
    pub chunks: Vec<Vec<pb::FileTask>>,
    pub uploads: Vec<Upload>,
}

/// Parts `[first, end)` (0-based) that a piece covers: its boundaries rounded to the nearest part
/// boundary, so neighbouring pieces share a boundary and every part belongs to exactly one piece.
/// Empty when the piece is smaller than half a part around a boundary.
fn parts_of(piece: &Piece, size: u64, part_size: u64) -> (u64, u64) {
    let n = size.div_ceil(part_size);
    let round = |at: u64| {
        if at >= size {
            n
        } else {
            ((at + part_size / 2) / part_size).min(n)
        }
    };
    (round(piece.offset), round(piece.offset + piece.len))
}

/// Opens the multipart uploads of the plan's split files and builds every chunk's tasks. A split
/// file the store already holds, or offers only as one PUT, goes whole to the chunk of its first
/// piece (its worker then reads it over several connections).
pub async fn open(p: &Planned) -> Result<Opened, Failure> {
    let mut chunks = p.chunk_tasks();
    let mut holders: HashMap<usize, Vec<(u32, Piece)>> = HashMap::new();
    for c in &p.plan.chunks {
        for piece in &c.pieces {
            holders.entry(piece.file).or_default().push((c.id, *piece));
        }
    }
    if holders.is_empty() {
        return Ok(Opened {
            chunks,
            uploads: Vec::new(),
        });
    }
    let mut files: Vec<usize> = holders.keys().copied().collect();
    files.sort_unstable();
    let objects: Vec<(String, u64)> = files
        .iter()
        .map(|&i| (p.tasks[i].sha256.clone(), p.tasks[i].size))
        .collect();
    let dest = &p.sides.dest;
    let actions = dest.hub.prepare_uploads(&dest.repo, &p.branch, &objects).await?;
    let mut uploads = Vec::new();
    for (&i, action) in files.iter().zip(&actions) {
        let task = &p.tasks[i];
        let mut pieces = holders.remove(&i).unwrap_or_default();
        pieces.sort_unstable_by_key(|(_, piece)| piece.offset);
        let UploadAction::Multipart {
            chunk_size,
            parts,
            complete,
            verify,
        } = action
        else {
            if let Some((chunk, _)) = pieces.first() {
                chunks[*chunk as usize].push(task.clone());
            }
            continue;
        };
        let part_size = (*chunk_size).max(1);
        if parts.len() as u64 != task.size.div_ceil(part_size) {
            return Err(Error::Protocol(format!(
                "{} parts offered for {} ({} bytes) in parts of {part_size}",
                parts.len(),
                task.path,
                task.size
            ))
            .into());
        }
        for (chunk, piece) in &pieces {
            let (first, end) = parts_of(piece, task.size, part_size);
            if first == end {
                continue;
            }
            chunks[*chunk as usize].push(pb::FileTask {
                slice: Some(pb::Slice {
                    part_size,
                    first_part: first as u32 + 1,
                    urls: parts[first as usize..end as usize].to_vec(),
                }),
                ..task.clone()
            });
        }
        uploads.push(Upload {
            path: task.path.clone(),
            sha256: task.sha256.clone(),
            size: task.size,
            parts: parts.len() as u32,
            complete: complete.clone(),
            verify: verify.clone(),
        });
    }
    tracing::info!(
        files = uploads.len(),
        slices = chunks.iter().flatten().filter(|t| t.slice.is_some()).count(),
        "large files split across workers"
    );
    Ok(Opened { chunks, uploads })
}

/// Completes every opened upload from its slices' ETags and returns the results by path: one
/// result per file, as if a single worker had moved it.
pub async fn complete(
    dest: &Hub,
    uploads: &[Upload],
    results: HashMap<pb::TaskKey, pb::FileResult>,
) -> Result<HashMap<String, pb::FileResult>, Failure> {
    let mut by_path: HashMap<String, pb::FileResult> = HashMap::new();
    let mut slices: HashMap<String, Vec<pb::FileResult>> = HashMap::new();
    for (key, r) in results {
        if key.first_part == 0 {
            by_path.insert(key.path, r);
        } else {
            slices.entry(key.path).or_default().push(r);
        }
    }
    let mut jobs = Vec::new();
    for u in uploads {
        let mut parts = slices.remove(&u.path).unwrap_or_default();
        parts.sort_unstable_by_key(|r| r.first_part);
        let mut etags = Vec::with_capacity(u.parts as usize);
        for r in &parts {
            if r.first_part as usize != etags.len() + 1 {
                return Err(Error::Protocol(format!(
                    "{}: part {} was reported where part {} was expected",
                    u.path,
                    r.first_part,
                    etags.len() + 1
                ))
                .into());
            }
            etags.extend(r.etags.iter().cloned());
        }
        if etags.len() != u.parts as usize {
            return Err(Error::Protocol(format!(
                "{}: {} of {} parts were reported; nothing was committed",
                u.path,
                etags.len(),
                u.parts
            ))
            .into());
        }
        jobs.push(async move {
            complete_one(dest, u, &etags).await?;
            let mut r = pb::FileResult {
                path: u.path.clone(),
                size: u.size,
                sha256: u.sha256.clone(),
                bytes_sent: u.size,
                ..Default::default()
            };
            r.set_outcome(pb::FileOutcome::Uploaded);
            Ok::<_, Error>(r)
        });
    }
    let mut done = futures_util::stream::iter(jobs).buffer_unordered(8);
    while let Some(r) = done.next().await {
        let r = r?;
        by_path.insert(r.path.clone(), r);
    }
    Ok(by_path)
}

/// One completion (retried while the store answers with a retryable error), then the verify
/// action when the store asked for one.
async fn complete_one(dest: &Hub, u: &Upload, etags: &[String]) -> Result<(), Error> {
    let policy = hubmigrate_hub::http::RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match dest.complete_multipart(&u.complete, &u.sha256, etags).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                tracing::warn!(path = %u.path, attempt, error = %e, "retrying a multipart completion");
                tokio::time::sleep(policy.delay(attempt, None)).await;
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(path = %u.path, parts = u.parts, "multipart upload completed");
    if let Some(v) = &u.verify {
        dest.verify_upload(v, &u.sha256, u.size).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_map_to_disjoint_runs_of_parts() {
        let size = 1000;
        let pieces = [(0, 333), (333, 333), (666, 334)].map(|(offset, len)| Piece { file: 0, offset, len });
        for part_size in [1, 7, 100, 333, 400, 999, 1000, 5000] {
            let runs: Vec<(u64, u64)> = pieces.iter().map(|p| parts_of(p, size, part_size)).collect();
            let n = size.div_ceil(part_size);
            assert_eq!(runs[0].0, 0);
            assert_eq!(runs[2].1, n, "the last piece ends with the last part ({part_size})");
            assert!(runs.windows(2).all(|w| w[0].1 == w[1].0), "runs touch: {runs:?}");
            assert!(runs.iter().all(|(a, b)| a <= b));
        }
    }
}
