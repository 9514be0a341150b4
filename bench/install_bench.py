"""What installing pytest-tigris costs: venv size, what it pulls in, and emulator cold start.

    python bench/install_bench.py [--repetitions N]

Builds two fresh virtual environments side by side (needs PyPI):

- ``lean``: ``pip install .`` (this checkout: moto's S3 plus flask and flask-cors);
- ``moto-server``: the same plus ``moto[server]``, what the package depended on before, which
  brings every moto service's dependencies.

Reports each venv's size on disk (target for ``lean``: ≤ 170 MB), checks that ``lean`` has
none of cfn-lint, sympy, networkx, docker, aws-xray-sdk, graphql-core, and times the emulator's
cold start (process start to its ``READY`` line) in both, interleaved, medians. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_TARGET_MB = 170
FORBIDDEN = ["cfn-lint", "sympy", "networkx", "docker", "aws-xray-sdk", "graphql-core"]


def venv(where: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    return python


def size_mb(folder: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_size
    return total / 2**20


def installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {line.split("==")[0].lower() for line in listing.splitlines() if "==" in line}


def cold_start(python: Path, workdir: Path) -> float:
    """Seconds from process start to the emulator's READY line."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), "-m", "pytest_tigris", "emulator", "--seed", "cold-start-seed"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.terminate()
    process.wait(10)
    if not line.startswith("READY "):
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tigris-install-bench-") as tmp:
        root = Path(tmp)
        lean = venv(root / "lean", str(ROOT))
        full = venv(root / "moto-server", str(ROOT), "moto[server]")
        pythons = {"lean": lean, "moto-server": full}
        sizes = {name: size_mb(root / name) for name in pythons}
        pulled = sorted(installed(lean) & set(FORBIDDEN))
        pulled_before = sorted(installed(full) & set(FORBIDDEN))
        starts: dict[str, list[float]] = {name: [] for name in pythons}
        names = list(pythons)
        for rep in range(args.repetitions):
            for name in names if rep % 2 == 0 else names[::-1]:
                starts[name].append(cold_start(pythons[name], root))
    print("# pytest-tigris install bench")
    print()
    print("| measurement | this package | with moto[server] (before) | target | met |")
    print("|---|---|---|---|---|")
    size_ok = sizes["lean"] <= SIZE_TARGET_MB
    print(
        f"| venv size (file bytes) | {sizes['lean']:.0f} MB | {sizes['moto-server']:.0f} MB | "
        f"≤ {SIZE_TARGET_MB} MB | {'yes' if size_ok else '**no**'} |"
    )
    print(
        f"| of {', '.join(FORBIDDEN)} | {', '.join(pulled) or 'none'} | "
        f"{', '.join(pulled_before) or 'none'} | none | "
        f"{'yes' if not pulled else '**no**'} |"
    )
    medians = {name: statistics.median(values) for name, values in starts.items()}
    print(
        f"| emulator cold start (process start to READY), median of {args.repetitions} | "
        f"{medians['lean'] * 1000:.0f} ms | {medians['moto-server'] * 1000:.0f} ms | | |"
    )
    print()
    print(f"command: python bench/install_bench.py --repetitions {args.repetitions}")
    return 0 if size_ok and not pulled else 1


if __name__ == "__main__":
    sys.exit(main())
