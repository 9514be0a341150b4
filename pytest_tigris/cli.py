"""The ``pytest-tigris`` command (also ``python -m pytest_tigris``). Never imports pytest.

Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

FAULTS_ENV = "PYTEST_TIGRIS_EMULATOR_FAULTS"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pytest-tigris",
        description="Tools for pytest-tigris: a local Tigris emulator and fork housekeeping.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    emulator = commands.add_parser(
        "emulator",
        help="run the local Tigris emulator (moto's S3 with Tigris snapshots and forks)",
        description=(
            "Run the local Tigris emulator in the foreground. Prints 'READY http://HOST:PORT' "
            "on its own line once it accepts requests; stops on Ctrl-C or SIGTERM."
        ),
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    emulator.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    emulator.add_argument("--seed", metavar="NAME", help="create this snapshot-enabled seed bucket")
    emulator.add_argument(
        "--seed-dir",
        metavar="DIR",
        help="load this folder into the seed bucket (keys = relative paths)",
    )
    emulator.add_argument(
        "--access-key", metavar="K", help="verify SigV4 signatures with this key id"
    )
    emulator.add_argument(
        "--secret-key", metavar="S", help="secret key that goes with --access-key"
    )
    emulator.add_argument(
        "--faults",
        metavar="SPEC",
        default=os.environ.get(FAULTS_ENV),
        help=(
            "inject failures, e.g. 'slowdown=0.05,error=0.05,seed=1': the fraction of requests "
            f"answered 503 SlowDown / 500 InternalError (default: ${FAULTS_ENV} or none)"
        ),
    )
    emulator.add_argument(
        "--parent-pid", type=int, metavar="PID", help="exit when the process PID is gone"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        return _emulator(parser, args)
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover


def _emulator(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if (args.access_key is None) != (args.secret_key is None):
        parser.error("--access-key and --secret-key go together: give both or neither")
    if args.seed_dir is not None:
        if not Path(args.seed_dir).is_dir():
            parser.error(f"--seed-dir {args.seed_dir}: no such folder")
        if args.seed is None:
            parser.error("--seed-dir needs --seed NAME (the bucket to load it into)")
    from .emulator.models import EmulatorError, validate_bucket_name
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

    from .emulator.server import serve

    try:
        return serve(
            host=args.host,
            port=args.port,
            seed=args.seed,
            seed_dir=args.seed_dir,
            access_key=args.access_key,
            secret_key=args.secret_key,
            faults=args.faults,
            parent_pid=args.parent_pid,
        )
    except OSError as exc:
        print(
            f"pytest-tigris emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
