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
        return (await self.embed_with_thumbnails(refs, None))[0]

    async def embed_with_thumbnails(
        self, refs: list[ImageRef], thumbnail_px: int | None
    ) -> tuple[list[np.ndarray | ClientError], list[bytes | None]]:
        """embed_refs, plus each image's WebP thumbnail (None for all when `thumbnail_px` is None)."""
        loaded = await asyncio.gather(*(self._pixels_or_error(ref, thumbnail_px) for ref in refs))
        ok = [i for i, item in enumerate(loaded) if not isinstance(item, ClientError)]
        vectors = await self.runners.clip_images(np.stack([loaded[i][0] for i in ok])) if ok else []
        out: list[np.ndarray | ClientError] = list(loaded)
        thumbnails: list[bytes | None] = [None] * len(refs)
        for i, vec in zip(ok, vectors):
            out[i], thumbnails[i] = vec, loaded[i][1]
        return out, thumbnails

    async def _pixels_or_error(self, ref: ImageRef, thumbnail_px: int | None) -> tuple[np.ndarray, bytes | None] | ClientError:
        try:
            if thumbnail_px is None:
                return await self.images.load_for_model(ref, self.spec), None
            return await self.images.load_with_thumbnail(ref, self.spec, thumbnail_px)
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
