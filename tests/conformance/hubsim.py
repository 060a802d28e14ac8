"""Start and stop real `hubsim` processes for the conformance tests.

Every test module gets hubs from here, so no test repeats the start-a-server dance. A hub is a
child process of the test session: `hubsim serve --port 0` prints its base URL as the first line
of stdout, which we read before handing the hub out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Test identities. Tokens are test data only; they never leave this machine.
USERS = {"alice": "hf_alice_write_token", "bob": "hf_bob_write_token"}
READ_USERS = {"carol": "hf_carol_read_token"}
ORGS = {"acme": ["alice"]}


def hubsim_bin() -> str:
    """Path of the hubsim binary: $HUBSIM_BIN, else the workspace's debug build."""
    explicit = os.environ.get("HUBSIM_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "hubsim"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("hubsim binary not found: run `cargo build -p hubsim` or set HUBSIM_BIN")


@dataclasses.dataclass
class Hub:
    """A running hubsim: its base URL, data directory and process."""

    url: str
    data: pathlib.Path
    proc: subprocess.Popen
    flavor: str
    log: list[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(flavor: str, *extra: str, data: pathlib.Path | None = None) -> Hub:
    """Start `hubsim serve --flavor FLAVOR` with the test users plus EXTRA flags."""
    data = data or pathlib.Path(tempfile.mkdtemp(prefix=f"hubsim-{flavor}-"))
    args = [hubsim_bin(), "serve", "--flavor", flavor, "--port", "0", "--data", str(data)]
    for name, token in USERS.items():
        args += ["--user", f"{name}={token}"]
    for name, token in READ_USERS.items():
        args += ["--read-user", f"{name}={token}"]
    for org, members in ORGS.items():
        args += ["--org", f"{org}={','.join(members)}"]
    args += list(extra)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        err = proc.stderr.read() if proc.poll() is not None else ""
        proc.kill()
        raise RuntimeError(f"hubsim did not print its URL (got {url!r}): {err}")
    log: list[str] = []

    def drain(stream) -> None:
        for line in stream:
            log.append(line)

    threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
    threading.Thread(target=drain, args=(proc.stdout,), daemon=True).start()
    return Hub(url=url, data=data, proc=proc, flavor=flavor, log=log)


def cleanup(hub: Hub) -> None:
    hub.stop()
    shutil.rmtree(hub.data, ignore_errors=True)


def seed(data: pathlib.Path, flavor: str, repo: str, *extra: str) -> list[dict]:
    """Run `hubsim seed` into DATA (a hub may be serving it) and return the manifest: one
    `{path, size, sha256, lfs}` per file."""
    with tempfile.TemporaryDirectory(prefix="hubsim-seed-") as tmp:
        manifest = pathlib.Path(tmp) / "manifest.json"
        args = [hubsim_bin(), "seed", "--flavor", flavor, "--data", str(data), "--repo", repo,
                "--manifest", str(manifest), *extra]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"hubsim seed failed ({proc.returncode}): {proc.stderr}")
        return json.loads(manifest.read_text())


# ----------------------------------------------------------------------------------------------------
# git helpers (flavour-independent): a git/git-lfs environment that ignores the machine's HOME, system
# config and credential helpers, so the tests behave the same on a fresh CI machine.

GIT_GLOBAL_CONFIG = """\
[filter "lfs"]
\tclean = git-lfs clean -- %f
\tsmudge = git-lfs smudge -- %f
\tprocess = git-lfs filter-process
\trequired = true
[init]
\tdefaultBranch = main
[lfs]
\tlocksverify = false
[core]
\tquotepath = false
"""


def git_env(home: pathlib.Path, token: str | None = None, username: str = "hubsim-test") -> dict[str, str]:
    """Environment for running git and git-lfs against a hub.

    `home` becomes HOME and holds the global config (the `git lfs install` filters, nothing else). With a
    `token`, HTTP Basic auth (any username, the token as password) is passed as `http.extraHeader` through
    GIT_CONFIG_COUNT/KEY/VALUE, never on a command line or in a URL; git-lfs honours it too. Prompts are
    disabled so a missing credential fails instead of hanging.
    """
    import base64

    home.mkdir(parents=True, exist_ok=True)
    config = home / "gitconfig"
    config.write_text(GIT_GLOBAL_CONFIG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k not in ("SSH_ASKPASS", "XDG_CONFIG_HOME", "GCM_INTERACTIVE")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_GLOBAL=str(config),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Hubsim Test",
        GIT_AUTHOR_EMAIL="hubsim-test@example.invalid",
        GIT_COMMITTER_NAME="Hubsim Test",
        GIT_COMMITTER_EMAIL="hubsim-test@example.invalid",
    )
    if token is not None:
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


def git(*args: str, cwd: pathlib.Path | str | None = None, env: dict[str, str], check: bool = True,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `git ARGS` (text mode, output captured); with `check`, fail with git's stderr on a non-zero exit."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc
