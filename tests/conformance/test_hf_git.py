"""git / git-lfs over smart HTTP against hubsim's Hugging Face flavour (shared/protocols/huggingface.md §10).

Credentials travel only through the environment (`http.extraHeader` via GIT_CONFIG_COUNT/KEY/VALUE),
never on a command line or in a URL; git runs with a throw-away global config holding the `git lfs install`
filters, so nothing depends on the machine's HOME or on someone having run `git lfs install`.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import pytest

import hubsim
from hubsim import git, git_env
from huggingface_hub.errors import RepositoryNotFoundError

ALICE = hubsim.USERS["alice"]
BOB = hubsim.USERS["bob"]
CAROL = hubsim.READ_USERS["carol"]
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n".encode()


def sample_files() -> dict[str, bytes]:
    return {
        "README.md": b"# git conformance\n",
        "config.json": b'{"a": 1}\n',
        "empty.txt": b"",
        "dir with space/\u00fcn\u00ef c\u00f8d\u00e9 [1].txt": "unicode \u2713\n".encode(),
        "nested/deep/x.txt": b"x\n",
        "weights/model.safetensors": os.urandom(300_000),
        "data/blob.bin": os.urandom(4000),
    }


def upload(api, repo_id: str, tmp_path: pathlib.Path, files: dict[str, bytes], repo_type: str | None = None):
    folder = tmp_path / f"src-{os.urandom(4).hex()}"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type)


def assert_worktree(clone: pathlib.Path, files: dict[str, bytes], pointers_for_lfs: bool = False) -> None:
    for rel, data in files.items():
        p = clone / rel
        assert p.is_file(), rel
        got = p.read_bytes()
        if pointers_for_lfs and rel.endswith((".bin", ".safetensors")):
            assert got == lfs_pointer(data), rel
        else:
            assert sha256(got) == sha256(data), rel


@pytest.fixture
def alice(hf_api):
    return hf_api(ALICE)


@pytest.fixture
def anon(hf_api):
    return hf_api(None)


def test_clone_skip_smudge_then_lfs_pull(hf_hub, alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, private=True)  # private: the token is really needed, for git and for LFS
    files = sample_files()
    commit = upload(alice, repo_id, tmp_path, files)

    env = git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    git("clone", f"{hf_hub.url}/{repo_id}", str(clone), env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})

    # Pointers only, regular files complete; history is the Hub's.
    assert_worktree(clone, files, pointers_for_lfs=True)
    assert git("rev-parse", "HEAD", cwd=clone, env=env).stdout.strip() == commit.oid
    titles = git("log", "--format=%s", cwd=clone, env=env).stdout.splitlines()
    assert titles[-1] == "initial commit" and len(titles) == 2
    assert git("symbolic-ref", "--short", "HEAD", cwd=clone, env=env).stdout.strip() == "main"

    git("lfs", "pull", cwd=clone, env=env)
    assert_worktree(clone, files)
    assert git("status", "--porcelain", cwd=clone, env=env).stdout == ""


@pytest.mark.parametrize("repo_type,suffix", [("model", ".git"), ("dataset", ""), ("dataset", ".git"),
                                              ("space", "")])
def test_anonymous_clone_of_public_repo(hf_hub, alice, repo_name, tmp_path, repo_type, suffix):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, repo_type=repo_type, **({"space_sdk": "static"} if repo_type == "space" else {}))
    files = {"index.html": b"<p>hi</p>\n", "data/train.bin": os.urandom(2000), "sub dir/a.txt": b"a\n"}
    upload(alice, repo_id, tmp_path, files, repo_type=repo_type)

    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    env = git_env(tmp_path / "home")  # no credentials at all
    clone = tmp_path / "clone"
    git("clone", f"{hf_hub.url}/{prefix}{repo_id}{suffix}", str(clone), env=env)  # smudge: LFS during checkout
    assert_worktree(clone, files)


def test_private_clone_requires_credentials(hf_hub, alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id, private=True)
    upload(alice, repo_id, tmp_path, {"secret.txt": b"secret\n"})
    url = f"{hf_hub.url}/{repo_id}"

    for who, token in (("anonymous", None), ("bob", BOB), ("carol", CAROL), ("bad", "hf_not_a_token")):
        env = git_env(tmp_path / f"home-{who}", token)
        target = tmp_path / f"clone-{who}"
        proc = git("clone", url, str(target), env=env, check=False, timeout=60)
        assert proc.returncode != 0, f"{who} could clone a private repo"
        assert not (target / "secret.txt").exists()

    ok = tmp_path / "clone-alice"
    git("clone", url, str(ok), env=git_env(tmp_path / "home-alice", ALICE))
    assert (ok / "secret.txt").read_bytes() == b"secret\n"


def test_gated_clone_needs_access(hf_hub, alice, repo_name, tmp_path):
    """git reads a gated repo only for its namespace's members and users granted access."""
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    upload(alice, repo_id, tmp_path, {"gated.txt": b"gated\n"})
    alice.update_repo_settings(repo_id, gated="manual")
    url = f"{hf_hub.url}/{repo_id}"
    for who, token in (("anonymous", None), ("bob", BOB)):
        target = tmp_path / f"clone-{who}"
        proc = git("clone", url, str(target), env=git_env(tmp_path / f"home-{who}", token), check=False, timeout=60)
        assert proc.returncode != 0, f"{who} cloned a gated repo"
        assert not (target / "gated.txt").exists()
    alice.grant_access(repo_id, "bob")
    ok = tmp_path / "clone-bob-granted"
    git("clone", url, str(ok), env=git_env(tmp_path / "home-bob2", BOB))
    assert (ok / "gated.txt").read_bytes() == b"gated\n"


