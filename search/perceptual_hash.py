"""The 64-bit perceptual hash (pHash) of an image, with the `imagehash` library: the image
in grey, resized to 32 x 32, its 2-D DCT, and one bit per low frequency of the top-left
8 x 8: above their median or not. Re-encoding (JPEG quality), resizing and small edits move
a few bits; different photos differ in about half of them (groups: phash_groups.py).

Computed at index time from the image already decoded for CLIP (gateway/images.py), and by
image-embed import-library from the original files, through the same safe decoder."""

from __future__ import annotations

import numpy as np
from PIL import Image


REDUCE_ABOVE = 512  # a larger image is box-reduced to 256-511 px first


def phash_of(image: Image.Image) -> int:
    """The image's pHash as an unsigned 64-bit integer (bit 63 = the first DCT coefficient).
    A large image is first box-reduced (Image.reduce) to a side of 256-511 pixels: measured
    on 1920 x 1080 photos, 2.2 ms instead of 10.6 ms, the hash within 0-2 bits of imagehash's
    own on the full image."""
    import imagehash

    side = max(image.size)
    if side > REDUCE_ABOVE:
        image = image.reduce(side // 256)
    bits = imagehash.phash(image, hash_size=8).hash.ravel()
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def as_hex(phash: int | None) -> str | None:
    return None if phash is None else f"{phash:016x}"
