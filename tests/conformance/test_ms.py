"""ModelScope conformance: the official `modelscope` 1.40.2 SDK (modelscope-hub 0.5.1), unchanged, against
`hubsim serve --flavor ms`, plus raw checks of the wire protocol in /work/shared/protocols/modelscope.md
(section numbers below refer to that document).

One ms hub serves the whole module. Two repos are seeded into its data directory before it starts: a model
with 3100 files (more than the 3000 entries `repo/files` returns) and a dataset with 250 files (two pages of
`repo/tree`). The SDK is pointed at the hub through `MODELSCOPE_ENDPOINT`; it reads its configuration when it
is first used, so the environment is set (and the SDK's cached default config dropped) before any SDK call.
"""

from __future__ import annotations

import collections
import json
import pathlib
import types
import uuid

import pytest
import requests

import hubraw
import hubsim
from hubraw import ALICE, BOB, TIMEOUT, assert_ms_error, assert_ms_ok, ms_headers, sha256

MANY_FILES = 3100
DATASET_FILES = 250


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ms")
    data = workdir / "data"
    many = hubraw.seed(data, "ms", "alice/many-files", "--files", str(MANY_FILES))
    paged = hubraw.seed(data, "ms", "alice/paged-ds", "--files", str(DATASET_FILES), repo_type="dataset")
    hub = hubsim.start("ms", data=data)
    try:
        with hubraw.ms_env(hub.url, workdir):
            yield types.SimpleNamespace(hub=hub, url=hub.url, workdir=workdir, many=many, paged=paged)
    finally:
        hubsim.cleanup(hub)


# Repos made through the API may hold the hub's own .gitattributes, as real ModelScope repos do.
# Files ModelScope itself puts in a new repo (a model also gets its template card, README.md).
HUB_FILES = {".gitattributes", "README.md"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(token: str | None = ALICE):
    """The SDK's public `HubApi` (modelscope 1.40.2) with an explicit token ("" = anonymous)."""
    from modelscope.hub.api import HubApi

    return HubApi(token=token)


def tree_files(root: str | pathlib.Path) -> dict[str, bytes]:
    """Every file under ROOT (relative posix path -> bytes), skipping dot-directories the SDK keeps metadata in."""
    root = pathlib.Path(root)
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in pathlib.PurePosixPath(rel).parts[:-1]):
                continue
            out[rel] = path.read_bytes()
    return out


def assert_snapshot(root, expected: dict[str, str]) -> None:
    """Downloaded snapshot at ROOT holds exactly EXPECTED (path -> sha256); extra dotfiles and the hub's
    own files (a new model's template card) are tolerated."""
    got = tree_files(root)
    missing = sorted(set(expected) - set(got))
    assert not missing, f"{len(missing)} files missing from the snapshot, e.g. {missing[:5]}"
    extra = sorted(p for p in set(got) - set(expected) - HUB_FILES if not pathlib.PurePosixPath(p).name.startswith("."))
    assert not extra, f"unexpected files in the snapshot: {extra[:5]}"
    bad = [p for p, digest in expected.items() if sha256(got[p]) != digest]
    assert not bad, f"sha256 mismatch for {bad[:5]}"


# ----------------------------------------------------------------------------------------------------
# Local folder with every kind of file upload_folder treats differently (§9.1 Step 0)

FOLDER = {
    "README.md": b"# test model\n\nhello\n",
    "config.json": b'{"architectures": ["X"], "hidden_size": 8}\n',
    "notes.txt": b"small inline text\n",
    "sub dir/with space.txt": b"a file whose directory and name contain spaces\n",
    "a/b/c/deep.txt": b"deeply nested\n",
    "pytorch_model.bin": hubraw.payload(3000, "bin"),
    "weights/model.safetensors": hubraw.payload(5000, "safetensors"),
    "data/large.dat": hubraw.payload(100 * 1024, "large"),  # > 64 KiB: LFS by size
}
LFS_PATHS = {"pytorch_model.bin", "weights/model.safetensors", "data/large.dat"}


def write_folder(root: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


@pytest.fixture(scope="module")
def uploaded_model(ms, tmp_path_factory):
    """A public model uploaded with the SDK's upload_folder: (repo_id, {path: bytes})."""
    repo = f"alice/{unique('uploaded')}"
    folder = write_folder(tmp_path_factory.mktemp("folder"), FOLDER)
    sdk = api()
    sdk.create_repo(repo, repo_type="model", visibility="public")
    sdk.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="model", commit_message="upload folder")
    return repo, dict(FOLDER)


# ----------------------------------------------------------------------------------------------------
# §4 Authentication


def test_login_then_whoami_and_login_persists(ms):
    from modelscope.hub.api import HubApi
    from modelscope_hub import HubApi as NewHubApi
    from modelscope_hub import HubConfig

    sdk = HubApi()
    sdk.login(ALICE)
    assert sdk.whoami().username == "alice"
    # A new process finds the login through the persisted m_session_id cookie (§4.2 "Critical for an emulator").
    fresh = NewHubApi(config=HubConfig())
    assert fresh._config.token, "login did not persist an m_session_id cookie the SDK can reuse"
    assert fresh.whoami().username == "alice"


def test_login_with_bad_token_raises_authentication_error(ms):
    from modelscope_hub.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        api("").login("ms-this-token-does-not-exist")
    with pytest.raises(AuthenticationError):
        api("ms-this-token-does-not-exist").whoami()


