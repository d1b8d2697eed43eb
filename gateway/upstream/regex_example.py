"""A string a JSON Schema `pattern` matches, for the built-in mock's structured output: best effort.

The pattern is parsed by the standard library's own regex parser (`re._parser`, sre_parse), and the
string is written along the parse tree: literals as they are, a class's first allowed character (a
range's, chosen by the caller's generator), the first branch of an alternation, each repeat its
minimum count (at least once when it may repeat; more when a `minLength` asks for it), a back-reference
as the text its group got. Anchors, word boundaries and look-arounds are not checked, so a pattern
that leans on a look-around may not match what comes out: this is a demo's value, not a solver's.

Nothing here runs the pattern (a client's pattern can backtrack for hours on the wrong input), and the
work is bounded: patterns longer than MAX_PATTERN_LENGTH are not tried, and writing stops as soon as
the text outgrows the caller's `max_length` or has taken MAX_WRITE_STEPS steps (an empty group
repeated a billion times writes nothing, for a long time). `None` means "no example": the caller
falls back to plain text.
"""

from __future__ import annotations

import random
from typing import Any

try:
    from re import _constants as _op  # type: ignore[attr-defined]  # sre_constants, without its warning
    from re import _parser as _sre  # type: ignore[attr-defined]  # sre_parse, without its warning
except ImportError:  # pragma: no cover - a Python without them: patterns fall back to plain text
    _sre = None

MAX_PATTERN_LENGTH = 512  # characters of a pattern the mock tries to write an example of
MAX_WRITE_STEPS = 100_000  # sequences (a group, a repeat's body) written for one example

# a character for each class escape (\d, \w, \s and their negations), and candidates for a negated set
_CATEGORY_CHARACTER: dict[Any, str] = {}
_NEGATED_CANDIDATES = "a0A_-. xZ9"
if _sre is not None:
    _CATEGORY_CHARACTER = {
        _op.CATEGORY_DIGIT: "7",
        _op.CATEGORY_NOT_DIGIT: "a",
        _op.CATEGORY_WORD: "a",
        _op.CATEGORY_NOT_WORD: "-",
        _op.CATEGORY_SPACE: " ",
        _op.CATEGORY_NOT_SPACE: "a",
        _op.CATEGORY_LINEBREAK: "\n",
        _op.CATEGORY_NOT_LINEBREAK: "a",
    }


# what looks past the end of a match: without any of them, text appended to a match still matches
_LOOKS_AHEAD = ("$", "\\Z", "\\b", "\\B", "(?=", "(?!", "(?<")


class NoTextFits(Exception):
    """The texts this writer makes of the pattern are all shorter or longer than the caller allows."""


class _Unwritable(Exception):
    """The pattern uses something this writer does not, or the writer has taken too many steps."""


class _TooLong(_Unwritable):
    """The text outgrew the caller's maximum."""


def text_matching(pattern: str, rng: random.Random, min_length: int, max_length: int) -> str | None:
    """A string `pattern` matches with `min_length` to `max_length` characters; None where the
    pattern is beyond this writer; NoTextFits where what it writes has the wrong length."""
    if _sre is None or len(pattern) > MAX_PATTERN_LENGTH:
        return None
    try:
        tree = _sre.parse(pattern)
    except (Exception, RecursionError):  # re.error, OverflowError for huge counts, nesting
        return None
    # first the shortest text, then with each repeat that may grow stretched by 1, 2, 4, ... more
    stretch = 0
    shortest = None
    while True:
        state = rng.getstate()
        try:
            text = _Writer(rng, max_length, stretch).write(tree)
        except _TooLong:
            break
        except (_Unwritable, RecursionError):
            return None
        if len(text) >= min_length:
            return text
        shortest = shortest or text
        if stretch >= min_length:
            break
        rng.setstate(state)
        stretch = max(1, 2 * stretch)
    if shortest is None:
        raise NoTextFits(f"its shortest text is longer than {max_length} characters")
    if not any(mark in pattern for mark in _LOOKS_AHEAD):  # a match is found anywhere in the text
        return shortest + "x" * (min_length - len(shortest))
    raise NoTextFits(f"its texts are shorter than {min_length} characters")


