"""Typed keys for what the aiohttp application and each request carry."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from gateway.auth.rate_limiter import RateLimiter
from gateway.proxy.request_validation import RequestValidator
from gateway.reload import RegistryHolder
from gateway.routing.cooldown import Cooldowns
from gateway.upstream.transport import Transport

REGISTRY = web.AppKey("registry", RegistryHolder)
VALIDATOR = web.AppKey("validator", RequestValidator)
TRANSPORTS = web.AppKey("transports", dict[str, Transport])
COOLDOWNS = web.AppKey("cooldowns", Cooldowns)  # outlives reloads: keyed by (provider, model) names
LIMITS = web.AppKey("limits", RateLimiter)  # rate-limit counters (this process, or Redis), and their failures
RNG = web.AppKey("rng", random.Random)  # weighted choice and backoff jitter (seedable in tests)

# request-scoped: fields for the access-log event, filled in as the request is handled
AccessFields = dict[str, Any]
ACCESS = web.RequestKey("access", AccessFields)
