"""Named indexes in one PostgreSQL database, shared by every server that uses it.

Nothing is cached between calls: each call reads its index's catalog row (name -> binding,
table), so several servers see each other's creations and drops at once. Creating and
dropping take a transaction-scoped advisory lock, so two servers creating the same index at
once make one.
"""

from __future__ import annotations

import logging

from . import pg_labels
from .errors import IndexNotFound, SearchError
from .manifest import Binding, check_binding, check_name
from .pg_bulk import cancel_builds, hnsw_sql
from .pg_index import PgIndex
from .pg_store import CATALOG, SCHEMA_LOCK, PgDatabase, PgSettings, PgStore, table_name

logger = logging.getLogger("image_embed.search.pg_indexes")
PLAIN_MAX_DIM = 1536  # a float32 vector of this many dimensions, key and metadata fit an 8 KiB page


class PgIndexRegistry:
    backend = "postgresql"

    def __init__(self, settings: PgSettings) -> None:
        self.db = PgDatabase(settings)
        self.settings = settings

    def names(self) -> list[str]:
        with self.db.connection() as conn:
            return [r[0] for r in conn.execute(f"SELECT name FROM {CATALOG} ORDER BY name")]

    def open_all(self) -> dict[str, str]:
        """Reach the database now (so a problem shows in the log at start-up), list its indexes."""
        try:
            return {name: "ok" for name in self.names()}
        except SearchError as exc:
            logger.error("search database: %s", exc.detail)
            return {"(database)": f"{exc.code}: {exc.detail}"}

    def get(self, name: str, binding: Binding | None = None, *, create: bool = False) -> PgIndex:
        check_name(name)
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT id, model, dim, metric, normalized FROM {CATALOG} WHERE name = %s", (name,)).fetchone()
            if row is None and create and binding is not None:
                row = self._create(conn, name, binding)
        if row is None:
            raise IndexNotFound(f"there is no index named {name!r}")
        stored = Binding(model=row[1], dim=int(row[2]), metric=row[3], normalized=bool(row[4]))
        if binding is not None:
            check_binding(name, stored, binding)
        return PgIndex(PgStore(self.db, name, int(row[0]), stored))

    def _create(self, conn, name: str, binding: Binding):
        s = self.settings
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            row = conn.execute(f"SELECT id, model, dim, metric, normalized FROM {CATALOG} WHERE name = %s", (name,)).fetchone()
            if row is not None:  # another server made it meanwhile
                return row
            (index_id,) = conn.execute(
                f"INSERT INTO {CATALOG} (name, model, dim, metric, normalized) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (name, binding.model, binding.dim, binding.metric, binding.normalized),
            ).fetchone()
            t = table_name(index_id)
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text NOT NULL UNIQUE, "
                f"embedding vector({int(binding.dim)}) NOT NULL, metadata jsonb, source text, thumbnail bytea)"
            )
            if binding.dim <= PLAIN_MAX_DIM:  # rows stay in the heap page (not TOAST): faster scans and fetches
                conn.execute(f"ALTER TABLE {t} ALTER COLUMN embedding SET STORAGE PLAIN")
            conn.execute(hnsw_sql(t, s.hnsw_m, s.ef_construction))
            conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_metadata ON {t} USING gin (metadata jsonb_path_ops)")
            pg_labels.ensure(conn, t, index_id)
        logger.info("index %r created in %s as %s", name, self.db.where, t)
        return (index_id, binding.model, binding.dim, binding.metric, binding.normalized)

    def drop(self, name: str) -> bool:
        check_name(name)
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            row = conn.execute(f"DELETE FROM {CATALOG} WHERE name = %s RETURNING id", (name,)).fetchone()
            if row is not None:
                cancel_builds(conn, table_name(row[0]))
                pg_labels.drop(conn, row[0])
                conn.execute(f"DROP TABLE IF EXISTS {table_name(row[0])}")
        return row is not None

    def describe(self) -> dict:
        return {"backend": self.backend, "database": self.db.where}

    def close(self) -> None:
        self.db.close()
