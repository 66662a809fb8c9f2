"""The embedded store's checks: the database, the vector file and the memory agree.

Every item row carries `vcheck`, the CRC-32 of its vector row as stored, so a key and its
vector are checked together: a vector file shifted, cut, overwritten or taken from another
index fails on the rows it touches.

- `startup_check`, at every open, O(tail): the items of the newest ids (the last TAIL rows
  below the watermark, where a crash lands) are exactly the live ids in memory and their
  vectors match their checksums, and so do SAMPLE random older items; the file length rule
  was applied when the file was opened (vector_file.py).
- `check_store`, for verify_index and image-embed verify-index, O(n): every item's vector
  against its checksum (finite, unit length when the index normalizes), the live ids in
  memory against the database's, the counts, the dead ids, thumbnails and labels.
"""

from __future__ import annotations

import zlib

import numpy as np

from . import sqlite_labels as labels_sql
from .storage import CheckReport, check_vectors

TAIL = 1024
SAMPLE = 64
CHUNK = 65536


def _mismatch(conn, id_: int) -> str:
    row = conn.execute("SELECT key FROM items WHERE id = ?", (id_,)).fetchone()
    key = row[0] if row else None
    return f"the stored vector of {key!r} (id {id_}) does not match its checksum: the vector file and the database disagree"


def _crc_problems(store, row_of, pairs) -> list[str]:
    out = []
    for id_, vcheck in pairs:
        if zlib.crc32(row_of(id_)) != vcheck & 0xFFFFFFFF:
            out.append(_mismatch(store.conn, id_))
            if len(out) >= 5:
                break
    return out


def startup_check(store) -> CheckReport:
    view, conn = store.view(), store.conn
    report = CheckReport(count=view.count)
    low = max(0, view.next_id - TAIL)
    newest = conn.execute("SELECT id, vcheck FROM items WHERE id >= ? ORDER BY id", (low,)).fetchall()
    ids = np.asarray([r[0] for r in newest], np.int64)
    if len(ids) and ids[-1] >= view.next_id:
        report.problems.append(f"item id {ids[-1]} is past the database's watermark (next_id {view.next_id})")
        return report
    if not np.array_equal(ids, view.live_ids(low)):
        report.problems.append("the newest live ids differ between the database and its dead ids")
    older = view.live_ids(0, low)
    if len(older):
        picked = np.random.default_rng().choice(older, min(SAMPLE, len(older)), replace=False)
        marks = ",".join("?" * len(picked))
        newest += conn.execute(f"SELECT id, vcheck FROM items WHERE id IN ({marks})", [int(i) for i in picked]).fetchall()
    report.problems += _crc_problems(store, lambda i: view.stored[i], newest)
    return report


def check_store(store, vectors: bool = True) -> CheckReport:
    """The caller holds the store's write lock."""
    view, conn = store.view(), store.conn
    report = CheckReport(count=view.count)
    ids = np.fromiter((r[0] for r in conn.execute("SELECT id FROM items ORDER BY id")), np.int64)
    if len(ids) != view.count:
        report.problems.append(f"the database holds {len(ids)} items, the memory {view.count}")
    if len(ids) and (ids[0] < 0 or ids[-1] >= view.next_id):
        report.problems.append(f"item ids run from {ids[0]} to {ids[-1]}, outside 0..{view.next_id - 1}")
    elif not np.array_equal(ids, view.live_ids()):
        report.problems.append("the live ids in memory differ from the database's items")
    (revived,) = conn.execute("SELECT count(*) FROM dead_ids d JOIN items i ON i.id = d.id").fetchone()
    if revived:
        report.problems.append(f"{revived} items hold ids recorded as dead")
    (orphans,) = conn.execute("SELECT count(*) FROM thumbnails WHERE key NOT IN (SELECT key FROM items)").fetchone()
    if orphans:
        report.problems.append(f"{orphans} thumbnails belong to no item")
    report.problems += labels_sql.check(conn, store.labels)
    if vectors:
        for start in range(0, view.next_id, CHUNK):
            stop = min(view.next_id, start + CHUNK)
            rows = conn.execute("SELECT id, vcheck FROM items WHERE id >= ? AND id < ? ORDER BY id", (start, stop)).fetchall()
            if not rows:
                continue
            block = view.file.read(start, stop)
            report.problems += _crc_problems(store, lambda i: block[i - start], rows)
            check_vectors(store.binding, block[[r[0] - start for r in rows]].astype(np.float32), report)
            if len(report.problems) > 20:
                break
    return report
