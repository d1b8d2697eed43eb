"""`gateway params`: the parameter matrix of the shipped dialects, or of the dialects a config uses
(its own included), and exit status 1 when one of them loses a parameter without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.engine.parameter_fates import compiled_dialects, markdown, parameter_matrix

# a dialect of the user's that sends a template of its own and forgets `seed`
LOSSY = """
dialects:
  lossy:
    operations:
      chat:
        path: /generate
        unsupported: {n: "n > `1`"}
        request:
          template: {model: model, prompt: "messages[-1].content", temperature: temperature}
providers:
  mine: {dialect: lossy, base_url: "http://up.test"}
  theirs: {dialect: groq, base_url: "http://groq.test", api_key: "${GROQ_KEY_NOT_SET}"}
models:
  m: {provider: mine, model: x}
"""


def test_without_a_file_it_prints_the_shipped_dialects_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["params"]) == 0
    out, err = capsys.readouterr()
    assert out == markdown(parameter_matrix(compiled_dialects()))
    assert err == ""


def test_a_config_shows_its_dialects_and_names_what_is_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(LOSSY)
    assert main(["params", str(routes)]) == 1
    out, err = capsys.readouterr()
    header = next(line for line in out.splitlines() if line.startswith("| parameter |"))
    # the providers' dialects (a disabled provider's too: a missing key is no reason to hide it)
    assert header == "| parameter | groq | lossy |"
    assert "| `n` | rejected | rejected |" in out
    assert "| `max_tokens` | passed | **LOST** |" in out
    assert "| `temperature` | passed | passed |" in out
    assert "| `seed` | passed | **LOST** |" in out
    assert (
        "lossy chat `seed`: LOST (the upstream request is the same with it and without it)"
        in err.splitlines()
    )


def test_a_broken_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "providers:\n  p: {dialect: opnai, base_url: 'http://x'}\nmodels:\n  m: {provider: p, model: x}\n"
    )
    assert main(["params", str(routes)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{routes}: unknown dialect 'opnai' (did you mean 'openai'?)\n"


def test_it_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["params", "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: gateway params")
