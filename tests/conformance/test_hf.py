"""Conformance of hubsim's Hugging Face flavour with the official `huggingface_hub` client.

Reference: shared/protocols/huggingface.md (the wire protocol of the real Hub). hubsim must behave like the
real Hub, never more leniently. Every test makes its own repos (unique names), so tests are independent.

The session hub (conftest.py) runs with `--multipart-threshold 8MiB --part-size 5MiB` and the default tree
page size (1000 entries).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import pathlib
import urllib.parse

import pytest
import requests

import hubsim
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub import lfs as hf_lfs
from huggingface_hub.errors import (
    BadRequestError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

ALICE = hubsim.USERS["alice"]
BOB = hubsim.USERS["bob"]
CAROL = hubsim.READ_USERS["carol"]
MiB = 1024 * 1024
THRESHOLD = 8 * MiB  # --multipart-threshold of the session hub
PART = 5 * MiB  # --part-size of the session hub
LFS_SUFFIXES = (".bin", ".safetensors")
TIMEOUT = 60


# ----------------------------------------------------------------------------------------------------
# helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n".encode()


def is_lfs_path(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


def write_tree(root: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def sample_files() -> dict[str, bytes]:
    """A small tree covering the interesting cases; LFS contents are random so every test uploads fresh oids."""
    return {
        "README.md": b"---\nlicense: mit\n---\n# conformance\n",
        "config.json": json.dumps({"hidden_size": 8, "nonce": os.urandom(4).hex()}).encode(),
        "empty.txt": b"",
        "dir with space/\u00fcn\u00ef c\u00f8d\u00e9 [1].txt": "unicode \u2713\n".encode(),
        "nested/a/b/deep.txt": b"deep\n" * 3,
        "nested/a/sibling.txt": b"sibling\n",
        "weights/model.safetensors": os.urandom(200_000),
        "data/blob.bin": os.urandom(3000),
    }


def upload_tree(api, repo_id: str, tmp_path: pathlib.Path, files: dict[str, bytes], **kw):
    folder = write_tree(tmp_path / f"upload-{os.urandom(4).hex()}", files)
    return api.upload_folder(repo_id=repo_id, folder_path=folder, **kw)


def file_paths(entries) -> list[str]:
    return [e.path for e in entries if isinstance(e, RepoFile)]


def raw(method: str, url: str, token: str | None = None, headers: dict | None = None, **kw) -> requests.Response:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    kw.setdefault("allow_redirects", False)
    return requests.request(method, url, headers=h, timeout=TIMEOUT, **kw)


def same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def head_following_hub_redirects(url: str, token: str | None) -> requests.Response:
    """HEAD like huggingface_hub 2.4.0: follow same-origin redirects, stop at a redirect to another origin."""
    for _ in range(20):
        r = raw("HEAD", url, token, headers={"Accept-Encoding": "identity"})
        if r.status_code in (301, 302, 303, 307, 308):
            target = urllib.parse.urljoin(url, r.headers["Location"])
            if same_origin(target, url):
                url = target
                continue
        return r
    raise AssertionError(f"redirect loop at {url}")


def lfs_batch(hub_url: str, repo_id: str, objects: list[dict], token: str | None, prefix: str = "", op="upload"):
    body = {
        "operation": op,
        "transfers": ["basic", "multipart"],
        "objects": objects,
        "hash_algo": "sha256",
        "ref": {"name": "main"},
    }
    return raw(
        "POST",
        f"{hub_url}/{prefix}{repo_id}.git/info/lfs/objects/batch",
        token,
        headers={"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"},
        data=json.dumps(body),
    )


def ndjson_commit(hub_url: str, repo_id: str, lines: list[dict], token: str, revision: str = "main"):
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return raw(
        "POST",
        f"{hub_url}/api/models/{repo_id}/commit/{urllib.parse.quote(revision, safe='')}",
        token,
        headers={"Content-Type": "application/x-ndjson"},
        data=body.encode(),
    )


@pytest.fixture
def alice(hf_api):
    return hf_api(ALICE)


@pytest.fixture
def bob(hf_api):
    return hf_api(BOB)


@pytest.fixture
def carol(hf_api):
    return hf_api(CAROL)


@pytest.fixture
def anon(hf_api):
    return hf_api(None)


# ----------------------------------------------------------------------------------------------------
# whoami


def test_whoami_write_token(alice, bob):
    me = alice.whoami()
    assert me["name"] == "alice"
    assert "acme" in [o["name"] for o in me["orgs"]]
    assert me["type"] == "user"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert "acme" not in [o["name"] for o in bob.whoami()["orgs"]]
    assert bob.whoami()["name"] == "bob"


def test_whoami_read_token(carol):
    me = carol.whoami()
    assert me["name"] == "carol"
    assert me["auth"]["accessToken"]["role"] == "read"
    assert "acme" not in [o["name"] for o in me["orgs"]]


def test_whoami_bad_token(hf_api, hf_hub):
    with pytest.raises(HfHubHTTPError) as exc:
        hf_api("hf_this_token_does_not_exist").whoami()
    assert exc.value.response.status_code == 401
    # Raw: bad and missing credentials are both 401; a bad token carries the message the client keys on.
    r = raw("GET", f"{hf_hub.url}/api/whoami-v2", "hf_this_token_does_not_exist")
    assert r.status_code == 401
    assert r.headers.get("X-Error-Message") == "Invalid credentials in Authorization header"
    assert raw("GET", f"{hf_hub.url}/api/whoami-v2").status_code == 401


# ----------------------------------------------------------------------------------------------------
# create_repo / visibility / permissions


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_create_repo(alice, anon, hf_hub, repo_name, repo_type, private):
    repo_id = f"alice/{repo_name}"
    kw = {"space_sdk": "gradio"} if repo_type == "space" else {}
    url = alice.create_repo(repo_id, repo_type=repo_type, private=private, **kw)
    assert url.repo_id == repo_id
    assert url.repo_type == repo_type
    assert url.endpoint == hf_hub.url
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    assert str(url) == f"{hf_hub.url}/{prefix}{repo_id}"

    info = alice.repo_info(repo_id, repo_type=repo_type)
    assert info.id == repo_id
    assert info.private is private
    assert len(info.sha) == 40
    # A new repo holds its creator's "initial commit" with only .gitattributes.
    assert alice.list_repo_files(repo_id, repo_type=repo_type) == [".gitattributes"]
    assert alice.repo_exists(repo_id, repo_type=repo_type)
    assert anon.repo_exists(repo_id, repo_type=repo_type) is (not private)
    # The same name of another type is another repo.
    other = "dataset" if repo_type == "model" else "model"
    assert not alice.repo_exists(repo_id, repo_type=other)


def test_create_repo_exist_ok_and_conflict(alice, repo_name):
    repo_id = f"alice/{repo_name}"
    first = alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"keep me\n", path_in_repo="keep.txt", repo_id=repo_id)
    sha = alice.repo_info(repo_id).sha

    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_repo(repo_id)
    assert exc.value.response.status_code == 409

    again = alice.create_repo(repo_id, exist_ok=True)
    assert again.repo_id == repo_id and str(again) == str(first)
    # exist_ok did not touch the repo
    assert alice.repo_info(repo_id).sha == sha
    assert "keep.txt" in alice.list_repo_files(repo_id)

    # A dataset of the same name is a different repo: no conflict.
    ds = alice.create_repo(repo_id, repo_type="dataset")
    assert ds.repo_type == "dataset"
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_repo(repo_id, repo_type="dataset")
    assert exc.value.response.status_code == 409


def test_create_space_without_sdk_is_rejected(hf_hub, alice, repo_name):
    # The client refuses locally; the server must refuse too (sdk is required for spaces).
    r = raw("POST", f"{hf_hub.url}/api/repos/create", ALICE, json={"name": repo_name, "organization": "alice",
                                                                    "type": "space"})
    assert 400 <= r.status_code < 500, r.text
    assert not alice.repo_exists(f"alice/{repo_name}", repo_type="space")


def test_create_repo_in_org_and_foreign_namespaces(alice, bob, repo_name):
    # alice is a member of acme: she writes there.
    url = alice.create_repo(f"acme/{repo_name}")
    assert url.namespace == "acme"
    assert alice.repo_info(f"acme/{repo_name}").id == f"acme/{repo_name}"
    # bob is not: neither acme nor alice's namespace are his.
    for ns in ("acme", "alice"):
        with pytest.raises(HfHubHTTPError) as exc:
            bob.create_repo(f"{ns}/{repo_name}-bob")
        assert 400 <= exc.value.response.status_code < 500
        assert exc.value.response.status_code != 409
        assert not alice.repo_exists(f"{ns}/{repo_name}-bob")
    # bob writes to his own namespace.
    assert bob.create_repo(f"bob/{repo_name}").namespace == "bob"


@pytest.mark.parametrize("namespace", ["alice", "acme"])
def test_private_repo_is_not_found_for_others(hf_hub, alice, bob, carol, anon, repo_name, tmp_path, namespace):
    repo_id = f"{namespace}/{repo_name}"
    alice.create_repo(repo_id, private=True)
    files = {"secret.txt": b"top secret\n", "weights.bin": os.urandom(1000)}
    upload_tree(alice, repo_id, tmp_path, files)

    info = alice.repo_info(repo_id)
    assert info.private is True
    # alice reads, including the LFS file (whose CDN redirect must work without the Hub token).
    for name, data in files.items():
        path = alice.hf_hub_download(repo_id, name, cache_dir=tmp_path / "cache-alice")
        assert pathlib.Path(path).read_bytes() == data

    # bob (another writer), carol (a reader outside acme) and anonymous see nothing.
    for who in (bob, carol, anon):
        with pytest.raises(RepositoryNotFoundError):
            who.repo_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            who.list_repo_files(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            who.hf_hub_download(repo_id, "secret.txt", cache_dir=tmp_path / "cache-other")
        with pytest.raises(RepositoryNotFoundError):
            who.hf_hub_download(repo_id, "weights.bin", cache_dir=tmp_path / "cache-other")
        assert who.repo_exists(repo_id) is False

    # Wire level, like the real Hub: anonymous -> 401 RepoNotFound, another token -> 404 RepoNotFound.
    api_url = f"{hf_hub.url}/api/models/{repo_id}"
    resolve_url = f"{hf_hub.url}/{repo_id}/resolve/main/secret.txt"
    for url in (api_url, resolve_url):
        r = raw("GET", url)
        assert r.status_code == 401, url
        assert r.headers.get("X-Error-Code") == "RepoNotFound", url
        for token in (BOB, CAROL):
            r = raw("GET", url, token)
            assert r.status_code == 404, url
            assert r.headers.get("X-Error-Code") == "RepoNotFound", url
    # A repo that does not exist at all looks the same as a private one.
    r = raw("GET", f"{hf_hub.url}/api/models/{namespace}/{repo_name}-nope", BOB)
    assert (r.status_code, r.headers.get("X-Error-Code")) == (404, "RepoNotFound")


def test_read_token_reads_public_but_cannot_write(alice, carol, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"public\n", path_in_repo="pub.txt", repo_id=repo_id)
    sha = alice.repo_info(repo_id).sha

    # carol reads public content.
    assert carol.repo_info(repo_id).sha == sha
    assert pathlib.Path(carol.hf_hub_download(repo_id, "pub.txt", cache_dir=tmp_path)).read_bytes() == b"public\n"

    # carol cannot create anything anywhere.
    for ns in ("carol", "acme", "alice"):
        with pytest.raises(HfHubHTTPError) as exc:
            carol.create_repo(f"{ns}/{repo_name}-carol")
        assert 400 <= exc.value.response.status_code < 500
        assert not alice.repo_exists(f"{ns}/{repo_name}-carol")
    # ... nor upload, change settings or delete.
    with pytest.raises(HfHubHTTPError):
        carol.upload_file(path_or_fileobj=b"nope\n", path_in_repo="carol.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError):
        carol.upload_file(path_or_fileobj=os.urandom(100), path_in_repo="carol.bin", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError):
        carol.update_repo_settings(repo_id, private=True)
    with pytest.raises(HfHubHTTPError):
        carol.create_branch(repo_id, branch="carol")
    with pytest.raises(HfHubHTTPError):
        carol.delete_repo(repo_id)

    info = alice.repo_info(repo_id)
    assert info.sha == sha and info.private is False
    assert sorted(alice.list_repo_files(repo_id)) == [".gitattributes", "pub.txt"]
    assert [b.name for b in alice.list_repo_refs(repo_id).branches] == ["main"]


def test_other_writer_cannot_modify_foreign_repo(alice, bob, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"v1\n", path_in_repo="f.txt", repo_id=repo_id)
    sha = alice.repo_info(repo_id).sha

    with pytest.raises(HfHubHTTPError):
        bob.upload_file(path_or_fileobj=b"bob\n", path_in_repo="f.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError):
        bob.upload_file(path_or_fileobj=os.urandom(100), path_in_repo="bob.bin", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError):
        bob.update_repo_settings(repo_id, private=True)
    with pytest.raises(HfHubHTTPError):
        bob.delete_repo(repo_id)
    # The LFS batch API refuses uploads too: no credentials -> 401, a reader without push rights -> 403.
    obj = [{"oid": sha256(os.urandom(16)), "size": 10}]
    assert lfs_batch(hf_hub.url, repo_id, obj, None).status_code == 401
    assert lfs_batch(hf_hub.url, repo_id, obj, BOB).status_code == 403  # can read, cannot push

    assert alice.repo_info(repo_id).sha == sha
    assert alice.repo_info(repo_id).private is False


# ----------------------------------------------------------------------------------------------------
# uploads


def test_upload_folder_mixed_tree(alice, hf_hub, repo_name, tmp_path, monkeypatch):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    files["big/huge.bin"] = os.urandom(12 * MiB)  # above the 8MiB multipart threshold

    # Observe which LFS transfer the client picks (the server decides via `chunk_size`).
    calls = {"multi": [], "single": []}
    orig_multi, orig_single = hf_lfs._upload_multi_part, hf_lfs._upload_single_part

    def multi(operation, header, chunk_size, upload_url):
        calls["multi"].append((operation.path_in_repo, chunk_size))
        return orig_multi(operation=operation, header=header, chunk_size=chunk_size, upload_url=upload_url)

    def single(operation, upload_url):
        calls["single"].append(operation.path_in_repo)
        return orig_single(operation=operation, upload_url=upload_url)

    monkeypatch.setattr(hf_lfs, "_upload_multi_part", multi)
    monkeypatch.setattr(hf_lfs, "_upload_single_part", single)

    info = upload_tree(alice, repo_id, tmp_path, files, commit_message="add mixed tree")
    assert len(info.oid) == 40
    assert info.commit_url == f"{hf_hub.url}/{repo_id}/commit/{info.oid}"
    assert info.repo_url.repo_id == repo_id

    assert calls["multi"] == [("big/huge.bin", PART)]
    assert sorted(calls["single"]) == ["data/blob.bin", "weights/model.safetensors"]

    assert sorted(alice.list_repo_files(repo_id)) == sorted([".gitattributes", *files])
    assert alice.repo_info(repo_id).sha == info.oid

    meta = {s.rfilename: s for s in alice.repo_info(repo_id, files_metadata=True).siblings}
    for path, data in files.items():
        assert meta[path].size == len(data), path
        if is_lfs_path(path):
            assert meta[path].lfs is not None, path
            assert meta[path].lfs.sha256 == sha256(data), path
            assert meta[path].lfs.size == len(data), path
        else:
            assert meta[path].lfs is None, path

    cache = tmp_path / "cache"
    for path, data in files.items():
        got = pathlib.Path(alice.hf_hub_download(repo_id, path, cache_dir=cache)).read_bytes()
        assert sha256(got) == sha256(data), path


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_upload_and_download_other_repo_types(alice, anon, repo_name, tmp_path, repo_type):
    repo_id = f"alice/{repo_name}"
    kw = {"space_sdk": "static"} if repo_type == "space" else {}
    alice.create_repo(repo_id, repo_type=repo_type, **kw)
    files = {"index.html": b"<html></html>\n", "data/train.bin": os.urandom(5000), "sub dir/a.txt": b"a\n"}
    upload_tree(alice, repo_id, tmp_path, files, repo_type=repo_type)

    assert sorted(anon.list_repo_files(repo_id, repo_type=repo_type)) == sorted([".gitattributes", *files])
    meta = {s.rfilename: s for s in alice.repo_info(repo_id, repo_type=repo_type, files_metadata=True).siblings}
    assert meta["data/train.bin"].lfs.sha256 == sha256(files["data/train.bin"])
    for path, data in files.items():
        got = anon.hf_hub_download(repo_id, path, repo_type=repo_type, cache_dir=tmp_path / "c")
        assert pathlib.Path(got).read_bytes() == data, path


def test_lfs_batch_offers_multipart_at_threshold(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)

    def offer(size: int) -> dict:
        oid = sha256(os.urandom(32))  # fresh oid, never uploaded
        r = lfs_batch(hf_hub.url, repo_id, [{"oid": oid, "size": size}], ALICE)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/vnd.git-lfs+json")
        body = r.json()
        (obj,) = body["objects"]
        assert (obj["oid"], obj["size"]) == (oid, size)
        assert "error" not in obj
        return obj["actions"]["upload"]

    for size in (THRESHOLD, THRESHOLD + 1, 12 * MiB):
        upload = offer(size)
        header = upload["header"]
        assert int(header["chunk_size"]) == PART, size
        parts = sorted(k for k in header if k.isdigit())
        assert parts == [f"{i:05d}" for i in range(1, math.ceil(size / PART) + 1)], size
        assert all(header[k].startswith("http") for k in parts)
        assert upload["href"].startswith("http")

    for size in (1, THRESHOLD - 1):
        upload = offer(size)
        assert "chunk_size" not in (upload.get("header") or {}), size
        assert upload["href"].startswith("http")


def test_lfs_batch_skips_objects_already_stored(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    data = os.urandom(4096)
    alice.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    r = lfs_batch(hf_hub.url, repo_id, [{"oid": sha256(data), "size": len(data)}], ALICE)
    assert r.status_code == 200, r.text
    (obj,) = r.json()["objects"]
    assert obj["oid"] == sha256(data)
    # No `actions` at all means "already stored" to the client (an empty `actions` would crash it).
    assert obj.get("actions") is None, obj


def test_reupload_identical_content_makes_no_commit(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = {"a.txt": b"same\n", "w.bin": os.urandom(2000)}
    first = upload_tree(alice, repo_id, tmp_path, files)
    n_commits = len(alice.list_repo_commits(repo_id))
    # preupload returns the existing oids, the client drops unchanged files and sends no commit.
    again = upload_tree(alice, repo_id, tmp_path, files)
    assert again.oid == first.oid
    assert len(alice.list_repo_commits(repo_id)) == n_commits


def test_commit_rejects_large_non_lfs_file(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    sha = alice.repo_info(repo_id).sha
    big = b"x" * (10 * MiB + 1)
    r = ndjson_commit(hf_hub.url, repo_id, [
        {"key": "header", "value": {"summary": "too big", "description": ""}},
        {"key": "file", "value": {"content": base64.b64encode(big).decode(), "path": "big.txt",
                                  "encoding": "base64"}},
    ], ALICE)
    assert r.status_code == 400, r.text[:500]
    assert alice.repo_info(repo_id).sha == sha


def test_commit_rejects_unknown_lfs_object(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    sha = alice.repo_info(repo_id).sha
    r = ndjson_commit(hf_hub.url, repo_id, [
        {"key": "header", "value": {"summary": "dangling", "description": ""}},
        {"key": "lfsFile", "value": {"path": "ghost.bin", "algo": "sha256", "oid": sha256(os.urandom(8)),
                                     "size": 1234}},
    ], ALICE)
    assert 400 <= r.status_code < 500, r.text[:500]
    assert alice.repo_info(repo_id).sha == sha
    assert "ghost.bin" not in alice.list_repo_files(repo_id)


def test_commit_with_stale_parent_commit_fails(alice, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    base = alice.upload_file(path_or_fileobj=b"1\n", path_in_repo="f.txt", repo_id=repo_id).oid
    head = alice.upload_file(path_or_fileobj=b"2\n", path_in_repo="f.txt", repo_id=repo_id, parent_commit=base).oid
    with pytest.raises(HfHubHTTPError, match="The branch was updated since you opened this page") as exc:
        alice.create_commit(repo_id, operations=[CommitOperationAdd("g.txt", b"3\n")], commit_message="stale",
                            parent_commit=base)
    assert exc.value.response.status_code == 412
    assert alice.repo_info(repo_id).sha == head
    assert "g.txt" not in alice.list_repo_files(repo_id)


# ----------------------------------------------------------------------------------------------------
# listing


def test_list_repo_tree_paginates_over_1000_entries(alice, anon, hf_hub, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = {f"f{i % 5}/sub{i % 2}/file-{i:04d}.txt": b"%d\n" % i for i in range(1100)}
    upload_tree(alice, repo_id, tmp_path, files, commit_message="1100 files")

    expected_files = sorted([".gitattributes", *files])
    expected_dirs = sorted({f"f{i}" for i in range(5)} | {f"f{i}/sub{j}" for i in range(5) for j in range(2)})

    entries = list(anon.list_repo_tree(repo_id, recursive=True))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths)), "an entry was listed twice"
    assert sorted(file_paths(entries)) == expected_files
    assert sorted(e.path for e in entries if isinstance(e, RepoFolder)) == expected_dirs

    files_listed = alice.list_repo_files(repo_id)
    assert len(files_listed) == len(set(files_listed))
    assert sorted(files_listed) == expected_files

    # Wire level: first page is at most 1000 entries and points to the next with an absolute Link.
    r = raw("GET", f"{hf_hub.url}/api/models/{repo_id}/tree/main?recursive=true&expand=false")
    assert r.status_code == 200
    assert len(r.json()) <= 1000
    assert "next" in r.links, f"no rel=next Link on a listing of {len(expected_files)} files: {r.headers}"
    nxt = r.links["next"]["url"]
    assert same_origin(nxt, hf_hub.url), nxt
    seen = [e["path"] for e in r.json()]
    while nxt:
        r = raw("GET", nxt)
        assert r.status_code == 200
        seen += [e["path"] for e in r.json()]
        nxt = r.links.get("next", {}).get("url")
    assert sorted(seen) == sorted(expected_files + expected_dirs)

    # Non-recursive root listing: only the top level.
    top = list(anon.list_repo_tree(repo_id))
    assert sorted(e.path for e in top) == sorted([".gitattributes", *(f"f{i}" for i in range(5))])


def test_list_repo_tree_subfolders_and_paths_info(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    upload_tree(alice, repo_id, tmp_path, files)

    sub = {e.path: e for e in alice.list_repo_tree(repo_id, path_in_repo="nested/a")}
    assert set(sub) == {"nested/a/b", "nested/a/sibling.txt"}
    assert isinstance(sub["nested/a/b"], RepoFolder)
    assert isinstance(sub["nested/a/sibling.txt"], RepoFile)
    assert sub["nested/a/sibling.txt"].blob_id == git_blob_sha1(files["nested/a/sibling.txt"])

    spaced = [e.path for e in alice.list_repo_tree(repo_id, path_in_repo="dir with space")]
    assert spaced == ["dir with space/\u00fcn\u00ef c\u00f8d\u00e9 [1].txt"]

    deep = list(alice.list_repo_tree(repo_id, path_in_repo="nested", recursive=True))
    assert sorted(file_paths(deep)) == ["nested/a/b/deep.txt", "nested/a/sibling.txt"]

    with pytest.raises(RemoteEntryNotFoundError):
        list(alice.list_repo_tree(repo_id, path_in_repo="no/such/folder"))

    infos = {e.path: e for e in alice.get_paths_info(repo_id, ["weights/model.safetensors", "nested", "missing.txt"])}
    assert set(infos) == {"weights/model.safetensors", "nested"}
    w = infos["weights/model.safetensors"]
    assert w.lfs.sha256 == sha256(files["weights/model.safetensors"])
    assert w.size == len(files["weights/model.safetensors"])
    assert isinstance(infos["nested"], RepoFolder)


def test_repo_info_files_metadata(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    upload_tree(alice, repo_id, tmp_path, files)

    info = alice.repo_info(repo_id, files_metadata=True)
    meta = {s.rfilename: s for s in info.siblings}
    assert set(meta) == {".gitattributes", *files}
    for path, data in files.items():
        s = meta[path]
        assert s.size == len(data), path
        if is_lfs_path(path):
            assert s.lfs.sha256 == sha256(data), path
            assert s.lfs.size == len(data), path
            assert s.lfs.pointer_size == len(lfs_pointer(data)), path
            assert s.blob_id == git_blob_sha1(lfs_pointer(data)), path
        else:
            assert s.lfs is None, path
            assert s.blob_id == git_blob_sha1(data), path

    # The tree API agrees, with the same sizes and `lfs.oid`.
    tree = {e.path: e for e in alice.list_repo_tree(repo_id, recursive=True) if isinstance(e, RepoFile)}
    for path, data in files.items():
        assert tree[path].size == len(data), path
        assert tree[path].blob_id == meta[path].blob_id, path
        assert (tree[path].lfs.sha256 if tree[path].lfs else None) == (sha256(data) if is_lfs_path(path) else None)
        assert tree[path].xet_hash is None

    # Without files_metadata: names only.
    plain = alice.repo_info(repo_id)
    assert {s.rfilename for s in plain.siblings} == {".gitattributes", *files}


def test_list_repo_commits(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    commit = upload_tree(alice, repo_id, tmp_path, {"a.txt": b"a\n", "w.bin": os.urandom(100)},
                         commit_message="upload two files", commit_description="with a description")

    commits = alice.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["upload two files", "initial commit"]
    assert commits[0].commit_id == commit.oid == alice.repo_info(repo_id).sha
    assert commits[0].authors == ["alice"]
    assert commits[-1].authors == ["alice"]  # the creator's
    # The initial commit holds only the default .gitattributes, which routes *.bin/*.safetensors to LFS.
    initial = commits[-1].commit_id
    assert alice.list_repo_files(repo_id, revision=initial) == [".gitattributes"]
    ga = pathlib.Path(alice.hf_hub_download(repo_id, ".gitattributes", revision=initial,
                                            cache_dir=tmp_path / "c")).read_text()
    rules = [line.split()[0] for line in ga.splitlines() if line.strip() and not line.startswith("#")]
    assert "*.bin" in rules and "*.safetensors" in rules
    for line in ga.splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.split()[1:] == ["filter=lfs", "diff=lfs", "merge=lfs", "-text"], line


# ----------------------------------------------------------------------------------------------------
# refs, branches, downloads


def test_list_repo_refs_and_branches(alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"main\n", path_in_repo="main.txt", repo_id=repo_id)

    refs = alice.list_repo_refs(repo_id)
    assert [(b.name, b.ref) for b in refs.branches] == [("main", "refs/heads/main")]
    main_sha = alice.repo_info(repo_id).sha
    assert refs.branches[0].target_commit == main_sha
    assert refs.tags == [] and refs.converts == []

    for branch in ("dev", "release/v1"):
        alice.create_branch(repo_id, branch=branch)
        with pytest.raises(HfHubHTTPError) as exc:
            alice.create_branch(repo_id, branch=branch)
        assert exc.value.response.status_code == 409
        alice.create_branch(repo_id, branch=branch, exist_ok=True)

    on_dev = alice.upload_file(path_or_fileobj=b"dev only\n", path_in_repo="dev.txt", repo_id=repo_id,
                               revision="dev")
    on_rel = alice.upload_file(path_or_fileobj=os.urandom(300), path_in_repo="rel.bin", repo_id=repo_id,
                               revision="release/v1")

    branches = {b.name: b for b in alice.list_repo_refs(repo_id).branches}
    assert set(branches) == {"main", "dev", "release/v1"}
    assert branches["main"].target_commit == main_sha == alice.repo_info(repo_id).sha
    assert branches["dev"].target_commit == on_dev.oid
    assert branches["dev"].ref == "refs/heads/dev"
    assert branches["release/v1"].target_commit == on_rel.oid
    assert alice.repo_info(repo_id, revision="release/v1").sha == on_rel.oid

    assert sorted(anon.list_repo_files(repo_id, revision="dev")) == [".gitattributes", "dev.txt", "main.txt"]
    assert "dev.txt" not in anon.list_repo_files(repo_id)
    got = anon.hf_hub_download(repo_id, "dev.txt", revision="dev", cache_dir=tmp_path)
    assert pathlib.Path(got).read_bytes() == b"dev only\n"
    assert "rel.bin" in anon.list_repo_files(repo_id, revision="release/v1")
    with pytest.raises(RemoteEntryNotFoundError):
        anon.hf_hub_download(repo_id, "dev.txt", revision="main", cache_dir=tmp_path)

    alice.create_tag(repo_id, tag="v1.0", revision="dev")
    tags = alice.list_repo_refs(repo_id).tags
    assert [(t.name, t.ref, t.target_commit) for t in tags] == [("v1.0", "refs/tags/v1.0", on_dev.oid)]
    assert pathlib.Path(anon.hf_hub_download(repo_id, "dev.txt", revision="v1.0",
                                             cache_dir=tmp_path / "t")).read_bytes() == b"dev only\n"

    alice.delete_branch(repo_id, branch="dev")
    assert {b.name for b in alice.list_repo_refs(repo_id).branches} == {"main", "release/v1"}
    with pytest.raises(RevisionNotFoundError):
        anon.repo_info(repo_id, revision="dev")


def test_download_by_branch_and_commit(alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    v1 = {"cfg.json": b'{"v": 1}', "w.safetensors": os.urandom(5000)}
    v2 = {"cfg.json": b'{"v": 2}', "w.safetensors": os.urandom(5000)}
    c1 = upload_tree(alice, repo_id, tmp_path, v1).oid
    c2 = upload_tree(alice, repo_id, tmp_path, v2).oid
    assert c1 != c2

    for revision, files in ((c1, v1), ("main", v2), (c2, v2)):
        for name, data in files.items():
            got = anon.hf_hub_download(repo_id, name, revision=revision, cache_dir=tmp_path / "cache")
            assert sha256(pathlib.Path(got).read_bytes()) == sha256(data), (revision, name)
    # A short commit id is not something the client sends; an unknown revision is RevisionNotFound.
    with pytest.raises(RevisionNotFoundError):
        anon.hf_hub_download(repo_id, "cfg.json", revision="no-such-branch", cache_dir=tmp_path / "x")
    with pytest.raises(RemoteEntryNotFoundError):
        anon.hf_hub_download(repo_id, "no-such-file.txt", cache_dir=tmp_path / "x")


def test_resolve_wire_format(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    reg, blob = b"0123456789 regular\n", os.urandom(70_000)
    sha = alice.create_commit(repo_id, operations=[CommitOperationAdd("r.txt", reg),
                                                   CommitOperationAdd("b.bin", blob)],
                              commit_message="two").oid
    base = f"{hf_hub.url}/{repo_id}/resolve/main"

    # Regular file: (same-origin redirects followed) 200 with X-Repo-Commit and ETag = git blob sha1.
    r = head_following_hub_redirects(f"{base}/r.txt", None)
    assert r.status_code == 200
    assert r.headers["X-Repo-Commit"] == sha
    assert r.headers["ETag"].strip('"').removeprefix("W/").strip('"') == git_blob_sha1(reg)
    assert int(r.headers["Content-Length"]) == len(reg)
    r = raw("GET", f"{base}/r.txt", headers={"Range": "bytes=2-5"}, allow_redirects=True)
    assert r.status_code == 206
    assert r.content == reg[2:6]
    assert r.headers["Content-Range"] == f"bytes 2-5/{len(reg)}"

    # LFS file: 302 to the CDN origin (another port) with the linked metadata.
    r = head_following_hub_redirects(f"{base}/b.bin", None)
    assert r.status_code == 302
    assert r.headers["X-Repo-Commit"] == sha
    assert r.headers["X-Linked-Etag"].strip('"') == sha256(blob)
    assert int(r.headers["X-Linked-Size"]) == len(blob)
    assert "X-Xet-Hash" not in r.headers
    loc = r.headers["Location"]
    assert urllib.parse.urlsplit(loc).scheme == "http"
    assert not same_origin(loc, hf_hub.url)
    cdn = raw("GET", loc)  # no Hub credentials: the client strips them off-origin
    assert cdn.status_code == 200
    assert cdn.content == blob
    part = raw("GET", loc, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == blob[100:200]

    # Errors carry the codes the client maps.
    r = raw("HEAD", f"{base}/missing.txt")
    assert (r.status_code, r.headers.get("X-Error-Code")) == (404, "EntryNotFound")
    assert r.headers.get("X-Repo-Commit") == sha
    r = raw("HEAD", f"{hf_hub.url}/{repo_id}/resolve/nobranch/r.txt")
    assert (r.status_code, r.headers.get("X-Error-Code")) == (404, "RevisionNotFound")


def test_snapshot_download_allow_patterns(alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    upload_tree(alice, repo_id, tmp_path, files)

    patterns = ["*.json", "weights/*", "dir with space/*"]
    expected = {"config.json", "weights/model.safetensors", "dir with space/\u00fcn\u00ef c\u00f8d\u00e9 [1].txt"}
    target = tmp_path / "snapshot"
    out = pathlib.Path(anon.snapshot_download(repo_id, allow_patterns=patterns, local_dir=target))
    assert out.resolve() == target.resolve()
    got = {
        p.relative_to(out).as_posix(): p
        for p in out.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(out).parts
    }
    assert set(got) == expected
    for rel, p in got.items():
        assert sha256(p.read_bytes()) == sha256(files[rel]), rel

    # Cache mode, everything: same bytes through the snapshot folder.
    snap = pathlib.Path(anon.snapshot_download(repo_id, cache_dir=tmp_path / "cache"))
    assert snap.name == alice.repo_info(repo_id).sha
    for rel, data in files.items():
        assert sha256((snap / rel).read_bytes()) == sha256(data), rel


# ----------------------------------------------------------------------------------------------------
# settings and deletion


def test_update_repo_settings_visibility(alice, anon, bob, hf_hub, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"hello\n", path_in_repo="h.txt", repo_id=repo_id)
    assert anon.repo_info(repo_id).private is False

    alice.update_repo_settings(repo_id, private=True)
    assert alice.repo_info(repo_id).private is True
    for who in (anon, bob):
        with pytest.raises(RepositoryNotFoundError):
            who.repo_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            who.hf_hub_download(repo_id, "h.txt", cache_dir=tmp_path / "a")
    assert raw("GET", f"{hf_hub.url}/{repo_id}/resolve/main/h.txt").status_code == 401

    alice.update_repo_settings(repo_id, private=False)
    assert alice.repo_info(repo_id).private is False
    assert anon.repo_info(repo_id).private is False
    got = anon.hf_hub_download(repo_id, "h.txt", cache_dir=tmp_path / "b")
    assert pathlib.Path(got).read_bytes() == b"hello\n"

    # 0.x clients send {"private": bool}; the Hub accepts both forms.
    r = raw("PUT", f"{hf_hub.url}/api/models/{repo_id}/settings", ALICE, json={"private": True})
    assert r.status_code == 200
    assert isinstance(r.json(), dict)  # 0.x clients parse the body
    assert alice.repo_info(repo_id).private is True
    with pytest.raises(RepositoryNotFoundError):
        anon.repo_info(repo_id)


def test_gated_repo_is_closed_until_access_is_granted(alice, anon, bob, hf_hub, repo_name, tmp_path):
    """The Hub's gate: info, listing and the model card stay public; files, auth-check and git
    need access, refused with GatedRepo (401 anonymous, 403 signed in) until the owner grants it."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"# card\n", path_in_repo="README.md", repo_id=repo_id)
    alice.upload_file(path_or_fileobj=b"w" * 2048, path_in_repo="w.bin", repo_id=repo_id)
    alice.update_repo_settings(repo_id, gated="manual")
    assert anon.repo_info(repo_id).gated == "manual"
    assert {f for f in anon.list_repo_files(repo_id)} >= {"README.md", "w.bin"}
    card = anon.hf_hub_download(repo_id, "README.md", cache_dir=tmp_path / "card")
    assert pathlib.Path(card).read_bytes() == b"# card\n"

    with pytest.raises(GatedRepoError, match="you are not in the authorized list"):
        bob.hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / "b")
    with pytest.raises(GatedRepoError):
        bob.auth_check(repo_id)
    with pytest.raises(GatedRepoError, match="Please log in"):
        anon.hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / "a")
    r = raw("GET", f"{hf_hub.url}/{repo_id}/resolve/main/w.bin")
    assert (r.status_code, r.headers.get("X-Error-Code")) == (401, "GatedRepo")
    r = raw("GET", f"{hf_hub.url}/{repo_id}/resolve/main/w.bin", BOB)
    assert (r.status_code, r.headers.get("X-Error-Code")) == (403, "GatedRepo")
    batch = {"operation": "download", "transfers": ["basic"], "objects": [{"oid": hashlib.sha256(b"w" * 2048).hexdigest(), "size": 2048}]}
    r = raw("POST", f"{hf_hub.url}/{repo_id}.git/info/lfs/objects/batch", BOB, json=batch)
    assert r.status_code == 403, r.text

    # Only a writer of the repo's namespace grants access, once.
    with pytest.raises(HfHubHTTPError):
        bob.grant_access(repo_id, "bob")
    alice.grant_access(repo_id, "bob")
    with pytest.raises(HfHubHTTPError, match="already has access"):
        alice.grant_access(repo_id, "bob")
    bob.auth_check(repo_id)
    got = bob.hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / "b2")
    assert pathlib.Path(got).read_bytes() == b"w" * 2048
    alice.auth_check(repo_id)
    # A repo that is not gated grants nothing.
    alice.update_repo_settings(repo_id, gated=False)
    with pytest.raises(HfHubHTTPError, match="is not gated"):
        alice.grant_access(repo_id, "bob")


