"""Fault injection: ``--faults`` / ``PYTEST_TIGRIS_EMULATOR_FAULTS`` answers a fraction of
requests 503 ``SlowDown`` or 500 ``InternalError``, the way a busy real endpoint does.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pytest_tigris.cli import FAULTS_ENV
from pytest_tigris.emulator import EmulatorProcess

SPEC = "slowdown=0.3,error=0.2,seed=7"
CALLS = 100


def _client(endpoint_url: str, **retries: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="auto",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", **retries}),
    )


def _single_shot_client(endpoint_url: str) -> Any:
    # Config(retries={"max_attempts": 1}) still allows one retry ("max_attempts" counts retries
    # after the first request); total_max_attempts=1 really sends each request once.
    return _client(endpoint_url, total_max_attempts=1)


def _retrying_client(endpoint_url: str) -> Any:
    return _client(endpoint_url, max_attempts=10)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Standard retries sleep up to seconds between attempts; what is under test is that the
    # injected errors are retryable, not botocore's timing.
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh emulator with SPEC: the seeded sequence of faults starts from the beginning."""
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    with EmulatorProcess(faults=SPEC) as process:
        yield process.endpoint_url


@pytest.fixture
def faulty_bucket(faulty: str) -> str:
    name = f"faults-{uuid.uuid4().hex[:10]}"
    _retrying_client(faulty).create_bucket(Bucket=name)
    return name


def _outcome(call: Any, **kwargs: Any) -> tuple[int, str]:
    """(HTTP status, error code) of one call; (200, "") when it succeeds."""
    try:
        call(**kwargs)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]
    return 200, ""


def test_fault_proportions_without_retries(faulty: str, faulty_bucket: str) -> None:
    s3 = _single_shot_client(faulty)
    outcomes = Counter(
        status
        for status, _ in (_outcome(s3.head_bucket, Bucket=faulty_bucket) for _ in range(CALLS))
    )
    # 30 % / 20 % / 50 % asked for; the seeded sequence of a fresh emulator gives exactly these.
    assert outcomes == Counter({503: 35, 500: 20, 200: 45}), outcomes


def test_fault_error_codes(faulty: str, faulty_bucket: str) -> None:
    """GET responses carry the S3 error document: SlowDown and InternalError codes."""
    s3 = _single_shot_client(faulty)
    outcomes = Counter(
        _outcome(s3.list_objects_v2, Bucket=faulty_bucket) for _ in range(CALLS // 2)
    )
    expected = {(503, "SlowDown"): 19, (500, "InternalError"): 10, (200, ""): 21}
    assert outcomes == Counter(expected), outcomes


def test_standard_retries_absorb_every_fault(faulty: str, faulty_bucket: str) -> None:
    # Each call fails outright only after 11 faults in a row (1 in 2048 at this rate). The seeded
    # sequence of SPEC has such a run at its 125th roll; these 41 calls use about 91.
    s3 = _retrying_client(faulty)
    retried = 0
    for n in range(20):
        response = s3.head_bucket(Bucket=faulty_bucket)
        retried += response["ResponseMetadata"]["RetryAttempts"]
        response = s3.put_object(Bucket=faulty_bucket, Key=f"k{n}", Body=b"x")
        retried += response["ResponseMetadata"]["RetryAttempts"]
    assert retried == 48, "not the retries the seeded faults call for"
    assert s3.list_objects_v2(Bucket=faulty_bucket)["KeyCount"] == 20


def test_seed_makes_faults_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    runs = []
    for _ in range(2):
        with EmulatorProcess(faults=SPEC) as process:
            s3 = _single_shot_client(process.endpoint_url)
            runs.append([_outcome(s3.list_buckets) for _ in range(30)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3, runs[0]


def test_injected_create_bucket_failure_creates_nothing(faulty: str) -> None:
    s3 = _single_shot_client(faulty)
    outcomes: Counter[tuple[int, str]] = Counter()
    failed: list[str] = []
    created: list[str] = []
    for _ in range(30):
        name = f"faults-cb-{uuid.uuid4().hex[:10]}"
        status, code = _outcome(s3.create_bucket, Bucket=name)
        outcomes[status, code] += 1
        (created if status == 200 else failed).append(name)
    # What the seeded sequence of a fresh emulator gives.
    expected = {(503, "SlowDown"): 13, (500, "InternalError"): 6, (200, ""): 11}
    assert outcomes == Counter(expected), outcomes
    existing = {b["Name"] for b in _retrying_client(faulty).list_buckets()["Buckets"]}
    assert existing == set(created)
    assert not set(failed) & existing


def test_no_faults_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    with EmulatorProcess() as process:
        s3 = _single_shot_client(process.endpoint_url)
        s3.create_bucket(Bucket="no-faults")
        outcomes = Counter(_outcome(s3.head_bucket, Bucket="no-faults") for _ in range(200))
    assert outcomes == Counter({(200, ""): 200})


def test_faults_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULTS_ENV, "error=1")
    with EmulatorProcess() as process:
        s3 = _single_shot_client(process.endpoint_url)
        outcomes = Counter(_outcome(s3.list_buckets) for _ in range(10))
    assert outcomes == Counter({(500, "InternalError"): 10})


def test_faults_option_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULTS_ENV, "error=1")
    with EmulatorProcess(faults="slowdown=1") as process:
        s3 = _single_shot_client(process.endpoint_url)
        outcomes = Counter(_outcome(s3.list_buckets) for _ in range(10))
    assert outcomes == Counter({(503, "SlowDown"): 10})
