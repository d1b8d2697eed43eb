"""The price of each (provider, upstream model) a route can send to: routes.yaml's own price for it
(`providers.<name>.prices`), else the shipped table of the provider's dialect (gateway/prices/
<dialect>.yaml), else none — cost unknown, said once per load as a config warning, never a zero.

Compiled into the registry at load (each route carries the prices of its targets), so a request
looks its price up in one dict and a reload swaps the prices with everything else.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from jsonschema import Draft202012Validator

from gateway.config.model import GatewayConfig
from gateway.config.problems import ConfigError, schema_problems
from gateway.config.yaml_document import parse_yaml
from gateway.prices.price import Price
from gateway.schema_files import load_schema

PRICES_DIR = Path(__file__).resolve().parent

TargetKey = tuple[str, str]  # (provider name, upstream model)
Prices = Mapping[TargetKey, Price]
NO_PRICES: Prices = MappingProxyType({})


@functools.cache
def shipped_prices() -> Mapping[str, Mapping[str, Price]]:
    """dialect -> upstream model -> price, from the package's price files (read and checked once)."""
    validator = Draft202012Validator(load_schema("prices.schema.json"))
    tables: dict[str, Mapping[str, Price]] = {}
    problems: list[str] = []
    for path in sorted(PRICES_DIR.glob("*.yaml")):
        tree = parse_yaml(path.read_text(encoding="utf-8"), str(path))
        found = schema_problems(validator, tree)
        if found:
            problems += [f"{path.name}: {problem}" for problem in found]
            continue
        models = tree["models"]
        tables[path.stem] = MappingProxyType({name: Price.from_spec(spec) for name, spec in models.items()})
    if problems:
        raise ConfigError(problems)
    return MappingProxyType(tables)


def price_of(config: GatewayConfig, provider: str, model: str) -> Price | None:
    """routes.yaml's price for this target, else the shipped one for its provider's dialect."""
    pconf = config.providers[provider]
    own = pconf.prices.get(model)
    if own is not None:
        return own
    return shipped_prices().get(pconf.dialect, {}).get(model)


def target_prices(config: GatewayConfig, targets: Iterable[TargetKey]) -> tuple[Prices, list[str]]:
    """The prices of `targets`, and the one warning naming those that have none."""
    prices: dict[TargetKey, Price] = {}
    unpriced: list[str] = []
    for provider, model in targets:
        price = price_of(config, provider, model)
        if price is not None:
            prices[(provider, model)] = price
        elif f"{provider}/{model}" not in unpriced:
            unpriced.append(f"{provider}/{model}")
    warnings = []
    if unpriced:
        warnings.append(
            f"no price for {', '.join(unpriced)}: their cost is unknown (cost_usd null, not counted in "
            "gateway_cost_usd_total or budgets); give one under providers.<name>.prices"
        )
    return MappingProxyType(prices), warnings
