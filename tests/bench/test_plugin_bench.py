"""The plugin benchmark still runs: ``bench/plugin_bench.py --tiny`` prints its whole table.

Tiny mode's numbers are not the real targets, so only the shape of the output is checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "plugin_bench.py"
ROWS = {
    "1a": "per-test isolated bucket: re-upload with moto.mock_aws / tigris_fork",
    "1b": "per-test isolated bucket: --tigris-fork-mode=copy / tigris_fork",
    "2": "fork + force-delete: big seed / small seed",
    "3": "fork + force-delete / plain CreateBucket + DeleteBucket",
    "4a": "plugin installed but unused: pytest --co, plugin / -p no:tigris",
    "4b": "plugin installed but unused: boto3, botocore, moto in sys.modules",
    "5": "xdist speed-up: tigris_fork tests, -n 0 / -n 2 wall time",
    "6": "emulator RSS: live forks / seed alone",
}
TARGETS = ("1a", "2", "3", "4a", "4b", "6")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_tiny_bench_prints_every_row() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "tiny mode (not the real targets)" in lines
    assert "| # | comparison | measured (medians) | runs | ratio | target | met |" in lines
    table = [line for line in lines if line.startswith("| ") and line.count(" | ") == 6]
    for key, label in ROWS.items():
        assert [line for line in table if line.startswith(f"| {key} | {label} | ")], key
    for key in TARGETS:
        assert f"{key} met: yes" in lines or f"{key} met: no" in lines, key
    assert "command: python bench/plugin_bench.py --tiny" in lines
    assert [line for line in lines if line.startswith("machine: ")]
