"""Strings for the mock's value maker: free text (the start of the echo), fitted to minLength and
maxLength, and examples of the usual `format`s."""

from __future__ import annotations

import datetime
import random
import uuid

FREE_TEXT_LENGTH = 60  # characters of the echo a free-form string gets, about


def short_text(text: str) -> str:
    """The first words of `text`, about FREE_TEXT_LENGTH characters of them."""
    if len(text) <= FREE_TEXT_LENGTH:
        return text
    cut = text.rfind(" ", 0, FREE_TEXT_LENGTH)
    return text[: cut if cut > FREE_TEXT_LENGTH // 2 else FREE_TEXT_LENGTH]


def fit_length(text: str, least: int, most: int) -> str:
    """`text` repeated up to `least` characters and cut at `most`."""
    if len(text) < least:
        text = ((text + " ") * (least // (len(text) + 1) + 1))[:least]
    text = text[:most]
    trimmed = text.rstrip()
    return trimmed if len(trimmed) >= least else text


def format_example(form: str, rng: random.Random) -> str | None:
    """An example of a string `format` (dates, times and uuids drawn from `rng`), or None for one it
    does not know (the string is then free text)."""
    if form in ("date-time", "date", "time"):
        day = (datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(365))).isoformat()
        minute = rng.randrange(24 * 60)
        clock = f"{minute // 60:02d}:{minute % 60:02d}:00Z"
        return {"date-time": f"{day}T{clock}", "date": day, "time": clock}[form]
    if form == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return _FORMAT_EXAMPLES.get(form)


_FORMAT_EXAMPLES = {
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uri-template": "https://example.com/{id}",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "duration": "P1D",
    "json-pointer": "/0",
    "relative-json-pointer": "0",
    "regex": "^[a-z]+$",
    "byte": "aGVsbG8=",
}
