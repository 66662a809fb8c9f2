"""search/perceptual_hash.py computes imagehash's pHash without SciPy: the same 64 bits as
`imagehash.phash` (the reference, a test dependency) on photographs, noise of many sizes,
mirror-symmetric and flat images (where the DCT cancels exactly); where SciPy's own
coefficients are rounding noise (block patterns, images one or two pixels across), the other
bits; and the box-reduced hash of a large image stays within a few bits of the full-size one."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from search.perceptual_hash import REDUCE_ABOVE, as_hex, phash_of
from tests.conftest import photo

PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "moon", "page", "coins", "horse", "brick", "grass"]


def reference(image: Image.Image) -> int:
    """imagehash's own pHash, as the 64-bit integer phash_of returns."""
    return int(str(imagehash.phash(image, hash_size=8)), 16)


def rounding_noise(image: Image.Image) -> np.ndarray:
    """Which of the 64 bits come from a DCT coefficient that SciPy computes as rounding noise
    (an exact cancellation: a symmetry of the image), bit 63 first."""
    import scipy.fftpack

    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS))
    coefficients = scipy.fftpack.dct(scipy.fftpack.dct(grey, axis=0), axis=1)[:8, :8].ravel()
    return np.abs(coefficients) <= 1e-6 * np.abs(coefficients).max()


def bits(phash: int) -> np.ndarray:
    return np.unpackbits(np.array([phash], ">u8").view(np.uint8)).astype(bool)


def test_photographs_hash_as_imagehash_hashes_them():
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)())
        image = image.reduce(2) if max(image.size) > REDUCE_ABOVE else image  # phash_of would reduce it
        assert phash_of(image) == reference(image), name


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(0, 2**32 - 1), st.sampled_from(["RGB", "L", "RGBA"]))
def test_noise_of_any_size_hashes_as_imagehash(width, height, seed, mode):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, len(mode)), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode)
    if min(width, height) >= 3:
        assert phash_of(image) == reference(image)
    else:  # one or two pixels across, stretched to 32: symmetric along that axis
        defined = ~rounding_noise(image)
        assert (bits(phash_of(image))[defined] == bits(reference(image))[defined]).all()


@pytest.mark.parametrize("value", [0, 1, 127, 255])
def test_flat_images_hash_as_imagehash(value):
    """Every frequency but the first cancels exactly: SciPy gets 0 there, and so must we."""
    image = Image.new("RGB", (40, 30), (value, value, value))
    assert phash_of(image) == reference(image)


@pytest.mark.parametrize("seed", range(20))
def test_symmetric_images_hash_as_imagehash(seed):
    """Mirror symmetry cancels the odd frequencies exactly; stripes cancel a whole axis."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 256, (32, 16), dtype=np.uint8)
    stripes = np.tile(rng.integers(0, 256, (1, 32), dtype=np.uint8), (32, 1))
    for pixels in [np.hstack([half, half[:, ::-1]]), np.vstack([half.T, half.T[::-1]]), stripes, stripes.T]:
        image = Image.fromarray(pixels)
        assert phash_of(image) == reference(image)


@pytest.mark.parametrize("seed", range(20))
def test_where_scipy_gives_rounding_noise_only_those_bits_may_differ(seed):
    """A block pattern cancels frequencies that SciPy's FFT leaves as noise of about 1e-12,
    some above its median of 0 (bit 1), some not: imagehash's bits there are rounding; ours
    are 0. Every other bit is the same."""
    blocks = np.random.default_rng(seed).integers(0, 2, (4, 4))
    image = Image.fromarray(np.kron(blocks, np.ones((8, 8))).astype(np.uint8) * 255)
    noise = rounding_noise(image)
    ours, theirs = bits(phash_of(image)), bits(reference(image))
    assert noise.any() and (ours[~noise] == theirs[~noise]).all() and not ours[noise].any()


def test_a_large_image_is_reduced_first_within_a_few_bits():
    large = photo().resize((1920, 1080))
    assert bin(phash_of(large) ^ reference(large)).count("1") <= 2
    assert as_hex(phash_of(large)) == f"{phash_of(large):016x}" and as_hex(None) is None
