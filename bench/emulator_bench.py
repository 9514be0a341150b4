"""Emulator benchmarks, measured side by side in one run, printed as a markdown table.

    python bench/emulator_bench.py [--tiny] [--json PATH]

a) fork + force-delete of a big seed vs of a 10-object seed, same emulator (target ≤ 1.5x):
   forks fall through to their parent, so their cost must not grow with the seed.
b) fork + force-delete vs plain CreateBucket + DeleteBucket, same emulator (target ≤ 2x).
c) emulator RSS growth for 20 live forks of a 5,000 x 10 KB seed, each read once (target < 5 MB).
d) a 1 GiB object uploaded and read back over HTTP in 1 MiB chunks: the emulator's peak RSS
   growth (target ≤ object + 64 MB), what it keeps afterwards, and the download's first byte
   against its last (the body is answered from the object's file, not loaded first).

The compared variants of a) and b) run in one loop, their order rotated every repetition, so
machine noise hits all of them; values are medians. ``--tiny`` uses small sizes and few
repetitions so a test can run it in seconds: its numbers are not the real targets. ``--json PATH``
also writes every row (its text, the number it shows, target and outcome) as JSON. The full run
exits 1 when a target is missed. RSS is read from ``/proc`` (Linux only).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import tigris_boto3_ext
from botocore.config import Config

from pytest_tigris.emulator import EmulatorProcess

ROOT = Path(__file__).resolve().parents[1]
BIG_SEED = "bench-seed-big"
SMALL_SEED = "bench-seed-small"
MEM_SEED = "bench-seed-mem"
TINY_NOTE = "tiny mode (not the real targets)"
LIST_PAGE = 1000


@dataclass(frozen=True)
class Sizes:
    big_seed: int
    small_seed: int
    object_bytes: int
    repetitions: int
    mem_seed: int
    mem_object_bytes: int
    forks: int
    stream_bytes: int


FULL = Sizes(
    big_seed=10_000,
    small_seed=10,
    object_bytes=1024,
    repetitions=101,
    mem_seed=5_000,
    mem_object_bytes=10 * 1024,
    forks=20,
    stream_bytes=1024 * 2**20,
)
TINY = Sizes(
    big_seed=500,
    small_seed=10,
    object_bytes=1024,
    repetitions=7,
    mem_seed=50,
    mem_object_bytes=10 * 1024,
    forks=20,
    stream_bytes=64 * 2**20,
)


LIMITS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Row:
    """One line of the table: ``value`` shows ``number`` (seconds, MB or a ratio); a row with a
    target holds when ``number`` ``op`` ``limit``."""

    measurement: str
    value: str
    number: float | None = None
    target: str = ""
    op: str | None = None
    limit: float | None = None

    @property
    def met(self) -> bool | None:
        if self.op is None or self.limit is None or self.number is None:
            return None
        return LIMITS[self.op](self.number, self.limit)

    def render(self) -> str:
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        return f"| {self.measurement} | {self.value} | {self.target} | {met} |"

    def as_json(self) -> dict[str, Any]:
        return {
            "measurement": self.measurement,
            "value": self.value,
            "number": self.number,
            "target": self.target,
            "op": self.op,
            "limit": self.limit,
            "met": self.met,
            "line": self.render(),
        }


def make_client(endpoint_url: str) -> Any:
    """A boto3 client the way Tigris users build one: region ``auto``, path-style, no retries."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="auto",
        aws_access_key_id="bench-key",
        aws_secret_access_key="bench-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def write_seed(folder: Path, count: int, size: int) -> None:
    """``count`` files of ``size`` bytes, spread over a few folders like real seed data."""
    for i in range(count):
        path = folder / f"dir{i % 10}" / f"object-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(4, "big") * (size // 4))


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident set size (or its peak, ``VmHWM``) of process ``pid`` in MB, from ``/proc``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def pid_of(emulator: EmulatorProcess) -> int:
    if emulator.process is None:
        raise RuntimeError("the emulator is not running")
    return emulator.process.pid


