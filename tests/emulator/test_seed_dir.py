"""Loading the seed from a folder: every file name must be able to become an object key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tigris.emulator import EmulatorProcess, EmulatorStartError
from tests.helpers import body, fork, keys, make_client

SEED = "seed-dir-check"


def _write(root: Path, relative: bytes, data: bytes) -> None:
    """Create ``root/relative`` from raw bytes, the way a non-UTF-8 name arrives on disk."""
    path = os.path.join(os.fsencode(root), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _start_error(seed_dir: Path) -> str:
    process = EmulatorProcess(seed=SEED, seed_dir=seed_dir)
    try:
        with pytest.raises(EmulatorStartError) as exc:
            process.start()
    finally:
        process.stop()
    return str(exc.value)


@pytest.mark.parametrize(
    "bad",
    [b"bad-\xff.txt", b"dir-\xfe/inside.txt"],
    ids=["file", "folder"],
)
def test_a_file_name_that_is_not_utf8_is_refused_at_load(tmp_path: Path, bad: bytes) -> None:
    _write(tmp_path, b"good.txt", b"fine")
    _write(tmp_path, bad, b"unreadable name")

    message = _start_error(tmp_path)

    line = f"seed folder {tmp_path}: file name {bad!r} is not valid UTF-8: rename it"
    assert message.startswith("the Tigris emulator did not start: ")
    assert message.endswith(line)


def test_utf8_names_beyond_ascii_load_and_list_through_a_fork(tmp_path: Path) -> None:
    names = ["caf\u00e9/men\u00fc.txt", "sp ace/a+b.txt", "\u65e5\u672c/\u8a9e.txt"]
    for number, name in enumerate(names):
        _write(tmp_path, name.encode("utf-8"), str(number).encode())

    with EmulatorProcess(seed=SEED, seed_dir=tmp_path) as process:
        s3 = make_client(process.endpoint_url)
        fork(s3, "seed-dir-fork", SEED)
        assert keys(s3, "seed-dir-fork") == sorted(names)
        listing = s3.list_objects(Bucket="seed-dir-fork", Delimiter="/")
        assert [p["Prefix"] for p in listing["CommonPrefixes"]] == sorted(
            n.split("/")[0] + "/" for n in names
        )
        for number, name in enumerate(names):
            assert body(s3, "seed-dir-fork", name) == str(number).encode()


def test_the_command_line_prints_the_refusal_as_one_line(tmp_path: Path) -> None:
    _write(tmp_path, b"bad-\xff.txt", b"unreadable name")
    command = [sys.executable, "-m", "pytest_tigris", "emulator", "--seed", SEED]

    done = subprocess.run(
        [*command, "--seed-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2  # a usage error: the folder given
    assert done.stdout == ""
    assert done.stderr == (
        f"pytest-tigris emulator: seed folder {tmp_path}: file name b'bad-\\xff.txt' "
        "is not valid UTF-8: rename it\n"
    )