def test_card_metadata_is_served_and_validated(alice, hf_hub, repo_name):
    """README.md's front matter is the repo's cardData (and license tags); a card naming a license
    the Hub does not know is refused, by validate-yaml and by a commit alike."""
    from huggingface_hub import ModelCard

    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"---\nlicense: mit\nlanguage: en\n---\n# M\n", path_in_repo="README.md", repo_id=repo_id)
    info = alice.model_info(repo_id)
    assert info.card_data.license == "mit"
    assert "license:mit" in info.tags
    ModelCard("---\nlicense: cc-by-nc-4.0\n---\n# ok\n").validate()
    with pytest.raises(ValueError, match='- Error: "license" must be one of'):
        ModelCard("---\nlicense: MIT\n---\n# M\n").validate()
    # The client asks validate-yaml before it commits a card: the JSON answer's errors stop it.
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        alice.upload_file(path_or_fileobj=b"---\nlicense: Apache License 2.0\n---\n", path_in_repo="README.md", repo_id=repo_id)
    # A commit that carries such a card anyway is refused by the Hub itself.
    card = base64.b64encode(b"---\nlicense: MIT\n---\n").decode()
    r = ndjson_commit(hf_hub.url, repo_id, [
        {"key": "header", "value": {"summary": "bad card"}},
        {"key": "file", "value": {"path": "README.md", "content": card, "encoding": "base64"}},
    ], ALICE)
    assert r.status_code == 400 and '"license" must be one of' in r.json()["error"], r.text
    assert alice.model_info(repo_id).card_data.license == "mit"


