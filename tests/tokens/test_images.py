"""Images cost what OpenAI's vision guide says; their size comes from the header in the data URL."""

from __future__ import annotations

import base64
import struct

import pytest

from gateway.tokens.images import data_url_image_size, image_size, image_tokens, tile_tokens


def _png(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x06\x00\x00\x00"
    )


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\xf7\x00\x00"


def _webp(chunk: bytes, body: bytes) -> bytes:
    return b"RIFF\x00\x00\x00\x00WEBP" + chunk + struct.pack("<I", len(body)) + body


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg(width: int, height: int, metadata: int = 0) -> bytes:
    """APP0, `metadata` bytes of APP1 segments (EXIF's place), a quantization table, SOF0."""
    app1 = b"".join(_segment(0xE1, b"\0" * 60000) for _ in range(metadata // 60000))
    sof = _segment(
        0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    return (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
        + app1
        + _segment(0xDB, b"\0" * 65)
        + sof
    )


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


HEADERS = [
    ("png", _png(800, 600), (800, 600)),
    ("gif", _gif(320, 200), (320, 200)),
    (
        "webp lossy",
        _webp(b"VP8 ", b"\x30\x01\x00\x9d\x01\x2a" + struct.pack("<HH", 1920, 1080)),
        (1920, 1080),
    ),
    ("webp lossless", _webp(b"VP8L", b"\x2f" + ((639) | (479 << 14)).to_bytes(4, "little")), (640, 480)),
    (
        "webp extended",
        _webp(b"VP8X", b"\x10\0\0\0" + (4095).to_bytes(3, "little") + (2047).to_bytes(3, "little")),
        (4096, 2048),
    ),
    ("jpeg", _jpeg(1024, 768), (1024, 768)),
    ("jpeg with fill bytes", b"\xff\xd8\xff\xff" + _jpeg(300, 400)[2:], (300, 400)),
    ("jpeg, metadata past the first 48 KiB", _jpeg(4032, 3024, metadata=120000), (4032, 3024)),
    ("not an image", b"%PDF-1.7 hello", None),
    ("png cut short", _png(800, 600)[:20], None),
    ("jpeg with no frame header", b"\xff\xd8" + _segment(0xE0, b"JFIF") + b"\xff\xd9", None),
    ("png of zero width", _png(0, 600), None),
]


@pytest.mark.parametrize(("data", "size"), [(d, s) for _, d, s in HEADERS], ids=[h[0] for h in HEADERS])
def test_the_size_is_read_from_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size
    mime = "image/png"
    assert data_url_image_size(_data_url(mime, data)) == size


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (1024, 1024, 765),  # OpenAI's examples: 4 tiles
        (2048, 4096, 1105),  # scaled to 1024x2048, then 768x1536: 6 tiles
        (512, 512, 255),  # one tile, never scaled up
        (100, 3000, 765),  # fitted into 2048 (68x2048), short side already under 768: 1x4 tiles
    ],
)
def test_tiles_as_openai_publishes(width: int, height: int, tokens: int) -> None:
    assert tile_tokens(width, height) == tokens


@pytest.mark.parametrize(
    ("url", "detail", "tokens"),
    [
        (_data_url("image/png", _png(4096, 8192)), "low", 85),  # OpenAI's example: low is 85 at any size
        (_data_url("image/png", _png(2048, 4096)), "high", 1105),
        (_data_url("image/png", _png(2048, 4096)), "auto", 1105),  # auto is priced as high
        (_data_url("image/png", _png(2048, 4096)), None, 1105),
        ("https://example.com/cat.png", None, 765),  # not fetched: priced as 1024x1024
        ("data:image/png;base64,!!!!", None, 765),  # unreadable: the same
        ("data:image/png,rawbytes", None, 765),  # not base64: the same
    ],
)
def test_image_tokens(url: str, detail: str | None, tokens: int) -> None:
    assert image_tokens(url, detail) == tokens
