//! `hubsim seed`: builds a synthetic repo directly on disk. (Filled in below.)
use crate::cli::SeedArgs;

/// Builds the repo described by `args`.
pub async fn run(_args: SeedArgs) -> anyhow::Result<()> {
    anyhow::bail!("seed is not available yet")
}
