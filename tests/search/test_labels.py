"""Ratings, tags and hiding on both back ends: stored with the item, kept when its vector is
replaced, gone with it, surviving a reopen and a drop; browse pages and filters; search
filters applied before top_k and offset; bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from search.errors import InvalidItem, InvalidRating, TagNotFound
from search.labels import ItemLabels, LabelFilter
from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, vectors_for

KEYS = [f"photos/{i:02d}.jpg" for i in range(30)]


@pytest.fixture()
def index(place):
    registry = open_indexes(place)
    ix = registry.get("lib", BINDING, create=True)
    ix.upsert(KEYS, vectors_for(KEYS), [{"n": i} for i in range(30)])
    yield ix
    registry.close()


def keys_of(page) -> list[str]:
    return [it.key for it in page.items]


def tag_id(ix, name: str) -> int:
    return next(i for i, n, _ in ix.tags() if n == name)


def test_rate_tag_hide_and_browse(index):
    ix = index
    assert ix.set_rating(KEYS[:10], 4).updated == KEYS[:10]
    assert ix.set_rating([KEYS[3], "nope"], 5).missing == ["nope"]
    w = ix.tag_items(KEYS[5:15], add=["beach", "2021"])
    assert w.updated == KEYS[5:15] and w.missing == []
    ix.tag_items(KEYS[8:10], remove=["beach"], hidden=True)
    ix.tag_items(KEYS[0:2], remove=["never-made"])  # an unknown name to remove: nothing to do
    counts = {n: c for _, n, c in ix.tags()}
    assert counts == {"beach": 8, "2021": 10}

    page = ix.browse(LabelFilter(), 1, 7)
    assert page.total == 28 and keys_of(page) == [k for k in KEYS if k not in KEYS[8:10]][:7]  # by key; hidden left out
    assert keys_of(ix.browse(LabelFilter(), 4, 7)) == [k for k in KEYS if k not in KEYS[8:10]][21:28]
    assert ix.browse(LabelFilter(), 5, 7).items == []
    assert ix.browse(LabelFilter(include_hidden=True), 1, 200).total == 30

    rated = ix.browse(LabelFilter.of(min_rating=4), 1, 200)
    assert keys_of(rated) == [k for k in KEYS[:10] if k not in KEYS[8:10]]
    assert [it.rating for it in rated.items if it.key == KEYS[3]] == [5]
    both = LabelFilter.of(tag_ids=[tag_id(ix, "beach"), tag_id(ix, "2021")])
    assert keys_of(ix.browse(both, 1, 200)) == KEYS[5:8] + KEYS[10:15]
    mixed = ix.browse(LabelFilter.of(min_rating=4, tag_ids=[tag_id(ix, "2021")], include_hidden=True), 1, 200)
    assert keys_of(mixed) == KEYS[5:10]
    item = next(it for it in mixed.items if it.key == KEYS[8])
    assert item.hidden and item.rating == 4 and [n for _, n in item.tags] == ["2021"] and item.metadata == {"n": 8}

    got = ix.get([KEYS[5], KEYS[8]])
    assert (got[0].rating, got[0].hidden, sorted(got[0].tags)) == (4, False, ["2021", "beach"])
    assert (got[1].rating, got[1].hidden, got[1].tags) == (4, True, ["2021"])


def test_bad_input_is_refused(index):
    ix = index
    for rating in (7, -1, True, 2.5, "3"):
        with pytest.raises(InvalidRating):
            ix.set_rating([KEYS[0]], rating)
    with pytest.raises(TagNotFound):
        ix.browse(LabelFilter.of(tag_ids=[12345]), 1, 10)
    with pytest.raises(TagNotFound):
        ix.search(vectors_for(KEYS[:1]), 5, labels=LabelFilter.of(tag_ids=[12345]))
    for bad in ("", " ", "a\nb", "x" * 65, 5):
        with pytest.raises(InvalidItem):
            ix.tag_items([KEYS[0]], add=[bad])
    with pytest.raises(InvalidItem):
        ix.browse(LabelFilter(), 1, 201)
    with pytest.raises(InvalidItem):
        ix.browse(LabelFilter(), 0, 10)
    assert ix.tags() == [] and ix.get([KEYS[0]])[0].rating == 0  # nothing was written


def test_labels_stay_with_the_key(place):
    registry = open_indexes(place)
    ix = registry.get("lib", BINDING, create=True)
    ix.upsert(KEYS[:4], vectors_for(KEYS[:4]))
    ix.set_rating(KEYS[:2], 3)
    ix.tag_items(KEYS[:2], add=["keep"], hidden=True)
    ix.upsert(KEYS[:1], vectors_for(["another image"]))  # re-indexed: a new vector, the same labels
    ix.delete(KEYS[1:2])
    ix.upsert(KEYS[1:2], vectors_for(KEYS[1:2]))  # deleted, then indexed anew: no labels
    # labels written with the items: exactly these tags, the rest unchanged
    ix.upsert(KEYS[2:4], vectors_for(KEYS[2:4]), labels=[ItemLabels(rating=5, tags=("a", "b")), ItemLabels(hidden=True)])
    ix.upsert(KEYS[2:3], vectors_for(KEYS[2:3]), labels=[ItemLabels(tags=("b",))])
    registry.close()

    registry = open_indexes(place)  # a restart
    try:
        ix = registry.get("lib")
        a, b, c, d = ix.get(KEYS[:4])
        assert (a.rating, a.hidden, a.tags) == (3, True, ["keep"])
        assert (b.rating, b.hidden, b.tags) == (0, False, [])
        assert (c.rating, c.hidden, c.tags) == (5, False, ["b"])
        assert (d.rating, d.hidden, d.tags) == (0, True, [])
        assert {n: cnt for _, n, cnt in ix.tags()} == {"keep": 1, "a": 0, "b": 1}
        assert ix.check().ok, ix.check().problems
        assert registry.drop("lib")
        fresh = registry.get("lib", BINDING, create=True)
        fresh.upsert(KEYS[:1], vectors_for(KEYS[:1]))
        assert fresh.tags() == [] and fresh.get(KEYS[:1])[0].rating == 0 and not fresh.get(KEYS[:1])[0].hidden
    finally:
        registry.close()


def test_search_filters_apply_before_top_k_and_offset(index):
    ix = index
    query = vectors_for(KEYS[:1])
    ranking = [h.key for h in ix.search(query, 30)[0]]
    ix.tag_items(ranking[:5], hidden=True)
    assert [h.key for h in ix.search(query, 5)[0]] == ranking[5:10]  # five hits, none hidden
    assert [h.key for h in ix.search(query, 5, offset=5)[0]] == ranking[10:15]
    assert [h.key for h in ix.search(query, 5, labels=LabelFilter(include_hidden=True))[0]] == ranking[:5]

    rated = ranking[::3]  # some of them hidden
    ix.set_rating(rated, 2)
    ix.set_rating(rated[:2], 4)
    want = [k for k in ranking if k in rated and k not in ranking[:5]]
    assert [h.key for h in ix.search(query, 4, labels=LabelFilter.of(min_rating=2))[0]] == want[:4]
    assert [h.key for h in ix.search(query, 4, offset=2, labels=LabelFilter.of(min_rating=2))[0]] == want[2:6]
    ix.tag_items(ranking[10:20], add=["t"])
    tagged = LabelFilter.of(min_rating=2, tag_ids=[tag_id(ix, "t")])
    assert [h.key for h in ix.search(query, 10, labels=tagged)[0]] == [k for k in ranking[10:20] if k in rated]
    similar = ix.similar(ranking[0], 3, labels=LabelFilter.of(min_rating=2))
    assert [h.key for h in similar] == [k for k in want if k != ranking[0]][:3]


def test_phash_duplicates_and_hidden(index):
    ix = index
    base = 0x0F0F_F0F0_1234_ABCD
    hashes = [base, base ^ 0b11111, base ^ (1 << 63), base ^ 0b111111 << 20, 0xFFFF_0000_FFFF_0000]
    ix.upsert(KEYS[:5], vectors_for(KEYS[:5]), phashes=[f"{h:016x}" for h in hashes[:4]] + [hashes[4]])
    found = ix.duplicates("phash", max_distance=5)
    assert [[it["key"] for it in g["items"]] for g in found["groups"]] == [KEYS[:3]]
    assert [it["distance"] for it in found["groups"][0]["items"]] == [0, 5, 1]
    assert found["hashed"] == 5
    assert [[it["key"] for it in g["items"]] for g in ix.duplicates("phash", max_distance=6)["groups"]] == [KEYS[:4]]
    ix.tag_items(KEYS[1:3], hidden=True)  # "hide all but one": the group is gone
    assert ix.duplicates("phash")["groups"] == []
    assert len(ix.duplicates("phash", include_hidden=True)["groups"]) == 1
    with pytest.raises(InvalidItem):
        ix.duplicates("phash", max_distance=17)
    with pytest.raises(InvalidItem):
        ix.duplicates("md5")
    with pytest.raises(InvalidItem):
        ix.upsert(KEYS[:1], vectors_for(KEYS[:1]), phashes=["not-hex"])


def test_the_check_compares_labels_with_the_database(tmp_path):
    registry = open_indexes(str(tmp_path))
    ix = registry.get("lib", BINDING, create=True)
    ix.upsert(KEYS[:3], vectors_for(KEYS[:3]))
    ix.tag_items(KEYS[:2], add=["x"])
    assert ix.check().ok
    conn = ix.store.conn
    conn.execute("INSERT INTO item_tags (key, tag_id) VALUES ('no such item', 1)")
    conn.execute("UPDATE items SET rating = 3 WHERE key = ?", (KEYS[2],))  # behind the mirror's back
    problems = ix.check().problems
    assert any("belong to no item" in p for p in problems) and any("differ from the database" in p for p in problems)
    registry.close()
