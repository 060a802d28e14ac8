//! The ModelScope flavor: the legacy `/api/v1` and OpenAPI `/openapi/v1` routes that the
//! `modelscope` SDK uses (see ../shared/protocols/modelscope.md, section 16), git smart HTTP, and
//! the LFS blob upload flow. Tokens arrive as `Authorization: Bearer` or the `m_session_id`
//! cookie (old SDKs send only the cookie).

mod account;
mod error;
mod files;
mod repos;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use crate::auth::Caller;
use crate::repo::{RepoId, RepoKind};
use crate::state::Hub;
use crate::stats::RouteClass;
use crate::store::RepoMeta;
pub use error::render;
use error::{MsError, MsResult};

/// A request that reached a handler.
pub struct Ctx {
    pub hub: Arc<Hub>,
    pub caller: Caller,
}

impl Ctx {
    /// The same request as the Hugging Face flavor sees it: ModelScope's git endpoint (smart
    /// HTTP and its LFS API) answers through the shared handlers.
    fn as_hf(&self) -> crate::hf::Ctx {
        crate::hf::Ctx {
            hub: self.hub.clone(),
            caller: self.caller.clone(),
        }
    }

    /// The repo's metadata when the caller may see it (and write, with `write`).
    pub async fn access(&self, id: &RepoId, write: bool) -> MsResult<RepoMeta> {
        let missing = || {
            let what = if id.kind == RepoKind::Dataset {
                "数据集不存在 (dataset does not exist)"
            } else {
                "模型不存在 (model does not exist)"
            };
            MsError::not_found(format!("{what}: {}", id.full()))
        };
        let meta = self.hub.store.meta(id).await?.ok_or_else(missing)?;
        if !self.hub.users.can_read(&self.caller, &id.ns, meta.private) {
            return Err(missing());
        }
        if write {
            self.require_write(&id.ns)?;
        }
        Ok(meta)
    }

    /// Checks that the caller may write to namespace `ns`.
    pub fn require_write(&self, ns: &str) -> MsResult<()> {
        match self.caller.principal() {
            None => Err(MsError::unauthenticated()),
            Some(_) if self.hub.users.can_write(&self.caller, ns) => Ok(()),
            Some(p) if !p.can_write => Err(MsError::forbidden("this token is read-only: a write token is needed")),
            Some(_) => Err(MsError::forbidden(format!("no permission to write to namespace {ns}"))),
        }
    }

    /// Resolves a revision (branch, tag or commit id), defaulting to the repo's default branch.
    pub async fn commit_of(&self, id: &RepoId, meta: &RepoMeta, rev: Option<&str>) -> MsResult<String> {
        let rev = rev.filter(|r| !r.is_empty()).unwrap_or(&meta.default_branch);
        self.hub
            .store
            .resolve(id, rev)
            .await?
            .ok_or_else(|| MsError::not_found(format!("revision {rev} not found")))
    }
}

