"""Indexes written in the previous layout (format 2: every vector a float32 BLOB in `items`,
all of them read into memory at start-up) are converted once, at their first open, with a
progress bar:

1. every stored vector is written to the vector file at its id (ids that no longer hold an
   item get a zero row, never read), with the CRC-32 of each row, and the file is fsync'd;
2. one transaction rebuilds `items` without the vectors (with their checksums), records the
   ids that are gone in `dead_ids`, and sets format 3;
3. VACUUM gives the vectors' space in the database back to the filesystem.

A conversion cut short (kill, power cut, full disk) before step 2 committed leaves format 2,
and the next open starts it again; after, the index is converted. The old layout is not read
as it is: that would keep a second code path whose start-up is O(n) by construction.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import numpy as np

from . import sqlite_labels as labels_sql
from .errors import CorruptIndex
from .sqlite_schema import ITEMS_COLUMNS, transaction
from .vector_file import VectorFile, checksums, file_name, storage_error

logger = logging.getLogger("image_embed.search.sqlite")

CHUNK = 16384


def convert(conn: sqlite3.Connection, folder: Path, name: str, dim: int, dtype: str) -> None:
    started = time.perf_counter()
    with transaction(conn):
        labels_sql.migrate(conn)  # an index older than the labels gains their columns first
    (next_id, count, top) = conn.execute(
        "SELECT next_id, (SELECT count(*) FROM items), (SELECT max(id) FROM items) FROM binding"
    ).fetchone()
    next_id = max(int(next_id), -1 if top is None else int(top) + 1)
    logger.warning("index %r: converting %d items to the vector file (once)", name, count)
    try:
        crcs, present = _write_vectors(conn, folder / file_name(dtype), name, dim, dtype, next_id, count)
    except OSError as exc:  # a full disk: the index stays as it was, converted at the next open
        raise storage_error(exc, name, folder) from None
    _rebuild_items(conn, crcs, present, next_id, dtype)
    try:
        conn.execute("VACUUM")  # the vectors' pages go back to the filesystem
    except sqlite3.OperationalError as exc:  # no room for the copy VACUUM makes: the index works anyway
        logger.warning("index %r: VACUUM after the conversion failed (%s); the file keeps its free pages", name, exc)
    logger.warning("index %r: converted %d items in %.1f s", name, count, time.perf_counter() - started)


def _write_vectors(conn, path: Path, name: str, dim: int, dtype: str, next_id: int, count: int):
    """Step 1: the vector file from the BLOBs; returns (CRC-32 by id, which ids hold an item)."""
    from tqdm import tqdm

    path.unlink(missing_ok=True)  # a conversion cut short: start again
    vf = VectorFile(path, dim, dtype, 0, create=True)
    crcs = np.zeros(max(next_id, 1), np.uint32)
    present = np.zeros(max(next_id, 1), bool)
    try:
        written = 0
        with tqdm(total=count, unit="item", desc=f"converting index {name!r}") as bar:
            cur = conn.execute("SELECT id, vector FROM items ORDER BY id")
            while rows := cur.fetchmany(CHUNK):
                ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
                blob = b"".join(r[1] for r in rows)
                if len(blob) != len(rows) * dim * 4:
                    raise CorruptIndex(f"index {name!r}: a stored vector is not {dim} float32 values")
                block = np.zeros((int(ids[-1]) + 1 - written, dim), np.float32)  # rows since the last chunk
                block[ids - written] = np.frombuffer(blob, "<f4").reshape(-1, dim)
                stored = vf.write(written, block)
                crcs[ids] = checksums(stored[ids - written])
                present[ids] = True
                written = int(ids[-1]) + 1
                bar.update(len(rows))
        for start in range(written, next_id, CHUNK):  # ids at the end that are gone
            vf.write(start, np.zeros((min(CHUNK, next_id - start), dim), np.float32))
        vf.sync()
    finally:
        vf.rows = next_id
        vf.close()
    return crcs, present


def _rebuild_items(conn, crcs: np.ndarray, present: np.ndarray, next_id: int, dtype: str) -> None:
    """Step 2, one transaction: `items` without the vectors, the dead ids, format 3."""
    conn.create_function("vcheck_of", 1, lambda i: int(crcs[i]), deterministic=True)
    label_columns = ", ".join(f"{n} {decl}" for n, decl in labels_sql.COLUMNS.items())
    with transaction(conn):
        conn.execute("DROP TABLE IF EXISTS items_v3")
        conn.execute(f"CREATE TABLE items_v3 ({ITEMS_COLUMNS}, {label_columns})")
        conn.execute(
            "INSERT INTO items_v3 (id, key, metadata, source, vcheck, rating, hidden, phash) "
            "SELECT id, key, metadata, source, vcheck_of(id), rating, hidden, phash FROM items ORDER BY id"
        )
        conn.execute("DROP TABLE items")
        conn.execute("ALTER TABLE items_v3 RENAME TO items")
        conn.execute("CREATE TABLE IF NOT EXISTS dead_ids (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL)")
        gone = np.flatnonzero(~present[:next_id])
        conn.executemany("INSERT INTO dead_ids (id) VALUES (?)", ((int(i),) for i in gone))
        conn.execute("UPDATE binding SET format = 3, vector_dtype = ?, next_id = ?", (dtype, next_id))
