"""``--tigris-fork-mode=copy``: isolated forks on plain S3 (here, moto's own server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import body, keys
from tests.inner import Inner

SEED = "plain-seed"


def make_client(url: str) -> Any:
    """Plain S3 wants a real region (moto refuses "auto")."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


FILES = {f"data/{i:03d}.txt": f"seed-{i}".encode() for i in range(40)}
INNER = """
import pytest


@pytest.mark.parametrize("n", range(8))
def test_isolated(tigris_fork, n):
    s3, name = tigris_fork.client, tigris_fork.name
    assert tigris_fork.snapshot is None
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"])
    assert listed == [f"data/{i:03d}.txt" for i in range(40)]
    s3.put_object(Bucket=name, Key="data/000.txt", Body=f"mine-{n}".encode())
    s3.delete_object(Bucket=name, Key="data/001.txt")
    assert tigris_fork.changes().modified == ["data/000.txt"]
    assert tigris_fork.changes().deleted == ["data/001.txt"]
"""


@pytest.fixture(scope="module")
def plain_s3() -> Iterator[str]:
    """moto's plain S3 server: it ignores every Tigris header."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                make_client(url).list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        s3 = make_client(url)
        s3.create_bucket(Bucket=SEED)
        for key, data in FILES.items():
            s3.put_object(Bucket=SEED, Key=key, Body=data)
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("workers", [0, 2])
def test_copy_mode_isolates_tests_on_plain_s3(
    pytester: pytest.Pytester, inner: Inner, plain_s3: str, workers: int
) -> None:
    inner.setenv(AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="us-east-1")
    pytester.makepyfile(test_inner=INNER)
    args = ["--tigris-endpoint", plain_s3, "--tigris-seed", SEED, "--tigris-fork-mode", "copy"]
    result = inner.run(*args, n=workers)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*8 created, 8 deleted, 0 kept, 0 leaked*"])
    s3 = make_client(plain_s3)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [SEED]
    assert {key: body(s3, SEED, key) for key in keys(s3, SEED)} == FILES


def test_native_mode_on_plain_s3_fails_loudly(
    pytester: pytest.Pytester, inner: Inner, plain_s3: str
) -> None:
    inner.setenv(AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="us-east-1")
    pytester.makepyfile(test_inner=INNER)
    result = inner.run("--tigris-endpoint", plain_s3, "--tigris-seed", SEED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*does not speak Tigris*cannot fork buckets*fork-mode=copy*"])
    assert "Traceback" not in str(result.stdout) + str(result.stderr)
    s3 = make_client(plain_s3)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [SEED]
