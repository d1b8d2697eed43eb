"""A string a JSON Schema `pattern` matches (best effort), written without ever running the pattern:
None where the pattern is beyond the writer, NoTextFits where its texts have the wrong length."""

from __future__ import annotations

import random
import re
import time

import pytest

from gateway.upstream.regex_example import MAX_PATTERN_LENGTH, NoTextFits, text_matching

MATCHED = [
    r"^[A-Z]{3}-\d{4}$",
    r"^\+?[0-9]{7,15}$",
    r"^(foo|bar)+baz$",
    r"^[^abc\d]{2}$",
    r"^(ab|cd)-\1$",
    r"^(?P<year>\d{4})-(?P=year)$",
    r"^\w+@\w+\.(com|org)$",
    r"^[a-z]*$",
    r"^a?b??c*?d+?$",
    r"^(?:x|y){2,}z$",
    r"^\s\S\W\D$",
    r"colour|color",
    r"^[\w.-]+$",
    r"(?i)^hello$",
    r"^.{3}$",
    r"^(?>ab)c*+$",
    r"\bword\b",
]


@pytest.mark.parametrize("pattern", MATCHED)
def test_the_text_matches(pattern: str) -> None:
    text = text_matching(pattern, random.Random(1), 0, 1000)
    assert text is not None
    assert re.search(pattern, text), text


def test_min_length_stretches_open_repeats() -> None:
    text = text_matching(r"^a+b*$", random.Random(1), 10, 100)
    assert text is not None and len(text) >= 10 and re.fullmatch(r"a+b*", text)


@pytest.mark.parametrize(
    ("pattern", "min_length", "max_length", "words"),
    [
        pytest.param(r"^a{100}$", 0, 50, "longer than 50", id="longer than max_length"),
        pytest.param(
            r"^a{1000000000}$", 0, 65_536, "longer than 65536", id="huge count: stops at max_length"
        ),
        pytest.param(r"^ab$", 5, 10, "shorter than 5", id="cannot be stretched, anchored"),
        pytest.param(r"\bab\b", 5, 10, "shorter than 5", id="cannot be padded past a word boundary"),
    ],
)
def test_no_text_of_the_right_length_raises(
    pattern: str, min_length: int, max_length: int, words: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(NoTextFits, match=words):
        text_matching(pattern, random.Random(1), min_length, max_length)
    assert time.perf_counter() - started < 1.0


def test_an_unanchored_match_is_padded_to_min_length() -> None:
    text = text_matching(r"^ab", random.Random(1), 6, 10)
    assert text == "abxxxx"


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"([", id="not a regex"),
        pytest.param("a" * (MAX_PATTERN_LENGTH + 1), id="too long to try"),
        pytest.param("(" * 5000 + ")" * 5000, id="deep nesting"),
        pytest.param(r"(a)?(?(1)b|c)", id="conditional group: unsupported"),
        pytest.param(r"^(?:){1000000000}$", id="an empty group a billion times"),
        pytest.param(r"^(?:\b){1000000000}$", id="an anchor a billion times"),
    ],
)
def test_a_pattern_beyond_the_writer_is_none_and_fast(pattern: str) -> None:
    started = time.perf_counter()
    assert text_matching(pattern, random.Random(1), 0, 10) is None
    assert time.perf_counter() - started < 1.0


def test_a_catastrophic_pattern_is_never_run() -> None:
    started = time.perf_counter()
    text = text_matching(r"^(a+)+$", random.Random(1), 30, 100)
    assert text is not None and set(text) == {"a"}
    assert time.perf_counter() - started < 0.5
