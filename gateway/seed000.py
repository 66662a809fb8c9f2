"""Seed 000's routes: POST /embedding/fast_extract (DINOv2) and /embedding/test_extract
(InternViT), body {"url": ...} -> {"embedding": [...], "url": ...}. GET / (its health check)
is gateway/web.py's service info.

The URL goes through the intake's safe fetch (public addresses only, size and time limits).
`test_extract` returns the simple InternViT extractor's vector, or the three-level `combined`
vector with IMAGE_EMBED_TEST_EXTRACT=combined.

    IMAGE_EMBED_TEST_EXTRACT   simple | combined   (default: simple)
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, Field

from config.settings import TEST_EXTRACT_MODES, Settings, load_settings
from intake.errors import ClientError

from .errors import api_errors, call_runner
from .images import ImageRef

__all__ = ["TEST_EXTRACT_MODES", "ExtractResponse", "Seed000API", "extract_mode_setting"]


def extract_mode_setting(settings: Settings | None = None) -> str:
    return (settings or load_settings()).test_extract


class ExtractResponse(BaseModel):
    """Seed 000's response."""

    embedding: list[float] = Field(description="L2-normalized vector")
    url: str = Field(description="the URL as sent")


def _url_ref(url: str) -> ImageRef:
    if not url.strip():
        raise ClientError("send an http(s) image URL in `url`", code="missing_image")
    return ImageRef(url=url, label=f"url:{url}")


class Seed000API:
    """Mixin: needs `self.dino`, `self.dinov2_spec`, `self.images`, `self.test_extract_mode` and
    the InternViT mixin's `internvit_simple` / `internvit_levels`."""

    @bentoml.api(route="/embedding/fast_extract")
    @api_errors
    async def fast_extract(self, url: str) -> ExtractResponse:
        """Seed 000's DINOv2 route: {"url"} -> {"embedding", "url"}; the DINOv2 CLS token
        after the final layer norm, L2-normalized (768 floats for ViT-B/14)."""
        pixels = await self.images.load_for_model(_url_ref(url), self.dinov2_spec)
        vectors = await call_runner("dino", self.dino.to_async.encode_dinov2(pixels[None]))
        return ExtractResponse(embedding=vectors[0].tolist(), url=url)

    @bentoml.api(route="/embedding/test_extract")
    @api_errors
    async def test_extract(self, url: str) -> ExtractResponse:
        """Seed 000's InternViT route: {"url"} -> {"embedding", "url"}; the simple extractor
        (mean-pooled patch tokens, 1024 floats), or the three-level `combined` vector when
        IMAGE_EMBED_TEST_EXTRACT=combined."""
        ref = _url_ref(url)
        if self.test_extract_mode == "combined":
            vector = (await self.internvit_levels(ref)).combined
        else:
            vector = await self.internvit_simple(ref)
        return ExtractResponse(embedding=vector, url=url)
