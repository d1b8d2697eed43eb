"""Record what the gateway does with a fixture case, for a developer to review and keep.

    .venv/bin/python -m tests.engine.record_fixture tests/fixtures/<dialect>/<case>.yaml [--write]

Prints the upstream request and the client's response/stream as YAML. With --write, appends the
parts the case does not state yet. Review before keeping: a recorded case asserts what it recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import structlog
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from tests.engine.replay_transport import ReplayTransport
from tests.engine.sequential_ids import sequential_ids
from tests.engine.test_dialect_fixtures import (
    _fix_created,
    _routes,
    _stream_payloads,
    upstream_headers,
    upstream_parts,
)


async def record(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text())
    routes = _routes(path.parent.name, case.get("upstream_model", "upstream-model"), case.get("provider"))
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))
    transport = ReplayTransport(
        status=case.get("upstream_status", 200),
        headers=upstream_headers(case),
        parts=upstream_parts(case),
    )
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    with sequential_ids():
        async with TestClient(TestServer(app)) as client:
            response = await client.post(
                case.get("endpoint", "/v1/chat/completions"),
                json={"model": "client-model", **case["client_request"]},
            )
            raw = await response.read()
    out: dict[str, Any] = {}
    if transport.sent:
        out["upstream_request"] = transport.sent[0].body
        out["upstream_path"] = transport.sent[0].url.removeprefix("http://upstream.test/base")
    if response.status != 200:
        out["client_status"] = response.status
    if raw.startswith(b"data:"):
        out["client_stream"] = [_fix_created(p) for p in _stream_payloads(raw)]
    else:
        out["client_response"] = _fix_created(json_codec.loads(raw))
    return {k: v for k, v in out.items() if k not in case}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("cases", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="append the recorded parts to each case file")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    for path in args.cases:
        recorded = asyncio.run(record(path))
        text = yaml.safe_dump(recorded, sort_keys=False, width=120, allow_unicode=True)
        if args.write:
            with path.open("a") as handle:
                handle.write("\n# ---- expected (recorded, then reviewed) ----\n" + text)
        sys.stdout.write(f"# {path}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
