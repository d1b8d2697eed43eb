"""The Redactor: configured secrets and auth-shaped values out, ordinary error text untouched."""

from __future__ import annotations

import time

import pytest

from gateway.redaction import MASK, Redactor

OPENAI_KEY = "sk-proj-Abc123def456GHI789jkl012"
ANTHROPIC_KEY = "sk-ant-api03-Zyx987-wvu654_tsr321"
GOOGLE_KEY = "AIzaSyD-1234567890abcdefghijklmnopqrstu"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH"
UNCONFIGURED = "tok_9f8e7d6c5b4a39281706"  # a key the gateway does not know: only its shape gives it away

REDACTOR = Redactor([OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, AWS_SECRET, None, "short"])

# (text, what must not survive)
LEAKS = [
    (f"Authorization: Bearer {UNCONFIGURED}", UNCONFIGURED),
    (f"authorization: bearer {UNCONFIGURED}", UNCONFIGURED),
    (f"Bearer {UNCONFIGURED}", UNCONFIGURED),
    (f"x-api-key: {UNCONFIGURED}", UNCONFIGURED),
    (f"X-Api-Key:{UNCONFIGURED}", UNCONFIGURED),
    (f'{{"x-api-key": "{UNCONFIGURED}", "model": "m"}}', UNCONFIGURED),
    (f"{{'api-key': '{UNCONFIGURED}'}}", UNCONFIGURED),
    (f'{{\\"authorization\\": \\"Bearer {UNCONFIGURED}\\"}}', UNCONFIGURED),  # JSON inside a JSON string
    (f'{{"headers": {{"x-goog-api-key": "{UNCONFIGURED}"}}}}', UNCONFIGURED),
    (f'{{"apiKey": "{UNCONFIGURED}"}}', UNCONFIGURED),
    (f"GET /v1/models?api_key={UNCONFIGURED}&x=1", UNCONFIGURED),
    (f"GET /v1beta/models?key={UNCONFIGURED}", UNCONFIGURED),
    (f"access_token={UNCONFIGURED}", UNCONFIGURED),
    ("Basic dXNlcjpwYXNzd29yZDEyMw==", "dXNlcjpwYXNzd29yZDEyMw=="),
    (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/bedrock/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe",
        "fe5f80f77d5fa3beca038a248ff027d0445342fe",
    ),
    ("Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/bedrock/aws4_request", "AKIAIOSFODNN7EXAMPLE"),
    (f"x-amz-security-token:{SESSION_TOKEN}\nx-amz-date:20240101T000000Z", SESSION_TOKEN),
    (f"X-Amz-Security-Token={SESSION_TOKEN.replace('/', '%2F')}", "IQoJb3JpZ2luX2VjEJr"),
    # configured secrets, wherever they are and whatever surrounds them
    (f"the key {OPENAI_KEY} is not valid", OPENAI_KEY),
    (f"key={ANTHROPIC_KEY}!", ANTHROPIC_KEY),
    (f"<{GOOGLE_KEY}>", GOOGLE_KEY),
    (f"secret:{AWS_SECRET}.", AWS_SECRET),
    (f"?secret={AWS_SECRET.replace('/', '%2F').replace('+', '%2B')}", "wJalrXUtnFEMI"),  # URL-encoded
    # keys in the formats providers hand out, configured or not
    ("Incorrect API key provided: sk-proj-1234567890abcdefXYZ. You can find your key at ...", "1234567890"),
    ("API key not valid: AIzaSyA-0987654321zyxwvutsrqponmlkjihgf", "0987654321"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS)
def test_secrets_and_auth_shaped_values_are_masked(text: str, secret: str) -> None:
    redacted = REDACTOR.redact(text)
    assert secret not in redacted
    assert MASK in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Invalid authorization header format",
        "Invalid bearer token",
        "The bearer token is missing or expired",
        "Bearer tokens expire after an hour",
        "Basic authentication is not supported",
        "max_tokens must be less than or equal to 4096",
        "api_key is required",
        "The request signature we calculated does not match the signature you provided.",
        "messages: roles must alternate between 'user' and 'assistant'",
        "Your credit balance is too low to access the Anthropic API.",
        "The security token included in the request is invalid.",
        "Rate limit reached for requests: key 'team-a'",
        "short",  # a configured "secret" under 8 characters is not searched for
        "",
    ],
)
def test_ordinary_error_text_is_left_alone(text: str) -> None:
    assert REDACTOR.redact(text) == text


def test_the_name_of_a_field_or_header_is_kept() -> None:
    assert REDACTOR.redact(f'{{"x-api-key": "{UNCONFIGURED}"}}') == f'{{"x-api-key": "{MASK}"}}'
    assert REDACTOR.redact(f"Authorization: Bearer {UNCONFIGURED}") == f"Authorization: {MASK}"
    assert REDACTOR.redact(f"Bearer {UNCONFIGURED} was sent") == f"Bearer {MASK} was sent"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redactor = Redactor(["abcdefgh12345678", "abcdefgh"])
    assert redactor.redact("x abcdefgh12345678 y") == f"x {MASK} y"


def test_bytes_are_redacted_and_returned_as_they_are_when_clean() -> None:
    clean = b"nothing to hide \xff"
    assert REDACTOR.redact_bytes(clean) is clean
    assert OPENAI_KEY.encode() not in REDACTOR.redact_bytes(f"key {OPENAI_KEY}".encode())


def test_every_string_of_a_json_value_is_redacted() -> None:
    value = {
        "message": f"bad key {OPENAI_KEY}",
        "param": None,
        "code": 401,
        "details": [{"echo": f"x-api-key: {UNCONFIGURED}"}, True],
        OPENAI_KEY: "a key as a key",
    }
    redacted = REDACTOR.redact_json(value)
    assert OPENAI_KEY not in repr(redacted) and UNCONFIGURED not in repr(redacted)
    assert (redacted["param"], redacted["code"], redacted["details"][1]) == (None, 401, True)


@pytest.mark.parametrize(
    "unit",
    [
        "authorization bearer x-api-key: " + "a" * 50 + " sk- Bearer ",
        "sk-",  # each one looked for a digit to the end of the run: 300 KB took minutes
        "Bearer " + "a" * 100,
        "x-api-key",
        "Credential=",
        "?key=",
    ],
)
def test_redaction_of_a_large_body_is_linear(unit: str) -> None:
    def seconds(size: int) -> float:
        text = unit * (size // len(unit))
        started = time.perf_counter()
        REDACTOR.redact(text)
        return time.perf_counter() - started

    small, large = seconds(100_000), seconds(400_000)
    assert large < 1.0
    assert large < 8 * small + 0.01


def test_extra_names_carry_keys_too() -> None:
    # a user dialect's own auth header (`auth: {header: X-Service-Token, ...}`)
    redactor = Redactor(names=["X-Service-Token"])
    assert redactor.redact("x-service-token: plainletters") == f"x-service-token: {MASK}"
    assert REDACTOR.redact("x-service-token: plainletters") == "x-service-token: plainletters"


def test_a_json_string_under_a_key_carrying_name_is_masked_whatever_it_looks_like() -> None:
    echoed = {"headers": {"X-Api-Key": "plainletters", "x-service-token": "more", "accept": "*/*"}}
    assert Redactor(names=["X-Service-Token"]).redact_json(echoed) == {
        "headers": {"X-Api-Key": MASK, "x-service-token": MASK, "accept": "*/*"}
    }
