"""Thumbnails on both back ends: stored with the item in one write, replaced or removed with
it, refused when they are not small WebP images, kept across a reopen."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from search.errors import InvalidItem, KeyNotFound
from search.items import MAX_THUMBNAIL_BYTES
from search.manifest import Binding
from tests.search.backends import open_indexes

DIM = 8
BINDING = Binding(model="m", dim=DIM)


def webp(color: tuple[int, int, int], side: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buf, format="WEBP")
    return buf.getvalue()


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_stored_replaced_deleted_and_reopened(place):
    red, blue = webp((255, 0, 0)), webp((0, 0, 255))
    registry = open_indexes(place)
    try:
        ix = registry.get("ix", BINDING, create=True)
        ix.upsert(["a", "b", "c"], vectors(3), thumbnails=[red, None, blue])
        assert ix.thumbnail("a") == red and ix.thumbnail("b") is None and ix.thumbnail("c") == blue
        with pytest.raises(KeyNotFound):
            ix.thumbnail("nope")
        ix.upsert(["a"], vectors(1, 1))  # replaced without one: the old thumbnail is gone with the old item
        assert ix.thumbnail("a") is None
        ix.upsert(["b"], vectors(1, 2), thumbnails=[red])
        ix.delete(["c"])
        with pytest.raises(KeyNotFound):
            ix.thumbnail("c")
        ix.upsert(["c"], vectors(1, 3))  # the same key again: the deleted thumbnail does not come back
        assert ix.thumbnail("c") is None
        assert ix.check().ok
    finally:
        registry.close()
    registry = open_indexes(place)
    try:
        ix = registry.get("ix")
        assert ix.thumbnail("b") == red and ix.thumbnail("a") is None
        assert ix.check().ok
    finally:
        registry.close()


@pytest.mark.parametrize(
    "bad, why",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "WebP"),
        (b"RIFF" + bytes(4) + b"WEBP" + bytes(MAX_THUMBNAIL_BYTES), "limit"),
        ("not bytes", "bytes"),
    ],
)
def test_a_bad_thumbnail_refuses_the_whole_batch(place, bad, why):
    registry = open_indexes(place)
    try:
        ix = registry.get("ix", BINDING, create=True)
        with pytest.raises(InvalidItem, match=why):
            ix.upsert(["a", "b"], vectors(2), thumbnails=[webp((1, 2, 3)), bad])
        with pytest.raises(InvalidItem, match="2 thumbnails for 1 items"):
            ix.upsert(["a"], vectors(1), thumbnails=[None, None])
        assert ix.count == 0
    finally:
        registry.close()


def test_postgres_tables_made_before_thumbnails_gain_the_column():
    from tests.search.backends import new_place

    place = new_place("postgresql", None)
    registry = open_indexes(place)
    ix = registry.get("old", BINDING, create=True)
    ix.upsert(["a"], vectors(1))
    with registry.db.connection() as conn:
        conn.execute(f"ALTER TABLE {ix.store.table} DROP COLUMN thumbnail")
    registry.close()
    registry = open_indexes(place)  # a new process: prepares the database again
    try:
        ix = registry.get("old")
        assert ix.thumbnail("a") is None
        ix.upsert(["b"], vectors(1, 1), thumbnails=[webp((0, 255, 0))])
        assert ix.thumbnail("b").startswith(b"RIFF")
    finally:
        registry.close()
