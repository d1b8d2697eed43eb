"""Where `../shared` is: the directory next to the project root that holds the reference material (the
official OpenAI spec and its validator, the providers' wire formats, the comparison benchmark).

Found from this file, so a checkout anywhere finds the `shared` next to it; a checkout without one runs
every test, and the checks that need it are counted as skipped (tests/conftest.py reports them).
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED = PROJECT_ROOT.parent / "shared"
SPEC_DIR = SHARED / "spec"
