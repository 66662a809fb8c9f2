"""image-embed migrate-index: SQLite -> PostgreSQL -> SQLite (thumbnails, labels and pHashes too), verified at the end; a rerun
continues; a target bound to another model is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli.migrate_index import main
from search.errors import ManifestMismatch
from search.manifest import Binding
from tests.postgres import fresh_database
from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, vectors_for
from tests.search.test_thumbnails import webp


def contents(place: str, name: str) -> tuple[dict, dict]:
    """(key -> vector, key -> everything else) of an index."""
    registry = open_indexes(place)
    try:
        ix = registry.get(name)
        hashes = dict(zip(*ix.store.phashes(include_hidden=True)))
        items = ix.get(sorted(ix.keys()), with_vectors=True)
        return {it.key: it.vector for it in items}, {
            it.key: (it.metadata, it.source, ix.thumbnail(it.key), it.rating, it.hidden, sorted(it.tags), hashes.get(it.key))
            for it in items
        }
    finally:
        registry.close()


def test_round_trip_between_back_ends(tmp_path, capsys):
    keys = [f"img/{i}.jpg" for i in range(57)]
    src = str(tmp_path / "a")
    registry = open_indexes(src)
    ix = registry.get("photos", BINDING, create=True)
    ix.upsert(
        keys, vectors_for(keys), [{"i": i, "tags": ["x"]} for i in range(57)], [f"https://h/{k}" for k in keys],
        [webp((i, 0, 0)) if i % 2 else None for i in range(57)],  # thumbnails travel too
        phashes=[(i * 0x9E3779B97F4A7C15) % 2**64 if i % 3 else None for i in range(57)],  # and perceptual hashes
    )
    ix.set_rating(keys[:26], 4)  # and the labels
    ix.tag_items(keys[10:30], add=["kept", "2021"])
    ix.tag_items(keys[25:27], remove=["2021"], hidden=True)
    registry.close()
    url = fresh_database()
    assert main(["--from", src, "--to", url, "--index", "photos", "--batch", "10", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["copied"], report["checked"]) == (True, 57, 57)
    assert main(["--from", src, "--to", url, "--index", "photos", "--quiet"]) == 0  # a rerun: same result
    capsys.readouterr()
    back = str(tmp_path / "b")
    assert main(["--from", url, "--to", back, "--index", "photos", "--to-index", "again", "--quiet"]) == 0
    (vectors, original), (vectors_pg, in_pg), (vectors_back, again) = (
        contents(src, "photos"), contents(url, "photos"), contents(back, "again"))
    assert again == original == in_pg
    for key, vec in vectors.items():  # SQLite keeps float16 (and PostgreSQL normalizes what it is sent)
        np.testing.assert_allclose(vectors_pg[key], vec, atol=5e-4)
        np.testing.assert_allclose(vectors_back[key], vec, atol=5e-4)
    assert original[keys[25]][3:] == (4, True, ["kept"], (25 * 0x9E3779B97F4A7C15) % 2**64)


def test_a_target_bound_to_another_model_is_refused(tmp_path):
    src, dst = str(tmp_path / "a"), str(tmp_path / "b")
    for place, binding in ((src, BINDING), (dst, Binding(model="other", dim=BINDING.dim))):
        registry = open_indexes(place)
        registry.get("ix", binding, create=True).upsert(["k"], vectors_for(["k"]))
        registry.close()
    with pytest.raises(ManifestMismatch):
        main(["--from", src, "--to", dst, "--index", "ix", "--quiet"])
