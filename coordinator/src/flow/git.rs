//! Git LFS hosts as destinations and sources. A git destination receives the source's history
//! itself (same commit ids): workers first move the LFS objects that history points at through
//! the destination's LFS batch API, then the coordinator pushes. `--mirror` pushes every branch
//! and tag, `--pointer-only` pushes history alone, `--use-remote-mirror` has a GitLab pull the
//! source itself. Sources reached over git (a git host, or a hub whose API refused to list) are
//! read from a scratch clone without LFS content. See docs/git.md.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubmigrate_hub::git::{GitClient, ObjectStatus, Snapshot, pointers_of};
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use hubmigrate_proto as pb;

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::flow::resolve::{Side, Sides};
use crate::report::{Mismatch, SkippedRef};

/// Refs a mirror never carries: hub-managed pull requests and conversions.
const NEVER_MIRRORED: &[&str] = &["refs/pr/", "refs/convert/"];

/// What a git destination gets pushed.
#[derive(Debug)]
pub struct GitPlan {
    pub snapshot: Arc<Snapshot>,
    /// (source object, destination ref), in push order.
    pub pushes: Vec<(String, String)>,
    /// Refs left out on purpose, with the reason.
    pub skipped: Vec<SkippedRef>,
}

fn git_client(hub: &Hub) -> &GitClient {
    match hub {
        Hub::Git(c) => c,
        _ => unreachable!("a git side always holds a git client"),
    }
}

/// The same repo reached over git: a hub's git URL, the token as password.
pub async fn git_view(side: &Side) -> Result<Side> {
    if side.repo.platform == Platform::Git {
        return Ok(side.clone());
    }
    let path = match side.repo.repo_type {
        RepoType::Model => side.repo.id(),
        t => format!("{}/{}", t.plural(), side.repo.id()),
    };
    // The Hub's git credential is the account name with the token; ModelScope's is oauth2.
    let username = if side.hub.capabilities().git_user_is_account && side.token.is_some() {
        side.hub
            .whoami()
            .await
            .map(|w| w.name)
            .unwrap_or_else(|_| "user".into())
    } else {
        hubmigrate_hub::git::DEFAULT_USERNAME.to_string()
    };
    let repo = RepoRef::parse(&format!("git:{}/{path}.git", side.endpoint), RepoType::Model)?;
    let hub = Hub::Git(GitClient::new(&side.endpoint, &username, side.token.clone())?);
    Ok(Side {
        repo,
        endpoint: side.endpoint.clone(),
        token: side.token.clone(),
        token_var: side.token_var.clone(),
        username,
        hub,
    })
}

/// A source whose API refused to list (403) is read over git instead: says so once, plainly.
pub async fn fall_back(side: &Side, why: &hubmigrate_hub::Error) -> Result<Side> {
    tracing::warn!(
        "the source API refused to list {} ({why}): falling back to git — cloning without LFS content, reading LFS pointers, and fetching objects through the LFS batch API",
        side.repo
    );
    git_view(side).await
}

/// Is this the refusal that calls for the git fallback?
pub fn is_listing_refused(e: &hubmigrate_hub::Error) -> bool {
    e.status() == Some(403) || matches!(e, hubmigrate_hub::Error::Auth(m) if m.contains("403"))
}

/// Lists a git source: the files at the pinned commit, from a scratch clone.
pub async fn git_manifest(side: &Side, revision: Option<&str>, original: &Side) -> Result<Manifest> {
    let client = git_client(&side.hub);
    let mut m = client.manifest(&side.repo, revision).await?;
    if original.repo.platform != Platform::Git
        && let Ok(Some(state)) = original.hub.repo_state(&original.repo).await
    {
        m.private = state.private;
        m.gated = state.gated;
    }
    Ok(m)
}

