"""The ``pytest-tigris`` command (also ``python -m pytest_tigris``). Never imports pytest.

Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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

    sweep = commands.add_parser(
        "sweep",
        help="delete forks leaked by pytest runs that died",
        description=(
            "Delete pytest-tigris forks whose run is over: not held by a live pytest run on "
            "this machine and older than --older-than. Only buckets named like a "
            "pytest-tigris fork that the endpoint reports as forks are deleted."
        ),
    )
    _endpoint_option(sweep)
    sweep.add_argument(
        "--older-than",
        default="2h",
        metavar="AGE",
        help="only forks at least this old, e.g. 30m, 2h, 0s (default: %(default)s)",
    )
    sweep.add_argument("--prefix", help="only forks whose name starts with this prefix")
    sweep.add_argument("--dry-run", action="store_true", help="list what would be deleted")

    env = commands.add_parser(
        "env",
        help="named fork environments: PROJECT-bucket-NAME forked from the seed",
        description=(
            "Create, list, delete and switch named fork environments (forkstack naming: "
            "PROJECT-bucket-NAME). The project comes from --project, $PYTEST_TIGRIS_PROJECT "
            "or [tool.pytest-tigris] project in pyproject.toml; the seed likewise (seed)."
        ),
    )
    env_commands = env.add_subparsers(dest="env_command", metavar="ACTION")
    env_commands.required = True
    create = env_commands.add_parser("create", help="fork the seed into PROJECT-bucket-NAME")
    create.add_argument("name", help="environment name, e.g. alice or pr-42")
    for action in (create,):
        action.add_argument("--seed", help="the snapshot-enabled seed bucket to fork")
    delete = env_commands.add_parser("delete", help="force-delete an environment's fork")
    delete.add_argument("name")
    listing = env_commands.add_parser("list", help="list the seed's forks with their age")
    listing.add_argument("--seed", help="the seed bucket whose forks to list")
    switch = env_commands.add_parser("switch", help="make NAME the current environment")
    switch.add_argument("name")
    for action in (create, delete, listing, switch):
        action.add_argument("--project", help="project name (bucket prefix)")
        if action is not switch:
            _endpoint_option(action)

    snapshot = commands.add_parser("snapshot", help="take a snapshot of a bucket")
    _endpoint_option(snapshot)
    snapshot.add_argument("bucket", help="a snapshot-enabled bucket")
    snapshot.add_argument("--name", help="a name for the snapshot")
    return parser


def _endpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="S3 endpoint (default: $PYTEST_TIGRIS_ENDPOINT, $AWS_ENDPOINT_URL_S3, "
        "$AWS_ENDPOINT_URL); credentials come from the AWS variables or .env.local",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        return _emulator(parser, args)
    if args.command in ("sweep", "snapshot"):
        return _remote_command(parser, args)
    if args.command == "env":
        return _env_command(parser, args)
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
    from .emulator.errors import EmulatorError
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


def _connect(parser: argparse.ArgumentParser, endpoint: str | None) -> Any:
    """A ForkJanitor for the endpoint (usage error when there is none)."""
    from .client import ClientFactory
    from .config import TigrisConfig
    from .exceptions import TigrisConfigError
    from .janitor import ForkJanitor

    try:
        config = TigrisConfig.load(options={"endpoint": endpoint, "backend": "remote"}, ini={})
    except TigrisConfigError as exc:
        message = str(exc).replace("--tigris-backend=remote", "this command")
        parser.error(message.replace("--tigris-endpoint", "--endpoint"))
    clients = ClientFactory(config, config.endpoint_url)
    return ForkJanitor(clients.client, config.endpoint_url)


def _run(command: str, janitor: Any, action: Callable[[], int]) -> int:
    """Run ``action``, turning failures into one line on stderr and exit code 1."""
    from .client import check_reachable
    from .exceptions import TigrisError
    from .janitor import describe_client_error

    try:
        check_reachable(janitor.endpoint_url)
        return action()
    except TigrisError as exc:
        print(f"pytest-tigris {command}: {exc}", file=sys.stderr)
    except Exception as exc:
        error = describe_client_error(exc, janitor.endpoint_url)
        print(f"pytest-tigris {command}: {error or exc}", file=sys.stderr)
    return 1


def _remote_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .sweep import parse_duration, sweep

    older_than = None
    if args.command == "sweep":
        try:
            older_than = parse_duration(args.older_than)
        except ValueError as exc:
            parser.error(f"--older-than: {exc}")
    janitor = _connect(parser, args.endpoint)

    def snapshot() -> int:
        print(janitor.snapshot(args.bucket, args.name))
        return 0

    def sweep_forks() -> int:
        assert older_than is not None
        result = sweep(janitor, older_than=older_than, dry_run=args.dry_run, prefix=args.prefix)
        verb = "would delete" if args.dry_run else "deleted"
        for name in result.deleted:
            print(f"{verb} {name}")
        for name in result.live:
            print(f"kept {name}: its run is still going on this machine")
        if result.young:
            print(f"kept {len(result.young)} fork(s) younger than {args.older_than}")
        for name, why in result.failed:
            print(f"could not delete {name}: {why}", file=sys.stderr)
        return 1 if result.failed else 0

    return _run(args.command, janitor, snapshot if args.command == "snapshot" else sweep_forks)


def _env_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .envs import (
        CURRENT_ENV_FILE,
        EnvSettings,
        age,
        bucket_name,
        check_deletable_env,
        read_current_env,
    )
    from .exceptions import TigrisConfigError

    action = args.env_command
    settings = EnvSettings.load(project=args.project, seed=getattr(args, "seed", None))
    try:
        if action == "switch":
            name = bucket_name(settings.project, args.name) if settings.project else None
            env_name = args.name.strip().lower()
            if name is None:
                bucket_name("p", env_name)  # validates the environment name
            Path(CURRENT_ENV_FILE).write_text(env_name + "\n", encoding="utf-8")
            print(f"current environment: {env_name}" + (f" (bucket {name})" if name else ""))
            return 0
        if action == "list":
            if not settings.seed:
                raise TigrisConfigError(
                    'no seed: pass --seed, set PYTEST_TIGRIS_SEED, or add `seed = "..."` '
                    "under [tool.pytest-tigris] in pyproject.toml"
                )
            name = None
        else:
            name = bucket_name(settings.require_project(), args.name)
            if action == "create" and not settings.seed:
                raise TigrisConfigError(
                    'no seed: pass --seed, set PYTEST_TIGRIS_SEED, or add `seed = "..."` '
                    "under [tool.pytest-tigris] in pyproject.toml"
                )
    except TigrisConfigError as exc:
        parser.error(str(exc))
    janitor = _connect(parser, args.endpoint)
    janitor.protected = {settings.seed} if settings.seed else set()

    def create() -> int:
        from .janitor import ForkNameTakenError

        assert name is not None and settings.seed
        janitor.check_seed(settings.seed)
        try:
            janitor.fork(name, settings.seed)
        except ForkNameTakenError:
            print(
                f"pytest-tigris env: bucket {name} already exists (bucket names are global "
                f"on Tigris): pick another name, e.g. {args.name}-2",
                file=sys.stderr,
            )
            return 1
        print(f"created {name} (fork of {settings.seed})")
        print(f"export TIGRIS_ENV={args.name.strip().lower()}")
        print(f"export TIGRIS_BUCKET={name}")
        print(f"export BUCKET_NAME={name}")
        if janitor.endpoint_url:
            print(f"export AWS_ENDPOINT_URL_S3={janitor.endpoint_url}")
        return 0

    def delete() -> int:
        assert name is not None
        check_deletable_env(name, args.name.strip().lower(), settings)
        if janitor.delete_env(name):
            print(f"deleted {name}")
        else:
            print(f"{name} does not exist")
        return 0

    def list_envs() -> int:
        assert settings.seed
        from tigris_boto3_ext import list_forks

        current = read_current_env()
        page = list_forks(janitor.admin, settings.seed)
        if not page["buckets"]:
            print(f"{settings.seed} has no forks")
        for entry in sorted(page["buckets"], key=lambda e: e["name"]):
            marker = (
                "*"
                if settings.project
                and current
                and entry["name"] == bucket_name(settings.project, current)
                else " "
            )
            print(f"{marker} {entry['name']}  {age(entry.get('created_at'))}")
        return 0

    actions = {"create": create, "delete": delete, "list": list_envs}
    return _run(f"env {action}", janitor, actions[action])