def test_deleting_a_folder_by_its_name_as_a_file(alice, repo_name):
    """The Hub takes a file deletion naming a folder (\"1\" for \"1/\") as the folder's (since 2024-04)."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.create_commit(repo_id, [CommitOperationAdd("1/a.txt", b"a"), CommitOperationAdd("1/b/c.txt", b"c")], commit_message="add")
    alice.create_commit(repo_id, [CommitOperationDelete("1")], commit_message="delete")
    assert not [f for f in alice.list_repo_files(repo_id) if f.startswith("1/")]


def test_request_ids_one_segment_ids_and_short_commit_ids(alice, hf_hub, repo_name, tmp_path):
    """Every answer carries the Hub's X-Request-Id (the client quotes it in errors, the trace id it
    sent echoed); a repo id without a namespace is RepoNotFound; a 7-hex commit prefix is a revision."""
    with pytest.raises(RepositoryNotFoundError, match=r"Request ID: Root=1-[0-9a-f]{8}-[0-9a-f]{24};"):
        alice.model_info(f"alice/{repo_name}-missing")
    r = raw("GET", f"{hf_hub.url}/api/models/gpt2", ALICE, headers={"X-Amzn-Trace-Id": "trace-1"})
    assert (r.status_code, r.headers.get("X-Error-Code")) == (404, "RepoNotFound"), r.text
    assert r.headers["X-Request-Id"].endswith(";trace-1"), r.headers
    with pytest.raises(RepositoryNotFoundError):
        alice.model_info("gpt2")

    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    first = alice.upload_file(path_or_fileobj=b"one\n", path_in_repo="v.txt", repo_id=repo_id).oid
    alice.upload_file(path_or_fileobj=b"two\n", path_in_repo="v.txt", repo_id=repo_id)
    assert alice.model_info(repo_id, revision=first[:7]).sha == first
    got = alice.hf_hub_download(repo_id, "v.txt", revision=first[:7], cache_dir=tmp_path / "c")
    assert pathlib.Path(got).read_bytes() == b"one\n"
    alice.create_tag(repo_id, tag="v1", revision=first[:7])
    assert alice.model_info(repo_id, revision="v1").sha == first


def test_repo_ids_ignore_case(alice, anon, hf_hub, repo_name, tmp_path):
    """The Hub's repo ids are case-insensitive: the API answers for the stored id, /resolve sends a
    relative 307 there, and a name differing only in case is taken. The initial commit is the creator's."""
    repo_id = f"alice/{repo_name}"
    shouting = f"ALICE/{repo_name.upper()}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"case\n", path_in_repo="f.txt", repo_id=repo_id)
    assert alice.model_info(shouting).id == repo_id
    r = raw("GET", f"{hf_hub.url}/{shouting}/resolve/main/f.txt")
    assert r.status_code == 307 and r.headers["Location"] == f"/{repo_id}/resolve/main/f.txt", r.headers
    got = anon.hf_hub_download(shouting, "f.txt", cache_dir=tmp_path / "c")
    assert pathlib.Path(got).read_bytes() == b"case\n"
    with pytest.raises(HfHubHTTPError, match="already created"):
        alice.create_repo(f"alice/{repo_name.upper()}")
    assert alice.list_repo_commits(repo_id)[-1].authors == ["alice"]


