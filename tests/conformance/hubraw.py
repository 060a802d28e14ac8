"""Raw-HTTP helpers for the ModelScope, fault and bad-input conformance tests.

Everything here talks to a running hubsim with plain `requests`, exactly as the wire protocol in
/work/shared/protocols/{huggingface,modelscope}.md describes it, so tests can build repos, push commits and
read back a repo's state (head commit + file list) without going through an SDK. Also: `seed()` (wraps
`hubsim seed`), `ms_env()` (points the ModelScope SDK at a hub), and small hashing helpers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pathlib
import subprocess
import tempfile
from typing import Iterable, Iterator

import requests

import hubsim

TIMEOUT = 60
USERS = hubsim.USERS
ALICE = USERS["alice"]
BOB = USERS["bob"]


# ----------------------------------------------------------------------------------------------------
# Generic helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def payload(size: int, seed: str) -> bytes:
    """Deterministic pseudo-random bytes of SIZE, distinct per SEED."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def log_tail(hub: hubsim.Hub, lines: int = 40) -> str:
    return "".join(hub.log[-lines:])


def parse_size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1000, "MB": 1000**2, "B": 1}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * mult)
    return int(text)


def seed(
    data: pathlib.Path,
    flavor: str,
    repo: str,
    *extra: str,
    repo_type: str = "model",
) -> list[dict]:
    """Run `hubsim seed` into DATA and return its manifest: [{path, size, sha256, lfs}, ...]."""
    data.mkdir(parents=True, exist_ok=True)
    fd, manifest = tempfile.mkstemp(prefix="hubsim-manifest-", suffix=".json")
    os.close(fd)
    args = [
        hubsim.hubsim_bin(), "seed", "--data", str(data), "--flavor", flavor, "--repo", repo,
        "--repo-type", repo_type, "--manifest", manifest, *extra,
    ]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"hubsim seed failed ({proc.returncode}): {proc.stderr[-2000:]}"
        with open(manifest, encoding="utf-8") as fh:
            entries = json.load(fh)
    finally:
        os.unlink(manifest)
    assert isinstance(entries, list) and entries, f"seed manifest is empty: {entries!r}"
    for entry in entries:
        assert {"path", "size", "sha256", "lfs"} <= set(entry), f"manifest entry lacks keys: {entry}"
    return entries


def manifest_entry(manifest: list[dict], path: str) -> dict:
    for entry in manifest:
        if entry["path"] == path:
            return entry
    raise AssertionError(f"{path} not in seed manifest: {[e['path'] for e in manifest][:20]}")


# ----------------------------------------------------------------------------------------------------
# Hugging Face flavour


def hf_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def hf_prefix(repo_type: str) -> str:
    return {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]


def hf_create_repo(url: str, token: str, repo: str, repo_type: str = "model", private: bool = False) -> requests.Response:
    org, name = repo.split("/")
    body: dict = {"name": name, "organization": org, "visibility": "private" if private else "public"}
    if repo_type != "model":
        body["type"] = repo_type
    r = requests.post(f"{url}/api/repos/create", json=body, headers=hf_headers(token), timeout=TIMEOUT)
    assert r.status_code == 200, f"create {repo}: {r.status_code} {r.text[:500]}"
    return r


def hf_lfs_batch(url: str, token: str | None, repo: str, objects: list[tuple[str, int]],
                 repo_type: str = "model", operation: str = "upload") -> requests.Response:
    body = {
        "operation": operation,
        "transfers": ["basic", "multipart"],
        "objects": [{"oid": oid, "size": size} for oid, size in objects],
        "hash_algo": "sha256",
        "ref": {"name": "main"},
    }
    headers = {**hf_headers(token), "Accept": "application/vnd.git-lfs+json",
               "Content-Type": "application/vnd.git-lfs+json"}
    return requests.post(f"{url}/{hf_prefix(repo_type)}{repo}.git/info/lfs/objects/batch",
                         data=json.dumps(body), headers=headers, timeout=TIMEOUT)


def hf_batch_objects(resp: requests.Response) -> dict[str, dict]:
    assert resp.status_code == 200, f"LFS batch: {resp.status_code} {resp.text[:500]}"
    return {obj["oid"]: obj for obj in resp.json()["objects"]}


