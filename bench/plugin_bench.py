"""Plugin benchmarks: ratios measured side by side in one run, printed as one markdown table.

    python bench/plugin_bench.py [--tiny]

1. Per-test isolated bucket with a 1,000 x 1 KB seed, as whole pytest runs in subprocesses of
   one test module whose tests each read one object and write one, given their bucket by
   a) ``tigris_fork`` on the embedded emulator (``--tigris-seed-dir``), b) the common moto
   pattern (``moto.mock_aws``, a bucket created and the 1,000 fixture files uploaded per test,
   ``-p no:tigris``), c) ``--tigris-fork-mode=copy`` on the embedded emulator. Per-test cost is
   (run of N tests - run of 1 test) / (N - 1), from the medians. ``tigris_fork`` runs more tests
   than the others: its per-test cost is so small that a few tests would drown in the run-to-run
   noise of starting pytest and the emulator. Target: re-upload / ``tigris_fork`` >= 50x.
2. Fork + force-delete of a 10,000-object seed vs a 10-object seed (target <= 1.5x) and
3. fork + force-delete vs plain CreateBucket + DeleteBucket (target <= 2x): emulator_bench's
   measurement, one emulator, the three variants interleaved.
4. Plugin installed but unused: ``python -m pytest --co -q`` of a 200-test suite that uses no
   tigris fixture, with the plugin vs ``-p no:tigris`` (target <= 1.05x); one more run of that
   suite (with the plugin, running the tests) records ``sys.modules`` at session end: no boto3,
   botocore or moto may be loaded.
5. xdist: 200 tests using ``tigris_fork`` (embedded emulator, 10-object seed), ``-n 0`` vs
   ``-n 2`` wall time: the speed-up is reported.
6. Emulator RSS with 20 live forks of a 5,000 x 10 KB seed, each read once, vs the seed alone
   (emulator_bench's measurement; target: growth < 5 MB).

Variants of one comparison run in one loop, their order rotated every repetition, so machine
noise hits all of them; values are medians. Inner runs get an environment without AWS_*,
PYTEST_* and CI variables (so the embedded emulator is used) and a temporary TMPDIR, removed at
the end. ``--tiny`` uses small sizes and few repetitions so a test can run it in seconds: its
numbers are not the real targets. Missed targets are printed (``met: no``), never an error: the
exit status is 0 unless a measurement itself failed. Linux only (RSS is read from ``/proc``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import emulator_bench
from emulator_bench import (
    TINY_NOTE,
    command_line,
    interleaved,
    measure_fork_cost,
    measure_fork_memory,
    write_seed,
)

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
RUN_TIMEOUT = 600.0
SUMMARY = re.compile(r"forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked")
WARNING = re.compile(r"Warning: (.+)$", re.MULTILINE)
FORK_NAME = re.compile(r"pytest-tigris-seed-[a-z0-9]+-[a-z0-9]+-\d+")

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
}


@dataclass(frozen=True)
class Sizes:
    seed_objects: int
    object_bytes: int
    fork_tests: int
    upload_tests: int
    isolation_runs: int
    unused_tests: int
    unused_runs: int
    xdist_tests: int
    xdist_seed_objects: int
    xdist_runs: int
    warm_up: bool
    emulator: emulator_bench.Sizes


FULL = Sizes(
    seed_objects=1_000,
    object_bytes=1024,
    fork_tests=100,
    upload_tests=5,
    isolation_runs=5,
    unused_tests=200,
    unused_runs=31,
    xdist_tests=200,
    xdist_seed_objects=10,
    xdist_runs=3,
    warm_up=True,
    emulator=emulator_bench.FULL,
)
TINY = Sizes(
    seed_objects=100,
    object_bytes=1024,
    fork_tests=5,
    upload_tests=3,
    isolation_runs=1,
    unused_tests=20,
    unused_runs=3,
    xdist_tests=20,
    xdist_seed_objects=10,
    xdist_runs=1,
    warm_up=False,
    emulator=emulator_bench.TINY,
)


@dataclass(frozen=True)
class Row:
    key: str
    measured: str
    runs: str
    ratio: str
    target: str = ""
    met: bool | None = None

    def render(self) -> str:
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        cells = [self.key, LABELS[self.key], self.measured, self.runs, self.ratio, self.target]
        return "| " + " | ".join([*cells, met]) + " |"


# -- running inner pytest sessions ----------------------------------------------------------
def clean_environment(tmpdir: Path) -> dict[str, str]:
    """This environment minus AWS, pytest and CI variables; temporary files under ``tmpdir``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_PREFIXES) and name not in STRIPPED_NAMES
    }
    env["TMPDIR"] = str(tmpdir)
    return env


