//! Step 4, prepare the destination: create the repo with the source's visibility, or take the
//! one that exists (a single run updates it).

use hubmigrate_hub::hub::RepoState;

use crate::error::Result;
use crate::flow::metadata::Carried;
use crate::flow::resolve::Sides;

/// Creates the destination repo with the visibility and license `carried` says, unless it
/// exists.
pub async fn ensure_repo(sides: &Sides, carried: &Carried, existing: Option<RepoState>) -> Result<()> {
    let dest = &sides.dest;
    let private = carried.private;
    match existing {
        Some(state) => {
            if private && !state.private {
                tracing::warn!(
                    "{} exists and is PUBLIC while the source is private or gated: its files will be public",
                    dest.repo
                );
            }
            tracing::info!(repo = %dest.repo, "destination exists: updating it");
        }
        None => {
            let created = dest
                .hub
                .create_repo(&dest.repo, private, carried.license.as_deref())
                .await?;
            tracing::info!(repo = %dest.repo, private, created, "destination repo ready");
        }
    }
    Ok(())
}
