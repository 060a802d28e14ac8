//! The Hugging Face flavor: the Hub API that `huggingface_hub` uses, `/resolve` downloads, the
//! LFS batch API and git smart HTTP (see ../shared/protocols/huggingface.md). URLs are routed
//! by hand on the raw path because revisions arrive percent-encoded (`refs%2Fpr%2F1`) and must be
//! decoded per segment, after routing.

mod card;
pub(crate) mod commit;
mod error;
mod lfs_files;
mod listing;
mod repos;
mod resolve;

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
pub use error::{HfError, HfResult, render};

/// A request that reached a handler: the hub and who is calling.
pub struct Ctx {
    pub hub: Arc<Hub>,
    pub caller: Caller,
}

impl Ctx {
    /// The repo's metadata if the caller may see it (and write to it, with `write`), else the
    /// error the Hub gives: 401/404 RepoNotFound for invisible repos, 403 for missing rights.
    pub async fn access(&self, id: &RepoId, write: bool) -> HfResult<RepoMeta> {
        let anonymous = self.caller.principal().is_none();
        let meta = self
            .hub
            .store
            .meta(id)
            .await?
            .ok_or_else(|| HfError::repo_not_found(anonymous))?;
        if !self.hub.users.can_read(&self.caller, &id.ns, meta.private) {
            return Err(HfError::repo_not_found(anonymous));
        }
        if write && !self.hub.users.can_write(&self.caller, &id.ns) {
            if anonymous {
                return Err(HfError::new(
                    StatusCode::UNAUTHORIZED,
                    "You must be authenticated to write to this repo",
                ));
            }
            return Err(HfError::forbidden(format!(
                "You don't have the rights to write to {}. Make sure your token has write access to the '{}' namespace.",
                id.full(),
                id.ns
            )));
        }
        Ok(meta)
    }

    /// The repo's metadata if the caller may propose a change to it (a pull request): write
    /// access, or, with a token that may write, read access to the repo's files (the Hub lets
    /// any such user open a pull request).
    pub async fn access_for_pr(&self, id: &RepoId) -> HfResult<RepoMeta> {
        match self.access(id, true).await {
            Err(e) if e.status == StatusCode::FORBIDDEN && self.caller.principal().is_some_and(|p| p.can_write) => {
                self.read_files(id).await
            }
            verdict => verdict,
        }
    }

    /// The repo's metadata if the caller may read its files: [`Ctx::access`], then a gated
    /// repo's gate. Its namespace's members and the users granted access pass; others get the
    /// Hub's `GatedRepo` answer, 401 when anonymous, 403 otherwise, naming the repo.
    pub async fn read_files(&self, id: &RepoId) -> HfResult<RepoMeta> {
        let meta = self.access(id, false).await?;
        if meta.gated.is_none() {
            return Ok(meta);
        }
        let kind = id.kind.as_str();
        match self.caller.principal() {
            Some(p) if self.hub.users.belongs(p, &id.ns) || meta.granted.contains(&p.name) => Ok(meta),
            None => Err(HfError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Access to {kind} {} is restricted. You must have access to it and be authenticated to access it. Please log in.",
                    id.full()
                ),
            )
            .code("GatedRepo")),
            Some(_) => Err(HfError::forbidden(format!(
                "Access to {kind} {} is restricted and you are not in the authorized list. Visit https://huggingface.co/{}{} to ask for access.",
                id.full(),
                id.kind.url_prefix(),
                id.full()
            ))
            .code("GatedRepo")),
        }
    }

    /// The git smart HTTP verdict of the HF and ModelScope flavors: an unknown token or an
    /// anonymous caller without access is challenged, others get the API's status.
    pub async fn git_access(&self, id: &RepoId, write: bool) -> crate::githttp::Access {
        use crate::githttp::Access;
        if matches!(self.caller, Caller::Invalid) {
            return Access::Challenge {
                realm: "hubsim",
                message: "Invalid username or password.".into(),
            };
        }
        let verdict = if write {
            self.access(id, true).await
        } else {
            self.read_files(id).await
        };
        match verdict {
            Ok(_) => Access::Allow {
                user: self.caller.principal().map(|p| p.name.clone()),
            },
            Err(e) if e.status == StatusCode::UNAUTHORIZED => Access::Challenge {
                realm: "hubsim",
                message: "Authentication required".into(),
            },
            Err(e) => Access::Deny(e.status, e.message),
        }
    }

    /// Resolves a revision or answers RevisionNotFound.
    pub async fn commit_of(&self, id: &RepoId, rev: &str) -> HfResult<String> {
        self.hub
            .store
            .resolve(id, rev)
            .await?
            .ok_or_else(|| HfError::revision_not_found(rev))
    }
}

