"""`python -m gateway`: the command line. With an interpreter that cannot run it (a system `python3`
outside the project's virtualenv, without the dependencies, or too old) it says how to run it, in
one line, instead of a traceback."""

from __future__ import annotations

import sys

_HOW = "run .venv/bin/gateway (`make run` creates that virtualenv), or install it here: pip install -e ."

if sys.version_info < (3, 11):  # noqa: UP036 (pyproject's floor, but `python3 -m` ignores it)
    print(f"gateway: needs Python 3.11 or newer, not {sys.version.split()[0]}: {_HOW}", file=sys.stderr)
    raise SystemExit(2)
try:
    from gateway.cli import main
except ModuleNotFoundError as exc:
    if not exc.name or exc.name.partition(".")[0] == "gateway":
        raise
    print(f"gateway: {exc.name!r} is not installed for {sys.executable}: {_HOW}", file=sys.stderr)
    raise SystemExit(2) from None

raise SystemExit(main())
