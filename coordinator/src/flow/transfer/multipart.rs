//! Files split across workers. When the destination takes multipart uploads (Hugging Face), the
//! planner may cut a large file into pieces held by different chunks. Once the destination repo
//! exists, the coordinator opens one multipart upload per split file (one LFS batch call: each
//! call would open another upload), turns every piece into the run of whole parts it covers, and
//! hands each worker its parts' presigned URLs (slices first, so split files finish early).
//! Workers PUT the parts and report their ETags; as soon as every part of a file is in, the
//! coordinator completes its upload while the rest of the transfer goes on, then reads the
//! assembled object back from the destination and hashes it (no worker saw every byte), before
//! any commit names it. A retried chunk is not sent the slices it already reported. When the
//! presigned URLs of an upload expire before all its parts are in, the upload is opened again
//! and its slices go again under the new URLs (docs/pipeline.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hubmigrate_hub::Error;
use hubmigrate_hub::hub::{Hub, UploadAction};
use hubmigrate_hub::reporef::RepoRef;
use hubmigrate_proto as pb;
use serde::{Deserialize, Serialize};

use super::grpc::Shared;
use crate::flow::plan::Piece;
use crate::flow::planned::Planned;

/// A multipart upload the coordinator opened and completes. Its URLs are capabilities (anyone
/// holding one may send that part), so it is journalled only where tokens are kept (a Secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub parts: u32,
    pub part_size: u64,
    /// The presigned URL of every part, in order.
    pub urls: Vec<String>,
    pub complete: String,
    pub verify: Option<String>,
    /// Which opening of the file's upload this is (0 first): parts reported for another are
    /// void.
    #[serde(default)]
    pub generation: u32,
}

impl Upload {
    /// The upload as the store offered it.
    fn action(&self) -> UploadAction {
        UploadAction::Multipart {
            chunk_size: self.part_size,
            parts: self.urls.clone(),
            complete: self.complete.clone(),
            verify: self.verify.clone(),
        }
    }
}

/// A slice a worker reported: the ETags of its parts from `first_part` on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reported {
    pub path: String,
    pub first_part: u32,
    pub etags: Vec<String>,
}

/// What survives a coordinator restart: the uploads opened, the slices acknowledged, the uploads
/// completed. A restarted coordinator continues these uploads instead of opening new ones, and
/// does not send again the parts it already has ETags for.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Saved {
    pub uploads: Vec<Upload>,
    pub reported: Vec<Reported>,
    pub completed: Vec<String>,
}

/// Where [`Saved`] is kept as it changes (a Kubernetes Secret the Migration owns).
pub trait Journal: Send + Sync {
    /// Records the current state (the last one written wins).
    fn save(&self, saved: &Saved);
}