def hf_upload_lfs(url: str, token: str, repo: str, data: bytes, repo_type: str = "model") -> str:
    """Upload DATA as an LFS object of REPO (basic transfer); return its oid."""
    oid = sha256(data)
    obj = hf_batch_objects(hf_lfs_batch(url, token, repo, [(oid, len(data))], repo_type))[oid]
    upload = (obj.get("actions") or {}).get("upload")
    if upload:
        assert "chunk_size" not in (upload.get("header") or {}), "test objects are meant to use basic transfer"
        r = requests.put(upload["href"], data=data, timeout=TIMEOUT)
        assert 200 <= r.status_code < 300, f"LFS PUT: {r.status_code} {r.text[:300]}"
        verify = (obj.get("actions") or {}).get("verify")
        if verify:
            r = requests.post(verify["href"], json={"oid": oid, "size": len(data)}, headers=hf_headers(token),
                              timeout=TIMEOUT)
            assert 200 <= r.status_code < 300, f"LFS verify: {r.status_code} {r.text[:300]}"
    return oid


def hf_commit_body(summary: str, files: dict[str, bytes] | None = None, lfs: dict[str, tuple[str, int]] | None = None,
                   extra_lines: Iterable[dict] = ()) -> bytes:
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    for path, content in (files or {}).items():
        lines.append({"key": "file", "value": {"content": base64.b64encode(content).decode(), "path": path,
                                               "encoding": "base64"}})
    for path, (oid, size) in (lfs or {}).items():
        lines.append({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}})
    lines.extend(extra_lines)
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def hf_commit_raw(url: str, token: str, repo: str, body: bytes, repo_type: str = "model") -> requests.Response:
    headers = {**hf_headers(token), "Content-Type": "application/x-ndjson"}
    return requests.post(f"{url}/api/{repo_type}s/{repo}/commit/main", data=body, headers=headers, timeout=TIMEOUT)


def hf_commit(url: str, token: str, repo: str, summary: str, files: dict[str, bytes] | None = None,
              lfs_files: dict[str, bytes] | None = None, repo_type: str = "model") -> str:
    """Commit FILES inline and LFS_FILES through LFS; return the new commit oid."""
    lfs = {path: (hf_upload_lfs(url, token, repo, data, repo_type), len(data)) for path, data in (lfs_files or {}).items()}
    r = hf_commit_raw(url, token, repo, hf_commit_body(summary, files, lfs), repo_type)
    assert r.status_code == 200, f"commit to {repo}: {r.status_code} {r.text[:500]}"
    return r.json()["commitOid"]


def hf_head(url: str, token: str | None, repo: str, repo_type: str = "model") -> str:
    r = requests.get(f"{url}/api/{repo_type}s/{repo}/revision/main", headers=hf_headers(token), timeout=TIMEOUT)
    assert r.status_code == 200, f"repo info {repo}: {r.status_code} {r.text[:300]}"
    return r.json()["sha"]


def hf_files(url: str, token: str | None, repo: str, repo_type: str = "model") -> list[tuple]:
    """Sorted (path, size, oid, lfs sha256) of every file on main, through the paginated tree API."""
    entries: list[dict] = []
    next_url: str | None = f"{url}/api/{repo_type}s/{repo}/tree/main?recursive=true&expand=false"
    while next_url:
        r = requests.get(next_url, headers=hf_headers(token), timeout=TIMEOUT)
        assert r.status_code == 200, f"tree {repo}: {r.status_code} {r.text[:300]}"
        entries.extend(r.json())
        next_url = r.links.get("next", {}).get("url")
    return sorted(
        (e["path"], e.get("size"), e.get("oid"), (e.get("lfs") or {}).get("oid"))
        for e in entries if e.get("type") == "file"
    )


def hf_state(url: str, token: str | None, repo: str, repo_type: str = "model") -> tuple:
    return hf_head(url, token, repo, repo_type), hf_files(url, token, repo, repo_type)


def hf_resolve_url(url: str, repo: str, path: str, revision: str = "main", repo_type: str = "model") -> str:
    return f"{url}/{hf_prefix(repo_type)}{repo}/resolve/{revision}/{path}"


def assert_hf_error(resp: requests.Response, statuses: Iterable[int]) -> None:
    """The HF error shape: an error status and a JSON body {"error": ...} (huggingface.md §9.1)."""
    statuses = set(statuses)
    assert resp.status_code in statuses, f"expected one of {sorted(statuses)}, got {resp.status_code}: {resp.text[:500]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"HF error body is not JSON: {resp.status_code} {resp.text[:300]!r}") from None
    assert isinstance(body, dict) and body.get("error"), f"HF error body lacks 'error': {body!r}"


# ----------------------------------------------------------------------------------------------------
# ModelScope flavour


def ms_headers(token: str | None, json_body: bool = True) -> dict[str, str]:
    headers = {"Content-Type": "application/json"} if json_body else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
        headers["Cookie"] = f"m_session_id={token}"
    return headers


def ms_seg(repo_type: str) -> str:
    return {"model": "models", "dataset": "datasets"}[repo_type]


