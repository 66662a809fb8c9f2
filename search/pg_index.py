"""Search of one PostgreSQL index: `ORDER BY embedding <=> query LIMIT k` over HNSW.

The score of a hit is 1 - cosine distance, computed in the same SELECT, from the same row,
as its key: a key can never meet another row's score. Vectors are L2-normalized on the way
in, so this is the dot product the embedded back end returns.

Recall:
- hnsw.ef_search is IMAGE_EMBED_SEARCH_EF_SEARCH, raised to the depth a query asks for
  (offset + top_k + excluded keys), at most 1000 (pgvector's limit).
- With a filter, HNSW alone would return its ef_search nearest and then drop those that
  do not match, so a selective filter would return too few. pgvector 0.8's iterative scan
  (`hnsw.iterative_scan = relaxed_order`, up to `hnsw.max_scan_tuples`) keeps scanning the
  graph until enough rows match; the results are re-sorted by their exact distance. If it
  still finds fewer rows than asked for, the query runs again with the HNSW index off: an
  exact scan of the rows the GIN index on metadata selects (never fewer results than exist).
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidItem
from .pg_bulk import hnsw_state
from .pg_store import PgStore
from .labels import LabelFilter
from .queries import Hit, SearchIndex, check_filter, check_page

MAX_EF_SEARCH = 1000


class PgIndex(SearchIndex):
    backend = "postgresql"

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.name = store.name

    # -- writes and reads --------------------------------------------------------------------
    def upsert(self, keys, vectors, metadata=None, sources=None, thumbnails=None, *, phashes=None, labels=None) -> list[int]:
        return self.store.upsert(keys, vectors, metadata, sources, thumbnails, phashes=phashes, labels=labels)

    def delete(self, keys):
        return self.store.delete(keys)

    # -- search ------------------------------------------------------------------------------
    def search(self, queries, top_k: int = 10, min_score=None, where=None, exclude=None, offset: int = 0, labels=None):
        """Best-first hits per query; `labels` (default: hidden items left out) applies in SQL,
        before top_k and offset."""
        depth = check_page(top_k, offset)
        labels = labels or LabelFilter()
        if labels.tag_ids:
            with self.store.db.connection() as conn:
                self.store.labels.check_tag_ids(conn, labels.tag_ids)
        where = check_filter(where)
        qs = self.store.prepare_vectors(queries)
        excluded = [set() for _ in range(len(qs))] if exclude is None else [set(e or ()) for e in exclude]
        out = []
        for q, skip in zip(qs, excluded):
            hits = []
            for key, meta, score in self._nearest(q, depth + len(skip), where, labels):
                if key in skip or (min_score is not None and score < min_score):
                    continue
                hits.append(Hit(key, score, meta))
                if len(hits) == depth:
                    break
            out.append(hits[offset:])
        return out

    def _nearest(self, q: np.ndarray, n: int, where: dict | None, labels: LabelFilter) -> list[tuple[str, dict | None, float]]:
        from psycopg.types.json import Jsonb

        params: dict = {"q": q, "n": n}
        clauses = self.store.labels.where(labels, params)
        if where:
            params["contains"] = Jsonb(where)  # uses the GIN index; equality is checked exactly below
            clauses.append("metadata @> %(contains)s")
            for i, (field, value) in enumerate(where.items()):
                params[f"f{i}"], params[f"v{i}"] = field, Jsonb(value)
                clauses.append(f"metadata -> %(f{i})s = %(v{i})s")
        where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"WITH c AS MATERIALIZED (SELECT key, metadata, embedding <=> %(q)s AS d FROM {self.store.table} "
            f"{where_sql} ORDER BY embedding <=> %(q)s LIMIT %(n)s) SELECT key, metadata, 1 - d FROM c ORDER BY d, key"
        )
        ef = str(min(MAX_EF_SEARCH, max(self.store.db.settings.ef_search, n)))
        with self.store.db.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.max_scan_tuples', %s, true)",
                (ef, str(max(20_000, 20 * n))),
            )
            rows = conn.execute(sql, params).fetchall()
            if len(rows) < n:  # fewer than asked: maybe fewer exist, maybe the graph missed some
                conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
                rows = conn.execute(sql, params).fetchall()
        return [(k, m, float(s)) for k, m, s in rows]

    def clip_duplicates(self, threshold: float = 0.95, limit: int = 1000, neighbors: int = 10, include_hidden: bool = False) -> list[dict]:
        """Pairs with similarity >= threshold: each item's `neighbors` nearest (HNSW), in one
        query; hidden items only with `include_hidden`."""
        if not -1.0 <= threshold <= 1.0:
            raise InvalidItem("threshold must be between -1 and 1")
        t = self.store.table
        visible_a, visible_b = ("", "") if include_hidden else ("WHERE NOT a.hidden", "AND NOT b.hidden")
        sql = (
            f"SELECT a.key, b.key, 1 - (a.embedding <=> b.embedding) AS s FROM (SELECT * FROM {t} a {visible_a}) a CROSS JOIN LATERAL "
            f"(SELECT key, embedding FROM {t} b WHERE b.id <> a.id {visible_b} ORDER BY b.embedding <=> a.embedding LIMIT %s) b "
            "WHERE 1 - (a.embedding <=> b.embedding) >= %s"
        )
        with self.store.db.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                (str(max(self.store.db.settings.ef_search, neighbors)),),
            )
            rows = conn.execute(sql, (neighbors, threshold)).fetchall()
        pairs: dict[tuple[str, str], float] = {}
        for a, b, s in rows:
            pair = tuple(sorted((a, b)))
            pairs[pair] = max(pairs.get(pair, -2.0), float(s))
        best = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"a": a, "b": b, "score": s} for (a, b), s in best]

    def stats(self) -> dict:
        stats = self.store.stats()
        settings = self.store.db.settings
        with self.store.db.connection() as conn:
            hnsw = hnsw_state(conn, self.store.table)  # "absent" while a bulk load defers it (pg_bulk.py)
        stats.update(
            {
                "index_type": "approximate" if hnsw == "built" else "exact",
                "approximate": {"kind": "pgvector-hnsw", "m": settings.hnsw_m, "ef_search": settings.ef_search, "hnsw": hnsw},
            }
        )
        return stats

    def wait_idle(self, timeout=None) -> None:
        pass  # nothing runs in the background

    def close(self, checkpoint: bool = True) -> None:
        pass
