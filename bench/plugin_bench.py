"""Plugin benchmarks: ratios measured side by side in one run, printed as one markdown table.

    python bench/plugin_bench.py [--tiny] [--json PATH]

Per-test cost (rows 1, 7 and 8) is measured inside the runs: each generated project has a
conftest that wraps ``pytest_runtest_protocol`` (setup, call and teardown of one test) with
``time.perf_counter`` and writes every test's time to a file. The cost of a variant is the
median over all its tests of all its runs, leaving out the first test of each process (with
``-n 2``: of each worker), which pays for the session's setup (emulator start, the session
bucket, the pool's start). The table also shows the mean of the same times: with a pool, the
tests that wait for a ready fork can be too few to move the median but not the mean.

1. Per-test isolated bucket with a 1,000 x 1 KB seed, in a test module whose tests each read
   one object and write one, given their bucket by a) ``tigris_fork`` on the embedded emulator
   (``--tigris-seed-dir``), b) the common moto pattern (``moto.mock_aws``, a bucket created and
   the 1,000 fixture files uploaded per test, ``-p no:tigris``), c) ``--tigris-fork-mode=copy``
   on the embedded emulator. Target: re-upload / ``tigris_fork`` >= 200x. The full run also
   times runs of 1 test and prints the whole-run cost per test, (run of N - run of 1) / (N - 1),
   as a note: it includes work the pool and the background deletes do outside the tests.
2. Fork + force-delete of a 10,000-object seed vs a 10-object seed (target <= 1.5x) and
3. fork + force-delete vs plain CreateBucket + DeleteBucket (target <= 2x): emulator_bench's
   measurement, one emulator, the three variants interleaved.
4. Plugin installed but unused: ``python -m pytest --co -q`` of a 200-test suite that uses no
   tigris fixture, with the plugin vs ``-p no:tigris`` (target <= 1.05x); one more run of that
   suite (with the plugin, running the tests) records ``sys.modules`` at session end: no boto3,
   botocore or moto may be loaded.
5. xdist: the wall time of row 7a's ``tigris_fork`` runs, ``-n 0`` vs ``-n 2``: the speed-up is
   reported.
6. Emulator RSS with 20 live forks of a 5,000 x 10 KB seed, each read once, vs the seed alone
   (emulator_bench's measurement; target: growth < 5 MB).
7. ``tigris_fork`` (default pool) vs ``tigris_bucket`` per test, in a module whose tests each
   read one object of a 50 x 1 KB seed: a) on the embedded emulator, ``-n 0`` (target
   <= 1.5x); behind 30 ms per exchange, b) ``-n 0`` and c) ``-n 2`` (targets <= 1.2x). For b)
   and c) the bench starts ``pytest-tigris emulator --latency 30ms --seed NAME --seed-dir DIR``
   with an access key, and the runs use it as a remote endpoint (``--tigris-endpoint``,
   ``--tigris-seed``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``); after every run the
   emulator must hold the seed alone. Notes give each variant's whole-run median and
   (fork run - bucket run) / N, which counts the pool's and the deletes' background work too.
8. The same with ``--tigris-pool=0``, for information: a) embedded, b) 30 ms, ``-n 0``.
   Rows 7a, 8a and 5 come from one loop of runs; 7b, 7c and 8b from another.

Variants of one comparison run in one loop, their order rotated every repetition, so machine
noise hits all of them; values are medians. The "before" column gives issue 12's figures for
its targets (1a: the README's last full run, which measured whole runs; 4a, 7a-c) and the last
full run before the pool for the other rows. Inner runs get an environment without AWS_*,
PYTEST_* and CI variables (so the embedded emulator is used unless a row says otherwise), a
temporary TMPDIR (removed at the end), and no installed pytest plugin but pytest-tigris (and
pytest-xdist in runs with ``-n 2``).
``--tiny`` uses small sizes and one repetition, and measures 1-4 and 6, 5-7a-8a and 7b-7c-8b
side by side, so a test can run it in well under a minute: its numbers are not the real targets.
``--json PATH`` also writes every row (measured values, ratio, target, met) as JSON. Missed
targets are printed (``met: no``), never an error: the exit status is 0 unless a measurement
itself failed. Linux only (RSS is read from ``/proc``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import operator
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emulator_bench
from emulator_bench import (
    TINY_NOTE,
    command_line,
    interleaved,
    make_client,
    measure_fork_cost,
    measure_fork_memory,
    write_seed,
)

from pytest_tigris.emulator import EmulatorProcess

HEAVY = ("boto3", "botocore", "moto")
# Variables that would point an inner run at another backend, seed or run id, or change how
# pytest itself starts (plugin autoload, extra options).
STRIPPED_PREFIXES = (
    "AWS_",
    "PYTEST_",
    "CI_",
    "GITHUB_",
    "GITLAB_",
    "CIRCLE",
    "BUILDKITE",
    "JENKINS_",
)
STRIPPED_NAMES = frozenset({"CI", "BUILD_TAG", "BUILD_NUMBER", "BUILD_ID", "TF_BUILD"})
# Inner runs load no other installed plugin (hypothesis alone doubled an xdist worker's start
# here); xdist only in runs with -n.
XDIST_PLUGINS = frozenset({"xdist", "xdist.looponfail"})
RUN_TIMEOUT = 600.0
SUMMARY = re.compile(r"forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked")
WARNING = re.compile(r"Warning: (.+)$", re.MULTILINE)
FORK_NAME = re.compile(r"[a-z0-9-]+-seed-[a-z0-9]+-[a-z0-9]+-\d+")
LATENCY_SEED = "bench-latency-seed"
# The keys emulator_bench.make_client signs with.
ACCESS_KEY, SECRET_KEY = "bench-key", "bench-secret"

# Row labels: fixed text (sizes go in the "measured" column), checked by the bench's test.
LABELS = {
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
# Issue 12's targets, and its "before" figures for them; the other rows' figures are from the
# last full run before the pool, the shared client and background deletes (README, 12-01).
ISSUE_12 = ("1a", "4a", "7a", "7b", "7c")
BEFORE = {
    "1a": "78x (1,683 ms vs 21.7 ms)",
    "1b": "143x (3,101 ms vs 21.7 ms)",
    "2": "1.06x (3.7 ms vs 3.5 ms)",
    "3": "1.12x (3.7 ms vs 3.3 ms)",
    "4a": "1.10x",
    "4b": "none",
    "5": "0.79x (6.06 s vs 7.71 s, 200 tests)",
    "6": "1.00x (+0.21 MB)",
    "7a": "4.1x (11.1 ms vs 2.7 ms)",
    "7b": "5.4x (204 ms vs 38 ms)",
    "7c": "5.0x (104 ms vs 21 ms)",
    "8a": "as 7a (no pool then)",
    "8b": "as 7b (no pool then)",
}


@dataclass(frozen=True)
class Sizes:
    seed_objects: int
    object_bytes: int
    fork_tests: int
    upload_tests: int
    isolation_runs: int
    whole_run_check: bool
    unused_tests: int
    unused_runs: int
    pair_seed_objects: int
    embedded_tests: int
    latency_tests: int
    pair_runs: int
    latency: float
    side_by_side: bool
    warm_up: bool
    emulator: emulator_bench.Sizes


FULL = Sizes(
    seed_objects=1_000,
    object_bytes=1024,
    fork_tests=100,
    upload_tests=6,
    isolation_runs=5,
    whole_run_check=True,
    unused_tests=200,
    unused_runs=31,
    pair_seed_objects=50,
    embedded_tests=100,
    latency_tests=40,
    pair_runs=5,
    latency=0.030,
    side_by_side=False,
    warm_up=True,
    emulator=emulator_bench.FULL,
)
TINY = Sizes(
    seed_objects=50,
    object_bytes=1024,
    fork_tests=4,
    upload_tests=3,
    isolation_runs=1,
    whole_run_check=False,
    unused_tests=20,
    unused_runs=1,
    pair_seed_objects=10,
    embedded_tests=6,
    latency_tests=6,
    pair_runs=1,
    latency=0.030,
    side_by_side=True,
    warm_up=False,
    emulator=emulator_bench.TINY,
)


OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """What a row must show: ``of`` (``ratio``, ``difference`` or ``count``) ``op`` ``limit``."""

    of: str
    op: str
    limit: float
    text: str

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.limit)


@dataclass(frozen=True)
class Row:
    """One comparison: ``values`` (compared first to second, in ``unit``) and its target;
    ``means``: the means of per-test times whose medians are ``values``."""

    key: str
    values: dict[str, float]
    unit: str
    measured: str
    runs: str
    target: Target | None = None
    means: dict[str, float] | None = None

    @property
    def ratio(self) -> float | None:
        if len(self.values) != 2:
            return None
        first, second = self.values.values()
        return first / second

    @property
    def checked(self) -> float | None:
        """The value the target applies to."""
        if self.target is None:
            return None
        numbers = list(self.values.values())
        if self.target.of == "ratio":
            return self.ratio
        if self.target.of == "difference":
            return numbers[0] - numbers[1]
        return numbers[0]

    @property
    def met(self) -> bool | None:
        checked = self.checked
        return None if self.target is None or checked is None else self.target.holds(checked)

    def render(self) -> str:
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        target = self.target.text if self.target else ""
        ratio = "" if self.ratio is None else times(self.ratio)
        cells = [self.key, LABELS[self.key], self.measured, self.runs, ratio, BEFORE[self.key]]
        return "| " + " | ".join([*cells, target, met]) + " |"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "comparison": LABELS[self.key],
            "issue_12": self.key in ISSUE_12,
            "values": self.values,
            "unit": self.unit,
            "means": self.means,
            "ratio": self.ratio,
            "target": None
            if self.target is None
            else {
                "of": self.target.of,
                "op": self.target.op,
                "limit": self.target.limit,
                "text": self.target.text,
            },
            "checked": self.checked,
            "met": self.met,
            "before": BEFORE[self.key],
            "measured": self.measured,
            "runs": self.runs,
            "line": self.render(),
        }


# -- running inner pytest sessions ----------------------------------------------------------
def clean_environment(tmpdir: Path) -> dict[str, str]:
    """This environment minus AWS, pytest and CI variables; temporary files under ``tmpdir``.

    ``PYTHONDONTWRITEBYTECODE`` goes too: installed from a wheel, pytest-tigris is
    byte-compiled like pytest itself, so an inner run must not compile its modules from
    source every time (an editable install under that variable would: about 40 ms a run).
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_PREFIXES)
        and name not in STRIPPED_NAMES
        and name != "PYTHONDONTWRITEBYTECODE"
    }
    env["TMPDIR"] = str(tmpdir)
    return env


