"""The standalone emulator as a user runs it: ``python -m pytest_tigris emulator`` and the
``pytest-tigris`` console script, plus the Python API (``EmulatorServer``/``EmulatorProcess``).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from pytest_tigris import cli
from pytest_tigris.emulator import EmulatorProcess, EmulatorServer, EmulatorStartError
from tests.helpers import body, keys, make_client

ROOT = Path(__file__).resolve().parents[2]
MODULE = [sys.executable, "-m", "pytest_tigris"]
READY = re.compile(r"READY http://(?P<host>[^:\s]+):(?P<port>\d+)")
STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 5.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(cli.FAULTS_ENV, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    # ValueError: the test already read the pipes to the end.
    with suppress(subprocess.TimeoutExpired, ValueError):
        process.communicate(timeout=EXIT_TIMEOUT)


def _read_line(process: subprocess.Popen[str], timeout: float = STARTUP_TIMEOUT) -> str:
    """The next stdout line of ``process``, or "" if it exits or times out first."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            return process.stdout.readline()
        if process.poll() is not None:
            return ""
    return ""


@contextmanager
def _running(
    args: Sequence[str], command: Sequence[str] = MODULE
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``<command> emulator <args>``, wait for READY, yield (process, endpoint url)."""
    process = subprocess.Popen(
        [*command, "emulator", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        line = _read_line(process)
        match = READY.fullmatch(line.rstrip("\n"))
        if match is None:
            if process.poll() is None:
                process.kill()
            _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
            raise AssertionError(f"no READY line, got {line!r}; stderr: {stderr.strip()}")
        yield process, f"http://{match['host']}:{match['port']}"
    finally:
        _kill(process)


def _run(args: Sequence[str], command: Sequence[str] = MODULE) -> subprocess.CompletedProcess[str]:
    """Run ``<command> emulator <args>`` expecting it to exit by itself (it must not serve)."""
    try:
        return subprocess.run(
            [*command, "emulator", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            timeout=8,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"emulator {list(args)} did not exit; stdout: {exc.stdout!r}")


def _console_script() -> str:
    found = shutil.which("pytest-tigris", path=str(Path(sys.executable).parent)) or shutil.which(
        "pytest-tigris"
    )
    if found is None:
        pytest.skip("the pytest-tigris console script is not installed")
    return found


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _non_loopback_address() -> str | None:
    """An IPv4 address of this host other than loopback, if it has one."""
    candidates: list[str] = []
    # A UDP connect sends nothing; it only makes the kernel pick the outgoing interface.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, suppress(OSError):
        probe.connect(("198.51.100.1", 9))
        candidates.append(str(probe.getsockname()[0]))
    with suppress(OSError):
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    usable = [a for a in candidates if not a.startswith("127.") and a != "0.0.0.0"]
    return usable[0] if usable else None


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # An orphan nobody reaps stays a zombie: it is gone as far as we care.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_running(pid):
            return True
        time.sleep(0.05)
    return not _pid_running(pid)


@pytest.fixture
def no_serve(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Make ``cli.main`` return 99 instead of serving forever if it accepts its arguments."""
    from pytest_tigris.emulator import server

    calls: list[dict[str, object]] = []

    def fake_serve(**kwargs: object) -> int:
        calls.append(kwargs)
        return 99

    monkeypatch.setattr(server, "serve", fake_serve)
    monkeypatch.delenv(cli.FAULTS_ENV, raising=False)
    return calls


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# -- running it ---------------------------------------------------------------------------


def test_ready_line_and_port_answers() -> None:
    with _running([]) as (process, url):
        match = READY.fullmatch(f"READY {url}")
        assert match is not None
        assert int(match["port"]) > 0
        s3 = make_client(url)
        assert s3.list_buckets()["Buckets"] == []
        s3.create_bucket(Bucket="cli-ready")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["cli-ready"]
        assert process.poll() is None


def test_explicit_port_is_used() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with _running(["--port", str(port)]) as (_, url):
        assert url == f"http://127.0.0.1:{port}"
        make_client(url).list_buckets()


def test_binds_loopback_by_default() -> None:
    with _running([]) as (_, url):
        match = READY.fullmatch(f"READY {url}")
        assert match is not None
        assert match["host"] == "127.0.0.1"
        port = int(match["port"])
        assert _accepts("127.0.0.1", port)
        other = _non_loopback_address()
        if other is not None:
            assert not _accepts(other, port), f"the emulator also answers on {other}"


def test_console_script() -> None:
    script = _console_script()
    with _running([], command=[script]) as (process, url):
        assert READY.fullmatch(f"READY {url}")
        make_client(url).list_buckets()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=EXIT_TIMEOUT) == 0


