"""The embedded store of one index: a SQLite database, mirrored in memory for search.

    <data dir>/<name>/index.sqlite3   the items, the binding and the id counter (WAL mode)
    <data dir>/<name>/LOCK            flock'd while open: one server process owns an index
    <data dir>/<name>/ann-*/          the saved approximate index (a cache, see ann.py)

Thumbnails (small WebP images for the UI) are a table of their own in the same database,
written in the item's transaction and read on demand, never loaded into memory; an index
made before they existed gains the (empty) table when it is opened. Labels (rating, hidden,
tags) and the perceptual hash live in the same database too (sqlite_labels.py), written in
the item's transaction; the labels are mirrored in memory (label_mirror.py) for search.

One database per index, not one for all: SQLite has one writer per database, so ingest
into one index never waits for another's; `drop_index` removes a folder; and the FAISS
cache sits beside its data.

Durability: journal_mode=WAL with synchronous=FULL, so each commit fsyncs the WAL before it
returns; an acknowledged upsert or delete survives `kill -9` and a power cut. (NORMAL would
survive `kill -9` but may lose the last commits on a power cut; a batch is one transaction
and one fsync, so FULL costs little.)

Every write goes to SQLite first, in one transaction (executemany), then to the in-memory
rows (table.py): vectors as float32 BLOBs, bulk-loaded into numpy at start-up. The memory
holds what the database holds, so start-up reads the database once and replays nothing.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import sqlite_labels as labels_sql
from .errors import CorruptIndex, IndexBusy, IndexNotFound, KeyNotFound
from .items import MAX_METADATA_BYTES, check_key
from .labels import LabelFilter, LabelWrite, check_rating, check_tag_names, prepare_labels
from .manifest import Binding, check_binding, check_name
from .storage import CheckReport, Item, Storage, check_vectors, last_wins, prepare_items, prepare_phashes, prepare_thumbnails
from .sqlite_check import check_store
from .table import Table, View

logger = logging.getLogger("image_embed.search.sqlite")

DB_FILE = "index.sqlite3"
FORMAT = 2
LOAD_CHUNK = 65536
PAGE_SIZE = 16384
SCHEMA = """
CREATE TABLE IF NOT EXISTS binding (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    format INTEGER NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL,
    metric TEXT NOT NULL, normalized INTEGER NOT NULL, created_at REAL NOT NULL,
    next_id INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, vector BLOB NOT NULL, metadata TEXT, source TEXT
);
CREATE TABLE IF NOT EXISTS thumbnails (key TEXT PRIMARY KEY, webp BLOB NOT NULL);
"""


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    compact_ratio: float = 0.25  # drop tombstoned rows from memory beyond this share
    max_metadata_bytes: int = MAX_METADATA_BYTES  # per item, as JSON


def is_index(folder: Path) -> bool:
    return (folder / DB_FILE).is_file()


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    # 16 KiB pages (for a new file): a 512-d float32 row (2 KiB) per page of 4 KiB wastes
    # space and writes; measured at 200k x 512-d: ingest 30k/s with 4 KiB pages, 40k/s with 16.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    # checkpoint the log into the database every 8,192 pages (128 MiB) instead of 1,000: bulk
    # ingest rewrites the key index's pages less often (durability is the log's, unchanged)
    conn.execute("PRAGMA wal_autocheckpoint=8192")
    return conn


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


class SqliteStore(Storage):
    def __init__(self, folder: Path, name: str, create: Binding | None, wanted: Binding | None, settings: StoreSettings) -> None:
        self.folder, self.name, self.settings = folder, name, settings
        self._write_lock = threading.Lock()
        self._lock_fd = self._acquire()
        self.closed = False
        self.conn: sqlite3.Connection | None = None
        try:
            started = time.perf_counter()
            self.conn = connect(folder / DB_FILE)
            self.binding = self._bind(create)
            if wanted is not None:
                check_binding(name, self.binding, wanted)
            self.table = Table(self.binding.dim)
            self._load()
            self.load_s = round(time.perf_counter() - started, 3)
            self.checkpoint_at: float | None = None
            report = self.check()
            if not report.ok:
                raise CorruptIndex(f"index {name!r} failed its start-up check: " + "; ".join(report.problems[:5]))
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
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def _bind(self, create: Binding | None) -> Binding:
        conn = self.conn
        conn.executescript(SCHEMA)  # idempotent
        conn.execute("BEGIN IMMEDIATE")
        try:
            labels_sql.migrate(conn)  # an index made before labels gains them (additive)
            row = conn.execute("SELECT format, model, dim, metric, normalized FROM binding").fetchone()
            if row is None:
                if create is None:
                    raise IndexNotFound(f"there is no index named {self.name!r}")
                b = create
                conn.execute(
                    "INSERT INTO binding (one, format, model, dim, metric, normalized, created_at) VALUES (1, ?, ?, ?, ?, ?, ?)",
                    (FORMAT, b.model, b.dim, b.metric, int(b.normalized), time.time()),
                )
                row = (FORMAT, b.model, b.dim, b.metric, int(b.normalized))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if row[0] != FORMAT:
            raise CorruptIndex(f"index {self.name!r}: format {row[0]!r} is not {FORMAT}")
        return Binding(model=row[1], dim=int(row[2]), metric=row[3], normalized=bool(row[4]))

    def _load(self) -> None:
        """Bulk-load every row into numpy, in id order, chunk by chunk."""
        dim, t = self.binding.dim, self.table
        next_id, self.changes = self.conn.execute("SELECT next_id, changes FROM binding").fetchone()
        n = self.conn.execute("SELECT count(*) FROM items").fetchone()[0]
        cap = max(1024, int(n * 1.25))
        ids, vectors = np.empty(cap, np.int64), np.empty((cap, dim), np.float32)
        keys, metas, sources = [], [], []
        loads = json.loads
        cur = self.conn.execute("SELECT id, key, vector, metadata, source FROM items ORDER BY id")
        m = 0
        while rows := cur.fetchmany(LOAD_CHUNK):
            if m + len(rows) > cap:
                raise CorruptIndex(f"index {self.name!r}: rows appeared while loading")
            cols = list(zip(*rows))
            blob = b"".join(cols[2])
            if len(blob) != len(rows) * dim * 4:
                raise CorruptIndex(f"index {self.name!r}: a stored vector is not {dim} float32 values")
            ids[m : m + len(rows)] = cols[0]
            vectors[m : m + len(rows)] = np.frombuffer(blob, "<f4").reshape(-1, dim)
            keys.extend(cols[1])
            metas.extend(None if s is None else loads(s) for s in cols[3])
            sources.extend(cols[4])
            m += len(rows)
        t.adopt(ids, vectors, m, keys, metas, sources)
        t.next_id = max(t.next_id, int(next_id))
        t.lsn = int(self.changes)
        self.labels = labels_sql.load(self.conn)

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
        blobs = vecs.astype("<f4", copy=False)
        with self._write_lock:
            self._check_open()
            t = self.table
            ids = list(range(t.next_id, t.next_id + len(keys)))
            keep = last_wins(keys)
            rows = [(ids[i], keys[i], blobs[i].tobytes(), texts[i], srcs[i], labels_sql.signed(hashes[i])) for i in keep]

            def work(c: sqlite3.Connection) -> list:
                # an upsert, not a replace: the row (and its labels) stays, with a new id and vector
                c.executemany(
                    "INSERT INTO items (id, key, vector, metadata, source, phash) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET id = excluded.id, vector = excluded.vector, "
                    "metadata = excluded.metadata, source = excluded.source, phash = excluded.phash",
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
                return labels_sql.write_item_labels(c, [keys[i] for i in keep], [labs[i] for i in keep], self.labels)

            self._apply(self._transaction(work, ids[-1] + 1, len(keys)))
            t.append(ids, vecs, keys, metas, srcs)
            t.lsn = self.changes
        return ids

    def delete(self, keys) -> tuple[list[str], list[str]]:
        """Delete items by key; durable when it returns. Returns (deleted, missing)."""
        keys = [check_key(k) for k in keys]
        with self._write_lock:
            self._check_open()
            t = self.table
            targets, missing = [], []
            for key in dict.fromkeys(keys):
                (targets if t.row_of(key) is not None else missing).append(key)
            if targets:
                gone = [(k,) for k in targets]

                def work(c: sqlite3.Connection) -> list:
                    c.executemany("DELETE FROM items WHERE key = ?", gone)
                    c.executemany("DELETE FROM thumbnails WHERE key = ?", gone)
                    return labels_sql.forget(c, targets)

                self._apply(self._transaction(work, t.next_id, len(targets)))
                for key in targets:
                    t.tombstone(key)
                t.lsn = self.changes
        return targets, missing

    def _transaction(self, work, next_id: int, changes: int):
        """One write transaction with the counters; committed (fsync'd) when it returns.
        Returns what `work` returned."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("UPDATE binding SET next_id = ?, changes = changes + ?", (next_id, changes))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:  # disk full, read-only, I/O error: nothing was applied
            raise CorruptIndex(f"index {self.name!r}: the write was not stored: {exc}") from None
        self.changes += changes
        return result

    def _apply(self, applies) -> None:
        """The label changes of a committed transaction, into the memory mirror."""
        for apply in applies or ():
            apply(self.labels)

    # -- labels ------------------------------------------------------------------------------
    def _label_write(self, keys, work_of) -> LabelWrite:
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self._write_lock:
            self._check_open()
            found = [k for k in keys if self.table.row_of(k) is not None]
            if found:
                self._apply(self._transaction(lambda c: work_of(c, found), self.table.next_id, len(found)))
                self.table.lsn = self.changes
        present = set(found)
        return LabelWrite(updated=found, missing=[k for k in keys if k not in present])

    def set_rating(self, keys, rating: int) -> LabelWrite:
        rating = check_rating(rating)
        return self._label_write(keys, lambda c, found: labels_sql.set_rating(c, found, rating))

    def tag_items(self, keys, add=(), remove=(), hidden: bool | None = None) -> LabelWrite:
        add, remove = check_tag_names(add), check_tag_names(remove)
        return self._label_write(keys, lambda c, found: labels_sql.tag_items(c, found, add, remove, hidden, self.labels))

    def tags(self) -> list[tuple[int, str, int]]:
        with self._write_lock:
            return self.labels.tag_counts()

    def browse(self, f: LabelFilter, offset: int, limit: int):
        with self._write_lock:
            self._check_open()
            return labels_sql.browse(self.conn, f, offset, limit, self.labels)

    def phashes(self, include_hidden: bool = False):
        with self._write_lock:
            self._check_open()
            return labels_sql.phashes(self.conn, include_hidden)

    def view_and_mask(self, f: LabelFilter | None) -> tuple[View, "np.ndarray | None"]:
        """A view of the rows and the rows the label filter keeps (None: all), consistent."""
        with self._write_lock:
            t = self.table
            view = t.view()
            return view, None if f is None else self.labels.row_mask(f, t.key_to_row, view.n)

    def _check_open(self) -> None:
        if self.closed:
            raise IndexNotFound(f"index {self.name!r} was closed")

    def compact_if_due(self) -> None:
        """Drop tombstoned rows from memory once they are more than `compact_ratio` of them."""
        with self._write_lock:
            t = self.table
            if t.n - t.count > self.settings.compact_ratio * max(t.n, 1024):
                t.compact()

    # -- reading ---------------------------------------------------------------------------
    def get(self, keys, with_vectors: bool = False) -> list[Item | None]:
        out: list[Item | None] = []
        with self._write_lock:  # a consistent row lookup (compaction renumbers rows)
            t = self.table
            for key in keys:
                row = t.row_of(key)
                if row is None:
                    out.append(None)
                    continue
                vec = t.vectors[row].copy() if with_vectors else None
                rating, hidden, tags = self.labels.labels_of(key)
                out.append(Item(key, int(t.ids[row]), t.metas[row], t.sources[row], vec, rating, hidden, [n for _, n in tags]))
        return out

    def thumbnail(self, key: str) -> bytes | None:
        with self._write_lock:
            self._check_open()
            if self.table.row_of(key) is None:
                raise KeyNotFound(f"index {self.name!r} has no item {key!r}")
            row = self.conn.execute("SELECT webp FROM thumbnails WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def iterate(self, batch: int = 10_000) -> Iterator[list[Item]]:
        """From the database itself (not the memory), so a migration reads what is durable."""
        last = -1
        dim = self.binding.dim
        while True:
            with self._write_lock:
                self._check_open()
                rows = self.conn.execute(
                    "SELECT id, key, vector, metadata, source, rating, hidden, phash FROM items WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
                tags: dict[str, list[str]] = {}
                marks = ",".join("?" * len(rows))
                for key, name in self.conn.execute(
                    f"SELECT it.key, t.name FROM item_tags it JOIN tags t ON t.id = it.tag_id WHERE it.key IN ({marks}) ORDER BY t.id",
                    [r[1] for r in rows],
                ):
                    tags.setdefault(key, []).append(name)
            if not rows:
                return
            yield [
                Item(k, i, None if m is None else json.loads(m), s, np.frombuffer(v, "<f4").reshape(dim).astype(np.float32),
                     r, bool(h), tags.get(k, []), labels_sql.unsigned(p))
                for i, k, v, m, s, r, h, p in rows
            ]
            last = rows[-1][0]

    def keys(self) -> list[str]:
        with self._write_lock:
            return list(self.table.key_to_row)

    @property
    def count(self) -> int:
        return self.table.count

    # -- checks and stats ------------------------------------------------------------------
    def check(self, vectors: bool = True) -> CheckReport:
        """Alignment of the memory with itself and with the database (sqlite_check.py)."""
        with self._write_lock:
            return check_store(self, vectors)

    def stats(self) -> dict:
        t = self.table
        return {
            "name": self.name,
            "backend": "sqlite",
            "count": t.count,
            "dim": self.binding.dim,
            "model": self.binding.model,
            "metric": self.binding.metric,
            "normalized": self.binding.normalized,
            "rows": t.n,
            "tombstones": t.n - t.count,
            "next_id": t.next_id,
            "lsn": t.lsn,
            "bytes_on_disk": sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file()),
            "load_s": self.load_s,
            # The last WAL checkpoint this process made (at close, or when asked).
            "last_snapshot": {
                "lsn": t.lsn if self.checkpoint_at else None,
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
            with self._write_lock:
                self.closed = True
                self._release()

