"""Where a pytest run spends its CPU, process by process: the run itself, its xdist workers,
and every Python process its tests start (inner runs and their workers, emulators, the
``pytest-tigris`` command), by kind, with counts, totals and the cheapest of each kind.

By default the run is the README's test command (``python -m pytest``) in the repository's
root; arguments after ``--`` replace pytest's arguments, ``--cwd`` the folder it runs in:

    python bench/suite_cpu.py --json suite-cpu.json
    python bench/suite_cpu.py -- tests/plugin/test_isolation.py

Each process is recorded by a ``sitecustomize`` module put first on ``PYTHONPATH``: when it
exits (``os._exit`` too) it appends its pid, its parent's, its command line and its own CPU
time to a file. A process killed with SIGKILL, or started with an environment of its own
without ``PYTHONPATH``, records nothing: the report gives the run's CPU from ``getrusage``
beside what the processes recorded.

The floor is what the recorded processes would cost if every one cost only as much as the
cheapest of its kind did in this run: the start-up a run pays for the processes it starts,
whatever its tests then do in them. The budget is a wall time (``--budget``, 150 s) times the
machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOG_ENV = "SUITE_CPU_LOG"

# Loaded by every Python process of the run (PYTHONPATH): only modules Python has loaded
# already at start-up, so that what the processes import is unchanged.
SITECUSTOMIZE = """
import atexit
import os
import sys

_LOG = os.environ.get("SUITE_CPU_LOG")


def _record():
    if not _LOG:
        return
    times = os.times()
    modules = sys.modules
    if sys.argv == ["-c"] and "PYTEST_XDIST_WORKER" in os.environ and "_pytest.main" in modules:
        role = "worker"  # started by execnet, which runs python -c
    elif "_pytest.main" in modules:
        role = "pytest"
    elif "moto" in modules:
        role = "moto"  # an emulator that served (one stopped by a usage error never imports it)
    else:
        role = ""
    line = "\\t".join(
        [
            str(os.getpid()),
            str(os.getppid()),
            f"{times.user + times.system:.3f}",
            role,
            " ".join(sys.argv)[:300].replace("\\t", " ").replace("\\n", " "),
        ]
    )
    try:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


atexit.register(_record)
_exit = os._exit


def _recorded_exit(code):
    _record()
    _exit(code)


os._exit = _recorded_exit
"""

KINDS = (
    ("run", "the run (pytest's main process)"),
    ("run-worker", "the run's xdist workers"),
    ("inner", "inner pytest runs started as processes"),
    ("inner-worker", "the inner runs' xdist workers"),
    ("emulator", "emulators that served"),
    ("command", "other pytest-tigris commands (and emulators stopped by a usage error)"),
    ("other", "other Python processes"),
)


def classify(record: dict[str, Any], run_pid: int) -> str:
    """The kind of one recorded process (``run_pid``: the run's main process)."""
    command = record["argv"].split()
    if record["pid"] == run_pid:
        return "run"
    if record["role"] == "worker":
        return "run-worker" if record["ppid"] == run_pid else "inner-worker"
    tigris = bool(command) and (
        command[0].endswith(("pytest_tigris/__main__.py", "pytest-tigris"))
        or command[:2] == ["-m", "pytest_tigris"]
    )
    if tigris:
        return "emulator" if record["role"] == "moto" else "command"
    if record["role"] == "pytest":
        return "inner"
    return "other"


def read_log(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        pid, ppid, cpu, role, argv = (line.split("\t", 4) + [""] * 5)[:5]
        records.append(
            {"pid": int(pid), "ppid": int(ppid), "cpu": float(cpu), "role": role, "argv": argv}
        )
    return records


def summarize(records: list[dict[str, Any]], run_pid: int) -> dict[str, dict[str, float]]:
    by_kind: dict[str, list[float]] = {kind: [] for kind, _ in KINDS}
    for record in records:
        by_kind[classify(record, run_pid)].append(record["cpu"])
    return {
        kind: {
            "processes": len(cpus),
            "cpu": sum(cpus),
            "min": min(cpus),
            "median": statistics.median(cpus),
        }
        for kind, cpus in by_kind.items()
        if cpus
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--cwd", default=str(ROOT), help="the folder pytest runs in")
    parser.add_argument("--budget", type=float, default=150.0, metavar="SECONDS")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="tigris-suite-cpu-") as tmp:
        folder = Path(tmp)
        (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        log = folder / "processes.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(folder), *filter(None, [env.get("PYTHONPATH")])])
        env[LOG_ENV] = str(log)
        command = [sys.executable, "-m", "pytest", *args.pytest_args]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=args.cwd, env=env)
        code = process.wait()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        records = read_log(log) if log.exists() else []
    rusage = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    kinds = summarize(records, process.pid)
    recorded = sum(k["cpu"] for k in kinds.values())
    floor = sum(k["processes"] * k["min"] for k in kinds.values())
    budget = args.budget * cores
    report = {
        "command": command,
        "exit_code": code,
        "wall": wall,
        "cores": cores,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "cpu_rusage": rusage,
        "cpu_recorded": recorded,
        "floor": floor,
        "budget": budget,
        "kinds": kinds,
    }
    print()
    print(f"$ {' '.join(command)}  (exit code {code}, load average {load:.1f} before)")
    print(f"wall {wall:.1f} s on {cores} cores; CPU {rusage:.1f} s (getrusage), ", end="")
    print(f"{recorded:.1f} s recorded by {sum(k['processes'] for k in kinds.values())} processes")
    print()
    print("| processes | count | CPU s | cheapest s | median s | count x cheapest s |")
    print("|---|---|---|---|---|---|")
    for kind, label in KINDS:
        if kind in kinds:
            k = kinds[kind]
            print(
                f"| {label} | {k['processes']:.0f} | {k['cpu']:.1f} | {k['min']:.2f} | "
                f"{k['median']:.2f} | {k['processes'] * k['min']:.1f} |"
            )
    unrecorded = rusage - recorded
    if unrecorded > 0:
        print(f"| not recorded (processes killed, or without PYTHONPATH) | | {unrecorded:.1f} |||")
    print()
    print(
        f"floor (every process as cheap as the cheapest of its kind): {floor:.1f} CPU-s; "
        f"a {args.budget:g} s budget on {cores} cores: {budget:.0f} CPU-s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