def test_console_script_usage_error(tmp_path: Path) -> None:
    result = _run(["--seed-dir", str(tmp_path / "missing"), "--seed", "s1"], [_console_script()])
    assert result.returncode == 2
    assert "--seed-dir" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_exits_cleanly_on_signal(signum: signal.Signals) -> None:
    with _running([]) as (process, url):
        make_client(url).list_buckets()
        process.send_signal(signum)
        assert process.wait(timeout=EXIT_TIMEOUT) == 0
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
        assert "Traceback" not in stderr
        port = int(url.rsplit(":", 1)[1])
        assert not _accepts("127.0.0.1", port)


# -- seeding ------------------------------------------------------------------------------

SEED_TREE = {
    "top.txt": b"top level\n",
    "empty.txt": b"",
    "nested/deeper/data.bin": bytes(range(256)) * 64,
    "with space/\u00fcn\u00efcode \u4e16\u754c.txt": "h\u00e9llo".encode(),
    "plus/a+b=c.json": b'{"a": 1}',
}


def test_seed_dir_loads_files(tmp_path: Path) -> None:
    for key, data in SEED_TREE.items():
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with _running(["--seed", "cli-seed", "--seed-dir", str(tmp_path)]) as (_, url):
        s3 = make_client(url)
        assert sorted(keys(s3, "cli-seed")) == sorted(SEED_TREE)
        for key, data in SEED_TREE.items():
            assert body(s3, "cli-seed", key) == data, key
        headers = s3.head_bucket(Bucket="cli-seed")["ResponseMetadata"]["HTTPHeaders"]
        assert headers.get("x-tigris-enable-snapshot") == "true"


def test_seed_without_dir_is_empty_snapshot_enabled() -> None:
    with _running(["--seed", "cli-empty-seed"]) as (_, url):
        s3 = make_client(url)
        assert keys(s3, "cli-empty-seed") == []
        headers = s3.head_bucket(Bucket="cli-empty-seed")["ResponseMetadata"]["HTTPHeaders"]
        assert headers.get("x-tigris-enable-snapshot") == "true"


# -- --parent-pid -------------------------------------------------------------------------

