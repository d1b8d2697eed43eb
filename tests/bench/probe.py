"""Readiness and sanity probes against a target's POST /v1/chat/completions, /v1/messages or /v1/responses
(stdlib HTTP)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from procs import Proc

AUTH = "Bearer bench"


class TargetFailed(RuntimeError):
    """A target could not be started or answered wrongly; the run goes on with the next one."""


def post(url: str, body: bytes, timeout_s: float = 5.0) -> tuple[int, bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json", "Authorization": AUTH}
        conn.request("POST", u.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: Proc, url: str, body: bytes, timeout_s: float) -> float:
    """Seconds from spawn until the first 200 on a request; TargetFailed if it dies or times out."""
    last = "no answer"
    while time.perf_counter() - proc.started < timeout_s:
        if not proc.alive():
            raise TargetFailed(f"exited with code {proc.popen.returncode} before it was ready")
        try:
            status, data = post(url, body, timeout_s=2.0)
        except OSError as e:
            last = repr(e)
        else:
            if status == 200:
                return time.perf_counter() - proc.started
            last = f"HTTP {status}: {data[:300]!r}"
        time.sleep(0.01)
    raise TargetFailed(f"not ready after {timeout_s:.0f}s (last: {last})")


def reply_text(api: str, reply: Any) -> Any:
    """The assistant text of a non-streamed reply: OpenAI chat's message content, the Messages API's
    first content block's text, or the Responses API's first message item's first output_text (None
    when the reply has another shape)."""
    try:
        if api == "messages":
            block = reply["content"][0]
            return block["text"] if block.get("type") == "text" else None
        if api == "responses":
            [message, *_] = [item for item in reply["output"] if item.get("type") == "message"]
            part = message["content"][0]
            return part["text"] if part.get("type") == "output_text" else None
        return reply["choices"][0]["message"]["content"]
    except (LookupError, TypeError, AttributeError, ValueError):
        return None


def check_reply(url: str, body: bytes, api: str = "chat") -> str:
    """One non-streaming request of that API ("chat", "messages" or "responses"); returns the assistant
    text or raises TargetFailed."""
    try:
        status, data = post(url, body)
    except OSError as e:
        raise TargetFailed(f"{api} probe failed: {e!r}") from e
    try:
        content = reply_text(api, json.loads(data))
    except ValueError:
        content = None
    if status != 200 or not isinstance(content, str) or not content:
        raise TargetFailed(f"{api} probe: HTTP {status}, unexpected body {data[:300]!r}")
    return content
