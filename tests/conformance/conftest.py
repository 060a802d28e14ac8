"""Session set-up for the hubsim conformance tests.

One Hugging Face flavoured hub is started for the whole session in `pytest_configure`, i.e. before any
test module is imported: `huggingface_hub` reads `HF_ENDPOINT`, `HF_HUB_DISABLE_XET`, `HF_HOME`, ... once,
at import time, so they must point at the session hub before the first `import huggingface_hub`.
Nothing in this file imports `huggingface_hub` at module level for that reason.

Other flavours (e.g. ModelScope, in `test_ms.py`) start their own hubs with `hubsim.start(...)` in
fixtures of their own module; the helpers below (`hub_log_tail`, the failure report section) are generic.

If hubsim cannot start, the session fails loudly (the exception propagates out of `pytest_configure`):
these tests never skip because the server is missing.
"""

from __future__ import annotations

import os
import re
import pathlib
import shutil
import sys
import tempfile
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import hubsim  # noqa: E402

# Environment variables that would make the client talk to something else than the session hub, use a
# token we did not choose, or use a cache we do not own.
_HF_ENV_TO_CLEAR = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_XET_CACHE",
    "HF_HUB_OFFLINE",
    "HF_ASSETS_CACHE",
    "HF_STORED_TOKENS_PATH",
)

# Hubs started by this conftest, keyed by flavour (only "hf" here). Sibling test files may start more.
_SESSION_HUBS: dict[str, hubsim.Hub] = {}
_HF_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _HF_HOME
    if "huggingface_hub" in sys.modules:
        raise RuntimeError(
            "huggingface_hub was imported before tests/conformance/conftest.py configured HF_ENDPOINT; "
            "its constants would point at the real Hub"
        )
    try:
        hub = hubsim.start("hf", "--multipart-threshold", "8MiB", "--part-size", "5MiB")
    except Exception as exc:  # noqa: BLE001 - re-raised with context, never swallowed
        raise RuntimeError(f"could not start the session hubsim (flavor hf): {exc}") from exc
    _SESSION_HUBS["hf"] = hub
    for name in _HF_ENV_TO_CLEAR:
        os.environ.pop(name, None)
    _HF_HOME = tempfile.mkdtemp(prefix="hubsim-hf-home-")
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HOME"] = _HF_HOME
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    config.addinivalue_line("markers", "hf: tests against the Hugging Face flavour of hubsim")
    config.addinivalue_line("markers", "hub_flags(*flags): extra `hubsim serve` flags for the test's own hub")


def pytest_unconfigure(config: pytest.Config) -> None:
    for flavor in list(_SESSION_HUBS):
        hubsim.cleanup(_SESSION_HUBS.pop(flavor))
    if _HF_HOME:
        shutil.rmtree(_HF_HOME, ignore_errors=True)


def hub_log_tail(hub: hubsim.Hub, lines: int = 60) -> str:
    return "".join(hub.log[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the tail of every session hub's log to failed tests: server bugs are easier to pin."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for flavor, hub in _SESSION_HUBS.items():
            alive = "running" if hub.proc.poll() is None else f"EXITED with {hub.proc.returncode}"
            report.sections.append((f"hubsim {flavor} log tail ({alive})", hub_log_tail(hub)))


# ----------------------------------------------------------------------------------------------------
# Fixtures for the Hugging Face flavour.


@pytest.fixture(scope="session")
def hf_hub() -> hubsim.Hub:
    """The session's Hugging Face flavoured hub (multipart threshold 8MiB, parts of 5MiB)."""
    hub = _SESSION_HUBS["hf"]
    assert hub.proc.poll() is None, f"session hubsim died:\n{hub_log_tail(hub)}"
    return hub


@pytest.fixture(scope="session")
def hf_api(hf_hub):
    """Factory: `hf_api(token)` -> `HfApi` bound to the session hub. `None` means anonymous."""
    from huggingface_hub import HfApi

    def make(token: str | None):
        return HfApi(endpoint=hf_hub.url, token=token if token is not None else False)

    return make


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """All test identities: name -> token (writers and readers)."""
    return {**hubsim.USERS, **hubsim.READ_USERS}


@pytest.fixture
def repo_name(request) -> str:
    """A repo name unique to this test (and this run)."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"