def byte_compile_plugin() -> None:
    """Write the .pyc files of pytest-tigris, as installing a wheel does."""
    import compileall

    import pytest_tigris

    compileall.compile_dir(Path(pytest_tigris.__file__).parent, quiet=1)


def common_options(xdist: bool) -> list[str]:
    """Options an inner run gets: no cache writes, no installed plugin but ours (and xdist's
    when ``xdist``)."""
    options = ["-p", "no:cacheprovider"]
    names = {entry.name for entry in importlib.metadata.entry_points(group="pytest11")}
    kept = {"tigris", *(XDIST_PLUGINS if xdist else ())}
    for name in sorted(names - kept):
        options += ["-p", f"no:{name}"]
    return options


@dataclass(frozen=True)
class Runner:
    """Runs ``python -m pytest`` in a folder with the bench's environment and options."""

    env: Mapping[str, str]

    def __call__(self, cwd: Path, *args: str) -> str:
        """The run's output; raises unless pytest exits 0 (a failed run measures nothing).
        pytest-xdist is loaded when ``args`` hold ``-n``."""
        command = [sys.executable, "-m", "pytest", *common_options("-n" in args), *args]
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
        finally:
            if process.poll() is None:
                # Timed out or interrupted: end the whole inner session (its xdist workers too).
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"inner run failed (exit {process.returncode}): {' '.join(args)} in {cwd}\n"
                f"{output[-3000:]}"
            )
        return output


