"""Retries: a run against an endpoint failing 10% of requests passes and leaks nothing."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import tigris_boto3_ext
from botocore.config import Config

from pytest_tigris.emulator import EmulatorProcess
from tests.inner import NO_RETRY_BACKOFF, Inner

SEED = "retry-seed"
INNER = """
import pytest


@pytest.mark.parametrize("n", range(100))
def test_fork(tigris_fork, n):
    s3, name = tigris_fork.client, tigris_fork.name
    assert s3.get_object(Bucket=name, Key="seed.txt")["Body"].read() == b"seed"
    s3.put_object(Bucket=name, Key="seed.txt", Body=b"mine")
    s3.put_object(Bucket=name, Key=f"own-{n}", Body=b"x")
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"])
    assert listed == sorted(["seed.txt", "data/a.bin", f"own-{n}"])
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_hundred_forks_pass_with_ten_percent_faults(
    pytester: pytest.Pytester, inner: Inner, tmp_path: Path, workers: int
) -> None:
    seed_dir = tmp_path / "seed"
    (seed_dir / "data").mkdir(parents=True)
    (seed_dir / "seed.txt").write_bytes(b"seed")
    (seed_dir / "data" / "a.bin").write_bytes(b"\x00")
    # 4% 503 SlowDown, 4% 500 before doing anything, 2% 500 after doing it (a CreateBucket or
    # DeleteBucket that happened although the client saw an error).
    faults = "slowdown=0.04,error=0.04,late=0.02,seed=11"
    with EmulatorProcess(seed=SEED, seed_dir=seed_dir, faults=faults) as emulator:
        inner.setenv(AWS_ENDPOINT_URL_S3=emulator.endpoint_url)
        inner.setenv(AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
        pytester.makeconftest(NO_RETRY_BACKOFF)
        pytester.makepyfile(test_inner=INNER)
        result = inner.run("--tigris-seed", SEED, n=workers)
        result.assert_outcomes(passed=100)
        assert result.fork_summary() == (100, 100, 0, 0)

        # The endpoint still injects faults: check with a patient client.
        client = boto3.client(
            "s3",
            endpoint_url=emulator.endpoint_url,
            region_name="auto",
            aws_access_key_id="k",
            aws_secret_access_key="s",
            config=Config(retries={"mode": "standard", "max_attempts": 10}),
        )
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == [SEED]
        assert _forks_of(client, SEED) == []


def _forks_of(client: object, seed: str) -> list[object]:
    """The seed's live forks. tigris-boto3-ext sends this listing without botocore's retries,
    and the endpoint still fails one request in ten: retry the injected 5xx answers."""
    from tigris_boto3_ext._transport import TigrisAPIError

    for _ in range(20):
        try:
            return list(tigris_boto3_ext.list_forks(client, seed)["buckets"])
        except TigrisAPIError as exc:
            if "(injected)" not in str(exc):
                raise
    raise AssertionError("20 fork listings in a row failed: faults are 10% of requests")