/// Plans a migration to a git destination: clones the source (no LFS content), pins the
/// revision, picks the refs to push and lists the LFS objects their history points at, each a
/// file task (named by a path it appears under).
pub async fn plan_git_dest(
    sides: &mut Sides,
    args: &RunArgs,
) -> Result<(Manifest, Vec<pb::FileTask>, GitPlan, String)> {
    if !args.include.is_empty() || !args.exclude.is_empty() {
        return Err(Error::Input(
            "--include/--exclude cannot apply to a git destination: it receives the source's history as it is".into(),
        ));
    }
    let original = sides.source.clone();
    sides.source = git_view(&sides.source).await?;
    let client = git_client(&sides.source.hub).clone();
    let repo = sides.source.repo.clone();
    let mirrored = |refs: &hubmigrate_hub::git::RemoteRefs| -> Vec<String> {
        let all = refs.refs.iter().map(|(name, _)| name.clone());
        all.filter(|n| args.mirror && !NEVER_MIRRORED.iter().any(|p| n.starts_with(p)))
            .collect()
    };
    let snapshot = client.snapshot(&repo, args.revision.as_deref(), &mirrored).await?;
    let extra = mirrored(&snapshot.remote_refs);
    let skipped: Vec<SkippedRef> = snapshot
        .remote_refs
        .refs
        .iter()
        .filter_map(|(name, _)| {
            let p = NEVER_MIRRORED.iter().find(|p| args.mirror && name.starts_with(**p))?;
            Some(SkippedRef {
                name: name.clone(),
                reason: format!("{p}* refs are managed by the source hub"),
            })
        })
        .collect();
    client.adopt(snapshot.clone()).await;
    let branch = snapshot.branch.clone().unwrap_or_else(|| "main".to_string());
    let mut pushes = vec![(snapshot.commit.clone(), format!("refs/heads/{branch}"))];
    for name in &extra {
        if let Some(oid) = snapshot.remote_refs.get(name)
            && !pushes.iter().any(|(_, r)| r == name)
        {
            pushes.push((oid.to_string(), name.clone()));
        }
    }
    let files = hubmigrate_hub::git::files_at(&snapshot.local, &snapshot.commit).await?;
    let private = match original.hub.repo_state(&original.repo).await {
        Ok(Some(s)) => s.private,
        _ => client.repo_state(&repo).await?.is_none_or(|s| s.private),
    };
    let manifest = Manifest {
        repo: repo.clone(),
        commit: snapshot.commit.clone(),
        private,
        gated: false,
        license: None,
        files,
    };
    let tips: Vec<String> = pushes.iter().map(|(o, _)| o.clone()).collect();
    let tasks = history_objects(&snapshot, &tips).await?;
    Ok((
        manifest,
        tasks,
        GitPlan {
            snapshot,
            pushes,
            skipped,
        },
        branch,
    ))
}

/// Every LFS object the history of `tips` points at, once each.
async fn history_objects(snapshot: &Snapshot, tips: &[String]) -> Result<Vec<pb::FileTask>> {
    let blobs = snapshot.local.history_blobs(tips).await?;
    let pointers = pointers_of(&snapshot.local, &blobs).await?;
    let mut seen = HashSet::new();
    let mut paths = HashSet::new();
    let mut tasks = Vec::new();
    for b in &blobs {
        let Some(p) = pointers.get(&b.oid) else {
            continue;
        };
        if !seen.insert(p.oid.clone()) {
            continue;
        }
        let mut path = if b.path.is_empty() {
            p.oid.clone()
        } else {
            b.path.clone()
        };
        if !paths.insert(path.clone()) {
            path = format!("{path} [{}]", &p.oid[..12]);
            paths.insert(path.clone());
        }
        tasks.push(pb::FileTask {
            path,
            size: p.size,
            sha256: p.oid.clone(),
            git_oid: String::new(),
            lfs: true,
            slice: None,
            source_lfs: true,
        });
    }
    Ok(tasks)
}

/// Before any byte moves: objects over the host's LFS size limit are named (exit 2); with
/// `--pointer-only`, objects the destination lacks are named (exit 2). Returns how many objects
/// the destination already holds.
pub async fn check_destination(
    sides: &Sides,
    branch: &str,
    tasks: &[pb::FileTask],
    pointer_only: bool,
) -> Result<usize> {
    let dest = git_client(&sides.dest.hub);
    let objects: Vec<(String, u64)> = tasks.iter().map(|t| (t.sha256.clone(), t.size)).collect();
    let status = dest.check_objects(&sides.dest.repo, branch, &objects).await?;
    let mut refused = Vec::new();
    let mut missing = Vec::new();
    for (t, s) in tasks.iter().zip(&status) {
        match s {
            ObjectStatus::Refused(e) if e.code == 413 => refused.push(format!(
                "{} ({} bytes): larger than the host's LFS object size limit ({})",
                t.path, t.size, e.message
            )),
            ObjectStatus::Refused(e) => refused.push(format!("{}: refused ({} {})", t.path, e.code, e.message)),
            ObjectStatus::Needed => missing.push(format!("{} ({} bytes, sha256 {})", t.path, t.size, t.sha256)),
            ObjectStatus::Present => {}
        }
    }
    if !refused.is_empty() {
        return Err(Error::Input(format!(
            "{} refuses {} LFS object(s), nothing was sent:\n  {}",
            sides.dest.repo,
            refused.len(),
            refused.join("\n  ")
        )));
    }
    if pointer_only && !missing.is_empty() {
        let n = missing.len();
        missing.truncate(20);
        return Err(Error::Input(format!(
            "--pointer-only: {} lacks {n} LFS object(s) the history needs, nothing was pushed (run without --pointer-only to send them):\n  {}",
            sides.dest.repo,
            missing.join("\n  ")
        )));
    }
    // Nobody here sent the objects the host holds already: they are read back and hashed
    // before a push names them.
    let present: Vec<(String, String, u64)> = tasks
        .iter()
        .zip(&status)
        .filter(|(_, s)| **s == ObjectStatus::Present)
        .map(|(t, _)| (t.path.clone(), t.sha256.clone(), t.size))
        .collect();
    let n = present.len();
    hubmigrate_hub::readback::objects(&sides.dest.hub, &sides.dest.repo, present).await?;
    Ok(n)
}

