"""The embedded index's database (format 3): schema, connection settings, and opening (which
converts an index of the previous layout once, sqlite_legacy.py).

    binding     one row: the model, dimension, metric, normalization, the storage type of the
                vector file, `next_id` (the id watermark: the vector file holds exactly the rows
                below it once committed) and `changes` (a counter every commit advances)
    items       id (the row of the vector file), key UNIQUE, metadata JSON, source, vcheck (the
                CRC-32 of the stored vector row: key and vector are checked together), and the
                labels' columns (sqlite_labels.py)
    dead_ids    every id that was live and no longer is (replaced or deleted), in the order
                they died, written by triggers in the same transaction: at start-up, liveness
                is next_id minus these, O(dead), not a scan of the items
    thumbnails  key -> WebP
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import sqlite_labels as labels_sql
from .errors import CorruptIndex, IndexNotFound
from .manifest import Binding

DB_FILE = "index.sqlite3"
FORMAT = 3
LEGACY_FORMAT = 2  # vectors as float32 BLOBs in `items`: converted at open
PAGE_SIZE = 16384
ITEMS_COLUMNS = "id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, metadata TEXT, source TEXT, vcheck INTEGER NOT NULL"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS binding (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    format INTEGER NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL,
    metric TEXT NOT NULL, normalized INTEGER NOT NULL, created_at REAL NOT NULL,
    next_id INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0, vector_dtype TEXT
);
CREATE TABLE IF NOT EXISTS items ({ITEMS_COLUMNS});
CREATE TABLE IF NOT EXISTS thumbnails (key TEXT PRIMARY KEY, webp BLOB NOT NULL);
"""
LIVENESS = (
    "CREATE TABLE IF NOT EXISTS dead_ids (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL)",
    # an upsert of an existing key gives its row a new id; the old one is dead
    "CREATE TRIGGER IF NOT EXISTS items_replaced AFTER UPDATE OF id ON items WHEN old.id <> new.id "
    "BEGIN INSERT INTO dead_ids (id) VALUES (old.id); END",
    "CREATE TRIGGER IF NOT EXISTS items_deleted AFTER DELETE ON items BEGIN INSERT INTO dead_ids (id) VALUES (old.id); END",
)


def connect(path: Path, *, reader: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    if reader:  # searches' own connections: WAL readers never wait for the writer
        conn.execute("PRAGMA query_only = ON")
        return conn
    # 16 KiB pages (for a new file): fewer, larger pages for the key index as it grows
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    # checkpoint the log into the database every 8,192 pages (128 MiB) instead of 1,000: bulk
    # ingest rewrites the key index's pages less often (durability is the log's, unchanged)
    conn.execute("PRAGMA wal_autocheckpoint=8192")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: committed when the block ends, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def open_database(
    conn: sqlite3.Connection, folder: Path, name: str, create: Binding | None, dtype: str, convert_legacy: Callable
) -> tuple[Binding, str]:
    """The index's binding and vector storage type; creates the index (bound to `create`) when
    the database is new, converts one of the previous layout (`convert_legacy`:
    sqlite_legacy.convert, which builds on this module), adds what newer code needs."""
    conn.executescript(SCHEMA)  # idempotent
    if "vector_dtype" not in {row[1] for row in conn.execute("PRAGMA table_info(binding)")}:
        conn.execute("ALTER TABLE binding ADD COLUMN vector_dtype TEXT")  # an index of format 2
    row = conn.execute("SELECT format, model, dim, metric, normalized, vector_dtype FROM binding").fetchone()
    if row is None:
        if create is None:
            raise IndexNotFound(f"there is no index named {name!r}")
        b = create
        conn.execute(
            "INSERT OR IGNORE INTO binding (one, format, model, dim, metric, normalized, created_at, vector_dtype) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            (FORMAT, b.model, b.dim, b.metric, int(b.normalized), time.time(), dtype),
        )
        row = conn.execute("SELECT format, model, dim, metric, normalized, vector_dtype FROM binding").fetchone()
    binding = Binding(model=row[1], dim=int(row[2]), metric=row[3], normalized=bool(row[4]))
    if row[0] == LEGACY_FORMAT:
        convert_legacy(conn, folder, name, binding.dim, dtype)
        row = conn.execute("SELECT format, model, dim, metric, normalized, vector_dtype FROM binding").fetchone()
    if row[0] != FORMAT or row[5] not in ("float16", "float32"):
        raise CorruptIndex(f"index {name!r}: format {row[0]!r} ({row[5]!r} vectors) is not {FORMAT}")
    with transaction(conn):
        labels_sql.migrate(conn)  # an index made before labels gains them (additive)
        for statement in LIVENESS:
            conn.execute(statement)
    return binding, row[5]