@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_delete_repo(alice, anon, repo_name, repo_type):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, repo_type=repo_type)
    alice.upload_file(path_or_fileobj=b"bye\n", path_in_repo="bye.txt", repo_id=repo_id, repo_type=repo_type)
    alice.delete_repo(repo_id, repo_type=repo_type)

    for who in (alice, anon):
        with pytest.raises(RepositoryNotFoundError):
            who.repo_info(repo_id, repo_type=repo_type)
    with pytest.raises(RepositoryNotFoundError):
        alice.delete_repo(repo_id, repo_type=repo_type)
    alice.delete_repo(repo_id, repo_type=repo_type, missing_ok=True)

    # The name is free again, and the new repo starts empty.
    alice.create_repo(repo_id, repo_type=repo_type)
    assert alice.list_repo_files(repo_id, repo_type=repo_type) == [".gitattributes"]


# ----------------------------------------------------------------------------------------------------
# a hub with a tiny tree page size (--tree-page-size)


@pytest.fixture(scope="module")
def small_page_hub():
    hub = hubsim.start("hf", "--tree-page-size", "3")
    yield hub
    hubsim.cleanup(hub)


def test_tree_page_size_flag(small_page_hub, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=small_page_hub.url, token=ALICE)
    repo_id = "alice/paged"
    api.create_repo(repo_id)
    files = {f"d{i % 2}/x{i}.txt": b"%d" % i for i in range(9)}
    upload_tree(api, repo_id, tmp_path, files)

    r = raw("GET", f"{small_page_hub.url}/api/models/{repo_id}/tree/main?recursive=true&expand=false")
    assert r.status_code == 200
    assert len(r.json()) == 3
    assert same_origin(r.links["next"]["url"], small_page_hub.url)

    entries = list(api.list_repo_tree(repo_id, recursive=True))
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted([".gitattributes", "d0", "d1", *files])
    sub = [e.path for e in api.list_repo_tree(repo_id, path_in_repo="d0")]
    assert sorted(sub) == sorted(p for p in files if p.startswith("d0/"))


