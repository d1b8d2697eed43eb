"""Per-provider TLS: a CA bundle instead of the system store, a client certificate (mutual TLS),
`verify: false`; the files read when the config is loaded, a bad one reported with its setting and path;
one shared default context for everyone else."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme

from gateway.config.model import TlsSettings
from gateway.upstream.egress import Egress
from gateway.upstream.pool import ConnectError, ConnectionPool
from gateway.upstream.tls import TlsProblem, default_ssl_context, ssl_context_for, tls_warning
from tests.upstream.raw_server import RawServer, read_request, response


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await read_request(reader):
        writer.write(response(200, b"{}"))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(tmp_path: Path, ca: trustme.CA) -> dict[str, str]:
    """PEM files: the CA, a client certificate and its key (issued by the same CA)."""
    client = ca.issue_cert("gateway.client")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "client.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    client.private_key_pem.write_to_path(str(paths["key"]))
    return {name: str(path) for name, path in paths.items()}


def server_context(ca: trustme.CA, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


async def connects(context: ssl.SSLContext | None, server: RawServer) -> bool:
    pool = ConnectionPool()
    try:
        conn = await pool.acquire(pool.target(server.url("/", host="localhost"), Egress(context)), 5.0)
        conn.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", b"", 5, 5, 10)
        await conn.response_started()  # a refused client certificate shows here (TLS 1.3)
        return conn.status == 200
    except (ConnectError, ConnectionError):
        return False
    finally:
        await pool.close()


def test_default_settings_use_the_shared_context_built_once() -> None:
    assert ssl_context_for(TlsSettings(), "providers.x") is None
    assert default_ssl_context() is default_ssl_context()


async def test_ca_file_trusts_a_private_ca(ca: trustme.CA, files: dict[str, str]) -> None:
    async with RawServer(answer, ssl_context=server_context(ca)) as server:
        assert not await connects(None, server)  # the system store does not know this CA
        assert await connects(ssl_context_for(TlsSettings(ca_file=files["ca"]), "providers.x"), server)


async def test_client_certificate_for_mutual_tls(ca: trustme.CA, files: dict[str, str]) -> None:
    async with RawServer(answer, ssl_context=server_context(ca, require_client_cert=True)) as server:
        without = ssl_context_for(TlsSettings(ca_file=files["ca"]), "providers.x")
        assert not await connects(without, server)
        settings = TlsSettings(ca_file=files["ca"], cert_file=files["cert"], key_file=files["key"])
        assert await connects(ssl_context_for(settings, "providers.x"), server)


async def test_verify_false_accepts_any_certificate_and_is_warned_about(ca: trustme.CA) -> None:
    settings = TlsSettings(verify=False)
    async with RawServer(answer, ssl_context=server_context(ca)) as server:
        assert await connects(ssl_context_for(settings, "providers.x"), server)
    assert tls_warning(settings, "providers.x") == (
        "providers.x.tls.verify is false: the upstream's certificate and host name are not checked"
    )
    assert tls_warning(TlsSettings(), "providers.x") is None


def test_bad_files_are_problems_naming_the_setting_and_the_path(
    tmp_path: Path, files: dict[str, str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "missing.pem")
    cases = {
        TlsSettings(ca_file=missing): f"providers.x.tls.ca_file: cannot read {missing}: No such file",
        TlsSettings(ca_file=str(junk)): f"providers.x.tls.ca_file: {junk} holds no usable PEM certificate",
        TlsSettings(cert_file=files["cert"], key_file=missing): (
            f"providers.x.tls.key_file: cannot read {missing}"
        ),
        TlsSettings(cert_file=str(junk)): f"providers.x.tls.cert_file: {junk}: not a PEM certificate",
        TlsSettings(cert_file=files["cert"], key_file=files["ca"]): (
            f"providers.x.tls.cert_file: {files['cert']} and {files['ca']}: not a PEM certificate"
        ),
    }
    for settings, message in cases.items():
        with pytest.raises(TlsProblem) as caught:
            ssl_context_for(settings, "providers.x")
        assert str(caught.value).startswith(message), (settings, str(caught.value))
