"""What a `file` content part (a document) costs in the prompt. No provider publishes a rule for
documents, so these are rough and documented as such:

- text (a `text/*`, JSON, XML or YAML data URL): its text, tokenized;
- a PDF: 1,500 tokens a page, the low end of the 1,500-3,000 text tokens a page that one provider
  documents (the page images some providers add are not counted); pages are the PDF's page objects,
  or one per 100 KB where those are compressed out of sight;
- any other data: a token per 4 bytes;
- a `file_id` (an upload the gateway cannot see): nothing.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Mapping
from typing import Any

PDF_PAGE_TOKENS = 1500
PDF_BYTES_PER_PAGE = 100_000  # when no page object can be seen (object streams compress them)
BYTES_PER_TOKEN = 4
_TEXT_TYPES = ("application/json", "application/xml", "application/yaml", "application/x-yaml")
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def file_tokens(file: Mapping[str, Any], texts: list[str]) -> int:
    """The tokens of a `file` part's `file` object: a text document's text is added to `texts` (to
    be tokenized with the rest of the request); the other kinds' counts are returned."""
    url = file.get("file_data")
    if not isinstance(url, str) or not url.startswith("data:"):
        return 0
    header, sep, data = url[5:].partition(",")
    mime_type, _, params = header.partition(";")
    if not sep or "base64" not in params.split(";"):
        return 0
    try:
        raw = binascii.a2b_base64(data)
    except binascii.Error:
        return 0
    mime_type = mime_type.lower()
    if mime_type.startswith("text/") or mime_type in _TEXT_TYPES:
        texts.append(raw.decode("utf-8", "replace"))
        return 0
    if mime_type == "application/pdf":
        return PDF_PAGE_TOKENS * pdf_pages(raw)
    return math.ceil(len(raw) / BYTES_PER_TOKEN)


def pdf_pages(pdf: bytes) -> int:
    """The page objects in a PDF; one per 100 KB (at least one) when none is visible."""
    return len(_PDF_PAGE.findall(pdf)) or max(1, math.ceil(len(pdf) / PDF_BYTES_PER_PAGE))
