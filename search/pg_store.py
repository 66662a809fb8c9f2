"""PostgreSQL + pgvector: the shared back end, chosen by IMAGE_EMBED_SEARCH_URL=postgresql://...

    image_embed_indexes          one row per index: name, binding, the id that names its table
    image_embed_items_<id>       key (unique), embedding vector(dim), metadata jsonb, source,
                                 thumbnail bytea (a small WebP for the UI, or NULL), rating,
                                 hidden, phash; HNSW (vector_cosine_ops) on embedding, GIN on metadata
    image_embed_tags_<id>, image_embed_item_tags_<id>   the index's tags (pg_labels.py)

Everything an index is lives in the database, nothing only in one process: any number of
servers (gateways and index runners) share the indexes, and each call looks its index up
afresh, so an index dropped or re-created by another server is seen at once. A write is one
transaction, durable when it returns (synchronous_commit, PostgreSQL's default).

A database that is down, a wrong URL, a refused login or a missing pgvector answer 503 with
the cause and the fix (BackendUnavailable), within the connect timeout: never a hang. Once a
connection has failed, a circuit breaker (pg_breaker.py) answers every call at once until a
background probe reaches the database again. Every statement runs under a statement timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import pg_labels
from .errors import BackendUnavailable, IndexNotFound, KeyNotFound, SearchError
from .pg_breaker import CircuitBreaker
from . import pg_bulk
from .items import MAX_METADATA_BYTES, check_key
from .labels import LabelFilter, LabelWrite, check_rating, check_tag_names, prepare_labels
from .manifest import Binding
from .storage import CheckReport, Item, Storage, last_wins, prepare_items, prepare_phashes, prepare_thumbnails

logger = logging.getLogger("image_embed.search.pg")

CATALOG = "image_embed_indexes"
SCHEMA_LOCK = 0x1E_5EA7C4  # pg_advisory_xact_lock key: creating or dropping indexes
CATALOG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CATALOG} (
    id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name text PRIMARY KEY,
    model text NOT NULL, dim integer NOT NULL, metric text NOT NULL, normalized boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
PGVECTOR_FIX = (
    "the pgvector extension is missing and this role may not create it: as a superuser run "
    "`CREATE EXTENSION vector;` in this database (install pgvector 0.8 or newer on the server first), "
    "or connect as a role that may"
)


@dataclass(frozen=True, kw_only=True)
class PgSettings:
    url: str
    pool_size: int = 8
    connect_timeout: float = 5.0  # seconds to connect, or to wait for a pooled connection
    statement_timeout_ms: int = 30_000
    ef_search: int = 100  # hnsw.ef_search (raised to the depth a query asks for, up to 1000)
    hnsw_m: int = 16
    ef_construction: int = 64
    max_metadata_bytes: int = MAX_METADATA_BYTES


def describe_url(url: str) -> str:
    """The URL without its password (for messages and /health)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://(unparsable URL)"
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{parts.get('user', '')}@{host}{port}/{parts.get('dbname', '')}"


def check_url(url: str) -> None:
    """A malformed URL fails the start (raises ValueError naming it)."""
    from psycopg.conninfo import conninfo_to_dict

    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("must start with postgresql://")
    try:
        conninfo_to_dict(url)
    except Exception as exc:
        raise ValueError(f"is not a valid PostgreSQL URL: {exc}") from None


