//! Step 2, manifest: the source listed at one pinned commit, and the files as the destination
//! will store them. A hub whose listing API refuses (403) is read over git instead, and so is a
//! repo of many regular files: one fetch of the pack instead of one resolve per file.

use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_hub::reporef::Platform;
use hubmigrate_proto as pb;

use crate::error::Result;
use crate::flow::git;
use crate::flow::resolve::Sides;

/// Regular files from which a hub's repo is read over git: each regular file read through the
/// API costs one request against the hub's quota (a resolve on the Hugging Face Hub, whose free
/// plan allows 5,000 per 5 minutes), while one git fetch brings them all in a handful (three
/// requests). Below this the API is used: a few dozen resolves, read in parallel by the workers,
/// cost less than a scratch clone of the repo's history.
pub const READ_OVER_GIT_FROM: usize = 100;

/// Lists the source at `revision`; a hub whose listing API refuses (403) is read over git
/// instead, and so is a repo of [`READ_OVER_GIT_FROM`] regular files or more (at the commit the
/// API listed): `sides.source` becomes that git view.
pub async fn source_manifest(sides: &mut Sides, revision: Option<&str>) -> Result<Manifest> {
    match sides.source.hub.manifest(&sides.source.repo, revision).await {
        Ok(m) => {
            let regular = m.files.iter().filter(|f| !f.lfs).count();
            if regular < READ_OVER_GIT_FROM || sides.source.repo.platform == Platform::Git {
                return Ok(m);
            }
            tracing::info!(
                regular,
                "many regular files: reading them with one git fetch instead of one request each"
            );
            let original = sides.source.clone();
            let over_git = async {
                let view = git::git_view(&original).await?;
                let listed = git::git_manifest(&view, Some(&m.commit), &original).await?;
                Ok::<_, crate::error::Error>((view, listed))
            };
            match over_git.await {
                Ok((view, listed)) => {
                    sides.source = view;
                    Ok(listed)
                }
                // The API still works: read one file a request, as below the threshold.
                Err(e) => {
                    tracing::warn!(error = %e, "reading the source over git failed; reading its files through the API");
                    Ok(m)
                }
            }
        }
        Err(e) if git::is_listing_refused(&e) && sides.source.repo.platform != Platform::Git => {
            let original = sides.source.clone();
            sides.source = git::fall_back(&sides.source, &e).await?;
            git::git_manifest(&sides.source, revision, &original).await
        }
        Err(e) => Err(e.into()),
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
