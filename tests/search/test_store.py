"""The durable store: upsert, delete, get, restart and reload, snapshots, manifest binding,
one writer per index, validation and the alignment check."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import search.wal
from search.errors import CorruptIndex, IndexBusy, IndexNotFound, InvalidItem, ManifestMismatch
from search.manifest import Binding
from search.snapshot import snapshot_dirs
from search.store import StoreSettings, open_store
from search.wal import list_segments
from tests.search.helpers import BINDING, DIM, vector_for, vectors_for


@pytest.fixture()
def store(tmp_path):
    s = open_store(tmp_path, "ix", BINDING, create=True)
    yield s
    s.close(snapshot=False)


def state(store) -> dict:
    """key -> (vector, metadata, source) of every live item."""
    keys = store.keys()
    return {it.key: (it.vector.tolist(), it.metadata, it.source) for it in store.get(keys, with_vectors=True)}


def test_upsert_get_delete(store):
    ids = store.upsert(["a", "b"], vectors_for(["a", "b"]), [{"n": 1}, None], ["https://x/a.jpg", None])
    assert ids == [0, 1]
    a, b, missing = store.get(["a", "b", "zzz"], with_vectors=True)
    assert (a.key, a.id, a.metadata, a.source) == ("a", 0, {"n": 1}, "https://x/a.jpg")
    np.testing.assert_allclose(a.vector, vector_for("a"), atol=1e-7)
    assert b.metadata is None and missing is None
    assert store.delete(["a", "nope", "a"]) == (["a"], ["nope"])
    assert store.get(["a"]) == [None] and store.count == 1


def test_upsert_replaces_with_a_new_id(store):
    store.upsert(["a"], vectors_for(["a"]), [{"v": 1}])
    store.upsert(["a"], vectors_for(["other"]), [{"v": 2}])
    (item,) = store.get(["a"], with_vectors=True)
    assert item.id == 1 and item.metadata == {"v": 2}
    np.testing.assert_allclose(item.vector, vector_for("other"), atol=1e-7)
    assert store.count == 1 and store.table.n == 2  # the old row is a tombstone


def test_duplicate_keys_in_one_call_last_wins(store):
    store.upsert(["a", "a"], vectors_for(["x", "y"]), [{"i": 0}, {"i": 1}])
    (item,) = store.get(["a"], with_vectors=True)
    assert item.metadata == {"i": 1} and store.count == 1
    np.testing.assert_allclose(item.vector, vector_for("y"), atol=1e-7)


@pytest.mark.parametrize("snapshot", [False, True])
def test_restart_reloads_everything(tmp_path, snapshot):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert([f"k{i}" for i in range(20)], vectors_for([f"k{i}" for i in range(20)]), [{"i": i} for i in range(20)])
    store.delete(["k3", "k7"])
    store.upsert(["k5"], vectors_for(["new"]), [{"i": "new"}])
    before, next_id = state(store), store.table.next_id
    store.close(snapshot=snapshot)
    store = open_store(tmp_path, "ix", BINDING)
    assert state(store) == before and store.table.next_id == next_id
    assert store.replayed == (0 if snapshot else 23)
    store.close()


def test_snapshot_then_more_writes(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    first = store.snapshot()
    store.upsert(["c"], vectors_for(["c"]))
    store.delete(["a"])
    before = state(store)
    store.close(snapshot=False)
    assert [p for _, p in snapshot_dirs(tmp_path / "ix")] == [first]
    store = open_store(tmp_path, "ix", BINDING)
    assert state(store) == before and store.replayed == 2
    store.snapshot()
    assert len(snapshot_dirs(tmp_path / "ix")) == 1 and len(list_segments(tmp_path / "ix")) == 1
    store.close()


def test_ids_are_never_reused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.delete(["b"])  # the highest id is gone from the live rows
    store.close()  # snapshot holds only "a"
    store = open_store(tmp_path, "ix", BINDING)
    assert store.upsert(["c"], vectors_for(["c"])) == [2]
    store.close()


def test_a_crash_between_snapshot_steps(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.wal.rotate(store.table.lsn + 1)  # a snapshot started: new segment...
    store.upsert(["c"], vectors_for(["c"]))
    before = state(store)
    (tmp_path / "ix" / ".tmp-snapshot-00000000000000000002-1-1").mkdir()  # ... and died half-written
    store.close(snapshot=False)
    store = open_store(tmp_path, "ix", BINDING)
    assert state(store) == before
    assert not list((tmp_path / "ix").glob(".tmp-*"))  # cleaned at start-up
    store.close()


def test_old_segments_left_after_a_snapshot_are_harmless(tmp_path, monkeypatch):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.delete(["a"])
    monkeypatch.setattr("pathlib.Path.unlink", lambda self, missing_ok=False: None)  # died before cleanup
    store.snapshot()
    monkeypatch.undo()
    assert len(list_segments(tmp_path / "ix")) == 2
    store.upsert(["c"], vectors_for(["c"]))
    before = state(store)
    store.close(snapshot=False)
    store = open_store(tmp_path, "ix", BINDING)
    assert state(store) == before  # the old segment's records are in the snapshot: not applied twice
    store.close()


def test_a_corrupt_snapshot_is_refused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    path = store.snapshot()
    store.close(snapshot=False)
    data = bytearray((path / "vectors.npy").read_bytes())
    data[-1] ^= 0x01
    (path / "vectors.npy").write_bytes(bytes(data))
    with pytest.raises(CorruptIndex, match="checksum"):
        open_store(tmp_path, "ix", BINDING)


def test_a_truncated_snapshot_is_refused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    path = store.snapshot()
    store.close(snapshot=False)
    (path / "items.jsonl").write_bytes((path / "items.jsonl").read_bytes()[:-4])
    with pytest.raises(CorruptIndex):
        open_store(tmp_path, "ix", BINDING)


@pytest.mark.parametrize(
    "other",
    [
        Binding(model="another-model:1", dim=DIM),
        Binding(model=BINDING.model, dim=DIM + 1),
        Binding(model=BINDING.model, dim=DIM, normalized=False),
    ],
)
def test_a_manifest_mismatch_is_refused(tmp_path, other):
    open_store(tmp_path, "ix", BINDING, create=True).close()
    with pytest.raises(ManifestMismatch) as err:
        open_store(tmp_path, "ix", other)
    assert BINDING.describe() in err.value.detail and other.describe() in err.value.detail
    open_store(tmp_path, "ix", BINDING).close()  # the refusal released the lock


def test_unknown_index_and_bad_names(tmp_path):
    with pytest.raises(IndexNotFound):
        open_store(tmp_path, "nothing")
    for bad in ("../x", "", ".hidden", "a/b", "x" * 65):
        with pytest.raises(InvalidItem):
            open_store(tmp_path, bad, BINDING, create=True)


def test_one_writer_per_index(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    with pytest.raises(IndexBusy, match="another process"):
        open_store(tmp_path, "ix", BINDING)
    store.close()
    open_store(tmp_path, "ix", BINDING).close()


@pytest.mark.parametrize(
    "vectors",
    [np.zeros((1, DIM)), np.full((1, DIM), np.nan), np.ones((1, DIM + 1)), np.ones((2, DIM))],
)
def test_bad_vectors_are_refused(store, vectors):
    with pytest.raises(InvalidItem):
        store.upsert(["a"], vectors)
    assert store.count == 0 and store.table.lsn == 0


@pytest.mark.parametrize("key", ["", None, 5, "x" * 1025, "a\x00b"])
def test_bad_keys_are_refused(store, key):
    with pytest.raises(InvalidItem):
        store.upsert([key], vectors_for(["a"]))


@pytest.mark.parametrize("meta", [[1, 2], "text", {"x": float("nan")}, {"x": object()}, {"x": "y" * 20_000}])
def test_bad_metadata_is_refused(store, meta):
    with pytest.raises(InvalidItem):
        store.upsert(["a"], vectors_for(["a"]), [meta])


def test_vectors_are_normalized(store):
    store.upsert(["a"], vector_for("a")[None] * 7.5)
    (item,) = store.get(["a"], with_vectors=True)
    assert abs(np.linalg.norm(item.vector) - 1) < 1e-6


def test_check_finds_misalignment(store):
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    assert store.check().ok
    store.table.keys[0] = "b"  # a row that names another key
    report = store.check()
    assert not report.ok and "'a'" in report.problems[0]


def test_concurrent_writers_share_fsyncs(tmp_path, monkeypatch):
    calls = []
    real = search.wal._sync

    def slow_sync(fd):
        calls.append(fd)
        time.sleep(0.02)
        real(fd)

    monkeypatch.setattr(search.wal, "_sync", slow_sync)
    store = open_store(tmp_path, "ix", BINDING, create=True, settings=StoreSettings(snapshot_every=10**9))
    calls.clear()
    keys = [f"t{t}-{i}" for t in range(8) for i in range(10)]

    def writer(t):
        for i in range(10):
            store.upsert([f"t{t}-{i}"], vectors_for([f"t{t}-{i}"]))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.count == 80
    assert len(calls) < 80  # group commit: fewer fsyncs than acknowledged writes
    store.close(snapshot=False)
    store = open_store(tmp_path, "ix", BINDING)
    assert sorted(store.keys()) == sorted(keys)
    store.close()


def test_automatic_snapshot_trigger(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True, settings=StoreSettings(snapshot_every=3))
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    assert not store.needs_snapshot()
    store.upsert(["c"], vectors_for(["c"]))
    assert store.needs_snapshot()
    store.snapshot()
    assert not store.needs_snapshot()
    store.close()


def test_stats(store):
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.delete(["a"])
    stats = store.stats()
    assert stats["count"] == 1 and stats["tombstones"] == 1 and stats["dim"] == DIM
    assert stats["model"] == BINDING.model and stats["bytes_on_disk"] > 0
    assert stats["last_snapshot"]["lsn"] == 0 and stats["changes_since_snapshot"] == 3


def test_writes_are_acknowledged_only_after_an_fsync(store, monkeypatch):
    synced = []
    real = search.wal._sync

    def spy(fd):
        synced.append(store.wal.written_lsn)  # what this fsync makes durable
        real(fd)

    monkeypatch.setattr(search.wal, "_sync", spy)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    assert synced and synced[-1] == store.table.lsn == 2
    store.delete(["a"])
    assert synced[-1] == store.table.lsn == 3
