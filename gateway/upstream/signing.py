"""Request signing for upstreams that authenticate by signature (AWS SigV4), via botocore.

Signing is transport: it sees the final URL, headers and body bytes, never the rules.
botocore is the optional `aws` extra; a provider that needs it fails at load time without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.model import AwsCredentials


class SigV4Signer:
    __slots__ = ("_auth", "_request_class")

    def __init__(self, service: str, region: str, credentials: AwsCredentials) -> None:
        try:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
        except ImportError as exc:
            raise RuntimeError("SigV4 signing needs botocore: pip install 'llm-gateway[aws]'") from exc
        botocore_credentials = Credentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        )
        self._auth: Any = SigV4Auth(botocore_credentials, service, region)
        self._request_class: Any = AWSRequest

    def sign(self, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers to send: `headers` plus X-Amz-Date, the security token and Authorization."""
        request = self._request_class(method="POST", url=url, data=body, headers=dict(headers))
        self._auth.add_auth(request)
        return dict(request.headers.items())
