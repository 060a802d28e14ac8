//! Resolve: turns the command line and the environment into the two sides of a migration (repo,
//! endpoint, token, client). Bad references or missing tokens are user errors (exit code 2).

use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};
use hubmigrate_hub::{Error, Result};

use crate::cli::{RepoTypeArg, RunArgs};
use crate::envfile::Env;

/// One side of a migration.
#[derive(Clone, Debug)]
pub struct Side {
    pub repo: RepoRef,
    pub endpoint: String,
    pub token: Option<Secret>,
    /// Git hosts: the user name that goes with the token.
    pub username: String,
    pub hub: Hub,
}

/// Both sides.
#[derive(Clone, Debug)]
pub struct Sides {
    pub source: Side,
    pub dest: Side,
}

/// What resolving the arguments gave.
pub enum Resolved {
    Migrate(Box<Sides>),
    /// Nothing to do (a space cannot go to ModelScope without `--repo-type model`): the reason.
    Skip(String),
}

fn repo_type(arg: Option<RepoTypeArg>) -> RepoType {
    match arg {
        Some(RepoTypeArg::Dataset) => RepoType::Dataset,
        Some(RepoTypeArg::Space) => RepoType::Space,
        _ => RepoType::Model,
    }
}

/// The base URL for `platform`: flag, then the reference's own URL, then the ecosystem variables.
pub fn endpoint(platform: Platform, flag: Option<&str>, from_ref: Option<&str>, env: &Env) -> String {
    let chosen = flag
        .map(str::to_string)
        .or_else(|| from_ref.map(str::to_string))
        .or_else(|| match platform {
            Platform::Git => None,
            Platform::Hf => env.get("HF_ENDPOINT").map(str::to_string),
            Platform::Ms => env.get("MODELSCOPE_ENDPOINT").map(str::to_string).or_else(|| {
                env.get("MODELSCOPE_DOMAIN").map(|d| {
                    if d.contains("://") {
                        d.to_string()
                    } else {
                        format!("https://{d}")
                    }
                })
            }),
        });
    chosen
        .unwrap_or_else(|| platform.default_endpoint().to_string())
        .trim_end_matches('/')
        .to_string()
}

/// The token for a side: the per-side override, else the hub's own variable (for git hosts:
/// `TARGET_TOKEN`, on the destination side only).
pub fn token(platform: Platform, side_var: &str, env: &Env) -> Option<Secret> {
    let hub_var = match platform {
        Platform::Hf => "HF_TOKEN",
        Platform::Ms => "MODELSCOPE_TOKEN",
        Platform::Git if side_var == DEST_TOKEN => "TARGET_TOKEN",
        Platform::Git => side_var,
    };
    env.get(side_var).or_else(|| env.get(hub_var)).map(Secret::new)
}

/// The per-side token variables.
pub const SOURCE_TOKEN: &str = "HUBMIGRATE_SOURCE_TOKEN";
pub const DEST_TOKEN: &str = "HUBMIGRATE_DEST_TOKEN";

/// The git user name of a side: from the URL, else `TARGET_USERNAME` (destination) or
/// `HUBMIGRATE_SOURCE_USERNAME` (source), else `oauth2`.
fn username(repo: &RepoRef, side_var: &str, env: &Env) -> String {
    let var = if side_var == DEST_TOKEN {
        "TARGET_USERNAME"
    } else {
        "HUBMIGRATE_SOURCE_USERNAME"
    };
    repo.credentials
        .as_ref()
        .map(|(u, _)| u.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| env.get(var).map(str::to_string))
        .unwrap_or_else(|| hubmigrate_hub::git::DEFAULT_USERNAME.to_string())
}

/// Resolves `--source`, `--dest`/`--to`, endpoints and tokens.
pub fn resolve(args: &RunArgs, env: &Env) -> Result<Resolved> {
    let default_type = repo_type(args.repo_type);
    let source = RepoRef::parse(&args.source, default_type)?;
    let mut dest = match (&args.dest, &args.to) {
        (Some(d), _) => RepoRef::parse(d, source.repo_type)?,
        (None, Some(to)) => source.on(Platform::parse(to)?),
        (None, None) => return Err(Error::Input("say where to: --dest REPO or --to hf|ms".into())),
    };
    if source.repo_type == RepoType::Space && dest.platform == Platform::Ms {
        if args.repo_type != Some(RepoTypeArg::Model) {
            return Ok(Resolved::Skip(format!(
                "{source} is a space and ModelScope has no spaces: skipped (pass --repo-type model to migrate its files into a model repo)"
            )));
        }
        dest.repo_type = RepoType::Model;
    }
    let side = |repo: RepoRef, flag: Option<&String>, var: &str| -> Result<Side> {
        let endpoint = endpoint(repo.platform, flag.map(String::as_str), repo.endpoint.as_deref(), env);
        let token = match &repo.credentials {
            Some((_, t)) => Some(t.clone()),
            None => token(repo.platform, var, env),
        };
        let username = username(&repo, var, env);
        let hub = match repo.platform {
            Platform::Git => Hub::Git(hubmigrate_hub::git::GitClient::new(
                &endpoint,
                &username,
                token.clone(),
            )?),
            p => Hub::new(p, &endpoint, token.clone())?,
        };
        Ok(Side {
            repo,
            endpoint,
            token,
            username,
            hub,
        })
    };
    let source = side(source, args.source_endpoint.as_ref(), SOURCE_TOKEN)?;
    let dest = side(dest, args.dest_endpoint.as_ref(), DEST_TOKEN)?;
    if source.endpoint == dest.endpoint && source.repo == dest.repo {
        return Err(Error::Input("source and destination are the same repo".into()));
    }
    Ok(Resolved::Migrate(Box::new(Sides { source, dest })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_ecosystem_variables() {
        let env = Env::from_pairs(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("MODELSCOPE_DOMAIN", "ms.example"),
        ]);
        assert_eq!(endpoint(Platform::Hf, None, None, &env), "http://127.0.0.1:9");
        assert_eq!(endpoint(Platform::Ms, None, None, &env), "https://ms.example");
        assert_eq!(endpoint(Platform::Ms, Some("http://x"), None, &env), "http://x");
        assert_eq!(
            endpoint(Platform::Hf, None, None, &Env::default()),
            "https://huggingface.co"
        );
        let env = Env::from_pairs(&[("HF_TOKEN", "a"), ("HUBMIGRATE_DEST_TOKEN", "b")]);
        assert_eq!(
            token(Platform::Hf, "HUBMIGRATE_DEST_TOKEN", &env).unwrap().expose(),
            "b"
        );
        assert_eq!(
            token(Platform::Hf, "HUBMIGRATE_SOURCE_TOKEN", &env).unwrap().expose(),
            "a"
        );
        assert!(token(Platform::Ms, "HUBMIGRATE_SOURCE_TOKEN", &env).is_none());
    }
}
