"""What a whole pytest run on the embedded emulator costs: one test that uses a fork, start to
exit, wall time and CPU (the run and its emulator process), medians of interleaved runs.

Compare checkouts side by side: ``--tree before=/path/to/old --tree after=.`` runs each
checkout's ``pytest_tigris`` (put first on ``PYTHONPATH``) in turn, rotated every repetition.
Without ``--tree``, the installed pytest-tigris is measured alone.

    python bench/startup_bench.py --tree before=/tmp/old --tree after=. --runs 15
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = """
def test_one(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"v")
"""
UNRELATED = ("randomly", "benchmark", "hypothesispytest", "cacheprovider")


def one_run(folder: Path, tree: str | None) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users have it: byte-compiled
    if tree is not None:
        env["PYTHONPATH"] = str(Path(tree).resolve())
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0"]
    command += [option for name in UNRELATED for option in ("-p", f"no:{name}")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({tree or 'installed'}):\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    trees: dict[str, str | None] = {"installed": None}
    if args.tree:
        trees = dict(item.split("=", 1) for item in args.tree)  # type: ignore[misc]
    for path in (p for p in trees.values() if p is not None):
        subprocess.run([sys.executable, "-m", "compileall", "-q", f"{path}/pytest_tigris"])
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="tigris-startup-") as tmp:
        folder = Path(tmp)
        (folder / "test_one.py").write_text(TEST, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        names = list(trees)
        for name in names:  # warm-up round, not counted
            one_run(folder, trees[name])
        for repetition in range(args.runs):
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(one_run(folder, trees[name]))
    print(f"{args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.1f} at the end")
    first = names[0]
    base_wall = statistics.median(w for w, _ in samples[first])
    base_cpu = statistics.median(c for _, c in samples[first])
    for name in names:
        wall = statistics.median(w for w, _ in samples[name])
        cpu = statistics.median(c for _, c in samples[name])
        print(
            f"{name}: wall {wall * 1000:.0f} ms ({wall / base_wall:.2f}x {first}), "
            f"CPU {cpu * 1000:.0f} ms ({cpu / base_cpu:.2f}x {first})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