def test_raw_login_envelope_cookie_and_error(ms):
    r = requests.post(f"{ms.url}/api/v1/login", json={"AccessToken": ALICE}, headers={"Content-Type": "application/json"},
                      timeout=TIMEOUT)
    body = assert_ms_ok(r)
    assert body["Data"]["Username"] == "alice"
    assert isinstance(body["Data"]["AccessToken"], str) and body["Data"]["AccessToken"]
    assert isinstance(body.get("Message"), str) and isinstance(body.get("RequestId"), str) and body["RequestId"]
    session = r.cookies.get("m_session_id")
    assert session, f"login must set the m_session_id cookie, got Set-Cookie {r.headers.get('Set-Cookie')!r}"
    # The cookie value is what the SDK later sends as its Bearer token.
    me = requests.get(f"{ms.url}/openapi/v1/users/me", headers={"Authorization": f"Bearer {session}"}, timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["data"]["username"] == "alice", me.text[:300]

    bad = requests.post(f"{ms.url}/api/v1/login", json={"AccessToken": "ms-bogus"}, timeout=TIMEOUT)
    assert_ms_error(bad, {400}, code=10010103009)
    assert "m_session_id" not in bad.cookies


def test_raw_users_me(ms):
    ok = requests.get(f"{ms.url}/openapi/v1/users/me", headers=ms_headers(BOB), timeout=TIMEOUT)
    assert ok.status_code == 200, ok.text[:300]
    body = ok.json()
    assert body["success"] is True and body["data"]["username"] == "bob" and body["request_id"]
    for headers in ({"Authorization": "Bearer ms-bogus"}, {}):
        r = requests.get(f"{ms.url}/openapi/v1/users/me", headers=headers, timeout=TIMEOUT)
        assert r.status_code == 401, f"{headers}: {r.status_code} {r.text[:300]}"
        err = r.json()
        assert err["success"] is False and err["code"] == "InvalidAuthentication", err


# ----------------------------------------------------------------------------------------------------
# §8 Creating repositories, §10 existence


VISIBILITIES = [("public", 5), ("private", 1), ("internal", 3)]


@pytest.mark.parametrize("repo_type", ["model", "dataset"])
@pytest.mark.parametrize("label,code", VISIBILITIES)
def test_create_repo_with_visibility(ms, repo_type, label, code):
    repo = f"alice/{unique(f'vis-{repo_type}-{label}')}"
    seg = hubraw.ms_seg(repo_type)
    assert api().repo_exists(repo, repo_type=repo_type) is False
    api().create_repo(repo, repo_type=repo_type, visibility=label)

    info = requests.get(f"{ms.url}/api/v1/{seg}/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT)
    data = assert_ms_ok(info)["Data"]
    assert data["Visibility"] == code, data
    assert data["Name"] == repo.split("/")[1]
    assert api().repo_exists(repo, repo_type=repo_type) is True

    anonymous_sees = api("").repo_exists(repo, repo_type=repo_type)
    bob_sees = api(BOB).repo_exists(repo, repo_type=repo_type)
    if label == "public":
        assert anonymous_sees and bob_sees
    elif label == "private":
        assert not bob_sees, "a private repo is visible to bob"
        assert not anonymous_sees, "a private repo is visible anonymously"
    else:  # internal: for logged-in users only (§8.3)
        assert not anonymous_sees, "an internal repo is visible anonymously"


@pytest.mark.parametrize("repo_type,code", [("model", 10010101001), ("dataset", 10020101001)])
def test_create_existing_repo(ms, repo_type, code):
    from modelscope_hub.errors import AlreadyExistsError

    repo = f"alice/{unique(f'exists-{repo_type}')}"
    seg = hubraw.ms_seg(repo_type)
    api().create_repo(repo, repo_type=repo_type, visibility="private")
    hubraw.ms_commit(ms.url, ALICE, repo, "first", files={"keep.txt": b"keep\n"}, repo_type=repo_type)
    before = hubraw.ms_state(ms.url, ALICE, repo, repo_type)

    with pytest.raises(AlreadyExistsError):
        api().create_repo(repo, repo_type=repo_type)
    assert api().create_repo(repo, repo_type=repo_type, exist_ok=True) is None
    raw = hubraw.ms_create_model if repo_type == "model" else hubraw.ms_create_dataset
    assert_ms_error(raw(ms.url, ALICE, repo, 5), {400}, code=code)

    # upload_file auto-creates the repo public before every upload (§8.4); the existing repo must not change.
    api().upload_file(repo_id=repo, path_or_fileobj=b"second\n", path_in_repo="second.txt", repo_type=repo_type)
    data = assert_ms_ok(requests.get(f"{ms.url}/api/v1/{seg}/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT))["Data"]
    assert data["Visibility"] == 1, "re-creating an existing private repo made it public"
    head, files = hubraw.ms_state(ms.url, ALICE, repo, repo_type)
    assert head != before[0]
    assert [f for f in files if f[0] != "second.txt"] == before[1]
    assert not api(BOB).repo_exists(repo, repo_type=repo_type)


def test_private_repo_content_hidden_from_others(ms):
    repo = f"alice/{unique('private')}"
    api().create_repo(repo, repo_type="model", visibility="private")
    hubraw.ms_commit(ms.url, ALICE, repo, "secret", files={"secret.txt": b"secret\n"})
    url = hubraw.ms_download_url(ms.url, repo, "secret.txt")
    assert requests.get(url, headers=ms_headers(ALICE), timeout=TIMEOUT).content == b"secret\n"
    for who, token in (("bob", BOB), ("anonymous", None)):
        for target in (
            f"{ms.url}/api/v1/models/{repo}",
            f"{ms.url}/api/v1/models/{repo}/repo/files?Revision=master&Recursive=True",
            f"{ms.url}/api/v1/models/{repo}/revisions",
            url,
        ):
            r = requests.get(target, headers=ms_headers(token), timeout=TIMEOUT)
            assert r.status_code in (401, 403, 404), f"{who} GET {target}: {r.status_code} {r.text[:200]}"
            assert b"secret\n" != r.content
        r = requests.get(f"{ms.url}/openapi/v1/models/{repo}", headers=ms_headers(token), timeout=TIMEOUT)
        assert r.status_code in (401, 403, 404), f"{who} openapi: {r.status_code}"
    before = hubraw.ms_state(ms.url, ALICE, repo)
    r = hubraw.ms_commit_raw(ms.url, BOB, repo, [hubraw.ms_action_create("x.txt", b"x")])
    assert r.status_code in (403, 404), f"bob committed to alice's private repo: {r.status_code}"
    assert hubraw.ms_state(ms.url, ALICE, repo) == before


# ----------------------------------------------------------------------------------------------------
# §9 Upload, §6 listing, §7 download


def test_upload_folder_listing_sizes_and_hashes(ms, uploaded_model):
    repo, files = uploaded_model
    listed = {f.path: f for f in api().list_repo_files(repo, "model") if f.type != "tree"}
    assert set(listed) - HUB_FILES == set(files) - HUB_FILES, f"listing differs: {sorted(set(listed) ^ set(files))}"
    for path, content in files.items():
        assert listed[path].size == len(content), path
        assert listed[path].sha256 == sha256(content), path
    legacy = {f["Path"]: f["Size"] for f in api().get_model_files(repo, revision="master")}
    assert {p: legacy[p] for p in files} == {p: len(c) for p, c in files.items()}

    raw = hubraw.ms_list_raw(ms.url, ALICE, repo)
    blobs = {e["Path"]: e for e in raw if e["Type"] == "blob" and (e["Path"] not in HUB_FILES or e["Path"] in files)}
    assert set(blobs) == set(files)
    for path, entry in blobs.items():
        assert entry["Sha256"] == sha256(files[path]), f"{path}: Sha256 must be the lowercase content hash"
        assert entry["Size"] == len(files[path])
        assert entry["Name"] == path.rsplit("/", 1)[-1]
        assert isinstance(entry["Revision"], str) and entry["Revision"], f"{path}: Revision missing"
        assert entry["IsLFS"] is (path in LFS_PATHS), f"{path}: IsLFS={entry['IsLFS']!r}"
    for entry in raw:
        if entry["Type"] == "tree":
            assert entry["Path"] in {"sub dir", "a", "a/b", "a/b/c", "weights", "data"}, entry


def test_model_file_download(ms, uploaded_model, tmp_path):
    from modelscope.hub.file_download import model_file_download

    repo, files = uploaded_model
    for path in ("README.md", "config.json", "sub dir/with space.txt", "pytorch_model.bin",
                 "weights/model.safetensors", "data/large.dat"):
        local = model_file_download(repo, path, revision="master", cache_dir=str(tmp_path))
        assert sha256(pathlib.Path(local).read_bytes()) == sha256(files[path]), path


def test_raw_download_and_range(ms, uploaded_model):
    repo, files = uploaded_model
    content = files["data/large.dat"]
    url = hubraw.ms_download_url(ms.url, repo, "data/large.dat")
    full = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT)
    assert full.status_code == 200 and full.content == content
    assert full.headers.get("Content-Encoding", "identity") == "identity"
    part = requests.get(url, headers={"Range": "bytes=100-", "Accept-Encoding": "identity"}, timeout=TIMEOUT)
    assert part.status_code == 206, part.status_code
    assert part.content == content[100:]
    assert part.headers["Content-Range"] == f"bytes 100-{len(content) - 1}/{len(content)}"
    beyond = requests.get(url, headers={"Range": f"bytes={len(content) + 10}-"}, timeout=TIMEOUT)
    assert beyond.status_code == 416
    assert beyond.headers.get("Content-Range") == f"bytes */{len(content)}"
    # Space in the path, form-encoded as '+' the way the SDK sends it (§3.5).
    spaced = requests.get(hubraw.ms_download_url(ms.url, repo, "sub dir/with space.txt"), timeout=TIMEOUT)
    assert spaced.status_code == 200 and spaced.content == files["sub dir/with space.txt"]
    missing = requests.get(hubraw.ms_download_url(ms.url, repo, "nope.txt"), timeout=TIMEOUT)
    assert missing.status_code == 404


def test_snapshot_download_cache_and_local_dir(ms, uploaded_model, tmp_path):
    from modelscope.hub.snapshot_download import snapshot_download

    repo, files = uploaded_model
    expected = {p: sha256(c) for p, c in files.items()}
    root = snapshot_download(repo, revision="master", cache_dir=str(tmp_path / "cache"))
    assert_snapshot(root, expected)
    local = snapshot_download(repo, revision="master", local_dir=str(tmp_path / "local"), token="")
    assert_snapshot(local, expected)


def test_anonymous_snapshot_of_private_repo_fails(ms, tmp_path):
    from modelscope.hub.snapshot_download import snapshot_download

    repo = f"alice/{unique('private-dl')}"
    api().create_repo(repo, repo_type="model", visibility="private")
    hubraw.ms_commit(ms.url, ALICE, repo, "secret", files={"secret.txt": b"secret\n"})
    # The compat layer turns NotExist/Authentication/PermissionDenied into requests' HTTPError.
    with pytest.raises(requests.exceptions.HTTPError):
        snapshot_download(repo, revision="master", cache_dir=str(tmp_path / "anon"), token="")
    leaked = [p for p, c in tree_files(tmp_path / "anon").items() if c == b"secret\n"] if (tmp_path / "anon").exists() else []
    assert not leaked, f"anonymous snapshot wrote private content: {leaked}"
    got = snapshot_download(repo, revision="master", cache_dir=str(tmp_path / "alice"), token=ALICE)
    assert_snapshot(got, {"secret.txt": sha256(b"secret\n")})


def test_more_than_3000_files(ms, tmp_path):
    """`repo/files` truncates silently at 3000 entries; the SDK re-walks per directory with Root= (§6.1)."""
    from modelscope.hub.snapshot_download import snapshot_download

    repo = "alice/many-files"
    expected = {e["path"]: e["sha256"] for e in ms.many}
    assert len(expected) >= MANY_FILES
    per_dir = collections.Counter(p.rsplit("/", 1)[0] if "/" in p else "" for p in expected)
    assert len(per_dir) > 1 and max(per_dir.values()) < 3000, (
        f"the seeded layout must spread files over several directories of < 3000 files: {per_dir.most_common(3)}")

    raw = requests.get(f"{ms.url}/api/v1/models/{repo}/repo/files",
                       params={"Revision": "master", "Recursive": "True"}, headers=ms_headers(ALICE), timeout=TIMEOUT)
    entries = assert_ms_ok(raw)["Data"]["Files"]
    assert len(entries) == 3000, f"repo/files must return exactly 3000 entries, got {len(entries)}"

    shallow = hubraw.ms_list_raw(ms.url, ALICE, repo, Recursive="False")
    top_dirs = {p.split("/", 1)[0] for p in expected if "/" in p}
    listed_dirs = {e["Path"] for e in shallow if e["Type"] == "tree"}
    assert top_dirs <= listed_dirs, f"shallow root listing lacks directory entries: {sorted(top_dirs - listed_dirs)[:5]}"

    # Root= narrows a listing to one directory, with full repo paths (§6.1).
    for folder in [d for d in sorted(per_dir) if d][:2]:
        sub = hubraw.ms_list_raw(ms.url, ALICE, repo, Root=folder)
        sub_blobs = {e["Path"] for e in sub if e["Type"] == "blob"}
        assert sub_blobs == {p for p in expected if p.startswith(folder + "/")}, f"Root={folder} listing is wrong"

    listed = {f.path for f in api().list_repo_files(repo, "model") if f.type != "tree"}
    assert listed == set(expected), f"SDK listing lacks {len(set(expected) - listed)} files"

    root = snapshot_download(repo, revision="master", cache_dir=str(tmp_path), max_workers=8)
    assert_snapshot(root, expected)


def test_dataset_tree_pages(ms):
    repo = "alice/paged-ds"
    expected = {e["path"]: e for e in ms.paged}
    assert len(expected) > 200
    pages: list[list[dict]] = []
    while not pages or len(pages[-1]) == 200:
        r = requests.get(f"{ms.url}/api/v1/datasets/{repo}/repo/tree", headers=ms_headers(ALICE), timeout=TIMEOUT,
                         params={"Revision": "master", "Recursive": "True", "PageNumber": len(pages) + 1,
                                 "PageSize": 200})
        pages.append(assert_ms_ok(r)["Data"]["Files"] or [])
        assert len(pages) < 20, "paging never ends"
    assert len(pages) >= 2 and len(pages[0]) == 200, f"page sizes: {[len(p) for p in pages]}"
    paths = [e["Path"] for p in pages for e in p]
    assert len(paths) == len(set(paths)), "pages overlap"
    blobs = {e["Path"]: e for p in pages for e in p if e["Type"] == "blob"}
    assert set(blobs) == set(expected)
    for path, entry in blobs.items():
        assert entry["Size"] == expected[path]["size"] and entry["Sha256"] == expected[path]["sha256"], path

    # The numeric-id form used by the old SDK (§6.2) lists the same files.
    info = assert_ms_ok(requests.get(f"{ms.url}/api/v1/datasets/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT))
    ds_id = info["Data"]["Id"]
    assert isinstance(ds_id, int)
    by_id, page = [], 1
    while True:
        r = requests.get(f"{ms.url}/api/v1/datasets/{ds_id}/repo/tree", headers=ms_headers(ALICE), timeout=TIMEOUT,
                         params={"Revision": "master", "Root": "/", "Recursive": "True", "PageNumber": page,
                                 "PageSize": 100})
        files = assert_ms_ok(r)["Data"]["Files"] or []
        by_id.extend(files)
        if len(files) < 100:
            break
        page += 1
    assert {e["Path"] for e in by_id if e["Type"] == "blob"} == set(expected)

    listed = {f.path for f in api().list_repo_files(repo, "dataset") if f.type != "tree"}
    assert listed == set(expected)


def test_dataset_snapshot_of_paged_dataset(ms, tmp_path):
    from modelscope.hub.snapshot_download import dataset_snapshot_download

    expected = {e["path"]: e["sha256"] for e in ms.paged}
    root = dataset_snapshot_download("alice/paged-ds", revision="master", cache_dir=str(tmp_path), max_workers=8)
    assert_snapshot(root, expected)


def test_dataset_upload_and_downloads(ms, tmp_path):
    from modelscope.hub.file_download import dataset_file_download
    from modelscope.hub.snapshot_download import dataset_snapshot_download

    repo = f"alice/{unique('dataset')}"
    files = {
        "README.md": b"---\nlicense: apache-2.0\n---\n# dataset\n",
        "train.jsonl": b"".join(b'{"i": %d}\n' % i for i in range(500)),
        "test.csv": b"a,b\n1,2\n",
        "images/cat one.png": hubraw.payload(2048, "png"),
        "big/blob.raw": hubraw.payload(70 * 1024, "raw"),
    }
    folder = write_folder(tmp_path / "folder", files)
    api().create_repo(repo, repo_type="dataset", visibility="public")
    api().upload_folder(repo_id=repo, folder_path=str(folder), repo_type="dataset")

    listed = {f.path: f for f in api().list_repo_files(repo, "dataset") if f.type != "tree"}
    assert set(listed) - {".gitattributes"} == set(files)
    assert all(listed[p].size == len(c) and listed[p].sha256 == sha256(c) for p, c in files.items())
    raw = {e["Path"]: e for e in hubraw.ms_list_raw(ms.url, ALICE, repo, "dataset") if e["Type"] == "blob"}
    assert raw["train.jsonl"]["IsLFS"] is True and raw["images/cat one.png"]["IsLFS"] is True
    assert raw["README.md"]["IsLFS"] is False and raw["test.csv"]["IsLFS"] is False

    for path in ("README.md", "train.jsonl", "images/cat one.png"):
        local = dataset_file_download(repo, path, revision="master", cache_dir=str(tmp_path / "one"))
        assert pathlib.Path(local).read_bytes() == files[path], path
    root = dataset_snapshot_download(repo, revision="master", cache_dir=str(tmp_path / "all"))
    assert_snapshot(root, {p: sha256(c) for p, c in files.items()})


# ----------------------------------------------------------------------------------------------------
# §5.3 revisions, §12 tags


def test_revisions_tags_and_download_by_tag(ms, tmp_path):
    from modelscope.hub.file_download import model_file_download
    from modelscope.hub.snapshot_download import snapshot_download

    repo = f"alice/{unique('tags')}"
    api().create_repo(repo, repo_type="model", visibility="public")
    hubraw.ms_commit(ms.url, ALICE, repo, "v1", files={"version.txt": b"one\n"},
                     lfs_files={"w.bin": hubraw.payload(1000, "w1")})

    revs = assert_ms_ok(requests.get(f"{ms.url}/api/v1/models/{repo}/revisions", headers=ms_headers(ALICE),
                                     timeout=TIMEOUT))["Data"]["RevisionMap"]
    assert [b["Revision"] for b in revs["Branches"]] == ["master"]
    assert not revs.get("Tags"), f"a fresh repo must list no tags: {revs}"

    tag = requests.post(f"{ms.url}/api/v1/models/{repo}/repo/tag", headers=ms_headers(ALICE),
                        json={"TagName": "v1.0", "Ref": "master"}, timeout=TIMEOUT)
    assert_ms_ok(tag)
    hubraw.ms_commit(ms.url, ALICE, repo, "v2", files={"version.txt": b"two\n", "new.txt": b"new\n"},
                     lfs_files={"w.bin": hubraw.payload(1000, "w2")})

    revs = assert_ms_ok(requests.get(f"{ms.url}/api/v1/models/{repo}/revisions", headers=ms_headers(ALICE),
                                     timeout=TIMEOUT))["Data"]["RevisionMap"]
    tags = {t["Revision"]: t for t in revs["Tags"]}
    assert set(tags) == {"v1.0"}
    assert isinstance(tags["v1.0"]["CreatedAt"], int)
    names = {r.get("Revision") for r in api().list_repo_revisions(repo, "model")}
    assert {"master", "v1.0"} <= names

    at_tag = {e["Path"]: e for e in hubraw.ms_list_raw(ms.url, ALICE, repo, Revision="v1.0") if e["Type"] == "blob"}
    assert set(at_tag) - HUB_FILES == {"version.txt", "w.bin"}
    local = model_file_download(repo, "version.txt", revision="v1.0", cache_dir=str(tmp_path / "tag"))
    assert pathlib.Path(local).read_bytes() == b"one\n"
    local = model_file_download(repo, "version.txt", revision="master", cache_dir=str(tmp_path / "master"))
    assert pathlib.Path(local).read_bytes() == b"two\n"
    root = snapshot_download(repo, revision="v1.0", cache_dir=str(tmp_path / "snap"))
    assert_snapshot(root, {"version.txt": sha256(b"one\n"), "w.bin": sha256(hubraw.payload(1000, "w1"))})

    # Creating the same tag again must not move it to the new master.
    requests.post(f"{ms.url}/api/v1/models/{repo}/repo/tag", headers=ms_headers(ALICE),
                  json={"TagName": "v1.0", "Ref": "master"}, timeout=TIMEOUT)
    local = model_file_download(repo, "version.txt", revision="v1.0", cache_dir=str(tmp_path / "tag2"))
    assert pathlib.Path(local).read_bytes() == b"one\n"


# ----------------------------------------------------------------------------------------------------
# §3.1 envelope, §13 errors


def test_legacy_envelope_on_success(ms, uploaded_model):
    repo, _ = uploaded_model
    for path, params in (
        (f"/api/v1/models/{repo}", None),
        (f"/api/v1/models/{repo}/repo/files", {"Revision": "master", "Recursive": "True"}),
        (f"/api/v1/models/{repo}/revisions", None),
        (f"/api/v1/models/{repo}/commits", {"Ref": "master", "PageNumber": 1, "PageSize": 10}),
    ):
        r = requests.get(f"{ms.url}{path}", params=params, headers=ms_headers(ALICE), timeout=TIMEOUT)
        body = assert_ms_ok(r)
        assert isinstance(body["Data"], dict), f"{path}: Data must be an object"
        assert isinstance(body["Message"], str), path
        assert isinstance(body["RequestId"], str) and body["RequestId"], path
    info = assert_ms_ok(requests.get(f"{ms.url}/api/v1/models/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT))
    assert info["Data"]["Path"] == "alice" and isinstance(info["Data"]["Id"], int)
    commits = assert_ms_ok(requests.get(f"{ms.url}/api/v1/models/{repo}/commits", headers=ms_headers(ALICE),
                                        params={"Ref": "master", "PageNumber": 1, "PageSize": 10}, timeout=TIMEOUT))
    assert isinstance(commits.get("TotalCount"), int) and commits["TotalCount"] >= 1
    assert all(len(c["Id"]) == 40 for c in commits["Data"]["Commit"])

    # The create, batch, blob PUT and commit answers use the same envelope (§16.2 gotcha 2).
    new = f"alice/{unique('envelope')}"
    created = assert_ms_ok(hubraw.ms_create_model(ms.url, ALICE, new))
    assert created.get("Data") is None or isinstance(created["Data"], dict), "create Data must be an object or null"
    blob = hubraw.payload(777, "env")
    batch = hubraw.ms_batch_objects(hubraw.ms_lfs_batch(ms.url, ALICE, new, [(sha256(blob), len(blob))]))
    href = batch[sha256(blob)]["actions"]["upload"]["href"]
    assert_ms_ok(hubraw.ms_put_blob(href, ALICE, blob))
    batch = hubraw.ms_batch_objects(hubraw.ms_lfs_batch(ms.url, ALICE, new, [(sha256(blob), len(blob))]))
    assert not (batch[sha256(blob)].get("actions") or {}).get("upload"), "an uploaded blob is still requested"
    commit = hubraw.ms_commit_raw(ms.url, ALICE, new, [hubraw.ms_action_create("b.bin", lfs_oid=sha256(blob), size=len(blob))])
    assert len(assert_ms_ok(commit)["Data"]["oid"]) == 40


def test_error_codes(ms, uploaded_model):
    repo, _ = uploaded_model
    for path in ("/api/v1/models/alice/does-not-exist", "/api/v1/datasets/alice/does-not-exist",
                 "/api/v1/models/alice/does-not-exist/repo/files?Revision=master&Recursive=True"):
        assert_ms_error(requests.get(f"{ms.url}{path}", headers=ms_headers(ALICE), timeout=TIMEOUT), {404})
    r = requests.get(f"{ms.url}/openapi/v1/models/alice/does-not-exist", headers=ms_headers(ALICE), timeout=TIMEOUT)
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound" and r.json()["success"] is False
    assert requests.get(hubraw.ms_download_url(ms.url, repo, "missing/file.txt"), timeout=TIMEOUT).status_code == 404
    assert requests.get(hubraw.ms_download_url(ms.url, repo, "README.md", revision="no-such-rev"),
                        timeout=TIMEOUT).status_code == 404
    # Writes without or with a wrong token.
    r = hubraw.ms_commit_raw(ms.url, "ms-bogus", repo, [hubraw.ms_action_create("x.txt", b"x")])
    assert r.status_code in (401, 403), r.status_code
    r = hubraw.ms_create_model(ms.url, "", "alice/" + unique("anon-create"))
    assert r.status_code in (401, 403), r.status_code
    intruder = "alice/" + unique("bob-in-alice")
    r = hubraw.ms_create_model(ms.url, BOB, intruder)
    assert 400 <= r.status_code < 500, f"bob created a repo in alice's namespace: {r.status_code}"
    assert not api().repo_exists(intruder, repo_type="model")


def test_read_only_token_cannot_write(ms, uploaded_model):
    repo, files = uploaded_model
    carol = hubsim.READ_USERS["carol"]
    before = hubraw.ms_state(ms.url, ALICE, repo)
    r = hubraw.ms_commit_raw(ms.url, carol, repo, [hubraw.ms_action_create("x.txt", b"x")])
    assert r.status_code == 403, r.status_code
    assert hubraw.ms_create_model(ms.url, carol, f"carol/{unique('ro')}").status_code == 403
    me = requests.get(f"{ms.url}/openapi/v1/users/me", headers=ms_headers(carol), timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["data"]["username"] == "carol"
    login = requests.post(f"{ms.url}/api/v1/login", json={"AccessToken": carol}, timeout=TIMEOUT)
    assert_ms_error(login, {400}, code=10010103009)
    assert hubraw.ms_state(ms.url, ALICE, repo) == before


def test_commit_actions_limit(ms):
    repo = f"alice/{unique('actions')}"
    hubraw.ms_create(ms.url, ALICE, repo)
    hubraw.ms_commit(ms.url, ALICE, repo, "base", files={"base.txt": b"base\n"})
    before = hubraw.ms_state(ms.url, ALICE, repo)

    too_many = [hubraw.ms_action_create(f"many/{i:04d}.txt", b"%d\n" % i) for i in range(2001)]
    r = hubraw.ms_commit_raw(ms.url, ALICE, repo, too_many, "too many")
    assert r.status_code == 422, f"2001 actions: {r.status_code} {r.text[:300]}"
    assert "2000" in r.text, f"the 422 must name the limit: {r.text[:300]}"
    assert hubraw.ms_state(ms.url, ALICE, repo) == before

    r = hubraw.ms_commit_raw(ms.url, ALICE, repo, too_many[:2000], "exactly 2000")
    assert_ms_ok(r)
    assert {f[0] for f in hubraw.ms_files(ms.url, ALICE, repo)} - HUB_FILES == {"base.txt"} | {
        a["path"] for a in too_many[:2000]}


# ----------------------------------------------------------------------------------------------------
# Wire quirks of older SDKs and the rest of the §16.1 route table


def test_old_sdk_wire_format(ms):
    """SDKs <= 1.37 POST JSON without Content-Type and authenticate with the m_session_id cookie only (§3.4)."""
    repo = f"alice/{unique('old-sdk')}"
    cookie = {"Cookie": f"m_session_id={ALICE}"}
    r = requests.post(f"{ms.url}/api/v1/models", data=json.dumps(
        {"Path": "alice", "Name": repo.split("/")[1], "ChineseName": None, "Visibility": 5,
         "License": "Apache License 2.0", "OriginalModelId": "", "TrainId": ""}), headers=cookie, timeout=TIMEOUT)
    assert_ms_ok(r)
    blob = hubraw.payload(1500, "old-sdk")
    stored = hubraw.payload(10, "never-needed")
    batch_body = {"operation": "upload", "objects": [{"oid": sha256(blob), "size": len(blob)}]}
    r = requests.post(f"{ms.url}/api/v1/repos/models/{repo}/info/lfs/objects/batch", data=json.dumps(batch_body),
                      headers=cookie, timeout=TIMEOUT)
    objects = {o["oid"]: o for o in assert_ms_ok(r)["Data"]["objects"]}
    href = objects[sha256(blob)]["actions"]["upload"]["href"]
    put = requests.put(href, data=blob, headers=cookie, timeout=TIMEOUT)
    assert_ms_ok(put)
    commit = {"commit_message": f"Upload to {repo} on ModelScope hub (batch 1/1)",
              "actions": [hubraw.ms_action_create("README.md", b"# old\n"),
                          hubraw.ms_action_create("w.bin", lfs_oid=sha256(blob), size=len(blob))]}
    r = requests.post(f"{ms.url}/api/v1/repos/models/{repo}/commit/master", data=json.dumps(commit), headers=cookie,
                      timeout=TIMEOUT)
    assert len(assert_ms_ok(r)["Data"]["oid"]) == 40
    # Every requested oid is answered, stored or not (§9.1 Step 1).
    r = requests.post(f"{ms.url}/api/v1/repos/models/{repo}/info/lfs/objects/batch", headers=cookie, timeout=TIMEOUT,
                      data=json.dumps({"operation": "upload", "objects": [
                          {"oid": sha256(blob), "size": len(blob)}, {"oid": sha256(stored), "size": len(stored)}]}))
    objects = {o["oid"]: o for o in assert_ms_ok(r)["Data"]["objects"]}
    assert set(objects) == {sha256(blob), sha256(stored)}
    assert not (objects[sha256(blob)].get("actions") or {}).get("upload")
    assert objects[sha256(stored)]["actions"]["upload"]["href"]
    # Lower-case booleans are parsed too (§3.5), and the old dataset-style download parameters are accepted.
    files = requests.get(f"{ms.url}/api/v1/models/{repo}/repo/files?Revision=master&Recursive=true", headers=cookie,
                         timeout=TIMEOUT)
    listed = {e["Path"]: e for e in assert_ms_ok(files)["Data"]["Files"] if e["Type"] == "blob"}
    assert {"README.md", "w.bin"} <= set(listed) and listed["w.bin"]["Sha256"] == sha256(blob)
    r = requests.get(f"{ms.url}/api/v1/models/{repo}/repo?Source=SDK&Revision=master&FilePath=w.bin&View=False",
                     headers=cookie, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == blob


def test_openapi_auth_forms_and_repo_metadata(ms, uploaded_model):
    repo, _ = uploaded_model
    for headers in ({"Authorization": f"Bearer {ALICE}"}, {"Cookie": f"m_session_id={ALICE}"},
                    {"Cookie": f"modelscope_session={ALICE}"}):
        r = requests.get(f"{ms.url}/openapi/v1/users/me", headers=headers, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["data"]["username"] == "alice", f"{headers}: {r.status_code}"
    r = requests.get(f"{ms.url}/openapi/v1/models/{repo}", timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["success"] is True and isinstance(body["request_id"], str)
    data = body["data"]
    required = {"id", "downloads", "likes", "tasks", "created_at", "last_modified", "file_size", "params", "private",
                "gated"}
    assert required <= set(data), f"missing OpenAPI model fields: {sorted(required - set(data))}"
    assert data["id"] == repo and data["private"] is False
    info = api("").get_repo(repo, "model")
    assert int(info.visibility) == 5


def test_auxiliary_routes(ms, uploaded_model):
    repo, _ = uploaded_model
    # The acceleration probe must answer 404 so the SDK skips region probing (§7.5).
    assert requests.get(f"{ms.url}/api/v1/repos/internalAccelerationInfo", timeout=TIMEOUT).status_code == 404
    r = requests.post(f"{ms.url}/api/v1/datasets/alice/paged-ds/download/increase", headers=ms_headers(ALICE),
                      timeout=TIMEOUT)
    assert r.status_code == 200
    # HEAD on the download route answers like GET, without a body.
    head = requests.head(hubraw.ms_download_url(ms.url, repo, "README.md"), allow_redirects=True, timeout=TIMEOUT)
    assert head.status_code == 200 and not head.content
    # Repo deletion through the API is refused, as on the real service (§11), and the repo stays.
    before = hubraw.ms_state(ms.url, ALICE, repo)
    r = requests.delete(f"{ms.url}/api/v1/models/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT)
    body = assert_ms_error(r, {401})
    assert "no longer supports deletion" in body["Message"]
    assert hubraw.ms_state(ms.url, ALICE, repo) == before


def test_commit_to_tag_or_unknown_branch_is_rejected(ms):
    repo = f"alice/{unique('on-tag')}"
    hubraw.ms_create(ms.url, ALICE, repo)
    hubraw.ms_commit(ms.url, ALICE, repo, "base", files={"a.txt": b"a\n"})
    assert_ms_ok(requests.post(f"{ms.url}/api/v1/models/{repo}/repo/tag", headers=ms_headers(ALICE),
                               json={"TagName": "v1", "Ref": "master"}, timeout=TIMEOUT))
    before = hubraw.ms_state(ms.url, ALICE, repo)
    r = hubraw.ms_commit_raw(ms.url, ALICE, repo, [hubraw.ms_action_create("b.txt", b"b\n")], revision="v1")
    body = assert_ms_error(r, {400})
    assert "on a branch" in body["Message"], body
    r = hubraw.ms_commit_raw(ms.url, ALICE, repo, [hubraw.ms_action_create("b.txt", b"b\n")], revision="no-such-branch")
    assert_ms_error(r, range(400, 500))
    assert hubraw.ms_state(ms.url, ALICE, repo) == before
    at_tag = {e["Path"] for e in hubraw.ms_list_raw(ms.url, ALICE, repo, Revision="v1") if e["Type"] == "blob"}
    assert "b.txt" not in at_tag


def test_delete_files_through_commit(ms):
    repo = f"alice/{unique('delete')}"
    api().create_repo(repo, repo_type="model")
    hubraw.ms_commit(ms.url, ALICE, repo, "base", files={"keep.txt": b"k\n", "drop/one.txt": b"1\n", "drop/two.json": b"{}"},
                     lfs_files={"drop/w.bin": hubraw.payload(900, "drop")})
    api().delete_files(repo, "model", delete_patterns=["drop/*"])
    assert {f[0] for f in hubraw.ms_files(ms.url, ALICE, repo)} - HUB_FILES == {"keep.txt"}
    before = hubraw.ms_state(ms.url, ALICE, repo)
    gone = {"action": "delete", "path": "drop/one.txt", "type": "normal", "size": 0, "sha256": "", "content": "",
            "encoding": ""}
    assert_ms_error(hubraw.ms_commit_raw(ms.url, ALICE, repo, [gone]), {400, 404})
    assert hubraw.ms_state(ms.url, ALICE, repo) == before


def test_a_new_model_holds_the_template_card_naming_its_license(ms):
    repo = f"alice/{unique('card')}"
    r = hubraw.ms_create_model(ms.url, ALICE, repo, 5, license="MIT")
    assert_ms_ok(r)
    files = {f[0] for f in hubraw.ms_files(ms.url, ALICE, repo)}
    assert files == {".gitattributes", "README.md"}, files
    card = requests.get(hubraw.ms_download_url(ms.url, repo, "README.md"), headers=ms_headers(ALICE), timeout=TIMEOUT)
    assert card.text.startswith("---\nlicense: MIT\n---\n"), card.text
    data = assert_ms_ok(requests.get(f"{ms.url}/api/v1/models/{repo}", headers=ms_headers(ALICE), timeout=TIMEOUT))["Data"]
    assert data["License"] == "MIT"


def test_a_branch_with_a_slash_takes_commits_sent_unescaped(ms, tmp_path):
    """The SDKs put the revision into the commit URL unescaped: `dev/x` arrives as two segments."""
    repo = f"alice/{unique('slash')}"
    hubraw.ms_create(ms.url, ALICE, repo)
    hubraw.ms_commit(ms.url, ALICE, repo, "base", files={"a.txt": b"a\n"})
    # A branch with a slash, made over git (the API has no branch route), then committed to.
    env = hubsim.git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    hubsim.git("clone", f"{ms.url}/{repo}.git", str(clone), env=env)
    hubsim.git("push", "origin", "HEAD:refs/heads/dev/x", cwd=clone, env=env)
    r = hubraw.ms_commit_raw(ms.url, ALICE, repo, [hubraw.ms_action_create("b.txt", b"b\n")], revision="dev/x")
    assert_ms_ok(r)
    on_branch = {e["Path"] for e in hubraw.ms_list_raw(ms.url, ALICE, repo, Revision="dev/x") if e["Type"] == "blob"}
    assert "b.txt" in on_branch


def test_git_lfs_pushes_a_new_object(ms, tmp_path):
    """The real git-lfs pushes a new LFS object: the batch answer's verify action is served."""
    repo = f"alice/{unique('lfs-push')}"
    hubraw.ms_create(ms.url, ALICE, repo)
    env = hubsim.git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    hubsim.git("clone", f"{ms.url}/{repo}.git", str(clone), env=env)
    blob = hubraw.payload(300_000, "git-lfs-push")
    (clone / "w.bin").write_bytes(blob)
    hubsim.git("add", "w.bin", cwd=clone, env=env)
    hubsim.git("commit", "-q", "-m", "an LFS object over git", cwd=clone, env=env)
    hubsim.git("push", "origin", "master", cwd=clone, env=env)
    listed = {f[0]: f for f in hubraw.ms_files(ms.url, ALICE, repo)}
    assert "w.bin" in listed
    got = requests.get(hubraw.ms_download_url(ms.url, repo, "w.bin"), headers=ms_headers(ALICE), timeout=TIMEOUT)
    assert sha256(got.content) == sha256(blob)