def test_push_new_lfs_file_is_visible_through_api(hf_hub, alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    files = sample_files()
    upload(alice, repo_id, tmp_path, files)

    env = git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    git("clone", f"{hf_hub.url}/{repo_id}", str(clone), env=env)
    assert_worktree(clone, files)

    new_lfs = os.urandom(700_000)
    (clone / "pushed").mkdir()
    (clone / "pushed" / "tensor.dat").write_bytes(new_lfs)  # *.dat is not in the default .gitattributes
    (clone / "pushed" / "notes.txt").write_bytes(b"pushed with git\n")
    git("lfs", "track", "*.dat", cwd=clone, env=env)
    git("add", ".gitattributes", "pushed", cwd=clone, env=env)
    staged = git("show", ":pushed/tensor.dat", cwd=clone, env=env).stdout.encode()
    assert staged == lfs_pointer(new_lfs)  # the clean filter ran: git stores a pointer
    git("commit", "-q", "-m", "push an LFS file with git", cwd=clone, env=env)
    head = git("rev-parse", "HEAD", cwd=clone, env=env).stdout.strip()
    git("push", "origin", "main", cwd=clone, env=env)

    # The pushed commit is the repo's head, unchanged.
    info = alice.repo_info(repo_id, files_metadata=True)
    assert info.sha == head
    meta = {s.rfilename: s for s in info.siblings}
    assert meta["pushed/tensor.dat"].lfs is not None
    assert meta["pushed/tensor.dat"].lfs.sha256 == sha256(new_lfs)
    assert meta["pushed/tensor.dat"].size == len(new_lfs)
    assert meta["pushed/notes.txt"].lfs is None
    assert {"pushed/tensor.dat", "pushed/notes.txt", *files} <= set(alice.list_repo_files(repo_id))
    assert alice.list_repo_commits(repo_id)[0].title == "push an LFS file with git"

    got = anon.hf_hub_download(repo_id, "pushed/tensor.dat", cache_dir=tmp_path / "cache")
    assert sha256(pathlib.Path(got).read_bytes()) == sha256(new_lfs)
    got = anon.hf_hub_download(repo_id, ".gitattributes", cache_dir=tmp_path / "cache")
    assert "*.dat filter=lfs diff=lfs merge=lfs -text" in pathlib.Path(got).read_text().splitlines()

    # A second, independent clone gets the pushed LFS content back.
    again = tmp_path / "again"
    git("clone", f"{hf_hub.url}/{repo_id}", str(again), env=env)
    assert sha256((again / "pushed" / "tensor.dat").read_bytes()) == sha256(new_lfs)


def test_push_new_branch(hf_hub, alice, anon, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    upload(alice, repo_id, tmp_path, {"a.txt": b"a\n"})
    env = git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    git("clone", f"{hf_hub.url}/{repo_id}", str(clone), env=env)
    git("checkout", "-q", "-b", "feature", cwd=clone, env=env)
    (clone / "feature.bin").write_bytes(data := os.urandom(1500))  # *.bin: LFS by the default rules
    git("add", "feature.bin", cwd=clone, env=env)
    git("commit", "-q", "-m", "feature work", cwd=clone, env=env)
    head = git("rev-parse", "HEAD", cwd=clone, env=env).stdout.strip()
    git("push", "origin", "feature", cwd=clone, env=env)

    branches = {b.name: b.target_commit for b in alice.list_repo_refs(repo_id).branches}
    assert branches["feature"] == head
    assert branches["main"] != head
    assert "feature.bin" not in alice.list_repo_files(repo_id)
    got = anon.hf_hub_download(repo_id, "feature.bin", revision="feature", cache_dir=tmp_path / "c")
    assert pathlib.Path(got).read_bytes() == data


def test_push_denied_without_write_access(hf_hub, alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    upload(alice, repo_id, tmp_path, {"a.txt": b"a\n"})
    before = alice.repo_info(repo_id).sha

    clone = tmp_path / "clone"
    anon_env = git_env(tmp_path / "home-anon")
    git("clone", f"{hf_hub.url}/{repo_id}", str(clone), env=anon_env)
    # A regular file only: git-receive-pack itself must refuse (LFS batch refusals are in test_hf.py).
    (clone / "intruder.txt").write_bytes(b"should not land\n")
    git("add", ".", cwd=clone, env=anon_env)
    git("commit", "-q", "-m", "intrusion", cwd=clone, env=anon_env)

    for who, token in (("anonymous", None), ("bob", BOB), ("carol", CAROL)):
        env = git_env(tmp_path / f"home-{who}", token)
        proc = git("push", "origin", "main", cwd=clone, env=env, check=False, timeout=60)
        assert proc.returncode != 0, f"{who} could push to alice's repo"

    assert alice.repo_info(repo_id).sha == before
    assert "intruder.txt" not in alice.list_repo_files(repo_id)


def test_push_rejects_large_file_not_in_lfs(hf_hub, alice, repo_name, tmp_path):
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    before = alice.repo_info(repo_id).sha
    env = git_env(tmp_path / "home", ALICE)
    clone = tmp_path / "clone"
    git("clone", f"{hf_hub.url}/{repo_id}", str(clone), env=env)
    (clone / "huge.txt").write_bytes(b"y" * (10 * MiB + 1))  # not matched by any LFS rule
    git("add", "huge.txt", cwd=clone, env=env)
    git("commit", "-q", "-m", "too big for git", cwd=clone, env=env)
    proc = git("push", "origin", "main", cwd=clone, env=env, check=False)
    assert proc.returncode != 0, "a >10MiB non-LFS file was accepted"
    assert alice.repo_info(repo_id).sha == before


def test_clone_of_missing_repo_fails(hf_hub, alice, repo_name, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info(f"alice/{repo_name}")
    proc = git("clone", f"{hf_hub.url}/alice/{repo_name}", str(tmp_path / "c"),
               env=git_env(tmp_path / "home", ALICE), check=False, timeout=60)
    assert proc.returncode != 0
