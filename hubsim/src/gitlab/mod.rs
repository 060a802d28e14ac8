//! The git flavor: a GitLab-like Git LFS host. Projects live at `group[/subgroup...]/project`;
//! it serves git smart HTTP (with GitLab's push-to-create and push rules), the LFS batch API
//! (basic transfers only), the few `/api/v4` routes a migration tool uses to create projects
//! and drive pull mirrors, and carries out the pull mirrors itself.
//!
//! Credentials follow GitLab: git and git-lfs authenticate with HTTP Basic (the token as the
//! password, the token's user name or `oauth2` as the user name); the API takes `PRIVATE-TOKEN`
//! or `Authorization: Bearer`. URLs are routed by hand on the raw path because `:id` and branch
//! names arrive percent-encoded (`acme%2Fml%2Fbert`) and are decoded per segment, after routing.

mod api;
mod error;
pub mod hooks;
mod mirror;
pub mod projects;
mod smart;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use percent_encoding::percent_decode_str;

use crate::auth::{Caller, Users};
use crate::repo::{RepoId, RepoKind};
use crate::state::Hub;
use crate::stats::RouteClass;
pub use error::render;
use error::{ApiError, ApiResult};
use projects::Namespaces;

/// The flavor's state: the hub plus GitLab's namespace table and the running mirrors.
pub struct Gl {
    pub hub: Arc<Hub>,
    pub namespaces: Namespaces,
    /// Serialises project creation (numeric ids are "the next free one").
    create: tokio::sync::Mutex<()>,
    mirrors: mirror::Mirrors,
}

impl Gl {
    pub fn new(hub: Arc<Hub>) -> Self {
        Gl {
            namespaces: Namespaces::new(&hub.users),
            hub,
            create: tokio::sync::Mutex::new(()),
            mirrors: mirror::Mirrors::default(),
        }
    }

    /// Creates an empty project unless its path is taken, by a project or by a namespace.
    pub async fn create_project(
        &self,
        id: &RepoId,
        visibility: projects::Visibility,
    ) -> Result<projects::Project, crate::store::StoreError> {
        if self.namespaces.by_path(&id.full()).is_some() {
            return Err(crate::store::StoreError::Exists);
        }
        let _guard = self.create.lock().await;
        projects::create(&self.hub.store, id, visibility).await
    }
}

/// A request that reached a handler.
pub struct Ctx {
    pub gl: Arc<Gl>,
    pub caller: Caller,
}

/// How a project is named in `/api/v4/projects/:id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Num(u64),
    /// The decoded full path (checked when it is looked up).
    Path(String),
}

#[derive(Debug, PartialEq)]
enum Route {
    /// `info/refs`, `git-upload-pack` or `git-receive-pack`.
    Git {
        id: RepoId,
        service: String,
    },
    LfsBatch(RepoId),
    LfsLocks(RepoId),
    LfsLocksVerify(RepoId),
    User,
    Project(ProjectRef),
    CreateProject,
    UpdateProject(ProjectRef),
    Namespace(String),
    MirrorPull(ProjectRef),
    MirrorStatus(ProjectRef),
    Branch(ProjectRef, String),
}

impl Route {
    fn is_api(&self) -> bool {
        !matches!(
            self,
            Route::Git { .. } | Route::LfsBatch(_) | Route::LfsLocks(_) | Route::LfsLocksVerify(_)
        )
    }
}

