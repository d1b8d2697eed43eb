"""Compile once, swap atomically: the current registry, and building its replacement on SIGHUP."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import structlog

from gateway.config.loader import load_config
from gateway.config.problems import ConfigError
from gateway.engine.registry import Registry, build_registry

log = structlog.get_logger("gateway.config")


def load_registry(path: str, environ: Mapping[str, str] | None = None) -> Registry:
    """Load, validate and compile `path`; ConfigError lists every problem found."""
    config = load_config(path, os.environ if environ is None else environ)
    return build_registry(config)


class RegistryHolder:
    """Holds the one current registry. Requests read `current` once and keep what they got."""

    def __init__(self, path: str, registry: Registry) -> None:
        self.path = path
        self.current = registry
        self.listeners: list[Callable[[bool], None]] = []  # told of every reload: succeeded or not

    def _tell(self, ok: bool) -> None:
        for listener in self.listeners:
            listener(ok)

    @classmethod
    def load(cls, path: str) -> RegistryHolder:
        return cls(path, load_registry(path))

    def reload(self) -> bool:
        """Build a whole new registry; swap it in only if every step succeeded."""
        try:
            registry = load_registry(self.path)
        except ConfigError as exc:
            log.error("config_reload_failed", path=self.path, problems=exc.problems)
            self._tell(False)
            return False
        except Exception as exc:  # never let a reload take the process down
            log.exception("config_reload_failed", path=self.path, problems=[repr(exc)])
            self._tell(False)
            return False
        self.current = registry
        self._tell(True)
        for warning in registry.config.warnings:
            log.warning("config_warning", detail=warning)
        log.info(
            "config_reloaded",
            path=self.path,
            digest=registry.config.digest,
            models=sorted(registry.routes),
            unavailable=sorted(registry.unavailable),
        )
        return True
