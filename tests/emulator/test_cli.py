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


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name in (cli.FAULTS_ENV, cli.ACCESS_KEY_ENV, cli.SECRET_KEY_ENV):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
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
    args: Sequence[str],
    command: Sequence[str] = MODULE,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``<command> emulator <args>``, wait for READY, yield (process, endpoint url)."""
    process = subprocess.Popen(
        [*command, "emulator", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
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


def _run(
    args: Sequence[str], command: Sequence[str] = MODULE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``<command> emulator <args>`` expecting it to exit by itself (it must not serve)."""
    try:
        return subprocess.run(
            [*command, "emulator", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(env),
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
    for name in (cli.FAULTS_ENV, cli.ACCESS_KEY_ENV, cli.SECRET_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
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
    pytest.param(["--port", "99999"], "--port", id="port-too-big"),
    pytest.param(["--port", "65536"], "--port", id="port-65536"),
    pytest.param(["--port", "-1"], "--port", id="port-negative"),
    pytest.param(["--port", "\u0663"], "--port", id="port-non-ascii-digit"),
    pytest.param(
        ["--seed", "seed-one", "--seed-dir", "{tmp}/file.txt"], "--seed-dir", id="seed-dir-file"
    ),
    pytest.param(["--seed", "bad-name-"], "--seed", id="seed-dash-end"),
    pytest.param(["--seed", "a" * 64], "--seed", id="seed-too-long"),
    pytest.param(["--parent-pid", "0"], "--parent-pid", id="parent-pid-zero"),
    pytest.param(["--parent-pid", "-5"], "--parent-pid", id="parent-pid-negative"),
    pytest.param(["--access-key", "a/b", "--secret-key", "s"], "--access-key", id="key-slash"),
    pytest.param(["--access-key", "a b", "--secret-key", "s"], "--access-key", id="key-space"),
    pytest.param(["--access-key", "k\u00e9", "--secret-key", "s"], "--access-key", id="key-latin1"),
    pytest.param(
        ["--access-key", "k", "--secret-key", "s\u00e9"], "--secret-key", id="secret-latin1"
    ),
    pytest.param(["--persist", "/proc/no-such-folder"], "--persist", id="persist-uncreatable"),
    pytest.param(["--host", "no-such-host.invalid"], "--host", id="host-unresolvable"),
    pytest.param(["--host", "256.1.1.1"], "--host", id="host-bad-address"),
]


def _fill(args: Sequence[str], tmp: Path) -> list[str]:
    (tmp / "file.txt").write_text("not a folder")
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


# -- keys ---------------------------------------------------------------------------------


def _signed_status(url: str, access_key: str, secret_key: str) -> tuple[int, str]:
    """(HTTP status, error code or "") of a ListBuckets signed with the given keys."""
    from botocore.exceptions import ClientError

    client = make_client(url, aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    try:
        client.list_buckets()
    except ClientError as exc:
        response = exc.response
        return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]
    return 200, ""


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_keys_from_the_environment() -> None:
    env = {cli.ACCESS_KEY_ENV: "tid_FromEnv", cli.SECRET_KEY_ENV: "tsec_env_only/secret"}
    with _running([], env=env) as (process, url):
        assert _signed_status(url, "tid_FromEnv", "tsec_env_only/secret") == (200, "")
        assert _signed_status(url, "tid_FromEnv", "wrong") == (403, "SignatureDoesNotMatch")
        assert _signed_status(url, "tid_Other", "tsec_env_only/secret") == (
            403,
            "InvalidAccessKeyId",
        )
        if Path(f"/proc/{process.pid}/cmdline").exists():
            assert "tsec_env_only" not in _cmdline(process.pid)


def test_command_line_keys_win_over_the_environment() -> None:
    env = {cli.ACCESS_KEY_ENV: "tid_Env", cli.SECRET_KEY_ENV: "tsec_env"}
    with _running(["--access-key", "tid_Cli", "--secret-key", "tsec_cli"], env=env) as (_, url):
        assert _signed_status(url, "tid_Cli", "tsec_cli") == (200, "")
        assert _signed_status(url, "tid_Env", "tsec_env") == (403, "InvalidAccessKeyId")


def test_access_key_on_the_command_line_secret_in_the_environment() -> None:
    env = {cli.SECRET_KEY_ENV: "tsec_hidden"}
    with _running(["--access-key", "tid_Mixed"], env=env) as (process, url):
        assert _signed_status(url, "tid_Mixed", "tsec_hidden") == (200, "")
        if Path(f"/proc/{process.pid}/cmdline").exists():
            assert "tsec_hidden" not in _cmdline(process.pid)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({cli.ACCESS_KEY_ENV: "tid_Alone"}, "--secret-key"),
        ({cli.SECRET_KEY_ENV: "tsec_alone"}, "--access-key"),
    ],
    ids=["access-key-only", "secret-key-only"],
)
def test_one_key_in_the_environment_is_a_usage_error(env: dict[str, str], missing: str) -> None:
    result = _run([], env=env)
    assert result.returncode == 2
    assert "READY" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0]
    other = cli.SECRET_KEY_ENV if missing == "--secret-key" else cli.ACCESS_KEY_ENV
    assert other in lines[0]
    assert "tsec_alone" not in result.stderr


