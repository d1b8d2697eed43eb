"""The suite runs the same on any machine: nothing names a path of one developer's machine, the checks
that need `../shared` say how many were skipped where it is absent (never pass in silence), and the
app's log lines stay out of pytest's own output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import shared_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# generated or installed, never written by hand (.gitignore): .venv, caches, bench-results, builds
NOT_OURS = {"__pycache__", "bench-results", "build", "dist", "node_modules"}
# a home or workspace directory at the start of an absolute path (not inside a URL or a relative path)
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|Users)/")


def _project_files() -> Iterator[Path]:
    for path in sorted(PROJECT_ROOT.rglob("*")):
        parts = path.relative_to(PROJECT_ROOT).parts
        if any(p.startswith(".") or p in NOT_OURS or p.endswith(".egg-info") for p in parts):
            continue
        if path.is_file():
            yield path


def test_nothing_names_an_absolute_path_of_a_developer_machine() -> None:
    found = []
    for path in _project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not found, "absolute paths of one machine:\n" + "\n".join(found)


def test_shared_is_found_next_to_the_project_root() -> None:
    assert shared_dir.PROJECT_ROOT == PROJECT_ROOT
    assert PROJECT_ROOT.parent / "shared" == shared_dir.SHARED
    assert PROJECT_ROOT.parent / "shared" / "spec" == shared_dir.SPEC_DIR


INNER_CONFTEST = """
import structlog

def pytest_runtest_logreport(report):
    if report.when == "teardown":  # pytest is reporting, its capture is off: a server thread's line
        structlog.get_logger("app").info("logged between two tests")
"""

INNER_TESTS = """
import io
from pathlib import Path

import structlog

from gateway.logging_setup import configure_logging
from tests.support import openai_spec
from tests.support.spec_check import spec_errors

NO_SPEC = Path(__file__).parent / "no-shared" / "spec"


def test_two_checks_without_the_spec(monkeypatch):
    monkeypatch.setattr(openai_spec, "SPEC_DIR", NO_SPEC)
    assert spec_errors("ErrorResponse", {"error": {"message": "m"}}) == []
    openai_spec.assert_error_body({"error": {"message": "m", "code": "c"}}, code="c")


def test_one_more_check_without_the_spec(monkeypatch):
    monkeypatch.setattr(openai_spec, "SPEC_DIR", NO_SPEC)
    assert openai_spec.errors_for("Model", {}) == []


def test_a_test_that_configures_logging():
    configure_logging("info", "json", stream=io.BytesIO())


def test_logging_is_as_it_was_before_that_test():
    assert structlog.get_config()["logger_factory"].__class__ is structlog.PrintLoggerFactory


def test_a_failure_shows_the_app_log_lines_of_its_test():
    structlog.get_logger("app").info("logged during the failing test")
    assert False
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_skipped_checks_are_counted_in_one_line_and_app_logs_stay_in_the_capture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """A fresh pytest process with this suite's conftest on a few inner tests: in one process (where the
    terminal is pytest's own), and on two workers as `make test` runs (the counts travel on reports)."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "tests.conftest", "-p", "no:cacheprovider", "-n", workers, "--dist", "loadfile"
    )
    result.assert_outcomes(passed=4, failed=1)
    output = result.stdout.str()
    summary = [line for line in output.splitlines() if "skipped:" in line]
    no_spec = pytester.path / "no-shared" / "spec"
    assert summary == [f"3 checks skipped: ../shared/spec not found ({no_spec})"], output
    assert "logged between two tests" not in output
    assert "logged during the failing test" in output  # in the failure's captured stdout
