"""deploy/grafana/llm-gateway.json: every PromQL expression parses, and every metric it queries is in
the gateway's /metrics, with every label the expression names (matchers and groupings)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.observability.keys import METRICS
from gateway.reload import RegistryHolder
from tests.deploy.support import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "llm-gateway.json"
# Grafana's variables, as the test reads them (what Grafana puts there is a duration or a regex)
VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$alias": ".*", "$key": ".*"}
# queries of metrics that another piece of work adds and that are not served yet: none today
PENDING: set[str] = set()


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(metric, label): the metric and the label
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()  # type: ignore[union-attr]
            yield f"${variable['name']}", f"group by ({label}) ({metric})"


def with_values(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"an unknown variable in {expr}"
    return expr


def queried(expr: str) -> tuple[set[str], set[str]]:
    """The metric names an expression selects, and every label it names."""
    metrics: set[str] = set()
    labels: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            metrics.add(str(node.name))
            labels.update(m.name for m in node.matchers.matchers)
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.update(node.modifier.labels)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return metrics, labels


async def served_metrics() -> dict[str, set[str]]:
    """Every series name the running gateway exposes -> its label names (histograms' `le` included)."""
    text = (
        "providers: {mock: {dialect: mock, transport: mock}}\nmodels: {mock: [{provider: mock, model: m}]}\n"
    )
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry))
    async with TestClient(TestServer(app)) as client:  # (started: the pool's gauges exist)
        exposition = await (await client.get("/metrics")).text()
        families = set(re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE))
        served: dict[str, set[str]] = {}
        collectors = app[METRICS].registry._collector_to_names  # prometheus_client's own map
        for collector, names in collectors.items():
            labels = set(getattr(collector, "_labelnames", ()))
            for name in names:
                served[name] = labels | {"le"} if name.endswith("_bucket") else labels
    return {name: labels for name, labels in served.items() if _family(name) in families}


def _family(name: str) -> str:
    """The `# TYPE` name a series is listed under (a histogram's or a counter's own name)."""
    base = re.sub(r"_(bucket|sum|count|created)$", "", name)
    return base if base.endswith("_total") or not name.endswith("_created") else base + "_total"


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load()
    assert dashboard["uid"] == "llm-gateway" and dashboard["schemaVersion"] >= 36
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"]


def test_it_shows_what_the_issue_asks_for() -> None:
    titles = " ".join(panel["title"] for panel in load()["panels"]).lower()
    for topic in (
        "requests per second",
        "error",
        "latency",
        "first byte",
        "tokens",
        "cost",
        "budget",
        "cache",
    ):
        assert topic in titles


async def test_every_query_parses_and_names_only_what_the_gateway_serves() -> None:
    served = await served_metrics()
    checked = 0
    for title, expr in panel_queries(load()):
        metrics, labels = queried(with_values(expr))
        assert metrics, f"{title}: {expr} selects no metric"
        missing = {name for name in metrics - served.keys() if name not in PENDING}
        assert not missing, f"{title}: {sorted(missing)} not in /metrics"
        known = set().union(*(served.get(name, set()) for name in metrics))
        assert labels <= known, f"{title}: labels {sorted(labels - known)} on none of {sorted(metrics)}"
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    ("expr", "metrics", "labels"),
    [
        ('sum by (le) (rate(x_bucket{a="1"}[5m])) / sum(y{b!=""})', {"x_bucket", "y"}, {"le", "a", "b"}),
        ("count by (digest) (z == 1)", {"z"}, {"digest"}),
    ],
)
def test_the_check_reads_selectors_and_groupings(expr: str, metrics: set[str], labels: set[str]) -> None:
    assert queried(expr) == (metrics, labels)