def expect_passed(output: str, tests: int, *, forks: range | None) -> None:
    """Check the run passed ``tests`` tests and, unless ``forks`` is None, made a number of
    forks in that range and deleted every one."""
    if not re.search(rf"\b{tests} passed\b", output):
        raise RuntimeError(f"expected {tests} passed tests:\n{output[-3000:]}")
    if forks is not None:
        summary = SUMMARY.search(output)
        if summary is None:
            raise RuntimeError(f"no tigris summary in the output:\n{output[-3000:]}")
        created, deleted, kept, leaked = (int(n) for n in summary.groups())
        if created not in forks or (deleted, kept, leaked) != (created, 0, 0):
            raise RuntimeError(
                f"expected {forks.start}-{forks.stop - 1} forks made and deleted: "
                f"{summary.group(0)}"
            )


# -- generated suites -----------------------------------------------------------------------
def make_suite(folder: Path, modules: Mapping[str, str]) -> Path:
    """A folder with its own ``pytest.ini`` (so no outer configuration applies) and modules."""
    folder.mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for name, text in modules.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


FORK_SUITE = """\
import pytest

SEED_OBJECTS = {seed_objects}


@pytest.mark.parametrize("i", range({tests}))
def test_read_one_write_one(tigris_fork, i):
    s3, bucket = tigris_fork.client, tigris_fork.name
    key = f"dir{{i % 10}}/object-{{i % SEED_OBJECTS:05d}}.bin"
    assert len(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == {object_bytes}
    s3.put_object(Bucket=bucket, Key=f"out/{{i}}.bin", Body=b"x" * {object_bytes})
"""

