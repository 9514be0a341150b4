"""ForkJanitor against the emulator: idempotent create and delete."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.backend import TigrisBackend
from pytest_tigris.cli import main
from pytest_tigris.config import TigrisConfig
from pytest_tigris.coordination import RunContext
from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.exceptions import TigrisSeedError
from pytest_tigris.janitor import ForkJanitor, ForkNameTakenError
from pytest_tigris.strategies import CopyForks
from tests.helpers import SEED, force_delete, fork


def janitor_for(emulator: Any) -> ForkJanitor:
    """A janitor whose client retries, as the plugin's does."""
    import boto3
    from botocore.config import Config

    def client() -> Any:
        return boto3.client(
            "s3",
            endpoint_url=emulator.endpoint_url,
            region_name="auto",
            aws_access_key_id="k",
            aws_secret_access_key="s",
            config=Config(retries={"mode": "standard", "max_attempts": 4}),
        )

    return ForkJanitor(client, emulator.endpoint_url)


def test_a_create_that_happened_despite_an_error_is_adopted(
    tmp_path: Any, unique: Callable[[str], str]
) -> None:
    # Half the requests are done and then answered 500. With this seed the first request (the
    # fork's CreateBucket) is one of them: botocore retries it, gets 409 because the first
    # attempt went through, and the janitor adopts the fork instead of failing or retrying
    # with another name. The next requests are answered normally.
    with EmulatorProcess(seed="late-seed", faults="late=0.5,seed=13") as emulator:
        name = f"late-seed-{unique('r').replace('-', '')[:10]}-gw0-0"
        janitor = janitor_for(emulator)
        janitor.fork(name, "late-seed")
        assert name in janitor.created
        assert janitor.delete(name) is True
        assert janitor.delete(name) is False  # a second delete is safe
        assert janitor.delete("late-seed-neverrun-gw0-9") is False


def test_a_foreign_bucket_with_the_name_is_a_collision(
    emulator: Any, s3: Any, unique: Callable[[str], str]
) -> None:
    name = f"{SEED}-{unique('r').replace('-', '')[:10]}-gw0-1"
    s3.create_bucket(Bucket=name)  # someone else's plain bucket
    janitor = janitor_for(emulator)
    with pytest.raises(ForkNameTakenError, match="already exists"):
        janitor.fork(name, SEED)
    # Even a fork of the same seed is not adopted when the name was taken before our first
    # attempt: it may be a kept fork of an earlier run.
    other = f"{SEED}-{unique('r').replace('-', '')[:10]}-gw0-2"
    fork(s3, other, SEED)
    with pytest.raises(ForkNameTakenError):
        janitor.fork(other, SEED)
    assert other not in janitor.created
    force_delete(s3, other)
    assert name not in janitor.created
    assert janitor.delete(name) is False  # named like ours, but not a fork: left alone
    assert name in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    s3.delete_bucket(Bucket=name)


def test_copy_mode_copies_and_deletes_more_than_a_page_of_objects(tmp_path: Any) -> None:
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    for i in range(1203):
        (seed_dir / f"k{i:04d}").write_bytes(b"x")
    with EmulatorProcess(seed="copy-seed", seed_dir=seed_dir) as emulator:
        janitor = janitor_for(emulator)
        janitor.strategy = CopyForks()
        name = "copy-seed-copytest1-m-0"
        janitor.fork(name, "copy-seed")
        s3 = janitor.workers
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 1000  # a full first page
        assert janitor.fork_source(name) is None  # a plain bucket, not a fork
        assert janitor.delete(name) is True  # empties all 1,203 objects, then deletes
        assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


# -- a missing seed names where its name came from ---------------------------------------------
@pytest.mark.parametrize("fork_mode", ["native", "copy"])
def test_a_missing_fork_source_names_the_setting_the_caller_gives(
    emulator: Any, tmp_path: Path, fork_mode: str
) -> None:
    config = TigrisConfig.load(
        options={"endpoint": emulator.endpoint_url, "seed": SEED, "fork-mode": fork_mode},
        ini={},
        environ={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        dotenv=False,
    )
    run = RunContext(config.run_id, "m", os.getpid(), tmp_path)
    backend = TigrisBackend(config, run)
    where = f"seed bucket 'no-such-source' does not exist at {emulator.endpoint_url}"

    # The run's seed, or a marker's (the factory puts "the marker" in): the option's name.
    with pytest.raises(TigrisSeedError) as by_option:
        backend.pinned_snapshot("no-such-source")
    with pytest.raises(TigrisSeedError) as by_caller:
        backend.pinned_snapshot("no-such-source", what="source=")

    assert str(by_option.value) == f"{where}: create it (snapshot-enabled) or fix --tigris-seed"
    assert str(by_caller.value) == f"{where}: create it (snapshot-enabled) or fix source="
    assert "no-such-source" not in run.read_registry().get("snapshots", {})


def test_env_create_with_a_missing_seed_names_the_clis_settings(
    emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "PYTEST_TIGRIS_", "TIGRIS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")

    assert main(["env", "create", "zed", "--project", "zproj", "--seed", "no-such-seed"]) == 1

    error = capsys.readouterr().err
    assert error.startswith("pytest-tigris env") and error.endswith(
        ": seed bucket 'no-such-seed' does not exist at "
        f"{emulator.endpoint_url}: create it (snapshot-enabled) or fix --seed\n"
    ), error
    assert "--tigris" not in error, error
