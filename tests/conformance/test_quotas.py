"""The Hugging Face Hub's limits in hubsim's HF flavor, checked from the client's side.

Request quotas (docs/hub/rate-limits.md): buckets api, resolvers and pages counted per user over fixed
windows, every answer carrying `RateLimit` / `RateLimit-Policy` (IETF draft 09), a 429 over the quota with
`r=0` and `Retry-After`. The official client must read those headers and wait exactly the `t` we send: its
own retry logic is the proof that the headers are right. Also the hourly commit quota, the server's commit
timeout, preupload's 256-file and the batch API's object-size limits. Windows and costs are shortened.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests

import hubraw
import hubsim
from hubraw import ALICE, BOB, TIMEOUT, hf_headers

WINDOW = 6


@pytest.fixture
def hub(tmp_path, request):
    """An HF hub seeded with alice/q (regular files), started with the test's `hub_flags` marker."""
    marker = request.node.get_closest_marker("hub_flags")
    flags = marker.args if marker else ()
    data = tmp_path / "data"
    manifest = hubraw.seed(data, "hf", "alice/q", "--files", "6", "--lfs-files", "0", repo_type="model")
    started = hubsim.start("hf", "--quota-window", f"{WINDOW}s", *flags, data=data)
    started.manifest = manifest
    yield started
    hubsim.cleanup(started)


def whoami(hub, token=ALICE) -> requests.Response:
    return requests.get(f"{hub.url}/api/whoami-v2", headers=hf_headers(token), timeout=TIMEOUT)


def at_window_start(hub) -> None:
    """Waits for a fresh window when less than 4 s of this one are left (windows are fixed on the
    clock), asking as a third user so that the test's users keep their counts."""
    from huggingface_hub.utils import parse_ratelimit_headers

    left = parse_ratelimit_headers(whoami(hub, hubsim.READ_USERS["carol"]).headers).reset_in_seconds
    if left < 4:
        time.sleep(left + 0.1)


def regular_paths(hub) -> list[str]:
    return [e["path"] for e in hub.manifest if not e["lfs"] and not e["path"].startswith(".")]


@pytest.mark.hub_flags("--api-quota", "3", "--resolve-quota", "4")
def test_every_answer_carries_its_buckets_headers_and_the_quota_ends_in_429(hub):
    from huggingface_hub.utils import parse_ratelimit_headers

    at_window_start(hub)
    first = whoami(hub)
    info = parse_ratelimit_headers(first.headers)
    assert first.status_code == 200 and info is not None, first.headers
    assert (info.resource_type, info.remaining, info.limit, info.window_seconds) == ("api", 2, 3, WINDOW)
    assert 1 <= info.reset_in_seconds <= WINDOW
    resolve = requests.get(hubraw.hf_resolve_url(hub.url, "alice/q", regular_paths(hub)[0]),
                           headers=hf_headers(ALICE), timeout=TIMEOUT)
    assert resolve.status_code == 200
    assert parse_ratelimit_headers(resolve.headers).resource_type == "resolvers"
    assert resolve.headers["RateLimit-Policy"] == f'"fixed window";"resolvers";q=4;w={WINDOW}'
    # Another user counts apart; alice's third call is her last.
    assert whoami(hub, BOB).status_code == 200
    assert [whoami(hub).status_code for _ in range(2)] == [200, 200]
    refused = whoami(hub)
    over = parse_ratelimit_headers(refused.headers)
    assert refused.status_code == 429, refused.text
    assert (over.resource_type, over.remaining) == ("api", 0)
    assert int(refused.headers["Retry-After"]) == over.reset_in_seconds
    # Nothing is done over the quota: a commit refused there commits nothing.
    before = requests.get(f"{hub.url}/api/models/alice/q", headers=hf_headers(BOB), timeout=TIMEOUT).json()["sha"]
    body = '{"key":"header","value":{"summary":"over quota"}}\n{"key":"file","value":{"path":"x.txt","content":"eA==","encoding":"base64"}}\n'
    r = requests.post(f"{hub.url}/api/models/alice/q/commit/main", data=body,
                      headers={**hf_headers(ALICE), "Content-Type": "application/x-ndjson"}, timeout=TIMEOUT)
    assert r.status_code == 429
    after = requests.get(f"{hub.url}/api/models/alice/q", headers=hf_headers(BOB), timeout=TIMEOUT).json()["sha"]
    assert after == before
    # The window resets on the clock.
    time.sleep(over.reset_in_seconds + 0.2)
    assert whoami(hub).status_code == 200


