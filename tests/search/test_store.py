"""The storage interface on both back ends: upsert, delete, get, iterate, count, restart,
binding, validation, drop; then what only the embedded SQLite store has (one owner per
index, ids never reused, a damaged file refused, memory checked against the database)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from search.errors import CorruptIndex, IndexBusy, IndexNotFound, InvalidItem, ManifestMismatch
from search.manifest import Binding
from search.sqlite_store import DB_FILE, open_store
from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, DIM, vector_for, vectors_for


@pytest.fixture()
def registry(place):
    cat = open_indexes(place)
    yield cat
    cat.close()


@pytest.fixture()
def ix(registry):
    return registry.get("ix", BINDING, create=True)


def state(ix) -> dict:
    """key -> (vector, metadata, source) of every live item."""
    return {it.key: (np.round(it.vector, 6).tolist(), it.metadata, it.source) for it in ix.get(ix.keys(), with_vectors=True)}


def test_upsert_get_delete(ix):
    ix.upsert(["a", "b"], vectors_for(["a", "b"]), [{"n": 1}, None], ["https://x/a.jpg", None])
    a, b, missing = ix.get(["a", "b", "zzz"], with_vectors=True)
    assert (a.key, a.metadata, a.source) == ("a", {"n": 1}, "https://x/a.jpg")
    np.testing.assert_allclose(a.vector, vector_for("a"), atol=1e-7)
    assert b.metadata is None and missing is None
    assert ix.delete(["a", "nope", "a"]) == (["a"], ["nope"])
    assert ix.get(["a"]) == [None] and ix.count == 1


def test_upsert_replaces_and_the_last_wins(ix):
    ix.upsert(["a"], vectors_for(["a"]), [{"v": 1}])
    ix.upsert(["a", "b", "a"], vectors_for(["x", "b", "y"]), [{"v": 2}, None, {"v": 3}])
    (item,) = ix.get(["a"], with_vectors=True)
    assert item.metadata == {"v": 3} and ix.count == 2
    np.testing.assert_allclose(item.vector, vector_for("y"), atol=1e-7)


def test_iterate_yields_every_item_once(ix):
    keys = [f"k{i}" for i in range(25)]
    ix.upsert(keys, vectors_for(keys), [{"i": i} for i in range(25)])
    ix.delete(["k3"])
    seen = [it for batch in ix.store.iterate(batch=7) for it in batch]
    assert sorted(it.key for it in seen) == sorted(set(keys) - {"k3"})
    for it in seen:
        np.testing.assert_allclose(it.vector, vector_for(it.key), atol=1e-6)
        assert it.metadata == {"i": int(it.key[1:])}


def test_restart_reloads_everything(place):
    cat = open_indexes(place)
    ix = cat.get("ix", BINDING, create=True)
    keys = [f"k{i}" for i in range(20)]
    ix.upsert(keys, vectors_for(keys), [{"i": i} for i in range(20)])
    ix.delete(["k3", "k7"])
    ix.upsert(["k5"], vectors_for(["new"]), [{"i": "new"}])
    before = state(ix)
    cat.close()
    cat = open_indexes(place)
    assert cat.names() == ["ix"] and state(cat.get("ix")) == before
    cat.close()


@pytest.mark.parametrize(
    "other",
    [
        Binding(model="another-model:1", dim=DIM),
        Binding(model=BINDING.model, dim=DIM + 1),
        Binding(model=BINDING.model, dim=DIM, normalized=False),
    ],
)
def test_a_binding_mismatch_is_refused(registry, ix, other):
    with pytest.raises(ManifestMismatch) as err:
        registry.get("ix", other, create=True)
    assert BINDING.describe() in err.value.detail and other.describe() in err.value.detail


def test_unknown_index_and_bad_names(registry):
    with pytest.raises(IndexNotFound):
        registry.get("nothing")
    for bad in ("../x", "", ".hidden", "a/b", "x" * 65, "a;drop"):
        with pytest.raises(InvalidItem):
            registry.get(bad, BINDING, create=True)


@pytest.mark.parametrize(
    "vectors",
    [np.zeros((1, DIM)), np.full((1, DIM), np.nan), np.ones((1, DIM + 1)), np.ones((2, DIM))],
)
def test_bad_vectors_are_refused(ix, vectors):
    with pytest.raises(InvalidItem):
        ix.upsert(["a"], vectors)
    assert ix.count == 0


@pytest.mark.parametrize("key", ["", None, 5, "x" * 1025, "a\x00b"])
def test_bad_keys_are_refused(ix, key):
    with pytest.raises(InvalidItem):
        ix.upsert([key], vectors_for(["a"]))


@pytest.mark.parametrize("meta", [[1, 2], "text", {"x": float("nan")}, {"x": object()}, {"x": "y" * 20_000}])
def test_bad_metadata_is_refused(ix, meta):
    with pytest.raises(InvalidItem):
        ix.upsert(["a"], vectors_for(["a"]), [meta])


def test_vectors_are_normalized(ix):
    ix.upsert(["a"], vector_for("a")[None] * 7.5)
    (item,) = ix.get(["a"], with_vectors=True)
    assert abs(np.linalg.norm(item.vector) - 1) < 1e-6
    assert ix.check().ok


def test_stats(ix):
    ix.upsert(["a", "b"], vectors_for(["a", "b"]))
    ix.delete(["a"])
    stats = ix.stats()
    assert stats["count"] == 1 and stats["dim"] == DIM and stats["model"] == BINDING.model
    assert stats["bytes_on_disk"] > 0 and set(stats["last_snapshot"]) == {"lsn", "at", "age_s"}
    assert stats["backend"] in ("sqlite", "postgresql")


def test_drop_removes_the_index_and_its_data(registry, ix):
    ix.upsert(["a"], vectors_for(["a"]))
    assert registry.drop("ix") and not registry.drop("ix")
    assert registry.names() == []
    with pytest.raises(IndexNotFound):
        registry.get("ix")
    fresh = registry.get("ix", BINDING, create=True)  # the name can be used again, empty
    assert fresh.count == 0


# -- the embedded store only -------------------------------------------------------------------
def test_ids_are_never_reused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    assert store.upsert(["a", "b"], vectors_for(["a", "b"])) == [0, 1]
    store.delete(["b"])  # the highest id is gone from the live rows
    store.close()
    store = open_store(tmp_path, "ix", BINDING)
    assert store.upsert(["c"], vectors_for(["c"])) == [2]
    assert store.upsert(["a"], vectors_for(["a"])) == [3]  # a replaced item gets a new id
    assert store.table.n == 3 and store.count == 2  # the old row is a tombstone in memory
    store.close()


def test_one_owner_per_index(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    with pytest.raises(IndexBusy, match="another process"):
        open_store(tmp_path, "ix", BINDING)
    store.close()
    open_store(tmp_path, "ix", BINDING).close()


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_a_damaged_database_is_refused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.close()
    with sqlite3.connect(tmp_path / "ix" / DB_FILE) as conn:
        conn.execute("UPDATE items SET vector = x'00' WHERE key = 'a'")  # a 1-byte vector
    with pytest.raises(CorruptIndex, match="float32"):
        open_store(tmp_path, "ix", BINDING)
    (tmp_path / "ix" / DB_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(CorruptIndex, match="unreadable"):
        open_store(tmp_path, "ix", BINDING)


def test_check_finds_misalignment(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    assert store.check().ok
    store.table.keys[0] = "b"  # a row that names another key
    report = store.check()
    assert not report.ok and "'a'" in report.problems[0]
    store.conn.execute("DELETE FROM items WHERE key = 'a'")  # the database and the memory disagree
    assert any("database holds 1" in p for p in store.check().problems)
    store.close()


def test_a_failed_write_is_not_acknowledged(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a"], vectors_for(["a"]))
    store.conn.execute("PRAGMA query_only = ON")  # every write now fails inside SQLite
    with pytest.raises(CorruptIndex, match="not stored"):
        store.upsert(["b"], vectors_for(["b"]))
    with pytest.raises(CorruptIndex):
        store.delete(["a"])
    assert store.keys() == ["a"] and store.check().ok  # the memory did not move either
    store.close()
