"""The real git and git-lfs against hubsim's git flavor (a GitLab-like Git LFS host), plus its `/api/v4`
project, namespace, branch and pull-mirror routes driven with `requests`.

Credentials travel only through the environment (`http.extraHeader` via GIT_CONFIG_COUNT/KEY/VALUE, see
`hubsim.git_env`); GitLab's rule is that the Basic user name is the token's user (or `oauth2`).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import time
import urllib.parse

import pytest
import requests

import hubsim
from hubsim import git, git_env

ALICE = hubsim.USERS["alice"]
BOB = hubsim.USERS["bob"]
CAROL = hubsim.READ_USERS["carol"]
KiB = 1024

LFS_MISSING = ('GitLab: LFS objects are missing. Ensure LFS is properly set up or try a manual '
               '"git lfs push --all".')
DEFAULT_BRANCH = "GitLab: The default branch of a project cannot be deleted."


# ----------------------------------------------------------------------------------------------------
# hubs


@pytest.fixture(scope="module")
def gl():
    """A git-flavoured hub; alice is in `acme` (so also in `acme/research`), bob only in `acme/research`."""
    hub = hubsim.start("git", "--org", "acme/research=bob")
    yield hub
    hubsim.cleanup(hub)


@pytest.fixture(scope="module")
def gl_small():
    """A git-flavoured hub that refuses LFS objects over 100 KiB."""
    hub = hubsim.start("git", "--max-lfs-object-size", "100KiB")
    yield hub
    hubsim.cleanup(hub)


@pytest.fixture(scope="module")
def sources():
    """Hubs of the other flavours, as pull-mirror sources: {"hf": hub, "ms": hub}."""
    hubs = {flavor: hubsim.start(flavor) for flavor in ("hf", "ms")}
    yield hubs
    for hub in hubs.values():
        hubsim.cleanup(hub)


# ----------------------------------------------------------------------------------------------------
# helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def enc(path: str) -> str:
    return urllib.parse.quote(path, safe="")


def env_for(tmp: pathlib.Path, user: str | None, token: str | None = None) -> dict[str, str]:
    """git env with Basic credentials user:token (user's own token by default); None = anonymous."""
    if user is None:
        return git_env(tmp / "home-anonymous")
    token = token or {**hubsim.USERS, **hubsim.READ_USERS}[user]
    return git_env(tmp / f"home-{user}-{token[-6:]}", token, username=user)


def api(hub: hubsim.Hub, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token is not None:
        headers["PRIVATE-TOKEN"] = token
    return requests.request(method, f"{hub.url}/api/v4{path}", headers=headers, timeout=30, **kw)


def make_repo(path: pathlib.Path, env: dict[str, str], files: dict[str, bytes],
              lfs_patterns: tuple[str, ...] = ("*.bin", "*.safetensors")) -> str:
    """A fresh work tree with git-lfs hooks, LFS tracking for LFS_PATTERNS and FILES committed on main."""
    git("init", "-q", "-b", "main", str(path), env=env)
    git("lfs", "install", "--local", cwd=path, env=env)
    for pattern in lfs_patterns:
        git("lfs", "track", pattern, cwd=path, env=env)
    return commit(path, env, files, "initial")


def commit(path: pathlib.Path, env: dict[str, str], files: dict[str, bytes], message: str) -> str:
    for rel, data in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    git("add", "-A", cwd=path, env=env)
    git("commit", "-q", "-m", message, cwd=path, env=env)
    return git("rev-parse", "HEAD", cwd=path, env=env).stdout.strip()


def remote_refs(url: str, env: dict[str, str]) -> dict[str, str]:
    out = git("ls-remote", url, env=env).stdout
    return {name: sha for sha, name in (line.split("\t") for line in out.splitlines())}


def assert_files(clone: pathlib.Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert sha256((clone / rel).read_bytes()) == sha256(data), rel


def assert_manifest(clone: pathlib.Path, manifest: list[dict]) -> None:
    for entry in manifest:
        data = (clone / entry["path"]).read_bytes()
        assert len(data) == entry["size"] and sha256(data) == entry["sha256"], entry["path"]


def sample_files() -> dict[str, bytes]:
    return {
        "README.md": b"# git flavour\n",
        "weights/model.safetensors": os.urandom(300 * KiB),
        "data/blob.bin": os.urandom(5000),
        "dir with space/\u00fcn\u00ef.txt": "unicode \u2713\n".encode(),
    }


def push_new_project(hub: hubsim.Hub, tmp: pathlib.Path, path: str, files: dict[str, bytes] | None = None,
                     user: str = "alice") -> tuple[str, pathlib.Path, dict[str, bytes]]:
    """Push-to-create PATH on HUB with FILES (LFS included); returns (head, work tree, files)."""
    env = env_for(tmp, user)
    files = files if files is not None else sample_files()
    work = tmp / f"work-{path.replace('/', '-')}"
    head = make_repo(work, env, files)
    git("push", f"{hub.url}/{path}.git", "main", cwd=work, env=env)
    return head, work, files


def wait_for_mirror(hub: hubsim.Hub, project: int | str, token: str, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = api(hub, "GET", f"/projects/{project}/mirror/pull", token)
        assert r.status_code == 200, r.text
        status = r.json()
        if status["update_status"] in ("finished", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"mirror of {project} still {status['update_status']} after {timeout}s")


def hub_log(hub: hubsim.Hub) -> str:
    return "".join(hub.log)


# ----------------------------------------------------------------------------------------------------
# git and git-lfs


def test_push_to_create_then_clone_with_lfs(gl, repo_name, tmp_path):
    path = f"acme/research/{repo_name}"  # alice is a member of the parent group only
    head, _, files = push_new_project(gl, tmp_path, path)

    r = api(gl, "GET", f"/projects/{enc(path)}", ALICE)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["visibility"] == "private"
    assert p["path_with_namespace"] == path and p["path"] == repo_name
    assert p["default_branch"] == "main" and p["empty_repo"] is False
    assert p["namespace"]["full_path"] == "acme/research" and p["namespace"]["kind"] == "group"
    assert p["http_url_to_repo"] == f"{gl.url}/{path}.git"
    assert api(gl, "GET", f"/projects/{p['id']}", ALICE).json()["path_with_namespace"] == path
    assert api(gl, "GET", f"/projects/{enc(path)}").status_code == 404  # private: anonymous sees nothing

    # bob (member of acme/research) clones with the oauth2 user name; smudge gives the pushed bytes back.
    bob_env = env_for(tmp_path, "oauth2", BOB)
    clone = tmp_path / "clone"
    git("clone", f"{gl.url}/{path}", str(clone), env=bob_env)
    assert git("rev-parse", "HEAD", cwd=clone, env=bob_env).stdout.strip() == head
    assert_files(clone, files)
    git("lfs", "fsck", cwd=clone, env=bob_env)
    assert git("status", "--porcelain", cwd=clone, env=bob_env).stdout == ""

    # Anonymous callers and non-members cannot clone a private project.
    for who, env in (("anonymous", env_for(tmp_path, None)), ("carol", env_for(tmp_path, "carol"))):
        target = tmp_path / f"clone-{who}"
        proc = git("clone", f"{gl.url}/{path}.git", str(target), env=env, check=False, timeout=60)
        assert proc.returncode != 0, f"{who} cloned a private project"


def test_wrong_credentials_are_refused(gl, repo_name, tmp_path):
    path = f"alice/{repo_name}"
    push_new_project(gl, tmp_path, path, {"a.txt": b"a\n"})
    for user, token in (("bob", ALICE), ("alice", "not-a-token"), ("alice", BOB), ("", ALICE)):
        env = git_env(tmp_path / f"home-{user}-{token[-4:]}", token, username=user)
        proc = git("ls-remote", f"{gl.url}/{path}.git", env=env, check=False, timeout=60)
        assert proc.returncode != 0, f"{user}:{token[-4:]} was accepted"
        basic = requests.auth.HTTPBasicAuth(user, token)
        r = requests.get(f"{gl.url}/{path}.git/info/refs?service=git-upload-pack", auth=basic, timeout=30)
        if token == BOB:
            assert r.status_code == 401  # bob's token under alice's name is not a credential either
        else:
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert api(gl, "GET", "/user", "not-a-token").json() == {"message": "401 Unauthorized"}
    assert api(gl, "GET", "/user", "not-a-token").status_code == 401
    assert api(gl, "GET", "/user", ALICE).json()["username"] == "alice"


def test_push_to_create_needs_rights_on_an_existing_namespace(gl, repo_name, tmp_path):
    work = tmp_path / "work"
    make_repo(work, env_for(tmp_path, "alice"), {"a.txt": b"a\n"})
    for user, path in (("alice", f"nope/{repo_name}"), ("bob", f"acme/{repo_name}"),
                       ("carol", f"carol/{repo_name}"), (None, f"alice/{repo_name}"),
                       ("alice", f"alice/sub/{repo_name}")):
        proc = git("push", f"{gl.url}/{path}.git", "main", cwd=work, env=env_for(tmp_path, user), check=False,
                   timeout=60)
        assert proc.returncode != 0, f"{user} created {path}"
        assert api(gl, "GET", f"/projects/{enc(path)}", ALICE).status_code == 404

    # Reading a missing project: 404 when signed in, the 401 challenge when anonymous.
    r = requests.get(f"{gl.url}/alice/{repo_name}.git/info/refs?service=git-upload-pack",
                     auth=("alice", ALICE), timeout=30)
    assert r.status_code == 404
    r = requests.get(f"{gl.url}/alice/{repo_name}.git/info/refs?service=git-upload-pack", timeout=30)
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]
    # Push-to-create also answers on the advertisement alone (GitLab creates the project there).
    r = requests.get(f"{gl.url}/alice/{repo_name}/info/refs?service=git-receive-pack",
                     auth=("alice", ALICE), timeout=30)
    assert r.status_code == 200
    p = api(gl, "GET", f"/projects/alice%2F{repo_name}", ALICE).json()
    assert p["visibility"] == "private" and p["empty_repo"] is True and p["default_branch"] is None


def test_hidden_refs_are_rejected_per_ref(gl, repo_name, tmp_path):
    path = f"alice/{repo_name}"
    env = env_for(tmp_path, "alice")
    head, work, _ = push_new_project(gl, tmp_path, path, {"a.txt": b"a\n", "w.bin": os.urandom(3000)})
    head2 = commit(work, env, {"b.txt": b"b\n", "w2.bin": os.urandom(3000)}, "second")
    git("tag", "v1", cwd=work, env=env)
    proc = git("push", f"{gl.url}/{path}.git", "main", "main:refs/merge-requests/1/head", "main:refs/pr/1",
               "refs/tags/v1", cwd=work, env=env, check=False)
    assert proc.returncode != 0
    assert proc.stderr.count("deny updating a hidden ref") == 2, proc.stderr
    refs = remote_refs(f"{gl.url}/{path}.git", env)
    assert refs["refs/heads/main"] == head2 and refs["refs/tags/v1"] == head2
    assert not any(r.startswith(("refs/merge-requests", "refs/pr")) for r in refs)
    assert head != head2


def test_default_branch_cannot_be_deleted_or_force_pushed(gl, repo_name, tmp_path):
    path = f"alice/{repo_name}"
    env = env_for(tmp_path, "alice")
    head, work, _ = push_new_project(gl, tmp_path, path, {"a.txt": b"a\n"})
    git("push", f"{gl.url}/{path}.git", "main:dev", cwd=work, env=env)
    proc = git("push", f"{gl.url}/{path}.git", ":main", cwd=work, env=env, check=False)
    assert proc.returncode != 0 and DEFAULT_BRANCH in proc.stderr, proc.stderr
    git("push", f"{gl.url}/{path}.git", ":dev", cwd=work, env=env)  # other branches may go
    assert remote_refs(f"{gl.url}/{path}.git", env) == {"HEAD": head, "refs/heads/main": head}

    # The default branch is protected: no force push (GitLab's default protection).
    git("commit", "-q", "--amend", "-m", "rewritten", cwd=work, env=env)
    proc = git("push", "-f", f"{gl.url}/{path}.git", "main", cwd=work, env=env, check=False)
    assert proc.returncode != 0 and "not allowed to force push" in proc.stderr, proc.stderr
    assert remote_refs(f"{gl.url}/{path}.git", env)["refs/heads/main"] == head


def test_first_push_sets_the_default_branch(gl, repo_name, tmp_path):
    path = f"alice/{repo_name}"
    env = env_for(tmp_path, "alice")
    work = tmp_path / "work"
    head = make_repo(work, env, {"a.txt": b"a\n"})
    git("push", f"{gl.url}/{path}.git", "main:trunk", "main:zeta", cwd=work, env=env)
    assert api(gl, "GET", f"/projects/{enc(path)}", ALICE).json()["default_branch"] == "trunk"
    clone = tmp_path / "clone"
    git("clone", f"{gl.url}/{path}.git", str(clone), env=env)
    assert git("symbolic-ref", "--short", "HEAD", cwd=clone, env=env).stdout.strip() == "trunk"
    b = api(gl, "GET", f"/projects/{enc(path)}/repository/branches/trunk", ALICE).json()
    assert b["commit"]["id"] == head and b["default"] is True and b["protected"] is True
    assert api(gl, "GET", f"/projects/{enc(path)}/repository/branches/zeta", ALICE).json()["default"] is False


@pytest.mark.parametrize("how", ["GIT_LFS_SKIP_PUSH", "--no-verify"])
def test_pointer_without_its_object_is_refused(gl, repo_name, tmp_path, how):
    path = f"alice/{repo_name}"
    env = env_for(tmp_path, "alice")
    head, work, _ = push_new_project(gl, tmp_path, path, {"a.txt": b"a\n"})
    commit(work, env, {"new.bin": os.urandom(4000), "note.txt": b"n\n"}, "pointer without object")
    git("branch", "side", "HEAD~1", cwd=work, env=env)
    commit_env = {**env, "GIT_LFS_SKIP_PUSH": "1"} if how == "GIT_LFS_SKIP_PUSH" else env
    args = ["push", "--no-verify"] if how == "--no-verify" else ["push"]
    proc = git(*args, f"{gl.url}/{path}.git", "main", "side", cwd=work, env=commit_env, check=False)
    assert proc.returncode != 0
    assert LFS_MISSING in proc.stderr, proc.stderr
    assert remote_refs(f"{gl.url}/{path}.git", env) == {"HEAD": head, "refs/heads/main": head}  # nothing landed

    # With the object uploaded (git-lfs's pre-push hook), the same push goes through.
    git("push", f"{gl.url}/{path}.git", "main", "side", cwd=work, env=env)


def test_object_of_another_project_is_not_linked(gl, repo_name, tmp_path):
    """GitLab's integrity check wants the object linked to *this* project, not merely stored."""
    env = env_for(tmp_path, "alice")
    head, work, _ = push_new_project(gl, tmp_path, f"alice/{repo_name}-a")
    proc = git("push", f"{gl.url}/alice/{repo_name}-b.git", "main", cwd=work,
               env={**env, "GIT_LFS_SKIP_PUSH": "1"}, check=False)
    assert proc.returncode != 0 and LFS_MISSING in proc.stderr, proc.stderr
    git("push", f"{gl.url}/alice/{repo_name}-b.git", "main", cwd=work, env=env)  # git-lfs links them
    assert remote_refs(f"{gl.url}/alice/{repo_name}-b.git", env)["refs/heads/main"] == head


def test_max_lfs_object_size(gl_small, repo_name, tmp_path):
    env = env_for(tmp_path, "alice")
    path = f"alice/{repo_name}"
    work = tmp_path / "work"
    make_repo(work, env, {"small.bin": os.urandom(50 * KiB), "big.bin": os.urandom(200 * KiB)})
    proc = git("push", f"{gl_small.url}/{path}.git", "main", cwd=work, env=env, check=False)
    assert proc.returncode != 0
    assert "413" in proc.stderr or "exceeds the maximum allowed" in proc.stderr, proc.stderr
    assert "refs/heads/main" not in remote_refs(f"{gl_small.url}/{path}.git", env)

    # The batch answer itself: a per-object 413 error, the small object gets its upload action.
    big, small = os.urandom(200 * KiB), os.urandom(KiB)
    r = requests.post(f"{gl_small.url}/{path}.git/info/lfs/objects/batch", auth=("alice", ALICE), timeout=30,
                      headers={"Accept": "application/vnd.git-lfs+json"},
                      json={"operation": "upload", "transfers": ["basic", "multipart"], "objects": [
                          {"oid": sha256(big), "size": len(big)}, {"oid": sha256(small), "size": len(small)}]})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.git-lfs+json")
    body = r.json()
    assert body["transfer"] == "basic"
    err, ok = body["objects"]
    assert err["error"] == {"code": 413, "message": f"Size of LFS object {sha256(big)} exceeds the maximum allowed "
                                                     f"({100 * KiB} bytes)"}
    assert "actions" not in err
    assert set(ok["actions"]) == {"upload"}  # basic only, no verify action
    put = requests.put(ok["actions"]["upload"]["href"], data=small, timeout=30)
    assert put.status_code == 200


def test_lfs_batch_access(gl, repo_name, tmp_path):
    path = f"acme/{repo_name}"
    push_new_project(gl, tmp_path, path, {"x.bin": os.urandom(2000)})
    url = f"{gl.url}/{path}.git/info/lfs/objects/batch"
    data = os.urandom(100)
    req = {"operation": "upload", "objects": [{"oid": sha256(data), "size": len(data)}]}
    headers = {"Accept": "application/vnd.git-lfs+json"}

    r = requests.post(url, json=req, headers=headers, timeout=30)
    assert r.status_code == 401 and r.headers["LFS-Authenticate"].startswith("Basic realm=")
    assert r.headers["Content-Type"].startswith("application/vnd.git-lfs+json") and "message" in r.json()
    r = requests.post(url, json=req, headers=headers, auth=("bob", BOB), timeout=30)  # not in acme
    assert r.status_code == 404 and r.json()["message"]
    r = requests.post(url, json=req, headers=headers, auth=("bob", ALICE), timeout=30)  # wrong user name
    assert r.status_code == 401

    # Public project: anyone may download, a reader may not upload.
    assert api(gl, "PUT", f"/projects/{enc(path)}", ALICE, json={"visibility": "public"}).status_code == 200
    r = requests.post(url, json=req, headers=headers, auth=("carol", CAROL), timeout=30)
    assert r.status_code == 403 and r.json()["message"]
    clone = tmp_path / "anon-clone"
    git("clone", f"{gl.url}/{path}", str(clone), env=env_for(tmp_path, None))
    assert (clone / "x.bin").stat().st_size == 2000


# ----------------------------------------------------------------------------------------------------
# /api/v4


def test_namespaces(gl):
    me = api(gl, "GET", "/namespaces/alice", ALICE).json()
    assert me["kind"] == "user" and me["full_path"] == "alice"
    assert api(gl, "GET", f"/namespaces/{me['id']}", ALICE).json() == me
    sub = api(gl, "GET", "/namespaces/acme%2Fresearch", ALICE).json()  # via membership of acme
    assert sub["kind"] == "group" and sub["path"] == "research" and sub["full_path"] == "acme/research"
    assert sub["parent_id"] == api(gl, "GET", "/namespaces/acme", ALICE).json()["id"]
    for token, key in ((BOB, "acme"), (BOB, "alice"), (ALICE, "nope"), (ALICE, "999999")):
        r = api(gl, "GET", f"/namespaces/{key}", token)
        assert r.status_code == 404 and r.json() == {"message": "404 Namespace Not Found"}, key
    assert api(gl, "GET", "/namespaces/alice").status_code == 401


def test_create_project_api(gl, repo_name, tmp_path):
    research = api(gl, "GET", "/namespaces/acme%2Fresearch", BOB).json()
    r = api(gl, "POST", "/projects", BOB, json={"path": repo_name, "namespace_id": research["id"]})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["path_with_namespace"] == f"acme/research/{repo_name}" and p["visibility"] == "private"
    assert p["empty_repo"] is True and p["default_branch"] is None and p["import_status"] == "none"
    assert api(gl, "GET", f"/projects/{p['id']}", BOB).json()["path_with_namespace"] == p["path_with_namespace"]

    r = api(gl, "POST", "/projects", BOB, json={"path": repo_name, "namespace_id": "acme/research"})
    assert r.status_code == 400 and r.json()["message"]["path"] == ["has already been taken"]
    # Form-encoded, by namespace path, public.
    r = api(gl, "POST", "/projects", ALICE, data={"path": repo_name, "namespace_id": "alice", "visibility": "public"})
    assert r.status_code == 201 and r.json()["visibility"] == "public"
    assert api(gl, "GET", f"/projects/alice%2F{repo_name}").status_code == 200  # public: anonymous reads

    cases = [
        (ALICE, {"path": "x", "namespace_id": "nope"}, 404),
        (BOB, {"path": "x", "namespace_id": "acme"}, 404),   # not bob's namespace
        (CAROL, {"path": "x"}, 403),                         # read-only token
        (None, {"path": "x", "namespace_id": "alice"}, 401),
        (ALICE, {"path": "bad name", "namespace_id": "alice"}, 400),
        (ALICE, {"path": "x", "visibility": "secret"}, 400),
        (ALICE, {"path": "x", "import_url": "ftp://example.com/x.git"}, 400),
    ]
    for token, body, status in cases:
        assert api(gl, "POST", "/projects", token, json=body).status_code == status, body
    assert api(gl, "GET", "/projects/alice%2Fx", ALICE).status_code == 404

    # A project created by the API gets the push rules too.
    env = env_for(tmp_path, "bob")
    work = tmp_path / "work"
    head = make_repo(work, env, {"w.bin": os.urandom(3000)})
    url = f"{gl.url}/acme/research/{repo_name}.git"
    proc = git("push", url, "main", cwd=work, env={**env, "GIT_LFS_SKIP_PUSH": "1"}, check=False)
    assert LFS_MISSING in proc.stderr, proc.stderr
    git("push", url, "main", cwd=work, env=env)
    b = api(gl, "GET", f"/projects/{p['id']}/repository/branches/main", BOB)
    assert b.status_code == 200 and b.json()["commit"]["id"] == head
    r = api(gl, "GET", f"/projects/{p['id']}/repository/branches/feat%2Fx", BOB)
    assert r.status_code == 404 and r.json() == {"message": "404 Branch Not Found"}
    git("push", url, "main:feat/x", cwd=work, env=env)
    assert api(gl, "GET", f"/projects/{p['id']}/repository/branches/feat%2Fx", BOB).json()["name"] == "feat/x"


def test_invisible_projects_are_not_found(gl, repo_name, tmp_path):
    push_new_project(gl, tmp_path, f"alice/{repo_name}", {"a.txt": b"a\n"})
    for token in (None, BOB, CAROL):
        for route in (f"/projects/alice%2F{repo_name}", f"/projects/alice%2F{repo_name}/repository/branches/main"):
            r = api(gl, "GET", route, token)
            assert r.status_code == 404 and r.json() == {"message": "404 Project Not Found"}, (token, route)
    assert api(gl, "GET", "/projects/alice%2Fnever-created", ALICE).json() == {"message": "404 Project Not Found"}
    assert api(gl, "GET", "/projects/999999", ALICE).status_code == 404


# ----------------------------------------------------------------------------------------------------
# pull mirrors


@pytest.mark.parametrize("flavor", ["hf", "ms"])
def test_pull_mirror_from_another_hub(gl, sources, flavor, repo_name, tmp_path):
    src = sources[flavor]
    manifest = hubsim.seed(src.data, flavor, f"alice/{repo_name}", "--private", "--files", "3", "--lfs-files", "2",
                           "--lfs-size", "300KiB", "--lfs-file", "big dir/\u00fcn\u00ef.safetensors=150KiB")
    suffix = ".git" if flavor == "ms" else ""
    source_url = f"{src.url}/alice/{repo_name}{suffix}"
    src_env = env_for(tmp_path, "alice")
    src_refs = remote_refs(source_url, src_env)
    default = "main" if flavor == "hf" else "master"

    created = api(gl, "POST", "/projects", ALICE, json={"path": repo_name, "namespace_id": "acme"})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", ALICE).json() == {"message": "The project is not mirrored"}

    with_creds = source_url.replace("http://", f"http://alice:{ALICE}@")
    r = api(gl, "PUT", f"/projects/{pid}", ALICE, json={"import_url": with_creds, "mirror": True})
    assert r.status_code == 200, r.text
    assert r.json()["import_url"] == source_url and r.json()["mirror"] is True
    assert ALICE not in r.text

    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", CAROL).status_code == 404
    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", ALICE).status_code == 200
    status = wait_for_mirror(gl, pid, ALICE)
    assert status["update_status"] == "finished", status
    assert status["last_error"] is None and status["url"] == source_url and status["enabled"] is True
    assert status["last_successful_update_at"] and ALICE not in str(status)

    p = api(gl, "GET", f"/projects/{pid}", ALICE).json()
    assert p["default_branch"] == default and p["import_status"] == "finished" and p["empty_repo"] is False
    branch = api(gl, "GET", f"/projects/{pid}/repository/branches/{default}", ALICE).json()
    assert branch["commit"]["id"] == src_refs[f"refs/heads/{default}"]

    clone = tmp_path / "clone"
    env = env_for(tmp_path, "alice")
    git("clone", f"{gl.url}/acme/{repo_name}.git", str(clone), env=env)
    assert_manifest(clone, manifest)
    git("lfs", "fsck", cwd=clone, env=env)
    assert ALICE not in hub_log(gl)


def test_pull_mirror_follows_new_commits(gl, gl_small, repo_name, tmp_path):
    """A git-flavoured source (URL ending in .git, user name oauth2); a second pull brings new commits and
    their LFS objects, and prunes deleted branches."""
    env = env_for(tmp_path, "alice")
    src_path = f"alice/{repo_name}"
    head, work, files = push_new_project(gl_small, tmp_path, src_path, {
        "a.bin": os.urandom(60 * KiB), "b.txt": b"b\n"})
    git("push", f"{gl_small.url}/{src_path}.git", "main:old", cwd=work, env=env)
    url = f"http://oauth2:{ALICE}@{gl_small.url.removeprefix('http://')}/{src_path}.git"
    r = api(gl, "POST", "/projects", ALICE, json={"path": f"{repo_name}-m", "import_url": url, "mirror": True})
    assert r.status_code == 201 and r.json()["mirror"] is True and ALICE not in r.text
    pid = r.json()["id"]
    assert wait_for_mirror(gl, pid, ALICE)["update_status"] == "finished"  # created with a URL: imported
    assert api(gl, "GET", f"/projects/{pid}/repository/branches/old", ALICE).status_code == 200

    more = {"c.bin": os.urandom(70 * KiB)}
    head2 = commit(work, env, more, "more")
    git("push", f"{gl_small.url}/{src_path}.git", "main", ":old", cwd=work, env=env)
    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", ALICE).status_code == 200
    status = wait_for_mirror(gl, pid, ALICE)
    assert status["update_status"] == "finished", status
    assert api(gl, "GET", f"/projects/{pid}/repository/branches/main", ALICE).json()["commit"]["id"] == head2
    assert api(gl, "GET", f"/projects/{pid}/repository/branches/old", ALICE).status_code == 404
    clone = tmp_path / "clone"
    git("clone", f"{gl.url}/alice/{repo_name}-m", str(clone), env=env)
    assert_files(clone, {**files, **more})
    git("lfs", "fsck", cwd=clone, env=env)
    assert head != head2


def test_failed_mirrors_say_why(gl, sources, repo_name, tmp_path):
    pid = api(gl, "POST", "/projects", ALICE, json={"path": repo_name}).json()["id"]
    r = api(gl, "PUT", f"/projects/{pid}", ALICE, json={"import_url": "http://127.0.0.1:9/x/y", "mirror": True})
    assert r.status_code == 200
    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", ALICE).status_code == 200
    status = wait_for_mirror(gl, pid, ALICE)
    assert status["update_status"] == "failed" and "git ls-remote failed" in status["last_error"], status
    p = api(gl, "GET", f"/projects/{pid}", ALICE).json()
    assert p["import_status"] == "failed" and p["import_error"] == status["last_error"]

    # A wrong token for a private source: failed, and the token appears nowhere.
    hf = sources["hf"]
    hubsim.seed(hf.data, "hf", f"alice/{repo_name}", "--private", "--files", "1")
    bad = "hf_wrong_token_123456"
    url = f"http://alice:{bad}@{hf.url.removeprefix('http://')}/alice/{repo_name}"
    assert api(gl, "PUT", f"/projects/{pid}", ALICE, json={"import_url": url}).status_code == 200
    assert api(gl, "POST", f"/projects/{pid}/mirror/pull", ALICE).status_code == 200
    status = wait_for_mirror(gl, pid, ALICE)
    assert status["update_status"] == "failed" and status["last_error"], status
    assert bad not in str(status) and bad not in hub_log(gl)
    assert bad not in api(gl, "GET", f"/projects/{pid}", ALICE).text


def test_mirror_routes_need_write_access(gl, repo_name):
    pid = api(gl, "POST", "/projects", ALICE, json={"path": repo_name, "namespace_id": "acme",
                                                     "visibility": "internal"}).json()["id"]
    assert api(gl, "GET", f"/projects/{pid}", CAROL).status_code == 200  # internal: any signed-in user reads
    for method in ("GET", "POST"):
        assert api(gl, method, f"/projects/{pid}/mirror/pull", CAROL).status_code == 403
        assert api(gl, method, f"/projects/{pid}/mirror/pull").status_code == 404
    assert api(gl, "PUT", f"/projects/{pid}", CAROL, json={"mirror": True}).status_code == 403
    assert api(gl, "PUT", f"/projects/{pid}", ALICE, json={"mirror": True}).status_code == 400  # no import URL


# ----------------------------------------------------------------------------------------------------
# seed and fault knobs


def test_seeded_project(gl, repo_name, tmp_path):
    path = f"acme/research/{repo_name}"
    manifest = hubsim.seed(gl.data, "git", path, "--private", "--files", "2", "--lfs-files", "1",
                           "--lfs-file", "x/y.dat=3KiB")
    p = api(gl, "GET", f"/projects/{enc(path)}", BOB).json()
    assert p["default_branch"] == "main" and p["visibility"] == "private" and isinstance(p["id"], int)
    env = env_for(tmp_path, "bob")
    clone = tmp_path / "clone"
    git("clone", f"{gl.url}/{path}.git", str(clone), env=env)
    assert_manifest(clone, manifest)
    attrs = (clone / ".gitattributes").read_text()
    assert "*.bin filter=lfs" in attrs and "x/y.dat filter=lfs" in attrs
    git("lfs", "fsck", cwd=clone, env=env)
    proc = git("push", f"{gl.url}/{path}.git", ":main", cwd=clone, env=env, check=False)
    assert DEFAULT_BRANCH in proc.stderr, proc.stderr  # hooks are installed for seeded projects


def test_api_403_keeps_git_working(repo_name, tmp_path):
    hub = hubsim.start("git", "--api-403")
    try:
        push_new_project(hub, tmp_path, f"alice/{repo_name}", {"a.bin": os.urandom(2000)})
        r = api(hub, "GET", f"/projects/alice%2F{repo_name}", ALICE)
        assert r.status_code == 403 and "message" in r.json()
        git("clone", f"{hub.url}/alice/{repo_name}", str(tmp_path / "clone"), env=env_for(tmp_path, "alice"))
        assert (tmp_path / "clone" / "a.bin").stat().st_size == 2000
    finally:
        hubsim.cleanup(hub)