#[derive(Debug, PartialEq)]
enum Route {
    Login,
    Me,
    OpenList(RepoKind),
    OpenGet(RepoId),
    ListModels,
    ListDatasets,
    CreateModel,
    CreateDataset,
    NoAcceleration,
    Info(RepoId),
    Delete(RepoId),
    Files(RepoId),
    Tree(RepoId),
    TreeById(u64),
    Download(RepoId),
    Revisions(RepoId),
    Commits(RepoId),
    Tag(RepoId),
    DownloadIncrease,
    LfsBatch(RepoId),
    Commit(RepoId, String),
    Git(RepoId, String),
    GitLfsBatch(RepoId),
    GitLfsVerify(RepoId),
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn kind(s: &str) -> Option<RepoKind> {
    match s {
        "models" => Some(RepoKind::Model),
        "datasets" => Some(RepoKind::Dataset),
        _ => None,
    }
}

fn id(k: &str, o: &str, n: &str) -> Result<RepoId, StatusCode> {
    RepoId::new(kind(k).ok_or(StatusCode::NOT_FOUND)?, &decode(o), &decode(n)).map_err(|_| StatusCode::NOT_FOUND)
}

fn parse(method: &Method, raw: &str) -> Result<Route, StatusCode> {
    use Method as M;
    let segs: Vec<&str> = raw.trim_start_matches('/').split('/').collect();
    let m = method.clone();
    Ok(match (m, segs.as_slice()) {
        (M::POST, ["api", "v1", "login"]) => Route::Login,
        (M::GET, ["openapi", "v1", "users", "me"]) => Route::Me,
        (M::GET, ["openapi", "v1", k]) => Route::OpenList(kind(k).ok_or(StatusCode::NOT_FOUND)?),
        (M::GET, ["openapi", "v1", k, o, n]) => Route::OpenGet(id(k, o, n)?),
        (M::POST, ["api", "v1", "models"]) => Route::CreateModel,
        (M::PUT, ["api", "v1", "models"] | ["api", "v1", "models", ""]) => Route::ListModels,
        (M::GET, ["api", "v1", "datasets"]) => Route::ListDatasets,
        (M::POST, ["api", "v1", "datasets"]) => Route::CreateDataset,
        (M::GET, ["api", "v1", "repos", "internalAccelerationInfo"]) => Route::NoAcceleration,
        (M::POST, ["api", "v1", "repos", k, o, n, "info", "lfs", "objects", "batch"]) => Route::LfsBatch(id(k, o, n)?),
        // The SDKs put the branch in unescaped: `a/b` arrives as two segments.
        (M::POST, ["api", "v1", "repos", k, o, n, "commit", branch @ ..]) if !branch.is_empty() => Route::Commit(
            id(k, o, n)?,
            branch.iter().map(|s| decode(s)).collect::<Vec<_>>().join("/"),
        ),
        (M::GET, ["api", "v1", "datasets", num, "repo", "tree"]) if num.bytes().all(|b| b.is_ascii_digit()) => {
            Route::TreeById(num.parse().map_err(|_| StatusCode::NOT_FOUND)?)
        }
        (M::GET, ["api", "v1", k, o, n]) => Route::Info(id(k, o, n)?),
        (M::DELETE, ["api", "v1", k, o, n]) => Route::Delete(id(k, o, n)?),
        (M::GET, ["api", "v1", "models", o, n, "repo", "files"]) => Route::Files(id("models", o, n)?),
        (M::GET, ["api", "v1", "datasets", o, n, "repo", "tree"]) => Route::Tree(id("datasets", o, n)?),
        (M::GET | M::HEAD, ["api", "v1", k, o, n, "repo"]) => Route::Download(id(k, o, n)?),
        (M::GET, ["api", "v1", k, o, n, "revisions"]) => Route::Revisions(id(k, o, n)?),
        (M::GET, ["api", "v1", k, o, n, "commits"]) => Route::Commits(id(k, o, n)?),
        (M::POST, ["api", "v1", k, o, n, "repo", "tag"]) => Route::Tag(id(k, o, n)?),
        (M::POST, ["api", "v1", "datasets", _, _, "download", "increase"]) => Route::DownloadIncrease,
        (m, [first, rest @ ..]) if *first != "api" && *first != "openapi" => {
            let (k, rest) = match *first {
                "models" | "datasets" => (*first, rest),
                _ => ("models", &segs[..]),
            };
            let [o, n, tail @ ..] = rest else {
                return Err(StatusCode::NOT_FOUND);
            };
            let name = decode(n);
            let repo = id(k, o, name.trim_end_matches(".git"))?;
            match (m, tail) {
                (M::GET, ["info", "refs"]) => Route::Git(repo, "info/refs".into()),
                (M::POST, [svc @ ("git-upload-pack" | "git-receive-pack")]) => Route::Git(repo, (*svc).into()),
                (M::POST, ["info", "lfs", "objects", "batch"]) if name.ends_with(".git") => Route::GitLfsBatch(repo),
                // The verify action the batch answer offers (`locks/verify` stays 404: git-lfs
                // then pushes without locking, as against any host without the locking API).
                (M::POST, ["info", "lfs", "objects", "verify"]) if name.ends_with(".git") => Route::GitLfsVerify(repo),
                _ => return Err(StatusCode::NOT_FOUND),
            }
        }
        _ => return Err(StatusCode::NOT_FOUND),
    })
}

/// The flavor's router.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new().fallback(dispatch).with_state(hub)
}