class Names:
    """Unique bucket names for this run."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:8]
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.token}-{self.count}"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def interleaved(
    variants: dict[str, Callable[[], object]], repetitions: int, *, warm_up: bool = True
) -> dict[str, float]:
    """Median seconds per variant; one warm-up round, then the order rotates every repetition."""
    names = list(variants)
    for name in names if warm_up else ():
        variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repetitions):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timed(variants[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def fork_and_delete(s3: Any, names: Names, source: str) -> Callable[[], None]:
    def run() -> None:
        name = names("bench-fork")
        tigris_boto3_ext.create_fork(s3, name, source)
        tigris_boto3_ext.force_delete_bucket(s3, name)

    return run


def create_and_delete(s3: Any, names: Names) -> Callable[[], None]:
    def run() -> None:
        name = names("bench-plain")
        s3.create_bucket(Bucket=name)
        s3.delete_bucket(Bucket=name)

    return run


@dataclass(frozen=True)
class ForkCost:
    """Median seconds of a) and b)'s interleaved variants."""

    big: float
    small: float
    plain: float


def measure_fork_cost(sizes: Sizes, workdir: Path) -> ForkCost:
    """a) and b): one emulator holding the big seed (from a folder) and the small one (HTTP)."""
    seed_dir = workdir / "big-seed"
    write_seed(seed_dir, sizes.big_seed, sizes.object_bytes)
    emulator = EmulatorProcess(seed=BIG_SEED, seed_dir=seed_dir)
    try:
        emulator.start()
        s3 = make_client(emulator.endpoint_url)
        tigris_boto3_ext.create_snapshot_bucket(s3, SMALL_SEED)
        for i in range(sizes.small_seed):
            s3.put_object(
                Bucket=SMALL_SEED, Key=f"object-{i:05d}.bin", Body=b"x" * sizes.object_bytes
            )
        names = Names()
        check_fork(s3, names("bench-check"), BIG_SEED, sizes.big_seed)
        check_fork(s3, names("bench-check"), SMALL_SEED, sizes.small_seed)
        medians = interleaved(
            {
                "big": fork_and_delete(s3, names, BIG_SEED),
                "small": fork_and_delete(s3, names, SMALL_SEED),
                "plain": create_and_delete(s3, names),
            },
            sizes.repetitions,
        )
        leftovers = [
            b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("bench-")
        ]
        if sorted(leftovers) != sorted([BIG_SEED, SMALL_SEED]):
            raise RuntimeError(f"buckets left behind after the loop: {leftovers}")
    finally:
        emulator.stop()
    return ForkCost(big=medians["big"], small=medians["small"], plain=medians["plain"])


def bench_fork_cost(sizes: Sizes, workdir: Path) -> list[Row]:
    """a) and b) as table rows."""
    cost = measure_fork_cost(sizes, workdir)
    big, small, plain = cost.big, cost.small, cost.plain
    seed_ratio = big / small
    fork_ratio = big / plain
    return [
        Row(f"a) fork + force-delete, {sizes.big_seed:,}-object seed", ms(big), big),
        Row(f"a) fork + force-delete, {sizes.small_seed:,}-object seed", ms(small), small),
        Row(
            f"a) ratio {sizes.big_seed:,}-object / {sizes.small_seed:,}-object seed",
            f"{seed_ratio:.2f}x",
            seed_ratio,
            "≤ 1.5x",
            "<=",
            1.5,
        ),
        Row(f"b) fork ({sizes.big_seed:,}-object seed) + force-delete", ms(big), big),
        Row("b) plain CreateBucket + DeleteBucket", ms(plain), plain),
        Row("b) ratio fork / plain bucket", f"{fork_ratio:.2f}x", fork_ratio, "≤ 2x", "<=", 2.0),
    ]


def listed(s3: Any, bucket: str) -> int:
    """How many keys the first ListObjectsV2 page of ``bucket`` shows."""
    return int(s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0))


def check_fork(s3: Any, name: str, source: str, objects: int) -> None:
    """Fail loudly unless a fork of ``source`` is a fork and sees the seed: else we time nothing."""
    tigris_boto3_ext.create_fork(s3, name, source)
    try:
        headers = s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]
        if headers.get("x-tigris-fork-source-bucket") != source:
            raise RuntimeError(f"{name} is not reported as a fork of {source}: {headers}")
        if listed(s3, name) != min(objects, LIST_PAGE):
            raise RuntimeError(f"fork {name} of {source} does not list its {objects} objects")
    finally:
        tigris_boto3_ext.force_delete_bucket(s3, name)