/// Every route of the flavor, parsed from method and raw path.
#[derive(Debug, PartialEq)]
enum Route {
    Whoami,
    CreateRepo,
    DeleteRepo,
    MoveRepo,
    ValidateYaml,
    CompleteMultipart,
    ListRepos(RepoKind),
    Info { id: RepoId, rev: Option<String> },
    Settings(RepoId),
    Tree { id: RepoId, rev: String, path: String },
    PathsInfo { id: RepoId, rev: String },
    Refs(RepoId),
    Commits { id: RepoId, rev: String },
    Preupload { id: RepoId, rev: String },
    Commit { id: RepoId, rev: String },
    Branch { id: RepoId, name: String },
    Tag { id: RepoId, name: String },
    SuperSquash { id: RepoId, branch: String },
    Resolve { id: RepoId, rev: String, path: String },
    LfsBatch(RepoId),
    LfsVerify(RepoId),
    Git { id: RepoId, service: String },
    AuthCheck(RepoId),
    GrantAccess(RepoId),
    LfsFiles(RepoId),
    DeleteLfsFiles(RepoId),
    NoRepo,
}

fn decode(seg: &str) -> String {
    percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

/// Parses a request line into a route; `Err(status)` for unknown paths or methods.
fn parse(method: &Method, raw_path: &str) -> Result<Route, StatusCode> {
    let segs: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    let nf = StatusCode::NOT_FOUND;
    let m = method.clone();
    match segs.as_slice() {
        ["api", "whoami-v2"] if m == Method::GET => Ok(Route::Whoami),
        ["api", "repos", "create"] if m == Method::POST => Ok(Route::CreateRepo),
        ["api", "repos", "delete"] if m == Method::DELETE => Ok(Route::DeleteRepo),
        ["api", "repos", "move"] if m == Method::POST => Ok(Route::MoveRepo),
        ["api", "validate-yaml"] if m == Method::POST => Ok(Route::ValidateYaml),
        ["api", "complete_multipart"] if m == Method::POST => Ok(Route::CompleteMultipart),
        ["api", kind] if m == Method::GET && RepoKind::from_plural(kind).is_some() => {
            Ok(Route::ListRepos(RepoKind::from_plural(kind).ok_or(nf)?))
        }
        // A repo id without a namespace (`gpt2`): the Hub's canonical repos moved under orgs, and
        // hubsim has none of them.
        ["api", kind, _name] if RepoKind::from_plural(kind).is_some() => Ok(Route::NoRepo),
        ["api", kind, ns, name, rest @ ..] => {
            let kind = RepoKind::from_plural(kind).ok_or(nf)?;
            let id = RepoId::new(kind, &decode(ns), &decode(name)).map_err(|_| nf)?;
            parse_api(m, id, rest)
        }
        [first, rest @ ..] if !first.is_empty() && *first != "api" => {
            let (kind, rest) = match *first {
                "datasets" => (RepoKind::Dataset, rest),
                "spaces" => (RepoKind::Space, rest),
                _ => (RepoKind::Model, &segs[..]),
            };
            let [ns, name, rest @ ..] = rest else {
                return Err(nf);
            };
            let name = decode(name);
            let git_suffix = name.ends_with(".git");
            let id = RepoId::new(kind, &decode(ns), name.trim_end_matches(".git")).map_err(|_| nf)?;
            parse_web(m, id, git_suffix, rest)
        }
        _ => Err(nf),
    }
}

fn parse_api(m: Method, id: RepoId, rest: &[&str]) -> Result<Route, StatusCode> {
    let joined = |parts: &[&str]| parts.iter().map(|s| decode(s)).collect::<Vec<_>>().join("/");
    Ok(match (m, rest) {
        (Method::GET, []) => Route::Info { id, rev: None },
        (Method::GET, ["revision", rev]) => Route::Info {
            id,
            rev: Some(decode(rev)),
        },
        (Method::PUT, ["settings"]) => Route::Settings(id),
        (Method::GET, ["tree", rev, path @ ..]) => Route::Tree {
            id,
            rev: decode(rev),
            path: joined(path),
        },
        (Method::POST, ["paths-info", rev]) => Route::PathsInfo { id, rev: decode(rev) },
        (Method::GET, ["refs"]) => Route::Refs(id),
        (Method::GET, ["auth-check"]) => Route::AuthCheck(id),
        (Method::GET, ["lfs-files"]) => Route::LfsFiles(id),
        (Method::POST, ["lfs-files", "batch"]) => Route::DeleteLfsFiles(id),
        (Method::POST, ["user-access-request", "grant"]) => Route::GrantAccess(id),
        (Method::GET, ["commits", rev]) => Route::Commits { id, rev: decode(rev) },
        (Method::POST, ["preupload", rev]) => Route::Preupload { id, rev: decode(rev) },
        (Method::POST, ["commit", rev]) => Route::Commit { id, rev: decode(rev) },
        (Method::POST | Method::DELETE, ["branch", name]) => Route::Branch { id, name: decode(name) },
        (Method::POST | Method::DELETE, ["tag", name]) => Route::Tag { id, name: decode(name) },
        (Method::POST, ["super-squash", branch]) => Route::SuperSquash {
            id,
            branch: decode(branch),
        },
        _ => return Err(StatusCode::NOT_FOUND),
    })
}

fn parse_web(m: Method, id: RepoId, git_suffix: bool, rest: &[&str]) -> Result<Route, StatusCode> {
    Ok(match (m, rest) {
        (Method::GET | Method::HEAD, ["resolve", rev, path @ ..]) if !path.is_empty() => Route::Resolve {
            id,
            rev: decode(rev),
            path: path.iter().map(|s| decode(s)).collect::<Vec<_>>().join("/"),
        },
        (Method::POST, ["info", "lfs", "objects", "batch"]) if git_suffix => Route::LfsBatch(id),
        (Method::POST, ["info", "lfs", "objects", "verify"]) if git_suffix => Route::LfsVerify(id),
        (Method::GET, ["info", "refs"]) => Route::Git {
            id,
            service: "info/refs".into(),
        },
        (Method::POST, [svc @ ("git-upload-pack" | "git-receive-pack")]) => Route::Git {
            id,
            service: (*svc).into(),
        },
        _ => return Err(StatusCode::NOT_FOUND),
    })
}

impl Route {
    /// The repo the route names, if any.
    fn id_mut(&mut self) -> Option<&mut RepoId> {
        match self {
            Route::Info { id, .. }
            | Route::Settings(id)
            | Route::Tree { id, .. }
            | Route::PathsInfo { id, .. }
            | Route::Refs(id)
            | Route::Commits { id, .. }
            | Route::Preupload { id, .. }
            | Route::Commit { id, .. }
            | Route::Branch { id, .. }
            | Route::Tag { id, .. }
            | Route::SuperSquash { id, .. }
            | Route::Resolve { id, .. }
            | Route::LfsBatch(id)
            | Route::LfsVerify(id)
            | Route::Git { id, .. }
            | Route::AuthCheck(id)
            | Route::GrantAccess(id)
            | Route::LfsFiles(id)
            | Route::DeleteLfsFiles(id) => Some(id),
            Route::Whoami
            | Route::CreateRepo
            | Route::DeleteRepo
            | Route::MoveRepo
            | Route::ValidateYaml
            | Route::CompleteMultipart
            | Route::ListRepos(_)
            | Route::NoRepo => None,
        }
    }
}

/// A 307 to the same URL (query included) with the repo's stored id in place of `asked` (a
/// relative `Location`, as the Hub sends).
fn moved(raw_path: &str, query: Option<&str>, asked: &RepoId, found: &RepoId) -> Response {
    let mut segs: Vec<String> = raw_path.split('/').map(str::to_string).collect();
    // `/api/{type}s/NS/NAME/...`, `/NS/NAME/...` (models), `/{type}s/NS/NAME/...`.
    let at = if segs.get(1).is_some_and(|s| s == "api") {
        3
    } else if asked.kind == RepoKind::Model {
        1
    } else {
        2
    };
    if segs.len() > at + 1 {
        let git = if segs[at + 1].ends_with(".git") { ".git" } else { "" };
        segs[at] = found.ns.clone();
        segs[at + 1] = format!("{}{git}", found.name);
    }
    let mut location = segs.join("/");
    if let Some(q) = query {
        location = format!("{location}?{q}");
    }
    let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

/// The flavor's router: one handler that parses and dispatches every request.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new().fallback(dispatch).with_state(hub)
}

/// Every answer carries an `X-Request-Id` as the Hub's do: `Root=1-<unix secs, hex>-<24 hex>`,
/// then `;` and the client's `X-Amzn-Trace-Id` when it sent one (huggingface_hub sends one and
/// quotes the id in its errors).
async fn dispatch(state: State<Arc<Hub>>, req: Request) -> Response {
    let trace = req
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut resp = answer(state, req).await;
    let mut id = format!("Root=1-{:08x}-{}", crate::util::now_secs(), crate::util::random_hex(12));
    if let Some(t) = trace {
        id = format!("{id};{t}");
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn answer(State(hub): State<Arc<Hub>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let route = match parse(&method, &path) {
        Ok(r) => r,
        Err(status) => {
            return crate::http::closing(
                HfError::new(status, "Sorry, we can't find the page you are looking for.").into_response(),
            );
        }
    };
    let caller = hub.users.caller(crate::http::token(req.headers(), false).as_deref());
    if matches!(caller, Caller::Invalid) && !matches!(route, Route::Git { .. }) {
        return crate::http::closing(HfError::invalid_token().into_response());
    }
    // Repo ids ignore case: an API route answers for the stored repo, a web route is sent
    // there (a relative 307, as the Hub answers `/resolve` in the wrong case). A moved repo's
    // old id sends every route to the new one.
    let mut route = route;
    let web = matches!(route, Route::Resolve { .. });
    if let Some(id) = route.id_mut() {
        let found = match hub.store.canonical(id).await {
            Ok(Some(found)) => Ok(Some((found, web))),
            Ok(None) => hub.store.moved_to(id).await.map(|to| to.map(|to| (to, true))),
            Err(e) => Err(e),
        };
        match found {
            Ok(Some((found, redirect))) if found != *id => {
                if redirect {
                    return moved(&path, query.as_deref(), id, &found);
                }
                *id = found;
            }
            Ok(_) => {}
            Err(e) => return crate::http::closing(HfError::from(e).into_response()),
        }
    }
    let (parts, body) = req.into_parts();
    // Read API bodies before answering, even when the answer is an error: a server that answers
    // without consuming the body must close the connection, which breaks clients' pooled
    // keep-alive connections. Git streams its own (possibly huge) bodies.
    let body = if matches!(route, Route::Git { .. }) {
        body
    } else {
        match crate::http::read_body(&hub, body).await {
            Ok(b) => Body::from(b),
            Err(e) => return crate::http::closing(HfError::from(e).into_response()),
        }
    };
    let ctx = Ctx { hub, caller };
    let result = handle(&ctx, route, &parts, body).await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(ctx: &Ctx, route: Route, parts: &axum::http::request::Parts, body: Body) -> HfResult {
    let query = parts.uri.query();
    match route {
        Route::Whoami => repos::whoami(ctx),
        Route::CreateRepo => repos::create(ctx, body).await,
        Route::DeleteRepo => repos::delete(ctx, body).await,
        Route::MoveRepo => repos::move_repo(ctx, body).await,
        Route::Settings(id) => repos::settings(ctx, &id, body).await,
        Route::ListRepos(kind) => repos::list(ctx, kind, query).await,
        Route::Info { id, rev } => repos::info(ctx, &id, rev.as_deref(), query).await,
        Route::ValidateYaml => repos::validate_yaml(ctx, parts, body).await,
        Route::Tree { id, rev, path } => listing::tree(ctx, &id, &rev, &path, query).await,
        Route::PathsInfo { id, rev } => listing::paths_info(ctx, &id, &rev, parts, body).await,
        Route::Refs(id) => listing::refs(ctx, &id, query).await,
        Route::NoRepo => Err(HfError::repo_not_found(ctx.caller.principal().is_none())),
        Route::AuthCheck(id) => {
            ctx.read_files(&id).await?;
            Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK").into_response())
        }
        Route::GrantAccess(id) => repos::grant_access(ctx, &id, body).await,
        Route::LfsFiles(id) => lfs_files::list(ctx, &id).await,
        Route::DeleteLfsFiles(id) => lfs_files::delete(ctx, &id, body).await,
        Route::Commits { id, rev } => listing::commits(ctx, &id, &rev, query).await,
        Route::Branch { id, name } => listing::branch(ctx, &id, &name, &parts.method, body).await,
        Route::Tag { id, name } => listing::tag(ctx, &id, &name, &parts.method, body).await,
        Route::SuperSquash { id, branch } => listing::super_squash(ctx, &id, &branch, body).await,
        Route::Preupload { id, rev } => commit::preupload(ctx, &id, &rev, query, body).await,
        Route::Commit { id, rev } => commit::commit(ctx, &id, &rev, query, body).await,
        Route::Resolve { id, rev, path } => resolve::resolve(ctx, &id, &rev, &path, parts).await,
        Route::LfsBatch(id) => crate::lfs_api::batch(ctx, &id, parts, body).await,
        Route::LfsVerify(id) => crate::lfs_api::verify(ctx, &id, body).await,
        Route::CompleteMultipart => crate::lfs_api::complete_multipart(&ctx.hub, query, body).await,
        Route::Git { id, service } => {
            Ok(crate::githttp::serve(&ctx.hub, &id, &service, parts, body, |write| ctx.git_access(&id, write)).await)
        }
    }
}

/// Is this an API listing route (the ones `--api-403` refuses)?
pub fn is_api_listing(method: &Method, raw_path: &str) -> bool {
    matches!(
        parse(method, raw_path),
        Ok(Route::Info { .. } | Route::Tree { .. } | Route::PathsInfo { .. })
    )
}

/// The stats class of a request (`/_hubsim/stats`).
pub fn route_class(method: &Method, raw_path: &str) -> RouteClass {
    match parse(method, raw_path) {
        Ok(Route::Resolve { .. }) => RouteClass::Resolve,
        Ok(Route::LfsBatch(_)) => RouteClass::LfsBatch,
        Ok(Route::LfsVerify(_)) => RouteClass::LfsVerify,
        Ok(Route::CompleteMultipart) => RouteClass::Complete,
        Ok(Route::Commit { .. }) => RouteClass::Commit,
        Ok(Route::Git { service, .. }) if service == "git-receive-pack" => RouteClass::GitPush,
        Ok(Route::Git { .. }) => RouteClass::Git,
        Ok(_) => RouteClass::Api,
        Err(_) => RouteClass::Unknown,
    }
}

/// The request bucket a request counts in (rate-limits.md): URLs with a `/resolve/` segment are
/// resolvers; the API, the LFS batch API and git are counted as api (stricter than not counting
/// them, which the Hub does not document); anything else is a page.
pub fn bucket(method: &Method, raw_path: &str) -> Option<crate::quota::Bucket> {
    use crate::quota::Bucket;
    Some(match route_class(method, raw_path) {
        RouteClass::Resolve => Bucket::Resolvers,
        RouteClass::Unknown => Bucket::Pages,
        _ => Bucket::Api,
    })
}

/// The web URL of a repo: `{base}/{prefix}{ns}/{name}`.
pub fn repo_url(hub: &Hub, id: &RepoId) -> String {
    format!("{}/{}{}/{}", hub.base_url, id.kind.url_prefix(), id.ns, id.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: RepoKind) -> RepoId {
        RepoId::new(kind, "alice", "m1").unwrap()
    }

    #[test]
    fn routes() {
        assert_eq!(parse(&Method::GET, "/api/whoami-v2"), Ok(Route::Whoami));
        assert_eq!(
            parse(&Method::GET, "/api/models/alice/m1/revision/refs%2Fpr%2F1"),
            Ok(Route::Info {
                id: id(RepoKind::Model),
                rev: Some("refs/pr/1".into())
            })
        );
        assert_eq!(
            parse(&Method::GET, "/api/datasets/alice/m1/tree/main/sub%2Fdeeper"),
            Ok(Route::Tree {
                id: id(RepoKind::Dataset),
                rev: "main".into(),
                path: "sub/deeper".into()
            })
        );
        assert_eq!(
            parse(&Method::HEAD, "/alice/m1/resolve/main/dir%20x/%C3%BC.txt"),
            Ok(Route::Resolve {
                id: id(RepoKind::Model),
                rev: "main".into(),
                path: "dir x/ü.txt".into()
            })
        );
        assert_eq!(
            parse(&Method::POST, "/spaces/alice/m1.git/info/lfs/objects/batch"),
            Ok(Route::LfsBatch(id(RepoKind::Space)))
        );
        assert_eq!(
            parse(&Method::POST, "/alice/m1/info/lfs/objects/batch"),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            parse(&Method::GET, "/datasets/alice/m1/info/refs"),
            Ok(Route::Git {
                id: id(RepoKind::Dataset),
                service: "info/refs".into()
            })
        );
        assert_eq!(parse(&Method::GET, "/api/foos/alice/x"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn stats_classes() {
        let class = |m: Method, p: &str| route_class(&m, p);
        assert_eq!(class(Method::GET, "/alice/m1/resolve/main/a.txt"), RouteClass::Resolve);
        assert_eq!(
            class(Method::POST, "/api/models/alice/m1/commit/main"),
            RouteClass::Commit
        );
        assert_eq!(
            class(Method::POST, "/alice/m1.git/info/lfs/objects/batch"),
            RouteClass::LfsBatch
        );
        assert_eq!(class(Method::POST, "/api/complete_multipart"), RouteClass::Complete);
        assert_eq!(
            class(Method::POST, "/alice/m1.git/git-receive-pack"),
            RouteClass::GitPush
        );
        assert_eq!(class(Method::GET, "/alice/m1.git/info/refs"), RouteClass::Git);
        assert_eq!(class(Method::GET, "/api/whoami-v2"), RouteClass::Api);
        assert_eq!(class(Method::GET, "/api/nope"), RouteClass::Unknown);
        assert_eq!(parse(&Method::GET, "/api/models/alice/.."), Err(StatusCode::NOT_FOUND));
    }
}
