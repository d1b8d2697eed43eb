"""YAML documents as the gateway reads them (routes.yaml, dialect files): libyaml's safe loader, a
syntax error named by line and column, and every duplicate key reported.

PyYAML keeps the last of two equal keys in a mapping without a word; a key written twice is almost
always a mistake (an edit meant to replace the first, a block pasted twice), so it is a problem:
`providers.openai: duplicate key 'api_key' (lines 12 and 14)`.
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.config.problems import ConfigError, format_path

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`; ConfigError for a syntax error or a duplicate key, with `source`."""
    value, duplicates = load_yaml(text, source)
    if duplicates:
        raise ConfigError([f"{source}: {problem}" for problem in duplicates])
    return value


def load_yaml(text: str, source: str) -> tuple[Any, list[str]]:
    """The YAML document in `text` and every duplicate key in it, for a caller that reports them with
    its other problems; ConfigError for a syntax error."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = duplicate_keys(node)
        return loader.construct_document(node), duplicates
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source}: YAML syntax error at {where}: {problem}"]) from None
    finally:
        loader.dispose()


def duplicate_keys(root: yaml.Node) -> list[str]:
    """Every key that appears twice in one mapping of the composed document, in the order of the
    repeats. A `<<` merge key is not a duplicate: keys written next to it override the merged ones."""
    found: list[tuple[int, int, str]] = []
    seen: set[int] = set()  # an anchored node is walked once, however often it is aliased
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        # children pushed last first: nodes are walked in document order, an anchor before its aliases
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in reversed(list(enumerate(node.value)))]
        elif isinstance(node, yaml.MappingNode):
            marks: dict[tuple[str, Any], list[yaml.Mark]] = {}
            for key, value in reversed(node.value):
                scalar = isinstance(key, yaml.ScalarNode)
                if scalar and key.tag != _MERGE_TAG:
                    marks.setdefault((key.tag, key.value), []).insert(0, key.start_mark)
                stack.append((value, (*path, key.value if scalar else "?")))
            for (_tag, name), at in marks.items():
                if len(at) > 1:
                    found.append((at[1].line, at[1].column, f"{format_path(path)}: {_repeated(name, at)}"))
    return [problem for _line, _column, problem in sorted(found)]


def _repeated(name: str, marks: list[yaml.Mark]) -> str:
    lines = [mark.line + 1 for mark in marks]
    if len(set(lines)) == 1:
        return f"duplicate key {name!r} ({_times(len(lines))} on line {lines[0]})"
    listed = ", ".join(str(line) for line in lines[:-1])
    return f"duplicate key {name!r} (lines {listed} and {lines[-1]})"


def _times(count: int) -> str:
    return {2: "twice", 3: "three times"}.get(count, f"{count} times")