def common_options() -> list[str]:
    """Options every inner run gets: no cache writes, and no pytest-benchmark where present."""
    options = ["-p", "no:cacheprovider"]
    if importlib.util.find_spec("pytest_benchmark") is not None:
        options += ["-p", "no:benchmark"]
    return options


@dataclass(frozen=True)
class Runner:
    """Runs ``python -m pytest`` in a folder with the bench's environment and options."""

    env: Mapping[str, str]

    def __call__(self, cwd: Path, *args: str) -> str:
        """The run's output; raises unless pytest exits 0 (a failed run measures nothing)."""
        command = [sys.executable, "-m", "pytest", *common_options(), *args]
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


def expect_passed(output: str, tests: int, *, forks: bool) -> None:
    """Check the run passed ``tests`` tests (and made and deleted as many forks)."""
    if not re.search(rf"\b{tests} passed\b", output):
        raise RuntimeError(f"expected {tests} passed tests:\n{output[-3000:]}")
    if forks:
        summary = SUMMARY.search(output)
        if summary is None:
            raise RuntimeError(f"no tigris summary in the output:\n{output[-3000:]}")
        created, deleted, kept, leaked = (int(n) for n in summary.groups())
        if (created, deleted, kept, leaked) != (tests, tests, 0, 0):
            raise RuntimeError(f"expected {tests} forks made and deleted: {summary.group(0)}")


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


# -- 1. per-test isolated bucket ------------------------------------------------------------
def bench_isolation(sizes: Sizes, run: Runner, workdir: Path) -> tuple[list[Row], list[str]]:
    seed = workdir / "seed-isolation"
    write_seed(seed, sizes.seed_objects, sizes.object_bytes)
    seed_dir = ["--tigris-seed-dir", str(seed)]
    variants = {
        "tigris_fork": (sizes.fork_tests, FORK_SUITE, seed_dir),
        "re-upload": (sizes.upload_tests, MOTO_SUITE, ["-p", "no:tigris"]),
        "copy": (sizes.upload_tests, FORK_SUITE, [*seed_dir, "--tigris-fork-mode=copy"]),
    }
    warnings: dict[str, list[str]] = {name: [] for name in variants}
    calls: dict[str, Callable[[], object]] = {}
    for name, (tests, template, options) in variants.items():
        for count in (tests, 1):
            text = template.format(
                tests=count,
                seed_dir=str(seed),
                seed_objects=sizes.seed_objects,
                object_bytes=sizes.object_bytes,
            )
            folder = make_suite(workdir / f"{name}-{count}", {"test_suite.py": text})
            forks = name != "re-upload"
            calls[f"{name}-{count}"] = timed_run(run, folder, options, count, forks, warnings[name])
    medians = interleaved(calls, sizes.isolation_runs, warm_up=False)

    per_test = {
        name: (medians[f"{name}-{tests}"] - medians[f"{name}-1"]) / (tests - 1)
        for name, (tests, _, _) in variants.items()
    }
    fork, upload, copy = per_test["tigris_fork"], per_test["re-upload"], per_test["copy"]
    upload_ratio = ratio(upload, fork)
    seed_text = f"{sizes.seed_objects:,} x {sizes.object_bytes // 1024} KB seed"
    runs = (
        f"{sizes.isolation_runs} x 6 runs: of {sizes.fork_tests} and 1 tests (tigris_fork), "
        f"{sizes.upload_tests} and 1 (others)"
    )
    rows = [
        Row(
            "1a",
            f"{seed_text}: {ms(upload)} vs {ms(fork)} per test",
            runs,
            times(upload_ratio),
            "≥ 50x",
            upload_ratio is not None and upload_ratio >= 50,
        ),
        Row(
            "1b",
            f"{seed_text}: {ms(copy)} vs {ms(fork)} per test",
            "same",
            times(ratio(copy, fork)),
        ),
    ]
    medians_text = ", ".join(
        f"{name} {medians[f'{name}-{tests}']:.2f} s / {medians[f'{name}-1']:.2f} s"
        for name, (tests, _, _) in variants.items()
    )
    notes = [f"1: whole-run medians, N tests / 1 test: {medians_text}"]
    notes += [
        f"1: the {name} runs printed {len(found)} pytest warnings, e.g. {found[0][:200]}"
        for name, found in warnings.items()
        if found
    ]
    return rows, notes


