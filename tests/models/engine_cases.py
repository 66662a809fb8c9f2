"""Inputs and measures shared by the engine parity tests (tiny and bench weights)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")  # scikit-image's real photographs


def photos() -> list[Image.Image]:
    import skimage.data

    return [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]


def noise(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (240 + 40 * i, 320, 3), dtype=np.uint8)) for i in range(n)]


def parity_images() -> list[Image.Image]:
    """Five real photographs and three random images."""
    return photos() + noise(3)


def search_set() -> list[Image.Image]:
    """A small search set: each photograph, mirrored, cropped to each quarter-ish corner and
    to its centre, darkened (8 views of 5 photos), and 8 random images: 48 images."""
    out = []
    for img in photos():
        w, h = img.size
        out += [img, ImageOps.mirror(img), img.point(lambda v: v * 0.7), img.crop((w // 8, h // 8, w - w // 8, h - h // 8))]
        out += [img.crop(box) for box in ((0, 0, w * 2 // 3, h * 2 // 3), (w // 3, 0, w, h * 2 // 3),
                                         (0, h // 3, w * 2 // 3, h), (w // 3, h // 3, w, h))]
    return out + noise(8, seed=1)


def max_abs_and_min_cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Both are L2-normalized rows: cosine = row-wise dot product."""
    return float(np.abs(a - b).max()), float((a * b).sum(axis=1).min())


def neighbours_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> tuple[int, int]:
    """Top-k neighbours of every item among the others (cosine), by embeddings `a` and by `b`:
    (how many of the n * k neighbours both find, n * k)."""

    def top(x: np.ndarray) -> np.ndarray:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    ta, tb = top(a), top(b)
    shared = sum(len(set(ra) & set(rb)) for ra, rb in zip(ta, tb))
    return shared, ta.size
