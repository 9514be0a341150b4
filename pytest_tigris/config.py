"""One frozen :class:`TigrisConfig`, built once per run from every source.

Precedence, highest first: a marker or factory argument (applied per fork, not here) >
command-line option > ini key > ``PYTEST_TIGRIS_*`` environment variable > the AWS variables
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...) > the same variables
in ``.env.local`` in the rootdir (which never override the real environment) > defaults.

No pytest import here: ``plugin.py`` reads the options and ini keys and hands them over.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .exceptions import TigrisConfigError
from .naming import (
    ci_run_id,
    fork_name,
    make_prefix,
    normalize_run_id,
    random_run_id,
    valid_bucket_name,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_EMULATOR_SEED",
    "FORK_MODES",
    "KEEP_MODES",
    "OPTIONS",
    "REPORT_MODES",
    "Option",
    "TigrisConfig",
    "check_endpoint_url",
    "load_remote",
    "read_dotenv",
]

BACKENDS = ("auto", "remote", "emulator")
FORK_MODES = ("native", "copy")
KEEP_MODES = ("never", "failed", "always")
REPORT_MODES = ("off", "changes")
DEFAULT_POOL = 2
MAX_POOL = 32
DEFAULT_EMULATOR_SEED = "pytest-tigris-seed"
EMULATOR_KEY = "pytest-tigris"
DOTENV = ".env.local"


@dataclass(frozen=True)
class Option:
    """One setting: ``--tigris-<name>``, ini ``tigris_<name>``, env ``PYTEST_TIGRIS_<NAME>``."""

    name: str
    help: str
    metavar: str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return f"--tigris-{self.name}"

    @property
    def ini(self) -> str:
        return f"tigris_{self.name.replace('-', '_')}"

    @property
    def dest(self) -> str:
        return self.ini

    @property
    def env(self) -> str:
        return f"PYTEST_TIGRIS_{self.name.replace('-', '_').upper()}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "seed",
        "Seed bucket to fork (required on a remote endpoint; default on the emulator: "
        f"{DEFAULT_EMULATOR_SEED})",
        "NAME",
    ),
    Option(
        "seed-snapshot",
        "Fork from this seed snapshot version or name (default: a snapshot taken once per run)",
        "VERSION",
    ),
    Option(
        "seed-dir",
        "Emulator only: load the seed bucket from this folder (keys are relative paths)",
        "PATH",
    ),
    Option(
        "endpoint",
        "S3 endpoint URL (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; none: the emulator)",
        "URL",
    ),
    Option(
        "backend",
        "Where forks live: auto (remote when an endpoint and credentials are set), "
        "remote or emulator (default: auto)",
        "auto|remote|emulator",
        BACKENDS,
    ),
    Option(
        "keep",
        "Keep forks after the run: never, failed (forks of failed tests) or always "
        "(default: never)",
        "never|failed|always",
        KEEP_MODES,
    ),
    Option(
        "report",
        "What a failed test's report shows of the forks it used: changes (keys added, "
        "modified and deleted, and the start of changed text objects) or off (default: changes)",
        "off|changes",
        REPORT_MODES,
    ),
    Option(
        "fork-mode",
        "How forks are made: native (Tigris fork, zero-copy) or copy (a new bucket plus a "
        "server-side copy of every seed object, for S3 without forks; slow) (default: native)",
        "native|copy",
        FORK_MODES,
    ),
    Option(
        "pool",
        "Ready forks kept per process for tigris_fork, made in the background while tests "
        f"run; 0 turns the pool off (default: {DEFAULT_POOL})",
        "K",
    ),
    Option("prefix", "Fork-name prefix (default: derived from the seed name)", "PREFIX"),
    Option(
        "run-id",
        "Run id put in fork names (default: the CI job id, else random)",
        "ID",
    ),
)
_BY_NAME = {o.name: o for o in OPTIONS}


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (``export``, quotes and ``#`` comments allowed).

    A missing file is empty; a file that is not UTF-8 text or has a line that is not
    ``KEY=VALUE`` raises :class:`TigrisConfigError` naming the file and line (never the line's
    text, which may hold a secret).
    """
    import re
    import shlex

    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return values
    except UnicodeDecodeError as exc:
        raise TigrisConfigError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}): save it as UTF-8, or delete it"
        ) from None
    assignment = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\s*=")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().removeprefix("\ufeff")
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        if not assignment.match(line):
            raise TigrisConfigError(f"{path} line {number} is not KEY=VALUE: fix or remove it")
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value.strip(), comments=True)
        except ValueError as exc:
            raise TigrisConfigError(
                f"{path} line {number}: {str(exc).lower()}: fix or remove it"
            ) from None
        values[key.strip()] = parts[0] if parts else ""
    return values


