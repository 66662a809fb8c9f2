"""Request-shape limits of the gateway: a view of config.settings (IMAGE_EMBED_MAX_BODY_BYTES,
_MAX_ITEMS, _MAX_TEXTS, _MAX_TEXT_CHARS, _MAX_IN_FLIGHT; documented in docs/configuration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import MiB, Settings, load_settings


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    max_body_bytes: int = 64 * MiB
    max_items: int = 64
    max_texts: int = 256
    max_text_chars: int = 10_000
    max_in_flight: int = 64

    @classmethod
    def from_settings(cls, s: Settings) -> "GatewaySettings":
        return cls(
            max_body_bytes=s.max_body_bytes,
            max_items=s.max_items,
            max_texts=s.max_texts,
            max_text_chars=s.max_text_chars,
            max_in_flight=s.max_in_flight,
        )

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        return cls.from_settings(load_settings())