def read_fork(s3: Any, name: str, key: str, objects: int) -> None:
    """Read through the fork once: one object (so it is materialised) and one listing page."""
    s3.get_object(Bucket=name, Key=key)["Body"].read()
    if listed(s3, name) != min(objects, LIST_PAGE):
        raise RuntimeError(f"fork {name} does not list its {objects} objects")


@dataclass(frozen=True)
class ForkMemory:
    """c)'s emulator RSS in MB: seed loaded (+ warm-up fork), with the live forks, after."""

    before: float
    live: float
    after_delete: float


def measure_fork_memory(sizes: Sizes, workdir: Path) -> ForkMemory:
    """c): RSS of an emulator holding the memory seed, before and with live forks."""
    seed_dir = workdir / "mem-seed"
    write_seed(seed_dir, sizes.mem_seed, sizes.mem_object_bytes)
    keys = sorted(p.relative_to(seed_dir).as_posix() for p in seed_dir.rglob("*") if p.is_file())
    emulator = EmulatorProcess(seed=MEM_SEED, seed_dir=seed_dir)
    try:
        emulator.start()
        pid = pid_of(emulator)
        s3 = make_client(emulator.endpoint_url)
        names = Names()
        # The warm-up does the same reads as the measured forks, so one-time costs (the seed's
        # lazily computed ETags, the allocator's high-water mark of a listing) land before the
        # baseline instead of being charged to the forks.
        warm = names("bench-warm")
        tigris_boto3_ext.create_fork(s3, warm, MEM_SEED)
        read_fork(s3, warm, keys[0], len(keys))
        tigris_boto3_ext.force_delete_bucket(s3, warm)
        before = rss_mb(pid)
        forks = [names("bench-live") for _ in range(sizes.forks)]
        for i, name in enumerate(forks):
            tigris_boto3_ext.create_fork(s3, name, MEM_SEED)
            read_fork(s3, name, keys[i % len(keys)], len(keys))
        live = rss_mb(pid)
        for name in forks:
            tigris_boto3_ext.force_delete_bucket(s3, name)
        after_delete = rss_mb(pid)
    finally:
        emulator.stop()
    return ForkMemory(before=before, live=live, after_delete=after_delete)


def bench_fork_memory(sizes: Sizes, workdir: Path) -> list[Row]:
    """c) as table rows."""
    memory = measure_fork_memory(sizes, workdir)
    before, live, after_delete = memory.before, memory.live, memory.after_delete
    growth = live - before
    seed_mb = sizes.mem_seed * sizes.mem_object_bytes / 2**20
    return [
        Row(
            f"c) emulator RSS, {sizes.mem_seed:,} x {sizes.mem_object_bytes // 1024} KB seed "
            f"({seed_mb:.1f} MB) loaded + warm-up fork",
            f"{before:.1f} MB",
            before,
        ),
        Row(
            f"c) emulator RSS with {sizes.forks} live forks, each read once",
            f"{live:.1f} MB",
            live,
        ),
        Row(
            f"c) RSS growth for {sizes.forks} live forks",
            f"{growth:.2f} MB",
            growth,
            "< 5 MB",
            "<",
            5.0,
        ),
        Row(
            f"c) emulator RSS after force-deleting the {sizes.forks} forks",
            f"{after_delete:.1f} MB",
            after_delete,
        ),
    ]


STREAM_SEED = "bench-seed-stream"
# moto wants a signed-looking request when the emulator checks no signatures.
_AUTH = (
    "AWS4-HMAC-SHA256 Credential=bench-key/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=00"
)


@dataclass(frozen=True)
class Streaming:
    """d)'s figures: MB of RSS and seconds."""

    upload_peak: float
    kept: float
    first_byte: float
    last_byte: float
    at_first_byte: float
    upload_seconds: float


