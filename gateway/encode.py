"""CLIP encoding: images and texts into one 512-d space (the encode_* APIs, and the CLIP
vectors that search, index admin and the compat routes need)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from pydantic import Field

from intake.errors import ClientError
from models.specs import ModelSpec

from .images import ImageLoader, ImageRef
from .runner_client import RunnerClient
from .schemas import EncodedItem, EncodeImagesResponse, ItemError
from .settings import GatewaySettings

# Declared in the schema (so clients and fuzzers know); the limits on length and count are
# configurable and checked at run time.
Text = Annotated[str, Field(min_length=1, description="non-empty; CLIP reads the first 77 tokens")]


class EncodeRoutes:
    def __init__(self, runners: RunnerClient, images: ImageLoader, limits: GatewaySettings, spec: ModelSpec) -> None:
        self.runners = runners
        self.images = images
        self.limits = limits
        self.spec = spec

    async def image_vector(self, ref: ImageRef) -> list[float]:
        pixels = await self.images.load_for_model(ref, self.spec)
        return (await self.runners.clip_images(pixels[None]))[0].tolist()

    async def images_response(self, refs: list[ImageRef]) -> EncodeImagesResponse:
        results = []
        for i, (ref, item) in enumerate(zip(refs, await self.embed_refs(refs))):
            if isinstance(item, ClientError):
                results.append(EncodedItem(index=i, source=ref.label, error=ItemError(**item.to_json())))
            else:
                results.append(EncodedItem(index=i, source=ref.label, embedding=item.tolist()))
        return EncodeImagesResponse(model=self.spec.display_name, dim=self.spec.output_dim, results=results)

    async def embed_refs(self, refs: list[ImageRef]) -> list[np.ndarray | ClientError]:
        """Each image's CLIP vector, or the ClientError that kept it out; one runner call."""
        return (await self._embed([self._or_error(self.images.load_for_model(ref, self.spec)) for ref in refs]))[0]

    async def embed_for_index(
        self, refs: list[ImageRef], thumbnail_px: int | None
    ) -> tuple[list[np.ndarray | ClientError], list[tuple[bytes | None, int] | None]]:
        """embed_refs, plus what the index stores beside each vector: (WebP thumbnail, None
        when `thumbnail_px` is None; perceptual hash), or None for an image that failed."""
        loads = [self._or_error(self.images.load_for_index(ref, self.spec, thumbnail_px)) for ref in refs]
        vectors, loaded = await self._embed(loads)
        return vectors, [None if isinstance(item, ClientError) else item[1:] for item in loaded]

    async def _embed(self, loads) -> tuple[list[np.ndarray | ClientError], list]:
        """Await the loads (pixels, or a tuple starting with them, or a ClientError), then
        one runner call for every image that loaded."""
        loaded = await asyncio.gather(*loads)
        ok = [i for i, item in enumerate(loaded) if not isinstance(item, ClientError)]
        pixels = [loaded[i][0] if isinstance(loaded[i], tuple) else loaded[i] for i in ok]
        vectors = await self.runners.clip_images(np.stack(pixels)) if ok else []
        out: list[np.ndarray | ClientError] = list(loaded)
        for i, vec in zip(ok, vectors):
            out[i] = vec
        return out, loaded

    @staticmethod
    async def _or_error(coro):
        try:
            return await coro
        except ClientError as exc:
            return exc

    async def text_vectors(self, texts: list[str]) -> np.ndarray:
        return await self.runners.clip_texts(self.check_texts(texts))

    def check_texts(self, texts: list[str]) -> list[str]:
        if not texts:
            raise ClientError("send at least one text", code="missing_text")
        if len(texts) > self.limits.max_texts:
            raise ClientError(
                f"{len(texts)} texts in one call; the limit is {self.limits.max_texts} (IMAGE_EMBED_MAX_TEXTS)",
                code="too_many_items",
            )
        for i, text in enumerate(texts):
            if not text.strip():
                raise ClientError(f"text {i} is empty", code="empty_text")
            if len(text) > self.limits.max_text_chars:
                raise ClientError(
                    f"text {i} has {len(text):,} characters; the limit is {self.limits.max_text_chars:,}",
                    code="text_too_long",
                )
        return texts
