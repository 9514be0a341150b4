"""Messages from code the plugin shares with the CLI and library users name what the caller
set: the pytest options by default, the caller's own words when it passes them.

A populate-seed hook's exception keeps its whole message, on one line.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pytest_tigris.backend import hook_failure
from pytest_tigris.cli import main
from pytest_tigris.client import check_reachable
from pytest_tigris.exceptions import TigrisConfigError, TigrisEndpointError, TigrisSeedError
from pytest_tigris.janitor import ForkJanitor
from pytest_tigris.s3calls import describe_client_error

CLI_ENDPOINT = "--endpoint / AWS_ENDPOINT_URL_S3"
PLUGIN_ENDPOINT = "--tigris-endpoint / AWS_ENDPOINT_URL_S3"


@pytest.fixture
def refused() -> str:
    """An endpoint URL nothing listens at (a port just bound and closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No AWS or pytest-tigris variables, and no ``.env.local`` (in a folder of its own)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "PYTEST_TIGRIS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


class FakeS3:
    """A client whose HeadBucket answers ``status`` with ``headers`` (an error from 300 on)."""

    def __init__(self, status: int = 404, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}

    def head_bucket(self, Bucket: str) -> dict[str, Any]:
        meta = {"HTTPStatusCode": self.status, "HTTPHeaders": self.headers}
        if self.status < 300:
            return {"ResponseMetadata": meta}
        error = {"Error": {"Code": str(self.status), "Message": ""}, "ResponseMetadata": meta}
        raise ClientError(error, "HeadBucket")  # type: ignore[arg-type]


def janitor(client: FakeS3, **kwargs: Any) -> ForkJanitor:
    return ForkJanitor(lambda: client, "http://s3.example", **kwargs)


# -- the endpoint ---------------------------------------------------------------------------
def test_a_refused_connection_names_the_plugins_options_by_default(refused: str) -> None:
    with pytest.raises(TigrisEndpointError) as caught:
        check_reachable(refused)
    assert str(caught.value) == (
        f"Connection refused by {refused}: check {PLUGIN_ENDPOINT} and that the server is running"
    )


def test_a_refused_connection_names_what_the_caller_says(refused: str) -> None:
    with pytest.raises(TigrisEndpointError) as caught:
        check_reachable(refused, hint=CLI_ENDPOINT)
    assert str(caught.value) == (
        f"Connection refused by {refused}: check {CLI_ENDPOINT} and that the server is running"
    )


def test_an_unreachable_host_names_what_the_caller_says(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> socket.socket:
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    url = "http://192.0.2.1:9"
    with pytest.raises(TigrisEndpointError) as caught:
        check_reachable(url, hint=CLI_ENDPOINT)
    assert str(caught.value) == (
        f"cannot reach {url} (No route to host): check {CLI_ENDPOINT} and your network"
    )


def test_botocores_connection_error_names_what_the_caller_says(refused: str) -> None:
    exc = EndpointConnectionError(endpoint_url=refused)
    plugin = describe_client_error(exc, refused)
    cli = describe_client_error(exc, refused, hint=CLI_ENDPOINT)
    assert str(plugin) == (
        f"Connection refused by {refused}: check {PLUGIN_ENDPOINT} and that the server is running"
    )
    assert str(cli) == (
        f"Connection refused by {refused}: check {CLI_ENDPOINT} and that the server is running"
    )


def test_a_janitor_names_the_endpoint_setting_it_was_given(refused: str) -> None:
    exc = EndpointConnectionError(endpoint_url=refused)
    assert f"check {PLUGIN_ENDPOINT} " in str(janitor(FakeS3()).describe(exc))
    described = str(janitor(FakeS3(), endpoint_hint=CLI_ENDPOINT).describe(exc))
    assert f"check {CLI_ENDPOINT} " in described and "--tigris" not in described


def test_an_endpoint_that_is_not_tigris_is_fixed_the_callers_way() -> None:
    plain = FakeS3(200, headers={"x-amz-request-id": "1"})
    with pytest.raises(TigrisEndpointError) as plugin:
        janitor(plain).check_seed("seed")
    with pytest.raises(TigrisEndpointError) as cli:
        janitor(plain, endpoint_hint=CLI_ENDPOINT).check_seed("seed")
    start = (
        "http://s3.example does not speak Tigris (HeadBucket has no X-Tigris-Enable-Snapshot "
        "header): it cannot fork buckets; "
    )
    assert str(plugin.value) == start + (
        "point --tigris-endpoint at Tigris (https://t3.storage.dev), use the emulator, or use "
        "--tigris-fork-mode=copy (slow)"
    )
    assert str(cli.value) == start + f"point {CLI_ENDPOINT} at Tigris (https://t3.storage.dev)"


def test_an_endpoint_that_is_not_s3_is_fixed_the_callers_way() -> None:
    web_page = FakeS3(404, headers={"content-type": "text/html"})
    with pytest.raises(TigrisEndpointError) as plugin:
        janitor(web_page).check_seed("seed")
    with pytest.raises(TigrisEndpointError) as cli:
        janitor(web_page, endpoint_hint=CLI_ENDPOINT).check_seed("seed")
    start = "http://s3.example does not speak S3 (HTTP 404 without S3 headers): check "
    assert str(plugin.value) == start + PLUGIN_ENDPOINT
    assert str(cli.value) == start + CLI_ENDPOINT


# -- the seed -------------------------------------------------------------------------------
def test_a_missing_seed_names_the_setting_the_caller_says() -> None:
    with pytest.raises(TigrisSeedError) as plugin:
        janitor(FakeS3(404)).check_seed("no-such-seed")
    with pytest.raises(TigrisSeedError) as cli:
        janitor(FakeS3(404)).check_seed("no-such-seed", what="--seed")
    start = (
        "seed bucket 'no-such-seed' does not exist at http://s3.example: create it "
        "(snapshot-enabled) or fix "
    )
    assert str(plugin.value) == start + "--tigris-seed"
    assert str(cli.value) == start + "--seed"


# -- the populate-seed hook -----------------------------------------------------------------
def test_a_hook_error_keeps_every_line_of_its_message_on_one_line() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="auto",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    with pytest.raises(Exception) as caught:
        client.put_object(Bucket="seed", Nope=1, Key="k", Body=b"x")  # checked before sending

    line = hook_failure("pytest_tigris_populate_seed", caught.value)

    assert "\n" not in line
    assert line.startswith(
        "pytest_tigris_populate_seed raised ParamValidationError: Parameter validation failed: "
        'Unknown parameter in input: "Nope", must be one of: '
    ), line
    assert line.endswith(": fix the hook") and f"{Path(__file__).name}:" in line, line
    assert len(line) < 600, line  # botocore lists every parameter: the list is cut short


def test_a_hook_errors_lines_are_joined_and_their_whitespace_collapsed() -> None:
    exc = FileNotFoundError("fixtures/ is missing\n\n   and   a second line  \n")
    line = hook_failure("pytest_tigris_populate_seed", exc)
    assert line == (
        "pytest_tigris_populate_seed raised FileNotFoundError: fixtures/ is missing; "
        "and a second line: fix the hook"
    )


# -- callers in other modules (cli.py, envs.py): to be wired there ---------------------------
def test_the_cli_names_its_own_endpoint_option(
    refused: str, no_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--endpoint", refused]) == 1
    assert capsys.readouterr().err == (
        f"pytest-tigris sweep: Connection refused by {refused}: check {CLI_ENDPOINT} and that "
        "the server is running\n"
    )


def test_get_s3_client_without_an_endpoint_names_no_pytest_option(no_aws: None) -> None:
    from pytest_tigris import get_s3_client

    with pytest.raises(TigrisConfigError) as caught:
        get_s3_client()
    message = str(caught.value)
    assert "--tigris" not in message and "AWS_ENDPOINT_URL_S3" in message, message
