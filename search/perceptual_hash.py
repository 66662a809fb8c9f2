"""The 64-bit perceptual hash (pHash) of an image, as the `imagehash` library computes it
(`imagehash.phash`): the image in grey, resized to 32 x 32 (Lanczos), its 2-D DCT, and one bit
per low frequency of the top-left 8 x 8: above their median or not. Re-encoding (JPEG
quality), resizing and small edits move a few bits; different photos differ in about half of
them (groups: phash_groups.py).

The DCT is computed here with numpy, as a 32 x 32 matrix product, not with imagehash itself:
imagehash computes it with SciPy, 150 MB that the lean image (docs/deploy.md) would carry for
this one transform. The hashes are imagehash's bit for bit (tests/search/test_perceptual_hash.py
compares them on photographs, noise, flat, tiny and mirror-symmetric images; imagehash is a
test dependency), except where SciPy's own coefficient is rounding noise (about 1e-12 where an
exact symmetry cancels a frequency: block patterns, images one or two pixels across): 0 here,
a coin toss there.

Computed at index time from the image already decoded for CLIP (gateway/images.py), and by
image-embed import-library from the original files, through the same safe decoder."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

REDUCE_ABOVE = 512  # a larger image is box-reduced to 256-511 px first
HASH_SIZE = 8  # bits per side: 64 bits
DCT_SIZE = 4 * HASH_SIZE  # imagehash's highfreq_factor 4


@functools.cache
def _dct_matrix(n: int) -> np.ndarray:
    """SciPy's DCT-II without normalization (scipy.fftpack.dct's default) as a matrix:
    y = D @ x, y[k] = 2 sum_i x[i] cos(pi k (2i + 1) / 2n)."""
    i = np.arange(n)
    return 2.0 * np.cos(np.pi * np.outer(i, 2 * i + 1) / (2 * n))


def phash_of(image: Image.Image) -> int:
    """The image's pHash as an unsigned 64-bit integer (bit 63 = the first DCT coefficient).
    A large image is first box-reduced (Image.reduce) to a side of 256-511 pixels: measured
    on 1920 x 1080 photos, 2.2 ms instead of 10.6 ms, the hash within 0-2 bits of imagehash's
    own on the full image."""
    side = max(image.size)
    if side > REDUCE_ABOVE:
        image = image.reduce(side // 256)
    pixels = np.asarray(image.convert("L").resize((DCT_SIZE, DCT_SIZE), Image.Resampling.LANCZOS), np.float64)
    d = _dct_matrix(DCT_SIZE)
    low = (d @ pixels @ d.T)[:HASH_SIZE, :HASH_SIZE]
    # What cancels exactly (every frequency but the first of a flat image) is 0 in SciPy's FFT
    # and rounding noise in a matrix product: made 0 here too, so the median and bits agree.
    low[np.abs(low) <= 1e-9 * max(float(np.abs(low).max()), 1.0)] = 0.0
    bits = low > np.median(low)
    return int(np.packbits(bits.ravel().astype(np.uint8)).view(">u8")[0])


def as_hex(phash: int | None) -> str | None:
    return None if phash is None else f"{phash:016x}"
