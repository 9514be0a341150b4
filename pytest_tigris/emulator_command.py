"""``pytest-tigris emulator``: checks its options, then serves (``emulator.server.serve``).

Every mistake on the command line is one line and exit code 2 before anything listens. Never
imports pytest.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from pathlib import Path

from .emulator.server import ACCESS_KEY_ENV, SECRET_KEY_ENV

__all__ = [
    "ACCESS_KEY_ENV",
    "FAULTS_ENV",
    "SECRET_KEY_ENV",
    "parse_delay",
    "run_emulator",
    "unreadable_folder",
]

FAULTS_ENV = "PYTEST_TIGRIS_EMULATOR_FAULTS"


def parse_delay(text: str) -> float:
    """Seconds from ``30ms`` / ``0.5s`` / ``0`` (a unit is required for anything else)."""
    value = text.strip().lower()
    scales = {"ms": 0.001, "s": 1.0}
    unit = "ms" if value.endswith("ms") else "s" if value.endswith("s") else ""
    try:
        seconds = float(value[: -len(unit)]) * scales[unit] if unit else float(value) * 0
        if not unit and float(value) != 0:
            raise ValueError(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 60:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a delay: give milliseconds or seconds up to 60 s, e.g. 30ms"
        )
    return seconds


def run_emulator(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    access_key = args.access_key or os.environ.get(ACCESS_KEY_ENV) or None
    secret_key = args.secret_key or os.environ.get(SECRET_KEY_ENV) or None
    if (access_key is None) != (secret_key is None):
        if access_key is None:
            given, missing, env = "--secret-key", "--access-key", ACCESS_KEY_ENV
        else:
            given, missing, env = "--access-key", "--secret-key", SECRET_KEY_ENV
        parser.error(
            f"{given} and {missing} go together: give both or neither ({missing} may come "
            f"from ${env})"
        )
    _check_keys(parser, access_key, secret_key)
    if args.persist is not None:
        persist = Path(args.persist)
        if persist.exists() and not persist.is_dir():
            parser.error(
                f"--persist {args.persist}: not a folder: give a folder (it may not exist yet)"
            )
        try:  # made now rather than once serving: a folder that cannot be is a usage error
            persist.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(
                f"--persist {args.persist}: cannot create it: {exc.strerror or exc}: "
                "give a folder you can write"
            )
    if args.seed_dir is not None:
        problem = unreadable_folder(Path(args.seed_dir))
        if problem:
            parser.error(f"--seed-dir {args.seed_dir}: {problem}")
        if args.seed is None:
            parser.error("--seed-dir needs --seed NAME (the bucket to load it into)")
    from .emulator.errors import EmulatorError, InvalidPersistFolder, InvalidSeedFolder
    from .emulator.models import validate_bucket_name
    from .emulator.responses import Faults

    if args.seed is not None:
        try:
            validate_bucket_name(args.seed)
        except EmulatorError:
            parser.error(
                f"--seed {args.seed!r} is not a valid bucket name: use 3-63 characters "
                "a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
            )
    try:
        Faults.parse(args.faults)
    except ValueError as exc:
        parser.error(f"--faults: {exc}")
    loopback = _resolves_to_loopback(parser, args.host, args.port)
    try:
        _probe_bind(args.host, args.port)
    except OSError as exc:
        return _cannot_listen(args, exc)
    if not loopback and access_key is None:
        print(
            f"pytest-tigris emulator: warning: listening on {args.host} without keys: anyone "
            "on the network can read and delete every bucket; set "
            f"${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} (or --access-key and --secret-key)",
            file=sys.stderr,
        )

    from .emulator.server import serve

    try:
        return serve(
            host=args.host,
            port=args.port,
            seed=args.seed,
            seed_dir=args.seed_dir,
            access_key=access_key,
            secret_key=secret_key,
            faults=args.faults,
            parent_pid=args.parent_pid,
            latency=args.latency,
            persist=args.persist,
        )
    except OSError as exc:
        if exc.filename is not None:
            print(
                f"pytest-tigris emulator: cannot {_file_use(args, exc.filename)}: "
                f"{exc.filename}: {exc.strerror}",
                file=sys.stderr,
            )
            return 1
        return _cannot_listen(args, exc)
    except (InvalidSeedFolder, InvalidPersistFolder) as exc:
        # What the user pointed --seed-dir or --persist at cannot be used as it is.
        print(f"pytest-tigris emulator: {exc.message}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"pytest-tigris emulator: {exc.message}", file=sys.stderr)
        return 1


def _file_use(args: argparse.Namespace, filename: object) -> str:
    """What the emulator was doing with ``filename``: which option's folder it is in."""
    path = Path(os.fsdecode(filename)) if isinstance(filename, (str, bytes)) else None
    for option, folder in (("--persist", args.persist), ("--seed-dir", args.seed_dir)):
        if path is not None and folder is not None:
            root = Path(folder).absolute()
            if path.absolute() == root or root in path.absolute().parents:
                return "use --persist" if option == "--persist" else "load --seed-dir"
    return "read a file"


def _cannot_listen(args: argparse.Namespace, exc: OSError) -> int:
    reason = exc.strerror or str(exc)
    print(
        f"pytest-tigris emulator: cannot listen on {args.host}:{args.port}: {reason}",
        file=sys.stderr,
    )
    # An address this machine does not have is a usage error; a busy port is not.
    return 2 if exc.errno == errno.EADDRNOTAVAIL else 1


def _probe_bind(host: str, port: int) -> None:
    """Raise the OSError the server would meet binding ``host:port``, before anything prints.

    The server binds the same way again moments later; the probe only makes a failure the
    sole line on stderr (not one after the network warning).
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


_PRINTABLE_ASCII = re.compile(r"[ -~]+")


def _check_keys(
    parser: argparse.ArgumentParser, access_key: str | None, secret_key: str | None
) -> None:
    # Request headers arrive as Latin-1, so a non-ASCII key could never match; the key id
    # travels inside the Credential field, which '/', ',' and spaces would split.
    if access_key is not None and (
        not _PRINTABLE_ASCII.fullmatch(access_key) or any(c in access_key for c in " /,")
    ):
        parser.error("--access-key: use printable ASCII without spaces, '/' or ','")
    if secret_key is not None and not _PRINTABLE_ASCII.fullmatch(secret_key):
        parser.error("--secret-key: use printable ASCII")


def unreadable_folder(folder: Path) -> str | None:
    """Why the seed folder cannot be loaded, or None when every file in it can be read."""
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "not a folder"
    if not os.access(folder, os.R_OK | os.X_OK):
        return "permission denied"
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.access(path, os.R_OK | os.X_OK):
                return f"cannot read {path}: permission denied"
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.access(path, os.R_OK):
                return f"cannot read {path}: permission denied"
    return None


def _resolves_to_loopback(parser: argparse.ArgumentParser, host: str, port: int) -> bool:
    """Whether every address ``host`` names is a loopback one; usage error if none."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        parser.error(f"--host {host}: cannot resolve this name to an address")
    addresses = {str(info[4][0]) for info in infos}
    return all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)