# ----------------------------------------------------------------------------------------------------
# more of the documented surface


@pytest.fixture(scope="module")
def labs_hub():
    """A hub where the read-only user carol is a member of an org (`labs`) next to alice."""
    hub = hubsim.start("hf", "--org", "labs=alice,carol")
    yield hub
    hubsim.cleanup(hub)


def test_read_user_reads_private_repos_of_its_org(labs_hub, tmp_path):
    from huggingface_hub import HfApi

    alice_l = HfApi(endpoint=labs_hub.url, token=ALICE)
    carol_l = HfApi(endpoint=labs_hub.url, token=CAROL)
    bob_l = HfApi(endpoint=labs_hub.url, token=BOB)
    assert "labs" in [o["name"] for o in carol_l.whoami()["orgs"]]

    repo_id = "labs/private-model"
    alice_l.create_repo(repo_id, private=True)
    data = os.urandom(3000)
    upload_tree(alice_l, repo_id, tmp_path, {"w.bin": data, "r.txt": b"r\n"})

    # carol (reader, member) reads the org's private repo, LFS included.
    assert carol_l.repo_info(repo_id).private is True
    assert pathlib.Path(carol_l.hf_hub_download(repo_id, "w.bin", cache_dir=tmp_path / "c")).read_bytes() == data
    # ... but still writes nothing there.
    with pytest.raises(HfHubHTTPError):
        carol_l.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError):
        carol_l.create_repo("labs/by-carol")
    assert not alice_l.repo_exists("labs/by-carol")
    assert "x.txt" not in alice_l.list_repo_files(repo_id)
    # bob, not a member, sees nothing; acme's private repos stay hidden from carol on this hub too.
    with pytest.raises(RepositoryNotFoundError):
        bob_l.repo_info(repo_id)
    alice_l.create_repo("acme/still-private", private=True)
    with pytest.raises(RepositoryNotFoundError):
        carol_l.repo_info("acme/still-private")


