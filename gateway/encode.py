"""CLIP encode APIs: images and texts into one 512-d space (seeds 001 and 004 included)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from pydantic import Field

from intake.errors import ClientError

from .errors import api_errors, call_runner
from .images import ImageRef, many_refs, single_ref, upload_name
from .schemas import EmbedImageResponse, EncodedItem, EncodeImagesResponse, ItemError

SEED_001_MODEL_NAME = "CLIP-ViT-B/32"
# Declared in the schema (so clients and fuzzers know); the limits on length and count are
# configurable and checked at run time.
Text = Annotated[str, Field(min_length=1, description="non-empty; CLIP reads the first 77 tokens")]


class EncodeAPI:
    """Mixin: needs `self.clip` (the CLIP runner), `self.images`, `self.limits`, `self.clip_spec`."""

    async def clip_image_vectors(self, batch: np.ndarray) -> np.ndarray:
        return await call_runner("clip", self.clip.to_async.encode_images(batch))

    async def clip_text_vectors(self, texts: list[str]) -> np.ndarray:
        return await call_runner("clip", self.clip.to_async.encode_texts(texts))

    async def _one_image_vector(self, ref: ImageRef) -> list[float]:
        pixels = await self.images.load_for_model(ref, self.clip_spec)
        return (await self.clip_image_vectors(pixels[None]))[0].tolist()

    @bentoml.api(route="/encode_image")
    @api_errors
    async def encode_image(
        self, image: Path = None, url: str | None = None, image_base64: str | None = None  # type: ignore[assignment]
    ) -> list[float]:
        """Embed one image with CLIP ViT-B/32: the bare JSON list of 512 floats, L2-normalized.

        Send exactly one of: `image` (multipart upload), `url` (http/https) or
        `image_base64` (base64 or a data: URL).
        """
        return await self._one_image_vector(single_ref(image, url, image_base64))

    @bentoml.api(route="/embed-image")
    @api_errors
    async def embed_image(self, file: Path) -> EmbedImageResponse:
        """Seed 001's route: multipart `file` -> {"embedding", "model", "device"}."""
        vector = await self._one_image_vector(ImageRef(upload=file, label=f"upload:{upload_name(file)}"))
        info = await self.runner_info("clip")
        return EmbedImageResponse(embedding=vector, model=SEED_001_MODEL_NAME, device=info["device"])

    @bentoml.api
    @api_errors
    async def encode_images(
        self, images: list[Path] = [], urls: list[str] = [], images_base64: list[str] = []
    ) -> EncodeImagesResponse:
        """Embed many images in one call: one result per image, in order (uploads, then
        `urls`, then `images_base64`). An image that fails gets an `error` and no
        embedding; the others still succeed. In multipart requests `urls` and
        `images_base64` are JSON arrays."""
        refs = many_refs(images, urls, images_base64, self.limits.max_items)
        loaded = await asyncio.gather(*(self._pixels_or_error(ref) for ref in refs))
        ok = [i for i, item in enumerate(loaded) if isinstance(item, np.ndarray)]
        vectors = await self.clip_image_vectors(np.stack([loaded[i] for i in ok])) if ok else []
        by_index = dict(zip(ok, vectors))
        results = []
        for i, (ref, item) in enumerate(zip(refs, loaded)):
            if i in by_index:
                results.append(EncodedItem(index=i, source=ref.label, embedding=by_index[i].tolist()))
            else:
                results.append(EncodedItem(index=i, source=ref.label, error=ItemError(**item.to_json())))
        return EncodeImagesResponse(model=self.clip_spec.display_name, dim=self.clip_spec.output_dim, results=results)

    async def _pixels_or_error(self, ref: ImageRef) -> np.ndarray | ClientError:
        try:
            return await self.images.load_for_model(ref, self.clip_spec)
        except ClientError as exc:
            return exc

    def _check_texts(self, texts: list[str]) -> list[str]:
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

    @bentoml.api
    @api_errors
    async def encode_text(self, text: Text) -> list[float]:
        """Embed one text with CLIP's text tower, in the same space as encode_image.
        Texts longer than CLIP's 77 tokens are truncated."""
        return (await self.clip_text_vectors(self._check_texts([text])))[0].tolist()

    @bentoml.api
    @api_errors
    async def encode_texts(self, texts: Annotated[list[Text], Field(min_length=1)]) -> list[list[float]]:
        """Embed many texts: one 512-d vector per text, in order."""
        return (await self.clip_text_vectors(self._check_texts(texts))).tolist()
