"""``bench/emulator_bench.py --tiny --json PATH``: every row, and each verdict follows from the
row's numbers.

Tiny mode's timings are not the real targets, so whether a) and b) meet theirs is not asserted:
their ratios must be the quotients of the rows above them, and ``met`` that ratio against the
target. Memory does not depend on machine noise: c) and d) must meet their targets even here.
"""

from __future__ import annotations

import json
import math
import operator
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    "c) emulator RSS, 50 x 10 KB seed (0.5 MB) loaded + warm-up fork",
    "c) emulator RSS with 20 live forks, each read once",
    "c) RSS growth for 20 live forks",
    "c) emulator RSS after force-deleting the 20 forks",
    "d) 64 MB upload: emulator peak RSS growth",
    "d) RSS kept once the upload is stored",
    "d) 64 MB download: first MB / whole body",
    "d) RSS growth when the first MB arrived",
]
# The rows with a target: (op, limit, its text).
TARGETS = {
    "a) ratio 500-object / 10-object seed": ("<=", 1.5, "≤ 1.5x"),
    "b) ratio fork / plain bucket": ("<=", 2.0, "≤ 2x"),
    "c) RSS growth for 20 live forks": ("<", 5.0, "< 5 MB"),
    "d) 64 MB upload: emulator peak RSS growth": ("<=", 128.0, "≤ 128 MB"),
    "d) RSS kept once the upload is stored": ("<", 64.0, "< 64 MB"),
    "d) RSS growth when the first MB arrived": ("<", 64.0, "< 64 MB"),
}
OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_tiny_bench_rows_follow_from_their_numbers(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--json", str(report_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    rows = {row["measurement"]: row for row in report["rows"]}
    number = {name: row["number"] for name, row in rows.items()}
    assert "tiny mode (not the real targets)" in lines
    assert list(rows) == ROWS
    start = lines.index("| measurement | value | target | met |") + 2
    assert lines[start : start + len(ROWS)] == [row["line"] for row in report["rows"]]
    assert f"command: {report['command']}" in lines

    # Every row but d)'s two timings shows one positive finite number.
    for name, value in number.items():
        if name.startswith("d) 64 MB download"):
            assert value is None
        else:
            assert value is not None and math.isfinite(value), name
            assert value > 0 or name in TARGETS, name
    ratio_a = number[ROWS[0]] / number[ROWS[1]]
    ratio_b = number[ROWS[3]] / number[ROWS[4]]
    growth = number[ROWS[7]] - number[ROWS[6]]
    assert number[ROWS[0]] == number[ROWS[3]]
    assert number[ROWS[2]] == pytest.approx(ratio_a, rel=1e-12)
    assert number[ROWS[5]] == pytest.approx(ratio_b, rel=1e-12)
    assert number[ROWS[8]] == pytest.approx(growth, rel=1e-9, abs=1e-9)
    assert rows[ROWS[2]]["value"] == f"{ratio_a:.2f}x"
    assert rows[ROWS[5]]["value"] == f"{ratio_b:.2f}x"
    assert rows[ROWS[8]]["value"] == f"{growth:.2f} MB"

    for name, row in rows.items():
        op, limit, text = TARGETS.get(name, (None, None, ""))
        assert (row["op"], row["limit"], row["target"]) == (op, limit, text), name
        met = None if op is None else OPS[op](row["number"], limit)
        assert row["met"] is met, name
        cell = {None: "", True: "yes", False: "**no**"}[met]
        assert row["line"] == f"| {name} | {row['value']} | {text} | {cell} |", name
    assert [name for name, row in rows.items() if row["met"] is False and name[0] in "cd"] == []