/// The work of each chunk, and the uploads to complete after the transfer.
pub struct Opened {
    pub chunks: Vec<Vec<pb::FileTask>>,
    /// The uploads, and what an earlier coordinator already had of them.
    pub saved: Saved,
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
/// piece (its worker then reads it over several connections). Uploads in `resumed` (opened by an
/// earlier coordinator of this migration, for the same object) are continued, not opened again.
pub async fn open(p: &Planned, resumed: Option<Saved>) -> crate::error::Result<Opened> {
    let resumed = resumed.unwrap_or_default();
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
            saved: Saved::default(),
        });
    }
    let mut files: Vec<usize> = holders.keys().copied().collect();
    files.sort_unstable();
    // One upload per object: a second path with the same content goes whole to one worker (the
    // store may hold the object by then).
    let mut seen = std::collections::HashSet::new();
    let (files, twins): (Vec<usize>, Vec<usize>) = files
        .into_iter()
        .partition(|&i| seen.insert(p.tasks[i].sha256.as_str()));
    for i in twins {
        if let Some((chunk, _)) = holders
            .get(&i)
            .and_then(|h| h.iter().min_by_key(|(_, piece)| piece.offset))
        {
            chunks[*chunk as usize].push(p.tasks[i].clone());
        }
    }
    let earlier = |i: usize| {
        let t = &p.tasks[i];
        resumed
            .uploads
            .iter()
            .find(|u| u.path == t.path && u.sha256 == t.sha256 && u.size == t.size)
    };
    let mut offered: HashMap<usize, (UploadAction, u32)> = HashMap::new();
    let mut fresh = Vec::new();
    for &i in &files {
        match earlier(i) {
            Some(u) => {
                tracing::info!(path = %u.path, parts = u.parts, "continuing the multipart upload an earlier coordinator opened");
                offered.insert(i, (u.action(), u.generation));
            }
            None => fresh.push(i),
        }
    }
    if !fresh.is_empty() {
        let objects: Vec<(String, u64)> = fresh
            .iter()
            .map(|&i| (p.tasks[i].sha256.clone(), p.tasks[i].size))
            .collect();
        let dest = &p.sides.dest;
        let actions = dest.hub.prepare_uploads(&dest.repo, &p.branch, &objects).await?;
        offered.extend(fresh.into_iter().zip(actions.into_iter().map(|a| (a, 0))));
    }
    let mut uploads = Vec::new();
    for &i in &files {
        let Some((action, generation)) = offered.get(&i) else {
            continue;
        };
        let generation = *generation;
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
            let tasks = &mut chunks[*chunk as usize];
            let at = tasks.iter().take_while(|t| t.slice.is_some()).count();
            tasks.insert(
                at,
                pb::FileTask {
                    slice: Some(pb::Slice {
                        part_size,
                        first_part: first as u32 + 1,
                        urls: parts[first as usize..end as usize].to_vec(),
                        upload: generation,
                    }),
                    ..task.clone()
                },
            );
        }
        uploads.push(Upload {
            path: task.path.clone(),
            sha256: task.sha256.clone(),
            size: task.size,
            parts: parts.len() as u32,
            part_size,
            urls: parts.clone(),
            complete: complete.clone(),
            verify: verify.clone(),
            generation,
        });
    }
    tracing::info!(
        files = uploads.len(),
        slices = chunks.iter().flatten().filter(|t| t.slice.is_some()).count(),
        "large files split across workers"
    );
    // What an earlier coordinator had of the uploads continued here.
    let open = |path: &String| uploads.iter().any(|u| &u.path == path);
    let saved = Saved {
        reported: resumed.reported.into_iter().filter(|r| open(&r.path)).collect(),
        completed: resumed.completed.into_iter().filter(|c| open(c)).collect(),
        uploads,
    };
    Ok(Opened { chunks, saved })
}

/// Completes the opened uploads while the transfer runs: it hears every result a worker reports,
/// completes a file's upload as soon as all its parts are in, and opens an upload again when
/// its presigned URLs expired before that (the store offers no way to sign new URLs for an open
/// upload: another batch call opens another one, so every part is sent again).
pub struct Completer {
    task: tokio::task::JoinHandle<Result<HashMap<String, pb::FileResult>, Error>>,
}

/// Where the uploads go.
#[derive(Clone)]
pub struct Dest {
    pub hub: Hub,
    pub repo: RepoRef,
    pub branch: String,
}

/// How many times one file's upload is opened in all (the first opening included).
const OPENINGS: u32 = 4;

/// The slices reported so far of one upload, by first part.
struct Pending {
    upload: Upload,
    slices: BTreeMap<u32, Vec<String>>,
}

impl Pending {
    fn new(upload: Upload) -> Self {
        Pending {
            upload,
            slices: BTreeMap::new(),
        }
    }

    /// The ETags of every part in order, once the reported slices cover them all exactly.
    fn etags(&self) -> Option<Vec<String>> {
        let mut etags = Vec::with_capacity(self.upload.parts as usize);
        for (&first, tags) in &self.slices {
            if first as usize != etags.len() + 1 {
                return None;
            }
            etags.extend(tags.iter().cloned());
        }
        (etags.len() == self.upload.parts as usize).then_some(etags)
    }
}

/// The completer's state: what is journalled, what is done, what waits for parts.
struct Books {
    state: Saved,
    journal: Option<Arc<dyn Journal>>,
    done: HashMap<String, pb::FileResult>,
    pending: HashMap<String, Pending>,
}

impl Books {
    fn save(&self) {
        if let Some(j) = &self.journal {
            j.save(&self.state);
        }
    }

    /// Opens `u`'s upload again and tells `shared` where its parts go now.
    async fn reopen(&mut self, dest: &Dest, shared: &Shared, u: &Upload) -> Result<(), Error> {
        let fresh = reopen(dest, u).await?;
        self.state.reported.retain(|r| r.path != u.path);
        self.pending.remove(&u.path);
        match &fresh {
            Some(f) => {
                tracing::warn!(path = %u.path, opening = f.generation + 1, "the upload URLs expired before every part was in; the upload was opened again and its parts go again");
                if let Some(slot) = self.state.uploads.iter_mut().find(|x| x.path == u.path) {
                    *slot = f.clone();
                }
                self.pending.insert(u.path.clone(), Pending::new(f.clone()));
            }
            None => {
                tracing::info!(path = %u.path, "the store holds the object now: nothing more to send");
                self.state.completed.push(u.path.clone());
                self.done.insert(u.path.clone(), uploaded(u));
            }
        }
        self.save();
        shared.reopen(&u.path, fresh.as_ref());
        Ok(())
    }
}

