"""The embedded store of one index: a SQLite database and a vector file, sized by the disk.

    <data dir>/<name>/index.sqlite3   keys, metadata, labels, the binding and the id watermark
                                      (WAL mode; sqlite_schema.py)
    <data dir>/<name>/vectors.f16     the vectors, row i = id i, memory-mapped (vector_file.py)
    <data dir>/<name>/LOCK            flock'd while open: one server process owns an index
    <data dir>/<name>/ann-*/          the saved approximate index (a cache, see ann.py)

Nothing per item lives in Python objects: the memory holds numpy arrays by id (which ids are
live: one byte each) and the labelled keys' ids (label_mirror.py). Keys and metadata are read
from SQLite for the hits of a search; vectors from the memory map (store_view.py).

A write (upsert) goes, under the write lock:
1. the new rows to the vector file at fresh ids (allocated in order, never reused), fsync;
2. one SQLite transaction: the items with each row's checksum, thumbnails, labels, and the
   watermark `next_id` past the new ids; COMMIT fsyncs the WAL (synchronous=FULL), so the
   write is durable when it returns (`kill -9`, power cut);
3. the memory: the new ids live, the ids they replace dead (`dead_ids`, by trigger), a new
   view published.
A crash between 1 and 2 leaves rows past the watermark, which the next open cuts off; the
write was not acknowledged. The reverse (a committed id without its row) cannot happen, and
an open that finds it refuses the index (vector_file.py). Crash points for tests:
crash_points.py.

Readers (searches, get, iterate) never take the write lock: each takes the current view and
reads keys and metadata on a connection of its own, in a read transaction that sees exactly
the view's commit (`consistent_read`), so a hit's key, metadata and score come from one state.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import crash_points
from . import sqlite_labels as labels_sql
from . import sqlite_reads as reads
from .sqlite_reads import ItemReads
from .sqlite_upkeep import Upkeep
from .errors import CorruptIndex, IndexBusy, IndexNotFound
from .items import MAX_METADATA_BYTES, check_key
from .labels import LabelFilter, LabelWrite, check_rating, check_tag_names, prepare_labels
from .manifest import Binding, check_binding, check_name
from .sqlite_check import check_store, startup_check
from .sqlite_legacy import convert
from .sqlite_schema import DB_FILE, connect, open_database, transaction
from .storage import CheckReport, Storage, last_wins, prepare_items, prepare_phashes, prepare_thumbnails
from .store_view import HotRows, IdFilter, View
from .vector_file import DTYPES, VectorFile, checksums, file_name, insufficient_storage, storage_error

logger = logging.getLogger("image_embed.search.sqlite")

READ_ATTEMPTS = 3  # stale snapshots (a write landed meanwhile) before a read waits for the writers
ALIVE_GROWTH = 1.5
SQLITE_FULL, SQLITE_IOERR = 13, 10
FULL_FREE_BYTES = 1 << 20  # an I/O error with less free space than this is a full disk


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    vector_dtype: str = "float16"  # a new index's vector file (IMAGE_EMBED_INDEX_VECTOR_DTYPE)
    hot_bytes: int = 256 << 20  # newest rows kept as float32 in memory (store_view.py), at most
    max_metadata_bytes: int = MAX_METADATA_BYTES  # per item, as JSON


def is_index(folder: Path) -> bool:
    return (folder / DB_FILE).is_file()


def open_store(
    data_dir: Path, name: str, binding: Binding | None = None, *, create: bool = False, settings: StoreSettings | None = None
) -> "SqliteStore":
    """Open index `name` (creating it, bound to `binding`, when asked and absent)."""
    check_name(name)
    folder = Path(data_dir) / name
    if not is_index(folder) and (not create or binding is None):
        raise IndexNotFound(f"there is no index named {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    return SqliteStore(folder, name, binding if create else None, binding, settings or StoreSettings())


def drop_store(data_dir: Path, name: str) -> bool:
    """Remove an index folder (closed first by its owner). True if there was one."""
    check_name(name)
    folder = Path(data_dir) / name
    if not folder.exists():
        return False
    tmp = folder.with_name(f".dropped-{name}-{time.monotonic_ns()}")
    os.rename(folder, tmp)  # atomic: the index is gone at once, even if the removal is cut short
    shutil.rmtree(tmp, ignore_errors=True)
    return True


class SqliteStore(ItemReads, Upkeep, Storage):
    def __init__(self, folder: Path, name: str, create: Binding | None, wanted: Binding | None, settings: StoreSettings) -> None:
        self.folder, self.name, self.settings = folder, name, settings
        self._write_lock = threading.Lock()  # one write at a time, for its whole length
        self._mem_lock = threading.Lock()  # the memory's state and the published view
        self._lock_fd = self._acquire()
        self.closed = False
        self.conn: sqlite3.Connection | None = None
        self.file: VectorFile | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self.checkpoint_at: float | None = None
        try:
            started = time.perf_counter()
            self.conn = connect(folder / DB_FILE)
            self.binding, self.vector_dtype = open_database(self.conn, folder, name, create, settings.vector_dtype, convert)
            if wanted is not None:
                check_binding(name, self.binding, wanted)
            self._load()
            report = startup_check(self)
            if not report.ok:
                raise CorruptIndex(f"index {name!r} failed its start-up check: " + "; ".join(report.problems[:5]))
            self.load_s = round(time.perf_counter() - started, 3)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise CorruptIndex(f"index {name!r}: {folder / DB_FILE} is unreadable: {exc}") from None
        except BaseException:
            self._release()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _acquire(self) -> int:
        fd = os.open(self.folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IndexBusy(
                f"index {self.name!r} is open in another process (pid {holder}); one server owns a data directory "
                "(to share indexes between servers, use PostgreSQL: IMAGE_EMBED_SEARCH_URL)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _release(self) -> None:
        for conn in [*self._readers, self.conn]:
            if conn is not None:
                conn.close()
        self._readers, self.conn = [], None
        if self.file is not None:
            self.file.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def _load(self) -> None:
        """The memory from the database's watermark, its dead ids and its labels: O(dead +
        labelled), never a read of every item."""
        dim = self.binding.dim
        next_id, self.changes = self.conn.execute("SELECT next_id, changes FROM binding").fetchone()
        self.file = VectorFile(self.folder / file_name(self.vector_dtype), dim, self.vector_dtype, next_id)
        dead = np.fromiter((r[0] for r in self.conn.execute("SELECT id FROM dead_ids")), np.int64)
        self.dead_seq = self.conn.execute("SELECT coalesce(max(seq), 0) FROM dead_ids").fetchone()[0]
        self.alive = np.zeros(max(1024, int(next_id * ALIVE_GROWTH)), bool)
        self.alive[:next_id] = True
        dead = np.unique(dead[(dead >= 0) & (dead < next_id)])
        self.alive[dead] = False
        self.labels = labels_sql.load(self.conn)
        self.hot = HotRows.empty(next_id, dim)
        self._publish(next_id, next_id - len(dead))

    def _publish(self, next_id: int, count: int) -> None:
        """A new view of the current state (the memory lock held, or no readers yet)."""
        self._view = View(self.changes, next_id, count, self.alive, self.file.publish(next_id), self.hot, self.file)

    # -- the views and consistent reads ----------------------------------------------------
    def view(self) -> View:
        return self._view

    @property
    def next_id(self) -> int:
        return self._view.next_id

    def snapshot(self, f: LabelFilter | None = None) -> tuple[View, IdFilter | None]:
        """The current view, and the ids `f` keeps in it (None: all)."""
        with self._mem_lock:
            return self._view, (None if f is None else self.labels.id_filter(f))

    def consistent_read(self, fn: Callable, f: LabelFilter | None = None, *, strict: bool = True):
        """fn(view, id filter, connection), where the connection's read transaction sees the
        database exactly as the view does; `strict`: and no write committed while fn ran (its
        deaths flip `alive` in place). Retried on a newer commit; at last, writers wait."""
        for _ in range(READ_ATTEMPTS):
            self._check_open()
            view, ids = self.snapshot(f)
            conn = self._reader()
            try:
                conn.execute("BEGIN")
                try:
                    if conn.execute("SELECT changes FROM binding").fetchone()[0] == view.lsn:
                        result = fn(view, ids, conn)
                        if not strict or self.changes == view.lsn:
                            return result
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error:  # closed under the read (drop_index, shutdown): not found, not a 500
                self._check_open()
                raise
        with self._write_lock:
            self._check_open()
            view, ids = self.snapshot(f)
            return fn(view, ids, self.conn)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.folder / DB_FILE, reader=True)
            self._local.conn = conn
            with self._mem_lock:
                self._readers.append(conn)
        return conn

    def _check_open(self) -> None:
        if self.closed:
            raise IndexNotFound(f"index {self.name!r} was closed")

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, keys, vectors, metadata=None, sources=None, thumbnails=None, *, phashes=None, labels=None) -> list[int]:
        """Insert or replace items by key; durable when it returns. Returns their new ids.
        A replaced item keeps its labels (rating, hidden, tags) unless `labels` sets them."""
        keys, vecs, metas, srcs = prepare_items(self.binding, keys, vectors, metadata, sources, self.settings.max_metadata_bytes)
        thumbs = prepare_thumbnails(thumbnails, len(keys))
        hashes = prepare_phashes(phashes, len(keys))
        labs = prepare_labels(labels, len(keys))
        if not keys:
            return []
        texts = [None if m is None else json.dumps(m, separators=(",", ":")) for m in metas]
        keep = last_wins(keys)
        with self._write_lock:
            self._check_open()
            first = self.next_id
            try:
                stored = self.file.write(first, vecs[keep])
                crash_points.reached("vectors_written")
                self.file.sync()
            except OSError as exc:  # nothing committed: the rows past the watermark are overwritten next time
                raise storage_error(exc, self.name, self.folder) from None
            crash_points.reached("vectors_synced")
            crcs = checksums(stored)
            kept = [keys[i] for i in keep]
            rows = [(first + j, keys[i], texts[i], srcs[i], crcs[j], labels_sql.signed(hashes[i])) for j, i in enumerate(keep)]

            def work(c: sqlite3.Connection) -> list:
                # an upsert, not a replace: the row (and its labels) stays, with a new id and vector
                c.executemany(
                    "INSERT INTO items (id, key, metadata, source, vcheck, phash) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET id = excluded.id, metadata = excluded.metadata, "
                    "source = excluded.source, vcheck = excluded.vcheck, phash = excluded.phash",
                    rows,
                )
                # an item replaced without a thumbnail loses its old one; with no thumbnails stored
                # (IMAGE_EMBED_THUMBNAILS=0, bulk vector loads) that is a lookup per row saved
                if c.execute("SELECT EXISTS (SELECT 1 FROM thumbnails)").fetchone()[0]:
                    c.executemany("DELETE FROM thumbnails WHERE key = ?", [(keys[i],) for i in keep if thumbs[i] is None])
                c.executemany(
                    "INSERT OR REPLACE INTO thumbnails (key, webp) VALUES (?, ?)",
                    [(keys[i], thumbs[i]) for i in keep if thumbs[i] is not None],
                )
                return labels_sql.write_item_labels(c, kept, [labs[i] for i in keep], self.labels)

            applies, dead = self._transaction(work, first + len(keep), len(keys))
            crash_points.reached("committed")
            new_ids = range(first, first + len(keep))
            self._apply(applies, dead, new_ids, zip(kept, new_ids), stored)
        id_of = dict(zip(kept, new_ids))
        return [id_of[k] for k in keys]

    def delete(self, keys) -> tuple[list[str], list[str]]:
        """Delete items by key; durable when it returns. Returns (deleted, missing)."""
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self._write_lock:
            self._check_open()
            present = reads.by_keys(self.conn, keys)
            targets = [k for k in keys if k in present]
            if targets:
                gone = [(k,) for k in targets]

                def work(c: sqlite3.Connection) -> list:
                    c.executemany("DELETE FROM items WHERE key = ?", gone)
                    c.executemany("DELETE FROM thumbnails WHERE key = ?", gone)
                    return labels_sql.forget(c, targets)

                applies, dead = self._transaction(work, self.next_id, len(targets))
                self._apply(applies, dead)
        return targets, [k for k in keys if k not in present]

    def _transaction(self, work, next_id: int, changes: int) -> tuple[list, np.ndarray]:
        """One write transaction with the counters; committed (fsync'd) when it returns.
        Returns what `work` returned and the ids it killed."""
        try:
            with transaction(self.conn) as conn:
                result = work(conn)
                dead = conn.execute("SELECT seq, id FROM dead_ids WHERE seq > ? ORDER BY seq", (self.dead_seq,)).fetchall()
                conn.execute("UPDATE binding SET next_id = ?, changes = changes + ?", (next_id, changes))
        except sqlite3.OperationalError as exc:  # disk full, read-only, I/O error: nothing was applied
            raise self._write_error(exc) from None
        if dead:
            self.dead_seq = dead[-1][0]
        self.changes += changes  # before the memory changes: readers that see it retry (consistent_read)
        return result, np.asarray([d[1] for d in dead], np.int64)

    def _write_error(self, exc: sqlite3.OperationalError) -> Exception:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            free = 0
        if code == SQLITE_FULL or (code == SQLITE_IOERR and free < FULL_FREE_BYTES):
            return insufficient_storage(self.name, self.folder, str(exc))
        return CorruptIndex(f"index {self.name!r}: the write was not stored: {exc}")

    def _apply(self, applies, dead: np.ndarray, new_ids=range(0), pairs=(), stored: np.ndarray | None = None) -> None:
        """A committed transaction into the memory: new ids live, dead ones dead, labels."""
        with self._mem_lock:
            next_id = max(self.next_id, new_ids.stop)
            if next_id > len(self.alive):  # a new array: older views keep theirs
                grown = np.zeros(int(next_id * ALIVE_GROWTH), bool)
                grown[: len(self.alive)] = self.alive
                self.alive = grown
            self.alive[new_ids.start : new_ids.stop] = True
            self.alive[dead] = False
            for apply in applies or ():
                apply(self.labels)
            self.labels.track(pairs)
            if stored is not None and len(stored):
                self.hot = self.hot.appended(new_ids.start, stored.astype(np.float32), self._hot_max_rows())
            self._publish(next_id, self._view.count + len(new_ids) - len(dead))

    # -- labels ------------------------------------------------------------------------------
    def _label_write(self, keys, work_of) -> LabelWrite:
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self._write_lock:
            self._check_open()
            present = reads.by_keys(self.conn, keys)
            found = [k for k in keys if k in present]
            if found:
                applies, dead = self._transaction(lambda c: work_of(c, found), self.next_id, len(found))
                self._apply(applies, dead, pairs=[(k, present[k][0]) for k in found])
        return LabelWrite(updated=found, missing=[k for k in keys if k not in present])

    def set_rating(self, keys, rating: int) -> LabelWrite:
        rating = check_rating(rating)
        return self._label_write(keys, lambda c, found: labels_sql.set_rating(c, found, rating))

    def tag_items(self, keys, add=(), remove=(), hidden: bool | None = None) -> LabelWrite:
        add, remove = check_tag_names(add), check_tag_names(remove)
        return self._label_write(keys, lambda c, found: labels_sql.tag_items(c, found, add, remove, hidden, self.labels))

    def tags(self) -> list[tuple[int, str, int]]:
        with self._mem_lock:
            return self.labels.tag_counts()

    # -- reading (more in sqlite_reads.ItemReads) ---------------------------------------------
    @property
    def count(self) -> int:
        return self._view.count

    def stored_vectors(self, vectors) -> np.ndarray:
        """The vectors as this index keeps them (float16 rounding, back as float32)."""
        return self.prepare_vectors(vectors).astype(DTYPES[self.vector_dtype]).astype(np.float32)

    # -- checks and stats ------------------------------------------------------------------
    def check(self, vectors: bool = True) -> CheckReport:
        """Every item's vector row against its checksum, liveness, counts, labels (sqlite_check.py):
        O(n), for verify_index; the start-up check is O(tail)."""
        with self._write_lock:
            self._check_open()
            return check_store(self, vectors)

    def stats(self) -> dict:
        view = self._view
        files = [p for p in self.folder.rglob("*") if p.is_file() and p.name != self.file.path.name]
        return {
            "name": self.name,
            "backend": "sqlite",
            "count": view.count,
            "dim": self.binding.dim,
            "model": self.binding.model,
            "metric": self.binding.metric,
            "normalized": self.binding.normalized,
            "vector_dtype": self.vector_dtype,
            "rows": view.next_id,
            "tombstones": view.next_id - view.count,
            "hot_rows": view.hot.n,
            "next_id": view.next_id,
            "lsn": view.lsn,
            "bytes_on_disk": sum(p.stat().st_size for p in files) + (self.file.disk_bytes() if not self.closed else 0),
            "load_s": self.load_s,
            # The last WAL checkpoint this process made (at close, or when asked).
            "last_snapshot": {
                "lsn": view.lsn if self.checkpoint_at else None,
                "at": self.checkpoint_at,
                "age_s": None if self.checkpoint_at is None else max(0.0, time.time() - self.checkpoint_at),
            },
        }

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (SQLite also does this on its own as it grows)."""
        with self._write_lock:
            self._check_open()
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.checkpoint_at = time.time()

    def close(self, checkpoint: bool = True) -> None:
        if self.closed:
            return
        try:
            if checkpoint and self.conn is not None:
                try:
                    self.checkpoint()
                except sqlite3.Error:
                    logger.exception("index %r: the checkpoint at close failed (the WAL keeps the data)", self.name)
        finally:
            with self._write_lock, self._mem_lock:
                self.closed = True
                self._release()
