"""InternViT extractors: the simple extractor and the three-level extractor (global, focused, tiles).

The views are cut and resized here (PIL, models/views.py); the runner gets all views of a
request as one uint8 batch and batches them with the views of concurrent requests.
"""

from __future__ import annotations

import anyio
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from config.sections import LevelSettings
from intake.decode import decode_image
from models.specs import Box, ModelSpec
from models.views import combine_levels, prepare_views

from .images import ImageLoader, ImageRef
from .runner_client import RunnerClient


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


class InternVitRoutes:
    """The simple and the three-level extractor over the InternViT runner."""

    def __init__(self, runners: RunnerClient, images: ImageLoader, spec: ModelSpec, levels: LevelSettings) -> None:
        self.runners = runners
        self.images = images
        self.spec = spec
        self.levels = levels

    async def simple(self, ref: ImageRef) -> list[float]:
        pixels = await self.images.load_for_model(ref, self.spec)
        return (await self.runners.embed_images("internvit", pixels[None]))[0].tolist()

    async def three_levels(self, ref: ImageRef) -> InternVitLevels:
        data = await self.images.read_bytes(ref)

        def work() -> tuple[np.ndarray, list[Box]]:
            return prepare_views(decode_image(data, self.images.settings).image, self.spec, self.levels)

        views, boxes = await anyio.to_thread.run_sync(work)
        levels = combine_levels(await self.runners.embed_images("internvit", views), self.levels)
        return InternVitLevels(
            global_=levels["global"].tolist(),
            focused=levels["focused"].tolist(),
            tiles=levels["tiles"].tolist(),
            combined=levels["combined"].tolist(),
            boxes=_boxes(boxes),
        )