MOTO_SUITE = '''\
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

SEED_DIR = Path({seed_dir!r})
SEED_OBJECTS = {seed_objects}
FIXTURES = sorted(p for p in SEED_DIR.rglob("*") if p.is_file())


@pytest.fixture
def bucket():
    """A fresh bucket holding every fixture file, per test."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="fixtures")
        for path in FIXTURES:
            key = path.relative_to(SEED_DIR).as_posix()
            s3.put_object(Bucket="fixtures", Key=key, Body=path.read_bytes())
        yield s3, "fixtures"


@pytest.mark.parametrize("i", range({tests}))
def test_read_one_write_one(bucket, i):
    s3, bucket = bucket
    key = f"dir{{i % 10}}/object-{{i % SEED_OBJECTS:05d}}.bin"
    assert len(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == {object_bytes}
    s3.put_object(Bucket=bucket, Key=f"out/{{i}}.bin", Body=b"x" * {object_bytes})
'''

# Both fixtures in one module: a run picks one with -k.
PAIR_SUITE = """\
import pytest

SEED_OBJECTS = {seed_objects}


def read_one(bucket, i):
    key = f"dir{{i % 10}}/object-{{i % SEED_OBJECTS:05d}}.bin"
    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    assert len(body) == {object_bytes}


@pytest.mark.parametrize("i", range({tests}))
def test_fork(tigris_fork, i):
    read_one(tigris_fork, i)


@pytest.mark.parametrize("i", range({tests}))
def test_bucket(tigris_bucket, i):
    read_one(tigris_bucket, i)
"""

# Each test's setup + call + teardown, one file per process (xdist workers included).
TIMES_CONFTEST = """\
import json
import os
import time
from pathlib import Path

import pytest

OUT = Path({out!r})
TIMES = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        TIMES.append(time.perf_counter() - start)


def pytest_sessionfinish(session):
    if TIMES:
        OUT.mkdir(exist_ok=True)
        (OUT / f"{{os.getpid()}}.json").write_text(json.dumps(TIMES))
"""

MODULES_CONFTEST = """\
import json
import sys
from pathlib import Path


def pytest_sessionfinish(session):
    Path({out!r}).write_text(json.dumps(sorted(sys.modules)))
"""


def plain_modules(tests: int, per_module: int = 20) -> dict[str, str]:
    """``tests`` trivial tests, ``per_module`` to a module, none using a tigris fixture."""
    modules: dict[str, str] = {}
    for start in range(0, tests, per_module):
        body = "".join(
            f"def test_plain_{n}():\n    assert {n} + 1 > {n}\n\n\n"
            for n in range(start, min(start + per_module, tests))
        )
        modules[f"test_plain_{start // per_module:02d}.py"] = body.rstrip() + "\n"
    return modules


def timed_suite(folder: Path, modules: Mapping[str, str]) -> tuple[Path, Path]:
    """A suite whose conftest writes each test's time to files in the returned folder."""
    out = folder.parent / f"{folder.name}-times"
    return make_suite(folder, {**modules, "conftest.py": TIMES_CONFTEST.format(out=str(out))}), out


def take_times(out: Path, tests: int) -> list[float]:
    """The per-test times one run wrote, without each process's first test; clears ``out``."""
    files = sorted(out.glob("*.json")) if out.exists() else []
    per_process = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    for path in files:
        path.unlink()
    if sum(len(times) for times in per_process) != tests:
        raise RuntimeError(f"expected {tests} test times in {out}, found {per_process}")
    return [t for times in per_process for t in times[1:]]


@dataclass
class Variant:
    """One kind of run in a loop: its command-line arguments, the checks on its output, and
    the per-test times (of the measured repetitions) and wall times it gave."""

    run: Runner
    folder: Path
    args: tuple[str, ...]
    tests: int
    forks: range | None
    times_out: Path | None = None
    after: Callable[[], None] | None = None
    samples: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __call__(self) -> None:
        output = self.run(self.folder, "-q", *self.args)
        expect_passed(output, self.tests, forks=self.forks)
        self.warnings.extend(FORK_NAME.sub("<fork>", m) for m in WARNING.findall(output))
        if self.times_out is not None:
            self.samples.extend(take_times(self.times_out, self.tests))
        if self.after is not None:
            self.after()

    def per_test(self) -> float:
        """The median of the per-test times."""
        return statistics.median(self._samples())

    def mean(self) -> float:
        """Their mean: unlike the median, it counts every test that waited (for a ready fork,
        say) even when fewer than half did."""
        return statistics.fmean(self._samples())

    def _samples(self) -> list[float]:
        if not self.samples:
            raise RuntimeError(f"no per-test times from {self.folder} (one test per process?)")
        return self.samples


