//! Step 1, resolve: turns the command line and the environment into the two sides of a migration
//! (repo, endpoint, token, client), then checks every token and the right to write to the
//! destination namespace before a single byte moves. Bad references or tokens are user errors
//! (exit code 2).

use hubmigrate_hub::hub::{Hub, RepoState};
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::{Platform, RepoRef, RepoType};

use crate::cli::{RepoTypeArg, RunArgs};
use crate::env::Env;
use crate::error::{Error, Result};

/// One side of a migration.
#[derive(Clone, Debug)]
pub struct Side {
    pub repo: RepoRef,
    pub endpoint: String,
    pub token: Option<Secret>,
    /// The environment variable the token was read from (`None`: from the URL, or no token), so
    /// that workers on a cluster read the same key of the tokens Secret.
    pub token_var: Option<String>,
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
        .or_else(|| platform.endpoint_var().and_then(|v| env.get(v)).map(str::to_string))
        .or_else(|| match platform {
            Platform::Git | Platform::Hf => None,
            Platform::Ms => env.get("MODELSCOPE_DOMAIN").map(|d| {
                if d.contains("://") {
                    d.to_string()
                } else {
                    format!("https://{d}")
                }
            }),
        });
    chosen
        .unwrap_or_else(|| platform.default_endpoint().to_string())
        .trim_end_matches('/')
        .to_string()
}

/// The token for a side and the variable it came from: the per-side override, else the hub's own
/// variable (for git hosts: `TARGET_TOKEN`, on the destination side only). `hub_var_ok` false
/// (the source, when the destination is another host of the same platform, which owns the
/// platform's variable) leaves only the per-side override.
pub fn token(platform: Platform, side_var: &str, env: &Env, hub_var_ok: bool) -> Option<(Secret, String)> {
    let hub_var = match platform {
        Platform::Git if side_var != DEST_TOKEN => side_var,
        _ if !hub_var_ok => side_var,
        p => p.token_var(),
    };
    [side_var, hub_var]
        .into_iter()
        .find_map(|var| env.get(var).map(|t| (Secret::new(t), var.to_string())))
}

/// `host[:port]` of each endpoint variable set (`HF_ENDPOINT`, `MODELSCOPE_ENDPOINT`,
/// `MODELSCOPE_DOMAIN`): a URL reference on such a host names that platform's hub.
fn named_hosts(env: &Env) -> Vec<(Platform, String)> {
    [Platform::Hf, Platform::Ms]
        .into_iter()
        .filter_map(|p| {
            let set = p.endpoint_var().and_then(|v| env.get(v)).is_some()
                || (p == Platform::Ms && env.get("MODELSCOPE_DOMAIN").is_some());
            set.then(|| (p, endpoint(p, None, None, env)))
        })
        .filter_map(|(p, url)| {
            let rest = url.split_once("://")?.1;
            Some((p, rest.split('/').next()?.to_ascii_lowercase()))
        })
        .collect()
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
    resolve_refs(args, env).map_err(Error::from)
}

