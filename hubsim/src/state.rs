//! The shared state of one running hub: storage, users, configuration, URL signer, and the
//! per-repo commit-rate bookkeeping. Handlers receive it as `Arc<Hub>`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Users;
use crate::faults::Faults;
use crate::repo::RepoId;
use crate::sign::Signer;
use crate::stats::{Event, Stats};
use crate::store::Store;

/// Which hub protocol a hubsim speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// Hugging Face Hub.
    Hf,
    /// ModelScope.
    Ms,
    /// A GitLab-like Git LFS host.
    Git,
}

/// Tunables of a hub, from the `serve` flags.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub flavor: Flavor,
    /// LFS objects at or above this size are offered the multipart transfer.
    pub multipart_threshold: u64,
    /// Part size of multipart transfers.
    pub part_size: u64,
    /// Entries per page of tree listings.
    pub tree_page_size: usize,
    /// Commits allowed per repo per `commit_window` (`None`: unlimited).
    pub commit_limit: Option<u32>,
    /// The sliding window of `commit_limit` (the Hub's: an hour).
    pub commit_window: Duration,
    /// What a commit costs the server (HF flavor): per operation and per MiB of inline content;
    /// the server takes that long to answer, and a commit that would take longer than
    /// `commit_timeout` (or has more than `max_commit_ops` operations) times out undone.
    pub commit_cost: CommitCost,
    /// Largest API request body (LFS object uploads are not API requests).
    pub max_request_body: usize,
    /// A proxy's body limit on object uploads (413 from "nginx").
    pub proxy_max_body: Option<u64>,
    /// Largest LFS object an upload may announce (`None`: no limit; GitLab's
    /// `max_file_size`-style limit of the git flavor).
    pub max_lfs_object_size: Option<u64>,
    /// Lifetime of the presigned URLs the hub hands out.
    pub url_ttl: Duration,
    /// Multipart uploads are assembled without checking their sha256.
    pub unchecked_multipart: bool,
}

/// The server-side cost model of a commit (HF flavor).
#[derive(Clone, Copy, Debug)]
pub struct CommitCost {
    pub per_op: Duration,
    pub per_inline_mib: Duration,
    pub timeout: Duration,
    pub max_ops: Option<usize>,
}

impl CommitCost {
    /// No cost and no timeout (unit tests of other things).
    pub const FREE: CommitCost = CommitCost {
        per_op: Duration::ZERO,
        per_inline_mib: Duration::ZERO,
        timeout: Duration::MAX,
        max_ops: None,
    };

    /// How long a commit of `ops` operations with `inline` bytes of content takes the server:
    /// `Ok(time)`, or `Err(timeout)` when it would not finish within the timeout.
    pub fn time(&self, ops: usize, inline: u64) -> Result<Duration, Duration> {
        let time = self
            .per_op
            .saturating_mul(ops as u32)
            .saturating_add(self.per_inline_mib.mul_f64(inline as f64 / (1u64 << 20) as f64));
        if time > self.timeout || self.max_ops.is_some_and(|m| ops > m) {
            return Err(self.timeout);
        }
        Ok(time)
    }
}

/// Everything a handler needs.
pub struct Hub {
    pub store: Store,
    pub users: Users,
    pub cfg: HubConfig,
    pub signer: Signer,
    pub faults: Arc<Faults>,
    /// What the hub did since it started (`/_hubsim/stats`).
    pub stats: Arc<Stats>,
    /// Base URL of the hub itself, e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// Base URL of the object "CDN" (a second origin, as on the real hubs).
    pub cdn_url: String,
    commits: Mutex<HashMap<RepoId, VecDeque<u64>>>,
}

impl Hub {
    /// Assembles a hub.
    pub fn new(
        store: Store,
        users: Users,
        cfg: HubConfig,
        faults: Arc<Faults>,
        base_url: String,
        cdn_url: String,
    ) -> Self {
        Hub {
            store,
            users,
            signer: Signer::new(cfg.url_ttl),
            cfg,
            faults,
            stats: Arc::new(Stats::default()),
            base_url,
            cdn_url,
            commits: Mutex::new(HashMap::new()),
        }
    }

    /// Records a commit attempt against the hourly limit. `Err(secs)` says how long until the
    /// next commit is allowed; nothing is recorded then.
    pub fn admit_commit(&self, id: &RepoId) -> Result<(), u64> {
        let Some(limit) = self.cfg.commit_limit else {
            return Ok(());
        };
        let now = crate::util::now_secs();
        let mut all = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        let q = all.entry(id.clone()).or_default();
        let window = self.cfg.commit_window.as_secs().max(1);
        while q.front().is_some_and(|t| *t + window <= now) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            self.stats.note(Event::CommitThrottle);
            let oldest = q.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_sub(now).max(1));
        }
        q.push_back(now);
        Ok(())
    }
}
