"""Reading a Prometheus text exposition back into sample values, for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes | str) -> Samples:
    """Every sample of the exposition, keyed by (sample name, label set)."""
    text = body.decode() if isinstance(body, bytes) else body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels, or None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def label_sets(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of every sample called `name`."""
    return [dict(labels) for sample_name, labels in samples if sample_name == name]
