"""InternViT APIs: the simple extractor and the three-level extractor (global, focused, tiles).

The views are cut and resized here (PIL, models/views.py); the runner gets all views of a
request as one uint8 batch and batches them with the views of concurrent requests.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import bentoml
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from intake.decode import decode_image
from models.views import Box, combine_levels, prepare_views

from .errors import api_errors, call_runner
from .images import ImageRef, single_ref


class LevelBoxes(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    global_: list[int] = Field(alias="global", description="[left, top, right, bottom] in the decoded image's pixels")
    focused: list[int]
    tiles: list[list[int]] = Field(description="row-major")


class InternVitLevels(BaseModel):
    """The three-level extractor's result; every vector is L2-normalized."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    global_: list[float] = Field(alias="global", description="the whole image resized to 448 x 448")
    focused: list[float] = Field(description="the central box covering IMAGE_EMBED_INTERNVIT_FOCUS_AREA of the image")
    tiles: list[list[float]] = Field(description="one vector per tile of the grid, row-major")
    combined: list[float] = Field(
        description="L2norm(w_global * global + w_focused * focused + w_tiles * L2norm(mean(tiles))): one vector for an index"
    )
    boxes: LevelBoxes = Field(description="where each view was cut from")


def _boxes(boxes: list[Box]) -> LevelBoxes:
    return LevelBoxes(global_=list(boxes[0]), focused=list(boxes[1]), tiles=[list(b) for b in boxes[2:]])


class InternVitAPI:
    """Mixin: needs `self.internvit` (the runner), `self.images`, `self.internvit_spec`, `self.levels`."""

    async def internvit_vectors(self, batch: np.ndarray) -> np.ndarray:
        return await call_runner("internvit", self.internvit.to_async.encode_images(batch))

    async def internvit_simple(self, ref: ImageRef) -> list[float]:
        pixels = await self.images.load_for_model(ref, self.internvit_spec)
        return (await self.internvit_vectors(pixels[None]))[0].tolist()

    async def internvit_levels(self, ref: ImageRef) -> InternVitLevels:
        data = await self.images.read_bytes(ref)

        def work() -> tuple[np.ndarray, list[Box]]:
            return prepare_views(decode_image(data, self.images.settings).image, self.internvit_spec, self.levels)

        views, boxes = await anyio.to_thread.run_sync(work)
        levels = combine_levels(await self.internvit_vectors(views), self.levels)
        return InternVitLevels(
            global_=levels["global"].tolist(),
            focused=levels["focused"].tolist(),
            tiles=levels["tiles"].tolist(),
            combined=levels["combined"].tolist(),
            boxes=_boxes(boxes),
        )

    @bentoml.api(route="/encode_internvit")
    @api_errors
    async def encode_internvit(
        self, image: Path = None, url: str | None = None, image_base64: str | None = None  # type: ignore[assignment]
    ) -> list[float]:
        """Embed one image with InternViT-300M-448px (simple extractor): the bare JSON list of
        1024 floats, L2-normalized: the mean of the patch tokens (CLS token excluded) after
        timm's eval transform (short side to 448, center crop 448).

        Send exactly one of: `image` (multipart upload), `url` (http/https) or `image_base64`.
        """
        return await self.internvit_simple(single_ref(image, url, image_base64))

    @bentoml.api(route="/encode_internvit_levels")
    @api_errors
    async def encode_internvit_levels(
        self, image: Path = None, url: str | None = None, image_base64: str | None = None  # type: ignore[assignment]
    ) -> InternVitLevels:
        """Three-level InternViT embedding of one image: `global` (the whole image resized to
        448 x 448), `focused` (the central box covering half the area, by default), `tiles`
        (a 2 x 2 grid with 20% overlap, by default, row-major) and `combined`
        (L2norm(0.5 global + 0.25 focused + 0.25 L2norm(mean(tiles))), by default), each
        L2-normalized, 1024 floats; `boxes` says where each view was cut. Each level is the
        simple extractor's pooling on that view. Send exactly one of `image`, `url` or
        `image_base64`.
        """
        return await self.internvit_levels(single_ref(image, url, image_base64))
