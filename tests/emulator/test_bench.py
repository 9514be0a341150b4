"""The emulator benchmark still runs: ``bench/emulator_bench.py --tiny`` prints its whole table.

Tiny mode's numbers are not the real targets, so only the shape of the output is checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "emulator_bench.py"
ROWS = [
    "a) fork + force-delete, 500-object seed",
    "a) fork + force-delete, 10-object seed",
    "a) ratio 500-object / 10-object seed",
    "b) fork (500-object seed) + force-delete",
    "b) plain CreateBucket + DeleteBucket",
    "b) ratio fork / plain bucket",
    "c) emulator RSS, 50 x 10 KB seed",
    "c) emulator RSS with 20 live forks, each read once",
    "c) RSS growth for 20 live forks",
    "c) emulator RSS after force-deleting the 20 forks",
    "d) 64 MB upload: emulator peak RSS growth",
    "d) RSS kept once the upload is stored",
    "d) 64 MB download: first MB / whole body",
    "d) RSS growth when the first MB arrived",
]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_tiny_bench_prints_every_row() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "tiny mode (not the real targets)" in lines
    assert "| measurement | value | target | met |" in lines
    table = [line for line in lines if line.startswith("| ") and line.count("|") == 5]
    for row in ROWS:
        assert [line for line in table if line.startswith(f"| {row}")], row
    ratios = [line for line in table if " ratio " in line or "RSS growth" in line]
    assert len(ratios) == 5
    assert all(line.endswith(("| yes |", "| **no** |")) for line in ratios)
    # Memory does not depend on machine noise: the streaming targets hold even in tiny mode.
    targets = [line for line in table if line.startswith("| d) ") and not line.endswith("|  |  |")]
    assert len(targets) == 3
    assert [line for line in targets if not line.endswith("| yes |")] == []
    assert "command: python bench/emulator_bench.py --tiny" in lines