def assert_ms_ok(resp: requests.Response) -> dict:
    """A legacy /api/v1 success: HTTP 2xx and the envelope with int Code 200 and Success true (§3.1)."""
    assert 200 <= resp.status_code < 300, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text[:500]}"
    body = resp.json()
    assert type(body.get("Code")) is int and body["Code"] == 200, f"Code must be the int 200: {body!r:.500}"
    assert body.get("Success") is True, f"Success must be true: {body!r:.500}"
    return body


def assert_ms_error(resp: requests.Response, statuses: Iterable[int], code: int | None = None) -> dict:
    """A legacy /api/v1 error: real HTTP error status and an envelope with Success false and a non-200 Code."""
    statuses = set(statuses)
    assert resp.status_code in statuses, f"expected one of {sorted(statuses)}, got {resp.status_code}: {resp.text[:500]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"ModelScope error body is not JSON: {resp.status_code} {resp.text[:300]!r}") from None
    assert isinstance(body, dict), body
    assert body.get("Success") is False, f"error envelope must carry Success false: {body!r:.500}"
    assert body.get("Code") != 200, f"error envelope must not carry Code 200: {body!r:.500}"
    assert isinstance(body.get("Message"), str) and body["Message"], f"error envelope lacks Message: {body!r:.500}"
    if code is not None:
        assert body.get("Code") == code, f"expected business Code {code}, got {body.get('Code')!r}: {body!r:.500}"
    return body


def ms_create_model(url: str, token: str, repo: str, visibility: int = 5, license: str = "Apache-2.0") -> requests.Response:
    owner, name = repo.split("/")
    return requests.post(f"{url}/api/v1/models", headers=ms_headers(token),
                         json={"Path": owner, "Name": name, "Visibility": visibility, "License": license},
                         timeout=TIMEOUT)


def ms_create_dataset(url: str, token: str, repo: str, visibility: int = 5) -> requests.Response:
    owner, name = repo.split("/")
    fields = {"Owner": owner, "Name": name, "Visibility": str(visibility), "License": "Apache-2.0"}
    return requests.post(f"{url}/api/v1/datasets", headers=ms_headers(token, json_body=False),
                         files={k: (None, v) for k, v in fields.items()}, timeout=TIMEOUT)


def ms_create(url: str, token: str, repo: str, repo_type: str = "model", visibility: int = 5) -> None:
    create = ms_create_model if repo_type == "model" else ms_create_dataset
    assert_ms_ok(create(url, token, repo, visibility))


def ms_lfs_batch(url: str, token: str | None, repo: str, objects: list[tuple[str, int]],
                 repo_type: str = "model") -> requests.Response:
    return requests.post(f"{url}/api/v1/repos/{ms_seg(repo_type)}/{repo}/info/lfs/objects/batch",
                         headers=ms_headers(token),
                         json={"operation": "upload", "objects": [{"oid": o, "size": s} for o, s in objects]},
                         timeout=TIMEOUT)


def ms_batch_objects(resp: requests.Response) -> dict[str, dict]:
    body = assert_ms_ok(resp)
    return {obj["oid"]: obj for obj in body["Data"]["objects"]}


def ms_put_blob(href: str, token: str, data: bytes) -> requests.Response:
    headers = {"Content-Length": str(len(data)), **ms_headers(token, json_body=False)}
    return requests.put(href, data=data, headers=headers, timeout=TIMEOUT)


def ms_upload_lfs(url: str, token: str, repo: str, data: bytes, repo_type: str = "model") -> str:
    oid = sha256(data)
    obj = ms_batch_objects(ms_lfs_batch(url, token, repo, [(oid, len(data))], repo_type))[oid]
    href = ((obj.get("actions") or {}).get("upload") or {}).get("href")
    if href:
        r = ms_put_blob(href, token, data)
        assert 200 <= r.status_code < 300, f"blob PUT: {r.status_code} {r.text[:300]}"
    return oid


def ms_action_create(path: str, data: bytes | None = None, *, lfs_oid: str | None = None, size: int | None = None) -> dict:
    if lfs_oid is not None:
        return {"action": "create", "path": path, "type": "lfs", "size": size, "sha256": lfs_oid,
                "content": "", "encoding": ""}
    assert data is not None
    return {"action": "create", "path": path, "type": "normal", "size": len(data), "sha256": "",
            "content": base64.b64encode(data).decode(), "encoding": "base64"}


def ms_commit_raw(url: str, token: str, repo: str, actions: list[dict], message: str = "test commit",
                  repo_type: str = "model", *, seg: str | None = None, revision: str = "master") -> requests.Response:
    seg = seg or ms_seg(repo_type)
    return requests.post(f"{url}/api/v1/repos/{seg}/{repo}/commit/{revision}", headers=ms_headers(token),
                         json={"commit_message": message, "actions": actions}, timeout=TIMEOUT)


