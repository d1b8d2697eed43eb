"""The tokenizer is o200k_base, as tiktoken cuts it: the counts OpenAI's cookbook prints for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.tokens.tokenizer import count_texts


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("tiktoken is great!", 6),
        ("2 + 2 = 4", 7),
        ("お誕生日おめでとう", 8),
        ("antidisestablishmentarianism", 6),
        ("", 0),
        # a special token's text is ordinary text in a prompt: no 1-token shortcut for it
        ("<|endoftext|>", 7),
    ],
)
def test_counts_as_o200k_base_does(text: str, tokens: int) -> None:
    assert count_texts([text]) == tokens


def test_texts_are_counted_each_on_its_own() -> None:
    assert count_texts(["tiktoken is great!", "2 + 2 = 4"]) == 13
    assert count_texts([]) == 0


def test_nothing_is_downloaded_or_loaded_on_import() -> None:
    """The vocabulary is inside the wheel and loaded on first use: importing the package costs
    nothing, and counting works with every proxy pointing nowhere."""
    code = (
        "import toktok, gateway.tokens as t\n"
        "assert not toktok._CACHE, 'loaded on import'\n"
        "print(t.estimate_input_tokens({'messages': [{'role': 'user', 'content': 'tiktoken is great!'}]}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "13"  # 3 + "user" 1 + 6 + 3 priming
