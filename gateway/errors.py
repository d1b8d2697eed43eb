"""OpenAI's error envelope, and the exception that carries one through the gateway."""

from __future__ import annotations

from typing import Any

from gateway import json_codec

# HTTP status -> OpenAI error `type` used when the gateway itself produces the error.
_TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for_status(status: int) -> str:
    if status in _TYPE_FOR_STATUS:
        return _TYPE_FOR_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(
    message: str, type_: str, param: str | None = None, code: str | int | None = None
) -> dict[str, Any]:
    """OpenAI's envelope: every field present, `param` and `code` possibly null."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class GatewayError(Exception):
    """An error the client sees as an OpenAI error envelope with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        param: str | None = None,
        code: str | int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or error_type_for_status(status)
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def body_bytes(self) -> bytes:
        return json_codec.dumps(self.body())


def normalize_error(error: Any, status: int, fallback_message: str) -> dict[str, Any]:
    """Whatever an error rule produced, made into a complete OpenAI error object."""
    source = error if isinstance(error, dict) else {}
    message = source.get("message")
    if not isinstance(message, str) or not message:
        message = _as_text(message) if message not in (None, "") else fallback_message
    type_ = source.get("type")
    code = source.get("code")
    param = source.get("param")
    return {
        "message": message,
        "type": type_ if isinstance(type_, str) and type_ else error_type_for_status(status),
        "param": param if isinstance(param, str) else None,
        "code": code if isinstance(code, str | int) and not isinstance(code, bool) else None,
    }


def _as_text(value: Any) -> str:
    """A non-string error message as JSON text ("<unprintable>" when it cannot be written)."""
    try:
        return json_codec.dumps_str(value)
    except json_codec.JSONEncodeError:
        return "<an error message nested too deeply to print>"