def timed_run(
    run: Runner,
    folder: Path,
    options: Sequence[str],
    tests: int,
    forks: bool,
    warnings: list[str],
) -> Callable[[], None]:
    """One variant: run the suite in ``folder``, check its outcome, collect its warnings."""

    def call() -> None:
        output = run(folder, "-q", *options)
        expect_passed(output, tests, forks=forks)
        warnings.extend(FORK_NAME.sub("<fork>", m) for m in WARNING.findall(output))

    return call


# -- 2. and 3. fork cost (emulator_bench) ---------------------------------------------------
def bench_fork_cost(sizes: Sizes, workdir: Path) -> list[Row]:
    emulator = sizes.emulator
    cost = measure_fork_cost(emulator, workdir)
    seed_ratio = cost.big / cost.small
    plain_ratio = cost.big / cost.plain
    runs = f"{emulator.repetitions} x 3 calls"
    return [
        Row(
            "2",
            f"{emulator.big_seed:,} vs {emulator.small_seed:,} objects: "
            f"{ms(cost.big)} vs {ms(cost.small)}",
            runs,
            times(seed_ratio),
            "≤ 1.5x",
            seed_ratio <= 1.5,
        ),
        Row(
            "3",
            f"fork of the {emulator.big_seed:,}-object seed: {ms(cost.big)} vs {ms(cost.plain)}",
            "same calls",
            times(plain_ratio),
            "≤ 2x",
            plain_ratio <= 2.0,
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
    overhead = plugin / bare

    out = workdir / "modules.json"
    probe = make_suite(
        workdir / "unused-probe", {**modules, "conftest.py": MODULES_CONFTEST.format(out=str(out))}
    )
    expect_passed(run(probe, "-q"), sizes.unused_tests, forks=False)
    loaded = json.loads(out.read_text(encoding="utf-8"))
    if "pytest_tigris.plugin" not in loaded:
        raise RuntimeError("the probe run did not load pytest-tigris: the check would be void")
    heavy = sorted({m for m in loaded if m.split(".")[0] in HEAVY})
    tops = sorted({m.split(".")[0] for m in heavy})
    return [
        Row(
            "4a",
            f"{sizes.unused_tests} tests in {plural(len(modules), 'module')}: "
            f"{ms(plugin)} vs {ms(bare)}",
            f"{sizes.unused_runs} x 2 runs",
            times(overhead),
            "≤ 1.05x",
            overhead <= 1.05,
        ),
        Row(
            "4b",
            "none loaded (plugin active)"
            if not heavy
            else f"{len(heavy)} modules of {', '.join(tops)}",
            f"1 run of the {sizes.unused_tests} tests",
            "",
            "none",
            not heavy,
        ),
    ]


# -- 5. xdist ---------------------------------------------------------------------------------
def bench_xdist(sizes: Sizes, run: Runner, workdir: Path) -> list[Row]:
    if importlib.util.find_spec("xdist") is None:
        return [Row("5", "pytest-xdist is not installed", "", "")]
    seed = workdir / "seed-xdist"
    write_seed(seed, sizes.xdist_seed_objects, sizes.object_bytes)
    text = FORK_SUITE.format(
        tests=sizes.xdist_tests,
        seed_objects=sizes.xdist_seed_objects,
        object_bytes=sizes.object_bytes,
    )
    suite = make_suite(workdir / "xdist", {"test_suite.py": text})

    def with_workers(workers: int) -> Callable[[], None]:
        def call() -> None:
            output = run(suite, "-q", "-n", str(workers), "--tigris-seed-dir", str(seed))
            expect_passed(output, sizes.xdist_tests, forks=True)

        return call

    medians = interleaved(
        {"n0": with_workers(0), "n2": with_workers(2)}, sizes.xdist_runs, warm_up=sizes.warm_up
    )
    serial, parallel = medians["n0"], medians["n2"]
    return [
        Row(
            "5",
            f"{sizes.xdist_tests} tests, {sizes.xdist_seed_objects}-object seed: "
            f"{serial:.2f} s vs {parallel:.2f} s",
            f"{sizes.xdist_runs} x 2 runs",
            times(serial / parallel),
            "(reported)",
        )
    ]


# -- 6. emulator memory (emulator_bench) ----------------------------------------------------
def bench_memory(sizes: Sizes, workdir: Path) -> list[Row]:
    emulator = sizes.emulator
    memory = measure_fork_memory(emulator, workdir)
    growth = memory.live - memory.before
    return [
        Row(
            "6",
            f"{emulator.forks} forks of a {emulator.mem_seed:,} x "
            f"{emulator.mem_object_bytes // 1024} KB seed: {memory.live:.1f} MB vs "
            f"{memory.before:.1f} MB (+{growth:.2f} MB)",
            "1 reading each",
            times(memory.live / memory.before),
            "growth < 5 MB",
            growth < 5.0,
        )
    ]


# -- output ---------------------------------------------------------------------------------
def ratio(value: float, base: float) -> float | None:
    """``value / base``, or None when noise made ``base`` zero or negative."""
    return value / base if base > 0 else None


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def times(value: float | None) -> str:
    if value is None:
        return "n/a (noise)"
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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}; load average {load:.1f} at the start"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args, arguments = emulator_bench.parse_arguments(argv, __doc__)
    sizes = TINY if args.tiny else FULL
    host = machine()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="tigris-plugin-bench-"))
    try:
        tmpdir = workdir / "tmp"
        tmpdir.mkdir()
        run = Runner(clean_environment(tmpdir))
        isolation, notes = bench_isolation(sizes, run, workdir)
        rows = [
            *isolation,
            *bench_fork_cost(sizes, workdir),
            *bench_unused(sizes, run, workdir),
            *bench_xdist(sizes, run, workdir),
            *bench_memory(sizes, workdir),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started

    print("# pytest-tigris plugin bench")
    print()
    if args.tiny:
        print(TINY_NOTE)
        print()
    warm_up = f"one warm-up round before {'2, 3, 4 and 5' if sizes.warm_up else '2 and 3'}"
    print(
        "Medians of interleaved repetitions (order rotated every repetition; runs = "
        f"repetitions x variants; {warm_up}). 1, 4 and 5 time whole `python -m pytest` runs "
        "in subprocesses; 2, 3 and 6 are emulator_bench's measurements. 1: per-test cost = "
        "(run of N tests - run of 1 test) / (N - 1)."
    )
    print()
    print("| # | comparison | measured (medians) | runs | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row.render())
    print()
    for note in notes:
        print(f"note: {note}")
    for row in rows:
        if row.met is not None:
            print(f"{row.key} met: {'yes' if row.met else 'no'}")
    print()
    print(f"command: {command_line(arguments, Path(__file__))}")
    print(f"{host}; took {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