def measure_streaming(sizes: Sizes) -> Streaming:
    """d): one object of ``stream_bytes`` in and out of a fresh emulator, over raw HTTP."""
    import http.client
    from urllib.parse import urlsplit

    chunk = b"\x5a" * 2**20
    count = sizes.stream_bytes // len(chunk)
    emulator = EmulatorProcess(seed=STREAM_SEED)
    try:
        emulator.start()
        pid = pid_of(emulator)
        parts = urlsplit(emulator.endpoint_url)
        address = (str(parts.hostname), int(parts.port or 0))
        before = rss_mb(pid)
        connection = http.client.HTTPConnection(*address, timeout=600)
        started = time.perf_counter()
        connection.request(
            "PUT",
            f"/{STREAM_SEED}/big.bin",
            body=(chunk for _ in range(count)),
            headers={"Authorization": _AUTH, "Content-Length": str(count * len(chunk))},
        )
        answer = connection.getresponse()
        answer.read()
        upload_seconds = time.perf_counter() - started
        connection.close()
        if answer.status != 200:
            raise RuntimeError(f"upload answered {answer.status}")
        upload_peak = rss_mb(pid, "VmHWM") - before
        kept = rss_mb(pid) - before
        connection = http.client.HTTPConnection(*address, timeout=600)
        started = time.perf_counter()
        connection.request("GET", f"/{STREAM_SEED}/big.bin", headers={"Authorization": _AUTH})
        answer = connection.getresponse()
        received = len(answer.read(2**20))
        first_byte = time.perf_counter() - started
        at_first_byte = rss_mb(pid) - before
        while data := answer.read(4 * 2**20):
            received += len(data)
        last_byte = time.perf_counter() - started
        connection.close()
        if received != count * len(chunk):
            raise RuntimeError(f"read back {received} bytes of {count * len(chunk)}")
    finally:
        emulator.stop()
    return Streaming(upload_peak, kept, first_byte, last_byte, at_first_byte, upload_seconds)


def bench_streaming(sizes: Sizes) -> list[Row]:
    """d) as table rows."""
    result = measure_streaming(sizes)
    size_mb = sizes.stream_bytes / 2**20
    limit = size_mb + 64
    return [
        Row(
            f"d) {size_mb:,.0f} MB upload: emulator peak RSS growth",
            f"{result.upload_peak:,.0f} MB in {result.upload_seconds:.1f} s",
            result.upload_peak,
            f"≤ {limit:,.0f} MB",
            "<=",
            limit,
        ),
        Row(
            "d) RSS kept once the upload is stored",
            f"{result.kept:,.1f} MB",
            result.kept,
            "< 64 MB",
            "<",
            64.0,
        ),
        Row(
            f"d) {size_mb:,.0f} MB download: first MB / whole body",
            f"{ms(result.first_byte)} / {ms(result.last_byte)}",
        ),
        Row(
            "d) RSS growth when the first MB arrived",
            f"{result.at_first_byte:,.1f} MB",
            result.at_first_byte,
            "< 64 MB",
            "<",
            64.0,
        ),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def command_line(arguments: Sequence[str], script: Path | None = None) -> str:
    """The command that reproduces this run (of ``script``, default this one) from the root."""
    script = Path(script or __file__).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else str(script)
    return shlex.join(["python", shown, *arguments])


def parse_arguments(
    argv: Sequence[str] | None, doc: str | None
) -> tuple[argparse.Namespace, list[str]]:
    """The benches' shared command line (``--tiny``, ``--json PATH``): parsed options and the
    raw arguments."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument(
        "--tiny", action="store_true", help="Small sizes and few repetitions (for the test suite)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="Also write every row of the table to PATH as JSON"
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    return parser.parse_args(arguments), arguments


def main(argv: Sequence[str] | None = None) -> int:
    args, arguments = parse_arguments(argv, __doc__)
    sizes = TINY if args.tiny else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tigris-bench-") as tmp:
        rows = (
            bench_fork_cost(sizes, Path(tmp))
            + bench_fork_memory(sizes, Path(tmp))
            + bench_streaming(sizes)
        )
    elapsed = time.perf_counter() - started
    print("# pytest-tigris emulator bench")
    print()
    if args.tiny:
        print(TINY_NOTE)
        print()
    print(
        f"Medians of {sizes.repetitions} interleaved repetitions (rotating order, after one "
        f"warm-up); {sizes.object_bytes // 1024} KB objects in a) and b); one emulator process "
        "for a) and b), another for c), another for d)."
    )
    print()
    print("| measurement | value | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print(row.render())
    print()
    command = command_line(arguments)
    print(f"command: {command}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.system()}; "
        f"took {elapsed:.1f} s"
    )
    if args.json is not None:
        report = {"tiny": args.tiny, "command": command, "rows": [r.as_json() for r in rows]}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    missed = [row.measurement for row in rows if row.met is False]
    if missed and not args.tiny:
        print(f"targets missed: {'; '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
