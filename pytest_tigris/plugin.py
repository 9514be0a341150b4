"""pytest entry point (``pytest11: tigris``): options, run coordination, reporting.

Loaded in every pytest run of an environment where pytest-tigris is installed, so it imports
nothing heavy: boto3, botocore and moto load only when a tigris fixture is first used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from .config import OPTIONS, TigrisConfig
from .coordination import RunContext, terminate
from .exceptions import TigrisConfigError, TigrisEmulatorError, TigrisError, TigrisSeedError
from .fixtures import (
    SUPPORT_KEY,
    FixtureSupport,
    tigris_bucket,
    tigris_client,
    tigris_fork,
    tigris_fork_factory,
    tigris_seed,
)
from .naming import valid_bucket_name

if TYPE_CHECKING:
    from .factory import TigrisForkFactory

__all__ = [
    "factory_for",
    "marker_options",
    "report_usage_error",
    "test_failed",
    "tigris_bucket",
    "tigris_client",
    "tigris_fork",
    "tigris_fork_factory",
    "tigris_seed",
]

CONFIG_KEY = pytest.StashKey["TigrisConfig"]()
# A configuration error that only matters once a test uses tigris (see pytest_configure).
CONFIG_ERROR_KEY = pytest.StashKey[str]()
RUN_KEY = pytest.StashKey[RunContext]()
FACTORY_KEY = pytest.StashKey["TigrisForkFactory"]()
REPORTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
# Our SIGTERM handler, while it is installed.
SIGTERM_KEY = pytest.StashKey[Any]()
# (seed, snapshot) of markers already checked -> (snapshot version, problem).
MARKERS_KEY = pytest.StashKey[dict[tuple[str | None, str | None], tuple[str | None, str | None]]]()

TIGRIS_FIXTURES = frozenset(
    {"tigris_bucket", "tigris_fork", "tigris_fork_factory", "tigris_client", "tigris_seed"}
)
MARKER = (
    "tigris(seed=None, snapshot=None): make tigris_fork fork this seed bucket and/or snapshot "
    "version or name for the marked tests"
)


# -- options and hooks ----------------------------------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tigris", "isolated object storage forked from a Tigris seed bucket")
    for option in OPTIONS:
        group.addoption(
            option.flag,
            dest=option.dest,
            metavar=option.metavar,
            default=None,
            help=f"{option.help} [ini: {option.ini}, env: {option.env}]",
        )
        parser.addini(option.ini, option.help, default="")


def _load_config(
    config: pytest.Config, run_id: str | None, *, environment: bool = True
) -> TigrisConfig:
    # The one place options and ini keys are read.
    inidir = config.inipath.parent if config.inipath else None
    return TigrisConfig.load(
        options={o.name: config.getoption(o.dest) for o in OPTIONS},
        ini={o.name: str(config.getini(o.ini) or "") or None for o in OPTIONS},
        environ=None if environment else {},
        rootdir=config.rootpath,
        inidir=inidir,
        cwd=config.invocation_params.dir,
        run_id=run_id,
        dotenv=environment,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    run_id = workerinput.get("tigris_run_id") if workerinput else None
    try:
        tigris_config: TigrisConfig | None = _load_config(config, run_id)
    except TigrisConfigError as exc:
        message = f"pytest-tigris: {exc}"
        try:
            _load_config(config, run_id, environment=False)
        except TigrisConfigError:
            raise pytest.UsageError(message) from None
        # Only the environment or .env.local is at fault: a run that uses no tigris fixture
        # is none of our business, so the error waits for the first test that does.
        config.stash[CONFIG_ERROR_KEY] = message
        tigris_config = None
    if tigris_config is not None:
        config.stash[CONFIG_KEY] = tigris_config
        _protect_secrets(config, tigris_config)
    if run_id is None:
        from .naming import random_run_id

        run_id = tigris_config.run_id if tigris_config else random_run_id()
    run = RunContext.from_workerinput(workerinput, run_id)
    config.stash[RUN_KEY] = run
    # What the fixtures need from here, so that they never import this module.
    config.stash[SUPPORT_KEY] = FixtureSupport(
        factory=lambda: factory_for(config),
        usage_error=lambda message: report_usage_error(config, message),
        marker_options=marker_options,
        test_failed=test_failed,
    )
    if run.is_controller:
        config.pluginmanager.register(ControllerPlugin(config, run), "tigris-controller")


def _stop_on_sigterm(config: pytest.Config) -> None:
    """Make SIGTERM (CI cancelling a job, ``kill``) stop pytest like Ctrl-C does, from the
    moment this process has forks to lose until ``pytest_unconfigure``.

    pytest then tears fixtures down and runs the end-of-run sweep; by default SIGTERM would
    end the process on the spot and leak every live fork. A run that uses no tigris fixture
    keeps the default, and a handler someone else installed is left alone.
    """
    if SIGTERM_KEY in config.stash or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it for real
        raise KeyboardInterrupt("SIGTERM")

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        return  # not the main thread: only the main thread may set handlers
    config.stash[SIGTERM_KEY] = interrupt


def pytest_unconfigure(config: pytest.Config) -> None:
    ours = config.stash.get(SIGTERM_KEY, None)
    if ours is None:
        return
    del config.stash[SIGTERM_KEY]
    # SIG_DFL: ours went off once and reset itself. Anything else is someone else's now.
    if signal.getsignal(signal.SIGTERM) in (ours, signal.SIG_DFL):
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def factory_for(config: pytest.Config) -> TigrisForkFactory:
    """This process's ``TigrisForkFactory`` (made on first use).

    Raises :class:`TigrisConfigError` when the configuration could not be loaded.
    """
    factory = config.stash.get(FACTORY_KEY, None)
    if factory is None:
        if CONFIG_KEY not in config.stash:
            message = config.stash.get(CONFIG_ERROR_KEY, "pytest-tigris: not configured")
            raise TigrisConfigError(message.removeprefix("pytest-tigris: "))
        tigris_config = config.stash[CONFIG_KEY]
        missing_seed = tigris_config.missing_seed()
        if missing_seed is not None:
            from .client import check_reachable

            # The endpoint first, as the backend checks it before the seed: when it is down,
            # that is what to fix first.
            check_reachable(tigris_config.endpoint_url)
            raise missing_seed
        from .backend import await_all
        from .factory import FactoryHooks, TigrisForkFactory

        hook = config.hook

        def populate_seed(client: Any, bucket: str) -> None:
            await_all(hook.pytest_tigris_populate_seed(client=client, bucket=bucket))

        hooks = FactoryHooks(
            fork_name=lambda kind, worker: hook.pytest_tigris_fork_name(
                config=config, kind=kind, worker=worker
            ),
            # None when nobody implements the hook: then no client is built for it.
            populate_seed=populate_seed
            if hook.pytest_tigris_populate_seed.get_hookimpls()
            else None,
            fork_created=lambda fork: hook.pytest_tigris_fork_created(fork=fork),
            fork_deleted=lambda fork: hook.pytest_tigris_fork_deleted(fork=fork),
        )
        factory = TigrisForkFactory.from_config(tigris_config, config.stash[RUN_KEY], hooks)
        config.stash[FACTORY_KEY] = factory
        _stop_on_sigterm(config)
        run = config.stash[RUN_KEY]
        if not run.is_controller:
            # Read by the controller when this worker's collection is reported (xdist).
            with run.registry() as registry:
                registry["in_use"] = True
    return factory


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    tigris_config = config.stash.get(CONFIG_KEY, None)
    return [tigris_config.describe(), *tigris_config.notes] if tigris_config else None


# -- markers and outcomes -------------------------------------------------------------------
def marker_options(node: pytest.Item) -> tuple[str | None, str | None]:
    """``(seed, snapshot version)`` for ``tigris_fork`` from the closest ``@pytest.mark.tigris``.

    A marker that cannot work (other arguments, a value that is not a string, a seed that
    does not exist, a snapshot the seed does not have) fails the setup of that test alone,
    with one line naming the test and the marker: the rest of the run is fine.
    """
    marker = node.get_closest_marker("tigris")
    if marker is None:
        return None, None
    arguments = [repr(a) for a in marker.args] + [f"{k}={v!r}" for k, v in marker.kwargs.items()]
    shown = f"@pytest.mark.tigris({', '.join(arguments)})"
    where = f"{node.nodeid}: {shown}"
    unknown = set(marker.kwargs) - {"seed", "snapshot"}
    if marker.args or unknown:
        _marker_failed(where, "it takes only the seed= and snapshot= keyword arguments")
    seed, snapshot = marker.kwargs.get("seed"), marker.kwargs.get("snapshot")
    for name, value in (("seed", seed), ("snapshot", snapshot)):
        if value is not None and not isinstance(value, str):
            _marker_failed(where, f"{name}= must be a string (got {type(value).__name__})")
    if seed is None and snapshot is None:
        return None, None
    if seed is not None and not valid_bucket_name(seed):
        _marker_failed(
            where,
            f"seed {seed!r} is not a valid bucket name (3-63 characters a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit)",
        )
    checked = node.config.stash.setdefault(MARKERS_KEY, {})
    if (seed, snapshot) not in checked:
        outcome = factory_for(node.config).check_marker(seed, snapshot)
        if outcome is None:
            # Not the marker's fault (the endpoint, the emulator): the fixture reports it.
            return seed, snapshot
        checked[seed, snapshot] = outcome
    version, problem = checked[seed, snapshot]
    if problem is not None:
        _marker_failed(where, problem)
    return seed, version


def _marker_failed(where: str, problem: str) -> NoReturn:
    pytest.fail(f"pytest-tigris: {where}: {problem}", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(REPORTS_KEY, {})[report.when] = report
    if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, TigrisError):
        # Our errors are one line saying what to do; a traceback into our code adds nothing.
        report.longrepr = _one_line(item, call.excinfo.value)
    factory = item.config.stash.get(FACTORY_KEY, None)
    if factory is not None:  # what --tigris-keep=failed keeps
        uses_bucket = "tigris_bucket" in getattr(item, "fixturenames", ())
        factory.note_report(item.nodeid, report.when, report.failed, uses_bucket)
        if report.failed and report.when != "teardown" and factory.config.report != "off":
            _add_storage_section(item, report, factory, uses_bucket)
    if SECRETS_KEY in item.config.stash:
        _redact_report(report)
    return report


def _add_storage_section(
    item: pytest.Item, report: pytest.TestReport, factory: TigrisForkFactory, uses_bucket: bool
) -> None:
    """What the failed test did to its forks, shown next to its captured output (the forks
    are still alive: fixture teardown comes after this report)."""
    from .storage_report import role_of, storage_section

    forks = factory.used_by(item.nodeid, uses_bucket)
    if not forks:
        return
    try:
        text = storage_section([(fork, role_of(fork, factory.run.worker)) for fork in forks])
    except Exception as exc:  # a report hook that raises is an INTERNALERROR
        text = f"pytest-tigris: could not read the forks' changes ({type(exc).__name__})\n"
    report.sections.append(("Captured tigris storage", text))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if SECRETS_KEY in collector.config.stash:
        _redact_report(report)
    return report


def _one_line(item: pytest.Item, exc: TigrisError) -> str:
    """``pytest-tigris: <message> (<file>:<line>)``, the line being where the test's code
    called into pytest-tigris."""
    import traceback

    package = os.path.dirname(__file__)
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith(package):
            path = frame.filename
            with contextlib.suppress(ValueError):  # another drive
                relative = os.path.relpath(path, item.config.rootpath)
                path = path if relative.startswith("..") else relative
            where = f" ({path}:{frame.lineno})"
            break
    return f"pytest-tigris: {exc}{where}"


SECRETS_KEY = pytest.StashKey[bool]()


def _protect_secrets(config: pytest.Config, tigris_config: TigrisConfig) -> None:
    """Mask the run's credentials in everything pytest writes: reports (terminal, junitxml),
    log records (live, captured, ``--log-file``), warnings and ``--debug``'s log."""
    if tigris_config.is_emulator:
        return  # the embedded emulator's keys are dummies
    secrets = (tigris_config.secret_access_key, tigris_config.session_token)
    if not any(secrets):
        return
    from .client import redact, redact_secrets

    redact_secrets(*secrets)
    config.stash[SECRETS_KEY] = True
    # --debug's writer was set before plugins are configured; it logs every hook's arguments.
    root = config.trace.root
    writer = getattr(root, "_writer", None)
    if writer is not None:
        root.setwriter(lambda text: writer(redact(text)))


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: Any) -> None:
    # The terminal's warnings summary (and xdist, forwarding it) format this record later.
    from .client import redact

    warning = warning_message.message
    if isinstance(warning, Warning) and warning.args:
        text = str(warning)
        masked = redact(text)
        if masked != text:
            warning.args = (masked,)
    elif isinstance(warning, str):
        warning_message.message = redact(warning)


