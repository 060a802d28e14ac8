//! `migrate-coord run --executor kubernetes`: creates a `Migration` (and, unless one is named, a
//! Secret with this environment's tokens), then follows its status with the same progress display
//! as a local run; `--detach` returns at once with the command to watch it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::crd::{Endpoints, Migration, MigrationSpec, Phase};
use super::policy::TOKENS_LABEL;
use crate::cli::RunArgs;
use crate::env::Env;
use crate::error::exit;
use crate::flow::resolve::{DEST_TOKEN, SOURCE_TOKEN, endpoint};
use crate::terminal::Progress;
use hubmigrate_hub::reporef::Platform;

/// A DNS-1123 name for the Migration: the destination's repo name and a random suffix.
fn migration_name(dest: &str) -> String {
    let base: String = dest
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("migration")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let base = base.trim_matches('-');
    format!(
        "{}-{}",
        if base.is_empty() { "migration" } else { base },
        crate::ids::random_hex(3)
    )
}

/// Submits the migration and (unless detached) follows it; returns the exit code.
pub async fn submit(args: &RunArgs, env: &Env) -> i32 {
    match run(args, env).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    }
}

async fn run(args: &RunArgs, env: &Env) -> anyhow::Result<i32> {
    let client = Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API: {e}"))?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    if [Some(&args.source), args.dest.as_ref()]
        .into_iter()
        .flatten()
        .any(|r| r.contains("://") && hubmigrate_hub::redact::url(r) != *r)
    {
        anyhow::bail!(
            "credentials inside a repo URL would be stored in the Migration object: pass tokens through the environment (--tokens-secret) instead"
        );
    }
    let dest = match (&args.dest, &args.to) {
        (Some(d), _) => d.clone(),
        (None, Some(to)) => {
            let src = hubmigrate_hub::reporef::RepoRef::parse(&args.source, hubmigrate_hub::reporef::RepoType::Model)?;
            src.on(Platform::parse(to)?).to_string()
        }
        (None, None) => anyhow::bail!("say where to: --dest REPO or --to hf|ms"),
    };
    let name = migration_name(&dest);
    let (tokens_secret, created_secret) = match &args.tokens_secret {
        Some(s) => (s.clone(), false),
        None => {
            let secret_name = format!("{name}-tokens");
            let mut data = std::collections::BTreeMap::new();
            // Every variable the controller's resolve may read a side's token (or git user) from.
            for var in [
                Platform::Hf.token_var(),
                Platform::Ms.token_var(),
                Platform::Git.token_var(),
                SOURCE_TOKEN,
                DEST_TOKEN,
                "TARGET_USERNAME",
                "HUBMIGRATE_SOURCE_USERNAME",
            ] {
                if let Some(v) = env.get(var) {
                    data.insert(var.to_string(), v.to_string());
                }
            }
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(secret_name.clone()),
                    labels: Some([(TOKENS_LABEL.to_string(), "true".to_string())].into()),
                    ..Default::default()
                },
                string_data: Some(data),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the tokens Secret: {e}"))?;
            (secret_name, true)
        }
    };
    let endpoints = Endpoints {
        huggingface: Some(endpoint(Platform::Hf, None, None, env)),
        modelscope: Some(endpoint(Platform::Ms, None, None, env)),
    };
    let spec = MigrationSpec {
        source: args.source.clone(),
        dest,
        repo_type: args.repo_type.map(|t| format!("{t:?}").to_ascii_lowercase()),
        revision: args.revision.clone(),
        parallel: args.parallel,
        chunk_size: Some(args.chunk_size.to_string()),
        max_workers: Some(args.max_workers),
        split: Some(args.split),
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        mirror: args.mirror,
        pointer_only: args.pointer_only,
        use_remote_mirror: args.use_remote_mirror,
        mirror_timeout: Some(format!("{}s", args.mirror_timeout.as_secs())),
        dry_run: args.dry_run,
        endpoints: Some(endpoints),
        source_endpoint: args.source_endpoint.clone(),
        dest_endpoint: args.dest_endpoint.clone(),
        max_attempts: Some(args.max_attempts),
        worker_concurrency: Some(args.worker_concurrency),
        streams: Some(args.streams),
        rate_cap: args.rate_cap.map(|c| c.to_string()),
        start_timeout: Some(format!("{}s", args.start_timeout.as_secs())),
        tokens_secret: Some(tokens_secret.clone()),
        ..Default::default()
    };
    let api: Api<Migration> = Api::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &Migration::new(&name, spec))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the Migration: {e}"))?;
    if created_secret {
        // The tokens go with the Migration: deleting it deletes them.
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let owner = json!({ "metadata": { "ownerReferences": [super::job::owner_ref(&created)] } });
        secrets
            .patch(&tokens_secret, &PatchParams::default(), &Patch::Merge(&owner))
            .await
            .map_err(|e| anyhow::anyhow!("cannot hand the tokens Secret to the Migration: {e}"))?;
    }
    eprintln!("created migration {name} in namespace {ns}");
    if args.detach {
        println!("{name}");
        eprintln!(
            "watch it with: kubectl get migration {name} -n {ns} -w   (worker logs: kubectl logs -n {ns} -l hubmigrate.dev/migration={name})"
        );
        return Ok(exit::OK);
    }
    let mut progress: Option<Progress> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = api
            .get(&name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read migration {name}: {e}"))?;
        let Some(st) = m.status else { continue };
        if st.bytes_total > 0 {
            let p = progress.get_or_insert_with(|| Progress::new(st.bytes_total));
            p.update(&crate::flow::transfer::Snapshot {
                bytes_done: st.bytes_done,
                running: st.chunks_running as usize,
                finished: st.chunks_succeeded as usize,
                chunks: st.chunks_total as usize,
                ..Default::default()
            });
        }
        let message = st.conditions.first().map(|c| c.message.clone()).unwrap_or_default();
        match st.phase {
            Phase::Succeeded => {
                if let Some(p) = &progress {
                    p.finish();
                }
                eprintln!("migration {name} succeeded: {message}");
                return Ok(exit::OK);
            }
            Phase::Failed => {
                if let Some(p) = &progress {
                    p.finish();
                }
                eprintln!("migration {name} failed: {message}");
                let mismatched = st.verification.map(|v| v.mismatched > 0).unwrap_or(false);
                return Ok(if mismatched { exit::MISMATCH } else { exit::FAILURE });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_dns_labels() {
        let n = super::migration_name("ms:acme/My_Model.v2");
        assert!(n.starts_with("my-model-v2-"), "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
