"""Opening upstream connections: through an HTTP proxy (CONNECT + TLS inside, absolute form for plain
HTTP, Basic credentials, 407 and refusals as clean 502s naming the proxy, an https:// proxy), happy
eyeballs past an address that does not answer, and the same on uvloop."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
import uvloop

from gateway.config.model import Timeouts, UpstreamSettings
from gateway.upstream.dialer import ConnectError, Dialer, ProxyError
from gateway.upstream.egress import DIRECT, Egress, parse_proxy_url
from gateway.upstream.pool import ConnectionPool
from gateway.upstream.resolver import AddrInfo, Resolver
from gateway.upstream.transport import HttpTransport, UpstreamFailure
from tests.upstream.proxy_server import ConnectProxy
from tests.upstream.raw_server import RawServer, read_request, response

SECRET = "pr0xy-s3cret"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, name: str = "localhost") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class Recording:
    """An upstream that answers every request with 200 and keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            self.requests.append(request)
            writer.write(response(200, b'{"ok":1}'))


def target_through(egress: Egress) -> Any:
    provider = SimpleNamespace(
        name="up",
        signer=None,
        headers={"Authorization": "Bearer k"},
        egress=egress,
        upstream=UpstreamSettings(),
    )
    return SimpleNamespace(provider=provider, timeouts=Timeouts(connect=5, first_byte=5, idle=5, total=10))


async def post(pool: ConnectionPool, egress: Egress, url: str) -> bytes:
    async with HttpTransport(pool).open(target_through(egress), url, b"{}") as reply:
        assert reply.status == 200
        return await reply.read()


def basic(user: str, password: str) -> bytes:
    return b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode())


async def test_https_upstream_through_a_connect_tunnel_with_credentials(ca: trustme.CA) -> None:
    upstream = Recording()
    async with (
        RawServer(upstream, ssl_context=server_tls(ca)) as server,
        ConnectProxy(credentials=("corp", SECRET)) as proxy,
    ):
        pool = ConnectionPool(dialer=Dialer(ssl_context=client_tls(ca)))
        egress = Egress(proxy=parse_proxy_url(proxy.url(f"corp:{SECRET}")))
        url = server.url("/v1/x", host="localhost")
        assert await post(pool, egress, url) == b'{"ok":1}'
        assert await post(pool, egress, url) == b'{"ok":1}'  # the tunnel is pooled and reused
        await pool.close()
    assert len(proxy.heads) == 1
    connect = proxy.heads[0]
    assert connect.startswith(f"CONNECT localhost:{server.port} HTTP/1.1\r\n".encode())
    assert basic("corp", SECRET) in connect
    # inside the tunnel: an origin-form request, and the proxy's credentials are not sent on
    assert upstream.requests[0].startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in upstream.requests[0]


async def test_the_upstream_certificate_is_checked_inside_the_tunnel(ca: trustme.CA) -> None:
    async with RawServer(Recording(), ssl_context=server_tls(ca)) as server, ConnectProxy() as proxy:
        pool = ConnectionPool(dialer=Dialer(ssl_context=client_tls(ca)))
        egress = Egress(proxy=parse_proxy_url(proxy.url()))
        with pytest.raises(UpstreamFailure) as failure:  # the certificate is for localhost
            await post(pool, egress, server.url("/v1/x", host="127.0.0.1"))
        assert (failure.value.status, failure.value.code) == (502, "upstream_unreachable")
        await pool.close()


async def test_plain_http_upstream_through_a_proxy_is_sent_in_absolute_form() -> None:
    upstream = Recording()
    async with RawServer(upstream) as server, ConnectProxy(credentials=("corp", SECRET)) as proxy:
        pool = ConnectionPool()
        egress = Egress(proxy=parse_proxy_url(proxy.url(f"corp:{SECRET}")))
        assert await post(pool, egress, server.url("/v1/x?a=1")) == b'{"ok":1}'
        await pool.close()
    head = proxy.heads[0]
    assert head.startswith(f"POST http://127.0.0.1:{server.port}/v1/x?a=1 HTTP/1.1\r\n".encode())
    assert basic("corp", SECRET) in head


REFUSALS = {
    "no-credentials": (("corp", SECRET), "", "wants credentials (407 Proxy Authentication Required)"),
    "wrong-credentials": (("corp", SECRET), "corp:wrong-pass", "refused the credentials in its URL (407"),
    "forbidden": (None, "", "refused the tunnel to localhost:"),
}