fn decode(seg: &str) -> String {
    percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

fn project_ref(seg: &str) -> ProjectRef {
    let s = decode(seg);
    match s.parse::<u64>() {
        Ok(n) if !s.starts_with('0') => ProjectRef::Num(n),
        _ => ProjectRef::Path(s),
    }
}

fn git_route(id: RepoId, service: &str) -> Route {
    Route::Git {
        id,
        service: service.into(),
    }
}

/// Parses a request line. `Err(true)`: an unknown `/api/v4` route; `Err(false)`: any other.
fn parse(method: &Method, raw_path: &str) -> Result<Route, bool> {
    use Method as M;
    let segs: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    if let ["api", "v4", rest @ ..] = segs.as_slice() {
        return Ok(match (method.clone(), rest) {
            (M::GET, ["user"]) => Route::User,
            (M::POST, ["projects"]) => Route::CreateProject,
            (M::GET, ["projects", id]) => Route::Project(project_ref(id)),
            (M::PUT, ["projects", id]) => Route::UpdateProject(project_ref(id)),
            (M::POST, ["projects", id, "mirror", "pull"]) => Route::MirrorPull(project_ref(id)),
            (M::GET, ["projects", id, "mirror", "pull"]) => Route::MirrorStatus(project_ref(id)),
            (M::GET, ["projects", id, "repository", "branches", b]) => Route::Branch(project_ref(id), decode(b)),
            (M::GET, ["namespaces", id]) => Route::Namespace(decode(id)),
            _ => return Err(true),
        });
    }
    // (route, number of tail segments, LFS route)
    let (route, tail, lfs): (fn(RepoId) -> Route, usize, bool) = match (method.clone(), segs.as_slice()) {
        (M::GET, [.., "info", "refs"]) => (|id| git_route(id, "info/refs"), 2, false),
        (M::POST, [.., "git-upload-pack"]) => (|id| git_route(id, "git-upload-pack"), 1, false),
        (M::POST, [.., "git-receive-pack"]) => (|id| git_route(id, "git-receive-pack"), 1, false),
        (M::POST, [.., "info", "lfs", "objects", "batch"]) => (Route::LfsBatch, 4, true),
        (M::POST, [.., "info", "lfs", "locks", "verify"]) => (Route::LfsLocksVerify, 4, true),
        (M::GET, [.., "info", "lfs", "locks"]) => (Route::LfsLocks, 3, true),
        _ => return Err(false),
    };
    let path = &segs[..segs.len() - tail];
    let [ns @ .., name] = path else { return Err(false) };
    let name = decode(name);
    // git-lfs derives `{remote}.git/info/lfs` from any remote URL, so GitLab only routes LFS
    // under the `.git` form; git itself may use either.
    if lfs && !name.ends_with(".git") {
        return Err(false);
    }
    let ns: Vec<String> = ns.iter().map(|s| decode(s)).collect();
    // Each segment on its own: an encoded `/` is not a separator.
    if ns.iter().any(|s| crate::repo::check_name(s).is_err()) {
        return Err(false);
    }
    let name = name.strip_suffix(".git").unwrap_or(&name);
    let id = RepoId::nested(RepoKind::Model, &ns.join("/"), name).map_err(|_| false)?;
    Ok(route(id))
}

/// The token of an `/api/v4` request: `PRIVATE-TOKEN`, else `Authorization: Bearer`.
fn api_token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string());
    }
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let t = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?;
    Some(t.trim().to_string())
}

/// The caller of an `/api/v4` request (Basic auth means nothing there).
fn api_caller(users: &Users, headers: &HeaderMap) -> Caller {
    match api_token(headers) {
        None => Caller::Anonymous,
        Some(t) if t.is_empty() => Caller::Invalid,
        Some(t) => users.caller(Some(&t)),
    }
}

/// The caller of a git or LFS request: HTTP Basic with the token as the password and, as the
/// user name, the token's own user or `oauth2`. Anything else is not a credential.
fn git_caller(users: &Users, headers: &HeaderMap) -> Caller {
    let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Caller::Anonymous;
    };
    let Some(b) = v
        .trim()
        .strip_prefix("Basic ")
        .or_else(|| v.trim().strip_prefix("basic "))
    else {
        return Caller::Invalid;
    };
    let Some((user, pass)) = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
    else {
        return Caller::Invalid;
    };
    if pass.is_empty() {
        return Caller::Invalid;
    }
    match users.caller(Some(&pass)) {
        Caller::User(p) if user == p.name || user == "oauth2" => Caller::User(p),
        _ => Caller::Invalid,
    }
}

/// The flavor's router: one handler that parses and dispatches every request.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new().fallback(dispatch).with_state(Arc::new(Gl::new(hub)))
}

