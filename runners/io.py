"""The IO kinds of batchable runner APIs (models.families.IO_KINDS): each one's signature
(BentoML derives the API's schema from these annotations), how its batch becomes the model
method's arguments, and a one-item batch for the warm-up.

    images    np.ndarray (uint8, n x size x size x 3)  -> np.ndarray
    texts     list[str]                                 -> np.ndarray
    captions  list[CaptionRequest]                      -> list[str]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import bentoml
import numpy as np
from bentoml.validators import TensorSchema
from pydantic import BaseModel, Field

from models.caption import MAX_CAPTION_LENGTH
from models.specs import ModelSpec

# run(self, batch): the runner's call of one model method on one batch
Run = Callable[[Any, Any], Any]


class CaptionRequest(BaseModel):
    """One image to caption. A batchable API takes one argument, so the per-request
    max_length travels with its pixels."""

    pixels: Annotated[np.ndarray, TensorSchema("numpy-array", "uint8", None)] = Field(
        description="uint8 (384, 384, 3), resized by the gateway"
    )
    max_length: int = Field(ge=1, le=MAX_CAPTION_LENGTH, description="most tokens to generate, BOS included")


def _images_api(run: Run) -> Callable[..., Any]:
    def api(self: Any, images: np.ndarray) -> np.ndarray:
        return run(self, images)

    return api


def _texts_api(run: Run) -> Callable[..., Any]:
    def api(self: Any, texts: list[str]) -> np.ndarray:
        return run(self, texts)

    return api


def _captions_api(run: Run) -> Callable[..., Any]:
    def api(self: Any, requests: list[CaptionRequest]) -> list[str]:
        return run(self, requests)

    return api


def _pixels(spec: ModelSpec) -> tuple[int, int, int]:
    return (spec.input_size, spec.input_size, 3)


def _zeros(spec: ModelSpec) -> np.ndarray:
    return np.zeros((1, *_pixels(spec)), dtype=np.uint8)


def _caption_args(spec: ModelSpec, requests: list[CaptionRequest]) -> tuple[np.ndarray, list[int]]:
    """Checked pixels stacked into one batch, and each request's max_length."""
    shape = _pixels(spec)
    for r in requests:
        if r.pixels.shape != shape:
            raise bentoml.exceptions.InvalidArgument(f"pixels must be {shape}, got {r.pixels.shape}")
    batch = np.stack([r.pixels for r in requests]) if requests else np.zeros((0, *shape), dtype=np.uint8)
    return batch, [r.max_length for r in requests]


@dataclass(frozen=True, kw_only=True)
class IOKind:
    make_api: Callable[[Run], Callable[..., Any]]  # the annotated API function around `run`
    args: Callable[[ModelSpec, Any], tuple]  # batch -> the model method's arguments
    sample: Callable[[ModelSpec], Any]  # a one-item batch for the warm-up


IO: dict[str, IOKind] = {
    "images": IOKind(make_api=_images_api, args=lambda spec, batch: (batch,), sample=_zeros),
    "texts": IOKind(make_api=_texts_api, args=lambda spec, batch: (batch,), sample=lambda spec: ["warm-up"]),
    "captions": IOKind(
        make_api=_captions_api,
        args=_caption_args,
        sample=lambda spec: [CaptionRequest(pixels=_zeros(spec)[0], max_length=5)],
    ),
}
