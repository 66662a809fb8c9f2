"""Detections on the wire and the "most prominent" rules. numpy only: the gateway imports it.

Detectors (the person and face runners) see each image letterboxed on a fixed square
canvas (`models.preprocess.letterbox`) and answer, per image, a float32 array of
`MAX_DETECTIONS` rows `[xmin, ymin, xmax, ymax, score]` in canvas pixels, best score first,
zero rows as padding. The gateway maps the rows back to image pixels (`from_canvas`) and
picks one box with the rules below.

Most prominent person: among person boxes with score >= MIN_PERSON_SCORE, the one with the
largest area x score (a big, confident figure beats a small or doubtful one); ties go to
the higher score, then to the earlier row.

Most prominent face: among faces with probability >= MIN_FACE_PROBABILITY, the largest
area (MTCNN's own `select_largest` rule); ties go to the higher probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .preprocess import letterbox_size
from .specs import Box

MAX_DETECTIONS = 32  # rows per image in a detector's answer
MIN_PERSON_SCORE = 0.5
MIN_FACE_PROBABILITY = 0.9



@dataclass(frozen=True)
class Detection:
    box: Box
    score: float

    @property
    def area(self) -> int:
        xmin, ymin, xmax, ymax = self.box
        return (xmax - xmin) * (ymax - ymin)


def pack(boxes: np.ndarray, scores: np.ndarray, rows: int = MAX_DETECTIONS) -> np.ndarray:
    """(m, 4) boxes and (m,) scores -> the (rows, 5) wire form, best first, zero-padded."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")[:rows]
    out = np.zeros((rows, 5), dtype=np.float32)
    out[: len(order), :4] = boxes[order]
    out[: len(order), 4] = scores[order]
    return out


def from_canvas(
    rows: np.ndarray, image_size: tuple[int, int], canvas: int, offset: tuple[int, int] = (0, 0)
) -> list[Detection]:
    """Wire rows of one image -> detections in image pixels.

    `image_size` is the (width, height) of what was letterboxed; `offset` is where that
    region sits in the full image (a person crop searched for faces). Boxes are rounded to
    whole pixels, clipped to the region, and dropped when nothing is left of them.
    """
    width, height = image_size
    new_w, new_h = letterbox_size(width, height, canvas)
    sx, sy = width / new_w, height / new_h
    dx, dy = offset
    found = []
    for xmin, ymin, xmax, ymax, score in np.asarray(rows, dtype=np.float64).reshape(-1, 5):
        if not score > 0:  # padding (and NaN)
            continue
        x0 = int(np.clip(round(xmin * sx), 0, width))
        y0 = int(np.clip(round(ymin * sy), 0, height))
        x1 = int(np.clip(round(xmax * sx), 0, width))
        y1 = int(np.clip(round(ymax * sy), 0, height))
        if x1 > x0 and y1 > y0:
            found.append(Detection(box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), score=float(score)))
    return found


def prominent_person(detections: Sequence[Detection], min_score: float = MIN_PERSON_SCORE) -> Detection | None:
    candidates = [d for d in detections if d.score >= min_score]
    if not candidates:
        return None
    # max() keeps the first of equal keys: ties go to the earlier (higher-scored) row.
    return max(candidates, key=lambda d: (d.area * d.score, d.score))


def prominent_face(detections: Sequence[Detection], min_probability: float = MIN_FACE_PROBABILITY) -> Detection | None:
    candidates = [d for d in detections if d.score >= min_probability]
    if not candidates:
        return None
    return max(candidates, key=lambda d: (d.area, d.score))