async fn dispatch(State(gl): State<Arc<Gl>>, req: Request) -> Response {
    let route = match parse(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(true) => return crate::http::closing(ApiError::no_route().into_response()),
        Err(false) => return crate::http::closing((StatusCode::NOT_FOUND, "Not Found").into_response()),
    };
    let api = route.is_api();
    let caller = if api {
        api_caller(&gl.hub.users, req.headers())
    } else {
        git_caller(&gl.hub.users, req.headers())
    };
    if api && matches!(caller, Caller::Invalid) {
        return crate::http::closing(ApiError::unauthorized().into_response());
    }
    let (parts, body) = req.into_parts();
    // As in the other flavors: consume API bodies before answering so keep-alive connections
    // survive early errors. Git streams its own (possibly huge) bodies.
    let body = if matches!(route, Route::Git { .. }) {
        body
    } else {
        match crate::http::read_body(&gl.hub, body).await {
            Ok(b) => Body::from(b),
            Err(e) => return crate::http::closing(ApiError::from(e).into_response()),
        }
    };
    let ctx = Ctx { gl, caller };
    handle(&ctx, route, &parts, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(ctx: &Ctx, route: Route, parts: &axum::http::request::Parts, body: Body) -> ApiResult {
    let query = parts.uri.query();
    match route {
        Route::Git { id, service } => Ok(smart::git(ctx, &id, &service, parts, body).await),
        Route::LfsBatch(id) => Ok(smart::lfs_batch(ctx, &id, parts, body).await),
        Route::LfsLocks(id) => Ok(smart::lfs_locks(ctx, &id, false).await),
        Route::LfsLocksVerify(id) => Ok(smart::lfs_locks(ctx, &id, true).await),
        Route::User => api::user(ctx),
        Route::Project(p) => api::project(ctx, &p).await,
        Route::CreateProject => api::create_project(ctx, parts, query, body).await,
        Route::UpdateProject(p) => api::update_project(ctx, &p, parts, query, body).await,
        Route::Namespace(key) => api::namespace(ctx, &key),
        Route::MirrorPull(p) => api::mirror_pull(ctx, &p).await,
        Route::MirrorStatus(p) => api::mirror_status(ctx, &p).await,
        Route::Branch(p, name) => api::branch(ctx, &p, &name).await,
    }
}

/// Is this an API listing route (the ones `--api-403` refuses)? For GitLab: project reads.
pub fn is_api_listing(method: &Method, raw_path: &str) -> bool {
    method == Method::GET && raw_path.starts_with("/api/v4/projects/")
}

/// The stats class of a request (`/_hubsim/stats`).
pub fn route_class(method: &Method, raw_path: &str) -> RouteClass {
    match parse(method, raw_path) {
        Ok(Route::Git { service, .. }) if service == "git-receive-pack" => RouteClass::GitPush,
        Ok(Route::Git { .. }) => RouteClass::Git,
        Ok(Route::LfsBatch(_)) => RouteClass::LfsBatch,
        Ok(_) => RouteClass::Api,
        Err(_) => RouteClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &str) -> RepoId {
        RepoId::from_full_path(RepoKind::Model, path).unwrap()
    }

    #[test]
    fn git_routes() {
        let g = |m: Method, p: &str| parse(&m, p);
        assert_eq!(
            g(Method::GET, "/acme/ml/bert.git/info/refs"),
            Ok(Route::Git {
                id: id("acme/ml/bert"),
                service: "info/refs".into()
            })
        );
        assert_eq!(
            g(Method::POST, "/alice/m/git-receive-pack"),
            Ok(Route::Git {
                id: id("alice/m"),
                service: "git-receive-pack".into()
            })
        );
        assert_eq!(
            g(Method::POST, "/a/b/c/d.git/info/lfs/objects/batch"),
            Ok(Route::LfsBatch(id("a/b/c/d")))
        );
        assert_eq!(
            g(Method::POST, "/a/d.git/info/lfs/locks/verify"),
            Ok(Route::LfsLocksVerify(id("a/d")))
        );
        // LFS only under the .git form; a project needs a namespace; names are checked.
        for (m, p) in [
            (Method::POST, "/a/d/info/lfs/objects/batch"),
            (Method::GET, "/alice/info/refs"),
            (Method::GET, "/info/refs"),
            (Method::GET, "/a/../d.git/info/refs"),
            (Method::GET, "/a/%2e%2e/d.git/info/refs"),
            (Method::GET, "/a/b%2Fc/d.git/info/refs"),
            (Method::POST, "/a/d.git/info/refs"),
            (Method::GET, "/a/d.git/HEAD"),
        ] {
            assert_eq!(parse(&m, p), Err(false), "{m} {p}");
        }
        let deep = format!("/{}/p.git/info/refs", vec!["g"; 19].join("/"));
        assert!(g(Method::GET, &deep).is_ok());
        let too_deep = format!("/{}/p.git/info/refs", vec!["g"; 20].join("/"));
        assert_eq!(g(Method::GET, &too_deep), Err(false));
    }

    #[test]
    fn api_routes() {
        let g = |m: Method, p: &str| parse(&m, p);
        assert_eq!(
            g(Method::GET, "/api/v4/projects/acme%2Fml%2Fbert"),
            Ok(Route::Project(ProjectRef::Path("acme/ml/bert".into())))
        );
        assert_eq!(
            g(Method::GET, "/api/v4/projects/42"),
            Ok(Route::Project(ProjectRef::Num(42)))
        );
        assert_eq!(
            g(Method::PUT, "/api/v4/projects/042"),
            Ok(Route::UpdateProject(ProjectRef::Path("042".into())))
        );
        assert_eq!(
            g(Method::GET, "/api/v4/projects/7/repository/branches/feat%2Fx"),
            Ok(Route::Branch(ProjectRef::Num(7), "feat/x".into()))
        );
        assert_eq!(
            g(Method::POST, "/api/v4/projects/7/mirror/pull"),
            Ok(Route::MirrorPull(ProjectRef::Num(7)))
        );
        assert_eq!(
            g(Method::GET, "/api/v4/namespaces/acme%2Fml"),
            Ok(Route::Namespace("acme/ml".into()))
        );
        assert_eq!(g(Method::POST, "/api/v4/projects"), Ok(Route::CreateProject));
        assert_eq!(g(Method::GET, "/api/v4/projects/acme/ml/bert"), Err(true));
        assert_eq!(g(Method::DELETE, "/api/v4/projects/7"), Err(true));
        assert!(is_api_listing(&Method::GET, "/api/v4/projects/7"));
        assert!(!is_api_listing(&Method::POST, "/api/v4/projects"));
        assert!(!is_api_listing(&Method::GET, "/acme/x.git/info/refs"));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn callers() {
        let users = Users::from_flags(&["alice=ta".into()], &[], &[]).unwrap();
        let basic = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        let who = |h: &HeaderMap| match git_caller(&users, h) {
            Caller::User(p) => p.name,
            Caller::Anonymous => "anonymous".into(),
            Caller::Invalid => "invalid".into(),
        };
        assert_eq!(who(&headers(&[("authorization", &basic("alice:ta"))])), "alice");
        assert_eq!(who(&headers(&[("authorization", &basic("oauth2:ta"))])), "alice");
        assert_eq!(who(&headers(&[("authorization", &basic("bob:ta"))])), "invalid");
        assert_eq!(who(&headers(&[("authorization", &basic("alice:"))])), "invalid");
        assert_eq!(who(&headers(&[("authorization", "Bearer ta")])), "invalid");
        assert_eq!(who(&HeaderMap::new()), "anonymous");
        let api = |h: &HeaderMap| matches!(api_caller(&users, h), Caller::User(_));
        assert!(api(&headers(&[("private-token", "ta")])));
        assert!(api(&headers(&[("authorization", "Bearer ta")])));
        assert!(!api(&headers(&[("authorization", &basic("alice:ta"))])));
    }
}
