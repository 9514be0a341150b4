"""The ``pytest-tigris`` command (also ``python -m pytest_tigris``). Never imports pytest.

Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .emulator_command import ACCESS_KEY_ENV, FAULTS_ENV, SECRET_KEY_ENV, parse_delay
from .s3calls import CLI_ENDPOINT_HINT

__all__ = ["main"]


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
            "on its own line once it accepts requests; stops on Ctrl-C or SIGTERM. With a key "
            f"pair (--access-key/--secret-key or ${ACCESS_KEY_ENV}/${SECRET_KEY_ENV}) it "
            "answers only requests signed with it."
        ),
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    emulator.add_argument(
        "--port",
        type=_port,
        default=0,
        help="port to bind, 0-65535; 0 picks a free one (default: %(default)s)",
    )
    emulator.add_argument("--seed", metavar="NAME", help="create this snapshot-enabled seed bucket")
    emulator.add_argument(
        "--seed-dir",
        metavar="DIR",
        help="load this folder into the seed bucket (keys = relative paths)",
    )
    emulator.add_argument(
        "--access-key",
        metavar="K",
        help=f"verify SigV4 signatures with this key id (default: ${ACCESS_KEY_ENV})",
    )
    emulator.add_argument(
        "--secret-key",
        metavar="S",
        help=(
            f"secret key that goes with the key id (default: ${SECRET_KEY_ENV}, which keeps "
            "it out of the process list)"
        ),
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
        "--latency",
        type=parse_delay,
        default=0.0,
        metavar="DELAY",
        help=(
            "add DELAY (e.g. 30ms, 0.05s) to every request: a stand-in for the network "
            "between CI and Tigris, for benchmarks (default: none)"
        ),
    )
    emulator.add_argument(
        "--persist",
        metavar="DIR",
        help=(
            "keep buckets, snapshots and forks in DIR across restarts: restored at start, "
            "saved after changes and at shutdown (default: memory only)"
        ),
    )
    emulator.add_argument(
        "--parent-pid", type=_pid, metavar="PID", help="exit when the process PID is gone"
    )

    sweep = commands.add_parser(
        "sweep",
        help="delete forks and run snapshots leaked by pytest runs that died",
        description=(
            "Delete pytest-tigris forks and pytest-tigris-<run> snapshots whose run is over: "
            "not held by a live pytest run on this machine and older than --older-than. A "
            "fork is deleted only when the endpoint reports it as a fork made from (or marked "
            "with) its run's pytest-tigris-<run> snapshot; named environments and other "
            "buckets are never touched. Folders of dead runs in the temp dir are removed."
        ),
    )
    _endpoint_option(sweep)
    sweep.add_argument(
        "--older-than",
        default="2h",
        metavar="AGE",
        help="only forks at least this old, e.g. 30m, 2h, 0s (default: %(default)s)",
    )
    sweep.add_argument(
        "--prefix",
        help="only forks with this prefix, and run snapshots of buckets whose name starts with it",
    )
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
    switch = env_commands.add_parser(
        "switch", help="make NAME, an existing environment, the current environment"
    )
    switch.add_argument("name")
    for action in (create, delete, listing, switch):
        action.add_argument("--project", help="project name (bucket prefix)")
        _endpoint_option(action)

    snapshot = commands.add_parser("snapshot", help="take a snapshot of a bucket")
    _endpoint_option(snapshot)
    snapshot.add_argument("bucket", metavar="BUCKET", help="a snapshot-enabled bucket")
    snapshot.add_argument(
        "--name", help="a name for the snapshot: printable ASCII, e.g. 'before v2 migration'"
    )
    _seed_parser(commands)
    return parser


_SEED_EXIT_CODES = (
    "exit codes: 0 done; 1 the endpoint failed or refused, or the bucket's state forbids it "
    "(nothing is deleted either way); 2 usage: a bad argument or a folder that cannot be used, "
    "found before anything is sent; 130 interrupted"
)


def _seed_parser(commands: Any) -> None:
    seed = commands.add_parser(
        "seed",
        help="upload a folder into a seed bucket, or download a seed into a folder",
        description=(
            "Move seed data between a folder and a snapshot-enabled bucket. Folders follow the "
            "--tigris-seed-dir rules: keys are relative paths, content types come from the "
            "extensions, a .tigris-seed.json sidecar holds other content types, user metadata "
            "and tags."
        ),
        epilog=_SEED_EXIT_CODES,
    )
    actions = seed.add_subparsers(dest="seed_command", metavar="ACTION")
    actions.required = True
    push = actions.add_parser(
        "push",
        help="upload DIR into the seed BUCKET and snapshot it",
        description=(
            "Upload DIR into BUCKET exactly as the emulator would load it with "
            "--tigris-seed-dir, then take a snapshot named seed-push-<UTC time> and print its "
            "version (pin it with --tigris-seed-snapshot). BUCKET is created snapshot-enabled "
            "when missing; an existing bucket is written only with --update and must be "
            "snapshot-enabled. Nothing is ever deleted."
        ),
        epilog=_SEED_EXIT_CODES,
    )
    push.add_argument("folder", metavar="DIR", help="the seed folder to upload")
    push.add_argument("bucket", metavar="BUCKET", help="the seed bucket (created if missing)")
    push.add_argument(
        "--update",
        action="store_true",
        help="upload into an existing bucket: files overwrite their keys, other keys stay",
    )
    _endpoint_option(push)
    pull = actions.add_parser(
        "pull",
        help="download the seed BUCKET (or one of its snapshots) into DIR",
        description=(
            "Download BUCKET, or its snapshot V, into DIR for offline runs with "
            "--tigris-seed-dir, with a .tigris-seed.json sidecar for what file names cannot "
            "say, so that the emulator and 'seed push' load it back into the same objects. "
            "Keys that cannot be safe relative paths stop the pull before anything is written; "
            "folder markers and names seed folders skip (.git/, __pycache__/, .DS_Store) are "
            "left out with a note."
        ),
        epilog=_SEED_EXIT_CODES,
    )
    pull.add_argument("bucket", metavar="BUCKET", help="the bucket to download")
    pull.add_argument("folder", metavar="DIR", help="a new or empty folder")
    pull.add_argument(
        "--snapshot", metavar="V", help="download this snapshot (a version or a snapshot name)"
    )
    pull.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR: files are overwritten, none are deleted",
    )
    _endpoint_option(pull)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _pid(text: str) -> int:
    # Negative and zero pids name process groups to os.kill: never what is meant here.
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    return int(text)


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
        from .emulator_command import run_emulator

        return run_emulator(parser, args)
    if args.command in ("sweep", "snapshot"):
        return _remote_command(parser, args)
    if args.command == "env":
        return _env_command(parser, args)
    if args.command == "seed":
        return _seed_command(parser, args)
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover


def _connect(parser: argparse.ArgumentParser, endpoint: str | None) -> Any:
    """A ForkJanitor for the endpoint (usage error when there is none)."""
    from .client import ClientFactory
    from .config import load_remote
    from .exceptions import TigrisConfigError
    from .janitor import ForkJanitor

    try:
        config = load_remote(endpoint, caller="this command", endpoint_option="--endpoint")
    except TigrisConfigError as exc:
        parser.error(str(exc))
    clients = ClientFactory(config, config.endpoint_url)
    return ForkJanitor(
        clients.client,
        config.endpoint_url,
        single_shot_factory=lambda: clients.client(max_attempts=0),  # sent once
        endpoint_hint=CLI_ENDPOINT_HINT,
    )


def _run(command: str, janitor: Any, action: Callable[[], int]) -> int:
    """Run ``action``, turning failures into one line on stderr and exit code 1."""
    from .client import check_reachable
    from .exceptions import TigrisError
    from .s3calls import describe_client_error

    try:
        check_reachable(janitor.endpoint_url, hint=CLI_ENDPOINT_HINT)
        return action()
    except TigrisError as exc:
        print(f"pytest-tigris {command}: {exc}", file=sys.stderr)
    except Exception as exc:
        error = describe_client_error(exc, janitor.endpoint_url, hint=CLI_ENDPOINT_HINT)
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
    else:
        _check_bucket_name(parser, args.bucket)
        if args.name is not None and not _SNAPSHOT_NAME.fullmatch(args.name):
            parser.error(
                f"--name {args.name!r}: a snapshot name is printable ASCII (letters, digits, "
                "punctuation and inner spaces): no control characters, accents or other "
                "non-ASCII letters"
            )
    janitor = _connect(parser, args.endpoint)

    def snapshot() -> int:
        print(_snapshot(janitor, args.bucket, args.name))
        return 0

    def sweep_forks() -> int:
        assert older_than is not None
        result = sweep(janitor, older_than=older_than, dry_run=args.dry_run, prefix=args.prefix)
        verb = "would delete" if args.dry_run else "deleted"
        for name in result.deleted:
            print(f"{verb} {name}")
        for bucket, version, label in result.snapshots:
            print(f"{verb} snapshot {label} ({version}) of {bucket}")
        for name in result.live:
            print(f"kept {name}: its run is still going on this machine")
        if result.young:
            print(f"kept {len(result.young)} fork(s) younger than {args.older_than}")
        for name in result.foreign:
            print(f"kept {name}: named like a test fork, but not provably made by pytest-tigris")
        for folder in result.folders:
            print(f"removed {folder}: its run is over")
        for name, why in result.failed:
            print(f"could not delete {name}: {why}", file=sys.stderr)
        return 1 if result.failed else 0

    return _run(args.command, janitor, snapshot if args.command == "snapshot" else sweep_forks)


# Printable ASCII without spaces at the ends (HTTP drops those from the header that carries it).
_SNAPSHOT_NAME = re.compile(r"[!-~](?:[ -~]*[!-~])?")


def _check_bucket_name(parser: argparse.ArgumentParser, bucket: str) -> None:
    from .naming import valid_bucket_name

    if not valid_bucket_name(bucket):
        parser.error(
            f"BUCKET {bucket!r} is not a valid bucket name: use 3-63 characters a-z, 0-9, "
            "'.' and '-', starting and ending with a letter or digit"
        )


def _snapshot(janitor: Any, bucket: str, name: str | None) -> str:
    """Snapshot ``bucket``; a missing or plain bucket is a one-line TigrisError."""
    from botocore.exceptions import ClientError

    from .exceptions import TigrisEndpointError, TigrisError
    from .s3calls import error_code, error_status

    missing = TigrisError(
        f"bucket {bucket!r} does not exist at {janitor.endpoint_url}: check the name"
    )
    headers = janitor.head(bucket)
    if headers is None:
        raise missing
    flag = headers.get("x-tigris-enable-snapshot")
    if flag is None:
        raise TigrisEndpointError(
            f"{janitor.endpoint_url} does not speak Tigris (HeadBucket has no "
            "X-Tigris-Enable-Snapshot header): it cannot take snapshots; point --endpoint at "
            "Tigris (https://t3.storage.dev) or the emulator"
        )
    if flag.strip().lower() != "true":
        raise TigrisError(
            f"bucket {bucket!r} is not snapshot-enabled, so it has no snapshots: enable "
            "snapshots on it (Tigris dashboard, or tigris_boto3_ext.update_bucket(client, "
            f"{bucket!r}, snapshot_enabled=True)) or snapshot a snapshot-enabled bucket"
        )
    try:
        return str(janitor.snapshot(bucket, name))
    except ClientError as exc:
        # A snapshot is a CreateBucket on the wire: botocore's text would name that operation.
        if error_code(exc) == "NoSuchBucket":
            raise missing from None
        message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
        raise TigrisError(
            f"{janitor.endpoint_url} refused the snapshot of {bucket!r} "
            f"({error_code(exc) or error_status(exc)}: {message or 'no message'})"
        ) from None


def _env_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .envs import (
        CURRENT_ENV_FILE,
        EnvSettings,
        age,
        bucket_name,
        check_deletable_env,
        check_new_env,
        read_current_env,
    )
    from .exceptions import TigrisConfigError

    action = args.env_command
    try:
        settings = EnvSettings.load(project=args.project, seed=getattr(args, "seed", None))
        if action == "list":
            if not settings.seed:
                raise TigrisConfigError(
                    'no seed: pass --seed, set PYTEST_TIGRIS_SEED, or add `seed = "..."` '
                    "under [tool.pytest-tigris] in pyproject.toml"
                )
            name = None
        else:
            name = bucket_name(settings.require_project(), args.name)
            if action == "create":
                check_new_env(name, args.name)
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
        janitor.check_seed(settings.seed, what="--seed")
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
        if not janitor.delete_env(name):
            print(
                f"pytest-tigris env delete: {name} does not exist at {janitor.endpoint_url}: "
                "nothing to delete (pytest-tigris env list shows the environments)",
                file=sys.stderr,
            )
            return 1
        print(f"deleted {name}")
        return 0

    def switch() -> int:
        assert name is not None
        env_name = args.name.strip().lower()
        if janitor.head(name) is None:
            current = read_current_env()
            stays = f"stays {current!r}" if current else "is still unset"
            print(
                f"pytest-tigris env switch: {name} does not exist at {janitor.endpoint_url}: "
                f"create it with pytest-tigris env create {env_name} (the current environment "
                f"{stays})",
                file=sys.stderr,
            )
            return 1
        Path(CURRENT_ENV_FILE).write_text(env_name + "\n", encoding="utf-8")
        print(f"current environment: {env_name} (bucket {name})")
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

    actions = {"create": create, "delete": delete, "list": list_envs, "switch": switch}
    return _run(f"env {action}", janitor, actions[action])


def _seed_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    action = args.seed_command
    folder = Path(args.folder)
    _check_bucket_name(parser, args.bucket)
    objects: list[Any] = []
    if action == "push":
        from .emulator.errors import InvalidSeedFolder
        from .emulator.seedfolder import read_seed_folder
        from .emulator_command import unreadable_folder

        problem = unreadable_folder(folder)
        if problem:
            parser.error(f"DIR {args.folder}: {problem} (give the seed folder to upload)")
        try:
            objects = read_seed_folder(folder)
        except InvalidSeedFolder as exc:
            parser.error(exc.message)
    else:
        from .seeds import pull_target_problem

        problem = pull_target_problem(folder, args.force)
        if problem:
            parser.error(f"DIR {args.folder}: {problem}")
    janitor = _connect(parser, args.endpoint)
    progress = sys.stderr if sys.stderr.isatty() else None

    def push() -> int:
        from .seeds import human_size, push

        result = push(
            janitor, janitor.workers, objects, args.bucket, update=args.update, progress=progress
        )
        how = "a new snapshot-enabled bucket" if result.created else "updated: other keys kept"
        count = _count(result.objects, "object")
        print(
            f"uploaded {count} ({human_size(result.size)}) from {folder} to {result.bucket} ({how})"
        )
        print(
            f"snapshot {result.snapshot_version} ({result.snapshot_name}): pin it with "
            f"--tigris-seed={result.bucket} --tigris-seed-snapshot={result.snapshot_version}"
        )
        return 0

    def pull() -> int:
        from .seeds import human_size, pull

        result = pull(
            janitor, janitor.workers, args.bucket, folder, snapshot=args.snapshot, progress=progress
        )
        for key, why in result.skipped[:5]:
            print(f"pytest-tigris seed pull: note: skipped {key!r}: {why}", file=sys.stderr)
        if len(result.skipped) > 5:
            more = _count(len(result.skipped) - 5, "more key")
            print(f"pytest-tigris seed pull: note: skipped {more}", file=sys.stderr)
        at = f" at snapshot {result.version}" if result.version else ""
        skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
        count = _count(result.objects, "object")
        print(
            f"downloaded {count} ({human_size(result.size)}{skipped}) from "
            f"{result.bucket}{at} to {folder}: run offline with --tigris-backend=emulator "
            f"--tigris-seed-dir={folder} --tigris-seed={result.bucket}"
        )
        return 0

    try:
        return _run(f"seed {action}", janitor, push if action == "push" else pull)
    except KeyboardInterrupt:
        print(f"pytest-tigris seed {action}: interrupted", file=sys.stderr)
        return 130


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