def _redact_report(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Mask credentials a test's traceback, locals, skip reason or captured output would show
    (a presigned URL in a local variable, a client's repr...), keeping each part's type:
    reporters, junitxml and xdist's serialisation tell a skip by its tuple."""
    from .client import redact_value

    report.longrepr = redact_value(report.longrepr, set())
    report.sections = [(title, redact_value(content, set())) for title, content in report.sections]
    wasxfail = getattr(report, "wasxfail", None)
    if isinstance(wasxfail, str):
        report.wasxfail = redact_value(wasxfail, set())  # type: ignore[union-attr]


def test_failed(node: pytest.Item) -> bool:
    """Whether the test's setup or call failed (its teardown is still running)."""
    reports = node.stash.get(REPORTS_KEY, {})
    return any(r.failed for r in reports.values())


test_failed.__test__ = False  # type: ignore[attr-defined]


def _uses_tigris(item: pytest.Item) -> bool:
    """Whether ``item`` asks for a tigris fixture (directly or through its other fixtures)."""
    return bool(TIGRIS_FIXTURES.intersection(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # Here, not in pytest_collection_modifyitems: -k, -m and --deselect filter there, and
    # --lf after every implementation of it, so only now are the items the ones that run.
    # tryfirst: before xdist's worker reports its items to the controller.
    config = session.config
    items = session.items
    option = config.option
    if (
        not any(_uses_tigris(item) for item in items)
        or option.collectonly
        or option.showfixtures
        or option.show_fixtures_per_test
    ):
        return
    # Set up the backend now, so a bad endpoint or seed is one clear line and exit code 4
    # rather than an error in every test.
    tigris_config = config.stash.get(CONFIG_KEY, None)
    try:
        factory = factory_for(config)
        factory.start()
        factory.pinned_snapshot(factory.config.seed)
    except TigrisError as exc:
        code = (
            pytest.ExitCode.USAGE_ERROR
            if isinstance(exc, TigrisConfigError)
            else pytest.ExitCode.TESTS_FAILED
        )
        message = str(exc)
        reason = tigris_config.emulator_reason if tigris_config else None
        if isinstance(exc, TigrisSeedError) and reason:
            message = f"{message} ({reason})"
        _stop_run(config, items, f"pytest-tigris: {message}", code)
    except Exception as exc:
        endpoint = tigris_config.endpoint_url if tigris_config else None
        failure = _botocore_failure(exc, endpoint)
        if failure is None:
            raise
        _stop_run(config, items, f"pytest-tigris: {failure}", pytest.ExitCode.USAGE_ERROR)


def _botocore_failure(exc: Exception, endpoint_url: str | None) -> str | None:
    """One line for an error botocore raised while the backend started (a profile that does
    not exist, a region it rejects...), or None when ``exc`` is not botocore's."""
    if not type(exc).__module__.startswith("botocore."):
        return None  # and botocore, maybe never imported in this run, stays so
    from botocore.exceptions import BotoCoreError, ClientError

    from .client import redact
    from .s3calls import describe_client_error

    if not isinstance(exc, (BotoCoreError, ClientError)):
        return None
    known = describe_client_error(exc, endpoint_url)
    if known is not None:
        return redact(str(known))
    where = endpoint_url or "the embedded emulator"
    text = (str(exc).strip().splitlines() or [""])[0]
    return redact(
        f"cannot start a client for {where}: {text} (botocore {type(exc).__name__}): check "
        "the endpoint URL and the AWS_* variables and files"
    )


def _stop_run(
    config: pytest.Config, items: list[pytest.Item], message: str, code: pytest.ExitCode
) -> None:
    _tell_controller(config, message, code)
    config.hook.pytest_deselected(items=list(items))
    items.clear()


def report_usage_error(config: pytest.Config, message: str) -> None:
    """A configuration error found while tests run: stop the run with exit code 4.

    An xdist worker cannot stop the run (the controller would report its exit as an
    internal error): it tells the controller, which reports the error once and sets the
    exit code, and the caller fails the test at hand.
    """
    _tell_controller(config, message, pytest.ExitCode.USAGE_ERROR)


def _tell_controller(config: pytest.Config, message: str, code: pytest.ExitCode) -> None:
    if not hasattr(config, "workerinput"):
        pytest.exit(message, returncode=code)
    with config.stash[RUN_KEY].registry() as registry:
        errors = registry.setdefault("errors", [])
        if message not in [e["message"] for e in errors]:
            errors.append({"message": message, "code": int(code)})


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Fixture teardown has run by now; record what this process did for the controller.
    factory = session.config.stash.get(FACTORY_KEY, None)
    if factory is not None:
        session.config.stash[RUN_KEY].write_stats(factory.stats())


# -- the controller -------------------------------------------------------------------------
class ControllerPlugin:
    """Run-wide duties of the controller (or the only process): hand-off, sweep, summary."""

    def __init__(self, config: pytest.Config, run: RunContext) -> None:
        self.config = config
        self.run = run
        self.swept: list[str] = []
        self.left: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.snapshot_problems: list[str] = []
        self.lost = 0  # forks that went with an emulator that stopped during the run

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.run.workerinput())

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # A worker whose tests use tigris says so before it reports its collection: from now
        # on SIGTERM must reach the workers as a shutdown, so they tear their forks down.
        if ids and self.run.read_registry().get("in_use"):
            _stop_on_sigterm(self.config)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Delete every fork of this run still alive (a crashed worker leaves some)."""
        if self.run.shared_dir.is_dir():
            self.errors = self.run.read_registry().get("errors", [])
            if self.errors:
                session.exitstatus = min(e["code"] for e in self.errors)
        logged = self.run.logged_forks()
        try:
            self._sweep(logged)
        finally:
            self._drop_run_snapshots()

    def _drop_run_snapshots(self) -> None:
        """Delete the snapshots this run took of remote seeds, so they do not pile up.

        Forks made from a snapshot are unaffected by its deletion (kept forks included).
        """
        if not self.run.shared_dir.is_dir():
            return
        taken = self.run.read_registry().get("taken_snapshots", {})
        config = self.config.stash.get(CONFIG_KEY, None)
        if not taken or config is None or config.is_emulator:
            return
        if self.left:
            return  # forks left behind prove through it that they are ours: sweep drops it later
        factory = factory_for(self.config)
        for seed, version in taken.items():
            try:
                factory.janitor.delete_snapshot(seed, version)
            except Exception as exc:
                self.snapshot_problems.append(
                    f"could not delete snapshot {version} of {seed}: {exc}"
                )

    def _sweep(self, logged: list[str]) -> None:
        if not logged:
            return
        done = {n for s in self.run.read_stats() for n in s.get("deleted_names", [])}
        pending = [n for n in logged if n not in done]
        if not pending:
            return
        factory = factory_for(self.config)
        try:
            factory.start()
            gone = factory.emulator_gone(probe=True)
        except TigrisEmulatorError:
            gone = True
        if gone:
            self.lost = len(pending)
            return
        swept, refused = factory.janitor.delete_all(list(reversed(pending)), passes=3)
        self.swept += swept
        pending = list(reversed([name for name, _ in refused]))
        self.left = pending

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for error in self.errors:
            terminalreporter.write_line(error["message"], red=True)
        for problem in self.snapshot_problems:
            terminalreporter.write_line(f"pytest-tigris: {problem}", yellow=True)
        stats = self.run.read_stats()
        created = sum(s.get("created", 0) for s in stats)
        if self.lost:
            terminalreporter.write_line(
                f"pytest-tigris: forks not deleted: {self.lost} (they lived in the embedded "
                "emulator, which stopped during the run)",
                yellow=True,
            )
        if not created and not self.swept and not self.left:
            return
        deleted = sum(s.get("deleted", 0) for s in stats)
        kept = [k for s in stats for k in s.get("kept", [])]
        times = sorted(t for s in stats for t in s.get("fork_times", []))
        from .factory import summarize_times

        median, worst = summarize_times(times)
        unused = sum(s.get("unused_ready", 0) for s in stats)
        tr = terminalreporter
        tr.ensure_newline()
        tr.section("tigris")
        tr.write_line(
            f"forks: {created} created, {deleted} deleted, {len(kept)} kept, "
            f"{len(self.swept)} leaked (deleted by the end-of-run sweep); "
            f"fork time median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms"
        )
        if unused:
            tr.write_line(f"ready forks: {unused} made ahead of need and deleted unused")
        config = self.config.stash.get(CONFIG_KEY, None)
        for entry in kept:
            endpoint = entry.get("endpoint") or ""
            flag = f" --endpoint-url {endpoint}" if endpoint else ""
            why = f" ({entry['label']})" if entry.get("label") else ""
            if entry.get("saved"):
                # The embedded emulator stops with the run: the folder is what is left.
                from .export import saved_line

                tr.write_line(f"kept fork {entry['name']}{why}: {saved_line(entry['saved'])}")
                continue
            tr.write_line(f"kept fork {entry['name']}{why}: aws s3 ls s3://{entry['name']}{flag}")
        if kept and config is not None and config.is_emulator:
            tr.write_line(
                "note: the embedded emulator stops with this run; `pytest-tigris emulator "
                "--seed NAME --seed-dir FOLDER` serves a saved fork again as bucket NAME"
            )
        endpoint = config.endpoint_url if config is not None else None
        for name in self.left:
            # Without --endpoint-url the aws cli would talk to AWS: no command then.
            fix = (
                f"aws s3 rb --force s3://{name} --endpoint-url {endpoint}"
                if endpoint
                else "it goes away with the embedded emulator"
            )
            tr.write_line(f"fork {name} could not be deleted: {fix}", yellow=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        factory = config.stash.get(FACTORY_KEY, None)
        stopped = factory is not None and factory.backend.stop_emulator()
        if not stopped and self.run.shared_dir.is_dir():
            entry = self.run.read_registry().get("emulator")
            if entry:
                terminate(int(entry["pid"]))
        shutil.rmtree(self.run.shared_dir, ignore_errors=True)
