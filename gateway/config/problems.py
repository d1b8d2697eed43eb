"""Configuration problems, each naming where in the YAML it is and what was expected.

A value that can take several forms (`oneOf`: a model is a target, a list or a route) fails every
form; jsonschema reports them all, and the first one is rarely what the user meant ("missing required
key 'targets'" for a typo inside a target). The form reported is the one the value fits best: the
right kind of value, most of its keys known (or a close misspelling of a known one). An unknown key
that is a close misspelling of an allowed one says "did you mean", and the "missing required key"
it causes is not reported twice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

# Values under keys like these are never echoed in a message.
_SECRET_WORDS = ("key", "secret", "token", "password", "authorization")
# The password of a URL (`scheme://user:password@host`), masked wherever a value is echoed.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")
# Kinds of value a branch can insist on: failing one of these means the value is of another kind.
_KIND_KEYWORDS = ("type", "const")


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to a misspelt `word`, if one is close enough to be the one meant."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_name(kind: str, name: str, known: Iterable[str], listed_as: str = "defined") -> str:
    """`unknown provider 'opnai' (did you mean 'openai'?)`, or the known names when none is close."""
    names = sorted(known)
    close = did_you_mean(name, names)
    hint = f"did you mean {close!r}?" if close else f"{listed_as}: {', '.join(names) or 'none'}"
    return f"unknown {kind} {name!r} ({hint})"


class ConfigError(Exception):
    """One or more problems; `str()` lists every one on its own line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class _Problem:
    path: tuple[Any, ...]
    text: str
    missing: str | None = None  # the required key this reports missing
    suggested: str | None = None  # the allowed key an unknown key is a close misspelling of


def schema_problems(validator: Draft202012Validator, instance: Any, prefix: Sequence[Any] = ()) -> list[str]:
    """Every schema violation as `path: what was expected`, sorted by path."""
    found: list[_Problem] = []
    for error in validator.iter_errors(instance):
        found += _problems(error, tuple(prefix))
    # a key reported as a misspelling of a required one is not also reported missing
    suggested = {(p.path, p.suggested) for p in found if p.suggested is not None}
    lines = {
        f"{format_path(p.path)}: {p.text}"
        for p in found
        if p.missing is None or (p.path, p.missing) not in suggested
    }
    return sorted(lines)


