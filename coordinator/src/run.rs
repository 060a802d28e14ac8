//! One migration, in the order of ../shared/DESIGN.md: resolve, validate tokens, manifest, plan,
//! prepare the destination, transfer (workers), commit once, verify, report.

use std::time::Instant;

use hubmigrate_hub::Error;
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_hub::reporef::Platform;
use hubmigrate_proto as pb;

use crate::cli::RunArgs;
use crate::config::{Resolved, Sides, resolve};
use crate::envfile::Env;
use crate::plan::{MIN_PIECE, Plan, chunk_count, max_pieces, plan_split};
use crate::progress::{bytes, duration};
use crate::report::{Report, exit};

/// How the run ended, for the exit code.
pub struct Outcome {
    pub code: i32,
    /// The finished report (also written to `--report` when given).
    pub report: Report,
}

/// A failure with the exit code it deserves.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl From<hubmigrate_hub::Error> for Failure {
    fn from(e: hubmigrate_hub::Error) -> Self {
        let code = if e.is_user_error() {
            exit::BAD_INPUT
        } else {
            exit::FAILURE
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            code: exit::FAILURE,
            message: format!("{e:#}"),
        }
    }
}

/// The files as the destination will store them: LFS where the source had LFS, and where the
/// destination refuses regular files of that size.
pub fn file_tasks(manifest: &Manifest, dest: &Hub) -> Vec<pb::FileTask> {
    manifest
        .files
        .iter()
        .map(|f| pb::FileTask {
            path: f.path.clone(),
            size: f.size,
            sha256: f.sha256.clone().unwrap_or_default(),
            git_oid: f.git_oid.clone().unwrap_or_default(),
            lfs: f.lfs || f.size > dest.max_regular_size(),
            slice: None,
            source_lfs: f.lfs,
        })
        .collect()
}

fn side(s: &crate::config::Side, revision: &str) -> pb::Side {
    pb::Side {
        platform: s.repo.platform.as_str().into(),
        endpoint: s.endpoint.clone(),
        repo_type: s.repo.repo_type.as_str().into(),
        repo_id: s.repo.id(),
        revision: revision.into(),
        username: s.username.clone(),
    }
}

/// Prints the plan: files, bytes, chunks, the largest chunk against the ideal, and the ETA.
fn print_plan(p: &Planned) {
    let (sides, manifest, plan, exists) = (&p.sides, &p.manifest, &p.plan, p.dest_exists.is_some());
    let vis = if manifest.private { "private" } else { "public" };
    let short = manifest.commit.get(..12).unwrap_or(&manifest.commit);
    eprintln!(
        "source  {} @ {short} ({vis}): {} files, {}",
        sides.source.repo,
        manifest.files.len(),
        bytes(manifest.total_bytes())
    );
    eprintln!(
        "dest    {} ({})",
        sides.dest.repo,
        if exists {
            "exists: files are added or updated"
        } else {
            "will be created with the same visibility"
        }
    );
    eprintln!(
        "plan    {} chunk(s), largest {} (ideal {}), ETA ~{} at {}",
        plan.chunks.len(),
        bytes(plan.largest()),
        bytes(plan.ideal()),
        duration(p.eta),
        p.model.describe()
    );
    let (files, pieces) = plan.split();
    if files > 0 {
        eprintln!("split   {files} large file(s) cut into {pieces} pieces spread over the chunks (multipart uploads)");
    }
}

/// Runs (or with `dry_run`, plans) one migration and returns its exit code.
pub async fn run(args: RunArgs, env: Env, dry_run: bool, log_format: &'static str) -> Outcome {
    let started = Instant::now();
    let mut report = Report::started(&args.source, args.dest.as_deref());
    let result = execute(&args, &env, dry_run, log_format, &mut report).await;
    let status_ok = if dry_run { "planned" } else { "verified" };
    conclude(report, result, started, status_ok, !dry_run, args.report.as_deref())
}