def test_help_names_the_key_variables() -> None:
    result = subprocess.run(
        [*MODULE, "emulator", "--help"], capture_output=True, text=True, env=_env(), timeout=30
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert cli.ACCESS_KEY_ENV in text
    assert cli.SECRET_KEY_ENV in text


# -- listening beyond loopback -------------------------------------------------------------


def _stderr_after_ready(args: Sequence[str], env: dict[str, str] | None = None) -> str:
    with _running(args, env=env) as (process, url):
        if env is None:
            make_client(url).list_buckets()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
    return stderr


def test_all_interfaces_without_keys_warns() -> None:
    lines = _stderr_after_ready(["--host", "0.0.0.0"]).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("pytest-tigris emulator: warning: listening on 0.0.0.0 ")
    assert "anyone on the network can read and delete every bucket" in lines[0]
    assert cli.ACCESS_KEY_ENV in lines[0]
    assert cli.SECRET_KEY_ENV in lines[0]


def test_all_interfaces_with_keys_does_not_warn() -> None:
    env = {cli.ACCESS_KEY_ENV: "tid_Net", cli.SECRET_KEY_ENV: "tsec_net"}
    assert _stderr_after_ready(["--host", "0.0.0.0"], env=env) == ""


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
def test_loopback_does_not_warn(host: str) -> None:
    assert _stderr_after_ready(["--host", host]) == ""


def test_ipv6_loopback_does_not_warn() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    process = subprocess.Popen(
        [*MODULE, "emulator", "--host", "::1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert _read_line(process).startswith("READY ")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
        assert stderr == ""
    finally:
        _kill(process)


def test_address_of_another_machine_is_one_line() -> None:
    # 192.0.2.0/24 is reserved for documentation: no machine has it.
    result = _run(["--host", "192.0.2.1"])
    assert result.returncode == 2
    assert "READY" not in result.stdout
    assert result.stderr.splitlines() == [
        "pytest-tigris emulator: cannot listen on 192.0.2.1:0: Cannot assign requested address"
    ]


def test_privileged_port_without_privilege_is_one_line() -> None:
    start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if start.exists() and int(start.read_text()) <= 80:
        pytest.skip("port 80 needs no privilege on this machine")
    result = _run(["--port", "80"], command=_unprivileged(MODULE))
    assert result.returncode == 1
    assert "READY" not in result.stdout
    assert result.stderr.splitlines() == [
        "pytest-tigris emulator: cannot listen on 127.0.0.1:80: Permission denied"
    ]


# -- unreadable seed folders --------------------------------------------------------------


def _unprivileged(command: Sequence[str]) -> list[str]:
    """``command`` without root's power to read and bind anything."""
    if os.geteuid() != 0:
        return list(command)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    drop = "-dac_override,-dac_read_search,-net_bind_service"
    return [setpriv, "--bounding-set", drop, *command]


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A seed folder with an unreadable file and an unreadable sub-folder (mode restored)."""
    seed = tmp_path / "seed"
    (seed / "open").mkdir(parents=True)
    (seed / "open" / "ok.txt").write_text("fine")
    yield seed
    for path in [seed, *seed.rglob("*")]:
        with suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.mark.parametrize("what", ["folder", "sub-folder", "file"])
def test_unreadable_seed_dir_is_a_usage_error(locked: Path, what: str) -> None:
    if what == "folder":
        target = locked
    elif what == "sub-folder":
        target = locked / "closed"
        target.mkdir()
        (target / "inside.txt").write_text("hidden")
    else:
        target = locked / "open" / "secret.txt"
        target.write_text("hidden")
    target.chmod(0)
    result = _run(["--seed", "seed-one", "--seed-dir", str(locked)], command=_unprivileged(MODULE))
    assert result.returncode == 2, result.stderr
    assert "READY" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pytest-tigris: error: --seed-dir {locked}: ")
    assert "permission denied" in lines[0]
    if what != "folder":
        assert str(target) in lines[0]