@pytest.mark.hub_flags("--resolve-quota", "2")
def test_huggingface_hub_waits_the_seconds_we_send(hub, tmp_path, caplog):
    from huggingface_hub import hf_hub_download

    caplog.set_level(logging.WARNING, logger="huggingface_hub")
    paths = regular_paths(hub)[:3]
    at_window_start(hub)
    started = time.monotonic()
    for path in paths:  # each download resolves once or more: the quota of 2 runs out
        local = hf_hub_download("alice/q", path, endpoint=hub.url, token=ALICE, cache_dir=str(tmp_path / "c"))
        want = next(e["sha256"] for e in hub.manifest if e["path"] == path)
        assert hubraw.sha256(open(local, "rb").read()) == want
    took = time.monotonic() - started
    waits = [r.getMessage() for r in caplog.records if "Rate limited. Waiting" in r.getMessage()]
    assert waits, f"the client never waited on a 429: {[r.getMessage() for r in caplog.records]}"
    # It slept t + 1 seconds for the t we sent (at most the window), and that time passed.
    seconds = [float(m.split("Waiting ")[1].split("s")[0]) for m in waits]
    assert all(2 <= s <= WINDOW + 1 for s in seconds), waits
    assert took >= sum(seconds) - 1, (took, waits)
    stats = requests.get(f"{hub.url}/_hubsim/stats", timeout=TIMEOUT).json()
    assert stats["requests"]["resolve"].get("429", 0) >= len(waits), stats["requests"]["resolve"]


def commit(hub, n: int, token=ALICE) -> requests.Response:
    lines = ['{"key":"header","value":{"summary":"n files"}}']
    lines += [f'{{"key":"file","value":{{"path":"c/{i}.txt","content":"eA==","encoding":"base64"}}}}' for i in range(n)]
    return requests.post(f"{hub.url}/api/models/alice/q/commit/main", data="\n".join(lines) + "\n",
                         headers={**hf_headers(token), "Content-Type": "application/x-ndjson"}, timeout=TIMEOUT)


@pytest.mark.hub_flags("--commit-op-cost", "150ms", "--commit-timeout", "1s")
def test_a_commit_takes_the_servers_time_and_one_past_its_timeout_fails_undone(hub):
    started = time.monotonic()
    assert commit(hub, 4).status_code == 200
    assert time.monotonic() - started >= 0.6, "4 operations at 150 ms each"
    sha = requests.get(f"{hub.url}/api/models/alice/q", headers=hf_headers(ALICE), timeout=TIMEOUT).json()["sha"]
    started = time.monotonic()
    r = commit(hub, 8)  # 1.2 s of work against a 1 s timeout
    assert r.status_code == 504, r.text
    assert 1.0 <= time.monotonic() - started < 5
    after = requests.get(f"{hub.url}/api/models/alice/q", headers=hf_headers(ALICE), timeout=TIMEOUT).json()["sha"]
    assert after == sha, "a timed-out commit changed the repo"


@pytest.mark.hub_flags("--commit-op-cost", "0ms")
def test_preupload_takes_256_files_a_call_and_huggingface_hub_batches_them(hub, tmp_path):
    files = [{"path": f"f{i}.txt", "size": 1, "sample": "eA=="} for i in range(257)]
    r = requests.post(f"{hub.url}/api/models/alice/q/preupload/main", json={"files": files},
                      headers=hf_headers(ALICE), timeout=TIMEOUT)
    assert r.status_code == 413 and "256" in r.text, r.text
    from huggingface_hub import HfApi

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"f{i}.txt").write_text(f"{i}\n")
    HfApi(endpoint=hub.url, token=ALICE).upload_folder(repo_id="alice/q", folder_path=folder, path_in_repo="many")
    tree = HfApi(endpoint=hub.url, token=ALICE).list_repo_files("alice/q")
    assert sum(1 for p in tree if p.startswith("many/")) == 300


def test_the_batch_api_refuses_objects_over_50_gb(hub):
    oid = "a" * 64
    for size, refused in [(50_000_000_000, False), (50_000_000_001, True)]:
        r = requests.post(f"{hub.url}/alice/q.git/info/lfs/objects/batch",
                          json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
                          headers={**hf_headers(ALICE), "Accept": "application/vnd.git-lfs+json",
                                   "Content-Type": "application/vnd.git-lfs+json"}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        obj = r.json()["objects"][0]
        assert ("error" in obj) == refused, obj
        if refused:
            assert obj["error"]["code"] == 413
