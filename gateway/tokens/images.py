"""What an image costs in the prompt, by OpenAI's published rule for its vision models (GPT-4o,
GPT-4.1, GPT-5): `detail: low` is 85 tokens; otherwise the image is scaled to fit in 2048x2048, then
so that its shorter side is at most 768 px, and costs 170 tokens for each 512 px tile it covers plus
85. A 1024x1024 picture is 765 tokens, the most any image costs at 768 px or less a side.

The size is read from the image's own header (PNG, JPEG, GIF, WebP), in the base64 data URL the
request carries; nothing is decoded past the header. An image given by URL, or one whose header says
nothing, counts as 1024x1024: the gateway does not fetch images to count them.
"""

from __future__ import annotations

import binascii
import math
import struct

LOW_DETAIL_TOKENS = 85
TILE_TOKENS = 170
BASE_TOKENS = 85
TILE_PX = 512
FIT_PX = 2048
SHORT_SIDE_PX = 768
UNKNOWN_SIZE = (1024, 1024)

# base64 characters decoded first (48 KiB of image): PNG, GIF and WebP give their size in the first
# 30 bytes; a JPEG's frame header follows its metadata (EXIF, ICC profile), often within this much
_HEAD_CHARS = 65536
# JPEG start-of-frame markers (those that carry the size): C0-CF but DHT (C4), JPG (C8), DAC (CC)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_tokens(url: str, detail: str | None) -> int:
    """The tokens of one `image_url` part (`detail` low, high, auto or None: all but low are high)."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    width, height = data_url_image_size(url) or UNKNOWN_SIZE
    return tile_tokens(width, height)


def tile_tokens(width: int, height: int) -> int:
    """170 a 512 px tile plus 85, after the scaling described above (never scaled up)."""
    w, h = float(width), float(height)
    if max(w, h) > FIT_PX:
        scale = FIT_PX / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > SHORT_SIDE_PX:
        scale = SHORT_SIDE_PX / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / TILE_PX) * math.ceil(h / TILE_PX)
    return TILE_TOKENS * tiles + BASE_TOKENS


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of the image in a base64 `data:` URL; None for any other URL, or a header
    that cannot be read."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url.partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    size = image_size(_decode(data[:_HEAD_CHARS]))
    if size is None and len(data) > _HEAD_CHARS:  # a JPEG with a large metadata block
        size = image_size(_decode(data))
    return size


def _decode(chars: str) -> bytes:
    chars = chars[: len(chars) - len(chars) % 4]
    try:
        return binascii.a2b_base64(chars)
    except binascii.Error:
        return b""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header; None when `data` is none of them (or is
    cut before its size)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return _positive(width, height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return _positive(width, height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:  # lossy: the key frame's 14-bit sizes
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25:  # lossless: 14 bits each, minus one
        bits = int.from_bytes(data[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 30:  # extended: the canvas, 24 bits each, minus one
        return _positive(int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the segments to the first start-of-frame, which holds height then width."""
    at = 2
    end = len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length: TEM, RSTn, SOI
            at += 2
            continue
        if marker in _SOF_MARKERS:
            if at + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return _positive(width, height)
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before them
            return None
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None
