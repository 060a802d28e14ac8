"""Fault-injection knobs of `hubsim serve`, checked from the client's side, for both flavours.

Every test starts its own hub with one fault flag over a data directory seeded beforehand with
`hubsim seed` (whose manifest gives each file's size and sha256), then observes what a client sees: timings
for the rate and latency knobs, statuses and headers on raw requests for the error knobs, and whether the
official clients (huggingface_hub 2.4.0, modelscope 1.40.2) still get their files where their retry logic
promises it (huggingface.md §0.1 and §9, modelscope.md §3.6 and §7).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import threading
import time

import pytest
import requests

import hubraw
import hubsim
from hubraw import ALICE, TIMEOUT, hf_headers, ms_headers, sha256

FLAVORS = ["hf", "ms"]
MiB = 1 << 20


@pytest.fixture
def make_hub(tmp_path):
    """`make_hub(flavor, *flags, seeds=[(repo, [seed args], repo_type)])` -> (hub, {repo: manifest})."""
    started: list[hubsim.Hub] = []

    def make(flavor: str, *flags: str, seeds=()):
        data = tmp_path / f"data-{flavor}-{len(started)}"
        manifests = {}
        for repo, args, repo_type in seeds:
            manifests[repo] = hubraw.seed(data, flavor, repo, *args, repo_type=repo_type)
        data.mkdir(parents=True, exist_ok=True)
        if flavor == "hf":  # keep test uploads on the basic (single PUT) LFS transfer
            flags = ("--multipart-threshold", "64MiB", *flags)
        hub = hubsim.start(flavor, *flags, data=data)
        started.append(hub)
        return hub, manifests

    yield make
    for hub in started:
        hubsim.cleanup(hub)


def download_url(hub: hubsim.Hub, repo: str, path: str, repo_type: str = "model") -> str:
    if hub.flavor == "hf":
        return hubraw.hf_resolve_url(hub.url, repo, path, repo_type=repo_type)
    return hubraw.ms_download_url(hub.url, repo, path, repo_type=repo_type)


def auth(hub: hubsim.Hub, token: str | None = ALICE) -> dict[str, str]:
    return hf_headers(token) if hub.flavor == "hf" else ms_headers(token, json_body=False)


def whoami_url(hub: hubsim.Hub) -> str:
    return f"{hub.url}/api/whoami-v2" if hub.flavor == "hf" else f"{hub.url}/openapi/v1/users/me"


def timed_get(url: str, headers: dict[str, str]) -> tuple[float, bytes, requests.Response]:
    start = time.monotonic()
    r = requests.get(url, headers={**headers, "Accept-Encoding": "identity"}, timeout=TIMEOUT)
    body = r.content
    return time.monotonic() - start, body, r


def lfs_upload_href(hub: hubsim.Hub, repo: str, data: bytes) -> str:
    oid = sha256(data)
    if hub.flavor == "hf":
        obj = hubraw.hf_batch_objects(hubraw.hf_lfs_batch(hub.url, ALICE, repo, [(oid, len(data))]))[oid]
    else:
        obj = hubraw.ms_batch_objects(hubraw.ms_lfs_batch(hub.url, ALICE, repo, [(oid, len(data))]))[oid]
    upload = obj["actions"]["upload"]
    assert "chunk_size" not in (upload.get("header") or {}), "expected a basic (single PUT) upload"
    return upload["href"]


def put_blob(hub: hubsim.Hub, href: str, data: bytes) -> requests.Response:
    if hub.flavor == "hf":
        return requests.put(href, data=data, timeout=TIMEOUT)
    return hubraw.ms_put_blob(href, ALICE, data)


def state(hub: hubsim.Hub, repo: str) -> tuple:
    return (hubraw.hf_state if hub.flavor == "hf" else hubraw.ms_state)(hub.url, ALICE, repo)


def commit_raw(hub: hubsim.Hub, repo: str, files: dict[str, bytes], message: str) -> requests.Response:
    if hub.flavor == "hf":
        return hubraw.hf_commit_raw(hub.url, ALICE, repo, hubraw.hf_commit_body(message, files))
    return hubraw.ms_commit_raw(hub.url, ALICE, repo, [hubraw.ms_action_create(p, d) for p, d in files.items()], message)


def assert_retry_after(r: requests.Response) -> int:
    value = r.headers.get("Retry-After")
    assert value is not None and re.fullmatch(r"\d+", value.strip()), f"429 without an integer Retry-After: {value!r}"
    return int(value)


# ----------------------------------------------------------------------------------------------------
# Rates and latency


@pytest.mark.parametrize("flavor", FLAVORS)
def test_conn_rate_caps_download_and_upload(make_hub, flavor):
    hub, manifests = make_hub(flavor, "--conn-rate", "4MiB", seeds=[("alice/rate", ["--lfs-file", "big.bin=8MiB"], "model")])
    big = hubraw.manifest_entry(manifests["alice/rate"], "big.bin")
    assert big["size"] == 8 * MiB

    elapsed, body, r = timed_get(download_url(hub, "alice/rate", "big.bin"), auth(hub))
    assert r.status_code == 200 and sha256(body) == big["sha256"]
    assert 1.6 <= elapsed <= 2.4, f"8 MiB at 4 MiB/s per connection took {elapsed:.2f}s (expected 2s ± 20%)"

    data = hubraw.payload(4 * MiB, f"upload-{flavor}")
    href = lfs_upload_href(hub, "alice/rate", data)
    start = time.monotonic()
    r = put_blob(hub, href, data)
    elapsed = time.monotonic() - start
    assert 200 <= r.status_code < 300, f"PUT: {r.status_code} {r.text[:300]}"
    assert 0.8 <= elapsed <= 2.0, f"4 MiB upload at 4 MiB/s per connection took {elapsed:.2f}s (expected ~1s)"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_total_rate_is_shared_between_connections(make_hub, flavor):
    hub, manifests = make_hub(flavor, "--total-rate", "4MiB", seeds=[
        ("alice/shared", ["--lfs-file", "a.bin=4MiB", "--lfs-file", "b.bin=4MiB"], "model")])
    manifest = manifests["alice/shared"]
    barrier = threading.Barrier(2)
    results: dict[str, tuple[float, str, int]] = {}

    def fetch(name: str) -> None:
        barrier.wait()
        start = time.monotonic()
        r = requests.get(download_url(hub, "alice/shared", name), headers=auth(hub), timeout=TIMEOUT)
        results[name] = (time.monotonic() - start, sha256(r.content), r.status_code)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in ("a.bin", "b.bin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == {"a.bin", "b.bin"}
    for name, (elapsed, digest, status) in results.items():
        assert status == 200 and digest == hubraw.manifest_entry(manifest, name)["sha256"], name
    times = sorted(r[0] for r in results.values())
    assert 1.6 <= times[1] <= 2.4, f"8 MiB in total at 4 MiB/s took {times[1]:.2f}s (expected ~2s)"
    # Had one download taken the whole 4 MiB/s it would have ended after 1 s; sharing makes both end near 2 s.
    assert times[0] >= 1.2, f"the two downloads did not share the bandwidth: {times}"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_latency_is_added_to_every_request(make_hub, flavor, tmp_path):
    hub, _ = make_hub(flavor, "--latency", "200ms")
    start = time.monotonic()
    r = requests.get(whoami_url(hub), headers=auth(hub), timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text[:300]
    assert elapsed >= 0.2, f"whoami took {elapsed * 1000:.0f} ms with --latency 200ms"
    assert elapsed < 3, f"whoami took {elapsed:.2f}s"
    start = time.monotonic()
    if flavor == "hf":
        from huggingface_hub import HfApi

        assert HfApi(endpoint=hub.url, token=ALICE).whoami()["name"] == "alice"
    else:
        from modelscope_hub import HubApi

        with hubraw.ms_env(hub.url, tmp_path):
            assert HubApi(endpoint=hub.url, token=ALICE).whoami().username == "alice"
    assert time.monotonic() - start >= 0.2


# ----------------------------------------------------------------------------------------------------
# Injected errors


SMALL_SEED = ["--lfs-file", "weights.bin=64KiB", "--files", "2"]


def regular_file(manifest: list[dict]) -> dict:
    """A seeded non-LFS file. It is served in one response, while an LFS download is a redirect plus a CDN
    request, each of which an injected fault can hit: with 50% faults and the clients' 6 attempts, one
    request per attempt keeps the chance that the official client legitimately gives up near 1/64."""
    return next(e for e in manifest if not e["lfs"] and not e["path"].startswith("."))


def client_download(hub: hubsim.Hub, repo: str, path: str, workdir: pathlib.Path) -> bytes:
    """Download one file with the official client of the hub's flavour; return its bytes."""
    if hub.flavor == "hf":
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(repo, path, endpoint=hub.url, token=ALICE, cache_dir=str(workdir / "hf-cache"))
        return pathlib.Path(local).read_bytes()
    from modelscope.hub.file_download import model_file_download

    with hubraw.ms_env(hub.url, workdir):
        local = model_file_download(repo, path, revision="master", cache_dir=str(workdir / "ms-cache"),
                                    endpoint=hub.url, token=ALICE)
    return pathlib.Path(local).read_bytes()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_fail_429_with_retry_after_and_client_retries(make_hub, flavor, tmp_path):
    # 0.25: every request still sees 429s, while the chance that all six attempts of the official
    # client get one (0.25^6, about 1 in 4000) stays far below what makes CI flaky.
    hub, manifests = make_hub(flavor, "--fail-429", "0.25", seeds=[("alice/flaky", SMALL_SEED, "model")])
    statuses = []
    for _ in range(40):
        r = requests.get(whoami_url(hub), headers=auth(hub), timeout=TIMEOUT)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert_retry_after(r)
    assert set(statuses) <= {200, 429}, f"unexpected statuses: {sorted(set(statuses))}"
    n429 = statuses.count(429)
    assert 2 <= n429 <= 25, f"{n429} of 40 requests got 429 with --fail-429 0.25"

    entry = regular_file(manifests["alice/flaky"])
    body = client_download(hub, "alice/flaky", entry["path"], tmp_path)
    assert sha256(body) == entry["sha256"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_fail_5xx_and_client_retries(make_hub, flavor, tmp_path):
    hub, manifests = make_hub(flavor, "--fail-5xx", "0.3", seeds=[("alice/flaky", SMALL_SEED, "model")])
    statuses = [requests.get(whoami_url(hub), headers=auth(hub), timeout=TIMEOUT).status_code for _ in range(40)]
    n5xx = sum(1 for s in statuses if 500 <= s <= 599)
    assert set(statuses) - {200} <= {s for s in statuses if 500 <= s <= 599}, f"statuses: {sorted(set(statuses))}"
    assert 2 <= n5xx <= 25, f"{n5xx} of 40 requests got a 5xx with --fail-5xx 0.3"

    manifest = manifests["alice/flaky"]
    if flavor == "ms":
        # The ModelScope downloader retries 5xx (modelscope.md §3.6, §7.2).
        entry = regular_file(manifest)
        assert sha256(client_download(hub, "alice/flaky", entry["path"], tmp_path)) == entry["sha256"]
    else:
        # huggingface_hub retries 5xx on the metadata HEAD and on API pagination, not on the GET of a
        # download (huggingface.md §0.1), so the retried official call is the tree listing.
        from huggingface_hub import HfApi

        files = HfApi(endpoint=hub.url, token=ALICE).list_repo_files("alice/flaky")
        assert sorted(files) == sorted(e["path"] for e in manifest)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_truncate_cuts_download_bodies(make_hub, flavor):
    hub, manifests = make_hub(flavor, "--truncate", "1.0", seeds=[("alice/cut", ["--lfs-file", "w.bin=1MiB"], "model")])
    size = hubraw.manifest_entry(manifests["alice/cut"], "w.bin")["size"]
    r = requests.get(download_url(hub, "alice/cut", "w.bin"), headers={**auth(hub), "Accept-Encoding": "identity"},
                     stream=True, timeout=TIMEOUT)
    assert r.status_code == 200, r.status_code
    announced = r.headers.get("Content-Length")
    if announced is not None:
        assert int(announced) == size, f"Content-Length {announced} is not the file size {size}"
    received = bytearray()
    try:
        for chunk in r.iter_content(64 * 1024):
            received += chunk
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        pass
    assert len(received) < size, f"--truncate 1.0 delivered the whole body ({len(received)} bytes)"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_corrupt_flips_bytes(make_hub, flavor, tmp_path):
    hub, manifests = make_hub(flavor, "--corrupt", "1.0", seeds=[("alice/bad", ["--lfs-file", "w.bin=256KiB"], "model")])
    entry = hubraw.manifest_entry(manifests["alice/bad"], "w.bin")
    r = requests.get(download_url(hub, "alice/bad", "w.bin"), headers=auth(hub), timeout=TIMEOUT)
    assert r.status_code == 200
    assert len(r.content) == entry["size"], "a corrupted download must keep its length"
    assert sha256(r.content) != entry["sha256"], "--corrupt 1.0 served the original bytes"
    if flavor == "ms":
        # The ModelScope SDK checks every file against the listing's Sha256 and refuses the bytes (§7.3).
        from modelscope.hub.snapshot_download import snapshot_download

        from modelscope_hub.errors import FileDownloadError, FileIntegrityError

        with hubraw.ms_env(hub.url, tmp_path):
            with pytest.raises(FileDownloadError) as failure:
                snapshot_download("alice/bad", revision="master", cache_dir=str(tmp_path / "cache"),
                                  endpoint=hub.url, token=ALICE)
        failed = getattr(failure.value, "failed_files", None) or {}
        assert isinstance(failed.get("w.bin"), FileIntegrityError), f"expected a hash mismatch for w.bin: {failed}"
        landed = [p for p in (tmp_path / "cache").rglob("w.bin") if p.is_file()]
        assert all(sha256(p.read_bytes()) == entry["sha256"] for p in landed), "corrupted bytes landed in the cache"


# ----------------------------------------------------------------------------------------------------
# --api-403


def git_clone(url: str, dest: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", "clone", "--quiet", url, str(dest)], capture_output=True, text=True, env=env,
                          timeout=120)


def assert_worktree(dest: pathlib.Path, manifest: list[dict]) -> None:
    for entry in manifest:
        path = dest / entry["path"]
        assert path.is_file(), f"{entry['path']} missing from the clone"
        content = path.read_bytes()
        if entry["lfs"]:
            text = content.decode()
            assert f"oid sha256:{entry['sha256']}" in text and f"size {entry['size']}" in text, (
                f"{entry['path']} is not the LFS pointer of the seeded object: {text[:200]!r}")
        else:
            assert sha256(content) == entry["sha256"], entry["path"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_api_403_blocks_listing_but_not_git_or_downloads(make_hub, flavor, tmp_path):
    seeds = [("alice/walled", ["--files", "2", "--lfs-file", "w.bin=32KiB"], "model"),
             ("alice/walled-ds", ["--files", "2"], "dataset")]
    hub, manifests = make_hub(flavor, "--api-403", seeds=seeds)
    manifest = manifests["alice/walled"]
    if flavor == "hf":
        blocked = [
            ("GET", f"{hub.url}/api/models/alice/walled", None),
            ("GET", f"{hub.url}/api/models/alice/walled/revision/main", None),
            ("GET", f"{hub.url}/api/models/alice/walled/tree/main?recursive=true&expand=false", None),
            ("GET", f"{hub.url}/api/datasets/alice/walled-ds/tree/main", None),
            ("POST", f"{hub.url}/api/models/alice/walled/paths-info/main", {"paths": ["w.bin"], "expand": "false"}),
        ]
        clone_url = hub.url.replace("http://", f"http://alice:{ALICE}@") + "/alice/walled"
    else:
        blocked = [
            ("GET", f"{hub.url}/api/v1/models/alice/walled", None),
            ("GET", f"{hub.url}/api/v1/models/alice/walled/repo/files?Revision=master&Recursive=True", None),
            ("GET", f"{hub.url}/api/v1/datasets/alice/walled-ds", None),
            ("GET", f"{hub.url}/api/v1/datasets/alice/walled-ds/repo/tree?Revision=master&Recursive=True"
                    "&PageNumber=1&PageSize=200", None),
        ]
        clone_url = hub.url.replace("http://", f"http://oauth2:{ALICE}@") + "/models/alice/walled.git"
    for method, url, form in blocked:
        r = requests.request(method, url, headers=auth(hub), data=form, timeout=TIMEOUT)
        assert r.status_code == 403, f"{method} {url}: {r.status_code} {r.text[:200]}"

    for entry in manifest:
        r = requests.get(download_url(hub, "alice/walled", entry["path"]), headers=auth(hub), timeout=TIMEOUT)
        assert r.status_code == 200 and sha256(r.content) == entry["sha256"], f"download {entry['path']}: {r.status_code}"
    w = hubraw.manifest_entry(manifest, "w.bin")
    assert sha256(client_download(hub, "alice/walled", "w.bin", tmp_path)) == w["sha256"]

    dest = tmp_path / "clone"
    proc = git_clone(clone_url, dest)
    assert proc.returncode == 0, f"git clone failed under --api-403: {proc.stderr[-1500:]}"
    assert_worktree(dest, manifest)


# ----------------------------------------------------------------------------------------------------
# --commit-limit


@pytest.mark.parametrize("flavor", FLAVORS)
def test_commit_limit_per_repo_per_hour(make_hub, flavor):
    seeds = [("alice/limited", ["--files", "1"], "model"), ("alice/other", ["--files", "1"], "model")]
    hub, _ = make_hub(flavor, "--commit-limit", "2", seeds=seeds)
    for i in (1, 2):
        r = commit_raw(hub, "alice/limited", {f"c{i}.txt": b"%d\n" % i}, f"commit {i}")
        assert r.status_code == 200, f"commit {i} of 2 allowed: {r.status_code} {r.text[:300]}"
    before = state(hub, "alice/limited")
    r = commit_raw(hub, "alice/limited", {"c3.txt": b"3\n"}, "commit 3")
    assert r.status_code == 429, f"third commit within the hour: {r.status_code} {r.text[:300]}"
    if flavor == "ms":
        # ModelScope's commit-frequency limit (the SDK's E1021): undisclosed, so no Retry-After.
        assert "Commit frequency limit exceeded" in r.text and "Retry-After" not in r.headers, r.text
    else:
        assert "hourly quotas for action: commit" in r.text, r.text
        assert assert_retry_after(r) > 0
    assert state(hub, "alice/limited") == before, "a rate-limited commit changed the repo"
    # The limit is per repo.
    r = commit_raw(hub, "alice/other", {"c1.txt": b"1\n"}, "other repo")
    assert r.status_code == 200, f"another repo was throttled too: {r.status_code}"
