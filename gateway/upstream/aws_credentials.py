"""AWS credentials from botocore's standard chain, for SigV4 signing without static keys.

The chain (environment variables, the shared config and credentials files and their `profile`, web
identity / IRSA, SSO, container credentials (ECS, EKS pod identity) and the instance role) may do
blocking I/O: read files, call STS, the container endpoint or IMDS. None of that runs on the event
loop: credentials are resolved in a thread (`asyncio.to_thread`), one resolution at a time per chain.

- Resolution is lazy: building the registry (load, SIGHUP) does no I/O; the first request that needs
  credentials waits for them.
- Credentials that expire (roles, web identity) are refreshed ahead of time in the background, from
  `REFRESH_AHEAD_S` before their expiry (botocore's own advisory window); requests keep signing with
  the current ones meanwhile. A request waits only when nothing valid is left (`MUST_REFRESH_S`
  before expiry).
- A failure (no credentials anywhere, a refresh refused) is logged as a warning and answered at once
  for `RETRY_AFTER_S`: the chain is asked again after that, not by every request.
- Signing uses a frozen copy (`FrozenCredentials`) and never blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

log = structlog.get_logger("gateway.upstream")

REFRESH_AHEAD_S = 15 * 60.0  # refresh in the background from this long before expiry
MUST_REFRESH_S = 60.0  # closer to expiry than this, a request waits for fresh credentials
RETRY_AFTER_S = 30.0  # after a failure, the chain is asked again no sooner than this


class CredentialsUnavailable(Exception):
    """No usable AWS credentials; the message names no secret."""


@dataclass(frozen=True, slots=True)
class FrozenCredentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expiry: float | None = None  # Unix time; None: they do not expire


class CredentialSource(Protocol):
    """What botocore's `get_credentials()` returns: `Credentials` or `RefreshableCredentials`."""

    def get_frozen_credentials(self) -> Any: ...


def botocore_chain(profile: str | None) -> Callable[[], CredentialSource | None]:
    """The loader of botocore's default chain for `profile` (None: the default profile); blocking."""

    def load() -> CredentialSource | None:
        import botocore.session

        credentials: CredentialSource | None = botocore.session.Session(profile=profile).get_credentials()
        return credentials

    return load


class CredentialChain:
    """One provider's credentials from the chain, current and refreshed ahead of expiry."""

    def __init__(
        self,
        provider: str,
        load: Callable[[], CredentialSource | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self._load = load
        self._clock = clock
        self._source: CredentialSource | None = None
        self._current: FrozenCredentials | None = None
        self._refreshing: asyncio.Task[FrozenCredentials] | None = None
        self._next_refresh = 0.0  # no background refresh before this (after one that changed nothing)
        self._failure: CredentialsUnavailable | None = None
        self._failed_until = 0.0

    async def get(self) -> FrozenCredentials:
        """Credentials to sign with now; CredentialsUnavailable when there are none."""
        now = self._clock()
        current = self._current
        if current is not None and (current.expiry is None or current.expiry - now > MUST_REFRESH_S):
            if (
                current.expiry is not None
                and current.expiry - now < REFRESH_AHEAD_S
                and now >= self._next_refresh
            ):
                self._refresh()  # in the background; this request signs with the current ones
            return current
        if self._failure is not None and now < self._failed_until:
            raise self._failure
        return await asyncio.shield(self._refresh())

    def _refresh(self) -> asyncio.Task[FrozenCredentials]:
        """The resolution under way, or a new one."""
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.get_running_loop().create_task(self._resolve())
            task.add_done_callback(self._resolved)
        return task

    async def _resolve(self) -> FrozenCredentials:
        try:
            fresh = await asyncio.to_thread(self._resolve_blocking)
        except CredentialsUnavailable as exc:
            now = self._clock()
            self._failure, self._failed_until = exc, now + RETRY_AFTER_S
            self._next_refresh = now + RETRY_AFTER_S
            raise
        if fresh == self._current:  # botocore did not think a refresh due yet: ask again later
            self._next_refresh = self._clock() + RETRY_AFTER_S
        self._current = fresh
        self._failure = None
        return fresh

    def _resolved(self, task: asyncio.Task[FrozenCredentials]) -> None:
        self._refreshing = None
        if not task.cancelled():
            task.exception()  # a background refresh's failure is logged, not left unretrieved

    def _resolve_blocking(self) -> FrozenCredentials:
        """In a thread: the chain (first time), then the current, possibly refreshed, credentials."""
        try:
            if self._source is None:
                self._source = self._load()
                if self._source is None:
                    raise LookupError(
                        "none in the environment, the shared files, web identity, container or instance role"
                    )
            frozen = self._source.get_frozen_credentials()
        except Exception as exc:
            log.warning(
                "aws_credentials_unavailable", provider=self.provider, detail=f"{type(exc).__name__}: {exc}"
            )
            raise CredentialsUnavailable(
                "no AWS credentials could be found or refreshed (see the gateway log)"
            ) from None
        expiry = getattr(self._source, "_expiry_time", None)  # RefreshableCredentials: a datetime
        return FrozenCredentials(
            frozen.access_key,
            frozen.secret_key,
            frozen.token or None,
            expiry.timestamp() if expiry is not None else None,
        )
