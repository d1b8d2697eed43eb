"""Typed keys for what the aiohttp application and each request carry."""

from __future__ import annotations

import random

from aiohttp import web

from gateway.auth.rate_limiter import RateLimiter
from gateway.engine.protocol import ClientProtocol
from gateway.proxy.request_record import RequestRecord
from gateway.proxy.request_validation import RequestValidator
from gateway.reload import RegistryHolder
from gateway.responses_store.stored import ResponseStore
from gateway.routing.cooldown import Cooldowns
from gateway.upstream.transport import Transport

REGISTRY = web.AppKey("registry", RegistryHolder)
VALIDATOR = web.AppKey("validator", RequestValidator)
TRANSPORTS = web.AppKey("transports", dict[str, Transport])
COOLDOWNS = web.AppKey("cooldowns", Cooldowns)  # outlives reloads: keyed by (provider, model) names
LIMITS = web.AppKey("limits", RateLimiter)  # rate-limit counters (this process, or Redis), and their failures
RNG = web.AppKey("rng", random.Random)  # weighted choice and backoff jitter (seedable in tests)
RESPONSES = web.AppKey("responses", ResponseStore)  # stored responses (absent: `responses.store: none`)

# request-scoped: what the request carries between layers, and its access event's fields
ACCESS = web.RequestKey("access", RequestRecord)
# the protocol the client speaks (errors are written in its envelope); absent: OpenAI's
CLIENT_PROTOCOL = web.RequestKey("client_protocol", ClientProtocol)
