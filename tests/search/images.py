"""Test images the tiny (random-weight) CLIP tells apart: 4x4 blocks of random colours.

Photos and noise all look alike to a random-weight model (cosine > 0.999 between
different images); these stay below 0.998 between any two, so a stored vector can be
matched back to its own image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import encode


def block_image(seed: int, size: int = 64) -> Image.Image:
    cells = (np.random.default_rng(seed).random((4, 4, 3)) * 255).astype(np.uint8)
    return Image.fromarray(cells).resize((size, size), Image.NEAREST)


def block_png(seed: int) -> bytes:
    return encode(block_image(seed), "PNG")