/// Finishes a report: duration, rate, status and exit code from `result`; prints the summary
/// (unless `summary` is false or the input was bad) and writes the report file.
pub fn conclude(
    mut report: Report,
    result: Result<i32, Failure>,
    started: Instant,
    status_ok: &str,
    summary: bool,
    path: Option<&std::path::Path>,
) -> Outcome {
    report.duration_secs = started.elapsed().as_secs_f64();
    report.rate_bytes_per_sec = report.bytes_uploaded as f64 / report.duration_secs.max(0.001);
    let code = match result {
        Ok(code) => code,
        Err(f) => {
            report.error = Some(f.message.clone());
            eprintln!("error: {}", f.message);
            f.code
        }
    };
    report.exit_code = code;
    report.status = match code {
        exit::OK => status_ok,
        exit::MISMATCH => "mismatch",
        exit::BAD_INPUT => "bad-input",
        _ => "failed",
    }
    .into();
    if summary && code != exit::BAD_INPUT {
        eprint!("{}", report.summary());
    }
    if let Some(path) = path
        && let Err(e) = report.write(path)
    {
        eprintln!("error: {e:#}");
        return Outcome {
            code: exit::FAILURE,
            report,
        };
    }
    Outcome { code, report }
}

/// Lists the source at `revision`; a hub whose listing API refuses (403) is read over git
/// instead, and `sides.source` becomes that git view.
pub async fn source_manifest(sides: &mut Sides, revision: Option<&str>) -> Result<Manifest, Failure> {
    match sides.source.hub.manifest(&sides.source.repo, revision).await {
        Ok(m) => Ok(m),
        Err(e) if crate::gitflow::is_listing_refused(&e) && sides.source.repo.platform != Platform::Git => {
            let original = sides.source.clone();
            sides.source = crate::gitflow::fall_back(&sides.source, &e).await?;
            crate::gitflow::git_manifest(&sides.source, revision, &original).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A migration resolved, validated, listed and planned: everything before the first write.
pub struct Planned {
    pub sides: Sides,
    pub manifest: Manifest,
    /// Every file of the migration (for a git destination: every LFS object of the pushed
    /// history); the plan's chunks index into it.
    pub tasks: Vec<pb::FileTask>,
    pub plan: Plan,
    pub dest_exists: Option<hubmigrate_hub::hub::RepoState>,
    /// The destination branch.
    pub branch: String,
    /// What a git destination gets pushed.
    pub git: Option<crate::gitflow::GitPlan>,
    /// The first ETA, and the model behind it.
    pub eta: std::time::Duration,
    pub model: crate::eta::Model,
}

impl Planned {
    /// The whole-file tasks of each chunk (a split file's pieces become slices only once its
    /// upload is opened: [`crate::split::open`]).
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
        (side(&s.source, &self.manifest.commit), side(&s.dest, &self.branch))
    }
}

/// Steps 1 to 3: resolve, check tokens and the destination namespace, list the source at a
/// pinned commit, filter, plan. `Ok(None)` when there is nothing to do (with the reason logged).
pub async fn plan_migration(args: &RunArgs, env: &Env, dry_run: bool) -> Result<Option<Planned>, Failure> {
    let mut sides = match resolve(args, env)? {
        Resolved::Migrate(s) => *s,
        Resolved::Skip(reason) => {
            tracing::warn!("{reason}");
            return Ok(None);
        }
    };
    let git_dest = sides.dest.repo.platform == Platform::Git;
    if (args.mirror || args.pointer_only || args.use_remote_mirror) && !git_dest {
        return Err(Error::Input(
            "--mirror, --pointer-only and --use-remote-mirror need a git destination (a project URL ending in .git)"
                .into(),
        )
        .into());
    }
    // Tokens and the destination namespace are checked before a single byte moves.
    let dest_exists = crate::prepare::validate(&sides, dry_run).await?;
    if git_dest {
        let (manifest, tasks, git, branch) = crate::gitflow::plan_git_dest(&mut sides, args).await?;
        let moved: Vec<usize> = if args.pointer_only || args.use_remote_mirror {
            Vec::new()
        } else {
            (0..tasks.len()).collect()
        };
        let plan = plan_subset(&tasks, &moved, args, false);
        let (eta, model) = estimate(&sides, &manifest.commit, &tasks, &plan, args).await;
        return Ok(Some(Planned {
            sides,
            manifest,
            tasks,
            plan,
            dest_exists,
            branch,
            git: Some(git),
            eta,
            model,
        }));
    }
    let mut manifest = source_manifest(&mut sides, args.revision.as_deref()).await?;
    manifest.filter(&args.include, &args.exclude);
    let tasks = file_tasks(&manifest, &sides.dest.hub);
    // Regular files of a git source are read by the coordinator from its clone, not by workers.
    let moved: Vec<usize> = (0..tasks.len())
        .filter(|&i| tasks[i].lfs || sides.source.repo.platform != Platform::Git)
        .collect();
    let plan = plan_subset(&tasks, &moved, args, crate::split::splittable(&sides.dest.hub));
    let branch = sides.dest.hub.default_branch().to_string();
    let (eta, model) = estimate(&sides, &manifest.commit, &tasks, &plan, args).await;
    Ok(Some(Planned {
        sides,
        manifest,
        tasks,
        plan,
        dest_exists,
        branch,
        git: None,
        eta,
        model,
    }))
}

/// The plan's ETA: a probe of the source's per-connection rate, then the throughput model.
async fn estimate(
    sides: &Sides,
    commit: &str,
    tasks: &[pb::FileTask],
    plan: &Plan,
    args: &RunArgs,
) -> (std::time::Duration, crate::eta::Model) {
    let probed = crate::eta::probe(&sides.source, commit, tasks, plan).await;
    let model = crate::eta::Model {
        per_connection: probed.map(|p| p.rate).unwrap_or(crate::eta::ASSUMED_RATE),
        latency: probed.map(|p| p.latency).unwrap_or(0.0),
        measured: probed.is_some(),
        concurrency: args.worker_concurrency.max(1) as usize,
        streams: args.streams.max(1) as usize,
        multipart: crate::split::splittable(&sides.dest.hub),
        max_workers: args.max_workers.max(1) as usize,
        cap: args.rate_cap.map(|c| c as f64),
    };
    (model.eta(plan, tasks), model)
}

/// Plans the tasks at `moved` (indices into `tasks`) into chunks whose file indices point into
/// `tasks`. With `multipart` (the destination takes multipart uploads), large LFS files may be
/// split across chunks.
fn plan_subset(tasks: &[pb::FileTask], moved: &[usize], args: &RunArgs, multipart: bool) -> Plan {
    let sizes: Vec<u64> = moved.iter().map(|&i| tasks[i].size).collect();
    let splittable = |k: usize| {
        let t = &tasks[moved[k]];
        multipart && t.lfs && t.source_lfs && t.sha256.len() == 64
    };
    // "A file larger than the chunk size is split": pieces are never smaller than it.
    let min_piece = args.chunk_size.clamp(1, MIN_PIECE);
    let pieces: usize = (0..sizes.len())
        .map(|k| max_pieces(sizes[k], splittable(k), min_piece))
        .sum();
    let n = chunk_count(
        sizes.iter().sum(),
        pieces,
        args.chunk_size,
        args.max_workers as usize,
        args.parallel,
    );
    let mut p = plan_split(&sizes, n, min_piece, splittable);
    for c in &mut p.chunks {
        for f in &mut c.files {
            *f = moved[*f];
        }
        for piece in &mut c.pieces {
            piece.file = moved[piece.file];
        }
    }
    p
}

async fn execute(
    args: &RunArgs,
    env: &Env,
    dry_run: bool,
    log_format: &'static str,
    report: &mut Report,
) -> Result<i32, Failure> {
    // 1-3. Resolve, validate, manifest, plan.
    let Some(p) = plan_migration(args, env, dry_run).await? else {
        return Ok(exit::OK);
    };
    let Planned {
        sides,
        manifest,
        tasks,
        plan,
        dest_exists,
        ..
    } = &p;
    report.source = sides.source.repo.to_string();
    report.dest = sides.dest.repo.to_string();
    report.source_commit = manifest.commit.clone();
    report.files = manifest.files.len();
    report.bytes = manifest.total_bytes();
    report.chunks = plan.chunks.len();
    print_plan(&p);
    report.eta_secs = p.eta.as_secs_f64();
    if let Some(git) = &p.git {
        eprintln!(
            "history {} ref(s) to push; {} LFS object(s) in that history, {}{}",
            git.pushes.len(),
            tasks.len(),
            bytes(tasks.iter().map(|t| t.size).sum()),
            if args.pointer_only {
                " (--pointer-only: none sent)"
            } else if args.use_remote_mirror {
                " (--use-remote-mirror: the destination pulls them)"
            } else {
                ""
            }
        );
    }
    if dry_run {
        return Ok(exit::OK);
    }
    let dest_exists = *dest_exists;

    // 4. Prepare the destination.
    crate::prepare::ensure_repo(sides, manifest.private, dest_exists).await?;
    if p.git.is_some() {
        return execute_git(args, &p, log_format, report).await;
    }
    let branch = p.branch.as_str();

    // 5. Transfer (files split across workers get their multipart uploads opened first and
    // completed after).
    let opened = crate::split::open(&p).await?;
    let results = transfer(args, &p, opened, log_format, report).await?;
    let results = if sides.source.repo.platform == Platform::Git {
        crate::finish::fill_results(sides, &manifest.commit, tasks, results).await?
    } else {
        results
    };
    report.bytes_uploaded = results.values().map(|r| r.bytes_sent).sum();
    report.files_already_present = results
        .values()
        .filter(|r| r.outcome() == pb::FileOutcome::AlreadyPresent)
        .count();

    // 6. Commit once, then 7. verify.
    let (commit, mismatches, inline_bytes) =
        crate::finish::commit_and_verify(sides, manifest, tasks, &results, branch).await?;
    report.bytes_uploaded += inline_bytes;
    report.dest_commit = Some(commit);
    Ok(verdict(report, mismatches))
}

/// Records the verification in the report and picks the exit code.
pub fn verdict(report: &mut Report, mismatches: Vec<crate::report::Mismatch>) -> i32 {
    report.verified = mismatches.is_empty();
    let code = if mismatches.is_empty() {
        exit::OK
    } else {
        exit::MISMATCH
    };
    report.mismatches = mismatches;
    code
}

/// A git destination: objects first (workers), then the history (one push), then verification.
async fn execute_git(
    args: &RunArgs,
    p: &Planned,
    log_format: &'static str,
    report: &mut Report,
) -> Result<i32, Failure> {
    let (sides, git) = (&p.sides, p.git.as_ref().expect("a git plan"));
    let commit = if args.use_remote_mirror {
        crate::gitflow::remote_mirror(sides, git, &p.branch, args.mirror_timeout).await?
    } else {
        let present = crate::gitflow::check_destination(sides, &p.branch, &p.tasks, args.pointer_only).await?;
        if !p.plan.chunks.is_empty() && present < p.tasks.len() {
            let opened = crate::split::Opened {
                chunks: p.chunk_tasks(),
                uploads: Vec::new(),
            };
            let results = transfer(args, p, opened, log_format, report).await?;
            report.bytes_uploaded = results.values().map(|r| r.bytes_sent).sum();
        }
        report.files_already_present = present;
        let pushed = crate::gitflow::push(sides, git, &p.branch).await?;
        tracing::info!(refs = pushed.refs.len(), commit = %pushed.commit, "history pushed");
        report.refs_pushed = pushed.refs;
        report.refs_skipped = git.skipped.iter().cloned().chain(pushed.rejected).collect();
        pushed.commit
    };
    report.dest_commit = Some(commit.clone());
    let mismatches = crate::gitflow::verify(sides, &p.manifest, &p.tasks, &commit).await?;
    Ok(verdict(report, mismatches))
}

/// Step 5: one worker per chunk (`opened`: each one's tasks, and the uploads of split files);
/// returns the per-file results by path.
async fn transfer(
    args: &RunArgs,
    p: &Planned,
    opened: crate::split::Opened,
    log_format: &'static str,
    report: &mut Report,
) -> Result<std::collections::HashMap<String, pb::FileResult>, Failure> {
    let sides = &p.sides;
    let migration_id = format!("m-{}", &crate::secret::random_hex(6));
    report.migration_id = migration_id.clone();
    let (source, dest) = p.sides_pb();
    let transfer = crate::transfer::Transfer {
        migration_id: migration_id.clone(),
        source,
        dest,
        chunks: opened.chunks,
        uploads: (sides.dest.hub.clone(), opened.uploads),
        total_bytes: report.bytes,
        max_workers: args.max_workers as usize,
        max_attempts: args.max_attempts,
        concurrency: args.worker_concurrency,
        streams: args.streams,
    };
    let worker_env = crate::executor::WorkerEnv {
        coordinator: String::new(),
        migration_id,
        secret: crate::secret::random_hex(24),
        source_token: sides.source.token.as_ref().map(|t| t.expose().to_string()),
        dest_token: sides.dest.token.as_ref().map(|t| t.expose().to_string()),
        log_format,
    };
    let bin = crate::executor::LocalExecutor::worker_bin(args.worker_bin.clone())?;
    crate::transfer::run(transfer, bin, worker_env).await
}
