"""AWS credentials from botocore's chain for SigV4: resolved lazily and off the event loop, refreshed ahead
of expiry in the background, a request waiting only when nothing valid is left; no credentials is a
warning and a clean 502 naming the provider; static keys as before."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from gateway.config.model import AwsCredentials, Timeouts, UpstreamSettings
from gateway.upstream.aws_credentials import (
    REFRESH_AHEAD_S,
    RETRY_AFTER_S,
    CredentialChain,
    CredentialsUnavailable,
    botocore_chain,
)
from gateway.upstream.egress import DIRECT
from gateway.upstream.pool import ConnectionPool
from gateway.upstream.signing import SigV4Signer
from gateway.upstream.transport import HttpTransport, UpstreamFailure

NOW = 1_800_000_000.0


class FakeSource:
    """Stands in for botocore's RefreshableCredentials: hands out `keys`, expiring at `expiry`; while
    `gate` is clear, a refresh blocks (in its thread) until the test opens it."""

    def __init__(self, key: str, expiry: float | None) -> None:
        self.key = key
        self.expiry = expiry
        self.gate = threading.Event()
        self.gate.set()
        self.threads: list[int] = []

    @property
    def _expiry_time(self) -> datetime | None:
        return None if self.expiry is None else datetime.fromtimestamp(self.expiry, UTC)

    def get_frozen_credentials(self) -> Any:
        self.threads.append(threading.get_ident())
        self.gate.wait(5)
        return SimpleNamespace(
            access_key=self.key, secret_key="secret-" + self.key, token="token-" + self.key
        )


def loader(source: FakeSource | None, calls: list[int] | None = None) -> Callable[[], FakeSource | None]:
    def load() -> FakeSource | None:
        if calls is not None:
            calls.append(1)
        return source

    return load


async def test_resolved_lazily_in_a_thread_not_on_the_event_loop() -> None:
    source = FakeSource("AKIA1", expiry=None)
    calls: list[int] = []
    chain = CredentialChain("bedrock", loader(source, calls), clock=lambda: NOW)
    assert calls == []  # building it does nothing
    first = await chain.get()
    assert (first.access_key, first.secret_key, first.token) == ("AKIA1", "secret-AKIA1", "token-AKIA1")
    assert source.threads and threading.get_ident() not in source.threads
    assert await chain.get() is first and calls == [1]  # static: resolved once


async def test_refreshed_in_the_background_ahead_of_expiry() -> None:
    now = [NOW]
    source = FakeSource("OLD", expiry=NOW + 3600)
    chain = CredentialChain("bedrock", loader(source), clock=lambda: now[0])
    assert (await chain.get()).access_key == "OLD"
    now[0] = NOW + 3600 - REFRESH_AHEAD_S + 1  # inside the refresh-ahead window, still valid
    source.key, source.expiry = "NEW", NOW + 7200
    source.gate.clear()  # the refresh hangs in its thread...
    assert (await chain.get()).access_key == "OLD"  # ...and the request does not wait for it
    refreshing = chain._refreshing
    assert refreshing is not None
    source.gate.set()
    await refreshing
    assert (await chain.get()).access_key == "NEW"


async def test_a_request_waits_when_the_credentials_have_expired() -> None:
    now = [NOW]
    source = FakeSource("OLD", expiry=NOW + 3600)
    chain = CredentialChain("bedrock", loader(source), clock=lambda: now[0])
    await chain.get()
    now[0] = NOW + 3600 + 1
    source.key, source.expiry = "NEW", NOW + 7200
    assert (await chain.get()).access_key == "NEW"


async def test_no_credentials_is_a_warning_then_fails_fast_until_retry() -> None:
    now = [NOW]
    calls: list[int] = []
    chain = CredentialChain("bedrock", loader(None, calls), clock=lambda: now[0])
    with structlog.testing.capture_logs() as events, pytest.raises(CredentialsUnavailable):
        await chain.get()
    assert [e["event"] for e in events] == ["aws_credentials_unavailable"]
    assert events[0]["provider"] == "bedrock" and events[0]["log_level"] == "warning"
    with pytest.raises(CredentialsUnavailable):
        await chain.get()
    assert calls == [1]  # answered from the failure, not by asking the chain again
    now[0] += RETRY_AFTER_S
    with pytest.raises(CredentialsUnavailable):
        await chain.get()
    assert calls == [1, 1]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """botocore's chain cut off from this machine: no variables, no files, no instance metadata."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


async def test_botocore_chain_from_environment_variables(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    aws_env.setenv("AWS_SESSION_TOKEN", "env-token")
    found = await CredentialChain("bedrock", botocore_chain(None)).get()
    assert (found.access_key, found.secret_key, found.token) == ("AKIAFROMENV", "env-secret", "env-token")


async def test_botocore_chain_from_a_profile(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[team]\naws_access_key_id = AKIATEAM\naws_secret_access_key = team-secret\n")
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert (await CredentialChain("bedrock", botocore_chain("team")).get()).access_key == "AKIATEAM"


async def test_botocore_chain_with_nothing_configured(aws_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsUnavailable):
        await CredentialChain("bedrock", botocore_chain(None)).get()


def signed_key_id(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("Credential=")[1].split("/")[0]


async def test_the_signer_uses_the_current_credentials_of_the_chain() -> None:
    now = [NOW]
    source = FakeSource("AKIAOLD", expiry=NOW + 3600)
    signer = SigV4Signer("bedrock", "eu-west-3", chain=CredentialChain("b", loader(source), lambda: now[0]))
    first = await signer.sign(
        "https://bedrock.test/model/x/converse", {"Content-Type": "application/json"}, b"{}"
    )
    assert signed_key_id(first) == "AKIAOLD" and first["X-Amz-Security-Token"] == "token-AKIAOLD"
    now[0] = NOW + 4000
    source.key, source.expiry = "AKIANEW", NOW + 8000
    second = await signer.sign("https://bedrock.test/model/x/converse", {}, b"{}")
    assert signed_key_id(second) == "AKIANEW"


async def test_static_keys_sign_without_a_chain() -> None:
    signer = SigV4Signer("bedrock", "us-east-1", AwsCredentials("AKIASTATIC", "static-secret"))
    headers = await signer.sign("https://bedrock.test/x", {}, b"{}")
    assert signed_key_id(headers) == "AKIASTATIC" and "X-Amz-Security-Token" not in headers


async def test_no_credentials_is_a_502_naming_the_provider_and_nothing_is_sent() -> None:
    chain = CredentialChain("bedrock-chain", loader(None))
    provider = SimpleNamespace(
        name="bedrock-chain",
        signer=SigV4Signer("bedrock", "us-east-1", chain=chain),
        headers={},
        egress=DIRECT,
        upstream=UpstreamSettings(),
    )
    target = SimpleNamespace(provider=provider, timeouts=Timeouts())
    pool = ConnectionPool()
    with structlog.testing.capture_logs(), pytest.raises(UpstreamFailure) as failure:
        async with HttpTransport(pool).open(target, "https://bedrock.test/model/x/converse", b"{}"):
            pass
    assert (failure.value.status, failure.value.code) == (502, "upstream_credentials_unavailable")
    assert "'bedrock-chain'" in failure.value.message and "no AWS credentials" in failure.value.message
    assert pool.open_connections == 0
    await pool.close()