impl Completer {
    /// Starts listening to `shared`'s results (not at all when no upload waits for parts).
    /// Slices and completions an earlier coordinator journalled count as done; every change is
    /// journalled to `journal` as it happens.
    pub fn start(dest: Dest, saved: Saved, shared: &Arc<Shared>, journal: Option<Arc<dyn Journal>>) -> Self {
        if saved.uploads.is_empty() {
            return Completer {
                task: tokio::spawn(async { Ok(HashMap::new()) }),
            };
        }
        let results = shared.subscribe();
        let shared = shared.clone();
        let task = tokio::spawn(async move {
            let r = listen(&dest, &shared, saved, journal, results).await;
            if let Err(e) = &r {
                shared.fatal(e.to_string());
            }
            r
        });
        Completer { task }
    }

    /// Once the transfer is over: waits for the last completions and returns the results by
    /// path, one per file (a split file's slices become one result, as if one worker had
    /// moved it).
    pub async fn finish(
        self,
        shared: &Shared,
        results: HashMap<pb::TaskKey, pb::FileResult>,
    ) -> crate::error::Result<HashMap<String, pb::FileResult>> {
        shared.unsubscribe();
        let completed = self
            .task
            .await
            .map_err(|e| Error::Protocol(format!("the multipart completions stopped: {e}")))??;
        let mut by_path: HashMap<String, pb::FileResult> = results
            .into_iter()
            .filter(|(k, _)| k.first_part == 0)
            .map(|(k, r)| (k.path, r))
            .collect();
        by_path.extend(completed);
        Ok(by_path)
    }

