"""The write-ahead log: records round-trip, a torn or corrupt tail is skipped and cut off
before new appends, and a gap in the sequence is refused."""

from __future__ import annotations

import numpy as np
import pytest

from search.errors import CorruptIndex
from search.store import open_store
from search.wal import DELETE, UPSERT, Record, decode, encode, list_segments, read_segment
from tests.search.helpers import BINDING, vectors_for


def test_records_round_trip():
    vec = np.arange(4, dtype=np.float32)
    for rec in (
        Record(UPSERT, 7, 3, "photos/été/1.jpg", vec, {"a": [1, 2], "b": None}, "https://x/1.jpg"),
        Record(UPSERT, 8, 4, "k", vec, None, None),
        Record(DELETE, 9, 3, "photos/été/1.jpg"),
    ):
        frame = encode(rec)
        back = decode(frame[8:])
        assert (back.op, back.lsn, back.id, back.key, back.metadata, back.source) == (
            rec.op, rec.lsn, rec.id, rec.key, rec.metadata, rec.source
        )
        if rec.vector is None:
            assert back.vector is None
        else:
            np.testing.assert_array_equal(back.vector, rec.vector)


def _fill(tmp_path, n=5):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    keys = [f"k{i}" for i in range(n)]
    for key in keys:  # one record per upsert
        store.upsert([key], vectors_for([key]))
    store.close(snapshot=False)
    (segment,) = [p for _, p in list_segments(tmp_path / "ix")]
    return keys, segment


def _record_offsets(segment):
    records, scan = read_segment(segment)
    assert scan.torn is None
    sizes = [len(encode(r)) for r in records]
    return np.cumsum([8] + sizes)  # 8: the segment magic


def test_every_torn_tail_is_skipped_and_cut_off(tmp_path):
    keys, segment = _fill(tmp_path)
    full = segment.read_bytes()
    offsets = _record_offsets(segment)
    last_start, end = int(offsets[-2]), int(offsets[-1])
    for cut in range(last_start + 1, end):  # every byte boundary inside the last record
        segment.write_bytes(full[:cut])
        store = open_store(tmp_path, "ix", BINDING)
        assert store.torn_tail is not None
        assert sorted(store.keys()) == keys[:-1]
        store.upsert(["after"], vectors_for(["after"]))  # appended after the cut, not after garbage
        store.close(snapshot=False)
        store = open_store(tmp_path, "ix", BINDING)
        assert sorted(store.keys()) == sorted(keys[:-1] + ["after"]) and store.torn_tail is None
        store.close(snapshot=False)


def test_garbage_after_the_last_record_is_skipped(tmp_path):
    keys, segment = _fill(tmp_path)
    with open(segment, "ab") as f:
        f.write(np.random.default_rng(0).bytes(300))
    store = open_store(tmp_path, "ix", BINDING)
    assert sorted(store.keys()) == keys and store.torn_tail
    store.upsert(["after"], vectors_for(["after"]))
    store.close(snapshot=False)
    records, scan = read_segment(segment)
    assert scan.torn is None  # the garbage was cut off, not left behind the new record
    assert [r.key for r in records] == keys + ["after"]


def test_a_bad_checksum_ends_the_log(tmp_path):
    keys, segment = _fill(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # inside the last record's vector
    segment.write_bytes(bytes(data))
    store = open_store(tmp_path, "ix", BINDING)
    assert sorted(store.keys()) == keys[:-1] and store.torn_tail == "CRC mismatch"
    store.close(snapshot=False)


def test_an_incomplete_segment_header_is_an_empty_segment(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.close(snapshot=False)
    (segment,) = [p for _, p in list_segments(tmp_path / "ix")]
    segment.write_bytes(segment.read_bytes()[:3])
    store = open_store(tmp_path, "ix", BINDING)
    store.upsert(["a"], vectors_for(["a"]))
    store.close(snapshot=False)
    assert open_store(tmp_path, "ix", BINDING).keys() == ["a"]


def test_a_gap_between_segments_is_refused(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.wal.rotate(store.table.lsn + 1)  # a second segment, as a snapshot would start
    store.upsert(["c"], vectors_for(["c"]))
    store.close(snapshot=False)
    first = list_segments(tmp_path / "ix")[0][1]
    first.write_bytes(first.read_bytes()[:-5])  # acknowledged record "b" lost before the next segment
    with pytest.raises(CorruptIndex, match="missing"):
        open_store(tmp_path, "ix", BINDING)


def test_a_foreign_file_is_not_a_log(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.close(snapshot=False)
    (segment,) = [p for _, p in list_segments(tmp_path / "ix")]
    segment.write_bytes(b"not a log at all, long enough")
    with pytest.raises(CorruptIndex, match="not a write-ahead log"):
        open_store(tmp_path, "ix", BINDING)
