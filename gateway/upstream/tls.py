"""TLS contexts for upstream connections, built when the config is loaded, never per request.

Building a context reads the trust store (tens of milliseconds for the system one): the shared
default is built once per process, at startup, and every provider without `tls:` settings uses it.
A provider's own context (`ca_file`, a client certificate, `verify: false`) is built with the
registry, on load and on every reload, so a bad file is a config problem listed with its path.
"""

from __future__ import annotations

import functools
import ssl

from gateway.config.model import TlsSettings

DEFAULT_TLS = TlsSettings()


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The system trust store, SNI and hostname checking; one per process."""
    return ssl.create_default_context()


class TlsProblem(ValueError):
    """A provider's TLS settings cannot be used; the message names the setting and the file."""


def ssl_context_for(settings: TlsSettings, where: str) -> ssl.SSLContext | None:
    """A provider's own context; None when its settings are the defaults (the shared context then).
    `where` is the provider's config path (`providers.x`)."""
    if settings == DEFAULT_TLS:
        return None
    for setting, path in (
        ("ca_file", settings.ca_file),
        ("cert_file", settings.cert_file),
        ("key_file", settings.key_file),
    ):
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise TlsProblem(
                    f"{where}.tls.{setting}: cannot read {path}: {exc.strerror or exc}"
                ) from None
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            raise TlsProblem(
                f"{where}.tls.ca_file: {settings.ca_file} holds no usable PEM certificate ({_reason(exc)})"
            ) from None
    if settings.cert_file is not None:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except (ssl.SSLError, ValueError) as exc:
            files = settings.cert_file + ("" if settings.key_file is None else f" and {settings.key_file}")
            what = f"not a PEM certificate and its private key ({_reason(exc)})"
            raise TlsProblem(f"{where}.tls.cert_file: {files}: {what}") from None
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


def tls_warning(settings: TlsSettings, where: str) -> str | None:
    """The config warning for settings that turn checking off."""
    if settings.verify:
        return None
    return f"{where}.tls.verify is false: the upstream's certificate and host name are not checked"
