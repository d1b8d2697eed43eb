"""`${VAR}`, `${VAR:-default}` and `${file:/path}` in YAML strings: the environment and mounted
secret files (read on every load, so a SIGHUP picks up a rotated secret)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_VARIABLE = re.compile(r"\$\{(?:file:([^}]+)|([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?)\}")


@dataclass
class Interpolation:
    """The tree with variables replaced, and each variable that was unset (path, name)."""

    value: Any
    missing: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)


def interpolate(tree: Any, environ: Mapping[str, str]) -> Interpolation:
    result = Interpolation(None)
    result.value = _walk(tree, environ, (), result.missing)
    return result


def _walk(node: Any, environ: Mapping[str, str], path: tuple[Any, ...], missing: list[Any]) -> Any:
    if isinstance(node, str):
        return _substitute(node, environ, path, missing)
    if isinstance(node, dict):
        return {key: _walk(value, environ, (*path, key), missing) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, environ, (*path, i), missing) for i, value in enumerate(node)]
    return node


def _substitute(
    text: str, environ: Mapping[str, str], path_of_node: tuple[Any, ...], missing: list[Any]
) -> Any:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        path, name, default = match.group(1), match.group(2), match.group(3)
        if path is not None:
            try:
                with open(path.strip(), encoding="utf-8") as handle:
                    return handle.read().strip()
            except OSError:
                missing.append((path_of_node, f"file {path.strip()}"))
                return ""
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            missing.append((path_of_node, name))
            return ""
        return value

    return _VARIABLE.sub(replace, text)
