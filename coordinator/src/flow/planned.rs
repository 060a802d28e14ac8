//! Steps 1 to 3 as one: a migration resolved, its tokens checked, its source listed at a pinned
//! commit and planned into chunks: everything known before the first write, which the later
//! steps read.

use std::time::Duration;

use hubmigrate_hub::hub::RepoState;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_proto as pb;

use super::plan::Plan;
use super::resolve::{Resolved, Sides};
use super::{eta, git, manifest, plan, resolve};
use crate::cli::RunArgs;
use crate::env::Env;
use crate::error::{Error, Result};

/// A migration resolved, validated, listed and planned: everything before the first write.
pub struct Planned {
    pub sides: Sides,
    pub manifest: Manifest,
    /// Every file of the migration (for a git destination: every LFS object of the pushed
    /// history); the plan's chunks index into it.
    pub tasks: Vec<pb::FileTask>,
    pub plan: Plan,
    pub dest_exists: Option<RepoState>,
    /// The destination branch.
    pub branch: String,
    /// What a git destination gets pushed.
    pub git: Option<git::GitPlan>,
    /// The first ETA, and the model behind it.
    pub eta: Duration,
    pub model: eta::Model,
    /// What the hubs recommend that this migration exceeds (said in the plan).
    pub warnings: Vec<String>,
    /// The destination repo's visibility and license.
    pub metadata: super::metadata::Carried,
}

impl Planned {
    /// The whole-file tasks of each chunk (a split file's pieces become slices only once its
    /// upload is opened: [`super::transfer::multipart::open`]).
    pub fn chunk_tasks(&self) -> Vec<Vec<pb::FileTask>> {
        self.plan
            .chunks
            .iter()
            .map(|c| c.files.iter().map(|&i| self.tasks[i].clone()).collect())
            .collect()
    }

    /// The two sides as the workers see them (the source pinned to the manifest's commit).
    pub fn sides_pb(&self) -> (pb::Side, pb::Side) {
        let s = &self.sides;
        (
            side_pb(&s.source, &self.manifest.commit),
            side_pb(&s.dest, &self.branch),
        )
    }

    /// Bytes the workers move (a git destination: its history's LFS objects).
    pub fn bytes_moved(&self) -> u64 {
        self.plan.chunks.iter().map(|c| c.bytes).sum()
    }
}

fn side_pb(s: &resolve::Side, revision: &str) -> pb::Side {
    pb::Side {
        platform: s.repo.platform.as_str().into(),
        endpoint: s.endpoint.clone(),
        repo_type: s.repo.repo_type.as_str().into(),
        repo_id: s.repo.id(),
        revision: revision.into(),
        username: s.username.clone(),
    }
}

/// Steps 1 to 3: resolve, check tokens and the destination namespace, list the source at a
/// pinned commit, filter, plan. `Ok(Err(reason))` when there is nothing to do.
pub async fn plan_migration(args: &RunArgs, env: &Env) -> Result<Result<Planned, String>> {
    let mut sides = match resolve::resolve(args, env)? {
        Resolved::Migrate(s) => *s,
        Resolved::Skip(reason) => return Ok(Err(reason)),
    };
    let git_dest = sides.dest.hub.capabilities().git_history;
    if (args.mirror || args.pointer_only || args.use_remote_mirror) && !git_dest {
        return Err(Error::Input(
            "--mirror, --pointer-only and --use-remote-mirror need a git destination (a project URL ending in .git)"
                .into(),
        ));
    }
    // Tokens and the destination namespace are checked before a single byte moves.
    let dest_exists = resolve::validate(&sides, args.dry_run).await?;
    let (manifest, tasks, git, branch, moved, multipart) = if git_dest {
        let (manifest, tasks, git, branch) = git::plan_git_dest(&mut sides, args).await?;
        let moved: Vec<usize> = if args.pointer_only || args.use_remote_mirror {
            Vec::new()
        } else {
            (0..tasks.len()).collect()
        };
        (manifest, tasks, Some(git), branch, moved, false)
    } else {
        let mut manifest = manifest::source_manifest(&mut sides, args.revision.as_deref()).await?;
        manifest.filter(&args.include, &args.exclude);
        let tasks = manifest::file_tasks(&manifest, &sides.dest.hub);
        // Regular files of a git source are read by the coordinator from its clone, not by
        // workers.
        let git_source = sides.source.hub.capabilities().git_history;
        let moved: Vec<usize> = (0..tasks.len()).filter(|&i| tasks[i].lfs || !git_source).collect();
        let branch = sides.dest.hub.default_branch().to_string();
        let multipart = sides.dest.hub.capabilities().multipart_parts;
        (manifest, tasks, None, branch, moved, multipart)
    };
    // A gated source's files stay behind a gate or private: never into a public repo.
    if manifest.gated && dest_exists.is_some_and(|d| !d.private) {
        return Err(Error::Input(format!(
            "{} is gated and {} exists and is public: its files would be readable by anyone; make the \
             destination private first, or migrate to a new repo (created private); nothing was written",
            sides.source.repo, sides.dest.repo
        )));
    }
    // What the destination would refuse stops the run here, before anything is written.
    let objects: Vec<(&str, u64)> = moved
        .iter()
        .map(|&i| &tasks[i])
        .filter(|t| t.lfs)
        .map(|t| (t.path.as_str(), t.size))
        .collect();
    let refused = super::limits::refusals(&objects, sides.dest.hub.capabilities().max_object_size);
    if !refused.is_empty() {
        return Err(Error::Input(format!(
            "the destination would refuse {} file(s); nothing was written:\n  {}",
            refused.len(),
            refused.join("\n  ")
        )));
    }
    let plan = plan::plan_tasks(&tasks, &moved, args, multipart);
    let (eta, model) = eta::estimate(&sides, &manifest.commit, &tasks, &plan, args).await;
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let warnings = super::limits::warnings(
        &paths,
        sides.source.repo.platform,
        sides.source.token.is_none(),
        sides.dest.repo.platform,
    );
    let metadata = super::metadata::carried(&manifest, sides.source.repo.platform, sides.dest.repo.platform);
    Ok(Ok(Planned {
        metadata,
        sides,
        manifest,
        tasks,
        plan,
        dest_exists,
        branch,
        git,
        eta,
        model,
        warnings,
    }))
}
