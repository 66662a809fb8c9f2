"""Request-shape limits of the gateway, read from the environment.

    IMAGE_EMBED_MAX_BODY_BYTES   largest request body, all parts together (default 64 MiB)
    IMAGE_EMBED_MAX_ITEMS        images per batch call such as encode_images (default 64)
    IMAGE_EMBED_MAX_TEXTS        texts per encode_texts call (default 256)
    IMAGE_EMBED_MAX_TEXT_CHARS   characters per text (default 10000; CLIP reads 77 tokens)
    IMAGE_EMBED_MAX_IN_FLIGHT    requests the gateway works on at a time; beyond it 429 with
                                 Retry-After (default 64; gateway/admission.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.settings import MiB, env_int


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    max_body_bytes: int = 64 * MiB
    max_items: int = 64
    max_texts: int = 256
    max_text_chars: int = 10_000
    max_in_flight: int = 64

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        d = cls()  # the defaults
        return cls(
            max_body_bytes=env_int("IMAGE_EMBED_MAX_BODY_BYTES", d.max_body_bytes),
            max_items=env_int("IMAGE_EMBED_MAX_ITEMS", d.max_items),
            max_texts=env_int("IMAGE_EMBED_MAX_TEXTS", d.max_texts),
            max_text_chars=env_int("IMAGE_EMBED_MAX_TEXT_CHARS", d.max_text_chars),
            max_in_flight=env_int("IMAGE_EMBED_MAX_IN_FLIGHT", d.max_in_flight),
        )