def run_loop(variants: Mapping[str, Variant], runs: int, warm_up: bool) -> dict[str, float]:
    """Median wall seconds of each variant's runs, interleaved; warm-up samples are dropped."""
    if warm_up:
        for variant in variants.values():
            variant()
            variant.samples.clear()
    return interleaved(dict(variants), runs, warm_up=False)


def warning_notes(row: str, variants: Mapping[str, Variant]) -> list[str]:
    return [
        f"{row}: the {name} runs printed {len(v.warnings)} pytest warnings, e.g. "
        f"{v.warnings[0][:200]}"
        for name, v in variants.items()
        if v.warnings
    ]


# -- 1. per-test isolated bucket ------------------------------------------------------------
def bench_isolation(sizes: Sizes, run: Runner, workdir: Path) -> tuple[list[Row], list[str]]:
    seed = workdir / "seed-isolation"
    write_seed(seed, sizes.seed_objects, sizes.object_bytes)
    seed_dir = ("--tigris-seed-dir", str(seed))
    kinds = {
        "tigris_fork": (sizes.fork_tests, FORK_SUITE, seed_dir, True),
        "re-upload": (sizes.upload_tests, MOTO_SUITE, ("-p", "no:tigris"), False),
        "copy": (sizes.upload_tests, FORK_SUITE, (*seed_dir, "--tigris-fork-mode=copy"), True),
    }
    variants: dict[str, Variant] = {}
    for name, (tests, template, options, forks) in kinds.items():
        for count in (tests, 1) if sizes.whole_run_check else (tests,):
            text = template.format(
                tests=count,
                seed_dir=str(seed),
                seed_objects=sizes.seed_objects,
                object_bytes=sizes.object_bytes,
            )
            folder, out = timed_suite(workdir / f"{name}-{count}", {"test_suite.py": text})
            variants[f"{name}-{count}"] = Variant(
                run,
                folder,
                options,
                count,
                range(count, count + 1) if forks else None,
                times_out=out,
            )
    walls = run_loop(variants, sizes.isolation_runs, warm_up=False)

    measured = {name: variants[f"{name}-{tests}"] for name, (tests, *_) in kinds.items()}
    fork, upload, copy = (
        measured[name].per_test() for name in ("tigris_fork", "re-upload", "copy")
    )
    fork_mean, upload_mean, copy_mean = (
        measured[name].mean() for name in ("tigris_fork", "re-upload", "copy")
    )
    seed_text = f"{sizes.seed_objects:,} x {sizes.object_bytes // 1024} KB seed"
    runs = (
        f"{sizes.isolation_runs} x 3 runs of {sizes.fork_tests} (tigris_fork) and "
        f"{sizes.upload_tests} tests (others)"
    )
    if sizes.whole_run_check:
        runs += ", and as many of 1 test"
    rows = [
        Row(
            "1a",
            {"re-upload": upload, "tigris_fork": fork},
            "s",
            f"{seed_text}: {ms(upload)} vs {ms(fork)} per test (means {ms(upload_mean)} vs "
            f"{ms(fork_mean)})",
            runs,
            Target("ratio", ">=", 200, "≥ 200x"),
            {"re-upload": upload_mean, "tigris_fork": fork_mean},
        ),
        Row(
            "1b",
            {"copy": copy, "tigris_fork": fork},
            "s",
            f"{seed_text}: {ms(copy)} vs {ms(fork)} per test (means {ms(copy_mean)} vs "
            f"{ms(fork_mean)})",
            "same runs",
            means={"copy": copy_mean, "tigris_fork": fork_mean},
        ),
    ]
    notes = []
    if sizes.whole_run_check:
        whole = {
            name: (walls[f"{name}-{tests}"] - walls[f"{name}-1"]) / (tests - 1)
            for name, (tests, *_) in kinds.items()
        }
        shown = ", ".join(f"{name} {ms(value)}" for name, value in whole.items())
        if whole["tigris_fork"] > 0:
            shown += f"; re-upload / tigris_fork {times(whole['re-upload'] / whole['tigris_fork'])}"
        notes.append(f"1: whole-run cost per test, (run of N - run of 1) / (N - 1): {shown}")
    return rows, notes + warning_notes("1", variants)