_PARENT = """
import subprocess, sys, time, os
child = subprocess.Popen(
    [sys.executable, "-m", "pytest_tigris", "emulator", "--parent-pid", str(os.getpid())],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def test_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    child_pid = 0
    try:
        line = _read_line(parent)
        pid_text, _, ready = line.strip().partition(" ")
        child_pid = int(pid_text)
        match = READY.fullmatch(ready)
        assert match is not None, line
        make_client(f"http://{match['host']}:{match['port']}").list_buckets()
        parent.kill()
        parent.wait(timeout=EXIT_TIMEOUT)
        assert _wait_gone(child_pid, EXIT_TIMEOUT), "the emulator outlived its parent"
    finally:
        _kill(parent)
        if child_pid and _pid_running(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_exits_when_the_watched_pid_is_killed() -> None:
    """``--parent-pid PID``: "exit when the process PID is gone" — any PID, not only ours."""
    watched = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL
    )
    try:
        with _running(["--parent-pid", str(watched.pid)]) as (process, url):
            time.sleep(1.5)  # the watcher polls every 0.5 s
            assert process.poll() is None, "the emulator exited while PID was still alive"
            make_client(url).list_buckets()
            watched.kill()
            watched.wait(timeout=EXIT_TIMEOUT)
            assert process.wait(timeout=EXIT_TIMEOUT) == 0
    finally:
        if watched.poll() is None:
            watched.kill()
        watched.wait(timeout=EXIT_TIMEOUT)


# -- usage errors -------------------------------------------------------------------------

USAGE_ERRORS = [
    pytest.param(
        ["--seed", "s1", "--seed-dir", "{tmp}/missing"], "--seed-dir", id="seed-dir-missing"
    ),
    pytest.param(["--seed-dir", "{tmp}"], "--seed-dir", id="seed-dir-without-seed"),
    pytest.param(["--seed", "Bad_Name"], "--seed", id="bad-seed-name"),
    pytest.param(["--seed", "ab"], "--seed", id="short-seed-name"),
    pytest.param(["--access-key", "AK"], "--access-key", id="access-key-alone"),
    pytest.param(["--secret-key", "SK"], "--secret-key", id="secret-key-alone"),
    pytest.param(["--faults", "slowdown=lots"], "--faults", id="faults-not-a-number"),
    pytest.param(["--faults", "bogus=0.1"], "--faults", id="faults-unknown-name"),
    pytest.param(["--faults", "slowdown"], "--faults", id="faults-no-value"),
    pytest.param(["--faults", "slowdown=0.7,error=0.6"], "--faults", id="faults-over-one"),
    pytest.param(["--faults", "slowdown=-0.1"], "--faults", id="faults-negative"),
    pytest.param(["--faults", "slowdown=-0.2,error=0.5"], "--faults", id="faults-one-negative"),
    pytest.param(["--port", "http"], "--port", id="port-not-a-number"),
]


def _fill(args: Sequence[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize(("args", "option"), USAGE_ERRORS)
def test_usage_error_exits_2(args: list[str], option: str, tmp_path: Path) -> None:
    result = _run(_fill(args, tmp_path))
    assert result.returncode == 2, result.stderr
    assert "READY" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert option in lines[0]


@pytest.mark.parametrize(("args", "option"), USAGE_ERRORS)
def test_main_usage_error(
    args: list[str],
    option: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_serve: list[dict[str, object]],
) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.main(["emulator", *_fill(args, tmp_path)])
    assert exc_info.value.code == 2
    assert no_serve == []
    out, err = capsys.readouterr()
    assert "READY" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert option in lines[0]


def test_bad_faults_from_environment_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_serve: list[dict[str, object]],
) -> None:
    monkeypatch.setenv(cli.FAULTS_ENV, "slowdown=often")
    with pytest.raises(SystemExit) as exc_info:
        cli.main(["emulator"])
    assert exc_info.value.code == 2
    assert no_serve == []
    assert "--faults" in capsys.readouterr().err


def test_main_passes_valid_options_to_the_server(
    tmp_path: Path, no_serve: list[dict[str, object]]
) -> None:
    argv = ["emulator", "--seed", "cli-seed", "--seed-dir", str(tmp_path), "--port", "0"]
    argv += ["--access-key", "AK", "--secret-key", "SK", "--faults", "error=0.5,seed=3"]
    assert cli.main(argv) == 99
    assert len(no_serve) == 1
    call = no_serve[0]
    assert call["host"] == "127.0.0.1"
    assert (call["seed"], call["seed_dir"]) == ("cli-seed", str(tmp_path))
    assert (call["access_key"], call["secret_key"]) == ("AK", "SK")
    assert call["faults"] == "error=0.5,seed=3"


def test_main_without_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.main([])
    assert exc_info.value.code == 2
    assert capsys.readouterr().err.strip()


# -- port in use --------------------------------------------------------------------------


def test_port_in_use_exits_1(busy_port: int) -> None:
    result = _run(["--port", str(busy_port)])
    assert result.returncode == 1
    assert "READY" not in result.stdout
    assert "Traceback" not in result.stderr
    assert str(busy_port) in result.stderr
    assert "in use" in result.stderr.lower()


def test_main_port_in_use_returns_1(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` returns its exit code (it does not raise SystemExit) with its own message."""
    assert cli.main(["emulator", "--port", str(busy_port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{busy_port}" in err
    assert len(err.strip().splitlines()) == 1, err


# -- Python API ---------------------------------------------------------------------------


def test_emulator_server_in_this_process() -> None:
    with EmulatorServer(port=0) as server:
        assert server.port > 0
        assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
        assert _accepts("127.0.0.1", server.port)
        make_client(server.endpoint_url).list_buckets()
        port = server.port
    assert not _accepts("127.0.0.1", port)
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url


def test_emulator_server_port_in_use_raises_oserror(busy_port: int) -> None:
    """A library must not ``sys.exit`` its caller: a busy port is an ``OSError``."""
    server = EmulatorServer(port=busy_port)
    try:
        with pytest.raises(OSError):
            server.start()
    finally:
        server.stop()


def test_emulator_process_leaves_nothing_behind() -> None:
    emulator = EmulatorProcess()
    try:
        emulator.start()
        assert emulator.process is not None
        pid = emulator.process.pid
        assert READY.fullmatch(f"READY {emulator.endpoint_url}")
        make_client(emulator.endpoint_url).list_buckets()
        port = int(emulator.endpoint_url.rsplit(":", 1)[1])
        emulator.stop()
        assert emulator.process is None
        assert not _pid_running(pid)
        assert not _accepts("127.0.0.1", port)
        emulator.stop()  # idempotent
    finally:
        if emulator.process is not None and emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.wait(timeout=EXIT_TIMEOUT)


def test_emulator_process_start_failure_is_reported() -> None:
    emulator = EmulatorProcess(seed="Bad_Name")
    try:
        with pytest.raises(EmulatorStartError, match="--seed"):
            emulator.start()
        assert emulator.process is not None
        assert emulator.process.poll() is not None
    finally:
        if emulator.process is not None and emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.wait(timeout=EXIT_TIMEOUT)
