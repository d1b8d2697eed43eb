"""Prices as data: the shipped tables, routes.yaml's own prices, the cost formula, and the one
warning for a routed model that has no price."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.config.problems import ConfigError
from gateway.engine.registry import build_registry
from gateway.prices.price import Price, cost_text, cost_usd
from gateway.prices.table import PRICES_DIR, shipped_prices
from gateway.reload import RegistryHolder
from gateway.schema_files import load_schema
from gateway.spend.cost import COST_HEADER
from tests.support.access_events import access_events

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "one two three"}]}


# ---- the formula ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "usage", "expected"),
    [
        # plain: input and output
        ({"input": 2, "output": 10}, {"prompt_tokens": 1000, "completion_tokens": 100}, 0.003),
        # cached reads and cache writes at their own rates, the rest of the prompt at input
        (
            {"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75},
            {
                "prompt_tokens": 1125,
                "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 100},
            },
            (25 * 3 + 1000 * 0.3 + 100 * 3.75 + 10 * 15) / 1e6,
        ),
        # no cached rate: cached tokens cost what input costs (never zero)
        (
            {"input": 2, "output": 10},
            {"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 60}},
            0.0002,
        ),
        # reasoning priced apart only when the price says so; else it is output
        (
            {"input": 0, "output": 4, "reasoning": 8},
            {"completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 10}},
            (20 * 4 + 80) / 1e6,
        ),
        (
            {"input": 0, "output": 4},
            {"completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 10}},
            30 * 4 / 1e6,
        ),
        # embeddings: a prompt only; counts that are missing, null or not numbers count 0
        ({"input": 0.02, "output": 0}, {"prompt_tokens": 8, "total_tokens": 8}, 1.6e-7),
        (
            {"input": 1, "output": 1},
            {"prompt_tokens": None, "completion_tokens": "7", "prompt_tokens_details": None},
            0.0,
        ),
    ],
)
def test_cost_of_a_usage(price: dict[str, Any], usage: dict[str, Any], expected: float) -> None:
    assert cost_usd(Price.from_spec(price), usage) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("cost", "text"), [(0.0, "0"), (0.000044, "0.000044"), (1.5, "1.5"), (12.0, "12"), (2e-8, "0.00000002")]
)
def test_the_header_writes_plain_decimals(cost: float, text: str) -> None:
    assert cost_text(cost) == text


# ---- the shipped tables --------------------------------------------------------------------------


def test_every_shipped_table_is_valid_and_dated() -> None:
    tables = shipped_prices()
    assert set(tables) == {p.stem for p in PRICES_DIR.glob("*.yaml")}
    dialects = {p.stem for p in (ROOT / "gateway" / "dialects").glob("*.yaml")}
    assert set(tables) <= dialects  # a table is named after the dialect it prices
    for models in tables.values():
        for price in models.values():
            assert price.as_of and price.source


def test_every_model_the_shipped_routes_yaml_routes_has_a_price() -> None:
    text = (ROOT / "routes.yaml").read_text()
    keys = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y"}
    registry = build_registry(config_from_text(text, "routes.yaml", keys))
    assert [w for w in registry.config.warnings if w.startswith("no price")] == []
    assert registry.routes["gpt-4o"].prices[("openai", "gpt-4o")].input == 2.5


def test_the_routes_schema_prices_what_the_tables_schema_prices() -> None:
    """One price shape in both files (routes.yaml's leaves as_of and source optional)."""
    table = load_schema("prices.schema.json")["$defs"]["price"]["properties"]
    routes = load_schema("routes.schema.json")["$defs"]["price"]["properties"]
    assert set(table) == set(routes)


# ---- routes.yaml prices, and the warning ---------------------------------------------------------


def routes(prices: str = "", models: str = "  mock: [{provider: mock, model: m}]") -> str:
    return f"providers:\n  mock: {{dialect: mock, transport: mock{prices}}}\nmodels:\n{models}\n"


def test_a_model_with_no_price_is_one_warning_and_costs_null() -> None:
    both = "[{provider: mock, model: n}, {provider: mock, model: m}]"
    text = routes(models=f"  a: [{{provider: mock, model: m}}]\n  b: {both}")
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    assert registry.config.warnings == (
        "no price for mock/m, mock/n: their cost is unknown (cost_usd null, not counted in "
        "gateway_cost_usd_total or budgets); give one under providers.<name>.prices",
    )


async def test_unknown_cost_is_null_in_the_log_and_absent_from_the_reply() -> None:
    registry = build_registry(config_from_text(routes(), "routes.yaml", {}))
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
        with access_events() as events:
            response = await client.post("/v1/chat/completions", json=CHAT)
            assert response.status == 200
            event = events.wait_for(1)[0]
        assert COST_HEADER not in response.headers
        assert event["usage"]["total_tokens"] > 0 and event["cost_usd"] is None
        metrics = await (await client.get("/metrics")).text()
        assert "gateway_cost_usd_total{" not in metrics  # never a made-up zero


async def test_routes_yaml_prices_a_model_and_overrides_a_shipped_one() -> None:
    # mock-1 has a shipped price (0: the mock is free); routes.yaml gives it another
    text = routes(
        ", prices: {mock-1: {input: 1000, output: 2000}}", "  mock: [{provider: mock, model: mock-1}]"
    )
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    assert registry.config.warnings == ()
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
        usage = (await response.json())["usage"]
        expected = (usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 2000) / 1e6
        assert float(response.headers[COST_HEADER]) == pytest.approx(expected)
        metrics = await (await client.get("/metrics")).text()
        line = next(x for x in metrics.splitlines() if x.startswith("gateway_cost_usd_total{"))
        assert 'key="-"' in line and 'alias="mock"' in line and 'provider="mock"' in line
        assert 'model="mock-1"' in line and float(line.split()[-1]) == pytest.approx(expected)


def test_the_shipped_price_applies_without_an_override() -> None:
    text = routes(models="  mock: [{provider: mock, model: mock-1}]")
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    assert registry.routes["mock"].prices[("mock", "mock-1")] == shipped_prices()["mock"]["mock-1"]


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        ("{m: {input: -1, output: 1}}", "providers.mock.prices.m.input: -1 is less than the minimum of 0"),
        ("{m: {input: 1}}", "providers.mock.prices.m: missing required key 'output'"),
        ("{m: {input: 1, output: 1, cache_read: 1}}", "providers.mock.prices.m: unknown key 'cache_read'"),
    ],
)
def test_a_bad_price_is_a_config_problem(prices: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_text(routes(f", prices: {prices}"), "routes.yaml", {})
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_a_broken_shipped_table_names_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "openai.yaml").write_text(yaml.safe_dump({"models": {"x": {"input": 1, "output": 1}}}))
    monkeypatch.setattr("gateway.prices.table.PRICES_DIR", tmp_path)
    shipped_prices.cache_clear()
    try:
        with pytest.raises(ConfigError) as raised:
            shipped_prices()
        assert raised.value.problems == [
            "openai.yaml: models.x: missing required key 'as_of'",
            "openai.yaml: models.x: missing required key 'source'",
        ]
    finally:
        shipped_prices.cache_clear()


async def test_a_reload_swaps_the_prices(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(routes(", prices: {m: {input: 1000000, output: 0}}"))
    holder = RegistryHolder.load(str(config))
    async with TestClient(TestServer(create_app(holder))) as client:
        before = (await client.post("/v1/chat/completions", json=CHAT)).headers[COST_HEADER]
        config.write_text(routes(", prices: {m: {input: 2000000, output: 0}}"))
        assert holder.reload()
        after = (await client.post("/v1/chat/completions", json=CHAT)).headers[COST_HEADER]
    assert float(after) == 2 * float(before) > 0
