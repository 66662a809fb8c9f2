"""An index written in the previous layout (format 2: every vector a float32 BLOB in `items`,
read into memory at start-up) opens: it is converted once, at its first open, to the vector
file (search/sqlite_legacy.py), and keeps its items, vectors, labels, thumbnails and hashes.
The index is made here with that layout's schema, as the code of that time wrote it."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest

from search import sqlite_legacy
from search.errors import CorruptIndex, InsufficientStorage
from search.labels import LabelFilter
from search.sqlite_store import open_store
from search.vector_file import VectorFile
from tests.search.helpers import BINDING, DIM, vector_for

OLD_SCHEMA = """
CREATE TABLE binding (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    format INTEGER NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL,
    metric TEXT NOT NULL, normalized INTEGER NOT NULL, created_at REAL NOT NULL,
    next_id INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, vector BLOB NOT NULL, metadata TEXT, source TEXT,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)), phash INTEGER
);
CREATE TABLE thumbnails (key TEXT PRIMARY KEY, webp BLOB NOT NULL);
CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE item_tags (key TEXT NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (key, tag_id)) WITHOUT ROWID;
CREATE INDEX item_tags_by_tag ON item_tags (tag_id, key);
CREATE INDEX items_browse ON items (key, hidden, rating);
"""
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8)
N = 40


def write_old_index(folder) -> dict[str, int]:
    """Format 2 with gaps: ids 0..59 handed out, some deleted, some replaced, the last ones deleted."""
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "index.sqlite3")
    conn.execute("PRAGMA page_size=16384")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute(
        "INSERT INTO binding VALUES (1, 2, ?, ?, 'ip', 1, ?, 60, 75)", (BINDING.model, DIM, time.time())
    )
    ids = {}
    for i in range(N):
        id_ = i if i % 7 else 50 + i // 7  # every 7th key was replaced later: a higher id
        ids[f"k{i}"] = id_
        conn.execute(
            "INSERT INTO items (id, key, vector, metadata, source, rating, hidden, phash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (id_, f"k{i}", vector_for(f"k{i}").astype("<f4").tobytes(), json.dumps({"i": i}), f"https://x/{i}.jpg",
             i % 6, int(i % 11 == 0), -5 if i == 3 else i),
        )
    conn.execute("INSERT INTO tags (id, name) VALUES (1, 'beach'), (2, 'sunset')")
    conn.executemany("INSERT INTO item_tags VALUES (?, ?)", [("k1", 1), ("k2", 1), ("k2", 2), ("k14", 2)])
    conn.execute("INSERT INTO thumbnails VALUES ('k5', ?)", (WEBP,))
    conn.commit()
    conn.close()
    return ids


def test_an_index_of_the_previous_layout_is_converted_once(tmp_path):
    ids = write_old_index(tmp_path / "ix")
    store = open_store(tmp_path, "ix", BINDING)
    try:
        assert store.count == N and store.next_id == 60 and store.vector_dtype == "float16"
        items = store.get([f"k{i}" for i in range(N)], with_vectors=True)
        for i, it in enumerate(items):
            assert (it.key, it.id, it.metadata, it.source) == (f"k{i}", ids[f"k{i}"], {"i": i}, f"https://x/{i}.jpg")
            np.testing.assert_array_equal(it.vector, store.stored_vectors(vector_for(f"k{i}"))[0])
            assert (it.rating, it.hidden) == (i % 6, i % 11 == 0)
        assert store.get(["k2"])[0].tags == ["beach", "sunset"] and store.thumbnail("k5") == WEBP
        hashes = dict(zip(*store.phashes(include_hidden=True)))
        assert hashes["k3"] == 2**64 - 5 and hashes["k4"] == 4
        visible = store.browse(LabelFilter(), 0, 200)
        assert visible.total == N - 4  # k0, k11, k22, k33 hidden
        assert store.check().ok
        columns = {row[1] for row in store.conn.execute("PRAGMA table_info(items)")}
        assert "vector" not in columns and "vcheck" in columns
        assert store.conn.execute("SELECT format FROM binding").fetchone()[0] == 3
        assert store.upsert(["new"], vector_for("new")[None]) == [60]  # ids go on from the old watermark
    finally:
        store.close()
    store = open_store(tmp_path, "ix", BINDING)  # converted once: opened as it is now
    assert store.count == N + 1 and store.check().ok
    store.close()


def test_a_conversion_cut_short_starts_again(tmp_path, monkeypatch):
    write_old_index(tmp_path / "ix")
    monkeypatch.setattr(sqlite_legacy, "CHUNK", 8)
    real_write, calls = VectorFile.write, []

    def failing_write(self, first_id, vectors):
        calls.append(first_id)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, first_id, vectors)

    monkeypatch.setattr(VectorFile, "write", failing_write)
    with pytest.raises(InsufficientStorage, match="full"):
        open_store(tmp_path, "ix", BINDING)
    conn = sqlite3.connect(tmp_path / "ix" / "index.sqlite3")
    assert conn.execute("SELECT format FROM binding").fetchone()[0] == 2  # still the old layout, whole
    conn.close()
    monkeypatch.setattr(VectorFile, "write", real_write)
    store = open_store(tmp_path, "ix", BINDING)
    assert store.count == N and store.check().ok
    store.close()


def test_a_damaged_old_vector_is_refused(tmp_path):
    write_old_index(tmp_path / "ix")
    conn = sqlite3.connect(tmp_path / "ix" / "index.sqlite3")
    conn.execute("UPDATE items SET vector = x'00' WHERE key = 'k4'")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptIndex, match="float32"):
        open_store(tmp_path, "ix", BINDING)