# -- 2. and 3. fork cost (emulator_bench) ---------------------------------------------------
def bench_fork_cost(sizes: Sizes, workdir: Path) -> list[Row]:
    emulator = sizes.emulator
    cost = measure_fork_cost(emulator, workdir)
    runs = f"{emulator.repetitions} x 3 calls"
    return [
        Row(
            "2",
            {"big seed": cost.big, "small seed": cost.small},
            "s",
            f"{emulator.big_seed:,} vs {emulator.small_seed:,} objects: "
            f"{ms(cost.big)} vs {ms(cost.small)}",
            runs,
            Target("ratio", "<=", 1.5, "≤ 1.5x"),
        ),
        Row(
            "3",
            {"fork": cost.big, "plain bucket": cost.plain},
            "s",
            f"fork of the {emulator.big_seed:,}-object seed: {ms(cost.big)} vs {ms(cost.plain)}",
            "same calls",
            Target("ratio", "<=", 2, "≤ 2x"),
        ),
    ]


# -- 4. plugin installed but unused ---------------------------------------------------------
def bench_unused(sizes: Sizes, run: Runner, workdir: Path) -> list[Row]:
    modules = plain_modules(sizes.unused_tests)
    suite = make_suite(workdir / "unused", modules)
    collected = re.compile(rf"\b{sizes.unused_tests} tests? collected\b")

    def collect(*options: str) -> Callable[[], None]:
        def call() -> None:
            output = run(suite, "--co", "-q", *options)
            if not collected.search(output):
                raise RuntimeError(f"expected {sizes.unused_tests} tests:\n{output[-3000:]}")

        return call

    medians = interleaved(
        {"plugin": collect(), "no-plugin": collect("-p", "no:tigris")},
        sizes.unused_runs,
        warm_up=sizes.warm_up,
    )
    plugin, bare = medians["plugin"], medians["no-plugin"]

    out = workdir / "modules.json"
    probe = make_suite(
        workdir / "unused-probe", {**modules, "conftest.py": MODULES_CONFTEST.format(out=str(out))}
    )
    expect_passed(run(probe, "-q"), sizes.unused_tests, forks=None)
    loaded = json.loads(out.read_text(encoding="utf-8"))
    if "pytest_tigris.plugin" not in loaded:
        raise RuntimeError("the probe run did not load pytest-tigris: the check would be void")
    heavy = sorted({m for m in loaded if m.split(".")[0] in HEAVY})
    tops = sorted({m.split(".")[0] for m in heavy})
    return [
        Row(
            "4a",
            {"plugin": plugin, "-p no:tigris": bare},
            "s",
            f"{sizes.unused_tests} tests in {plural(len(modules), 'module')}: "
            f"{ms(plugin)} vs {ms(bare)}",
            f"{sizes.unused_runs} x 2 runs",
            Target("ratio", "<=", 1.05, "≤ 1.05x"),
        ),
        Row(
            "4b",
            {"modules loaded": float(len(heavy))},
            "modules",
            "none loaded (plugin active)"
            if not heavy
            else f"{len(heavy)} modules of {', '.join(tops)}",
            f"1 run of the {sizes.unused_tests} tests",
            Target("count", "<=", 0, "none"),
        ),
    ]


# -- 6. emulator memory (emulator_bench) ----------------------------------------------------
def bench_memory(sizes: Sizes, workdir: Path) -> list[Row]:
    emulator = sizes.emulator
    memory = measure_fork_memory(emulator, workdir)
    growth = memory.live - memory.before
    return [
        Row(
            "6",
            {"live forks": memory.live, "seed alone": memory.before},
            "MB",
            f"{emulator.forks} forks of a {emulator.mem_seed:,} x "
            f"{emulator.mem_object_bytes // 1024} KB seed: {memory.live:.1f} MB vs "
            f"{memory.before:.1f} MB (+{growth:.2f} MB)",
            "1 reading each",
            Target("difference", "<", 5, "growth < 5 MB"),
        )
    ]


# -- 5., 7. and 8. tigris_fork vs tigris_bucket per test --------------------------------------
def pair_variants(
    run: Runner,
    folder: Path,
    out: Path,
    options: Sequence[str],
    tests: int,
    kinds: Sequence[tuple[str, int, bool]],
    after: Callable[[], None] | None = None,
) -> dict[str, Variant]:
    """Variants named ``fork``/``bucket`` (+ ``-pool0``, ``-n2``): (name, workers, pool off)."""
    variants = {}
    for name, workers, pool_off in kinds:
        fork = name.startswith("fork")
        args = ["-k", "test_fork" if fork else "test_bucket", *options]
        if workers:
            args += ["-n", str(workers)]
        if pool_off:
            args.append("--tigris-pool=0")
        variants[name] = Variant(
            run,
            folder,
            tuple(args),
            tests,
            range(tests, tests + 1) if fork else range(1, max(workers, 1) + 1),
            times_out=out,
            after=after,
        )
    return variants


