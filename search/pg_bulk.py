"""PostgreSQL's bulk path: large batches by binary COPY, and the HNSW index built in bulk.

pgvector maintains HNSW on every insert: about 350 vectors/s on one core. Built in one go
after a load, the same graph costs a fraction of that per vector, and in parallel. So:

- A batch of BULK_MIN_ROWS or more is one transaction: binary COPY (psycopg's `copy`, with
  pgvector's binary dumper) into a temporary staging table shaped like the index's table,
  then one `INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`, in key order (concurrent
  batches lock rows in the same order). Durable when it returns, as every write.
- **Deferring the index.** If such a batch is large against the table (the table holds
  fewer than BULK_FACTOR times its rows: a new or small index, the start of an import), the
  same transaction drops the HNSW index, and rows then go in at the speed of the table.
  An operator may do the same by hand before a large import into a large index:
  `DROP INDEX CONCURRENTLY image_embed_items_<id>_embedding`.
- **While the index is absent** searches are exact scans (PostgreSQL's own plan for
  `ORDER BY embedding <=> q LIMIT k` without an index): right, but they read the whole table
  (tens of ms at 100k, about a second at 1M); `duplicates` may hit the statement timeout.
- **Building.** Each server process has one builder thread. It is armed by a deferred write,
  and when the process first reaches the database, for every index without a valid HNSW
  index (an import or a build cut short). When the table has gone quiet (fewer than QUIET_ROWS new rows in QUIET_S seconds,
  counted on the table's id sequence, so writes of every server count), it builds the index
  with `CREATE INDEX CONCURRENTLY` on a connection of its own (no statement timeout):
  reads and writes go on meanwhile, and rows written during the build are added to it.
  A build under way shows in `pg_stat_progress_create_index`, so the other servers wait for
  it; an invalid index with no build under way (a build cut short) is dropped and built
  again. No session state: this works through PgBouncer in transaction mode too.
  pgvector builds fast while the graph fits in `maintenance_work_mem` and uses
  `max_parallel_maintenance_workers`: set them for the role the servers use (e.g.
  `ALTER ROLE embed SET maintenance_work_mem = '4GB'`); pgvector's notice that the graph no
  longer fits is logged as a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from .errors import IndexNotFound, SearchError

logger = logging.getLogger("image_embed.search.pg_bulk")

BULK_MIN_ROWS = 100  # smaller batches: one INSERT per row, pipelined (pg_store.py)
BULK_FACTOR = 10  # defer the index when the table holds fewer than BULK_FACTOR x the batch
QUIET_S = 5.0
QUIET_ROWS = 1_000  # fewer new rows than this in QUIET_S: the load is over (or slow enough for HNSW inserts)
CHECK_S = 1.0  # how often the builder looks at an armed table


def hnsw_name(table: str) -> str:
    return f"{table}_embedding"


def hnsw_sql(table: str, m: int, ef_construction: int, *, concurrently: bool = False) -> str:
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {hnsw_name(table)} ON {table} USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
    )


def hnsw_state(conn, table: str) -> str:
    """"built", "absent" (deferred) or "unfinished" (being built, or a build cut short)."""
    row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (hnsw_name(table),)).fetchone()
    return "absent" if row is None else "built" if row[0] else "unfinished"


def upsert_rows(
    store, columns: tuple[str, ...], rows: list[tuple], update: tuple[str, ...] | None = None, then=None
) -> dict[str, int]:
    """Write `rows` (one tuple per item, in `columns` order, key first, keys unique) in one
    transaction by COPY, then `then(conn)` in the same transaction (the items' labels);
    returns {key: id}. Defers the HNSW index when the batch is large against the table, and
    arms the builder while the index is not built."""
    db, table = store.db, store.table
    update = update or tuple(c for c in columns if c != "key")
    with db.connection() as conn, conn.transaction():
        state = hnsw_state(conn, table)
        if state == "built" and _large_against(conn, table, len(rows)) and _drop_index(conn, table):
            state = "absent"
            logger.info("%s: a large batch against the table; HNSW deferred until the writes go quiet", table)
        ids = _copy_upsert(conn, table, columns, rows, update)
        if then is not None:
            then(conn)
    if state != "built":
        db.builder.arm(table)
    return ids


def _large_against(conn, table: str, batch: int) -> bool:
    limit = BULK_FACTOR * batch  # counting at most this many rows keeps the check cheap at any size
    (n,) = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) t", (limit,)).fetchone()
    return n < limit


def _drop_index(conn, table: str) -> bool:
    """Drop the HNSW index in this transaction, unless its lock is not free at once (searches
    hold it briefly; never queue every reader behind this write)."""
    import psycopg

    try:
        with conn.transaction():  # a savepoint: a refused lock leaves the write going
            # (the timeout outlives the savepoint, harmlessly: the table's lock is then ours)
            conn.execute("SET LOCAL lock_timeout = '200ms'")
            conn.execute(f"DROP INDEX IF EXISTS {hnsw_name(table)}")
        return True
    except psycopg.errors.LockNotAvailable:
        return False


def _copy_upsert(conn, table: str, columns: tuple[str, ...], rows: list[tuple], update: tuple[str, ...]) -> dict[str, int]:
    cols = ", ".join(columns)
    stage = f"pg_temp.{table}_stage"
    # Made in this transaction and dropped at its end: shaped like the table as it is now.
    conn.execute(f"CREATE TEMP TABLE {table}_stage ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA")
    with conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM {stage} LIMIT 0")
        types = [d.type_code for d in cur.description]
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY key "
            f"ON CONFLICT (key) DO UPDATE SET {sets} RETURNING key, id"
        )
        return dict(cur.fetchall())


def cancel_builds(conn, table: str) -> None:
    """Cancel any build of `table`'s HNSW index (before dropping the table: a concurrent build
    waits for the dropping transaction's snapshot while that waits for the table's lock)."""
    conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index WHERE relid = to_regclass(%s)", (table,))


def building(conn, table: str) -> bool:
    """Whether some session is building an index of `table` now."""
    sql = "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = to_regclass(%s)"
    return conn.execute(sql, (table,)).fetchone()[0] > 0


def unbuilt_tables(conn, catalog: str, prefix: str) -> list[str]:
    """The tables (`prefix` + index id) whose HNSW index is absent or unfinished."""
    rows = conn.execute(
        f"SELECT %s || c.id FROM {catalog} c LEFT JOIN pg_index i ON i.indexrelid = "
        "to_regclass(%s || c.id || '_embedding') WHERE i.indisvalid IS NOT TRUE",
        (prefix, prefix),
    ).fetchall()
    return [r[0] for r in rows]


@dataclass
class _Armed:
    seen: list[tuple[float, int]] = field(default_factory=list)  # (when, the id sequence's last value)


class HnswBuilder:
    """One per PgDatabase (server process): builds deferred HNSW indexes when writes go quiet."""

    def __init__(self, db, quiet_s: float = QUIET_S, quiet_rows: int = QUIET_ROWS, check_s: float = CHECK_S) -> None:
        self.db = db
        self.quiet_s, self.quiet_rows, self.check_s = quiet_s, quiet_rows, check_s
        self._armed: dict[str, _Armed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_build: dict | None = None  # {"table", "seconds", "rows"} of this process's last build

    def arm(self, table: str) -> None:
        with self._lock:
            self._armed.setdefault(table, _Armed())
            if not self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="pg-hnsw-builder", daemon=True)
                self._thread.start()

    @property
    def armed(self) -> list[str]:
        with self._lock:
            return sorted(self._armed)

    def _run(self) -> None:
        import psycopg

        while not self._stop.wait(min(self.check_s, self.quiet_s)):
            for table, entry in list(self._armed.items()):
                if self.db.breaker.is_open:  # the database is down (the breaker says so once)
                    break
                try:
                    if self._settled(table, entry):
                        with self._lock:
                            self._armed.pop(table, None)
                except IndexNotFound:  # the index was dropped meanwhile
                    with self._lock:
                        self._armed.pop(table, None)
                except SearchError as exc:  # the database is down: try again later
                    logger.info("HNSW build of %s waits: %s", table, exc.detail)
                except psycopg.Error as exc:  # the build's own connection
                    logger.warning("HNSW build of %s failed (trying again later): %s", table, str(exc).strip()[:300])
                except Exception:
                    logger.exception("HNSW build of %s failed; trying again later", table)
            with self._lock:
                if not self._armed:
                    self._thread = None
                    return

    def _settled(self, table: str, entry: _Armed) -> bool:
        """True once the index is built (by anyone); builds it when the table is quiet."""
        with self.db.connection() as conn:
            if hnsw_state(conn, table) == "built":
                return True
            (last,) = conn.execute(
                "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass), 0)", (table,)
            ).fetchone()
        now = time.monotonic()
        entry.seen.append((now, last))
        while len(entry.seen) > 1 and now - entry.seen[1][0] >= self.quiet_s:
            entry.seen.pop(0)  # keep one sample at least quiet_s old: the reference
        when, then = entry.seen[0]
        quiet = now - when >= self.quiet_s and last - then < self.quiet_rows
        return quiet and build_index(self.db, table, self) in ("built", "exists")

    def close(self) -> None:
        """Stop arming and checking (a build running in PostgreSQL finishes there)."""
        self._stop.set()


def build_index(db, table: str, builder: HnswBuilder | None = None) -> str:
    """Build `table`'s HNSW index now, concurrently with reads and writes. Returns "built",
    "exists" (already valid) or "busy" (another session is building it)."""
    import psycopg

    s = db.settings
    kwargs = {**db._connect_kwargs(), "options": "-c statement_timeout=0", "application_name": "image-embed-hnsw-build"}
    with psycopg.connect(s.url, **kwargs) as conn:
        state = hnsw_state(conn, table)
        if state == "built":
            return "exists"
        if building(conn, table):
            return "busy"
        if state == "unfinished":  # invalid, and nobody is building it: a build cut short
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {hnsw_name(table)}")
        conn.add_notice_handler(lambda diag: logger.warning("%s: %s %s", table, diag.message_primary, diag.message_hint or ""))
        started = time.monotonic()
        conn.execute(hnsw_sql(table, s.hnsw_m, s.ef_construction, concurrently=True))
        took = time.monotonic() - started
        if hnsw_state(conn, table) != "built":  # another server's build started first (IF NOT EXISTS)
            return "busy"
        (rows,) = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()
        logger.info("%s: HNSW index built in %.1f s (%s rows)", table, took, rows)
        if builder is not None:
            builder.last_build = {"table": table, "seconds": round(took, 2), "rows": int(rows)}
        return "built"
