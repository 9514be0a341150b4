"""EmulatorProcess: how the plugin starts the emulator."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import error_code, make_client


def test_keys_reach_the_child_without_its_command_line() -> None:
    with EmulatorProcess(access_key="proc-key", secret_key="proc-secret-value") as emulator:
        assert emulator.process is not None
        command_line = Path(f"/proc/{emulator.process.pid}/cmdline").read_bytes()
        assert b"proc-secret-value" not in command_line
        assert b"proc-key" not in command_line
        good = make_client(
            emulator.endpoint_url,
            aws_access_key_id="proc-key",
            aws_secret_access_key="proc-secret-value",
        )
        good.create_bucket(Bucket="proc-bucket")
        bad = make_client(
            emulator.endpoint_url,
            aws_access_key_id="proc-key",
            aws_secret_access_key="another",
        )
        with pytest.raises(ClientError) as exc:
            bad.list_buckets()
        assert error_code(exc) == (403, "SignatureDoesNotMatch")


def test_an_ipv6_endpoint_is_a_valid_url() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with EmulatorProcess(host="::1") as emulator:
        assert emulator.endpoint_url.startswith("http://[::1]:")
        assert make_client(emulator.endpoint_url).list_buckets()["Buckets"] == []


def test_a_stopped_emulator_exits_zero_at_once_with_its_state_saved(tmp_path: Path) -> None:
    """The process skips tearing moto down once it has stopped serving (``os._exit``): its
    exit status, its log and its last save must survive that. The next process finds the
    object written just before the stop."""
    state = tmp_path / "state"
    log = tmp_path / "emulator.log"
    emulator = EmulatorProcess(persist=state, seed="kept-seed", log_path=log).start()
    make_client(emulator.endpoint_url).put_object(Bucket="kept-seed", Key="k", Body=b"v")
    process = emulator.process
    assert process is not None
    emulator.stop()
    assert process.returncode == 0
    assert "seed bucket kept-seed" in log.read_text(encoding="utf-8")
    with EmulatorProcess(persist=state) as again:
        body = make_client(again.endpoint_url).get_object(Bucket="kept-seed", Key="k")["Body"]
        assert body.read() == b"v"
