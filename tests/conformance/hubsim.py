"""Start and stop real `hubsim` processes for the conformance tests.

Every test module gets hubs from here, so no test repeats the start-a-server dance. A hub is a
child process of the test session: `hubsim serve --port 0` prints its base URL as the first line
of stdout, which we read before handing the hub out.
"""

from __future__ import annotations

import dataclasses
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
