"""A fake AWS Bedrock Runtime that speaks the real wire formats and checks how it was authenticated.

Routes, as bedrock-runtime.{region}.amazonaws.com serves them:
- POST /model/{modelId}/converse: a Converse JSON reply;
- POST /model/{modelId}/converse-stream: ConverseStream as an AWS binary event stream
  (`application/vnd.amazon.eventstream`, frames from tests/support/aws_eventstream.py);
- POST /model/{modelId}/invoke: a Titan text-embeddings reply.
Every reply carries an `x-amzn-RequestId`; errors are `{"message"}` bodies with `x-amzn-ErrorType`.

Authentication is checked on every request before any reply (queued or default) is chosen, and the
verdict is kept in `auth_checks` (in arrival order):
- SigV4: `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
  SignedHeaders=..., Signature=<64 hex>`, `X-Amz-Date` of the same day, `host` and `x-amz-date` signed,
  `X-Amz-Security-Token` present and signed when the key has a session token; then the signature is
  recomputed with botocore from the request as received (raw path, signed headers, body), the way
  AWS does: a path re-encoded after signing (e.g. `%3A` sent as `:`) fails here as it fails there.
- Bearer: `Authorization: Bearer <Bedrock API key>` for a known key.
A request that fails the check gets 403 (InvalidSignatureException / UnrecognizedClientException), as
AWS answers, and is not recorded in `requests` (its verdict is in `auth_checks`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.aws_eventstream import event, exception
from tests.support.fake_upstreams import FakeUpstream, Part, Recorded, Reply, dumps, json_reply

REQUEST_ID = "6d1f9a52-3c1e-4b8a-9f0e-2a7b5c4d3e21"
EVENTSTREAM = "application/vnd.amazon.eventstream"

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


@dataclass(frozen=True)
class AwsKey:
    secret_access_key: str
    session_token: str | None = None


@dataclass
class AuthCheck:
    """How one request authenticated: `scheme` is sigv4, bearer or none; `problems` empty when valid."""

    scheme: str
    raw_path: str
    access_key: str | None = None
    region: str | None = None
    service: str | None = None
    signed_headers: tuple[str, ...] = ()
    bearer: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _verify_sigv4(request: web.Request, raw: bytes, keys: Mapping[str, AwsKey], check: AuthCheck) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = _AUTH.match(request.headers.get("Authorization", ""))
    if match is None:
        check.problems.append("Authorization is not a well-formed AWS4-HMAC-SHA256 header")
        return
    check.access_key, check.region, check.service = match["key"], match["region"], match["service"]
    check.signed_headers = tuple(match["signed"].split(";"))
    amz_date = request.headers.get("X-Amz-Date", "")
    if not _AMZ_DATE.match(amz_date):
        check.problems.append(f"X-Amz-Date missing or malformed: {amz_date!r}")
        return
    if amz_date[:8] != match["date"]:
        check.problems.append("the credential scope's date is not X-Amz-Date's day")
    for required in ("host", "x-amz-date"):
        if required not in check.signed_headers:
            check.problems.append(f"{required} is not signed")
    key = keys.get(match["key"])
    if key is None:
        check.problems.append(f"unknown access key {match['key']!r}")
        return
    token = request.headers.get("X-Amz-Security-Token")
    if key.session_token is not None:
        if token != key.session_token:
            check.problems.append("X-Amz-Security-Token missing or wrong for temporary credentials")
        if "x-amz-security-token" not in check.signed_headers:
            check.problems.append("x-amz-security-token is not signed")
    elif token is not None:
        check.problems.append("X-Amz-Security-Token sent for long-term credentials")
    missing = [name for name in check.signed_headers if name not in request.headers]
    if missing:
        check.problems.append(f"signed headers not sent: {missing}")
        return
    # Recompute over the request as received: the path exactly as it came over the wire.
    url = f"http://{request.headers['Host']}{request.raw_path}"
    signed = {name: request.headers[name] for name in check.signed_headers}
    aws_request = AWSRequest(method=request.method, url=url, data=raw, headers=signed)
    aws_request.context["timestamp"] = amz_date
    auth = SigV4Auth(
        Credentials(match["key"], key.secret_access_key, key.session_token), match["service"], match["region"]
    )
    expected = auth.signature(
        auth.string_to_sign(aws_request, auth.canonical_request(aws_request)), aws_request
    )
    if expected != match["signature"]:
        check.problems.append("signature does not match the request as received")


# ---- Converse replies --------------------------------------------------------------------------------


def converse_usage(
    input_tokens: int = 21, output_tokens: int = 8, cache_read: int = 0, cache_write: int = 0
) -> dict[str, Any]:
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens + cache_read + cache_write,
    }
    if cache_read or cache_write:
        usage |= {"cacheReadInputTokens": cache_read, "cacheWriteInputTokens": cache_write}
    return usage


def text_block(text: str) -> dict[str, Any]:
    return {"text": text}


def tool_use_block(tool_use_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": tool_input}}


def converse_response(
    content: Sequence[dict[str, Any]] = (text_block("Hello from the fake Bedrock upstream."),),
    *,
    stop_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    has_tools = any("toolUse" in block for block in content)
    return {
        "output": {"message": {"role": "assistant", "content": list(content)}},
        "stopReason": stop_reason or ("tool_use" if has_tools else "end_turn"),
        "usage": usage or converse_usage(),
        "metrics": {"latencyMs": 321},
    }


def bedrock_json(obj: Any, status: int = 200, request_id: str = REQUEST_ID, **headers: str) -> Reply:
    return json_reply(obj, status, {"x-amzn-RequestId": request_id, **headers})


def bedrock_error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """An error as Bedrock sends it: the exception's name in x-amzn-ErrorType, `{"message"}` in the body."""
    error_headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return bedrock_json({"message": message}, status, **error_headers, **(headers or {}))


