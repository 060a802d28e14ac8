//! `migrate-coord validate-tokens`: for each hub with a token configured, whether it is valid,
//! whose it is, and (with `--namespace`) whether it can write there. Never prints a token.

use hubmigrate_hub::git::GitClient;
use hubmigrate_hub::hub::Hub;
use hubmigrate_hub::redact::Secret;
use hubmigrate_hub::reporef::Platform;

use crate::cli::ValidateArgs;
use crate::env::Env;
use crate::error::exit;
use crate::flow::resolve::{endpoint, token};

/// Checks every configured token; exit 0 when all are valid (and can write to the namespace).
pub async fn validate(args: &ValidateArgs, env: &Env) -> i32 {
    let mut code = exit::OK;
    let mut checked = 0;
    let git = args.git_endpoint.as_deref();
    for (platform, flag) in [
        (Platform::Hf, args.hf_endpoint.as_deref()),
        (Platform::Ms, args.ms_endpoint.as_deref()),
        (Platform::Git, git),
    ] {
        let var = platform.token_var();
        let tok = match platform {
            Platform::Git if git.is_none() => continue,
            Platform::Git => env.get(var).map(Secret::new),
            _ => token(platform, var, env, true).map(|(t, _)| t),
        };
        let Some(tok) = tok else { continue };
        checked += 1;
        let url = match platform {
            Platform::Git => git.unwrap_or_default().trim_end_matches('/').to_string(),
            _ => endpoint(platform, flag, None, env),
        };
        let user = env
            .get("TARGET_USERNAME")
            .unwrap_or(hubmigrate_hub::git::DEFAULT_USERNAME);
        let client = match platform {
            Platform::Git => GitClient::new(&url, user, Some(tok)).map(Hub::Git),
            _ => Hub::new(platform, &url, Some(tok)),
        };
        let result = match client {
            Ok(hub) => hub.whoami().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(who) => {
                let mut line = format!("{var}: valid for {url}, user {}", who.name);
                if !who.orgs.is_empty() {
                    line.push_str(&format!(" (orgs: {})", who.orgs.join(", ")));
                }
                line.push_str(if who.can_write { ", can write" } else { ", read-only" });
                if let Some(ns) = &args.namespace {
                    let member = who.name == *ns || who.orgs.iter().any(|o| o == ns);
                    let unknown = platform != Platform::Hf && !member;
                    if who.can_write && member {
                        line.push_str(&format!("; can write to {ns}"));
                    } else if unknown {
                        line.push_str(&format!(
                            "; write access to {ns} cannot be checked on ModelScope before creating a repo"
                        ));
                    } else {
                        line.push_str(&format!("; CANNOT write to {ns}"));
                        code = exit::BAD_INPUT;
                    }
                }
                println!("{line}");
            }
            Err(e) => {
                println!("{var}: INVALID for {url}: {e}");
                code = exit::BAD_INPUT;
            }
        }
    }
    if checked == 0 {
        println!(
            "no tokens configured: set HF_TOKEN, MODELSCOPE_TOKEN and/or TARGET_TOKEN with --git-endpoint (environment or --env-file)"
        );
        return exit::BAD_INPUT;
    }
    code
}
