"""What an item may be: a key, a JSON metadata object, a source. Shared by the store (which
refuses a bad batch as a whole) and the gateway (which reports a bad item on its own)."""

from __future__ import annotations

import json
import re

from .errors import InvalidItem

MAX_KEY_CHARS = 1024
MAX_SOURCE_CHARS = 4096
MAX_METADATA_BYTES = 16 * 1024
HEX64 = re.compile(r"[0-9a-fA-F]{16}")


def check_key(key) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS or "\x00" in key:
        raise InvalidItem(f"a key must be a non-empty string of at most {MAX_KEY_CHARS} characters without NUL: {key!r:.80}")
    return key


def normalize_metadata(meta, max_bytes: int = MAX_METADATA_BYTES) -> dict | None:
    """The metadata exactly as a replay of the log will produce it, or InvalidItem."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidItem(f"metadata must be a JSON object, not {type(meta).__name__}")
    try:
        text = json.dumps(meta, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidItem(f"metadata is not plain JSON: {exc}") from None
    size = len(text.encode())
    if size > max_bytes:
        raise InvalidItem(f"metadata is {size:,} bytes as JSON; the limit is {max_bytes:,}")
    return json.loads(text)


def check_source(source) -> str | None:
    if source is None or source == "":
        return None
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS:
        raise InvalidItem(f"a source must be a string of at most {MAX_SOURCE_CHARS} characters")
    return source


MAX_THUMBNAIL_BYTES = 128 * 1024
WEBP_MAGIC = (b"RIFF", b"WEBP")


def check_thumbnail(data) -> bytes | None:
    """A stored thumbnail is a WebP image of at most MAX_THUMBNAIL_BYTES (None: no thumbnail),
    so what GET /thumbnail serves as image/webp is one."""
    if data is None:
        return None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidItem(f"a thumbnail must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_THUMBNAIL_BYTES:
        raise InvalidItem(f"a thumbnail is {len(data):,} bytes; the limit is {MAX_THUMBNAIL_BYTES:,}")
    if len(data) < 12 or data[:4] != WEBP_MAGIC[0] or data[8:12] != WEBP_MAGIC[1]:
        raise InvalidItem("a thumbnail must be a WebP image")
    return data


def check_phash(value) -> int | None:
    """A 64-bit perceptual hash: an int in [0, 2**64), or 16 hex digits (None: none)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not HEX64.fullmatch(value):
            raise InvalidItem("a perceptual hash is 16 hexadecimal digits (64 bits)")
        value = int(value, 16)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise InvalidItem("a perceptual hash is a 64-bit unsigned integer")
    return value