def stream_event(name: str, payload: dict[str, Any]) -> bytes:
    return event(name, dumps(payload))


def stream_exception(name: str, payload: dict[str, Any]) -> bytes:
    return exception(name, dumps(payload))


def converse_stream(
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    argument_pieces: int = 3,
    stop_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    complete: bool = True,
) -> list[Part]:
    """ConverseStream frames: messageStart, a text block (no contentBlockStart, as Bedrock sends text),
    one block per tool call (contentBlockStart with toolUseId and name, then the input as JSON-string
    fragments), contentBlockStop after each, messageStop, then metadata with usage.
    `tool_calls` are toolUse blocks; `complete=False` stops before messageStop (a truncated stream)."""
    parts: list[Part] = [stream_event("messageStart", {"role": "assistant"})]
    index = 0
    if pieces:
        for piece in pieces:
            parts.append(
                stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            )
        parts.append(stream_event("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    for offset, block in enumerate(tool_calls):
        use = block["toolUse"]
        block_index = index + offset
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        parts.append(stream_event("contentBlockStart", {"contentBlockIndex": block_index, "start": start}))
        arguments = dumps(use["input"]).decode() if use["input"] else ""
        size = max(1, -(-len(arguments) // argument_pieces)) if arguments else 1
        for i in range(0, len(arguments), size):
            delta = {"toolUse": {"input": arguments[i : i + size]}}
            parts.append(
                stream_event("contentBlockDelta", {"contentBlockIndex": block_index, "delta": delta})
            )
        parts.append(stream_event("contentBlockStop", {"contentBlockIndex": block_index}))
    if not complete:
        return parts
    stop = stop_reason or ("tool_use" if tool_calls else "end_turn")
    parts.append(stream_event("messageStop", {"stopReason": stop}))
    metadata = {"usage": usage or converse_usage(), "metrics": {"latencyMs": 456}}
    parts.append(stream_event("metadata", metadata))
    return parts


def eventstream_reply(parts: Sequence[Part], request_id: str = REQUEST_ID) -> Reply:
    headers = {"Content-Type": EVENTSTREAM, "x-amzn-RequestId": request_id}
    return Reply(200, headers, list(parts), stream=True)


def titan_embedding(vector: Sequence[float], tokens: int = 3) -> Reply:
    return bedrock_json({"embedding": list(vector), "inputTextTokenCount": tokens})


# ---- the fake --------------------------------------------------------------------------------------


class FakeBedrock(FakeUpstream):
    name = "fake-bedrock"

    def __init__(self, keys: Mapping[str, AwsKey], api_keys: Sequence[str]) -> None:
        super().__init__()
        self.keys = dict(keys)
        self.api_keys = tuple(api_keys)
        self.auth_checks: list[AuthCheck] = []
        self._auth_lock = threading.Lock()

    def reset(self) -> None:
        with self._auth_lock:
            self.auth_checks = []
        super().reset()

    def only_auth(self) -> AuthCheck:
        with self._auth_lock:
            checks = list(self.auth_checks)
        assert len(checks) == 1, f"{self.name} authenticated {len(checks)} requests, expected 1: {checks}"
        return checks[0]

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if rec.path.endswith("/converse"):
            return bedrock_json(converse_response())
        if rec.path.endswith("/converse-stream"):
            return eventstream_reply(converse_stream())
        if rec.path.endswith("/invoke"):
            dimensions = body.get("dimensions") or 4
            return titan_embedding([round(0.25 * (d + 1), 2) for d in range(dimensions)])
        return bedrock_error(404, "UnknownOperationException", f"no operation at POST {rec.path}")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()  # cached: the base class reads the same bytes
        check = self._authenticate(request, raw)
        with self._auth_lock:
            self.auth_checks.append(check)
        if not check.ok:
            name = "InvalidSignatureException" if check.scheme == "sigv4" else "UnrecognizedClientException"
            reply = bedrock_error(403, name, "; ".join(check.problems))
            return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
        return await super()._handle(request)

    def _authenticate(self, request: web.Request, raw: bytes) -> AuthCheck:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("AWS4-HMAC-SHA256 "):
            check = AuthCheck("sigv4", request.raw_path)
            _verify_sigv4(request, raw, self.keys, check)
        elif authorization.startswith("Bearer "):
            check = AuthCheck("bearer", request.raw_path, bearer=authorization.removeprefix("Bearer "))
            if check.bearer not in self.api_keys:
                check.problems.append("unknown Bedrock API key")
            if "X-Amz-Date" in request.headers:
                check.problems.append("a bearer request also carries SigV4 headers")
        else:
            check = AuthCheck("none", request.raw_path, problems=["no Authorization header"])
        return check