def test_repo_info_expand(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, private=True)
    info = alice.repo_info(repo_id, expand=["sha", "private"])
    assert info.id == repo_id
    assert info.private is True and len(info.sha) == 40
    assert info.siblings is None and info.tags is None  # not asked for

    # When `expand` is given, only those properties (plus _id and id) come back. 0.30-0.35 clients probe
    # xetEnabled before uploading: never a 404.
    r = raw("GET", f"{hf_hub.url}/api/models/{repo_id}/revision/main?expand=xetEnabled", ALICE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == repo_id
    assert set(body) <= {"_id", "id", "xetEnabled"}
    assert not body.get("xetEnabled")
    r = raw("GET", f"{hf_hub.url}/api/models/{repo_id}?expand%5B%5D=private&expand%5B%5D=sha", ALICE)
    assert r.status_code == 200, r.text
    assert set(r.json()) <= {"_id", "id", "private", "sha"} and r.json()["private"] is True


def test_list_repo_commits_formatted(alice, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id, commit_message="add x")
    # formatted=True sends the literal `expand%5B%5D=formatted`.
    commits = alice.list_repo_commits(repo_id, formatted=True)
    assert [c.title for c in commits] == ["add x", "initial commit"]
    assert all(isinstance(c.formatted_title, str) for c in commits)
    assert "add x" in commits[0].formatted_title


def test_pull_request_commit(alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"base\n", path_in_repo="base.txt", repo_id=repo_id)
    main_sha = alice.repo_info(repo_id).sha

    pr = alice.create_commit(repo_id, operations=[CommitOperationAdd("pr.txt", b"from a PR\n")],
                             commit_message="propose", create_pr=True)
    assert pr.pr_num is not None and pr.pr_revision == f"refs/pr/{pr.pr_num}"
    assert alice.repo_info(repo_id).sha == main_sha  # main untouched
    got = anon.hf_hub_download(repo_id, "pr.txt", revision=pr.pr_revision, cache_dir=tmp_path)
    assert pathlib.Path(got).read_bytes() == b"from a PR\n"

    refs = alice.list_repo_refs(repo_id, include_pull_requests=True)
    prs = {p.ref: p.target_commit for p in refs.pull_requests}
    assert prs == {pr.pr_revision: pr.oid}
    # A second commit on the PR ref moves only the PR.
    more = alice.upload_file(path_or_fileobj=b"more\n", path_in_repo="more.txt", repo_id=repo_id,
                             revision=pr.pr_revision)
    refs = alice.list_repo_refs(repo_id, include_pull_requests=True)
    assert {p.ref: p.target_commit for p in refs.pull_requests} == {pr.pr_revision: more.oid}
    assert refs.branches[0].target_commit == main_sha


def test_refs_errors(alice, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id)
    with pytest.raises(BadRequestError):
        alice.create_branch(repo_id, branch="refs/pr/5")
    with pytest.raises(HfHubHTTPError):
        alice.delete_branch(repo_id, branch="main")
    with pytest.raises(HfHubHTTPError):
        alice.delete_branch(repo_id, branch="never-created")
    with pytest.raises(RevisionNotFoundError):
        alice.upload_file(path_or_fileobj=b"y\n", path_in_repo="y.txt", repo_id=repo_id, revision="never-created")
    alice.create_branch(repo_id, branch="dev")
    with pytest.raises(HfHubHTTPError, match="Reference refs/heads/dev already exists") as exc:
        alice.create_branch(repo_id, branch="dev")
    assert exc.value.response.status_code == 409
    alice.delete_branch(repo_id, branch="dev")
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: no-such-rev"):
        alice.create_tag(repo_id, tag="v0", revision="no-such-rev")
    alice.create_tag(repo_id, tag="v1")
    with pytest.raises(HfHubHTTPError) as exc:
        alice.create_tag(repo_id, tag="v1")
    assert exc.value.response.status_code == 409
    alice.delete_tag(repo_id, tag="v1")
    assert alice.list_repo_refs(repo_id).tags == []
    assert [b.name for b in alice.list_repo_refs(repo_id).branches] == ["main"]


def test_delete_file_and_folder(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    upload_tree(alice, repo_id, tmp_path, files)

    alice.delete_file("config.json", repo_id)
    alice.delete_folder("nested", repo_id)
    left = set(alice.list_repo_files(repo_id))
    assert left == {".gitattributes", *files} - {"config.json", "nested/a/b/deep.txt", "nested/a/sibling.txt"}
    with pytest.raises(RemoteEntryNotFoundError):
        alice.delete_file("config.json", repo_id)


def test_server_side_copy_of_lfs_file(alice, repo_name, tmp_path):
    from huggingface_hub import CommitOperationCopy

    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    data = os.urandom(6000)
    alice.upload_file(path_or_fileobj=data, path_in_repo="orig.bin", repo_id=repo_id)
    # An intra-repo LFS copy is an `lfsFile` line with the existing sha256 and no size.
    alice.create_commit(repo_id, operations=[CommitOperationCopy("orig.bin", "copy/dup.bin")],
                        commit_message="copy")
    meta = {s.rfilename: s for s in alice.repo_info(repo_id, files_metadata=True).siblings}
    assert meta["copy/dup.bin"].lfs.sha256 == sha256(data) and meta["copy/dup.bin"].size == len(data)
    got = alice.hf_hub_download(repo_id, "copy/dup.bin", cache_dir=tmp_path)
    assert pathlib.Path(got).read_bytes() == data


def test_gitignore_makes_preupload_ignore_files(alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = {".gitignore": b"*.log\n", "keep.txt": b"keep\n", "debug.log": b"noise\n", "sub/trace.log": b"x\n"}
    upload_tree(alice, repo_id, tmp_path, files)
    assert sorted(alice.list_repo_files(repo_id)) == [".gitattributes", ".gitignore", "keep.txt"]


def test_lfs_batch_download(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, private=True)
    data = os.urandom(5000)
    alice.upload_file(path_or_fileobj=data, path_in_repo="d.bin", repo_id=repo_id)
    missing = sha256(os.urandom(8))
    objs = [{"oid": sha256(data), "size": len(data)}, {"oid": missing, "size": 10}]

    r = lfs_batch(hf_hub.url, repo_id, objs, ALICE, op="download")
    assert r.status_code == 200, r.text
    by_oid = {o["oid"]: o for o in r.json()["objects"]}
    dl = by_oid[sha256(data)]["actions"]["download"]
    got = raw("GET", dl["href"], headers=dl.get("header") or {}, allow_redirects=True)
    assert got.status_code == 200 and got.content == data
    assert by_oid[missing]["error"]["code"] == 404
    assert "actions" not in by_oid[missing]

    # Private repo: no credentials -> 401, a token without access -> 404.
    assert lfs_batch(hf_hub.url, repo_id, objs[:1], None, op="download").status_code == 401
    assert lfs_batch(hf_hub.url, repo_id, objs[:1], BOB, op="download").status_code == 404


def test_paths_info_accepts_json_body(alice, hf_hub, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"p\n", path_in_repo="dir/p.txt", repo_id=repo_id)
    for kw in ({"json": {"paths": ["dir/p.txt", "nope"], "expand": False}},
               {"data": {"paths": ["dir/p.txt", "nope"], "expand": "false"}}):
        r = raw("POST", f"{hf_hub.url}/api/models/{repo_id}/paths-info/main", ALICE, **kw)
        assert r.status_code == 200, r.text
        assert [(e["type"], e["path"], e["size"], e["oid"]) for e in r.json()] == [
            ("file", "dir/p.txt", 2, git_blob_sha1(b"p\n"))]


def test_list_models_and_datasets_respect_visibility(alice, bob, anon, repo_name):
    pub, priv = f"alice/{repo_name}-pub", f"alice/{repo_name}-priv"
    alice.create_repo(pub)
    alice.create_repo(priv, private=True)
    alice.create_repo(f"alice/{repo_name}-ds", repo_type="dataset")

    mine = {m.id: m.private for m in alice.list_models(author="alice")}
    assert mine.get(pub) is False and mine.get(priv) is True
    assert f"alice/{repo_name}-ds" not in mine
    for who in (bob, anon):
        theirs = {m.id for m in who.list_models(author="alice")}
        assert pub in theirs and priv not in theirs
    assert f"alice/{repo_name}-ds" in {d.id for d in anon.list_datasets(author="alice")}


def test_signed_urls_cannot_be_forged(alice, hf_hub, repo_name):
    """Presigned upload and CDN URLs authorize by their signature: without it (or for another object) they
    must refuse, else anyone could write LFS objects or read a private repo's LFS content by oid."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, private=True)
    secret = os.urandom(4000)
    alice.upload_file(path_or_fileobj=secret, path_in_repo="secret.bin", repo_id=repo_id)

    # Download side: the 302 target works bare, but not once its query (signature) is dropped.
    r = head_following_hub_redirects(f"{hf_hub.url}/{repo_id}/resolve/main/secret.bin", ALICE)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert raw("GET", loc).content == secret
    bare = urllib.parse.urlunsplit(urllib.parse.urlsplit(loc)._replace(query=""))
    if bare != loc:
        assert raw("GET", bare).status_code in (401, 403, 404)
    else:  # no query string: the path itself must be unguessable, i.e. not just the oid
        assert sha256(secret) not in loc
    # The signature binds the object: the same query on another stored object's oid is refused.
    other = os.urandom(4000)
    alice.upload_file(path_or_fileobj=other, path_in_repo="other.bin", repo_id=repo_id)
    if sha256(secret) in loc:
        swapped = raw("GET", loc.replace(sha256(secret), sha256(other)))
        assert swapped.status_code in (401, 403, 404) and swapped.content != other

    # Upload side: a signed href for one object cannot be reused without its signature.
    data = os.urandom(100)
    resp = lfs_batch(hf_hub.url, repo_id, [{"oid": sha256(data), "size": len(data)}], ALICE)
    href = resp.json()["objects"][0]["actions"]["upload"]["href"]
    bare = urllib.parse.urlunsplit(urllib.parse.urlsplit(href)._replace(query=""))
    if bare != href:
        assert raw("PUT", bare, data=data).status_code in (401, 403, 404)
    if sha256(data) in href:  # nor for another oid
        fake = os.urandom(100)
        assert raw("PUT", href.replace(sha256(data), sha256(fake)), data=fake).status_code in (400, 401, 403, 404)


def test_tree_expand_last_commit_and_page_size(alice, hf_hub, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    first = alice.upload_file(path_or_fileobj=b"old\n", path_in_repo="old.txt", repo_id=repo_id,
                              commit_message="old file")
    files = {f"many/f{i:02d}.txt": b"%d\n" % i for i in range(60)}
    second = upload_tree(alice, repo_id, tmp_path, files, commit_message="many files")

    entries = {e.path: e for e in alice.list_repo_tree(repo_id, recursive=True, expand=True)}
    assert set(entries) == {".gitattributes", "old.txt", "many", *files}
    assert entries["old.txt"].last_commit.oid == first.oid
    assert entries["old.txt"].last_commit.title == "old file"
    assert entries["many/f00.txt"].last_commit.oid == second.oid

    # expand=true pages at 50 entries (docstring of list_repo_tree), with an absolute next link.
    r = raw("GET", f"{hf_hub.url}/api/models/{repo_id}/tree/main?recursive=true&expand=true")
    assert r.status_code == 200
    assert len(r.json()) <= 50
    assert "next" in r.links and same_origin(r.links["next"]["url"], hf_hub.url)


def test_large_file_outside_lfs_patterns_goes_to_lfs(alice, repo_name, tmp_path):
    """Non-LFS files over 10 MiB are refused by the Hub, so preupload routes them to LFS, and the commit
    adds a per-path rule to .gitattributes."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    big = os.urandom(10 * MiB + 4096)
    alice.upload_file(path_or_fileobj=big, path_in_repo="logs/big.txt", repo_id=repo_id)
    meta = {s.rfilename: s for s in alice.repo_info(repo_id, files_metadata=True).siblings}
    assert meta["logs/big.txt"].lfs is not None
    assert meta["logs/big.txt"].lfs.sha256 == sha256(big)
    ga = pathlib.Path(alice.hf_hub_download(repo_id, ".gitattributes", cache_dir=tmp_path)).read_text()
    assert "logs/big.txt filter=lfs diff=lfs merge=lfs -text" in ga.splitlines()
    got = alice.hf_hub_download(repo_id, "logs/big.txt", cache_dir=tmp_path)
    assert sha256(pathlib.Path(got).read_bytes()) == sha256(big)


def test_keep_alive_survives_answers_that_ignore_the_body(alice, hf_hub, repo_name):
    """httpx pools connections: after any answer, the next request on the same connection must be served.

    A server that answers without reading the request body and then drops the connection (without
    `Connection: close`) makes the client's next call fail with "Server disconnected without sending a
    response" (seen in upload_folder: validate-yaml is called twice in a row)."""
    import http.client

    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    split = urllib.parse.urlsplit(hf_hub.url)
    pad = "x" * 50_000
    cases = [
        ("POST", "/api/validate-yaml", json.dumps({"content": f"---\nlicense: mit\n---\n{pad}\n", "repoType": "model"}),
         ALICE, 200),
        ("POST", f"/api/models/{repo_id}/preupload/main",
         json.dumps({"files": [{"path": "a.txt", "sample": "YQo=", "size": 2}], "pad": pad}), BOB, 403),
    ]
    for method, path, body, token, status in cases:
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=TIMEOUT)
        try:
            for attempt in range(8):
                conn.request(method, path, body=body.encode(), headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                assert resp.status == status, (path, attempt)
                if (resp.getheader("Connection") or "").lower() == "close":
                    conn.close()  # announced: the client opens a new connection, that is fine
        except (ConnectionError, http.client.HTTPException) as exc:
            raise AssertionError(f"{method} {path}: connection dropped after request {attempt}: {exc!r}") from exc
        finally:
            conn.close()


def test_move_repo_and_old_urls_redirect(alice, bob, anon, hf_hub, repo_name, tmp_path):
    """`move_repo` renames a repo; the old id answers with relative 307s to the new one (the client
    follows them), a taken name is refused, and a new repo may take the old name."""
    old, new = f"alice/{repo_name}-old", f"alice/{repo_name}-new"
    alice.create_repo(old)
    alice.upload_file(path_or_fileobj=b"moved\n", path_in_repo="m.txt", repo_id=old)
    alice.create_repo(f"alice/{repo_name}-taken")
    with pytest.raises(HfHubHTTPError, match="already exists"):
        alice.move_repo(old, f"alice/{repo_name}-taken")
    with pytest.raises(HfHubHTTPError):
        bob.move_repo(old, f"bob/{repo_name}")
    alice.move_repo(old, new)
    assert alice.model_info(new).id == new
    r = raw("GET", f"{hf_hub.url}/api/models/{old}", ALICE)
    assert r.status_code == 307 and r.headers["Location"] == f"/api/models/{new}", r.headers
    assert alice.model_info(old).id == new
    got = anon.hf_hub_download(old, "m.txt", cache_dir=tmp_path / "c")
    assert pathlib.Path(got).read_bytes() == b"moved\n"
    alice.create_repo(old)
    assert alice.model_info(old).id == old


def test_backslash_paths_are_names_but_do_not_climb(alice, hf_hub, repo_name, tmp_path):
    """The Hub stores `a\\b.txt` as a name; `..\\ddd` is refused with 422."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.upload_file(path_or_fileobj=b"bs\n", path_in_repo="win\\dir.txt", repo_id=repo_id)
    assert "win\\dir.txt" in alice.list_repo_files(repo_id)
    got = alice.hf_hub_download(repo_id, "win\\dir.txt", cache_dir=tmp_path / "c")
    assert pathlib.Path(got).read_bytes() == b"bs\n"
    with pytest.raises(HfHubHTTPError) as exc:
        alice.upload_file(path_or_fileobj=b"x", path_in_repo="..\\ddd", repo_id=repo_id)
    assert exc.value.response.status_code == 422


def test_pull_requests_from_other_writers_and_against_commit_ids(alice, bob, carol, repo_name):
    """Anyone whose token may write opens a pull request on a repo they can read (LFS files
    included); a plain commit still needs write access; a PR against a commit id is RevisionNotFound."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    base = alice.upload_file(path_or_fileobj=b"1\n", path_in_repo="a.txt", repo_id=repo_id).oid
    ops = [CommitOperationAdd("w.bin", b"w" * 20000), CommitOperationAdd("b.txt", b"bob\n")]
    info = bob.create_commit(repo_id, ops, commit_message="bob's proposal", create_pr=True)
    assert info.pr_num == 1
    assert {"w.bin", "b.txt"} <= set(alice.list_repo_files(repo_id, revision="refs/pr/1"))
    assert "b.txt" not in alice.list_repo_files(repo_id)
    with pytest.raises(HfHubHTTPError):
        bob.create_commit(repo_id, [CommitOperationAdd("c.txt", b"c")], commit_message="not a PR")
    with pytest.raises(HfHubHTTPError):
        carol.create_commit(repo_id, [CommitOperationAdd("c.txt", b"c")], commit_message="read token", create_pr=True)
    with pytest.raises(RevisionNotFoundError):
        alice.create_commit(repo_id, [CommitOperationAdd("d.txt", b"d")], commit_message="on a commit",
                            create_pr=True, revision=base)


def test_super_squash_leaves_one_commit_on_the_branch(alice, repo_name):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    for i in range(3):
        alice.upload_file(path_or_fileobj=f"{i}\n".encode(), path_in_repo=f"f{i}.txt", repo_id=repo_id)
    alice.create_branch(repo_id, branch="keep")
    files = sorted(alice.list_repo_files(repo_id))
    alice.super_squash_history(repo_id, commit_message="squashed")
    commits = alice.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["squashed"]
    assert sorted(alice.list_repo_files(repo_id)) == files
    assert len(alice.list_repo_commits(repo_id, revision="keep")) == 4
    alice.create_tag(repo_id, tag="t1")
    with pytest.raises(HfHubHTTPError, match="invalid reference for a branch"):
        alice.super_squash_history(repo_id, branch="t1")
    with pytest.raises(RevisionNotFoundError):
        alice.super_squash_history(repo_id, branch="nope")


def test_list_and_permanently_delete_lfs_files(alice, bob, repo_name):
    """`list_lfs_files` shows each LFS object of the repo with a path using it;
    `permanently_delete_lfs_files` removes them from the branches and the repo's storage."""
    from huggingface_hub.errors import RemoteEntryNotFoundError as Gone

    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    alice.create_commit(repo_id, [CommitOperationAdd("a.bin", b"a" * 3000), CommitOperationAdd("b.bin", b"b" * 3000),
                                  CommitOperationAdd("keep.txt", b"keep\n")], commit_message="lfs")
    alice.create_branch(repo_id, branch="other")
    alice.upload_file(path_or_fileobj=b"c" * 3000, path_in_repo="c.bin", repo_id=repo_id, revision="other")
    files = {f.filename: f for f in alice.list_lfs_files(repo_id)}
    assert set(files) == {"a.bin", "b.bin", "c.bin"}, files
    assert files["a.bin"].file_oid == hashlib.sha256(b"a" * 3000).hexdigest() and files["a.bin"].size == 3000
    with pytest.raises(HfHubHTTPError):
        list(bob.list_lfs_files(repo_id))
    alice.permanently_delete_lfs_files(repo_id, [files["a.bin"], files["b.bin"]])
    assert {f.filename for f in alice.list_lfs_files(repo_id)} == {"c.bin"}
    assert set(alice.list_repo_files(repo_id)) == {".gitattributes", "keep.txt"}
    with pytest.raises(Gone):
        alice.hf_hub_download(repo_id, "a.bin")
    assert "c.bin" in alice.list_repo_files(repo_id, revision="other")
