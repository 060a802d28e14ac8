//! Step 2, manifest: the source listed at one pinned commit, and the files as the destination
//! will store them. A hub whose listing API refuses (403) is read over git instead.

use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::manifest::Manifest;
use hubmigrate_hub::reporef::Platform;
use hubmigrate_proto as pb;

use crate::error::Result;
use crate::flow::git;
use crate::flow::resolve::Sides;

/// Lists the source at `revision`; a hub whose listing API refuses (403) is read over git
/// instead, and `sides.source` becomes that git view.
pub async fn source_manifest(sides: &mut Sides, revision: Option<&str>) -> Result<Manifest> {
    match sides.source.hub.manifest(&sides.source.repo, revision).await {
        Ok(m) => Ok(m),
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
