"""What the tasks of one analyze request work with: the validated task, and the context they
share (the image, the model back ends, the classifiers, the request's memo of shared work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from PIL import Image

from models.preprocess import prepare_images

from .classifiers import ClassifierStore
from .regions import Backends, Memo, Region, Regions
from .schemas import OperationResult, success


@dataclass(frozen=True)
class ValidTask:
    operation_id: str
    type: str
    target: str
    face_context: str
    params: dict[str, Any]


class AnalysisContext:
    """Everything the tasks of one request share."""

    def __init__(self, image: Image.Image, backends: Backends, classifiers: ClassifierStore) -> None:
        self.image = image
        self.backends = backends
        self.classifiers = classifiers
        self.memo = Memo()
        self.regions = Regions(image, backends, self.memo)

    async def _pixels(self, model_key: str, region: Region) -> np.ndarray:
        spec = self.backends.spec(model_key)
        return await anyio.to_thread.run_sync(prepare_images, [region.image], spec)

    async def embedding(self, model_key: str, region: Region) -> np.ndarray:
        async def work() -> np.ndarray:
            return (await self.backends.embed(model_key, await self._pixels(model_key, region)))[0]

        return await self.memo.get(("embed", model_key, region.key), work)

    async def caption(self, region: Region, max_length: int) -> str:
        async def work() -> str:
            return await self.backends.caption(await self._pixels("caption", region), max_length)

        return await self.memo.get(("caption", region.key, max_length), work)

    async def result(self, data, region: Region) -> OperationResult:
        """A success, with the crop's bbox and PNG when the task worked on a crop."""
        return success(data, region.bbox, await self.regions.png(region))
