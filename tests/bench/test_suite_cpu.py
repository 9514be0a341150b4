"""``bench/suite_cpu.py``: every Python process of a run is counted once, as its kind.

A small project is run through the bench with two xdist workers; its tests start, between
them, one of each other kind of process. The report must count each where it belongs, and its
totals must follow from its rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.inner import inner_args, inner_environ

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "suite_cpu.py"
PROJECT = """
import subprocess
import sys


def test_fork(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"v")


def test_processes(tmp_path):
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=tmp_path, check=True)
    (tmp_path / "pytest.ini").write_text("[pytest]\\n")
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\\n    pass\\n")
    run("-m", "pytest", "-q", "-p", "no:tigris", "-p", "no:xdist", *INNER_OPTIONS)
    run("-m", "pytest_tigris", "sweep", "--help")
    # An emulator stopped by a usage error is a command like the others: it served nothing.
    assert subprocess.run([sys.executable, "-m", "pytest_tigris", "emulator", "--port", "x"],
                          capture_output=True).returncode == 2
    run("-c", "pass")
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("project")
    options = inner_args()
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "test_project.py").write_text(
        f"INNER_OPTIONS = {options!r}\n{PROJECT}", encoding="utf-8"
    )
    out = project / "report.json"
    command = [sys.executable, str(BENCH), "--json", str(out), "--cwd", str(project)]
    result = subprocess.run(
        [*command, "--", "-q", *inner_args(n=2)],
        capture_output=True,
        text=True,
        env=inner_environ(),
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
    return json.loads(out.read_text(encoding="utf-8"))


def test_each_process_is_counted_once_as_its_kind(report: dict[str, Any]) -> None:
    counts = {kind: row["processes"] for kind, row in report["kinds"].items()}
    assert counts == {
        "run": 1,
        "run-worker": 2,
        "inner": 1,
        "emulator": 1,
        "command": 2,
        "other": 1,
    }


def test_totals_follow_from_the_rows(report: dict[str, Any]) -> None:
    rows = report["kinds"].values()
    assert all(0 < row["min"] <= row["median"] <= row["cpu"] for row in rows)
    assert report["cpu_recorded"] == pytest.approx(sum(row["cpu"] for row in rows))
    assert report["floor"] == pytest.approx(sum(row["processes"] * row["min"] for row in rows))
    assert report["floor"] <= report["cpu_recorded"]
    assert report["budget"] == 150 * report["cores"]
