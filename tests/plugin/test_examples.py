"""The example app's suite (``examples/imagecat``), run the way its README says to run it.

Each run is a separate ``python -m pytest`` process with none of this run's AWS, pytest or CI
settings in its environment, so it picks its backend, seed and run id the way a user's would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import keys, make_client
from tests.inner import inner_args, inner_environ

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "examples" / "imagecat"
SEED = "imagecat-bucket-main"
PASSED = 21  # tests in examples/imagecat/tests, parametrized cases included
ACCESS_KEY = "tid_examples_access_key"
SECRET = "tsec_Examples-S3cr3t-1b2c3d"
STDERR_MARK = "\n--- stderr ---\n"


def user_env(**extra: str) -> dict[str, str]:
    """This environment without what would change an inner run's backend, options or run id,
    and with the plugins of this machine that have nothing to do with the example turned off
    (through PYTEST_ADDOPTS: the command stays the README's)."""
    return inner_environ(PYTEST_ADDOPTS=" ".join(inner_args()), **extra)


def run_pytest(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and output (stdout, then stderr) of ``python -m pytest ARGS`` in ``cwd``."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=env or user_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stdout + STDERR_MARK + result.stderr


def assert_all_passed(code: int, output: str) -> None:
    """Exit code 0 and a last line of exactly ``PASSED passed`` (no skipped, xfailed...)."""
    assert code == 0, output
    # The summary is stdout's last line; stderr may follow (other plugins' warnings).
    summary = output.split(STDERR_MARK)[0].rstrip().splitlines()[-1]
    outcomes = re.findall(r"(\d+) ([a-z]+)", summary)
    assert outcomes == [(str(PASSED), "passed")], output


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_example_suite_passes_on_the_embedded_emulator(extra: list[str]) -> None:
    code, output = run_pytest("-q", *extra, cwd=APP)
    assert_all_passed(code, output)


def test_quick_start_command_from_the_repository_root() -> None:
    # README quick start: the example's own pytest.ini is found from the path argument.
    code, output = run_pytest("-q", "examples/imagecat", cwd=REPO)
    assert_all_passed(code, output)


@pytest.fixture(scope="module")
def remote() -> Iterator[EmulatorProcess]:
    """A standalone emulator checking credentials: a stand-in for Tigris at an endpoint."""
    with EmulatorProcess(
        seed=SEED, seed_dir=APP / "seed", access_key=ACCESS_KEY, secret_key=SECRET
    ) as process:
        yield process


def test_against_an_endpoint_with_the_checked_in_ini(remote: EmulatorProcess) -> None:
    env = user_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    endpoint = ["--tigris-endpoint", remote.endpoint_url]

    # The README's CI recipe: pytest.ini's tigris_seed_dir serves emulator runs and is
    # ignored, with a note, when the backend is remote.
    code, output = run_pytest(*endpoint, cwd=APP, env=env)
    assert_all_passed(code, output)
    host = remote.endpoint_url.split("//", 1)[1]
    assert f"tigris: backend=remote endpoint={host} seed={SEED}" in output, output
    assert (
        "tigris: ini tigris_seed_dir=seed ignored: the backend is remote (the folder is loaded "
        "by the emulator backend only)"
    ) in output.splitlines(), output
    assert SECRET not in output

    s3 = make_client(
        remote.endpoint_url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET
    )
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [SEED]  # every fork deleted
    seed = APP / "seed"
    assert keys(s3, SEED) == sorted(
        p.relative_to(seed).as_posix() for p in seed.rglob("*") if p.is_file()
    )  # and the seed left as it was
