"""The three-level views of one image, and how their vectors are fused. PIL and numpy only
(the gateway computes the views; the runner only sees one uint8 batch of all of them).

For an image of width W and height H, each view is a box of the image, cropped and resized
whole to the model's input (input_size x input_size, the spec's interpolation; aspect ratio
not kept, as InternVL resizes its tiles and thumbnail):

- global:  the whole image, (0, 0, W, H);
- focused: the central box with the image's aspect ratio covering `focus_area` of its area
           (sides scaled by sqrt(focus_area), offsets rounded down);
- tiles:   a rows x cols grid whose neighbouring tiles share `tile_overlap` of a tile's side:
           tile width = W / (cols - (cols - 1) * overlap), step = tile width * (1 - overlap),
           edges rounded to whole pixels, the last tile ending at the image's edge; row-major.

Fusion (`combined`): tiles = L2norm(mean of the tile vectors); combined =
L2norm(w_global * global + w_focused * focused + w_tiles * tiles), each input unit-length.

Settings: IMAGE_EMBED_INTERNVIT_* (LevelSettings, config/sections.py; docs/configuration.md), read at start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from config.sections import LevelSettings

from .preprocess import _PIL_INTERPOLATION
from .specs import Box, ModelSpec


def _spans(length: int, parts: int, overlap: float) -> list[tuple[int, int]]:
    """`parts` intervals covering [0, length), neighbours sharing `overlap` of an interval."""
    size = length / (parts - (parts - 1) * overlap)
    step = size * (1 - overlap)
    spans = []
    for i in range(parts):
        start = math.floor(i * step + 0.5)
        end = length if i == parts - 1 else math.floor(i * step + size + 0.5)
        spans.append((start, max(end, start + 1)))
    return spans


def focused_box(width: int, height: int, area: float) -> Box:
    scale = math.sqrt(area)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (width - w) // 2, (height - h) // 2
    return (left, top, left + w, top + h)


def view_boxes(width: int, height: int, settings: LevelSettings) -> list[Box]:
    """[global, focused, tile (0, 0), tile (0, 1), ...] boxes of a width x height image."""
    boxes: list[Box] = [(0, 0, width, height), focused_box(width, height, settings.internvit_focus_area)]
    n_rows, n_cols = settings.internvit_tiles
    rows = _spans(height, n_rows, settings.internvit_tile_overlap)
    cols = _spans(width, n_cols, settings.internvit_tile_overlap)
    boxes += [(left, top, right, bottom) for top, bottom in rows for left, right in cols]
    return boxes


def prepare_view(img: Image.Image, box: Box, spec: ModelSpec) -> np.ndarray:
    """One view: the box cropped, then resized whole to input_size x input_size (uint8)."""
    size = spec.input_size
    view = img.crop(box)
    if view.size != (size, size):
        view = view.resize((size, size), _PIL_INTERPOLATION[spec.interpolation])
    return np.asarray(view, dtype=np.uint8)


def prepare_views(img: Image.Image, spec: ModelSpec, settings: LevelSettings) -> tuple[np.ndarray, list[Box]]:
    """All views of one image as one uint8 batch (n_views, size, size, 3), and their boxes."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    boxes = view_boxes(img.width, img.height, settings)
    batch = np.empty((len(boxes), spec.input_size, spec.input_size, 3), dtype=np.uint8)
    for i, box in enumerate(boxes):
        batch[i] = prepare_view(img, box, spec)
    return batch, boxes


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype(np.float32)


def combine_levels(vectors: np.ndarray, settings: LevelSettings) -> dict[str, Any]:
    """The runner's vectors of one image's views (in view_boxes order) -> the four levels."""
    if vectors.shape[0] != settings.n_views:
        raise ValueError(f"expected {settings.n_views} view vectors, got {vectors.shape[0]}")
    global_, focused, tiles = vectors[0], vectors[1], vectors[2:]
    tiles_mean = _unit(tiles.astype(np.float64).mean(axis=0))
    w_global, w_focused, w_tiles = settings.internvit_level_weights
    combined = _unit(w_global * global_.astype(np.float64) + w_focused * focused + w_tiles * tiles_mean)
    return {"global": global_, "focused": focused, "tiles": tiles, "combined": combined}
