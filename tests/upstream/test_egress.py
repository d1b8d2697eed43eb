"""Which proxy a provider's connections take: its own `proxy`, or HTTPS_PROXY / HTTP_PROXY / NO_PROXY
read once from the environment (Go's rules: loopback never proxied), and proxy URLs' credentials."""

from __future__ import annotations

import pytest

from gateway.upstream.egress import ProxyEndpoint, bypasses_proxy, parse_proxy_url, proxy_for

CORP = ProxyEndpoint("http", "proxy.corp", 3128)
PLAIN = ProxyEndpoint("http", "plain.corp", 8080)
ENV = {"HTTPS_PROXY": "http://proxy.corp:3128", "HTTP_PROXY": "plain.corp:8080"}

# (base_url, the provider's `proxy`, environment, trust_env) -> the proxy used
CASES = {
    "https-from-HTTPS_PROXY": ("https://api.example.com/v1", None, ENV, True, CORP),
    "http-from-HTTP_PROXY-without-scheme": ("http://api.example.com/v1", None, ENV, True, PLAIN),
    "lower-case-names": (
        "https://api.example.com",
        None,
        {"https_proxy": "http://proxy.corp:3128"},
        True,
        CORP,
    ),
    "upper-case-wins": (
        "https://api.example.com",
        None,
        {"HTTPS_PROXY": "http://proxy.corp:3128", "https_proxy": "http://other:1"},
        True,
        CORP,
    ),
    "no-variable": ("https://api.example.com", None, {"HTTP_PROXY": "http://plain.corp:8080"}, True, None),
    "trust_env-false": ("https://api.example.com", None, ENV, False, None),
    "provider-says-direct": ("https://api.example.com", False, ENV, True, None),
    "provider-proxy-wins": ("https://api.example.com", "http://plain.corp:8080", ENV, True, PLAIN),
    "provider-proxy-even-for-loopback": ("http://127.0.0.1:9", "http://plain.corp:8080", {}, True, PLAIN),
    "loopback-name-never": ("http://localhost:8000", None, ENV, True, None),
    "loopback-v4-never": ("http://127.0.0.2:8000", None, ENV, True, None),
    "loopback-v6-never": ("http://[::1]:8000", None, ENV, True, None),
    "NO_PROXY-domain": ("https://api.example.com", None, {**ENV, "NO_PROXY": "example.com"}, True, None),
    "NO_PROXY-other-domain": ("https://api.example.com", None, {**ENV, "NO_PROXY": "ample.com"}, True, CORP),
    "no_proxy-lower-case": ("https://api.example.com", None, {**ENV, "no_proxy": "example.com"}, True, None),
    "NO_PROXY-star": ("https://api.example.com", None, {**ENV, "NO_PROXY": "*"}, True, None),
}


@pytest.mark.parametrize(
    ("base_url", "setting", "environ", "trust_env", "expected"), CASES.values(), ids=CASES
)
def test_proxy_for(
    base_url: str,
    setting: str | None,
    environ: dict[str, str],
    trust_env: bool,
    expected: ProxyEndpoint | None,
) -> None:
    assert proxy_for(base_url, setting, environ, trust_env) == expected


# NO_PROXY entry, host, port -> whether the host is reached directly
NO_PROXY = {
    "domain-itself": ("example.com", "example.com", 443, True),
    "domain-subdomain": ("example.com", "api.example.com", 443, True),
    "domain-not-a-suffix-match": ("example.com", "badexample.com", 443, False),
    "leading-dot-subdomains-only": (".example.com", "example.com", 443, False),
    "leading-dot-subdomain": (".example.com", "api.example.com", 443, True),
    "star-dot": ("*.example.com", "api.example.com", 443, True),
    "host-port-match": ("api.example.com:8443", "api.example.com", 8443, True),
    "host-port-other-port": ("api.example.com:8443", "api.example.com", 443, False),
    "ip": ("10.1.2.3", "10.1.2.3", 443, True),
    "cidr": ("10.0.0.0/8", "10.1.2.3", 443, True),
    "cidr-outside": ("10.0.0.0/8", "11.1.2.3", 443, False),
    "v6-cidr": ("fd00::/8", "fd00::1", 443, True),
    "v6-with-port": ("[fd00::1]:443", "fd00::1", 443, True),
    "list-with-spaces": ("foo.com, example.com", "api.example.com", 443, True),
    "case-and-trailing-dot": ("Example.COM.", "API.example.com", 443, True),
    "empty": ("", "api.example.com", 443, False),
}


@pytest.mark.parametrize(("entry", "host", "port", "direct"), NO_PROXY.values(), ids=NO_PROXY)
def test_no_proxy(entry: str, host: str, port: int, direct: bool) -> None:
    assert bypasses_proxy(host, port, entry) is direct


def test_proxy_credentials_become_basic_auth_and_never_appear_in_its_name() -> None:
    proxy = parse_proxy_url("http://us%40er:p%3Ass@proxy.corp:3128")
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss")
    assert proxy.label == "proxy.corp:3128" and "p:ss" not in repr(proxy)
    assert parse_proxy_url("https://proxy.corp").port == 443


@pytest.mark.parametrize("url", ["socks5://user:secret@proxy.corp:1080", "http://user:secret@proxy.corp:x"])
def test_unusable_proxy_urls_are_refused_without_repeating_them(url: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|port") as caught:
        parse_proxy_url(url)
    assert "secret" not in str(caught.value)


def test_a_bad_proxy_in_the_environment_is_named_by_its_variable() -> None:
    with pytest.raises(ValueError, match=r"HTTPS_PROXY \(from the environment\): unsupported proxy scheme"):
        proxy_for("https://api.example.com", None, {"HTTPS_PROXY": "socks5://h:1"}, True)