def _problems(error: ValidationError, prefix: tuple[Any, ...]) -> list[_Problem]:
    path = (*prefix, *error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        alternatives = _required_alternatives(error.validator_value)
        if alternatives is not None:
            names = " or ".join(repr(name) for name in alternatives)
            return [_Problem(path, f"give {names}, not both" if not error.context else f"needs {names}")]
        if not error.context:  # valid under several forms: jsonschema's message would echo the value
            return [_Problem(path, "matches more than one of the allowed forms")]
        branches = _branches(error)
        if all(_kind_mismatch(errors, error) for errors in branches.values()):
            kinds = _unique(_expected_kind(e) for errors in branches.values() for e in errors)
            got = _yaml_kind(type(error.instance).__name__)
            return [_Problem(path, f"expected {' or '.join(kinds)}, got {got}")]
        misfits = {index: _misfit(errors, error) for index, errors in branches.items()}
        meant = min(misfits, key=misfits.__getitem__)
        known_keys = [-misfit[1] for misfit in misfits.values() if misfit[0] == 0]
        if isinstance(error.instance, dict) and not any(known_keys):  # no key says which form
            return [_Problem(path, _needs_one_form(error.instance, branches))]
        return [problem for e in branches[meant] for problem in _problems(e, prefix)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error)
        problems = []
        for extra in sorted(set(error.instance) - set(allowed), key=str):
            close = did_you_mean(str(extra), allowed)
            hint = f"did you mean {close!r}?" if close else f"allowed: {', '.join(allowed)}"
            problems.append(_Problem(path, f"unknown key {extra!r} ({hint})", suggested=close))
        return problems
    if error.validator == "required" and isinstance(error.instance, dict):
        return [_Problem(path, f"missing required key {name!r}", missing=name) for name in _missing(error)]
    return [_Problem(path, _describe(error, path))]


def _describe(error: ValidationError, path: Sequence[Any]) -> str:
    """What was expected, in words; never the offending value when it sits under a secret-looking key."""
    keyword = error.validator
    expected: Any = error.validator_value
    got = _yaml_kind(type(error.instance).__name__)
    if keyword == "type":
        return f"expected {_expected_kind(error)}, got {got}"
    if keyword == "const":
        return f"expected {_yaml_value(expected)}, got {got}"
    if keyword == "enum":
        hint = ""
        if isinstance(error.instance, str) and (close := did_you_mean(error.instance, map(str, expected))):
            hint = f" (did you mean {close!r}?)"
        return f"expected one of {', '.join(repr(v) for v in expected)}{hint}"
    if keyword == "minProperties":
        return f"needs at least {expected} {'entry' if expected == 1 else 'entries'}"
    if keyword == "minItems":
        return f"needs at least {expected} {'item' if expected == 1 else 'items'}"
    if keyword == "not":
        together = expected.get("required") if isinstance(expected, dict) else None
        if together:
            return f"{' and '.join(repr(name) for name in together)} cannot be used together"
        return "this value is not allowed here"
    if _is_secret(path):
        return f"invalid value ({keyword} {expected!r} not met)"
    if keyword == "pattern" and "propertyNames" in error.schema_path:
        return f"the name {_shown(error.instance)} does not match {expected!r}"
    if keyword == "pattern":
        return f"{_shown(error.instance)} does not match {expected!r}"
    if keyword in ("if", "then", "else", "allOf", "dependentSchemas"):
        return "invalid value"  # jsonschema's message for these quotes the whole mapping
    return _URL_PASSWORD.sub(r"\1***@", error.message)


def _branches(error: ValidationError) -> dict[int, list[ValidationError]]:
    """The errors of a oneOf/anyOf, by the branch (its index) that raised them."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    return branches


def _own(errors: list[ValidationError], parent: ValidationError) -> list[ValidationError]:
    """The errors about the value itself (not about something inside it)."""
    depth = len(parent.absolute_path)
    return [e for e in errors if len(e.absolute_path) == depth]


def _kind_mismatch(errors: list[ValidationError], parent: ValidationError) -> bool:
    return any(e.validator in _KIND_KEYWORDS for e in _own(errors, parent))


def _misfit(errors: list[ValidationError], parent: ValidationError) -> tuple[int, int, int, int, int]:
    """How badly the value fits a branch, least first: a value of another kind; few of its keys
    known (a close misspelling of a known key counts as known); unknown keys; missing keys; then the
    branch whose errors lie deeper (it got further)."""
    own = _own(errors, parent)
    keys = list(parent.instance) if isinstance(parent.instance, dict) else []
    unknown = misspelt = 0
    missing: set[Any] = set()  # jsonschema raises one `required` error per missing key, each naming all
    for e in own:
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = _allowed_keys(e)
            extra = [key for key in keys if key not in allowed]
            unknown += len(extra)
            misspelt += sum(1 for key in extra if did_you_mean(str(key), allowed) is not None)
        elif e.validator == "required":
            missing.update(_missing(e))
    fit = len(keys) - unknown + misspelt
    deepest = max(len(e.absolute_path) for e in errors)
    return (int(_kind_mismatch(errors, parent)), -fit, unknown, len(missing), -deepest)


def _needs_one_form(instance: dict[Any, Any], branches: dict[int, list[ValidationError]]) -> str:
    """A mapping none of whose keys belongs to any form: the keys each form requires."""
    forms = []
    for errors in branches.values():
        required = _unique(repr(name) for e in errors if e.validator == "required" for name in _missing(e))
        if required:
            forms.append(" and ".join(required))
    text = f"needs {', or '.join(_unique(forms))}"
    if instance:
        text += f" (unknown: {', '.join(repr(key) for key in instance)})"
    return text


def _missing(error: ValidationError) -> list[Any]:
    required: Any = error.validator_value
    return [name for name in required if isinstance(error.instance, dict) and name not in error.instance]


def _allowed_keys(error: ValidationError) -> list[str]:
    """The keys the schema of an `additionalProperties: false` error names."""
    schema: Any = error.schema
    return sorted((schema.get("properties") or {}) if isinstance(schema, dict) else {})


def _required_alternatives(branches: Any) -> list[str] | None:
    """`oneOf: [{required: [a]}, {required: [b]}]` (one of these keys, exactly) as [a, b]."""
    if not isinstance(branches, list) or not all(
        isinstance(b, dict) and list(b) == ["required"] and len(b["required"]) == 1 for b in branches
    ):
        return None
    return [b["required"][0] for b in branches]


def _expected_kind(error: ValidationError) -> str:
    if error.validator == "const":
        return _yaml_value(error.validator_value)
    kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    return " or ".join(_SCHEMA_KINDS.get(str(kind), str(kind)) for kind in kinds)


_SCHEMA_KINDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)


def _yaml_kind(python_type: str) -> str:
    return {
        "dict": "a mapping",
        "list": "a list",
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "NoneType": "null",
    }.get(python_type, python_type)


def _shown(value: Any) -> str:
    """A value as a message may quote it: a URL's password masked."""
    return _URL_PASSWORD.sub(r"\1***@", repr(value))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _is_secret(path: Sequence[Any]) -> bool:
    return any(isinstance(p, str) and any(w in p.lower() for w in _SECRET_WORDS) for p in path)