    /// Stops listening (the transfer failed).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The completer's loop: slices in, completions and reopenings out, until the results end.
async fn listen(
    dest: &Dest,
    shared: &Shared,
    saved: Saved,
    journal: Option<Arc<dyn Journal>>,
    mut results: tokio::sync::mpsc::UnboundedReceiver<pb::FileResult>,
) -> Result<HashMap<String, pb::FileResult>, Error> {
    let mut books = Books {
        state: saved,
        journal,
        done: HashMap::new(),
        pending: HashMap::new(),
    };
    books.save();
    for u in &books.state.uploads {
        if books.state.completed.contains(&u.path) {
            books.done.insert(u.path.clone(), uploaded(u));
            continue;
        }
        let mut p = Pending::new(u.clone());
        p.slices = books
            .state
            .reported
            .iter()
            .filter(|r| r.path == u.path)
            .map(|r| (r.first_part, r.etags.clone()))
            .collect();
        books.pending.insert(u.path.clone(), p);
    }
    let target = Arc::new(dest.clone());
    // Read-backs of completed uploads share these connections and this memory.
    let budget = hubmigrate_hub::parallel::Budget::new(
        8,
        hubmigrate_hub::parallel::BUFFER_BUDGET,
        hubmigrate_hub::readback::SEGMENT,
    );
    let mut running = tokio::task::JoinSet::new();
    let start_ready = |pending: &mut HashMap<String, Pending>, running: &mut tokio::task::JoinSet<_>| {
        let ready: Vec<String> = pending
            .iter()
            .filter(|(_, p)| p.etags().is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for path in ready {
            let Some(p) = pending.remove(&path) else { continue };
            let etags = p.etags().unwrap_or_default();
            let (target, budget) = (target.clone(), budget.clone());
            shared.work(true);
            running.spawn(async move {
                let r = complete_one(&target, &budget, &p.upload, &etags).await;
                (p.upload, r)
            });
        }
    };
    start_ready(&mut books.pending, &mut running);
    let mut listening = true;
    while listening || !running.is_empty() {
        tokio::select! {
            r = results.recv(), if listening => match r {
                Some(r) if r.first_part > 0 => {
                    let handled = on_slice(&mut books, dest, shared, r).await;
                    start_ready(&mut books.pending, &mut running);
                    shared.work(false);
                    handled?;
                }
                Some(_) => {}
                None => {
                    listening = false;
                    // The transfer is over: uploads still waiting for parts were not moved in
                    // full.
                    if let Some(p) = books.pending.values().next() {
                        let got: usize = p.slices.values().map(Vec::len).sum();
                        running.abort_all();
                        return Err(Error::Protocol(format!(
                            "{}: {got} of {} parts were reported; nothing was committed",
                            p.upload.path, p.upload.parts
                        )));
                    }
                }
            },
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (u, r) = joined.map_err(|e| Error::Protocol(format!("a multipart completion stopped: {e}")))?;
                let handled = match r {
                    Ok(()) => {
                        books.state.completed.push(u.path.clone());
                        books.save();
                        books.done.insert(u.path.clone(), uploaded(&u));
                        Ok(())
                    }
                    // The completion URL died with the part URLs: the parts are lost with it.
                    Err(e) if e.is_expired() && listening => books.reopen(dest, shared, &u).await,
                    Err(e) => Err(e),
                };
                shared.work(false);
                handled?;
            }
        }
    }
    Ok(books.done)
}

/// A slice a worker reported: its ETags count towards its upload's completion; a slice whose
/// URLs expired opens the upload again.
async fn on_slice(books: &mut Books, dest: &Dest, shared: &Shared, r: pb::FileResult) -> Result<(), Error> {
    let Some(p) = books
        .pending
        .get_mut(&r.path)
        .filter(|p| p.upload.generation == r.upload)
    else {
        return Ok(());
    };
    if r.outcome() == pb::FileOutcome::Expired {
        let u = p.upload.clone();
        return books.reopen(dest, shared, &u).await;
    }
    p.slices.insert(r.first_part, r.etags.clone());
    books.state.reported.push(Reported {
        path: r.path,
        first_part: r.first_part,
        etags: r.etags,
    });
    books.save();
    Ok(())
}

/// Opens `u`'s upload again (a new batch call); `None` when the store holds the object now.
async fn reopen(dest: &Dest, u: &Upload) -> Result<Option<Upload>, Error> {
    if u.generation + 1 >= OPENINGS {
        return Err(Error::Protocol(format!(
            "{}: its upload was opened {OPENINGS} times and each time its presigned URLs expired before every part was in (the store's URLs live shorter than sending this file takes); nothing was committed",
            u.path
        )));
    }
    let objects = [(u.sha256.clone(), u.size)];
    let offered = dest.hub.prepare_uploads(&dest.repo, &dest.branch, &objects).await?;
    match offered.into_iter().next() {
        Some(UploadAction::Present) => Ok(None),
        Some(UploadAction::Multipart {
            chunk_size,
            parts,
            complete,
            verify,
        }) if chunk_size == u.part_size && parts.len() == u.parts as usize => Ok(Some(Upload {
            urls: parts,
            complete,
            verify,
            generation: u.generation + 1,
            ..u.clone()
        })),
        _ => Err(Error::Protocol(format!(
            "{}: asked to open its upload again, the store offered another kind of upload",
            u.path
        ))),
    }
}

/// The result of a split file whose upload is complete (as if one worker had moved it).
fn uploaded(u: &Upload) -> pb::FileResult {
    let mut r = pb::FileResult {
        path: u.path.clone(),
        size: u.size,
        sha256: u.sha256.clone(),
        bytes_sent: u.size,
        ..Default::default()
    };
    r.set_outcome(pb::FileOutcome::Uploaded);
    r
}

/// One completion (retried while the store answers with a retryable error), the verify action
/// when the store asked for one, then the assembled object read back and hashed: no worker saw
/// every byte of it, so only this proves the store holds what the source has.
async fn complete_one(
    dest: &Dest,
    budget: &hubmigrate_hub::parallel::Budget,
    u: &Upload,
    etags: &[String],
) -> Result<(), Error> {
    let attempts = hubmigrate_hub::http::RetryPolicy::default().attempts;
    hubmigrate_hub::http::with_retries(&u.path, attempts, |_| {
        dest.hub.complete_multipart(&u.complete, &u.sha256, etags)
    })
    .await?;
    tracing::info!(path = %u.path, parts = u.parts, "multipart upload completed");
    if let Some(v) = &u.verify {
        dest.hub.verify_upload(v, &u.sha256, u.size).await?;
    }
    let progress = Default::default();
    if hubmigrate_hub::readback::object(
        &dest.hub,
        &dest.repo,
        &u.path,
        &u.sha256,
        u.size,
        Some(budget),
        progress,
    )
    .await?
    {
        tracing::info!(path = %u.path, "split file read back from the destination and hashed");
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
