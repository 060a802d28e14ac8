//! Git smart HTTP and the LFS API with GitLab's access rules and answers: anonymous callers
//! without access are challenged (`401`, realm `GitLab`), signed-in callers who may not see a
//! project get `404`, readers who push get `403`, and a push to a project that does not exist
//! yet creates it (private) when the caller may create projects in its namespace.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Ctx;
use super::projects::{self, Level, Visibility};
use crate::auth::Caller;
use crate::githttp::Access;
use crate::http::hv;
use crate::lfs_api::{BatchPolicy, batch_with, lfs_response};
use crate::repo::RepoId;
use crate::store::StoreError;

/// The realm of GitLab's Basic challenges.
pub const REALM: &str = "GitLab";
const ACCESS_DENIED: &str = "HTTP Basic: Access denied";
const PROJECT_NOT_FOUND: &str =
    "The project you were looking for could not be found or you don't have permission to view it.";
const PUSH_DENIED: &str = "You are not allowed to push code to this project.";
const LFS_NOT_FOUND: &str = "Not found.";
const LFS_FORBIDDEN: &str = "Access forbidden. Check your access level.";

/// What the caller may do with project `id`; `None` when it does not exist.
async fn project_level(ctx: &Ctx, id: &RepoId) -> Result<Option<Level>, StoreError> {
    let hub = &ctx.gl.hub;
    Ok(projects::load(&hub.store, id)
        .await?
        .map(|p| projects::level(&hub.users, &ctx.caller, &id.ns, p.visibility())))
}

/// `info/refs`, `git-upload-pack`, `git-receive-pack` of project `id`.
pub async fn git(ctx: &Ctx, id: &RepoId, service: &str, parts: &axum::http::request::Parts, body: Body) -> Response {
    crate::githttp::serve(&ctx.gl.hub, id, service, parts, body, |write| {
        git_access(ctx, id, write)
    })
    .await
}

async fn git_access(ctx: &Ctx, id: &RepoId, write: bool) -> Access {
    let challenge = || Access::Challenge {
        realm: REALM,
        message: ACCESS_DENIED.into(),
    };
    let user = match &ctx.caller {
        Caller::Invalid => return challenge(),
        Caller::Anonymous => None,
        Caller::User(p) => Some(p.name.clone()),
    };
    let anonymous = user.is_none();
    let refuse = || {
        if anonymous {
            challenge()
        } else {
            Access::Deny(StatusCode::NOT_FOUND, PROJECT_NOT_FOUND.into())
        }
    };
    let level = match project_level(ctx, id).await {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    match level {
        None if write && !anonymous => match push_to_create(ctx, id).await {
            Ok(true) => Access::Allow { user },
            Ok(false) => refuse(),
            Err(e) => internal(e),
        },
        None | Some(Level::None) => refuse(),
        Some(Level::Write) => Access::Allow { user },
        Some(Level::Read) if !write => Access::Allow { user },
        Some(Level::Read) if anonymous => challenge(),
        Some(Level::Read) => Access::Deny(StatusCode::FORBIDDEN, PUSH_DENIED.into()),
    }
}

fn internal(e: StoreError) -> Access {
    tracing::error!(error = %e, "git access check failed");
    Access::Deny(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error".into())
}

/// GitLab's push-to-create: a caller who may create projects in the (existing) namespace gets
/// a new private project. `Ok(false)`: not allowed.
async fn push_to_create(ctx: &Ctx, id: &RepoId) -> Result<bool, StoreError> {
    let gl = &ctx.gl;
    if gl.namespaces.by_path(&id.ns).is_none() || !gl.hub.users.can_write(&ctx.caller, &id.ns) {
        return Ok(false);
    }
    match gl.create_project(id, Visibility::Private).await {
        Ok(_) => {
            tracing::info!(project = %id.full(), "created project on push");
            Ok(true)
        }
        // Created meanwhile by someone else: the caller may write to the namespace anyway.
        Err(StoreError::Exists) => Ok(projects::load(&gl.hub.store, id).await?.is_some()),
        Err(e) => Err(e),
    }
}

/// An LFS error in the LFS JSON shape; 401s carry the challenges git-lfs looks for.
fn lfs_error(status: StatusCode, message: &str) -> Response {
    let mut resp = lfs_response(status, json!({ "message": message }));
    if status == StatusCode::UNAUTHORIZED {
        let realm = hv(&format!("Basic realm=\"{REALM}\""));
        resp.headers_mut().insert("lfs-authenticate", realm.clone());
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, realm);
    }
    resp
}

async fn lfs_access(ctx: &Ctx, id: &RepoId, write: bool) -> Result<(), Response> {
    let anonymous = match ctx.caller {
        Caller::Invalid => return Err(lfs_error(StatusCode::UNAUTHORIZED, ACCESS_DENIED)),
        Caller::Anonymous => true,
        Caller::User(_) => false,
    };
    let level = project_level(ctx, id).await.map_err(|e| {
        tracing::error!(error = %e, "LFS access check failed");
        lfs_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    })?;
    match level {
        Some(Level::Write) => Ok(()),
        Some(Level::Read) if !write => Ok(()),
        _ if anonymous => Err(lfs_error(StatusCode::UNAUTHORIZED, ACCESS_DENIED)),
        Some(Level::Read) => Err(lfs_error(StatusCode::FORBIDDEN, LFS_FORBIDDEN)),
        _ => Err(lfs_error(StatusCode::NOT_FOUND, LFS_NOT_FOUND)),
    }
}

/// `POST {project}.git/info/lfs/objects/batch`: basic transfers only, no verify action, and
/// the object size limit.
pub async fn lfs_batch(ctx: &Ctx, id: &RepoId, parts: &axum::http::request::Parts, body: Body) -> Response {
    let policy = BatchPolicy {
        multipart: false,
        verify: false,
        max_object_size: ctx.gl.hub.cfg.max_lfs_object_size,
    };
    batch_with(&ctx.gl.hub, id, parts, body, policy, |asked| {
        lfs_access(ctx, id, asked.upload)
    })
    .await
}

/// `GET .../info/lfs/locks` and `POST .../info/lfs/locks/verify`: hubsim holds no locks, but
/// answers like a server that supports them, so git-lfs does not warn on push.
pub async fn lfs_locks(ctx: &Ctx, id: &RepoId, verify: bool) -> Response {
    if let Err(resp) = lfs_access(ctx, id, verify).await {
        return resp;
    }
    let body = if verify {
        json!({"ours": [], "theirs": []})
    } else {
        json!({"locks": []})
    };
    lfs_response(StatusCode::OK, body).into_response()
}