def ms_commit(url: str, token: str, repo: str, message: str, files: dict[str, bytes] | None = None,
              lfs_files: dict[str, bytes] | None = None, repo_type: str = "model") -> str:
    actions = [ms_action_create(p, d) for p, d in (files or {}).items()]
    for path, data in (lfs_files or {}).items():
        actions.append(ms_action_create(path, lfs_oid=ms_upload_lfs(url, token, repo, data, repo_type), size=len(data)))
    body = assert_ms_ok(ms_commit_raw(url, token, repo, actions, message, repo_type))
    assert isinstance(body.get("Data"), dict) and body["Data"].get("oid"), f"commit Data.oid missing: {body!r:.300}"
    return body["Data"]["oid"]


def ms_head(url: str, token: str | None, repo: str, repo_type: str = "model") -> str:
    r = requests.get(f"{url}/api/v1/{ms_seg(repo_type)}/{repo}/commits", headers=ms_headers(token),
                     params={"Ref": "master", "PageNumber": 1, "PageSize": 1}, timeout=TIMEOUT)
    body = assert_ms_ok(r)
    commits = body["Data"]["Commit"]
    assert commits, f"no commits on master of {repo}: {body!r:.300}"
    return commits[0]["Id"]


def ms_list_raw(url: str, token: str | None, repo: str, repo_type: str = "model", **params) -> list[dict]:
    """Every entry (blobs and trees) of one listing call (models: repo/files; datasets: all tree pages)."""
    if repo_type == "model":
        q = {"Revision": "master", "Recursive": "True", **params}
        r = requests.get(f"{url}/api/v1/models/{repo}/repo/files", params=q, headers=ms_headers(token), timeout=TIMEOUT)
        return assert_ms_ok(r)["Data"]["Files"] or []
    entries: list[dict] = []
    page = 1
    while True:
        q = {"Revision": "master", "Recursive": "True", "PageNumber": page, "PageSize": 200, **params}
        r = requests.get(f"{url}/api/v1/datasets/{repo}/repo/tree", params=q, headers=ms_headers(token),
                         timeout=TIMEOUT)
        files = assert_ms_ok(r)["Data"]["Files"] or []
        entries.extend(files)
        if len(files) < 200:
            return entries
        page += 1
        assert page < 1000, "runaway dataset tree paging"


def ms_files(url: str, token: str | None, repo: str, repo_type: str = "model") -> list[tuple]:
    """Sorted (Path, Size, Sha256, IsLFS) of every blob on master."""
    return sorted((e["Path"], e["Size"], e["Sha256"], e.get("IsLFS"))
                  for e in ms_list_raw(url, token, repo, repo_type) if e.get("Type") != "tree")


def ms_state(url: str, token: str | None, repo: str, repo_type: str = "model") -> tuple:
    return ms_head(url, token, repo, repo_type), ms_files(url, token, repo, repo_type)


def ms_download_url(url: str, repo: str, path: str, revision: str = "master", repo_type: str = "model") -> str:
    from urllib.parse import quote_plus
    return f"{url}/api/v1/{ms_seg(repo_type)}/{repo}/repo?Revision={quote_plus(revision)}&FilePath={quote_plus(path)}"


# ----------------------------------------------------------------------------------------------------
# Pointing the ModelScope SDK at a hub


@contextlib.contextmanager
def ms_env(url: str, workdir: pathlib.Path) -> Iterator[None]:
    """Environment for the official ModelScope SDK against hubsim at URL.

    The SDK keeps one process-wide `HubConfig`, created lazily from the environment on first use
    (`modelscope_hub.config.get_default_config`), so after changing the environment we drop it and let
    the next call rebuild it; the previous state is restored on exit.
    """
    home = workdir / "ms-home"
    cache = workdir / "ms-cache"
    home.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {
        "MODELSCOPE_ENDPOINT": url,
        "MODELSCOPE_HOME": str(home),
        "MODELSCOPE_CACHE": str(cache),
        "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false",
    }
    removed = ("MODELSCOPE_DOMAIN", "MODELSCOPE_API_TOKEN", "MODELSCOPE_CREDENTIALS_PATH", "MS_CACHE_HOME",
               "MODELSCOPE_PREFER_AI_SITE", "MODELSCOPE_DOWNLOAD_INTER_CLOUD_REGIONS")
    saved = {k: os.environ.get(k) for k in (*wanted, *removed)}
    os.environ.update(wanted)
    for key in removed:
        os.environ.pop(key, None)
    import modelscope_hub

    previous = modelscope_hub.get_default_config.__globals__["_default_config"]
    modelscope_hub.set_default_config(None)
    try:
        yield
    finally:
        modelscope_hub.set_default_config(previous)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
