"""``bench/plugin_bench.py --tiny --json PATH``: every row, and each row's verdict follows from
its own measurements.

Tiny mode's numbers are not the real targets, so whether a target is met is not asserted.
What is: every row is printed once, in order, with issue 12's targets and "before" figures;
each ratio is the quotient of the row's two measured values (positive and finite); ``met`` is
that value held against the row's target; the printed table line and ``<key> met:`` line say
the same as the JSON.
"""

from __future__ import annotations

import json
import math
import operator
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    "7a": "per test: tigris_fork / tigris_bucket, embedded emulator, -n 0",
    "7b": "per test: tigris_fork / tigris_bucket, 30 ms per exchange, -n 0",
    "7c": "per test: tigris_fork / tigris_bucket, 30 ms per exchange, -n 2",
    "8a": "per test, pool off: tigris_fork / tigris_bucket, embedded emulator, -n 0",
    "8b": "per test, pool off: tigris_fork / tigris_bucket, 30 ms per exchange, -n 0",
}
# Issue 12: (what is compared, op, limit, the issue's "before").
ISSUE_12 = {
    "1a": (["re-upload", "tigris_fork"], ">=", 200, "78x (1,683 ms vs 21.7 ms)"),
    "4a": (["plugin", "-p no:tigris"], "<=", 1.05, "1.10x"),
    "7a": (["tigris_fork", "tigris_bucket"], "<=", 1.5, "4.1x (11.1 ms vs 2.7 ms)"),
    "7b": (["tigris_fork", "tigris_bucket"], "<=", 1.2, "5.4x (204 ms vs 38 ms)"),
    "7c": (["tigris_fork", "tigris_bucket"], "<=", 1.2, "5.0x (104 ms vs 21 ms)"),
}
OTHER_TARGETS = {"2": "ratio", "3": "ratio", "4b": "count", "6": "difference"}
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
}
HEADER = "| # | comparison | measured (medians) | runs | ratio | before | target | met |"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, Any]]:
    """The tiny bench's output lines and its JSON report."""
    report = tmp_path_factory.mktemp("bench") / "report.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines(), json.loads(report.read_text(encoding="utf-8"))


def table(lines: list[str]) -> list[list[str]]:
    """The table's data rows, as lists of cells."""
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line[1:-1].split(" | ")])
    return rows


def shown_ratio(cell: str) -> tuple[float, float]:
    """The number a ratio cell shows ("1.23x", "15x") and half its last digit's step."""
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?x", cell)
    assert match, cell
    decimals = len(match.group(2) or "")
    return float(cell[:-1]), 0.5 * 10.0**-decimals


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc"),
]


def test_every_row_once_in_order(bench: tuple[list[str], dict[str, Any]]) -> None:
    lines, report = bench

    assert "tiny mode (not the real targets)" in lines
    assert report["tiny"] is True
    assert [row["key"] for row in report["rows"]] == list(ROWS)
    assert [row["comparison"] for row in report["rows"]] == list(ROWS.values())
    assert [cells[:2] for cells in table(lines)] == [[k, label] for k, label in ROWS.items()]
    assert f"command: {report['command']}" in lines
    assert report["command"].startswith("python bench/plugin_bench.py --tiny --json ")


def test_issue_12_targets_and_before_figures(bench: tuple[list[str], dict[str, Any]]) -> None:
    _, report = bench
    rows = {row["key"]: row for row in report["rows"]}

    for key, (compared, op, limit, before) in ISSUE_12.items():
        row = rows[key]
        assert row["issue_12"] is True, key
        assert list(row["values"]) == compared, key
        assert (row["target"]["of"], row["target"]["op"], row["target"]["limit"]) == (
            "ratio",
            op,
            limit,
        ), key
        assert row["before"] == before, key
    assert [key for key, row in rows.items() if row["issue_12"]] == list(ISSUE_12)
    per_test = {"1a", "1b", "7a", "7b", "7c", "8a", "8b"}
    assert {key for key, row in rows.items() if row["means"] is not None} == per_test
    with_targets = {key: row["target"]["of"] for key, row in rows.items() if row["target"]}
    assert with_targets == {**dict.fromkeys(ISSUE_12, "ratio"), **OTHER_TARGETS}


def test_each_verdict_follows_from_the_values(bench: tuple[list[str], dict[str, Any]]) -> None:
    _, report = bench

    for row in report["rows"]:
        key, values = row["key"], list(row["values"].values())
        if row["unit"] == "modules":
            assert len(values) == 1 and values[0] >= 0 and float(values[0]).is_integer(), key
        else:
            assert len(values) == 2, key
            assert all(math.isfinite(v) and v > 0 for v in values), (key, values)
            assert row["ratio"] == pytest.approx(values[0] / values[1], rel=1e-12), key
        if row["means"] is not None:
            assert list(row["means"]) == list(row["values"]), key
            assert all(math.isfinite(v) and v > 0 for v in row["means"].values()), key
        target = row["target"]
        if target is None:
            assert (row["checked"], row["met"]) == (None, None), key
            continue
        if target["of"] == "ratio":
            checked = values[0] / values[1]
        elif target["of"] == "difference":
            checked = values[0] - values[1]
        else:
            assert target["of"] == "count", key
            checked = values[0]
        assert row["checked"] == pytest.approx(checked, rel=1e-12, abs=1e-12), key
        assert row["met"] is OPS[target["op"]](checked, target["limit"]), key


def test_printed_table_agrees_with_the_json(bench: tuple[list[str], dict[str, Any]]) -> None:
    lines, report = bench
    printed = dict(zip(ROWS, table(lines), strict=True))

    for row in report["rows"]:
        key = row["key"]
        cells = printed[key]
        assert f"| {' | '.join(cells)} |" == row["line"], key
        _, _, measured, runs, ratio, before, target, met = cells
        assert (measured, runs, before) == (row["measured"], row["runs"], row["before"]), key
        if row["ratio"] is None:
            assert ratio == "", key
        else:
            number, step = shown_ratio(ratio)
            assert abs(number - row["ratio"]) <= step + 1e-9, (key, ratio, row["ratio"])
        assert target == (row["target"]["text"] if row["target"] else ""), key
        assert met == {None: "", True: "yes", False: "**no**"}[row["met"]], key
    met_lines = [line for line in lines if re.fullmatch(r"\w+ met: (yes|no)", line)]
    assert met_lines == [
        f"{row['key']} met: {'yes' if row['met'] else 'no'}"
        for row in report["rows"]
        if row["met"] is not None
    ]