class _Writer:
    __slots__ = ("_groups", "_max", "_out", "_rng", "_steps", "_stretch", "_written")

    def __init__(self, rng: random.Random, max_length: int, stretch: int) -> None:
        self._rng = rng
        self._max = max_length
        self._stretch = stretch
        self._out: list[str] = []
        self._written = 0
        self._steps = 0
        self._groups: dict[int, str] = {}

    def write(self, tree: Any) -> str:
        self._sequence(tree)
        return "".join(self._out)

    def _emit(self, text: str) -> None:
        self._written += len(text)
        if self._written > self._max:
            raise _TooLong("longer than the maximum")
        self._out.append(text)

    def _sequence(self, items: Any) -> None:
        self._steps += 1
        if self._steps > MAX_WRITE_STEPS:
            raise _Unwritable("too many steps")
        for op, arg in items:
            self._item(op, arg)

    def _item(self, op: Any, arg: Any) -> None:
        if op is _op.LITERAL:
            self._emit(chr(arg))
        elif op is _op.NOT_LITERAL:
            self._emit("a" if chr(arg) != "a" else "b")
        elif op is _op.ANY:
            self._emit("x")
        elif op is _op.IN:
            self._emit(self._in_set(arg))
        elif op is _op.BRANCH:
            self._sequence(arg[1][0])
        elif op is _op.SUBPATTERN:
            group, _, _, inner = arg
            start = len(self._out)
            self._sequence(inner)
            if group is not None:
                self._groups[group] = "".join(self._out[start:])
        elif op in (_op.MAX_REPEAT, _op.MIN_REPEAT, _op.POSSESSIVE_REPEAT):
            low, high, inner = arg
            count = low if low or not high else 1
            if self._stretch and high > count:
                count = min(high, count + self._stretch)
            for _ in range(count):
                self._sequence(inner)
        elif op is _op.ATOMIC_GROUP:
            self._sequence(arg)
        elif op is _op.GROUPREF:
            self._emit(self._groups.get(arg, ""))
        elif op in (_op.AT, _op.ASSERT, _op.ASSERT_NOT):
            return  # anchors and look-arounds: not checked (see the module docstring)
        else:
            raise _Unwritable(f"unsupported regex construct {op}")

    def _in_set(self, members: Any) -> str:
        if members and members[0][0] is _op.NEGATE:
            for candidate in _NEGATED_CANDIDATES:
                if not _in_members(candidate, members[1:]):
                    return candidate
            raise _Unwritable("a negated set excluding every candidate")
        kind, value = members[0]
        if kind is _op.LITERAL:
            return chr(value)
        if kind is _op.RANGE:
            low, high = value
            return chr(self._rng.randint(low, min(high, low + 25)))
        if kind is _op.CATEGORY and value in _CATEGORY_CHARACTER:
            return _CATEGORY_CHARACTER[value]
        raise _Unwritable(f"unsupported set member {kind}")


def _in_members(character: str, members: Any) -> bool:
    code = ord(character)
    for kind, value in members:
        if kind is _op.LITERAL and value == code:
            return True
        if kind is _op.RANGE and value[0] <= code <= value[1]:
            return True
        if kind is _op.CATEGORY and _category_has(value, character):
            return True
    return False


def _category_has(category: Any, character: str) -> bool:
    checks = {
        _op.CATEGORY_DIGIT: character.isdigit(),
        _op.CATEGORY_NOT_DIGIT: not character.isdigit(),
        _op.CATEGORY_WORD: character.isalnum() or character == "_",
        _op.CATEGORY_NOT_WORD: not (character.isalnum() or character == "_"),
        _op.CATEGORY_SPACE: character.isspace(),
        _op.CATEGORY_NOT_SPACE: not character.isspace(),
        _op.CATEGORY_LINEBREAK: character == "\n",
        _op.CATEGORY_NOT_LINEBREAK: character != "\n",
    }
    return bool(checks.get(category, False))