def pair_row(key: str, fork: Variant, bucket: Variant, runs: str, target: Target | None) -> Row:
    return Row(
        key,
        {"tigris_fork": fork.per_test(), "tigris_bucket": bucket.per_test()},
        "s",
        f"{ms(fork.per_test())} vs {ms(bucket.per_test())} per test (means {ms(fork.mean())} "
        f"vs {ms(bucket.mean())})",
        runs,
        target,
        {"tigris_fork": fork.mean(), "tigris_bucket": bucket.mean()},
    )


def wall_note(row: str, walls: Mapping[str, float], tests: int) -> str:
    shown = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in walls.items())
    extra = (walls["fork"] - walls["bucket"]) / tests
    return (
        f"{row}: whole-run medians of {tests} tests: {shown}; (fork - bucket) / {tests} = "
        f"{ms(extra)} per test, background work included"
    )


def pair_suite(sizes: Sizes, folder: Path, tests: int) -> tuple[Path, Path]:
    """The fork / bucket pair suite of ``tests`` tests, written into ``folder`` (timed)."""
    text = PAIR_SUITE.format(
        tests=tests, seed_objects=sizes.pair_seed_objects, object_bytes=sizes.object_bytes
    )
    return timed_suite(folder, {"test_suite.py": text})


def bench_embedded(sizes: Sizes, run: Runner, workdir: Path) -> tuple[list[Row], list[str]]:
    seed = workdir / "seed-pair"
    write_seed(seed, sizes.pair_seed_objects, sizes.object_bytes)
    tests = sizes.embedded_tests
    folder, out = pair_suite(sizes, workdir / "pair-embedded", tests)
    kinds = [("fork", 0, False), ("fork-pool0", 0, True), ("bucket", 0, False)]
    if importlib.util.find_spec("xdist") is not None:
        kinds.append(("fork-n2", 2, False))
    variants = pair_variants(run, folder, out, ["--tigris-seed-dir", str(seed)], tests, kinds)
    walls = run_loop(variants, sizes.pair_runs, sizes.warm_up)
    runs = f"{sizes.pair_runs} x {len(variants)} runs of {tests} tests"
    seed_text = f"{sizes.pair_seed_objects}-object seed"
    target = Target("ratio", "<=", 1.5, "≤ 1.5x")
    rows = [
        pair_row("7a", variants["fork"], variants["bucket"], runs, target),
        pair_row("8a", variants["fork-pool0"], variants["bucket"], "runs of 7a", None),
    ]
    if "fork-n2" in variants:
        serial, parallel = walls["fork"], walls["fork-n2"]
        rows.append(
            Row(
                "5",
                {"-n 0": serial, "-n 2": parallel},
                "s",
                f"{tests} tests, {seed_text}: {serial:.2f} s vs {parallel:.2f} s",
                "runs of 7a",
            )
        )
    notes = [wall_note("7a", walls, tests), *warning_notes("7a", variants)]
    return rows, notes


