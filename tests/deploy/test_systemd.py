"""deploy/systemd/gateway.service: parsed and checked, then its ExecStart, ExecReload and KillSignal run for
real (paths swapped for this venv and a temporary copy of the shipped routes.yaml)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from gateway.reload import load_registry
from tests.deploy.support import (
    DEPLOY,
    SHIPPED_ROUTES,
    CommandGateway,
    parse_cli,
    parse_unit,
    unit_exec,
    venv_gateway,
)

UNIT = DEPLOY / "systemd" / "gateway.service"
INSTALLED_SCRIPT = "/opt/gateway/venv/bin/gateway"
INSTALLED_CONFIG = "/etc/gateway/routes.yaml"


def settings(section: str = "Service") -> dict[str, list[str]]:
    """Every value of every key of a section, in order (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    for key, value in parse_unit(UNIT.read_text(encoding="utf-8"))[section]:
        values.setdefault(key, []).append(value)
    return values


def one(key: str) -> str:
    values = settings().get(key)
    assert values is not None and len(values) == 1, f"{key}= once in [Service], got {values}"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span: `45`, `45s`, `1min 30s`, `2min`."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts, value
    return sum(float(n) * units[u] for n, u in parts)


def test_unit_has_its_sections_and_the_service_settings() -> None:
    sections = parse_unit(UNIT.read_text(encoding="utf-8"))
    assert {"Unit", "Service", "Install"} <= set(sections)
    assert one("ExecStart") == f"{INSTALLED_SCRIPT} --config {INSTALLED_CONFIG}"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("EnvironmentFile") == "-/etc/gateway/gateway.env"
    assert one("KillSignal") == "SIGTERM"
    assert one("Restart") == "on-failure"
    assert one("DynamicUser") == "yes" or one("User") not in ("", "root", "0")
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in hardening.items():
        assert one(key) == value, f"{key}={value} expected"
    assert dict(parse_unit(UNIT.read_text(encoding="utf-8"))["Install"])["WantedBy"] == "multi-user.target"


def test_exec_start_flags_are_accepted_by_the_cli() -> None:
    argv = unit_exec(one("ExecStart"))
    assert argv[0] == INSTALLED_SCRIPT
    args = parse_cli(argv[1:])
    assert args.command == "serve" and args.config == INSTALLED_CONFIG


def test_stop_timeout_outlasts_the_drain() -> None:
    drain = load_registry(str(SHIPPED_ROUTES), {}).config.limits.drain_timeout
    assert seconds(one("TimeoutStopSec")) > drain, "systemd would SIGKILL the drain"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_reports_nothing(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit (paths swapped for existing ones): unknown keys and values
    it cannot parse are warnings on stderr, so the test wants no output about the unit at all."""
    unit = tmp_path / "gateway.service"
    text = UNIT.read_text(encoding="utf-8").replace(INSTALLED_SCRIPT, str(venv_gateway()))
    unit.write_text(text.replace(INSTALLED_CONFIG, str(SHIPPED_ROUTES)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    about_unit = [line for line in (result.stdout + result.stderr).splitlines() if "gateway.service" in line]
    assert result.returncode == 0 and not about_unit, result.stdout + result.stderr


@pytest.mark.subprocess
def test_exec_start_reload_and_kill_signal_work_on_the_real_gateway(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    shutil.copy(SHIPPED_ROUTES, config)
    argv = unit_exec(one("ExecStart"))
    argv = [
        str(venv_gateway()) if a == INSTALLED_SCRIPT else str(config) if a == INSTALLED_CONFIG else a
        for a in argv
    ]
    argv += ["--port", "0"]  # a free port; the log format is the unit's: auto, JSON when not a terminal

    with CommandGateway(argv, config) as gateway:
        with urllib.request.urlopen(f"{gateway.url}/healthz", timeout=5) as reply:
            assert reply.status == 200

        after = gateway.mark()
        reload = [a.replace("$MAINPID", str(gateway.pid)) for a in unit_exec(one("ExecReload"))]
        kill = reload[0] if Path(reload[0]).exists() else shutil.which("kill")
        assert kill is not None
        subprocess.run([kill, *reload[1:]], check=True, timeout=30)
        gateway.wait_for_event("config_reloaded", after=after)

        after = gateway.mark()
        os.kill(gateway.pid, getattr(signal, one("KillSignal")))
        gateway.wait_for_event("stopped", after=after)
        status = gateway.wait_exit()
        assert status == 0, "SIGTERM drains and exits 0 (else Restart=on-failure would restart it)"
