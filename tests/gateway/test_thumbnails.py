"""Thumbnails made at index time: WebP, shrunk to fit (never enlarged), within the store's bound."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from config.sections import ThumbnailSettings
from gateway.thumbnails import make_thumbnail
from search.items import MAX_THUMBNAIL_BYTES, check_thumbnail
from tests.conftest import noise_image, photo


def test_fits_the_size_keeps_the_shape_and_is_webp():
    wide = photo().resize((800, 400))
    data = make_thumbnail(wide, 256)
    assert check_thumbnail(data) == data  # what the store accepts
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP" and img.size == (256, 128)
        # the same picture: close to the original shrunk the same way
        diff = np.abs(np.asarray(img.convert("RGB"), float) - np.asarray(wide.resize((256, 128)), float)).mean()
        assert diff < 12


def test_small_images_are_not_enlarged():
    with Image.open(io.BytesIO(make_thumbnail(photo().resize((40, 30)), 256))) as img:
        assert img.size == (40, 30)


def test_noise_stays_within_the_bound():
    data = make_thumbnail(noise_image(512, 512), 512)  # the worst case for a codec, at the largest size: made smaller
    assert data is not None and len(data) <= MAX_THUMBNAIL_BYTES


def test_settings(monkeypatch):
    from config.settings import load_settings

    monkeypatch.setenv("IMAGE_EMBED_THUMBNAILS", "0")
    monkeypatch.setenv("IMAGE_EMBED_THUMBNAIL_SIZE", "128")
    settings = load_settings()
    assert (settings.thumbnails, settings.thumbnail_size) == (False, 128)
    assert ThumbnailSettings(thumbnails="0", thumbnail_size=128) == ThumbnailSettings(thumbnails=False, thumbnail_size=128)
