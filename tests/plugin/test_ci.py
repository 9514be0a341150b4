"""CI per-job isolation: two suites at once against one endpoint, each job with its own run id."""

from __future__ import annotations

import subprocess
from pathlib import Path

import tigris_boto3_ext

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.naming import ci_run_id, parse_fork_name
from tests.helpers import body, keys, make_client
from tests.inner import inner_command, inner_environ

SEED = "cijobs-bucket-main"
INNER = """
import json, os, pathlib
import pytest

OUT = pathlib.Path(os.environ["CI_OUT"])


@pytest.mark.parametrize("n", range(12))
def test_same_keys(tigris_fork, n):
    s3, name = tigris_fork.client, tigris_fork.name
    assert s3.get_object(Bucket=name, Key="shared.txt")["Body"].read() == b"seed"
    s3.put_object(Bucket=name, Key="shared.txt", Body=f"{os.environ['JOB']}-{n}".encode())
    s3.put_object(Bucket=name, Key=f"mine-{n}", Body=b"x")
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"])
    assert listed == sorted(["shared.txt", "data/a.bin", f"mine-{n}"])
    (OUT / f"{name}.json").write_text(json.dumps({"job": os.environ["JOB"]}))


def test_bucket(tigris_bucket):
    (OUT / f"{tigris_bucket.name}.json").write_text(json.dumps({"job": os.environ["JOB"]}))
"""


def test_two_ci_jobs_at_once_never_collide(tmp_path: Path) -> None:
    seed_dir = tmp_path / "seed"
    (seed_dir / "data").mkdir(parents=True)
    (seed_dir / "shared.txt").write_bytes(b"seed")
    (seed_dir / "data" / "a.bin").write_bytes(b"\x00\x01")
    with EmulatorProcess(seed=SEED, seed_dir=seed_dir) as emulator:
        jobs = {}
        for job in ("test-a", "test-b"):
            folder = tmp_path / job
            (folder / "out").mkdir(parents=True)
            (folder / "test_inner.py").write_text(INNER)
            env = inner_environ(
                GITHUB_RUN_ID="7734001",
                GITHUB_RUN_ATTEMPT="1",
                GITHUB_JOB=job,
                JOB=job,
                CI_OUT=str(folder / "out"),
                AWS_ENDPOINT_URL_S3=emulator.endpoint_url,
                AWS_ACCESS_KEY_ID="ci-key",
                AWS_SECRET_ACCESS_KEY="ci-secret",
                PYTEST_TIGRIS_SEED=SEED,
            )
            # Processes of their own: the two jobs run at the same time.
            command = inner_command("-q", n=2)
            jobs[job] = (
                subprocess.Popen(
                    command,
                    cwd=folder,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
                env,
            )
        outputs = {}
        for job, (process, _) in jobs.items():
            out, _ = process.communicate(timeout=300)
            outputs[job] = out
            assert process.returncode == 0, out
            assert "13 passed" in out

        run_ids = set()
        for job, (_, env) in jobs.items():
            expected_run = ci_run_id(env)
            names = [p.stem for p in (tmp_path / job / "out").glob("*.json")]
            assert len(names) == 12 + 1  # 12 forks and the bucket of the worker that used it
            for name in names:
                parsed = parse_fork_name(name)
                assert parsed is not None and parsed.run_id == expected_run
            assert "13 created, 13 deleted, 0 kept, 0 leaked" in outputs[job]
            run_ids.add(expected_run)
        assert len(run_ids) == 2

        s3 = make_client(emulator.endpoint_url)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [SEED]
        assert tigris_boto3_ext.list_forks(s3, SEED)["buckets"] == []
        assert sorted(keys(s3, SEED)) == ["data/a.bin", "shared.txt"]
        assert body(s3, SEED, "shared.txt") == b"seed"


def test_example_workflow_isolates_jobs_and_sweeps() -> None:
    text = (Path(__file__).parents[2] / "examples" / "ci" / "github-actions.yml").read_text()
    assert "PYTEST_TIGRIS_MATRIX: py${{ matrix.python }}" in text
    assert "pytest-tigris sweep --older-than" in text
    assert "python -m pytest -n auto" in text
    assert "\t" not in text  # YAML rejects tabs
