"""Request signing for upstreams that authenticate by signature (AWS SigV4), via botocore.

Signing is transport: it sees the final URL, headers and body bytes, never the rules.
botocore is the optional `aws` extra; a provider that needs it fails at load time without it.
Credentials are static keys from the config, or botocore's credential chain (`CredentialChain`:
resolved off the event loop, refreshed ahead of expiry); either way signing itself never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.model import AwsCredentials
from gateway.upstream.aws_credentials import CredentialChain, FrozenCredentials


class SigV4Signer:
    __slots__ = (
        "_auth",
        "_auth_class",
        "_chain",
        "_credentials_class",
        "_region",
        "_request_class",
        "_service",
        "_signed_with",
    )

    def __init__(
        self,
        service: str,
        region: str,
        credentials: AwsCredentials | None = None,
        chain: CredentialChain | None = None,
    ) -> None:
        """Static `credentials` (with an access key), or `chain`."""
        try:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
        except ImportError as exc:
            raise RuntimeError("SigV4 signing needs botocore: pip install 'llm-gateway[aws]'") from exc
        self._service = service
        self._region = region
        self._auth_class: Any = SigV4Auth
        self._credentials_class: Any = Credentials
        self._request_class: Any = AWSRequest
        self._chain = chain
        self._signed_with: FrozenCredentials | None = None
        self._auth: Any = None
        if credentials is not None and credentials.access_key_id:
            static = Credentials(
                credentials.access_key_id, credentials.secret_access_key, credentials.session_token
            )
            self._auth = SigV4Auth(static, service, region)
        elif chain is None:
            raise ValueError("SigV4Signer needs static credentials or a credential chain")

    async def sign(self, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers to send: `headers` plus X-Amz-Date, the security token and Authorization.
        CredentialsUnavailable when the chain has none."""
        if self._chain is not None:
            current = await self._chain.get()
            if current is not self._signed_with:
                credentials = self._credentials_class(current.access_key, current.secret_key, current.token)
                self._auth = self._auth_class(credentials, self._service, self._region)
                self._signed_with = current
        request = self._request_class(method="POST", url=url, data=body, headers=dict(headers))
        self._auth.add_auth(request)
        return dict(request.headers.items())