def bench_latency(
    sizes: Sizes, env: Mapping[str, str], workdir: Path
) -> tuple[list[Row], list[str]]:
    seed = workdir / "seed-latency"
    write_seed(seed, sizes.pair_seed_objects, sizes.object_bytes)
    log = workdir / "latency-emulator.log"
    emulator = EmulatorProcess(
        seed=LATENCY_SEED,
        seed_dir=seed,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        latency=sizes.latency,
        log_path=log,
    )
    try:
        emulator.start()
        s3 = make_client(emulator.endpoint_url)

        def only_the_seed() -> None:
            names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
            if names != [LATENCY_SEED]:
                raise RuntimeError(f"the latency emulator holds {names} after a run")

        only_the_seed()
        run = Runner({**env, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        tests = sizes.latency_tests
        folder, out = pair_suite(sizes, workdir / "pair-latency", tests)
        options = ["--tigris-endpoint", emulator.endpoint_url, "--tigris-seed", LATENCY_SEED]
        kinds = [("fork", 0, False), ("fork-pool0", 0, True), ("bucket", 0, False)]
        if importlib.util.find_spec("xdist") is not None:
            kinds += [("fork-n2", 2, False), ("bucket-n2", 2, False)]
        variants = pair_variants(run, folder, out, options, tests, kinds, after=only_the_seed)
        walls = run_loop(variants, sizes.pair_runs, sizes.warm_up)
    except Exception as exc:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\nlatency emulator log:\n{tail}") from exc
    finally:
        emulator.stop()
    delay = f"{sizes.latency * 1000:g} ms"
    runs = f"{sizes.pair_runs} x {len(variants)} runs of {tests} tests"
    target = Target("ratio", "<=", 1.2, "≤ 1.2x")
    rows = [
        pair_row("7b", variants["fork"], variants["bucket"], runs, target),
        pair_row("8b", variants["fork-pool0"], variants["bucket"], "runs of 7b", None),
    ]
    if "fork-n2" in variants:
        rows.append(
            pair_row("7c", variants["fork-n2"], variants["bucket-n2"], "runs of 7b", target)
        )
    notes = [
        f"7b, 7c, 8b: a standalone emulator with --latency {delay} as a remote endpoint, "
        f"{sizes.pair_seed_objects}-object seed loaded with --seed-dir",
        wall_note("7b", {k: v for k, v in walls.items() if not k.endswith("-n2")}, tests),
        *warning_notes("7b", variants),
    ]
    if "fork-n2" in walls:
        n2 = {"fork": walls["fork-n2"], "bucket": walls["bucket-n2"]}
        notes.insert(2, wall_note("7c", n2, tests))
    return rows, notes


# -- output ---------------------------------------------------------------------------------
def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def times(value: float) -> str:
    return f"{value:.0f}x" if value >= 10 else f"{value:.2f}x"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if abs(seconds) >= 1 else f"{seconds * 1000:.1f} ms"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def main(argv: Sequence[str] | None = None) -> int:
    args, arguments = emulator_bench.parse_arguments(argv, __doc__)
    sizes = TINY if args.tiny else FULL
    host, load_before = machine(), load()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="tigris-plugin-bench-"))
    try:
        tmpdir = workdir / "tmp"
        tmpdir.mkdir()
        env = clean_environment(tmpdir)
        byte_compile_plugin()
        run = Runner(env)
        sections: dict[str, Callable[[], tuple[list[Row], list[str]]]] = {
            "1": lambda: bench_isolation(sizes, run, workdir),
            "2-3": lambda: (bench_fork_cost(sizes, workdir), []),
            "4": lambda: (bench_unused(sizes, run, workdir), []),
            "5, 7a, 8a": lambda: bench_embedded(sizes, run, workdir),
            "6": lambda: (bench_memory(sizes, workdir), []),
            "7b, 7c, 8b": lambda: bench_latency(sizes, env, workdir),
        }
        results: dict[str, tuple[list[Row], list[str], float]] = {}

        def measure(names: Sequence[str]) -> None:
            for name in names:
                section_started = time.perf_counter()
                section_rows, section_notes = sections[name]()
                seconds = time.perf_counter() - section_started
                results[name] = (section_rows, section_notes, seconds)

        # Tiny mode runs three groups of sections side by side (a test runs it, and its
        # numbers are not the targets anyway); the full run one after the other.
        groups = (
            [["1", "2-3", "4", "6"], ["5, 7a, 8a"], ["7b, 7c, 8b"]]
            if sizes.side_by_side
            else [list(sections)]
        )
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            for done in [pool.submit(measure, group) for group in groups]:
                done.result()
        rows = [row for name in sections for row in results[name][0]]
        notes = [note for name in sections for note in results[name][1]]
        took = [f"{name}: {results[name][2]:.0f} s" for name in sections]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    order = list(LABELS)
    rows.sort(key=lambda row: order.index(row.key))

    print("# pytest-tigris plugin bench")
    print()
    if args.tiny:
        print(TINY_NOTE)
        print()
    warm_up = "2-5, 7 and 8" if sizes.warm_up else "2 and 3"
    print(
        "Medians of interleaved repetitions (order rotated every repetition; runs = "
        f"repetitions x variants; one warm-up round before {warm_up}). 1, 4, 5, 7 and 8 are "
        "`python -m pytest` runs in subprocesses; 2, 3 and 6 are emulator_bench's "
        "measurements. Per test (1, 7, 8): each test's setup + call + teardown, timed by a "
        "pytest_runtest_protocol wrapper, median over the runs' tests but the first of each "
        "process (the ratio's inputs); their means in brackets. Before: issue 12 for "
        f"{', '.join(ISSUE_12)}, else the last full run before the pool."
    )
    print()
    print("| # | comparison | measured (medians) | runs | ratio | before | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row.render())
    print()
    for note in notes:
        print(f"note: {note}")
    for row in rows:
        if row.met is not None:
            print(f"{row.key} met: {'yes' if row.met else 'no'}")
    print()
    command = command_line(arguments, Path(__file__))
    print(f"command: {command}")
    print(
        f"{host}; python {platform.python_version()}; load average {load_before:.1f} at the "
        f"start, {load():.1f} at the end; took {elapsed:.0f} s ({'; '.join(took)})"
    )
    if args.json is not None:
        report = {
            "tiny": args.tiny,
            "command": command,
            "rows": [row.as_json() for row in rows],
            "notes": notes,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
