"""Encoding: images and texts into a model's space (the encode_* APIs, and the vectors that
search, index admin, the OpenAI-style route, ranking and the compat routes need).

Every call names its model (default `clip`, CLIP ViT-B/32); any served embedding model embeds
images, the CLIP models texts too (gateway/runner_client.py says which, from the registry)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from pydantic import Field

from config.sections import GatewaySettings
from intake.errors import ClientError
from models.specs import ModelSpec

from .images import ImageLoader, ImageRef
from .runner_client import RunnerClient
from .schemas import EncodedItem, EncodeImagesResponse, ItemError

DEFAULT_MODEL = "clip"
# Declared in the schema (so clients and fuzzers know); the limits on length and count are
# configurable and checked at run time.
Text = Annotated[str, Field(min_length=1, description="non-empty; CLIP reads the first 77 tokens")]
Model = Annotated[
    str, Field(description="the model's key (GET /v1/models lists the served ones); default clip, CLIP ViT-B/32")
]


class EncodeRoutes:
    def __init__(self, runners: RunnerClient, images: ImageLoader, limits: GatewaySettings) -> None:
        self.runners = runners
        self.images = images
        self.limits = limits

    def spec(self, model: str, texts: bool = False) -> ModelSpec:
        """The served embedding model `model`; 404 model_not_served naming the served ones."""
        return self.runners.embedding_spec(model, texts=texts)

    async def image_vector(self, ref: ImageRef, model: str = DEFAULT_MODEL) -> list[float]:
        spec = self.spec(model)
        pixels = await self.images.load_for_model(ref, spec)
        return (await self.runners.embed_images(spec.key, pixels[None]))[0].tolist()

    async def images_response(self, refs: list[ImageRef], model: str = DEFAULT_MODEL) -> EncodeImagesResponse:
        spec = self.spec(model)
        results = []
        for i, (ref, item) in enumerate(zip(refs, await self.embed_refs(refs, spec))):
            if isinstance(item, ClientError):
                results.append(EncodedItem(index=i, source=ref.label, error=ItemError(**item.to_json())))
            else:
                results.append(EncodedItem(index=i, source=ref.label, embedding=item.tolist()))
        return EncodeImagesResponse(model=spec.display_name, dim=spec.output_dim, results=results)

    async def embed_refs(self, refs: list[ImageRef], spec: ModelSpec) -> list[np.ndarray | ClientError]:
        """Each image's vector, or the ClientError that kept it out; one runner call."""
        return (await self._embed([self._or_error(self.images.load_for_model(ref, spec)) for ref in refs], spec))[0]

    async def embed_for_index(
        self, refs: list[ImageRef], thumbnail_px: int | None, spec: ModelSpec
    ) -> tuple[list[np.ndarray | ClientError], list[tuple[bytes | None, int] | None]]:
        """embed_refs, plus what the index stores beside each vector: (WebP thumbnail, None
        when `thumbnail_px` is None; perceptual hash), or None for an image that failed."""
        loads = [self._or_error(self.images.load_for_index(ref, spec, thumbnail_px)) for ref in refs]
        vectors, loaded = await self._embed(loads, spec)
        return vectors, [None if isinstance(item, ClientError) else item[1:] for item in loaded]

    async def _embed(self, loads, spec: ModelSpec) -> tuple[list[np.ndarray | ClientError], list]:
        """Await the loads (pixels, or a tuple starting with them, or a ClientError), then
        one runner call for every image that loaded."""
        loaded = await asyncio.gather(*loads)
        ok = [i for i, item in enumerate(loaded) if not isinstance(item, ClientError)]
        pixels = [loaded[i][0] if isinstance(loaded[i], tuple) else loaded[i] for i in ok]
        vectors = await self.runners.embed_images(spec.key, np.stack(pixels)) if ok else []
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

    async def text_vectors(self, texts: list[str], model: str = DEFAULT_MODEL) -> np.ndarray:
        spec = self.spec(model, texts=True)
        return await self.runners.embed_texts(spec.key, self.check_texts(texts))

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