fn resolve_refs(args: &RunArgs, env: &Env) -> hubmigrate_hub::Result<Resolved> {
    use hubmigrate_hub::Error;
    let default_type = repo_type(args.repo_type);
    let hosts = named_hosts(env);
    let source = RepoRef::parse_with(&args.source, default_type, &hosts)?;
    let mut dest = match (&args.dest, &args.to) {
        (Some(d), _) => RepoRef::parse_with(d, source.repo_type, &hosts)?,
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
    let source_endpoint = endpoint(
        source.platform,
        args.source_endpoint.as_deref(),
        source.endpoint.as_deref(),
        env,
    );
    let dest_endpoint = endpoint(
        dest.platform,
        args.dest_endpoint.as_deref(),
        dest.endpoint.as_deref(),
        env,
    );
    // A platform's token variable belongs to one host: when both sides are different hosts of
    // the same platform, the destination's; the source then takes HUBMIGRATE_SOURCE_TOKEN.
    let two_hosts = source.platform == dest.platform && !same_origin(&source_endpoint, &dest_endpoint);
    let side = |repo: RepoRef, endpoint: String, var: &str| -> hubmigrate_hub::Result<Side> {
        let hub_var_ok = var == DEST_TOKEN || !two_hosts;
        let (token, token_var) = match &repo.credentials {
            Some((_, t)) => (Some(t.clone()), None),
            None => match token(repo.platform, var, env, hub_var_ok) {
                Some((t, v)) => (Some(t), Some(v)),
                None => (None, None),
            },
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
            token_var,
            username,
            hub,
        })
    };
    let hub_var = source.platform.token_var();
    if two_hosts && source.platform != Platform::Git && env.get(SOURCE_TOKEN).is_none() && env.get(hub_var).is_some() {
        tracing::warn!(
            "{hub_var} is the destination's ({}): the source {} is read without a token; give its token in {SOURCE_TOKEN} if it is private",
            hubmigrate_hub::redact::url(&dest_endpoint),
            hubmigrate_hub::redact::url(&source_endpoint),
        );
    }
    let source = side(source, source_endpoint, SOURCE_TOKEN)?;
    let dest = side(dest, dest_endpoint, DEST_TOKEN)?;
    if source.endpoint == dest.endpoint && source.repo == dest.repo {
        return Err(Error::Input("source and destination are the same repo".into()));
    }
    Ok(Resolved::Migrate(Box::new(Sides { source, dest })))
}

/// Whether two base URLs share scheme, host and port (case aside, default ports left out).
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        let scheme = scheme.to_ascii_lowercase();
        let host = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        let host = host.strip_suffix(default).unwrap_or(&host).to_string();
        (scheme, host)
    };
    origin(a) == origin(b)
}

/// Both sides of two existing repos (`verify`, `cleanup`, `batch`'s check): a pair `run` would
/// skip is bad input here.
pub fn sides(args: &RunArgs, env: &Env) -> Result<Sides> {
    match resolve(args, env)? {
        Resolved::Migrate(s) => Ok(*s),
        Resolved::Skip(reason) => Err(Error::Input(reason)),
    }
}

/// Checks the tokens (source if given, destination always unless planning) and the right to write
/// to the destination namespace. Returns the destination repo's state when it exists.
pub async fn validate(sides: &Sides, dry_run: bool) -> Result<Option<RepoState>> {
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
        return Err(hubmigrate_hub::Error::Auth(format!(
            "the destination token of {} is read-only: a write token is needed for {}",
            who.name, dest.repo
        ))
        .into());
    }
    let member = who.name == *ns || who.orgs.iter().any(|o| o == ns);
    // Hubs that do not list organisations (ModelScope) are checked when the repo is created,
    // which still happens before any transfer.
    if !member && !who.orgs.is_empty() {
        return Err(hubmigrate_hub::Error::Auth(format!(
            "the destination token belongs to {} (orgs: {}), which cannot write to namespace {ns:?}",
            who.name,
            who.orgs.join(", ")
        ))
        .into());
    }
    if !member && dest.hub.platform() == Platform::Hf {
        return Err(hubmigrate_hub::Error::Auth(format!(
            "the destination token belongs to {}, which cannot write to namespace {ns:?}",
            who.name
        ))
        .into());
    }
    tracing::info!(user = %who.name, hub = %dest.endpoint, "destination token is valid");
    Ok(dest.hub.repo_state(&dest.repo).await?)
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
            token(Platform::Hf, "HUBMIGRATE_DEST_TOKEN", &env, true)
                .unwrap()
                .0
                .expose(),
            "b"
        );
        assert_eq!(
            token(Platform::Hf, "HUBMIGRATE_SOURCE_TOKEN", &env, true).unwrap().1,
            "HF_TOKEN"
        );
        assert!(token(Platform::Ms, "HUBMIGRATE_SOURCE_TOKEN", &env, true).is_none());
        assert!(token(Platform::Hf, "HUBMIGRATE_SOURCE_TOKEN", &env, false).is_none());
    }
}