def check_endpoint_url(url: str, source: str) -> str:
    """``url`` (stripped) if it is an http(s) URL with a host, a valid port and nothing else
    (no user name or password, path, query or fragment); raises :class:`TigrisConfigError`
    naming ``source`` otherwise, never showing what comes before an ``@``."""
    import re

    url = url.strip()
    example = "use e.g. https://t3.storage.dev or http://127.0.0.1:4566"
    shown = url
    if "@" in url:
        # A user name and password: shown nowhere, not even in the message that rejects them.
        before, _, after = url.rpartition("@")
        scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", before)
        shown = f"{scheme.group(0) if scheme else ''}***@{after}"
    if not url.startswith(("http://", "https://")):
        raise TigrisConfigError(f"{source}={shown!r} is not a URL: {example}")
    if "@" in url:
        raise TigrisConfigError(
            f"{source}={shown!r} has a user name or password in it: remove it (the keys go in "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        reason = "port must be a number from 1 to 65535" if "ort" in str(exc) else f"{exc}"
        reason = reason[:1].lower() + reason[1:]
        raise TigrisConfigError(
            f"{source}={shown!r} is not a valid URL ({reason}): {example}"
        ) from None
    if not host:
        raise TigrisConfigError(f"{source}={shown!r} has no host name: {example}")
    if port == 0:
        raise TigrisConfigError(
            f"{source}={shown!r} is not a valid URL (port must be a number from 1 to 65535): "
            f"{example}"
        )
    # botocore rejects a query (an INTERNALERROR deep in a run) and would send requests under
    # a path, where no bucket is: the endpoint is the server's root URL.
    before_fragment, hash_mark, fragment = url.partition("#")
    _, question_mark, query = before_fragment.partition("?")
    extra = []
    if parts.path not in ("", "/"):
        extra.append(f"a path ({parts.path!r})")
    if question_mark:
        extra.append(f"a query ({'?' + query!r})")
    if hash_mark:
        extra.append(f"a fragment ({'#' + fragment!r})")
    if extra:
        listed = f"{', '.join(extra[:-1])} and {extra[-1]}" if len(extra) > 1 else extra[0]
        raise TigrisConfigError(
            f"{source}={shown!r} has {listed}: use the server's root URL, "
            f"{parts.scheme}://{parts.netloc}"
        )
    return url


@dataclass(frozen=True)
class TigrisConfig:
    """Everything pytest-tigris needs to know, resolved once. Secrets never show in ``repr``."""

    seed: str
    seed_given: bool
    seed_snapshot: str | None
    seed_dir: Path | None
    endpoint_url: str | None
    backend: str
    keep: str
    prefix: str
    run_id: str
    fork_mode: str = "native"
    report: str = "changes"
    pool: int = DEFAULT_POOL
    region: str = "auto"
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    # Report-header lines about settings that were set but do not apply to this run.
    notes: tuple[str, ...] = ()
    # Why the embedded emulator was chosen although an endpoint is set (it is in ``notes``
    # too); the plugin adds it to seed errors, which would otherwise blame only the seed.
    emulator_reason: str | None = None
    # Where ``seed_snapshot`` was set (``--tigris-seed-snapshot``, ``ini ...``, a variable):
    # an error about it names that.
    seed_snapshot_source: str = "--tigris-seed-snapshot"

    @property
    def is_emulator(self) -> bool:
        return self.backend == "emulator"

    def missing_seed(self) -> TigrisConfigError | None:
        """The error for forking on a remote endpoint with no seed set, or None.

        Bucket names are global on Tigris: a default seed name there could be someone else's
        bucket. Only the plugin asks (the CLI commands load a remote configuration and fork no
        seed), and only once forks are needed: a run that makes none needs no seed.
        """
        if self.is_emulator or self.seed_given:
            return None
        where = urlsplit(self.endpoint_url or "").netloc or "the default endpoint"
        seed = _BY_NAME["seed"]
        return TigrisConfigError(
            f"no seed bucket set for the remote backend ({where}): set {seed.flag}, ini "
            f"{seed.ini} or {seed.env} to the bucket to fork (bucket names are global, so "
            "there is no default), or use --tigris-backend=emulator"
        )

    def describe(self) -> str:
        """One line for the report header; never contains a secret."""
        if self.is_emulator:
            where = "embedded emulator"
        else:
            where = urlsplit(self.endpoint_url or "").netloc or "default endpoint"
        snapshot = self.seed_snapshot or "pinned once per run"
        mode = " fork-mode=copy" if self.fork_mode == "copy" else ""
        if self.fork_mode == "copy":
            snapshot = "none (copy mode)"
        seed = self.seed if self.is_emulator or self.seed_given else "(not set)"
        return (
            f"tigris: backend={self.backend} endpoint={where} seed={seed} "
            f"snapshot={snapshot} run={self.run_id}{mode}"
        )

    @classmethod
    def load(
        cls,
        *,
        options: Mapping[str, str | None],
        ini: Mapping[str, str | None],
        environ: Mapping[str, str] | None = None,
        rootdir: Path | None = None,
        inidir: Path | None = None,
        cwd: Path | None = None,
        run_id: str | None = None,
        dotenv: bool = True,
    ) -> TigrisConfig:
        """Resolve the configuration; raises :class:`TigrisConfigError` with a one-line fix.

        ``options`` and ``ini`` map option names (``"seed-dir"``) to raw values or None.
        ``run_id`` (from the xdist controller) wins over every other source. ``dotenv=False``
        skips ``.env.local``.
        """
        env = dict(os.environ if environ is None else environ)
        from_file = read_dotenv((rootdir or Path.cwd()) / DOTENV) if dotenv else {}
        # .env.local fills gaps only: the real environment always wins.
        aws = {**from_file, **{k: v for k, v in env.items() if v}}
        cwd = cwd or Path.cwd()

        def sourced(variable: str) -> str:
            # A value from .env.local says so: the user may not know that file is read.
            return variable if env.get(variable) else f"{variable} (in {DOTENV})"

        def pick(name: str) -> tuple[str | None, str]:
            opt = _BY_NAME[name]
            value = options.get(name)
            if value not in (None, ""):
                return str(value), opt.flag
            value = ini.get(name)
            if value not in (None, ""):
                return str(value), f"ini {opt.ini}"
            value = aws.get(opt.env)
            if value:
                return value, sourced(opt.env)
            return None, opt.flag

        def choice(name: str, default: str) -> str:
            value, source = pick(name)
            value = (value or default).strip().lower()
            allowed = _BY_NAME[name].choices or ()
            if value not in allowed:
                raise TigrisConfigError(
                    f"{source}={value!r} is not valid: use one of {', '.join(allowed)}"
                )
            return value

        backend = choice("backend", "auto")
        keep = choice("keep", "never")
        fork_mode = choice("fork-mode", "native")
        report = choice("report", "changes")
        pool_raw, pool_source = pick("pool")
        pool = DEFAULT_POOL
        if pool_raw is not None:
            text = pool_raw.strip()
            if not text.isdigit() or int(text) > MAX_POOL:
                raise TigrisConfigError(
                    f"{pool_source}={pool_raw!r} is not valid: give a number of ready forks "
                    f"from 0 (no pool) to {MAX_POOL}"
                )
            pool = int(text)

        endpoint, endpoint_source = pick("endpoint")
        explicit_endpoint = endpoint is not None
        if endpoint is None:
            for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
                endpoint = aws.get(variable) or None
                if endpoint is not None:
                    endpoint_source = sourced(variable)
                    break
        if endpoint is not None:
            endpoint = check_endpoint_url(endpoint, endpoint_source)

        access_key = aws.get("AWS_ACCESS_KEY_ID")
        secret_key = aws.get("AWS_SECRET_ACCESS_KEY")
        profile = aws.get("AWS_PROFILE")
        has_credentials = bool((access_key and secret_key) or profile)
        emulator_reason = None
        if backend == "auto":
            remote = endpoint is not None and (explicit_endpoint or has_credentials)
            backend = "remote" if remote else "emulator"
            if endpoint is not None and not remote:
                emulator_reason = (
                    f"the embedded emulator was chosen because {endpoint_source} is set but no "
                    "credentials are: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                    "AWS_PROFILE, to use that endpoint"
                )
        if backend == "remote" and endpoint is None:
            raise TigrisConfigError(
                "--tigris-backend=remote needs an endpoint: set --tigris-endpoint or "
                "AWS_ENDPOINT_URL_S3 (Tigris: https://t3.storage.dev)"
            )

        seed_dir_raw, seed_dir_source = pick("seed-dir")
        seed_dir: Path | None = None
        notes = [f"tigris: {emulator_reason}"] if emulator_reason else []
        from_ini = seed_dir_source.startswith("ini")
        if seed_dir_raw is not None and backend != "emulator" and from_ini:
            # A checked-in ini serves local runs on the emulator; CI runs of the same
            # checkout on Tigris fork the seed bucket there instead.
            notes.append(
                f"tigris: ini tigris_seed_dir={seed_dir_raw} ignored: the backend is remote "
                "(the folder is loaded by the emulator backend only)"
            )
        elif seed_dir_raw is not None:
            base = inidir if from_ini and inidir else cwd
            seed_dir = (base / seed_dir_raw).resolve()
            if not seed_dir.exists():
                raise TigrisConfigError(f"{seed_dir_source}: folder {seed_dir} does not exist")
            if not seed_dir.is_dir():
                raise TigrisConfigError(f"{seed_dir_source}: {seed_dir} is not a folder")
            if backend != "emulator":
                variable = _BY_NAME["seed-dir"].env
                if seed_dir_source.startswith("--"):
                    drop = f"remove {seed_dir_source} from the command line"
                elif DOTENV in seed_dir_source:
                    drop = f"remove {variable} from {DOTENV}"
                else:
                    drop = f"unset {variable}"
                raise TigrisConfigError(
                    f"{seed_dir_source} only works with the emulator backend (forks on "
                    f"{endpoint} are made from a seed bucket there): {drop}, or add "
                    "--tigris-backend=emulator"
                )

        seed, seed_source = pick("seed")
        seed_given = seed is not None
        if seed is None:
            seed = DEFAULT_EMULATOR_SEED
        seed = seed.strip()
        if not valid_bucket_name(seed):
            raise TigrisConfigError(
                f"{seed_source}={seed!r} is not a valid bucket name: use 3-63 characters "
                "a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
            )

        snapshot, snapshot_source = pick("seed-snapshot")
        if snapshot and fork_mode == "copy":
            raise TigrisConfigError(
                f"{snapshot_source} needs Tigris snapshots, which --tigris-fork-mode=copy does "
                "not use: drop one of them"
            )

        raw_run, run_source = pick("run-id")
        try:
            if run_id is not None:
                resolved_run = run_id
            elif raw_run is not None:
                resolved_run = normalize_run_id(raw_run)
            else:
                resolved_run = ci_run_id(env) or random_run_id()
        except ValueError as exc:
            raise TigrisConfigError(f"{run_source}: {exc}") from None

        raw_prefix, prefix_source = pick("prefix")
        prefix = make_prefix(seed, raw_prefix)
        try:
            fork_name(prefix, resolved_run, "gw0", 0)
        except ValueError:
            raise TigrisConfigError(
                f"{prefix_source}={raw_prefix!r} cannot start a bucket name: use a-z, 0-9 and '-'"
            ) from None

        emulator = backend == "emulator"
        return cls(
            seed=seed,
            seed_given=seed_given,
            seed_snapshot=snapshot.strip() if snapshot else None,
            seed_dir=seed_dir,
            endpoint_url=None if emulator else endpoint,
            backend=backend,
            keep=keep,
            prefix=prefix,
            run_id=resolved_run,
            fork_mode=fork_mode,
            report=report,
            pool=pool,
            region=aws.get("AWS_DEFAULT_REGION") or aws.get("AWS_REGION") or "auto",
            profile=None if emulator else profile,
            access_key_id=EMULATOR_KEY if emulator else access_key,
            secret_access_key=EMULATOR_KEY if emulator else secret_key,
            session_token=None if emulator else aws.get("AWS_SESSION_TOKEN"),
            notes=tuple(notes),
            emulator_reason=emulator_reason,
            seed_snapshot_source=snapshot_source,
        )


def load_remote(endpoint: str | None, *, caller: str, endpoint_option: str | None) -> TigrisConfig:
    """The remote configuration for a caller outside pytest (a command, a library call). Its
    errors name ``caller`` and ``endpoint_option`` (None: the caller has no such option)
    where the plugin's name ``--tigris-backend=remote`` and ``--tigris-endpoint``."""
    try:
        return TigrisConfig.load(options={"endpoint": endpoint, "backend": "remote"}, ini={})
    except TigrisConfigError as exc:
        message = str(exc).replace("--tigris-backend=remote", caller)
        if endpoint_option is None:
            message = message.replace("--tigris-endpoint or ", "")
        else:
            message = message.replace("--tigris-endpoint", endpoint_option)
        raise TigrisConfigError(message) from None
