"""The AWS CLI (``aws s3 ...``) against the emulator, on forks of the seed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tigris_boto3_ext as tx

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, SEED_FILES, body, keys

AWS = shutil.which("aws")
if AWS is None:
    pytest.skip("the aws command is not installed (pip install awscli)", allow_module_level=True)

Aws = Callable[..., str]


@pytest.fixture
def aws(emulator: EmulatorProcess, tmp_path: Path) -> Aws:
    """Run ``aws <args> --endpoint-url ...``, isolated from the host's AWS configuration."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "auto",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_PAGER": "",
    }
    # pyenv shims find their interpreter through these.
    env.update({k: v for k, v in os.environ.items() if k.startswith("PYENV")})

    def run(*args: str) -> str:
        assert AWS is not None
        command = [AWS, *args, "--endpoint-url", emulator.endpoint_url]
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture
def fork(s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    """A fork of the seed, made with tigris-boto3-ext, force-deleted afterwards."""
    name = unique("cli")
    tx.create_fork(s3, name, SEED)
    yield name
    tx.force_delete_bucket(s3, name)


@pytest.fixture(autouse=True)
def seed_untouched(s3: Any) -> Iterator[None]:
    yield
    assert {key: body(s3, SEED, key) for key in keys(s3, SEED)} == SEED_FILES


def contents(s3: Any, bucket: str) -> dict[str, bytes]:
    return {key: body(s3, bucket, key) for key in keys(s3, bucket)}


def test_ls_buckets(aws: Aws, fork: str) -> None:
    listed = [line.split()[-1] for line in aws("s3", "ls").splitlines()]
    assert SEED in listed
    assert fork in listed


def test_ls_bucket(aws: Aws, fork: str) -> None:
    top = aws("s3", "ls", f"s3://{fork}").splitlines()
    assert sorted(line.split()[-1] for line in top) == ["docs/", "images/", "manifest.json"]
    assert any(line.split() == ["PRE", "images/"] for line in top)

    recursive = aws("s3", "ls", f"s3://{fork}", "--recursive").splitlines()
    sizes = {line.split()[-1]: int(line.split()[-2]) for line in recursive}
    assert sizes == {key: len(data) for key, data in SEED_FILES.items()}


def test_cp_up_and_down(aws: Aws, s3: Any, fork: str, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"uploaded by the aws cli\n")
    # Above the CLI's 8 MiB threshold, so this goes up as a multipart upload.
    large = tmp_path / "large.bin"
    large_data = os.urandom(9 * 1024 * 1024 + 17)
    large.write_bytes(large_data)

    aws("s3", "cp", str(small), f"s3://{fork}/uploads/small.txt")
    aws("s3", "cp", str(large), f"s3://{fork}/uploads/large.bin")
    assert body(s3, fork, "uploads/small.txt") == b"uploaded by the aws cli\n"
    assert body(s3, fork, "uploads/large.bin") == large_data

    down = tmp_path / "down"
    aws("s3", "cp", f"s3://{fork}/images/cat.png", str(down / "cat.png"))
    aws("s3", "cp", f"s3://{fork}/uploads/large.bin", str(down / "large.bin"))
    assert (down / "cat.png").read_bytes() == SEED_FILES["images/cat.png"]
    assert (down / "large.bin").read_bytes() == large_data
    assert keys(s3, fork) == sorted([*SEED_FILES, "uploads/large.bin", "uploads/small.txt"])


def test_sync_into_a_fork_and_back(aws: Aws, s3: Any, fork: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "images").mkdir(parents=True)
    (local / "new").mkdir()
    (local / "manifest.json").write_bytes(b'{"images": ["cat.png", "bird.png"], "v": 2}')
    (local / "images" / "cat.png").write_bytes(SEED_FILES["images/cat.png"])
    (local / "images" / "bird.png").write_bytes(b"\x89PNG-bird" * 50)
    (local / "new" / "notes.txt").write_bytes(b"notes\n")
    # S3 LastModified has whole seconds; files older than the upload keep `sync` idempotent.
    an_hour_ago = time.time() - 3600
    for path in local.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))

    aws("s3", "sync", str(local), f"s3://{fork}", "--delete")
    expected = {
        "manifest.json": b'{"images": ["cat.png", "bird.png"], "v": 2}',
        "images/cat.png": SEED_FILES["images/cat.png"],
        "images/bird.png": b"\x89PNG-bird" * 50,
        "new/notes.txt": b"notes\n",
    }
    assert contents(s3, fork) == expected

    back = tmp_path / "back"
    aws("s3", "sync", f"s3://{fork}", str(back))
    pulled = {
        path.relative_to(back).as_posix(): path.read_bytes()
        for path in back.rglob("*")
        if path.is_file()
    }
    assert pulled == expected

    # A second sync finds nothing to do.
    assert aws("s3", "sync", str(local), f"s3://{fork}", "--delete").strip() == ""


def test_rm(aws: Aws, s3: Any, fork: str) -> None:
    aws("s3", "rm", f"s3://{fork}/manifest.json")
    assert keys(s3, fork) == sorted(k for k in SEED_FILES if k != "manifest.json")
    aws("s3", "rm", f"s3://{fork}/images", "--recursive")
    assert keys(s3, fork) == ["docs/readme.txt"]
    assert body(s3, fork, "docs/readme.txt") == SEED_FILES["docs/readme.txt"]
