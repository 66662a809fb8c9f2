"""Per-request regions: person and face detection run at most once, crops and PNGs too.

Every task of a request awaits the same asyncio task for the same work (`Memo`): when four
tasks need the prominent person at once, the first starts the detector call and the others
await its result; nothing is cached beyond the request.

Targets:
  whole_image       the image itself
  prominent_person  the most prominent person's crop; the whole image when none is found
  prominent_face    the most prominent face's crop, searched for inside the prominent person
                    (face_context=prominent_person, the whole image when no person is found)
                    or in the whole image (face_context=whole_image); no face -> TaskSkipped
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import numpy as np
from PIL import Image

from models.detection import Box, Detection, from_canvas, prominent_face, prominent_person
from models.preprocess import prepare_images
from models.specs import ModelSpec

from .schemas import TaskSkipped

T = TypeVar("T")
WHOLE_IMAGE, PROMINENT_PERSON, PROMINENT_FACE = "whole_image", "prominent_person", "prominent_face"


class Backends(Protocol):
    """The model calls a request makes (gateway/analyze/backends.py; fakes in tests)."""

    def spec(self, model_key: str) -> ModelSpec: ...
    async def detect_persons(self, canvases: np.ndarray) -> np.ndarray: ...
    async def detect_faces(self, canvases: np.ndarray) -> np.ndarray: ...
    async def embed(self, model_key: str, pixels: np.ndarray) -> np.ndarray: ...
    async def caption(self, pixels: np.ndarray, max_length: int) -> str: ...


class Memo:
    """Request-scoped single flight: the first `get` of a key starts `make()`, every `get`
    of that key awaits the same task (its result or its exception)."""

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(make())
        # shield: one waiter being cancelled must not cancel the work the others await
        return await asyncio.shield(task)

    def keys(self) -> list[Hashable]:
        return list(self._tasks)

    def cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()


class NoFaceFound(TaskSkipped):
    pass


@dataclass(frozen=True)
class Region:
    """What a task works on: the whole image (bbox None) or a crop of it."""

    image: Image.Image
    bbox: Box | None = None

    @property
    def key(self) -> Hashable:
        return self.bbox or WHOLE_IMAGE


def png_base64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Regions:
    def __init__(self, image: Image.Image, backends: Backends, memo: Memo) -> None:
        self.image = image
        self.backends = backends
        self.memo = memo

    async def person(self) -> Detection | None:
        """The most prominent person, or None (detected once per request)."""
        return await self.memo.get(("detect", "person", None), lambda: self._detect("person", None))

    async def face(self, face_context: str) -> Detection | None:
        """The most prominent face in the context's search area, or None."""
        area = None
        if face_context == PROMINENT_PERSON:
            person = await self.person()
            area = person.box if person else None
        return await self.memo.get(("detect", "face", area), lambda: self._detect("face", area))

    async def _detect(self, kind: str, area: Box | None) -> Detection | None:
        spec = self.backends.spec(kind)
        crop = self.image if area is None else self.image.crop(area)
        canvas = await anyio.to_thread.run_sync(prepare_images, [crop], spec)
        if kind == "person":
            rows = await self.backends.detect_persons(canvas)
        else:
            rows = await self.backends.detect_faces(canvas)
        offset = (area[0], area[1]) if area else (0, 0)
        found = from_canvas(rows[0], crop.size, spec.input_size, offset)
        return prominent_person(found) if kind == "person" else prominent_face(found)

    async def region(self, target: str, face_context: str) -> Region:
        if target == WHOLE_IMAGE:
            return Region(self.image)
        if target == PROMINENT_PERSON:
            person = await self.person()
            return self.crop(person.box) if person else Region(self.image)
        if target == PROMINENT_FACE:
            face = await self.face(face_context)
            if face is None:
                where = "the prominent person" if face_context == PROMINENT_PERSON else "the whole image"
                raise NoFaceFound(f"no face found in {where} (face_context={face_context}); this target needs one")
            return self.crop(face.box)
        raise ValueError(f"unknown target {target!r}")

    def crop(self, box: Box) -> Region:
        return Region(self.image.crop(box), box)

    async def png(self, region: Region) -> str | None:
        """The crop as a base64 PNG (encoded once per crop), None for the whole image."""
        if region.bbox is None:
            return None
        return await self.memo.get(("png", region.bbox), lambda: anyio.to_thread.run_sync(png_base64, region.image))
