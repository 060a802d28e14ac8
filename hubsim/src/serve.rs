//! `hubsim serve`: binds the hub and its object CDN (a second origin), wraps both in the fault
//! and bandwidth layers, prints the base URL and serves until SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use tokio::net::TcpListener;

use crate::auth::Users;
use crate::cli::ServeArgs;
use crate::faults::{FaultConfig, FaultCtx, Faults, RateLimits, ThrottledListener, TokenBucket, inject};
use crate::quota::{QuotaConfig, QuotaCtx, Quotas, enforce};
use crate::state::{CommitCost, Flavor, Hub, HubConfig};

/// Commits per repo per hour on the Hugging Face Hub (its "hourly quotas for action: commit").
const HF_COMMITS_PER_HOUR: u32 = 128;
/// The largest object the Hub takes over LFS (storage-limits.md: 50 GB; larger ones need Xet).
const HF_MAX_LFS_OBJECT: u64 = 50_000_000_000;
use crate::stats::{Peer, RouteClass, StatsCtx, count};
use crate::store::Store;

async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    // Paths only: query strings of presigned URLs carry signatures.
    tracing::info!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// Runs a hub until a shutdown signal.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let users = Users::from_flags(&args.users, &args.read_users, &args.orgs).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create data directory {}", args.data.display()))?;
    let store =
        Store::open(&args.data).with_context(|| format!("cannot open data directory {}", args.data.display()))?;
    let faults = Arc::new(Faults::new(FaultConfig {
        latency: args.latency,
        fail_429: args.fail_429,
        fail_5xx: args.fail_5xx,
        truncate: args.truncate,
        corrupt: args.corrupt,
        api_403: args.api_403,
        ..FaultConfig::default()
    }));
    let main = TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| format!("cannot bind {}:{}", args.bind, args.port))?;
    let cdn = TcpListener::bind((args.bind.as_str(), 0))
        .await
        .context("cannot bind the CDN port")?;
    let host = if args.bind == "0.0.0.0" {
        "127.0.0.1".to_string()
    } else {
        args.bind.clone()
    };
    let base_url = format!("http://{host}:{}", main.local_addr()?.port());
    let cdn_url = format!("http://{host}:{}", cdn.local_addr()?.port());
    let cfg = HubConfig {
        flavor: args.flavor,
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size.max(1),
        tree_page_size: args.tree_page_size.max(1),
        commit_limit: match args.commit_limit {
            Some(0) => None,
            Some(n) => Some(n),
            None => (args.flavor == Flavor::Hf).then_some(HF_COMMITS_PER_HOUR),
        },
        commit_window: args.commit_window,
        commit_cost: match args.flavor {
            Flavor::Hf => CommitCost {
                per_op: args.commit_op_cost,
                per_inline_mib: args.commit_mib_cost,
                timeout: args.commit_timeout,
                max_ops: args.max_commit_ops,
            },
            _ => CommitCost::FREE,
        },
        max_request_body: usize::try_from(args.max_request_body).unwrap_or(usize::MAX),
        max_lfs_object_size: args
            .max_lfs_object_size
            .or((args.flavor == Flavor::Hf).then_some(HF_MAX_LFS_OBJECT)),
        proxy_max_body: args.proxy_max_body,
        url_ttl: args.url_ttl,
        unchecked_multipart: args.unchecked_multipart,
    };
    let hub = Arc::new(Hub::new(
        store,
        users,
        cfg,
        faults.clone(),
        base_url.clone(),
        cdn_url.clone(),
    ));
    let (api, fctx, classify): (_, _, fn(&_, &_) -> RouteClass) = match args.flavor {
        Flavor::Hf => (
            crate::hf::router(hub.clone()),
            FaultCtx::new(faults.clone(), crate::hf::is_api_listing, crate::hf::render),
            crate::hf::route_class,
        ),
        Flavor::Ms => (
            crate::ms::router(hub.clone()),
            FaultCtx::new(faults.clone(), crate::ms::is_api_listing, crate::ms::render),
            crate::ms::route_class,
        ),
        Flavor::Git => (
            crate::gitlab::router(hub.clone()),
            FaultCtx::new(faults.clone(), crate::gitlab::is_api_listing, crate::gitlab::render),
            crate::gitlab::route_class,
        ),
    };
    // The Hub's request quotas (HF flavor; ModelScope and git hosts publish none).
    let quotas = (args.flavor == Flavor::Hf).then(|| {
        let mut cfg = QuotaConfig::tier(args.tier);
        for (slot, given) in cfg
            .users
            .iter_mut()
            .zip([args.api_quota, args.resolve_quota, args.pages_quota])
        {
            *slot = given.unwrap_or(*slot);
        }
        cfg.window = args.quota_window.max(std::time::Duration::from_secs(1));
        QuotaCtx {
            hub: hub.clone(),
            quotas: Arc::new(Quotas::new(cfg)),
            bucket_of: crate::hf::bucket,
            render_error: crate::hf::render,
        }
    });
    // Outside in: logging, counting (which also answers /_hubsim/stats), faults, quotas, the
    // handlers.
    let layer = |r: Router, classify, quotas: Option<QuotaCtx>| {
        let sctx = StatsCtx {
            stats: hub.stats.clone(),
            faults: faults.clone(),
            classify,
        };
        let r = match quotas {
            Some(q) => r.layer(from_fn_with_state(q, enforce)),
            None => r,
        };
        r.layer(from_fn_with_state(fctx.clone(), inject))
            .layer(from_fn_with_state(sctx, count))
            .layer(from_fn(log_request))
            .into_make_service_with_connect_info::<Peer>()
    };
    let api = layer(api, classify, quotas);
    // The CDN's presigned URLs count in no bucket.
    let cdn_router = layer(
        crate::lfs_api::cdn_router(hub.clone()),
        crate::lfs_api::cdn_route_class,
        None,
    );
    let limits = RateLimits {
        per_conn: args.conn_rate,
        total: args.total_rate.map(|r| Arc::new(TokenBucket::new(r))),
    };

    println!("{base_url}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(flavor = ?args.flavor, url = %base_url, cdn = %cdn_url, data = %args.data.display(), "hubsim serving");

    let shutdown = shutdown_signal();
    let a =
        axum::serve(ThrottledListener::new(main, limits.clone()), api).with_graceful_shutdown(shutdown.clone_signal());
    let b =
        axum::serve(ThrottledListener::new(cdn, limits), cdn_router).with_graceful_shutdown(shutdown.clone_signal());
    tokio::try_join!(async { a.await }, async { b.await })?;
    Ok(())
}

/// A shutdown signal that several servers can wait on.
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    fn clone_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }
}

fn shutdown_signal() -> Shutdown {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                s.recv().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    Shutdown(rx)
}
