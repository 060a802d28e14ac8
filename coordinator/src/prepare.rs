//! Fail fast, then prepare: every token and the destination namespace are checked before a
//! single byte moves; then the destination repo is created with the source's visibility.

use hubmigrate_hub::Error;
use hubmigrate_hub::hub::RepoState;

use crate::config::Sides;
use crate::run::Failure;

/// Checks the tokens (source if given, destination always unless planning) and the right to write
/// to the destination namespace. Returns the destination repo's state when it exists.
pub async fn validate(sides: &Sides, dry_run: bool) -> Result<Option<RepoState>, Failure> {
    if sides.source.token.is_some() {
        let who = sides.source.hub.whoami().await?;
        tracing::info!(user = %who.name, hub = %sides.source.endpoint, "source token is valid");
    }
    let dest = &sides.dest;
    if dest.token.is_none() && dry_run {
        tracing::warn!(
            "no destination token: the plan cannot check write access to {}",
            dest.repo
        );
        return Ok(dest.hub.repo_state(&dest.repo).await?);
    }
    let who = dest.hub.whoami().await?;
    let ns = &dest.repo.namespace;
    if !who.can_write {
        return Err(Error::Auth(format!(
            "the destination token of {} is read-only: a write token is needed for {}",
            who.name, dest.repo
        ))
        .into());
    }
    let member = who.name == *ns || who.orgs.iter().any(|o| o == ns);
    // Hubs that do not list organisations (ModelScope) are checked when the repo is created,
    // which still happens before any transfer.
    if !member && !who.orgs.is_empty() {
        return Err(Error::Auth(format!(
            "the destination token belongs to {} (orgs: {}), which cannot write to namespace {ns:?}",
            who.name,
            who.orgs.join(", ")
        ))
        .into());
    }
    if !member && dest.hub.platform() == hubmigrate_hub::reporef::Platform::Hf {
        return Err(Error::Auth(format!(
            "the destination token belongs to {}, which cannot write to namespace {ns:?}",
            who.name
        ))
        .into());
    }
    tracing::info!(user = %who.name, hub = %dest.endpoint, "destination token is valid");
    Ok(dest.hub.repo_state(&dest.repo).await?)
}

/// Creates the destination repo with the source's visibility, unless it exists.
pub async fn ensure_repo(sides: &Sides, private: bool, existing: Option<RepoState>) -> Result<(), Failure> {
    let dest = &sides.dest;
    match existing {
        Some(state) => {
            if private && !state.private {
                tracing::warn!(
                    "{} exists and is PUBLIC while the source is private: its files will be public",
                    dest.repo
                );
            }
            tracing::info!(repo = %dest.repo, "destination exists: updating it");
        }
        None => {
            let created = dest.hub.create_repo(&dest.repo, private).await?;
            tracing::info!(repo = %dest.repo, private, created, "destination repo ready");
        }
    }
    Ok(())
}
