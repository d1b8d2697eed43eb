"""A model alias's route: a tree of fallback chains and weighted pools over (provider, model) targets.

`order()` flattens it into the sequence to try for one request: a fallback node tries its children
in order; a load-balance node tries all its children, in a weighted random order (so the first pick
follows the weights and the others remain as fallbacks).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

Strategy = Literal["fallback", "loadbalance"]


@dataclass(frozen=True, slots=True)
class RouteNode(Generic[T]):
    strategy: Strategy
    children: tuple[RouteNode[T], ...] = ()
    target: T | None = None
    weight: float = 1.0

    @classmethod
    def leaf(cls, target: T, weight: float = 1.0) -> RouteNode[T]:
        return cls("fallback", (), target, weight)

    def order(self, rng: random.Random) -> Iterator[T]:
        if self.target is not None:
            yield self.target
            return
        children = self.children if self.strategy == "fallback" else _weighted_shuffle(self.children, rng)
        for child in children:
            yield from child.order(rng)

    def targets(self) -> Iterator[T]:
        """Every target once, in declaration order."""
        if self.target is not None:
            yield self.target
        for child in self.children:
            yield from child.targets()


def _weighted_shuffle(nodes: tuple[RouteNode[T], ...], rng: random.Random) -> list[RouteNode[T]]:
    """Efraimidis-Spirakis: sort by u ** (1 / weight); the first element follows the weights."""
    if len(nodes) == 1:
        return list(nodes)
    keyed = [(rng.random() ** (1.0 / node.weight), i) for i, node in enumerate(nodes) if node.weight > 0]
    keyed.sort(reverse=True)
    return [nodes[i] for _, i in keyed]
