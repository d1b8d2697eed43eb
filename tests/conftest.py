"""What every test gets: the app's log lines kept out of pytest's own output, logging put back as it
was after a test that configures it, and the checks skipped on this machine reported in one line per
reason. Also: a run with `-s` stays in this process (pytest-xdist workers would hide what it shows).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Generator, Iterator
from typing import Any

import pytest
import structlog

from gateway import log_output, logging_setup
from tests.support import skipped_checks
from tests.support.redis_server import REDIS_SERVER, redis_server

pytest_plugins = ["pytester"]


class _CapturedStdout:
    """Where the app's log lines go in tests (structlog's own default writes to whatever sys.stdout is):
    to pytest's capture of the running test, which shows it with a failure, and nowhere when sys.stdout
    is the terminal itself (between two tests, while pytest reports one, a server thread's access line
    would land in the middle of the progress dots). With `-s` (no capture) they go to the terminal."""

    def __init__(self, terminal: Any) -> None:
        self._terminal = terminal
        self.capturing = True

    def write(self, text: str) -> int:
        out = sys.stdout  # read once: the capture may end between this line and the write
        if out is self._terminal and self.capturing:
            return len(text)
        return out.write(text)

    def flush(self) -> None:
        out = sys.stdout
        if out is not self._terminal or not self.capturing:
            out.flush()


_app_log = _CapturedStdout(sys.__stdout__)


def pytest_configure(config: pytest.Config) -> None:
    _app_log.capturing = config.getoption("capture") != "no"
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_app_log))


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server for the module's tests (skipped where none is installed)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with redis_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _logging_put_back(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that configures logging (the CLI does, on purpose) changes process-wide state: structlog's
    configuration, the library loggers' handlers, logging_setup's direct JSON path. All of it is put
    back afterwards, and no logger caches the test's configuration (a cached logger would keep writing
    to that test's captured stream)."""
    saved = structlog.get_config()
    libraries = [logging.getLogger(name) for name in logging_setup.LIBRARY_LOGGERS]
    saved_libraries = [(lib.handlers, lib.level, lib.propagate) for lib in libraries]
    monkeypatch.setattr(logging_setup, "_direct", logging_setup._direct)
    monkeypatch.setattr(logging_setup, "_output", logging_setup._output)
    real_configure = structlog.configure

    def configure_uncached(**settings: Any) -> None:
        real_configure(**{**settings, "cache_logger_on_first_use": False})

    monkeypatch.setattr(structlog, "configure", configure_uncached)
    try:
        yield
    finally:
        log_output.flush_all()
        real_configure(**saved)
        for lib, (handlers, level, propagate) in zip(libraries, saved_libraries, strict=True):
            lib.handlers, lib.propagate = handlers, propagate
            lib.setLevel(level)


# ---- checks skipped on this machine ----------------------------------------------------------------

_skipped: Counter[str] = Counter()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """The checks this test skipped so far go on its reports (the teardown report has them all)."""
    item.user_properties.extend(skipped_checks.as_properties(skipped_checks.take()))
    return (yield)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _skipped.update(skipped_checks.from_properties(report.user_properties))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _skipped.update(skipped_checks.take())  # made after the last test (a session fixture's teardown)
    for line in skipped_checks.summary_lines(_skipped):
        terminalreporter.write_line(line, yellow=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-s` is for seeing what tests print, which a worker's output never shows: in this process then."""
    return 0 if config.getoption("capture") == "no" else None
