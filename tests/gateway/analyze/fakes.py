"""Fake model backends for the analyze engine: real letterboxing and box mapping, with
"detectors" that find coloured blobs, so crops, contexts and offsets are exercised for real.

The scene (400 x 300, grey): a red "person" at PERSON with a white "face" at FACE_IN_PERSON
inside it, and a larger white "face" at FACE_OUTSIDE beyond the person.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from models import get_spec
from models.detection import pack
from models.specs import ModelSpec

PERSON = (100, 50, 250, 290)
FACE_IN_PERSON = (150, 70, 200, 120)  # 50 x 50
FACE_OUTSIDE = (310, 20, 380, 90)  # 70 x 70: the largest face of the whole image


def scene(person: bool = True, faces: bool = True) -> Image.Image:
    img = Image.new("RGB", (400, 300), (90, 90, 90))
    draw = ImageDraw.Draw(img)
    if person:
        draw.rectangle([PERSON[0], PERSON[1], PERSON[2] - 1, PERSON[3] - 1], fill=(220, 20, 20))
    if faces:
        for x0, y0, x1, y1 in (FACE_IN_PERSON, FACE_OUTSIDE):
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=(255, 255, 255))
    return img


def blobs(mask: np.ndarray) -> np.ndarray:
    """Bounding boxes [x0, y0, x1, y1] of the connected regions of `mask`."""
    labels, _ = ndimage.label(mask)
    return np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)]).reshape(-1, 4)


class FakeBackends:
    """Counts calls; optionally slow, failing, or without a model."""

    def __init__(self, delay: float = 0.01, fail: dict[str, Exception] | None = None, missing: set[str] = frozenset()):
        self.calls: Counter[str] = Counter()
        self.delay = delay
        self.fail = fail or {}
        self.missing = set(missing)
        self.captions: list[tuple[tuple, int]] = []

    def spec(self, model_key: str) -> ModelSpec:
        from gateway.analyze.backends import ModelNotDeployed

        if model_key in self.missing:
            raise ModelNotDeployed(f"the {model_key} model is not deployed on this server")
        return get_spec(model_key, "tiny")

    async def _call(self, name: str) -> None:
        self.calls[name] += 1
        await asyncio.sleep(self.delay)
        if name in self.fail:
            raise self.fail[name]

    async def detect_persons(self, canvases: np.ndarray) -> np.ndarray:
        await self._call("person")
        img = canvases[0].astype(int)
        found = blobs((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80))
        return pack(found, np.full(len(found), 0.97))[None]

    async def detect_faces(self, canvases: np.ndarray) -> np.ndarray:
        await self._call("face")
        found = blobs((canvases[0] > 200).all(axis=-1))
        return pack(found, np.full(len(found), 0.999))[None]

    async def embed(self, model_key: str, pixels: np.ndarray) -> np.ndarray:
        await self._call(model_key)
        dim = self.spec(model_key).output_dim
        v = np.resize(pixels.reshape(len(pixels), -1, 3).mean(axis=1), (len(pixels), dim)).astype(np.float32) + 1
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    async def caption(self, pixels: np.ndarray, max_length: int) -> str:
        await self._call("caption")
        self.captions.append((pixels.shape, max_length))
        r, g, b = pixels.reshape(-1, 3).mean(axis=0).round().astype(int)
        return f"{max_length}: mean colour {r} {g} {b}"
