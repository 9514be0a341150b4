"""The plugin's boto3-free control client against an emulator that checks signatures."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pytest_tigris.control import ControlClient
from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, SEED_FILES, body, make_client, snapshot

KEY, SECRET = "control-key", "control-secret-0123456789"


@pytest.fixture(scope="module")
def signed_emulator(
    seed_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    """An emulator that verifies SigV4 with KEY/SECRET, dropping idle connections after 1 s."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTEST_TIGRIS_EMULATOR_SOCKET_TIMEOUT", "1")
    try:
        with EmulatorProcess(
            seed=SEED, seed_dir=seed_dir, access_key=KEY, secret_key=SECRET
        ) as process:
            yield process
    finally:
        mp.undo()


@pytest.fixture
def control(signed_emulator: EmulatorProcess) -> ControlClient:
    return ControlClient(signed_emulator.endpoint_url, KEY, SECRET)


@pytest.fixture
def s3(signed_emulator: EmulatorProcess) -> Any:
    return make_client(
        signed_emulator.endpoint_url, aws_access_key_id=KEY, aws_secret_access_key=SECRET
    )


def test_a_fork_made_and_force_deleted_without_boto3(control: ControlClient, s3: Any) -> None:
    answer = control.create_fork("control-fork-1", SEED)

    metadata = answer["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == 200
    assert metadata["HTTPHeaders"]["x-tigris-snapshot-version"]
    head = s3.head_bucket(Bucket="control-fork-1")["ResponseMetadata"]["HTTPHeaders"]
    assert head["x-tigris-fork-source-bucket"] == SEED
    assert body(s3, "control-fork-1", "docs/readme.txt") == SEED_FILES["docs/readme.txt"]
    s3.put_object(Bucket="control-fork-1", Key="new.txt", Body=b"x")

    control.force_delete("control-fork-1")  # objects and all

    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "control-fork-1" not in names
    assert SEED in names


def test_a_fork_at_a_snapshot(control: ControlClient, s3: Any) -> None:
    control.create_fork("control-snap-src", SEED)
    version = snapshot(s3, "control-snap-src")
    s3.put_object(Bucket="control-snap-src", Key="later.txt", Body=b"later")

    control.create_fork("control-snap-child", "control-snap-src", version)

    child = {o["Key"] for o in s3.list_objects_v2(Bucket="control-snap-child")["Contents"]}
    assert child == set(SEED_FILES)
    control.force_delete("control-snap-child")
    control.force_delete("control-snap-src")


def test_errors_are_botocores_with_the_s3_code(control: ControlClient) -> None:
    with pytest.raises(ClientError) as missing:
        control.force_delete("control-never-made")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert missing.value.operation_name == "DeleteBucket"

    with pytest.raises(ClientError) as no_source:
        control.create_fork("control-orphan", "control-no-such-seed")
    assert no_source.value.response["Error"]["Code"] == "NoSuchBucket"

    control.create_fork("control-twice", SEED)
    with pytest.raises(ClientError) as taken:
        control.create_fork("control-twice", SEED)
    assert taken.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    assert taken.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    control.force_delete("control-twice")


def test_a_wrong_secret_is_refused(signed_emulator: EmulatorProcess) -> None:
    wrong = ControlClient(signed_emulator.endpoint_url, KEY, "not-the-secret")

    with pytest.raises(ClientError) as refused:
        wrong.create_fork("control-unsigned", SEED)

    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_connection_the_server_closed_is_replaced(control: ControlClient, s3: Any) -> None:
    control.create_fork("control-idle", SEED)
    time.sleep(1.5)  # the emulator drops the idle keep-alive connection after 1 s

    control.force_delete("control-idle")  # sent again on a new connection

    assert "control-idle" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_an_endpoint_that_is_gone_is_botocores_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = ControlClient(f"http://127.0.0.1:{port}", KEY, SECRET, timeout=2)

    with pytest.raises(EndpointConnectionError):
        gone.force_delete("control-anything")


def test_only_plain_http_endpoints() -> None:
    with pytest.raises(ValueError, match="http://"):
        ControlClient("https://t3.storage.dev", KEY, SECRET)
