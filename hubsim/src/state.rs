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
    /// Commits allowed per repo per hour (`None`: unlimited).
    pub commit_limit: Option<u32>,
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
        while q.front().is_some_and(|t| *t + 3600 <= now) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            self.stats.note(Event::CommitThrottle);
            let oldest = q.front().copied().unwrap_or(now);
            return Err((oldest + 3600).saturating_sub(now).max(1));
        }
        q.push_back(now);
        Ok(())
    }
}