@pytest.mark.parametrize(("required", "userinfo", "reason"), REFUSALS.values(), ids=REFUSALS)
async def test_a_proxy_refusal_is_a_clean_502_naming_the_proxy_not_its_credentials(
    ca: trustme.CA, required: tuple[str, str] | None, userinfo: str, reason: str
) -> None:
    refuse = 403 if required is None else None
    async with (
        RawServer(Recording(), ssl_context=server_tls(ca)) as server,
        ConnectProxy(credentials=required, refuse=refuse) as proxy,
    ):
        pool = ConnectionPool(dialer=Dialer(ssl_context=client_tls(ca)))
        egress = Egress(proxy=parse_proxy_url(proxy.url(userinfo)))
        with pytest.raises(UpstreamFailure) as failure:
            await post(pool, egress, server.url("/v1/x", host="localhost"))
        await pool.close()
    message = failure.value.message
    assert (failure.value.status, failure.value.code, failure.value.kind) == (
        502,
        "upstream_unreachable",
        "connect",
    )
    assert f"proxy 127.0.0.1:{proxy.port}" in message and reason in message
    assert "wrong-pass" not in message and SECRET not in message


async def test_an_unreachable_proxy_is_a_502_naming_it() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    pool = ConnectionPool()
    egress = Egress(proxy=parse_proxy_url(f"http://corp:{SECRET}@127.0.0.1:{port}"))
    with pytest.raises(UpstreamFailure) as failure:
        await post(pool, egress, "https://api.example.com/v1/x")
    assert failure.value.code == "upstream_unreachable"
    assert f"is unreachable: proxy 127.0.0.1:{port} cannot be reached (" in failure.value.message
    assert SECRET not in failure.value.message
    await pool.close()


async def test_an_https_proxy_is_reached_over_tls_and_tunnels_tls(ca: trustme.CA) -> None:
    upstream = Recording()
    async with (
        RawServer(upstream, ssl_context=server_tls(ca)) as server,
        ConnectProxy(ssl_context=server_tls(ca, "127.0.0.1")) as proxy,
    ):
        tls = client_tls(ca)  # the provider's context checks the proxy too
        pool = ConnectionPool()
        egress = Egress(ssl_context=tls, proxy=parse_proxy_url(proxy.url()))
        assert await post(pool, egress, server.url("/v1/x", host="localhost")) == b'{"ok":1}'
        await pool.close()
    assert proxy.heads[0].startswith(b"CONNECT localhost:")


class FixedResolver(Resolver):
    """Answers every name with the given addresses, in order."""

    def __init__(self, infos: list[AddrInfo]) -> None:
        super().__init__()
        self.infos = infos

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        return self.infos


@pytest.fixture
def stalled_address() -> Iterator[tuple[str, int]]:
    """An address whose connects hang: a listener whose one-place accept queue is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    try:
        yield listener.getsockname()
    finally:
        filler.close()
        listener.close()


async def test_happy_eyeballs_moves_on_from_an_address_that_does_not_answer(
    stalled_address: tuple[str, int],
) -> None:
    async with RawServer(Recording()) as server:
        infos: list[AddrInfo] = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", stalled_address),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]
        pool = ConnectionPool(dialer=Dialer(FixedResolver(infos)))
        started = time.monotonic()
        assert await post(pool, DIRECT, f"http://api.test:{server.port}/v1/x") == b'{"ok":1}'
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.5, f"connected after {elapsed:.2f} s (the next address is tried at 0.25 s)"
        await pool.close()


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    class Nxdomain(Resolver):
        async def resolve(self, host: str, port: int) -> list[AddrInfo]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ConnectError, match=r"cannot resolve nothing\.invalid: .*not known"):
        await Dialer(Nxdomain()).open("http", "nothing.invalid", 80, DIRECT, asyncio.Protocol)


def run_on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())  # type: ignore[arg-type]


def test_tls_direct_through_a_tunnel_and_through_an_https_proxy_on_uvloop(ca: trustme.CA) -> None:
    async def scenario() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        upstream = Recording()
        async with (
            RawServer(upstream, ssl_context=server_tls(ca)) as server,
            ConnectProxy(credentials=("corp", SECRET)) as proxy,
            ConnectProxy(ssl_context=server_tls(ca, "127.0.0.1")) as tls_proxy,
        ):
            tls = client_tls(ca)
            pool = ConnectionPool(dialer=Dialer(ssl_context=tls))
            url = server.url("/v1/x", host="localhost")
            assert await post(pool, DIRECT, url) == b'{"ok":1}'  # direct TLS
            tunnelled = Egress(proxy=parse_proxy_url(proxy.url(f"corp:{SECRET}")))
            assert await post(pool, tunnelled, url) == b'{"ok":1}'  # CONNECT, then TLS inside
            inside_tls = Egress(ssl_context=tls, proxy=parse_proxy_url(tls_proxy.url()))
            assert await post(pool, inside_tls, url) == b'{"ok":1}'  # TLS inside TLS
            await pool.close()
        assert len(upstream.requests) == 3 and len(proxy.heads) == len(tls_proxy.heads) == 1

    run_on_uvloop(scenario)


def test_proxy_errors_carry_the_proxy_name_only() -> None:
    error = ProxyError(parse_proxy_url(f"http://corp:{SECRET}@proxy.corp:3128"), "wants credentials")
    assert (error.proxy, str(error)) == ("proxy.corp:3128", "proxy proxy.corp:3128: wants credentials")