async fn dispatch(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let route = match parse(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(status) => {
            return crate::http::closing(MsError::new(status, "not found").into_response());
        }
    };
    let caller = hub.users.caller(crate::http::token(req.headers(), true).as_deref());
    let open = matches!(route, Route::Me | Route::OpenList(_) | Route::OpenGet(_));
    if matches!(caller, Caller::Invalid)
        && !matches!(
            route,
            Route::Login | Route::Git(..) | Route::GitLfsBatch(_) | Route::GitLfsVerify(_)
        )
    {
        let e = MsError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid authentication, please check your Authorization header",
        );
        let e = if open {
            e.open("InvalidAuthentication")
        } else {
            e.with_code(error::code::LOGIN_FAILED)
        };
        return crate::http::closing(e.into_response());
    }
    let (parts, body) = req.into_parts();
    // As in the hf flavor: consume API bodies before any answer so keep-alive connections survive.
    let body = if matches!(route, Route::Git(..)) {
        body
    } else {
        match crate::http::read_body(&hub, body).await {
            Ok(b) => Body::from(b),
            Err(e) => return crate::http::closing(MsError::from(e).into_response()),
        }
    };
    let ctx = Ctx { hub, caller };
    handle(&ctx, route, parts, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(ctx: &Ctx, route: Route, parts: axum::http::request::Parts, body: Body) -> MsResult {
    let q = crate::http::query_pairs(parts.uri.query());
    match route {
        Route::Login => account::login(ctx, body).await,
        Route::Me => account::me(ctx),
        Route::OpenList(k) => repos::open_list(ctx, k, &q).await,
        Route::OpenGet(id) => repos::open_get(ctx, &id).await,
        Route::ListModels => repos::legacy_list_models(ctx, body).await,
        Route::ListDatasets => repos::legacy_list_datasets(ctx, &q).await,
        Route::CreateModel => repos::create_model(ctx, body).await,
        Route::CreateDataset => repos::create_dataset(ctx, parts, body).await,
        Route::NoAcceleration => Err(MsError::not_found("no internal acceleration here")),
        Route::Info(id) => repos::info(ctx, &id, &q).await,
        Route::Delete(id) => repos::delete(ctx, &id).await,
        Route::Files(id) => files::files(ctx, &id, &q).await,
        Route::Tree(id) => files::tree(ctx, &id, &q).await,
        Route::TreeById(num) => {
            let id = repos::dataset_by_num(ctx, num).await?;
            files::tree(ctx, &id, &q).await
        }
        Route::Download(id) => files::download(ctx, &id, &q, &parts).await,
        Route::Revisions(id) => repos::revisions(ctx, &id, &q).await,
        Route::Commits(id) => repos::commits(ctx, &id, &q).await,
        Route::Tag(id) => repos::tag(ctx, &id, body).await,
        Route::DownloadIncrease => Ok(error::ok(serde_json::json!({}))),
        Route::LfsBatch(id) => upload::batch(ctx, &id, body).await,
        Route::Commit(id, branch) => upload::commit(ctx, &id, &branch, body).await,
        Route::Git(id, service) => {
            let hctx = ctx.as_hf();
            Ok(crate::githttp::serve(&ctx.hub, &id, &service, &parts, body, |write| {
                hctx.git_access(&id, write)
            })
            .await)
        }
        Route::GitLfsBatch(id) => crate::lfs_api::batch(&ctx.as_hf(), &id, &parts, body)
            .await
            .map_err(|e| MsError::new(e.status, e.message)),
        Route::GitLfsVerify(id) => crate::lfs_api::verify(&ctx.as_hf(), &id, body)
            .await
            .map_err(|e| MsError::new(e.status, e.message)),
    }
}

/// Is this an API listing route (the ones `--api-403` refuses)?
pub fn is_api_listing(method: &Method, raw_path: &str) -> bool {
    matches!(
        parse(method, raw_path),
        Ok(Route::Files(_) | Route::Tree(_) | Route::TreeById(_) | Route::Info(_) | Route::OpenGet(_))
    )
}

/// The stats class of a request (`/_hubsim/stats`).
pub fn route_class(method: &Method, raw_path: &str) -> RouteClass {
    match parse(method, raw_path) {
        Ok(Route::Download(_)) => RouteClass::Resolve,
        Ok(Route::LfsBatch(_) | Route::GitLfsBatch(_)) => RouteClass::LfsBatch,
        Ok(Route::GitLfsVerify(_)) => RouteClass::LfsVerify,
        Ok(Route::Commit(..)) => RouteClass::Commit,
        Ok(Route::Git(_, service)) if service == "git-receive-pack" => RouteClass::GitPush,
        Ok(Route::Git(..)) => RouteClass::Git,
        Ok(_) => RouteClass::Api,
        Err(_) => RouteClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = RepoId::new(RepoKind::Model, "alice", "m").unwrap();
        assert_eq!(
            parse(&Method::GET, "/api/v1/models/alice/m/repo/files"),
            Ok(Route::Files(m.clone()))
        );
        assert_eq!(
            parse(&Method::GET, "/api/v1/datasets/1002/repo/tree"),
            Ok(Route::TreeById(1002))
        );
        assert_eq!(
            parse(&Method::POST, "/api/v1/repos/models/alice/m/commit/master"),
            Ok(Route::Commit(m.clone(), "master".into()))
        );
        assert_eq!(
            parse(&Method::GET, "/alice/m.git/info/refs"),
            Ok(Route::Git(m.clone(), "info/refs".into()))
        );
        assert_eq!(
            parse(&Method::POST, "/models/alice/m.git/info/lfs/objects/batch"),
            Ok(Route::GitLfsBatch(m))
        );
        assert_eq!(parse(&Method::PUT, "/api/v1/models/"), Ok(Route::ListModels));
        assert_eq!(parse(&Method::GET, "/api/v1/datasets"), Ok(Route::ListDatasets));
        assert_eq!(parse(&Method::GET, "/api/v1/models"), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            parse(&Method::GET, "/api/v1/studios/alice/m/repo/files"),
            Err(StatusCode::NOT_FOUND)
        );
    }
}
