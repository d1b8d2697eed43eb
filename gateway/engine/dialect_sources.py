"""Where dialects come from (the package's YAML files and routes.yaml) and `extends` resolution."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from gateway.config.loader import parse_yaml
from gateway.config.problems import ConfigError, schema_problems
from gateway.schema_files import load_schema

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "dialects"


def shipped_dialects() -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (file it came from, raw mapping), read fresh (a reload picks up edited files)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        raw = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        if not isinstance(raw, dict):
            raise ConfigError([f"{path}: a dialect file holds a mapping"])
        found[path.stem] = (f"dialects/{path.name}", raw)
    return found


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and scalars replace; a null value deletes the key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_dialects(
    user: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every dialect with its `extends` chain merged in and validated: name -> (where, spec)."""
    sources = shipped_dialects()
    for name, spec in user.items():
        sources[name] = (f"dialects.{name}", dict(spec))

    resolved: dict[str, tuple[str, dict[str, Any]]] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in resolved:
            return resolved[name][1]
        where, raw = sources[name]
        parent_name = raw.get("extends")
        spec = {k: v for k, v in raw.items() if k != "extends"}
        if parent_name is not None:
            if not isinstance(parent_name, str):
                raise ConfigError([f"{where}.extends: expected the name of a dialect"])
            if parent_name in chain:
                raise ConfigError([f"{where}.extends: circular: {' -> '.join((*chain, parent_name))}"])
            if parent_name not in sources:
                known = ", ".join(sorted(sources))
                raise ConfigError([f"{where}.extends: unknown dialect {parent_name!r} (known: {known})"])
            spec = deep_merge(resolve(parent_name, (*chain, parent_name)), spec)
        resolved[name] = (where, spec)
        return spec

    for name in sources:
        resolve(name, (name,))
    # validated after merging: a child dialect only has to be complete together with its parent
    validator = Draft202012Validator(load_schema("dialect.schema.json"))
    problems: list[str] = []
    for where, spec in resolved.values():
        problems += schema_problems(validator, spec, prefix=(where,))
    if problems:
        raise ConfigError(problems)
    return resolved
