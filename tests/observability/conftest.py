from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests are single-process whatever the caller's environment says (multi-process
    mode is tested in child processes)."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
