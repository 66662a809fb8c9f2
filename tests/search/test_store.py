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
    np.testing.assert_array_equal(a.vector, ix.store.stored_vectors(vector_for("a"))[0])
    assert b.metadata is None and missing is None
    assert ix.delete(["a", "nope", "a"]) == (["a"], ["nope"])
    assert ix.get(["a"]) == [None] and ix.count == 1


def test_upsert_replaces_and_the_last_wins(ix):
    ix.upsert(["a"], vectors_for(["a"]), [{"v": 1}])
    ix.upsert(["a", "b", "a"], vectors_for(["x", "b", "y"]), [{"v": 2}, None, {"v": 3}])
    (item,) = ix.get(["a"], with_vectors=True)
    assert item.metadata == {"v": 3} and ix.count == 2
    np.testing.assert_array_equal(item.vector, ix.store.stored_vectors(vector_for("y"))[0])


def test_iterate_yields_every_item_once(ix):
    keys = [f"k{i}" for i in range(25)]
    ix.upsert(keys, vectors_for(keys), [{"i": i} for i in range(25)])
    ix.delete(["k3"])
    seen = [it for batch in ix.store.iterate(batch=7) for it in batch]
    assert sorted(it.key for it in seen) == sorted(set(keys) - {"k3"})
    for it in seen:
        np.testing.assert_array_equal(it.vector, ix.store.stored_vectors(vector_for(it.key))[0])
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
    assert abs(np.linalg.norm(item.vector) - 1) < 1e-3  # float16 on disk (SQLite): within 1e-3
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
    stats = store.stats()
    assert (stats["rows"], stats["tombstones"], store.count) == (4, 2, 2)  # ids 0 and 1 are dead for good
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


def test_a_damaged_index_is_refused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.close()
    vectors = tmp_path / "ix" / "vectors.f16"
    data = vectors.read_bytes()
    vectors.write_bytes(data[: len(data) // 2])  # a committed row is missing
    with pytest.raises(CorruptIndex, match="shorter than the database"):
        open_store(tmp_path, "ix", BINDING)
    vectors.write_bytes(data[len(data) // 2 :] + data[: len(data) // 2])  # rows swapped: each key meets another's vector
    with pytest.raises(CorruptIndex, match="does not match its checksum"):
        open_store(tmp_path, "ix", BINDING)
    vectors.unlink()
    with pytest.raises(CorruptIndex, match="missing"):
        open_store(tmp_path, "ix", BINDING)
    (tmp_path / "ix" / DB_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(CorruptIndex, match="unreadable"):
        open_store(tmp_path, "ix", BINDING)


def test_check_finds_misalignment(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    keys = [f"k{i}" for i in range(3000)]
    store.upsert(keys, vectors_for(keys))
    assert store.check().ok
    row = store.file.row_bytes
    with open(store.file.path, "r+b") as f:  # the row of k5 (id 5) now holds k6's vector
        f.seek(6 * row)
        other = f.read(row)
        f.seek(5 * row)
        f.write(other)
    report = store.check()
    assert not report.ok and "'k5' (id 5) does not match its checksum" in report.problems[0]
    store.conn.execute("DELETE FROM items WHERE key = 'k7'")  # the database and the memory disagree
    assert any("database holds 2999" in p for p in store.check().problems)
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


def test_punching_dead_rows_spares_the_live_and_the_newer(tmp_path):
    from search.vector_file import VectorFile

    vf = VectorFile(tmp_path / "v.f16", 512, "float16", 0, create=True)  # 1 KiB rows: 4 per 4 KiB block
    rows = np.random.default_rng(0).standard_normal((64, 512)).astype(np.float32)
    vf.write(0, rows)
    vf.sync()
    vf.publish(64)
    alive = np.zeros(64, bool)
    alive[20:24] = True  # live in the middle; 48..63: "dead" in a stale liveness array, but past `upto`
    before = vf.disk_bytes()
    assert vf.punch(alive, upto=48) == 44 * 1024  # ids 0-19 and 24-47: 11 whole blocks
    assert vf.disk_bytes() == before - 44 * 1024
    kept = vf.read(0, 64).astype(np.float32)
    stored = rows.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(kept[20:24], stored[20:24])
    np.testing.assert_array_equal(kept[48:], stored[48:])
    assert not kept[:20].any() and not kept[24:48].any()  # holes read as zeros
    vf.close()


def test_metadata_filters_narrowed_in_sql_keep_every_match(tmp_path):
    from search.queries import matches
    from search.sqlite_reads import where_ids

    metas = [
        {"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"}, {"a": None}, {"a": [1]}, {"a": {"b": 1}}, {}, None,
        {"a": 2**70}, {"a": -5, "b c": "x"}, {"a": "é\u00e9", "z": False}, {"a": 0.1}, {"a": [1, 2]},
    ]
    store = open_store(tmp_path, "ix", BINDING, create=True)
    keys = [f"k{i}" for i in range(len(metas))]
    ids = store.upsert(keys, vectors_for(keys), metas)
    wheres = [{"a": 1}, {"a": True}, {"a": "1"}, {"a": None}, {"a": [1]}, {"a": {"b": 1}}, {"a": 2**70}, {"b c": "x"},
              {"a": -5, "b c": "x"}, {"a": "é\u00e9"}, {"z": False}, {"a": 0.1}, {"missing": 1}, {"a": [1, 2]}]
    for where in wheres:
        expected = [ids[i] for i, m in enumerate(metas) if matches(m, where)]
        assert where_ids(store.conn, where).tolist() == expected, where
    store.close()