/// How the push went.
pub struct Pushed {
    pub commit: String,
    pub refs: Vec<String>,
    pub rejected: Vec<SkippedRef>,
}

/// Pushes the planned refs. The migrated branch must land; in mirror mode other refs the host
/// rejects are listed, not fatal. Nothing is forced or deleted.
pub async fn push(sides: &Sides, plan: &GitPlan, branch: &str) -> Result<Pushed> {
    let dest = git_client(&sides.dest.hub);
    let specs: Vec<String> = plan.pushes.iter().map(|(o, r)| format!("{o}:{r}")).collect();
    let results = plan.snapshot.local.push(&dest.remote(&sides.dest.repo), &specs).await?;
    let main = format!("refs/heads/{branch}");
    let mut out = Pushed {
        commit: plan.snapshot.commit.clone(),
        refs: Vec::new(),
        rejected: Vec::new(),
    };
    for (_, r) in &plan.pushes {
        match results.iter().find(|p| &p.name == r) {
            Some(p) if p.ok => out.refs.push(r.clone()),
            Some(p) if *r == main => {
                return Err(Error::Transfer(format!(
                    "{} refused {r}: {}",
                    sides.dest.repo, p.summary
                )));
            }
            Some(p) => out.rejected.push(SkippedRef {
                name: r.clone(),
                reason: format!("rejected by the destination: {}", p.summary),
            }),
            None => out.rejected.push(SkippedRef {
                name: r.clone(),
                reason: "git reported nothing for it".into(),
            }),
        }
    }
    if !out.refs.contains(&main) {
        return Err(Error::Transfer(format!(
            "the push of {main} to {} did not happen",
            sides.dest.repo
        )));
    }
    for r in &out.rejected {
        tracing::warn!(r#ref = %r.name, reason = %r.reason, "ref not mirrored");
    }
    Ok(out)
}

/// Verifies a git destination: the files at `commit` as the destination serves them (a fresh
/// fetch from it) against the source's, and every LFS object of the pushed history present.
pub async fn verify(
    sides: &Sides,
    manifest: &Manifest,
    history: &[pb::FileTask],
    commit: &str,
) -> Result<Vec<Mismatch>> {
    let dest = git_client(&sides.dest.hub);
    let tasks = crate::flow::manifest::file_tasks(manifest, &sides.dest.hub);
    let mut mismatches =
        crate::flow::verify::migrated(sides, &manifest.commit, &tasks, &HashMap::new(), commit).await?;
    let objects: Vec<(String, u64)> = history.iter().map(|t| (t.sha256.clone(), t.size)).collect();
    let present = dest.has_objects(&sides.dest.repo, &objects).await?;
    let reported: HashSet<String> = mismatches.iter().map(|m| m.path.clone()).collect();
    for (t, ok) in history.iter().zip(present) {
        if !ok && !reported.contains(&t.path) {
            mismatches.push(Mismatch {
                path: t.path.clone(),
                kind: "missing",
                expected: format!("LFS object {} ({} bytes)", t.sha256, t.size),
                found: "nothing".into(),
            });
        }
    }
    Ok(mismatches)
}

/// `--use-remote-mirror`: the destination (a GitLab) pulls the source itself. Waits until the
/// mirrored branch head equals the source's, then returns that commit.
pub async fn remote_mirror(sides: &Sides, plan: &GitPlan, branch: &str, timeout: Duration) -> Result<String> {
    let dest = git_client(&sides.dest.hub);
    let src = git_client(&sides.source.hub);
    let import = hubmigrate_hub::git::gitlab::url_with_credentials(
        &src.url(&sides.source.repo),
        src.username(),
        sides.source.token.as_ref(),
    );
    dest.configure_pull_mirror(&sides.dest.repo, &import).await?;
    dest.trigger_pull(&sides.dest.repo).await?;
    tracing::info!(dest = %sides.dest.repo, "pull mirror configured and triggered; waiting for the host to pull");
    let want = plan.snapshot.commit.clone();
    let started = Instant::now();
    let mut last_log = Instant::now();
    loop {
        let status = dest.pull_status(&sides.dest.repo).await?;
        let head = dest.branch_head(&sides.dest.repo, branch).await?;
        if head.as_deref() == Some(want.as_str()) && status.state != "started" && status.state != "scheduled" {
            tracing::info!(commit = %want, secs = started.elapsed().as_secs(), "the mirror reached the source head");
            return Ok(want);
        }
        if status.state == "failed" {
            return Err(Error::Transfer(format!(
                "the pull mirror of {} failed: {}",
                sides.dest.repo,
                status.last_error.as_deref().unwrap_or("no reason given")
            )));
        }
        if started.elapsed() > timeout {
            return Err(Error::Transfer(format!(
                "the pull mirror of {} did not reach {want} within {}s (state {}, head {})",
                sides.dest.repo,
                timeout.as_secs(),
                status.state,
                head.as_deref().unwrap_or("none")
            )));
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(state = %status.state, head = head.as_deref().unwrap_or("none"), "waiting for the pull mirror");
            last_log = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