class PgDatabase:
    """One pool per server process; opened at the first call, re-tried after a failure."""

    def __init__(self, settings: PgSettings) -> None:
        check_url(settings.url)
        self.settings = settings
        self.where = describe_url(settings.url)
        self._pool = None
        self._lock = threading.Lock()
        self.breaker = CircuitBreaker(self._probe, self.where, on_recover=self._after_outage)
        self.builder = pg_bulk.HnswBuilder(self)  # builds HNSW indexes deferred by bulk writes (pg_bulk.py)

    def _connect_kwargs(self) -> dict:
        s = self.settings
        return {
            "connect_timeout": max(1, round(s.connect_timeout)),
            "autocommit": True,
            "options": f"-c statement_timeout={s.statement_timeout_ms}",
            "application_name": "image-embed",
        }

    def _prepare(self) -> None:
        """The extension and the catalog table, idempotently (once per process)."""
        import psycopg

        with psycopg.connect(self.settings.url, **self._connect_kwargs()) as conn:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported,
                        psycopg.errors.UndefinedFile) as exc:
                    raise BackendUnavailable(f"PostgreSQL at {self.where}: {PGVECTOR_FIX} ({exc.diag.message_primary})") from None
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                conn.execute(CATALOG_SCHEMA)
                # Tables made before thumbnails and labels existed gain them. Only those: ALTER
                # TABLE waits for an HNSW build of another server's (pg_bulk.py), even as a no-op.
                for (index_id,) in conn.execute(
                    f"SELECT id FROM {CATALOG} c WHERE to_regclass('image_embed_items_' || c.id) IS NOT NULL "
                    "AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('image_embed_items_' || c.id) "
                    "AND attname IN ('thumbnail', 'phash') AND NOT attisdropped) < 2"
                ).fetchall():
                    conn.execute(f"ALTER TABLE {table_name(index_id)} ADD COLUMN IF NOT EXISTS thumbnail bytea")
                    pg_labels.ensure(conn, table_name(index_id), index_id)
            for table in pg_bulk.unbuilt_tables(conn, CATALOG, table_name(0)[:-1]):  # an import or a build cut short
                self.builder.arm(table)

    def _open_pool(self):
        from pgvector.psycopg import register_vector
        from psycopg_pool import ConnectionPool

        # Bounded: a caller never waits longer than the connect timeout behind another's attempt.
        if not self._lock.acquire(timeout=self.settings.connect_timeout):
            raise BackendUnavailable(f"PostgreSQL at {self.where}: still connecting (another call is trying)")
        try:
            self.breaker.check()  # it may have opened while this call waited
            if self._pool is None:
                self._prepare()
                pool = ConnectionPool(
                    self.settings.url,
                    min_size=1,
                    max_size=self.settings.pool_size,
                    kwargs=self._connect_kwargs(),
                    configure=register_vector,
                    timeout=self.settings.connect_timeout,
                    open=False,
                    name="image-embed-search",
                )
                try:
                    pool.open(wait=True, timeout=self.settings.connect_timeout)
                except BaseException:
                    pool.close()
                    raise
                self._pool = pool
            return self._pool
        finally:
            self._lock.release()

    @contextmanager
    def connection(self):
        """A pooled connection; every failure of the database becomes a SearchError."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            self.breaker.check()  # the database is known to be down: answer at once
            pool = self._pool or self._open_pool()
            with pool.connection(timeout=self.settings.connect_timeout) as conn:
                yield conn
        except SearchError:
            raise
        except psycopg.errors.UndefinedTable as exc:  # dropped by another server meanwhile
            raise IndexNotFound(f"the index's table is gone (dropped meanwhile): {exc.diag.message_primary}") from None
        except psycopg.errors.QueryCanceled:
            raise BackendUnavailable(
                f"PostgreSQL at {self.where} took longer than {self.settings.statement_timeout_ms} ms "
                "(IMAGE_EMBED_SEARCH_STATEMENT_TIMEOUT_MS)"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            self._reset_if_broken()
            self.breaker.failed(exc, str(exc).strip()[:300])
            raise BackendUnavailable(
                f"PostgreSQL at {self.where} is unreachable or refused the connection "
                f"(check IMAGE_EMBED_SEARCH_URL and that the database is up): {str(exc).strip()[:300]}"
            ) from None
        except psycopg.Error as exc:
            raise BackendUnavailable(f"PostgreSQL at {self.where} failed the call: {str(exc).strip()[:300]}") from None

    def _reset_if_broken(self) -> None:
        """A closed pool is dropped, so the next call prepares the database again."""
        with self._lock:
            if self._pool is not None and self._pool.closed:
                self._pool = None

    def _probe(self) -> None:
        """The breaker's probe: a fresh connection (not the pool's) and one query."""
        import psycopg

        with psycopg.connect(self.settings.url, **self._connect_kwargs()) as conn:
            conn.execute("SELECT 1")

    def _after_outage(self) -> None:
        """The database answers again: the pool drops the connections the outage broke."""
        pool = self._pool
        if pool is not None and not pool.closed:
            pool.check()

    def check_reachable(self) -> None:
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self.breaker.close()
        self.builder.close()
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def table_name(index_id: int) -> str:
    return f"image_embed_items_{int(index_id)}"


class PgStore(Storage):
    """One index's rows in PostgreSQL (its catalog row already looked up)."""

    def __init__(self, db: PgDatabase, name: str, index_id: int, binding: Binding) -> None:
        self.db, self.name, self.binding = db, name, binding
        self.table = table_name(index_id)
        self.labels = pg_labels.PgLabels(self.table, index_id)

    def upsert(self, keys, vectors, metadata=None, sources=None, thumbnails=None, *, phashes=None, labels=None) -> list[int]:
        """Insert or replace items by key in one transaction; a replaced item keeps its labels
        (the row is updated, not replaced) unless `labels` sets them."""
        from psycopg.types.json import Jsonb

        keys, vecs, metas, srcs = prepare_items(self.binding, keys, vectors, metadata, sources, self.db.settings.max_metadata_bytes)
        thumbs = prepare_thumbnails(thumbnails, len(keys))
        hashes = prepare_phashes(phashes, len(keys))
        labs = prepare_labels(labels, len(keys))
        if not keys:
            return []
        keep = last_wins(keys)
        rows = [
            (keys[i], vecs[i], None if metas[i] is None else Jsonb(metas[i]), srcs[i], thumbs[i], pg_labels.signed(hashes[i]))
            for i in keep
        ]

        def write_labels(conn) -> None:
            self.labels.write_item_labels(conn, [keys[i] for i in keep], [labs[i] for i in keep])

        if len(rows) >= pg_bulk.BULK_MIN_ROWS:  # binary COPY; may defer the HNSW index (pg_bulk.py)
            columns = ("key", "embedding", "metadata", "source", "thumbnail", "phash")
            ids = pg_bulk.upsert_rows(self, columns, rows, then=write_labels)
            return [ids[k] for k in keys]
        sql = (
            f"INSERT INTO {self.table} (key, embedding, metadata, source, thumbnail, phash) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, "
            "source = EXCLUDED.source, thumbnail = EXCLUDED.thumbnail, phash = EXCLUDED.phash RETURNING key, id"
        )
        ids: dict[str, int] = {}
        with self.db.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(sql, rows, returning=True)
                while True:
                    key, id_ = cur.fetchone()
                    ids[key] = id_
                    if not cur.nextset():
                        break
            write_labels(conn)
        return [ids[k] for k in keys]

    # -- labels (pg_labels.py) -------------------------------------------------------------
    def set_rating(self, keys, rating: int) -> LabelWrite:
        rating = check_rating(rating)
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self.db.connection() as conn, conn.transaction():
            found = self.labels.set_rating(conn, keys, rating)
        return LabelWrite(updated=[k for k in keys if k in found], missing=[k for k in keys if k not in found])

    def tag_items(self, keys, add=(), remove=(), hidden: bool | None = None) -> LabelWrite:
        add, remove = check_tag_names(add), check_tag_names(remove)
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self.db.connection() as conn, conn.transaction():
            found = self.labels.tag_items(conn, keys, add, remove, hidden)
        return LabelWrite(updated=[k for k in keys if k in found], missing=[k for k in keys if k not in found])

    def tags(self) -> list[tuple[int, str, int]]:
        with self.db.connection() as conn:
            return self.labels.tag_counts(conn)

    def browse(self, f: LabelFilter, offset: int, limit: int):
        with self.db.connection() as conn, conn.transaction():  # one snapshot: the count and the page agree
            return self.labels.browse(conn, f, offset, limit)

    def phashes(self, include_hidden: bool = False):
        with self.db.connection() as conn:
            return self.labels.phashes(conn, include_hidden)

    def delete(self, keys) -> tuple[list[str], list[str]]:
        keys = list(dict.fromkeys(check_key(k) for k in keys))
        with self.db.connection() as conn, conn.transaction():
            gone = {r[0] for r in conn.execute(f"DELETE FROM {self.table} WHERE key = ANY(%s) RETURNING key", (keys,))}
        return [k for k in keys if k in gone], [k for k in keys if k not in gone]

    def get(self, keys, with_vectors: bool = False) -> list[Item | None]:
        cols = "key, id, metadata, source, rating, hidden" + (", embedding" if with_vectors else "")
        with self.db.connection() as conn, conn.transaction():
            rows = conn.execute(f"SELECT {cols} FROM {self.table} WHERE key = ANY(%s)", (list(keys),)).fetchall()
            tags = self.labels.tags_of(conn, [r[0] for r in rows])
        found = {
            r[0]: Item(r[0], r[1], r[2], r[3], _vector(r[6]) if with_vectors else None, r[4], r[5], [n for _, n in tags.get(r[0], [])])
            for r in rows
        }
        return [found.get(k) for k in keys]

    def thumbnail(self, key: str) -> bytes | None:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT thumbnail FROM {self.table} WHERE key = %s", (key,)).fetchone()
        if row is None:
            raise KeyNotFound(f"index {self.name!r} has no item {key!r}")
        return None if row[0] is None else bytes(row[0])

    def iterate(self, batch: int = 10_000) -> Iterator[list[Item]]:
        last = -1
        while True:
            with self.db.connection() as conn, conn.transaction():
                rows = conn.execute(
                    f"SELECT key, id, metadata, source, embedding, rating, hidden, phash FROM {self.table} "
                    "WHERE id > %s ORDER BY id LIMIT %s",
                    (last, batch),
                ).fetchall()
                tags = self.labels.tags_of(conn, [r[0] for r in rows])
            if not rows:
                return
            yield [
                Item(r[0], r[1], r[2], r[3], _vector(r[4]), r[5], r[6], [n for _, n in tags.get(r[0], [])], pg_labels.unsigned(r[7]))
                for r in rows
            ]
            last = rows[-1][1]

    @property
    def count(self) -> int:
        with self.db.connection() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])

    def keys(self) -> list[str]:
        with self.db.connection() as conn:
            return [r[0] for r in conn.execute(f"SELECT key FROM {self.table} ORDER BY id")]

    def check(self) -> CheckReport:
        """Keys unique and non-empty, vectors of the bound dimension and unit length."""
        with self.db.connection() as conn:
            n, distinct, bad_dim, bad_norm = conn.execute(
                f"SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE vector_dims(embedding) <> %s), "
                f"count(*) FILTER (WHERE %s AND abs(vector_norm(embedding) - 1) > 1e-3) FROM {self.table}",
                (self.binding.dim, self.binding.normalized),
            ).fetchone()
            label_problems = self.labels.check(conn)
        report = CheckReport(count=int(n), problems=label_problems)
        if distinct != n:
            report.problems.append(f"{n} rows but {distinct} distinct keys")
        if bad_dim:
            report.problems.append(f"{bad_dim} vectors are not {self.binding.dim}-d")
        if bad_norm:
            report.problems.append(f"{bad_norm} vectors are not unit length")
        return report

    def stats(self) -> dict:
        with self.db.connection() as conn:
            n, size = conn.execute(f"SELECT count(*), pg_total_relation_size(%s) FROM {self.table}", (self.table,)).fetchone()
        return {
            "name": self.name,
            "backend": "postgresql",
            "database": self.db.where,
            "table": self.table,
            "count": int(n),
            "dim": self.binding.dim,
            "model": self.binding.model,
            "metric": self.binding.metric,
            "normalized": self.binding.normalized,
            "bytes_on_disk": int(size),
            "last_snapshot": {"lsn": None, "at": None, "age_s": None},  # PostgreSQL's own WAL and checkpoints
        }

    def close(self) -> None:
        pass  # the pool belongs to the database object


def _vector(value) -> np.ndarray:
    """A loaded `vector` (pgvector's Vector) as float32 numpy."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
